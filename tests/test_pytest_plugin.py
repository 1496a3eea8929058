"""The pytest plugin (pumpguard.testing) as a QA engineer's own project uses it: pytest
run in a directory outside this repository (its own rootdir, none of this repository's
conftest or configuration), the boards given as the real PTY paths of two emulators."""

import importlib.metadata
import os
import shutil
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor

import pumpguard
import pytest
from pumpguard.api import keys

pytest_plugins = ["pytester"]
# The boards here are emulators of these tests' own: nothing to run on a real board.
pytestmark = [pytest.mark.system, pytest.mark.needs_emulator]

# In-process runs inside this pytest: labgrid's own plugin (installed for the farm) keeps a
# logger started once per process and refuses a second start, so it stays out of them.
_ALONE = ("-p", "no:labgrid")

BOARD_TESTS = """
import os

import pytest

def test_status(pump, pump_target):
    assert pump_target == "emulator"  # the board's name: the test id reads [emulator]
    assert pump.status(1).state == "idle"

def test_each_worker_drives_its_own_board(pump_cli, pump_port, worker_id):
    assert pump_port == os.environ["BOARDS"].split()[int(worker_id[2:])]
    assert pump_cli("status").returncode == 0

@pytest.mark.needs_emulator
def test_the_emulators_hands():
    pass

def test_the_emulator(emulator):
    pass
"""

NOREPINEPHRINE = (
    '1, "norepinephrine", "0.1", "mcg/kg/min", '
    'weight_kg="70", concentration="16 mcg/mL", volume_ml="50"'
)


@pytest.fixture(scope="module")
def boards(tmp_path_factory):
    """Two emulators standing in for two flashed boards, their key files in a key
    store of their own (as `pumpguard flash` leaves a lab's)."""
    store = tmp_path_factory.mktemp("keys")
    emulators = [
        pumpguard.Emulator(state_dir=tmp_path_factory.mktemp("board") / "state") for _ in "ab"
    ]
    try:
        with ThreadPoolExecutor(len(emulators)) as pool:
            list(pool.map(pumpguard.Emulator.start, emulators))
        for emulator in emulators:
            stored = store / f"{keys.KeyFile.load(emulator.key).board_id}.json"
            shutil.copyfile(emulator.key, stored)
            stored.chmod(0o600)
        yield store, emulators
    finally:
        for emulator in emulators:
            emulator.close()


@pytest.fixture
def lab(pytester, boards, monkeypatch):
    """The QA project's directory with BOARD_TESTS, and the two boards' ports."""
    store, emulators = boards
    ports = [emulator.port for emulator in emulators]
    monkeypatch.setenv("PUMPGUARD_KEYS", str(store))
    monkeypatch.setenv("BOARDS", " ".join(ports))
    pytester.makepyfile(test_board=BOARD_TESTS)
    return ports


def test_two_boards_run_on_two_workers_with_the_boards_in_junit(pytester, lab):
    result = pytester.runpytest_subprocess(
        "-v",
        "-n",
        "2",
        *(f"--pump-port={port}" for port in lab),
        "--pump-board",
        "emulator",
        "--junitxml=junit.xml",
    )
    result.assert_outcomes(passed=2, skipped=2)
    result.stdout.fnmatch_lines([f"rootdir: {pytester.path}"])
    result.stdout.fnmatch_lines(["*PASSED test_board.py::test_status[[]emulator[]]*"])
    assert "[cpython]" not in result.stdout.str()
    properties = ET.parse(pytester.path / "junit.xml").find("testsuite/properties")
    assert properties is not None
    found = [(p.get("name"), p.get("value")) for p in properties]
    names = ["board", "port", "board_id", "firmware", "bundle", "library"]
    names += ["library_version", "library_crc"]
    assert [name for name, _ in found] == names * 2  # one group per board, in order
    for group, port in zip((found[:8], found[8:]), lab, strict=True):
        values = dict(group)
        assert (values["board"], values["port"]) == ("emulator", port)
        assert values["firmware"] == "pumpguard " + importlib.metadata.version("pumpguard")
        assert values["library"] == "pumpguard-adult-icu-vasoactive"
        assert len(values["library_crc"]) == 8 and len(values["board_id"]) == 16


def test_more_workers_than_boards_is_a_usage_error_saying_how_many(pytester, lab):
    result = pytester.runpytest_inprocess(
        *_ALONE, "-n", "3", *(f"--pump-port={port}" for port in lab)
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*pumpguard: 3 xdist workers for 2 --pump-port*give -n 2"])


def test_a_port_given_as_two_words_is_refused_before_it_roots_the_run(pytester, lab):
    # pytest would root the run at /dev/pts and read none of the project's pytest.ini
    result = pytester.runpytest_inprocess(*_ALONE, "--pump-port", lab[0])
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*pumpguard: write --pump-port={lab[0]} (one word)*"])


def test_a_failing_test_shows_the_boards_event_log_and_a_hung_one_is_stopped(
    pytester, lab, boards, monkeypatch
):
    # The board, its key and the timeout from the ini file alone: the key store is
    # empty, and the key's path is the ini file's, run from a directory below it.
    key = pytester.path / "keys" / "board.json"
    key.parent.mkdir()
    _store, emulators = boards
    shutil.copyfile(emulators[0].key, key)
    key.chmod(0o600)
    monkeypatch.setenv("PUMPGUARD_KEYS", str(pytester.mkdir("empty")))
    ini = f"[pytest]\npump_port = {lab[0]}\npump_key = keys/board.json\npump_timeout = 1\n"
    pytester.makeini(ini)
    pytester.makepyfile(
        test_fails=f"""
import threading

def test_refused(pump):
    pump.start({NOREPINEPHRINE})
    assert pump.status(1).state == "stopped"

def test_hangs(pump):
    assert pump.status(1).state != "running"  # the last test's infusion was stopped
    threading.Event().wait()
"""
    )
    monkeypatch.chdir(pytester.mkdir("below"))
    result = pytester.runpytest_subprocess("../test_fails.py")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            f"*- pumpguard event log of {lab[0]} (last entries) -*",
            "-- boot *",
            "*decision ok started norepinephrine*",
            "*Timeout (>1.0s) from pytest-timeout*",
        ]
    )


def test_a_port_where_nothing_answers_is_one_error_and_no_test_runs(pytester, monkeypatch):
    # Nothing ever answers on this PTY, so the check's 3 attempts may be short: the
    # generous per-attempt wait of a run (ANSWER_TIMEOUT_S, 10 s) is for slow answers.
    from pumpguard.testing import board

    monkeypatch.setattr(board, "ANSWER_TIMEOUT_S", 0.5)
    pytester.makepyfile(test_board=BOARD_TESTS)
    master, slave = os.openpty()  # a PTY nobody serves
    try:
        port = os.ttyname(slave)
        result = pytester.runpytest_inprocess(*_ALONE, f"--pump-port={port}")
    finally:
        os.close(slave)
        os.close(master)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.startswith("ERROR")]
    assert len(errors) == 1, result.stderr.str()
    assert errors[0].startswith(f"ERROR: pumpguard: --pump-port {port}: no pumpguard board")
    assert "flashed" in errors[0] and "not its REPL's USB port" in errors[0]
    output = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in output and "passed" not in output and "failed" not in output


def test_without_pytest_timeout_a_pump_run_says_so_once(pytester):
    pytester.makepyfile(test_board=BOARD_TESTS)
    result = pytester.runpytest_inprocess(*_ALONE, "-p", "no:timeout", "--collect-only", "-q")
    assert result.stdout.str().count("pytest-timeout is not installed") == 1


def test_a_timeout_due_while_the_event_log_is_read_fails_the_test_not_the_run(
    pytester, lab, monkeypatch
):
    # pytest-timeout's alarm may come while a failed test's log is read (a slow board):
    # raised inside the making of the report, it once ended the run (INTERNALERROR).
    from pumpguard.testing import board

    def alarm_while_reading(port, key):
        pytest.fail("Timeout (>1.0s) from pytest-timeout.")

    monkeypatch.setattr(board, "log_tail", alarm_while_reading)
    pytester.makepyfile(test_fails="def test_fails(pump):\n    assert False\n")
    result = pytester.runpytest_inprocess(*_ALONE, "test_fails.py", f"--pump-port={lab[0]}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*(no event log: the test's timeout ran out while*"])


ONE_RUNTIME_TESTS = """
import pytest

@pytest.mark.one_runtime("the host refuses it before anything is sent")
def test_host_side(pump_target):
    pass

def test_device_side(pump_target):
    pass
"""


def test_one_runtime_runs_a_test_on_the_first_runtime_of_the_run_only(pytester):
    # collected only: the ids are the parametrization, no emulator is started
    pytester.makepyfile(test_marked=ONE_RUNTIME_TESTS)
    for given, host_side in (
        ((), ["test_host_side[cpython]"]),
        (("--pump-runtime", "micropython"), ["test_host_side[micropython]"]),
    ):
        result = pytester.runpytest(*_ALONE, "--collect-only", "-q", *given)
        ids = [line.split("::")[-1] for line in result.outlines if "::" in line]
        assert [i for i in ids if i.startswith("test_host_side")] == host_side, result.outlines
        device_side = [i for i in ids if i.startswith("test_device_side")]
        runtimes = given[1:] or pumpguard.emulator.RUNTIMES
        assert device_side == [f"test_device_side[{r}]" for r in runtimes]


def test_one_runtime_without_its_reason_is_refused(pytester):
    pytester.makepyfile(
        test_bare="import pytest\n\n@pytest.mark.one_runtime\ndef test_x(pump_target):\n    pass\n"
    )
    result = pytester.runpytest(*_ALONE, "--collect-only", "-q")
    assert result.ret != 0
    assert "one_runtime needs its reason" in "\n".join(result.outlines + result.errlines)


class _Board:
    """What board.clean() asks: two idle channels, no patient, no alarm."""

    channels = 2

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def status(self, ch):
        return type("Status", (), {"state": "idle"})()

    def patient(self):
        return pumpguard.Patient(None)

    def alarms(self):
        return []


def test_the_clean_up_waits_out_a_handshakes_hold_then_fails_loudly(monkeypatch):
    # A HELLO a test left without AUTH holds its slot HOLD_MS: the clean-up's HELLO is
    # refused busy until then, and asked again; busy for longer is the test's error.
    from pumpguard.testing import board

    busy = pumpguard.Busy("the device has no session free: busy; the command did NOT run", False)
    answers = [busy, busy, _Board()]

    def connect(port, key):
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(board, "_connect", connect)
    monkeypatch.setattr(board, "_BUSY_PAUSE_S", 0)
    board.clean("PORT", None)
    assert answers == []  # asked three times: busy, busy, then cleaned
    assert board.CLEAN_BUSY_S > board.HOLD_MS / 1000  # longer than any handshake holds

    def always_busy(port, key):
        raise busy

    monkeypatch.setattr(board, "_connect", always_busy)
    with pytest.raises(pumpguard.Busy, match=r"still busy after 0\.01 s of HELLOs") as info:
        board.clean("PORT", None, busy_wait=0.01)
    assert info.value.__cause__ is busy
