"""A drug library pushed to the emulated board (Pump.push_library, service role), an
invalid one at boot, and `pumpguard emulate --library`, on both runtimes."""

import binascii
import json
import os
import subprocess
import sys

import pumpguard
import pytest

from firmware import druglib
from tests.portable.coreview import page as log_page
from tests.systemkit import ANSWER_TIMEOUT_S, start_norepinephrine

pytestmark = pytest.mark.system

_LIBRARY = os.path.join(os.path.dirname(druglib.__file__), "druglib.json")


def _library(path, version="2026.12-push", reseal=True):
    """The shipped library as version (resealed unless told): its file and identity."""
    with open(_LIBRARY) as f:
        doc = json.load(f)
    doc["version"] = version
    if reseal:
        doc["crc32"] = f"0x{druglib.crc_of(doc):08x}"
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
    return str(path), druglib.load(path.read_text())


def _service(emu):
    return pumpguard.connect(emu.port, key=emu.key, role="service", timeout=ANSWER_TIMEOUT_S)


def test_a_push_is_refused_while_infusing_then_switches_and_is_reported(emulator, tmp_path):
    path, lib = _library(tmp_path / "lib.json")
    with (
        pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as clinician,
        _service(emulator) as pump,
    ):
        builtin = pump.device["library_crc"]
        start_norepinephrine(clinician)
        with pytest.raises(pumpguard.RefusedError) as refused:
            pump.push_library(path)
        assert refused.value.code == "library_busy"
        assert "channel 1 running" in refused.value.message
        clinician.emergency_stop(1, "clinician")
        pushed = pump.push_library(path)
        assert (pushed.name, pushed.version, pushed.crc) == (lib.name, lib.version, lib.crc)
        info = pump.info()
        assert (info.library_version, info.library_crc, info.library_problems) == (
            lib.version,
            lib.crc,
            0,
        )
        log = {e.code: e.text for e in pump.log()}
        assert lib.identity() in log["library_pushed"]
        assert lib.identity() in log["library_switched"]
        assert f"{builtin:08x}" != f"{lib.crc:08x}"
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as again:  # a new HELLO
        assert (again.device["library_version"], again.device["library_crc"]) == (
            lib.version,
            lib.crc,
        )


def test_a_power_cut_mid_push_boots_the_old_library(emulator, tmp_path):
    path, _lib = _library(tmp_path / "lib.json")
    data = (tmp_path / "lib.json").read_bytes()
    with _service(emulator) as pump:
        old = pump.device["library_crc"]
        pump._call("LIB_BEGIN", {"size": len(data), "crc": binascii.crc32(data)})
        for offset in (0, 192, 384):
            piece = data[offset : offset + 192]
            pump._call("LIB_DATA", {"offset": offset, "n": 192, "data": piece})
    emulator.power_cycle()
    with _service(emulator) as pump:
        assert pump.device["library_crc"] == old
        assert [a.code for a in pump.alarms() if a.priority == "high"] == []


def test_an_invalid_library_at_boot_alarms_and_info_says_so(emulator, tmp_path):
    path, lib = _library(tmp_path / "lib.json", reseal=False)
    emulator.power_off()
    with open(path, "rb") as f, open(os.path.join(emulator.state_dir, "druglib.json"), "wb") as g:
        g.write(f.read())
    emulator.start()  # on a new port
    env = dict(os.environ, PUMPGUARD_KEY=emulator.key, PUMPGUARD_TIMEOUT=str(ANSWER_TIMEOUT_S))
    argv = [sys.executable, "-m", "pumpguard", "--port", emulator.port, "info"]
    r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "INVALID: 1 problem, every start refused" in r.stdout
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        assert pump.info().library_problems == 1
        alarm = next(a for a in pump.alarms() if a.code == "library_refused")
        assert alarm.priority == "high"
        # the problem whole, as the refusal below says it: never cut at "(edited..."
        assert alarm.message.startswith("drug library invalid: library.crc32: bad CRC: ")
        assert alarm.message.endswith(", reseal"), alarm.message
        with pytest.raises(pumpguard.RefusedError) as refused:
            start_norepinephrine(pump)
        assert refused.value.code == "library_invalid"
        assert refused.value.message.startswith("drug library invalid: library.crc32: bad CRC")
    with open(emulator.log_path) as log:  # the console's list
        assert "library.crc32: bad CRC" in log.read()


@pytest.mark.needs_emulator  # its own emulator
def test_emulate_library_boots_with_it_and_refuses_an_invalid_one(tmp_path, pump_target):
    def bad(doc):
        del doc["drugs"]["vasopressin"]["limits"]["hard_max"]
        doc["drugs"]["dobutamine"]["concentrations"]["unit"] = "furlongs"

    with open(_LIBRARY) as f:
        doc = json.load(f)
    bad(doc)
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(doc))
    problems = druglib.load(broken.read_text()).problems
    assert len(problems) >= 3
    argv = [sys.executable, "-m", "pumpguard", "emulate", "--runtime", pump_target]
    argv += ["--state-dir", str(tmp_path / "never"), "--library", str(broken)]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert all(problem in r.stderr.splitlines() for problem in problems), r.stderr
    assert not os.path.exists(tmp_path / "never")

    path, lib = _library(tmp_path / "lib.json")
    state = tmp_path / "state"
    with pumpguard.Emulator(state_dir=state, runtime=pump_target, library=path) as emu:
        with pumpguard.connect(emu.port, key=emu.key, timeout=ANSWER_TIMEOUT_S) as pump:
            assert (pump.device["library_version"], pump.device["library_crc"]) == (
                lib.version,
                lib.crc,
            )
        emu.factory_reset()  # a new board: it starts with the library it was given, again
        with pumpguard.connect(emu.port, key=emu.key, timeout=ANSWER_TIMEOUT_S) as pump:
            assert pump.device["library_version"] == lib.version


@pytest.mark.needs_emulator  # its own emulator
def test_a_power_cycle_keeps_the_library_pushed_to_an_emulator_started_with_another(
    tmp_path, pump_target
):
    first, _ = _library(tmp_path / "first.json", version="2026.12-first")
    second, lib2 = _library(tmp_path / "second.json", version="2026.12-second")
    with pumpguard.Emulator(
        state_dir=tmp_path / "state", runtime=pump_target, library=first
    ) as emu:
        with _service(emu) as service:
            service.push_library(second)
        with pumpguard.connect(emu.port, key=emu.key, timeout=ANSWER_TIMEOUT_S) as pump:
            start_norepinephrine(pump)
        emu.power_cycle()  # a power cut, not a reflash: --library is not placed again
        with pumpguard.connect(emu.port, key=emu.key, timeout=ANSWER_TIMEOUT_S) as pump:
            device = (pump.device["library_version"], pump.device["library_crc"])
            state = pump.status(1).state
            codes = [a.code for a in pump.alarms()]
        assert device == (lib2.version, lib2.crc), device
        assert state == "running" and "store_lost" not in codes, (state, codes)
    with open(emu.log_path) as log:
        assert f"--library {first} not placed" in log.read()


def test_emulate_help_says_library_is_placed_on_the_first_start_only():
    argv = [sys.executable, "-m", "pumpguard", "emulate", "--help"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "first start only" in " ".join(r.stdout.split()), r.stdout


def test_a_valid_push_ends_the_high_library_refused_alarm_on_the_board(emulator, tmp_path):
    bad, _ = _library(tmp_path / "bad.json", version="bad", reseal=False)
    good, lib = _library(tmp_path / "good.json", version="2026.12-fix")
    emulator.power_off()
    with open(bad, "rb") as f, open(os.path.join(emulator.state_dir, "druglib.json"), "wb") as g:
        g.write(f.read())
    emulator.start()
    with pumpguard.connect(emulator.port, key=emulator.key, timeout=ANSWER_TIMEOUT_S) as clinician:
        (alarm,) = [a for a in clinician.alarms() if a.code == "library_refused"]
        clinician.ack(alarm.id)  # acknowledged, it stays listed while its condition lasts
        with _service(emulator) as service:
            assert service.push_library(good).crc == lib.crc
        # valid now: the condition is over, and the acknowledged alarm goes
        assert [a for a in clinician.alarms() if a.code == "library_refused"] == []


def test_a_board_whose_store_library_is_not_json_can_still_be_reached(emulator):
    rotten = b'{"name": "pumpguard", "drugs": '
    emulator.power_off()
    with open(os.path.join(emulator.state_dir, "druglib.json"), "wb") as g:
        g.write(rotten)
    emulator.start()
    with pumpguard.connect(emulator.port, key=emulator.key, timeout=ANSWER_TIMEOUT_S) as pump:
        assert pump.device["library_crc"] == 0  # no content, no CRC: 0, never None
        assert pump.info().library_problems == 1


def test_info_of_a_session_open_across_a_push_reports_the_library_now_active(emulator, tmp_path):
    # INFO_R carries the active library's identity: a session open while the service
    # role pushes (the monitor, a report's device identity) reports the new one, not
    # its HELLO_R's.
    path, lib = _library(tmp_path / "lib.json", "2026.12-other")
    with pumpguard.connect(emulator.port, key=emulator.key, timeout=ANSWER_TIMEOUT_S) as clinician:
        assert clinician.info().library_crc != lib.crc
        with _service(emulator) as service:
            service.push_library(path)
        info = clinician.info()
        assert (info.library, info.library_version, info.library_crc) == (
            lib.name,
            lib.version,
            lib.crc,
        )


def _journal(sh):
    """Every entry the persistent log (what LOG serves) still holds, oldest first."""
    out = []
    first = 0
    while True:
        entries, nxt = log_page(sh.journal, first, 10_000, 8)
        if not entries:
            return out
        out += entries
        first = nxt


def test_pushing_the_active_library_again_and_again_keeps_the_infusions_in_the_log():
    # Review 3: a looping service tool re-pushing the active library once logged two
    # entries a push, and within ~130 pushes the infusion's start and emergency stop
    # were gone from the persistent log a report is made from (the shell with dummy
    # ports, CPython: the log's two 16 KB segments take that many pushes to fill).
    from tests.portable.shellkit import NOREPI, ports, shell
    from tests.portable.test_library_push import _clinician, _file, _send, _service

    p = ports()
    sh = shell(p)
    sh.begin()
    clinician = _clinician(sh, p)
    assert clinician.request("START", NOREPI)[0] == "START_R"
    assert clinician.request("ESTOP", {"ch": 1, "reason": "clinician"})[0] == "ESTOP_R"
    service = _service(sh, p)
    data = _file()
    for _ in range(150):
        assert _send(service, data)[0] == "LIB_COMMIT_R"
    entries = _journal(sh)
    kinds = [e["kind"] for e in entries]
    assert "start" in kinds and "emergency_stop" in kinds, sorted({e["code"] for e in entries})
