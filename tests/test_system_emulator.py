"""The emulator itself: TCP instead of a PTY, the control commands, and `make run`."""

import re
import subprocess
import sys

import pumpguard
import pytest

pytestmark = pytest.mark.system


def test_tcp_link_serves_socket_urls(tmp_path):
    with pumpguard.Emulator(state_dir=tmp_path, tcp=0) as emu:
        assert emu.port.startswith("socket://127.0.0.1:")
        with pumpguard.connect(emu.port) as pump:
            assert pump.info().board == "emulator"


def test_control_commands_answer_and_unknown_ones_fail(emu):
    assert emu.command("refill 1").startswith("ok")
    with pytest.raises(pumpguard.EmulatorError, match="unknown command"):
        emu.command("explode 1")
    with pytest.raises(pumpguard.EmulatorError, match="no channel"):
        emu.inject("occlusion", 7)
    assert [p["fault"] for p in emu.pumps()] == [None, None]


def test_unknown_board_is_a_usage_error():
    r = subprocess.run(
        [sys.executable, "-m", "pumpguard", "emulate", "--board", "toaster"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert "unknown board 'toaster'" in r.stderr


def test_ports_lists_without_failing():
    r = subprocess.run(
        [sys.executable, "-m", "pumpguard", "ports"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0


def test_make_run_scenario_plays_to_the_end():
    r = subprocess.run(
        [sys.executable, "-m", "pumpguard.demo"], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    out = r.stdout
    # The refusals, by what the host prints of them (the core words their messages):
    assert "next allowed in 2 min" in out  # norepinephrine 0.2 straight away: too soon
    assert "allowed range: 0.005 to 0.04 units/min" in out  # vasopressin 0.05
    assert "allowed range: 0.01 to 3 mcg/kg/min" in out  # "0.02 mg/kg/min"
    assert not re.search(r"\d{4,} ?ms", out)  # device uptimes are never shown raw
    assert "tapering in 5 steps" in out
    assert "channel 1: stopped" in out
    assert out.rstrip().endswith("scenario done")
