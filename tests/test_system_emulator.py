"""The emulator itself: TCP instead of a PTY, the control commands, and `make run`."""

import os
import pty
import re
import signal
import subprocess
import sys
import time

import pumpguard
import pytest

from tests.systemkit import ANSWER_TIMEOUT_S

# The emulator itself (its own processes): nothing here runs on a board.
pytestmark = [pytest.mark.system, pytest.mark.needs_emulator]


def test_tcp_link_serves_socket_urls(tmp_path):
    with pumpguard.Emulator(state_dir=tmp_path, tcp=0) as emu:
        assert emu.port.startswith("socket://127.0.0.1:")
        assert emu.key == str(tmp_path / "key.json")
        with pumpguard.connect(emu.port, key=emu.key, timeout=ANSWER_TIMEOUT_S) as pump:
            assert pump.info().board == "emulator"


def test_control_commands_answer_and_unknown_ones_fail(emulator):
    assert emulator.command("refill 1").startswith("ok")
    with pytest.raises(pumpguard.EmulatorError, match="unknown command"):
        emulator.command("explode 1")
    with pytest.raises(pumpguard.EmulatorError, match="no channel"):
        emulator.inject("occlusion", 7)
    assert [p["fault"] for p in emulator.pumps()] == [None, None]


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
    # norepinephrine 0.2 straight away: too soon. The emulator's clock runs in real time
    # between the demo's jumps, so a loaded machine may take a second or more to send it.
    assert re.search(r"next allowed in (2 min|1 min \d+ s)\)", out)
    assert "allowed range: 0.005 to 0.04 units/min" in out  # vasopressin 0.05
    assert "allowed range: 0.01 to 3 mcg/kg/min" in out  # "0.02 mg/kg/min"
    assert not re.search(r"\d{4,} ?ms", out)  # device uptimes are never shown raw
    assert "tapering in 5 steps" in out
    assert "channel 1: stopped" in out
    assert out.rstrip().endswith("scenario done")


def _emulate(*args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "pumpguard", "emulate", *args],
        capture_output=True,
        text=True,
        timeout=60,
        **kw,
    )


@pytest.mark.parametrize("port", ["99999", "-1", "http"])
def test_a_tcp_port_out_of_range_is_a_usage_error(port):
    r = _emulate("--tcp", port)
    assert r.returncode == 2
    assert "--tcp" in r.stderr and "0 to 65535" in r.stderr and "Traceback" not in r.stderr


def test_help_says_what_the_emulated_syringe_holds():
    r = _emulate("--help")
    assert "takes 10/20/50 mL" in r.stdout and "refill CH" in r.stdout
    assert "load CH ML" in r.stdout
    assert "--volume" in r.stdout  # the firmware's volume left is the one entered


def test_sigterm_removes_the_temporary_state_dir_it_made(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "pumpguard", "emulate"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    assert proc.stdout and proc.stderr
    proc.stdout.readline()
    state = re.search(r"state in (\S+)", proc.stderr.readline()).group(1)
    assert os.path.isdir(state) and state.startswith(str(tmp_path))
    proc.terminate()
    assert proc.wait(timeout=10) == 0
    assert not os.path.exists(state)


def test_sigterm_keeps_a_given_state_dir(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "pumpguard", "emulate", "--state-dir", str(tmp_path / "s")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout
    proc.stdout.readline()
    proc.terminate()
    assert proc.wait(timeout=10) == 0
    assert os.path.isdir(tmp_path / "s")


def test_a_background_job_in_a_terminal_keeps_answering(tmp_path):
    # `pumpguard emulate &` in an interactive shell: a job-control shell on a PTY starts
    # the emulator in a background process group, then input arrives on the terminal
    # (the user typing the next command). A background read of the terminal would stop
    # the emulator (SIGTTIN); it must go on serving.
    script = (
        f"set -m; {sys.executable} -m pumpguard emulate --state-dir {tmp_path}/s "
        f"> {tmp_path}/port 2>/dev/null & echo $! > {tmp_path}/pid; wait"
    )
    shell, terminal = pty.fork()
    if shell == 0:
        os.execv("/bin/bash", ["bash", "-c", script])
    try:
        port_file = tmp_path / "port"
        deadline = time.monotonic() + 120  # a loaded machine starts Python slowly
        # "key: PATH", then the port
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            assert time.monotonic() < deadline, "the emulator printed no port"
            time.sleep(0.1)
        os.write(terminal, b"status\n")  # typed at the shell's prompt
        time.sleep(1)
        key_line, port = port_file.read_text().splitlines()[:2]
        assert key_line == f"key: {tmp_path}/s/key.json"
        with pumpguard.connect(port, key=key_line[5:], timeout=ANSWER_TIMEOUT_S) as pump:
            assert pump.info().board == "emulator"
    finally:
        if (tmp_path / "pid").exists():
            os.kill(int((tmp_path / "pid").read_text()), signal.SIGKILL)
        os.waitpid(shell, 0)
        os.close(terminal)
