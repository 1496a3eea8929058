"""System-test fixtures: the emulator by default, a real board with ``--pump-port``.

    pytest -m system                                   # each test gets a fresh emulator board
    pytest -m system --pump-port /dev/ttyUSB0 --board pico     # the same tests on a board
    pytest -m system --pump-port /dev/ttyUSB0 --board pico --pump-key board.json  # its key
    pytest -m system -n 2 --pump-port /dev/ttyUSB0 --pump-port /dev/ttyUSB1 --board pico

Several boards at once: give --pump-port once per board and run pytest-xdist with as
many workers (-n) as ports; worker gwN drives the N-th port only, so no two tests ever
share a board.

With a board, tests that need the emulator's hands on the hardware (fault injection,
fast-forwarding the clock, power cycling) are skipped; the rest run as they are and
leave every channel emergency-stopped and every alarm acknowledged when done.

Keys: every emulator has keys (its ``Emulator.key``); the tests' host key store is a
directory of this test run (``PUMPGUARD_KEYS``), where each emulator's key file is put
as ``<board_id>.json``, so ``pumpguard.connect(port)`` finds it as a host finds a
flashed board's. With ``--pump-port`` the board's key file is ``--pump-key FILE``, else
``PUMPGUARD_KEY``, else the user's key store's file for the board id it names (the
keys ``pumpguard flash`` wrote there): with several ``--pump-port``, the key store it
is (one key file is one board's), so ``--pump-key`` is refused then.

Fresh, not new: each pytest worker keeps one emulator per runtime and gives every test
it after a factory reset (``Emulator.factory_reset()``: the store emptied, new syringes,
the clock from its start, the firmware booted again, its log begun anew; the reset
answers once the new boot answers). That is the state a new emulator has, without a
new Python (and Node) process per test. An emulator a test left powered off, or one
that fails its reset, is replaced by a new one.

On the emulator every system test runs twice, once per runtime: ``cpython`` (the
firmware's sources in the emulator process) and ``micropython`` (its compiled bundle
on the real MicroPython interpreter, WebAssembly under Node): the test ids end in
``[cpython]`` or ``[micropython]``. ``-m system --runtime cpython`` keeps one.
"""

import os
import shutil
import subprocess
import sys
import tempfile

import pumpguard
import pytest
from hypothesis import settings
from pumpguard.api import keys
from pumpguard.emulator import RUNTIMES

from tests.systemkit import ANSWER_TIMEOUT_S

# Hypothesis examples are judged on what they do, never on how long they take: a
# deadline only turns a loaded machine (pytest -n, CI) into a flaky failure.
settings.register_profile("pumpguard", deadline=None)
settings.load_profile("pumpguard")


def pytest_addoption(parser):
    group = parser.getgroup("pumpguard")
    group.addoption(
        "--pump-port",
        metavar="PORT",
        action="append",
        help="run the system tests against the board on PORT instead of the emulator "
        "(repeat for several boards, with pytest-xdist -n <number of ports>)",
    )
    group.addoption(
        "--pump-key",
        metavar="FILE",
        help="the key file of the --pump-port board (default: PUMPGUARD_KEY, else the "
        "key store's file for its board id); with several --pump-port the key store "
        "is the way (one file per board id), and --pump-key is refused",
    )
    group.addoption(
        "--board",
        metavar="NAME",
        default="emulator",
        help="board definition of --pump-port (default: emulator)",
    )
    group.addoption(
        "--runtime",
        choices=RUNTIMES,
        action="append",
        help="emulator runtime(s) the system tests run on (default: both)",
    )


def pytest_configure(config):
    os.environ.pop("PUMPGUARD_ROLE", None)
    ports = config.getoption("--pump-port")
    pump_key = config.getoption("--pump-key")
    if not ports:
        # Never the user's key store for emulators (a board's tests use it: its keys).
        os.environ["PUMPGUARD_KEYS"] = tempfile.mkdtemp(prefix="pumpguard-test-keys-")
        os.environ.pop("PUMPGUARD_KEY", None)
        if pump_key:
            raise pytest.UsageError("--pump-key is the key file of a --pump-port board")
        return
    if pump_key:
        if len(ports) > 1:
            raise pytest.UsageError(
                "--pump-key is one board's key file: with several --pump-port, put each "
                "board's key file in the key store (PUMPGUARD_KEYS) as <board_id>.json"
            )
        try:
            keys.KeyFile.load(pump_key)  # a bad one is said now, not in every test
        except pumpguard.KeyFileError as exc:
            raise pytest.UsageError(f"--pump-key: {exc}") from None
        os.environ["PUMPGUARD_KEY"] = os.path.abspath(pump_key)


def register_key(emulator):
    """Put the emulator's key file into the host key store, as a flash does."""
    keyfile = keys.KeyFile.load(emulator.key)
    shutil.copyfile(emulator.key, keys.store_path(keyfile.board_id))
    os.chmod(keys.store_path(keyfile.board_id), 0o600)
    return emulator


def pytest_generate_tests(metafunc):
    if "runtime" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("--runtime") or RUNTIMES
        metafunc.parametrize("runtime", [r for r in RUNTIMES if r in chosen], scope="function")


@pytest.fixture
def board_port(request):
    """This worker's board port, or None (emulator)."""
    ports = request.config.getoption("--pump-port")
    if not ports:
        return None
    worker = getattr(request.config, "workerinput", {}).get("workerid", "gw0")
    return ports[int(worker[2:]) % len(ports)]


@pytest.fixture(scope="session")
def _emulators():
    """This worker's emulators, one per runtime, reused by the emu fixture."""
    pool = {}
    yield pool
    for emulator in pool.values():
        emulator.close()


@pytest.fixture
def emu(request, tmp_path_factory, _emulators, board_port, runtime):
    """A fresh emulator board at real-time speed (tests fast-forward with emu.advance())."""
    if board_port:
        pytest.skip("needs the emulator (fault injection, virtual clock, power cycle)")
    emulator = _emulators.pop(runtime, None)
    if emulator is not None:
        try:
            if emulator.running():
                emulator.factory_reset()
                _emulators[runtime] = emulator
        except (pumpguard.EmulatorError, OSError):
            pass
        if runtime not in _emulators:
            emulator.close()
    if runtime not in _emulators:
        emulator = pumpguard.Emulator(
            board=request.config.getoption("--board"),
            state_dir=tmp_path_factory.mktemp(f"emulator-{runtime}") / "state",
            runtime=runtime,
        )
        _emulators[runtime] = register_key(emulator.start())
    return _emulators[runtime]


@pytest.fixture
def port(request, board_port, runtime):
    """The port under test: --pump-port, or a fresh emulator's PTY."""
    if board_port:
        if runtime != RUNTIMES[0]:
            pytest.skip("a board has one runtime: its tests run once")
        yield board_port
        _clean_board(board_port)
    else:
        yield request.getfixturevalue("emu").port


@pytest.fixture
def pump(port):
    with pumpguard.connect(port, timeout=ANSWER_TIMEOUT_S) as p:
        yield p


@pytest.fixture
def key(request, board_port):
    """The key file of the board under test: the emulator's; a board's --pump-key (or
    PUMPGUARD_KEY), else None (the key store's, from its flash)."""
    if board_port:
        return os.environ.get("PUMPGUARD_KEY") or None
    return request.getfixturevalue("emu").key


@pytest.fixture
def cli(port, key):
    """Run the real ``pumpguard`` command (a subprocess) on the port under test, with
    the board's key file (PUMPGUARD_KEY); ``env`` adds to or overrides its environment."""

    def run(*args, channel=1, env=None):
        argv = [sys.executable, "-m", "pumpguard", "--port", port, "--channel", str(channel)]
        # A busy CI machine answers late, never wrongly (ANSWER_TIMEOUT_S).
        env = {
            **os.environ,
            "PUMPGUARD_PORT": "",
            "PUMPGUARD_TIMEOUT": str(ANSWER_TIMEOUT_S),
            "PUMPGUARD_KEY": key or "",
            **(env or {}),
        }
        return subprocess.run(
            argv + [str(a) for a in args], capture_output=True, text=True, env=env, timeout=60
        )

    return run


def _clean_board(port):
    # A real board keeps its state between tests: stop everything, clear the alarms.
    with pumpguard.connect(port, timeout=ANSWER_TIMEOUT_S) as p:
        for ch in range(1, p.channels + 1):
            if p.status(ch).state not in ("idle", "stopped"):
                p.emergency_stop(ch, "clinician")
        for alarm in p.alarms():
            if not alarm.acked:
                p.ack(alarm.id)
