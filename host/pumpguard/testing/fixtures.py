"""The pytest plugin's fixtures: the port under test, a connected pump, the real command
on it, the emulator, the board's key, and the target every pump test is run on.

Every one of them takes ``pump_target``, so every test using one is parametrized:
``[cpython]`` and ``[micropython]`` on the emulator, ``[<board>]`` on a board.

Fresh, not new: each process keeps one emulator per runtime and gives every test it
after a factory reset (``Emulator.factory_reset()``: the store emptied, new syringes, the
clock from its start, the firmware booted again, answered once the new boot answers):
the state a new emulator has, without a new Python (and Node) process per test. An
emulator a test left powered off, or one that fails its reset, is replaced. An idle
emulator is not free (its firmware's loop turns every few ms: about 12% of a core for a
WebAssembly one, 3% for CPython, measured), so once the next test of this process takes
no pump fixture, the process's emulators are closed, and the next pump test starts new
ones (a few tenths of a second): a worker running other tests leaves the cores to them.

Keys: the emulators' key files go into a key store of this run (``PUMPGUARD_KEYS``,
while the emulators live), so ``pumpguard.connect(emulator.port)`` finds one as a host
finds a flashed board's, and the user's own key store is never written.
"""

import json
import os
import subprocess
import sys

import pytest

import pumpguard
from pumpguard.api import keys

from . import ANSWER_TIMEOUT_S, board
from .plugin import record, settings, worker_port

_CLI_TIMEOUT_S = 60  # one `pumpguard` command, on a loaded machine
_POOL = pytest.StashKey[dict]()  # this process's emulators by runtime (while the session is)


@pytest.fixture
def pump_target(request):
    """What this test runs on: the emulator runtime (``cpython``, ``micropython``;
    ``--pump-runtime``), or the board name (``--pump-board``) when given ports."""
    return request.param


@pytest.fixture(scope="session")
def _pumpguard_emulators(request, tmp_path_factory):
    """This process's emulators, one per runtime, reused by ``emulator``."""
    pool = {}
    request.config.stash[_POOL] = pool
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PUMPGUARD_KEYS", str(tmp_path_factory.mktemp("pumpguard-keys")))
        env.delenv("PUMPGUARD_KEY", raising=False)  # a board's, never an emulator's
        yield pool
        _close_all(pool)
        del request.config.stash[_POOL]


def _close_all(pool):
    while pool:
        pool.popitem()[1].close()


@pytest.hookimpl(trylast=True)  # after the test's own fixtures were torn down
def pytest_runtest_teardown(item, nextitem):
    # Reused only by a pump test: before any other, the pool's emulators go.
    pool = item.config.stash.get(_POOL, None)
    if pool and (nextitem is None or "pump_target" not in getattr(nextitem, "fixturenames", ())):
        _close_all(pool)


def _reused(pool, runtime):
    emulator = pool.pop(runtime, None)
    if emulator is None:
        return None
    try:
        if emulator.running():
            emulator.factory_reset()
            pool[runtime] = emulator
            return emulator
    except (pumpguard.EmulatorError, OSError):
        pass
    emulator.close()
    return None


def _new(config, tmp_path_factory, runtime):
    emulator = pumpguard.Emulator(
        board=settings(config).board,
        state_dir=tmp_path_factory.mktemp(f"emulator-{runtime}") / "state",
        runtime=runtime,
    ).start()
    emulator.register_key(keys.store_dir())  # into the run's store, as a flash does
    with pumpguard.connect(emulator.port, key=emulator.key, timeout=ANSWER_TIMEOUT_S) as pump:
        identity = board.identity(pump, emulator.port)
    # One JUnit group per kind of emulator: each process's has its own port and board id.
    kind = {k: v for k, v in identity.items() if k not in ("port", "board_id")}
    record(config, identity, json.dumps(kind, sort_keys=True))
    return emulator


@pytest.fixture
def emulator(request, tmp_path_factory, pump_target):
    """A fresh emulator board at real-time speed (a test fast-forwards with
    ``emulator.advance()``, injects faults, power-cycles it); skipped on a board."""
    if worker_port(request.config):
        pytest.skip("needs the emulator (fault injection, virtual clock, power cycle)")
    pool = request.getfixturevalue("_pumpguard_emulators")
    emulator = _reused(pool, pump_target) or _new(request.config, tmp_path_factory, pump_target)
    pool[pump_target] = emulator
    request.node.stash[board.TARGET] = lambda: (emulator.port, emulator.key)
    return emulator


@pytest.fixture
def pump_port(request, pump_target):
    """The port under test: this worker's board (gwN drives the N-th ``--pump-port``),
    cleaned after the test; or the fresh emulator's PTY."""
    port = worker_port(request.config)
    if port is None:
        yield request.getfixturevalue("emulator").port
        return
    key = request.getfixturevalue("pump_key")
    request.node.stash[board.TARGET] = lambda: (port, key)
    yield port
    board.clean(port, key)


@pytest.fixture
def pump_key(request, pump_target):
    """The key file of the board under test: the emulator's; on a board ``--pump-key``
    (or PUMPGUARD_KEY), else None (the key store's file, where its flash put it)."""
    if worker_port(request.config):
        return os.environ.get("PUMPGUARD_KEY") or None
    return request.getfixturevalue("emulator").key


@pytest.fixture
def pump(pump_port, pump_key):
    """A connected ``pumpguard.Pump`` on the port under test (the key file's default
    role), closed after the test."""
    with pumpguard.connect(pump_port, key=pump_key, timeout=ANSWER_TIMEOUT_S) as connected:
        yield connected


@pytest.fixture
def pump_cli(pump_port, pump_key):
    """Run the real ``pumpguard`` command (a subprocess) on the port under test:
    ``pump_cli(*args, channel=1, env=None)`` returns the ``CompletedProcess`` (text).
    The board's key file is PUMPGUARD_KEY, the role the key file's default; ``env``
    adds to or overrides its environment."""

    def run(*args, channel=1, env=None):
        argv = [sys.executable, "-m", "pumpguard", "--port", pump_port, "--channel", str(channel)]
        env = {
            **os.environ,
            "PUMPGUARD_PORT": "",
            "PUMPGUARD_ROLE": "",
            # A busy CI machine answers late, never wrongly.
            "PUMPGUARD_TIMEOUT": str(ANSWER_TIMEOUT_S),
            "PUMPGUARD_KEY": pump_key or "",
            **(env or {}),
        }
        return subprocess.run(
            argv + [str(a) for a in args],
            capture_output=True,
            text=True,
            env=env,
            timeout=_CLI_TIMEOUT_S,
        )

    return run
