"""The emulator's life around the firmware (issue 10, finding 8): ready means ready, it
ends with its owner, and a factory reset gives a new board on the same port.

Slow and silent boots are made so on purpose (a runner that waits, or never turns the
loop) in an emulator started by a small script: how fast this machine boots the real
firmware never decides a result here.
"""

import os
import select
import signal
import subprocess
import sys
import time

import pumpguard
import pytest

from tests.systemkit import ANSWER_TIMEOUT_S, start_norepinephrine

# The emulator itself (its own processes): nothing here runs on a board.
pytestmark = [pytest.mark.system, pytest.mark.needs_emulator]

# serve() with a firmware runner held in its boot until the test lets it go on (fds
# argv[2], argv[3]): as long as a loaded machine may make a boot, and longer than a
# host's connect() waits, without the test waiting out a fixed time.
_SLOW_BOOT = """
import os, sys
from pumpguard.emulator import server

in_process = server.in_process
held, release = int(sys.argv[2]), int(sys.argv[3])

def slow(firmware_run):
    run = in_process(firmware_run)
    def booting(board, ports, boot_id):
        os.write(held, b"booting\\n")
        os.read(release, 1)
        return run(board, ports, boot_id)
    return booting

server.in_process = slow
server.serve(state_dir=sys.argv[1])
"""

# `pumpguard emulate` over a firmware that prints and never serves its link.
_SILENT = """
import sys
from pumpguard.cli import main
from pumpguard.emulator import server

def silent(firmware_run):
    def run(board, ports, boot_id):
        print("firmware: stuck before its loop")
        while True:
            ports["watchdog"].feed()
            ports["clock"].sleep_ms(1)
    return run

server.in_process = silent
server.READY_TIMEOUT_S = 3
sys.exit(main.main(["emulate", "--state-dir", sys.argv[1]]))
"""

# An owner: starts an Emulator, says its pid, and waits to be killed.
_OWNER = """
import sys, time
import pumpguard

emu = pumpguard.Emulator(state_dir=sys.argv[1], runtime=sys.argv[2]).start()
print(emu._proc.pid, flush=True)
time.sleep(600)
"""


def test_the_port_is_printed_only_once_the_firmware_answers(tmp_path):
    held_r, held_w = os.pipe()
    release_r, release_w = os.pipe()
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_BOOT, str(tmp_path / "state"), str(held_w), str(release_r)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        pass_fds=(held_w, release_r),
    )
    os.close(held_w)
    os.close(release_r)
    assert proc.stdout
    try:
        with os.fdopen(held_r) as held:
            assert held.readline() == "booting\n"  # the firmware is held in its boot
        # Nothing is printed while it cannot answer: neither its key nor its port. (A
        # second to look: a correct emulator prints nothing however long it is held.)
        printed = select.select([proc.stdout], [], [], 1.0)[0]
        assert not printed, "printed while the firmware is held in its boot"
        os.write(release_w, b"go")
        key = proc.stdout.readline().strip().removeprefix("key: ")
        port = proc.stdout.readline().strip()
        # The tests' usual connect: the firmware is up already, not still booting.
        with pumpguard.connect(port, key=key, timeout=ANSWER_TIMEOUT_S) as pump:
            assert pump.info().board == "emulator"
    finally:
        os.close(release_w)
        proc.terminate()
        proc.wait(timeout=30)


def test_a_firmware_that_never_answers_is_an_error_naming_the_runtime_and_what_it_printed(
    tmp_path,
):
    r = subprocess.run(
        [sys.executable, "-c", _SILENT, str(tmp_path / "state")],
        stdin=subprocess.DEVNULL,  # not a pipe that ends: that is its owner gone
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (r.returncode, r.stdout) == (1, "")  # no port for a board nobody answers on
    assert "pumpguard: the firmware on the cpython runtime did not answer on /dev/" in r.stderr
    assert "firmware: stuck before its loop" in r.stderr
    assert "Traceback" not in r.stderr


def test_an_emulator_that_cannot_start_is_an_error_quoting_its_log(emulator, pump_target):
    second = pumpguard.Emulator(state_dir=emulator.state_dir, runtime=pump_target)
    with pytest.raises(pumpguard.EmulatorError) as info:
        second.start()
    second.close()
    assert "in use by another emulator" in str(info.value)
    assert f"({pump_target} runtime) exited with 2" in str(info.value)


def _gone(pid):
    """Whether process pid has exited (a zombie nobody reaped has)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_an_emulator_whose_owner_was_killed_stops_by_itself(tmp_path, pump_target):
    owner = subprocess.Popen(
        [sys.executable, "-c", _OWNER, str(tmp_path / "state"), pump_target],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert owner.stdout
    pid = int(owner.stdout.readline())
    try:
        owner.kill()  # SIGKILL: the owner cannot say goodbye
        owner.wait()
        deadline = time.monotonic() + 60  # generous: this only bounds a broken run
        while not _gone(pid):
            assert time.monotonic() < deadline, "the emulator runs on without its owner"
            time.sleep(0.2)
    finally:
        if not _gone(pid):
            os.kill(pid, 9)
        owner.stdout.close()


def test_a_factory_reset_gives_a_new_board_on_the_same_port(emulator):
    port = emulator.port
    with pumpguard.connect(port, timeout=ANSWER_TIMEOUT_S) as pump:
        start_norepinephrine(pump)
        emulator.inject("occlusion", 2)
        emulator.advance(120, keepalive=pump.uptime_ms)
    emulator.command("silence on")
    open(emulator.state_dir + "/safeboot", "wb").close()  # would hold a boot at its REPL
    emulator.factory_reset()
    assert emulator.port == port
    assert "safeboot" not in os.listdir(emulator.state_dir)
    assert (
        emulator.pumps()
        == [{"rate": 0, "left": 50_000000, "syringe": 50_000000, "pumped": 0, "fault": None}] * 2
    )
    with pumpguard.connect(port, timeout=ANSWER_TIMEOUT_S) as pump:  # the line carries again
        assert [pump.status(ch).state for ch in (1, 2)] == ["idle", "idle"]
        assert pump.alarms() == []
        assert pump.uptime_ms() < 60_000  # a first boot: no uptime restored
        assert pump.info().counters["bad_crc"] == 0
    with open(emulator.log_path) as log:
        text = log.read()
    assert text.startswith("emulator: factory reset")  # the log begins anew


def _emulate(argv, **kw):
    proc = subprocess.Popen(
        [*argv, sys.executable, "-m", "pumpguard", "emulate"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )
    assert proc.stdin and proc.stdout and proc.stderr
    return proc


def test_the_terminal_hanging_up_quits_it_and_removes_its_temporary_state_dir(tmp_path):
    # A person's terminal closed: SIGHUP, as to every program in it. It quits cleanly.
    proc = _emulate([], env={**os.environ, "TMPDIR": str(tmp_path)})
    proc.stdout.readline()
    state = proc.stderr.readline().split("state in ")[1].strip()
    proc.send_signal(signal.SIGHUP)
    assert proc.wait(timeout=30) == 0
    assert not os.path.exists(state)


def test_started_with_nohup_it_outlives_its_terminal(tmp_path):
    proc = _emulate(["nohup"], cwd=tmp_path)
    try:
        assert proc.stdout.readline().startswith("key: ")
        proc.stdout.readline()  # the port
        proc.send_signal(signal.SIGHUP)
        proc.stdin.write("pumps\n")
        proc.stdin.flush()
        assert proc.stdout.readline().startswith("[")  # still there, still answering
    finally:
        proc.terminate()
        proc.wait(timeout=30)
