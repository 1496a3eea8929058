"""The emulator's control commands: every argument checked, a bad one answered with what
is allowed, and nothing changed by it (issue 10, finding 8)."""

import io

import pumpguard
import pytest
from pumpguard.emulator import server

from boards import emulator
from tests.systemkit import ANSWER_TIMEOUT_S

BAD_CHANNELS = ["occlusion 0", "air -1", "empty 3", "clear x", "refill 1.0", "occlusion \u0661"]
BAD_SECONDS = ["-60", "-3600", "inf", "nan", "1e30", "86401", "1e3", "-0", "0x10", "1_000"]
BAD_ARITY = ["occlusion", "air 1 2", "advance", "advance 1 2", "silence", "silence maybe"]
BAD_ARITY += ["pumps all", "quit now", "factory-reset 1", "load 1", "load 1 2 3"]
BAD_VOLUMES = ["0", "50.0000001", "51", "-5", "1e1", "inf", "nan", "0x10", "5 mL", "1_0"]
BAD_VOLUMES += ["1" * 40, "0.0000001", "."]


@pytest.fixture
def board(tmp_path):
    b = server._Board(emulator, 1, None, str(tmp_path), run=None, out=io.StringIO())
    yield b
    b.link.close()


def _state(board):
    return (
        [(p.rate, p.held, p.capacity, p.pumped, p.fault_kind) for p in board.pumps],
        board.clock.fast_forwarding(),
        board.clock.now(),
        board.link.silent,
        board.control.quit,
        getattr(board.control, "resetting", False),  # a factory reset asked
    )


@pytest.mark.parametrize("line", BAD_CHANNELS)
def test_a_channel_out_of_1_to_n_is_refused_saying_which_are_allowed(board, line):
    before = _state(board)
    reply = board.control._apply(line.split())
    assert reply.startswith("error ") and "nothing changed" in reply
    assert "from 1 to 2" in reply  # the board's channels
    assert _state(board) == before


@pytest.mark.parametrize("seconds", BAD_SECONDS)
def test_advance_takes_finite_seconds_from_0_to_a_day_and_nothing_else(board, seconds):
    # -60 ran the clock backwards, -3600 and inf killed the firmware, 1e30 hung it; and
    # anything up to 1e9 s took the firmware a billion turns (decades of real time).
    before = _state(board)
    reply = board.control._apply(["advance", seconds])
    assert reply.startswith("error ") and "nothing changed" in reply
    assert "from 0 to 86400" in reply
    assert _state(board) == before


@pytest.mark.parametrize("line", BAD_ARITY)
def test_a_command_with_the_wrong_arguments_says_what_it_takes(board, line):
    before = _state(board)
    reply = board.control._apply(line.split())
    assert reply.startswith("error ") and "nothing changed" in reply
    assert "takes" in reply
    assert _state(board) == before


def test_the_allowed_values_are_accepted(board):
    control = board.control
    for line in ("advance 86400", "advance 0.5", "advance 1.", "advance .25", "occlusion 2"):
        assert control._apply(line.split()) == "ok " + line
    assert board.pumps[1].fault_kind == "occlusion"
    assert board.clock.fast_forwarding()


@pytest.mark.parametrize("volume", BAD_VOLUMES)
def test_load_takes_a_volume_a_syringe_of_the_board_holds_and_nothing_else(board, volume):
    before = _state(board)
    reply = board.control._apply(["load", "1", *volume.split()])
    assert reply.startswith("error ") and "nothing changed" in reply
    said = ("at most 50 mL", "to the microlitre", "takes a channel and a volume")
    assert any(s in reply for s in said), reply
    assert _state(board) == before


def test_load_takes_the_smallest_syringe_that_holds_it_and_the_next_start_keeps_it(board):
    pump = board.pumps[0]
    for volume, size in (("8", 10), ("10", 10), ("10.5", 20), ("12.25", 20), ("50", 50)):
        assert board.control._apply(["load", "1", volume]) == f"ok load 1 {volume}"
        assert (pump.held, pump.capacity) == (int(float(volume) * 1_000_000), size * 1_000_000)
    board.control._apply(["load", "1", "12.25"])
    pump.load(20_000000)  # a start programming 20 mL keeps the 12.25 loaded
    assert pump.held == 12_250000 and pump.left() == 12_250000
    pump.load(5_000000)  # the next start fills it with what it programs
    assert pump.held == 5_000000


@pytest.mark.system
def test_bad_commands_leave_a_running_emulator_as_it_was(emulator):
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        before = pump.uptime_ms()
        for seconds in BAD_SECONDS:
            with pytest.raises(pumpguard.EmulatorError, match="from 0 to 86400"):
                emulator.command(f"advance {seconds}")
        for seconds in (-60, float("inf"), float("nan")):
            with pytest.raises(pumpguard.EmulatorError, match="from 0 to 86400"):
                emulator.advance(seconds)  # never silently nothing: the emulator's error
        for line in BAD_CHANNELS:
            with pytest.raises(pumpguard.EmulatorError, match="from 1 to 2"):
                emulator.command(line)
        # The firmware lives on, its clock went neither back nor a day forward.
        assert before <= pump.uptime_ms() < before + 3_600_000
        assert [p["fault"] for p in emulator.pumps()] == [None, None]
        emulator.advance(2)
        assert pump.uptime_ms() >= before + 2000
