"""The monitor's pure part: hand-made snapshots rendered, no device."""

import io
from decimal import Decimal

import pytest
from pumpguard.api.answers import Alarm, Status
from pumpguard.monitor import Snapshot, render
from rich.console import Console

DEVICE = {
    "board": "emulator",
    "board_id": "356eed366f2bd013",
    "firmware": "pumpguard 0.1.0",
    "library": "pumpguard-adult-icu-vasoactive",
    "library_version": "0.1.0",
    "library_crc": 0xB8480970,
}


def status(channel=1, state="running", **fields):
    values = {
        "drug": "norepinephrine",
        "dose": Decimal("0.1"),
        "dose_unit": "mcg/kg/min",
        "rate_ml_h": Decimal("26.25"),
        "volume_infused_ml": Decimal("1.5"),
        "volume_left_ml": Decimal("48.5"),
        "time_to_empty_s": 6651,
        "alarms": (),
        "taper_next_in_s": None,
        "taper_next_dose": None,
        "override": False,
        **fields,
    }
    return Status(channel, state, **values)


IDLE = status(
    2,
    "idle",
    drug=None,
    dose=None,
    dose_unit=None,
    rate_ml_h=Decimal(0),
    volume_infused_ml=Decimal(0),
    volume_left_ml=None,
    time_to_empty_s=None,
)


def snapshot(*channels, alarms=(), role="clinician", supervise_s=2, uptime_ms=60_000):
    return Snapshot(DEVICE, role, supervise_s, uptime_ms, channels or (status(), IDLE), alarms)


def text(renderable, width=120):
    out = io.StringIO()
    Console(file=out, width=width, force_terminal=False, color_system=None).print(renderable)
    return out.getvalue()


def row(screen, name):
    (line,) = [line for line in screen.splitlines() if line.strip("│ ").startswith(name + " ")]
    return line.strip("│ ").split(name, 1)[1].split()


def test_the_identity_line_names_board_firmware_library_and_role():
    screen = text(render(snapshot()))
    assert "board emulator (356eed366f2bd013)" in screen
    assert "firmware pumpguard 0.1.0" in screen
    assert "library pumpguard-adult-icu-vasoactive 0.1.0 (crc b8480970)" in screen
    assert "role clinician" in screen
    assert "supervising the link: a heartbeat every 2 s" in screen


def test_a_running_channel_shows_dose_rate_volumes_and_time_to_empty():
    screen = text(render(snapshot()))
    assert row(screen, "state") == ["running", "idle"]
    assert row(screen, "drug") == ["norepinephrine", "-"]
    assert row(screen, "dose") == ["0.1", "mcg/kg/min", "-"]
    assert row(screen, "rate") == ["26.25", "mL/h", "0", "mL/h"]
    assert row(screen, "infused") == ["1.5", "mL", "0", "mL"]
    assert row(screen, "left") == ["48.5", "mL", "-"]
    assert row(screen, "empty in") == ["1", "h", "51", "min", "-"]
    assert row(screen, "next taper step") == ["-", "-"]
    assert row(screen, "override") == ["no", "no"]


def test_a_tapering_channel_shows_when_and_to_what_dose_the_next_step_goes():
    tapering = status(
        state="tapering",
        dose=Decimal("0.08"),
        taper_next_in_s=Decimal("90.5"),
        taper_next_dose=Decimal("0.06"),
    )
    screen = text(render(snapshot(tapering)))
    assert row(screen, "state") == ["tapering"]
    assert " ".join(row(screen, "next taper step")) == "in 1 min 31 s to 0.06 mcg/kg/min"


def test_an_override_is_flagged_on_its_channel_only():
    screen = text(render(snapshot(status(override=True), status(2))))
    assert row(screen, "override") == ["yes:", "past", "a", "soft", "limit", "no"]


def test_an_idle_board_shows_no_figure_it_does_not_have():
    screen = text(render(snapshot(IDLE)))
    assert row(screen, "state") == ["idle"]
    for name in ("drug", "dose", "left", "empty in", "next taper step"):
        assert row(screen, name) == ["-"], name
    assert "no alarms" in screen


def alarm(id, priority, acked=False, at_ms=30_000, channel=1, code="occlusion"):
    return Alarm(id, channel, code, priority, f"message {id}", at_ms, acked)


def test_alarms_are_listed_high_first_then_unacknowledged_then_oldest_and_numbered():
    alarms = (
        alarm(1, "low", at_ms=1_000),
        alarm(2, "high", acked=True, at_ms=2_000),
        alarm(3, "medium", channel=0, code="link_lost"),
        alarm(4, "high", at_ms=50_000),
        alarm(5, "high", at_ms=40_000),
    )
    shot = snapshot(alarms=alarms)
    assert [a.id for a in shot.listed] == [5, 4, 2, 3, 1]
    screen = text(render(shot))
    lines = [line.strip("│ ").split() for line in screen.splitlines() if "message" in line]
    assert [(*w[:4], w[-3], w[-1]) for w in lines] == [
        ("1", "5", "high", "1", "20", "no"),  # age: uptime 60 s, raised at 40 s: "20 s"
        ("2", "4", "high", "1", "10", "no"),
        ("3", "2", "high", "1", "58", "yes"),
        ("4", "3", "medium", "dev", "30", "no"),
        ("5", "1", "low", "1", "59", "no"),
    ]
    assert "link_lost: message 3" in screen


def test_a_priority_this_host_does_not_know_is_listed_first():
    shot = snapshot(alarms=(alarm(1, "high"), alarm(2, "4")))
    assert [a.id for a in shot.listed] == [2, 1]


@pytest.mark.parametrize(
    ("role", "supervise_s", "says"),
    [
        ("monitor", 0, "role monitor: polling only, not supervising"),
        ("clinician", 0, "one frame: not supervising the link"),
    ],
)
def test_the_screen_says_whether_this_session_supervises(role, supervise_s, says):
    assert says in text(render(snapshot(role=role, supervise_s=supervise_s)))


def test_a_lost_link_shows_the_device_and_the_problem_but_no_stale_figure():
    screen = text(
        render(device=DEVICE, role="clinician", problem="link lost: no answer", keys="keys: q")
    )
    assert "board emulator" in screen and "link lost: no answer" in screen
    assert "keys: q" in screen
    assert "channel 1" not in screen and "alarms" not in screen


def test_the_frame_fits_a_terminal_of_80_columns():
    screen = text(render(snapshot(alarms=(alarm(1, "high"),))), width=80)
    assert max(len(line) for line in screen.splitlines()) <= 80
    assert row(screen, "drug") == ["norepinephrine", "-"]


def _tapering_with_an_alarm():
    tapering = status(
        1,
        "tapering",
        dose=Decimal("0.08"),
        volume_infused_ml=Decimal("10.180541"),
        volume_left_ml=Decimal("39.819459"),
        taper_next_in_s=Decimal(655),
        taper_next_dose=Decimal("0.06"),
    )
    vaso = status(2, drug="vasopressin", dose=Decimal("0.03"), dose_unit="units/min")
    return snapshot(tapering, vaso, alarms=(alarm(1, "high", channel=2),))


@pytest.mark.parametrize("width", [40, 52, 64])
def test_a_narrow_terminal_stacks_the_channels_and_alarms_and_cuts_no_figure(width):
    # rich fits a table to a narrow screen by cutting cells ("mcg/kg...", "2.1909...")
    # and dropping the alarm's column: a dose, a volume or an alarm without its name.
    screen = text(render(_tapering_with_an_alarm()), width=width)
    assert "\u2026" not in screen, screen
    assert max(len(line) for line in screen.splitlines()) <= width
    flat = " ".join(screen.replace("│", " ").split())  # lines joined, panel edges gone
    for shown in (
        "0.08 mcg/kg/min",
        "0.03 units/min",
        "10.180541 mL",
        "39.819459 mL",
        "to 0.06 mcg/kg/min",
        "tapering",
        "norepinephrine",
        "vasopressin",
        "occlusion",
        "high",
    ):
        assert shown in flat, (shown, screen)


def test_a_terminal_of_80_columns_keeps_the_channels_side_by_side():
    screen = text(render(_tapering_with_an_alarm()), width=80)
    assert row(screen, "drug") == ["norepinephrine", "vasopressin"]
    assert "#   id" in " ".join(screen.split("│"))  # the alarms' table, not stacked


def test_an_invalid_library_is_said_on_the_identity_line():
    # info says INVALID; the clinician's screen must too: nothing starts on this pump
    bad = Snapshot(DEVICE, "clinician", 2, 60_000, (status(), IDLE), (), library_problems=3)
    line = next(x for x in text(render(bad)).splitlines() if x.startswith("library "))
    assert "INVALID: 3 problems, every start refused" in line
    good = next(x for x in text(render(snapshot())).splitlines() if x.startswith("library "))
    assert "INVALID" not in good
