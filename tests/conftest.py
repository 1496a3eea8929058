"""What this project's tests add to the pytest plugin (pumpguard.testing, loaded by
its entry point: the options, the fixtures pump_port, pump, pump_cli, emulator,
pump_key, pump_target, and the marker needs_emulator are its own, see README's
"Hardware in the loop")."""

import os
import tempfile
import weakref

import pumpguard
import pytest
from hypothesis import settings
from pumpguard.testing import board
from pumpguard.testing import fixtures as plugin_fixtures
from pumpguard.testing.plugin import boards_given, worker_port

# Hypothesis examples are judged on what they do, never on how long they take: a
# deadline only turns a loaded machine (pytest -n, CI) into a flaky failure.
settings.register_profile("pumpguard", deadline=None)
settings.load_profile("pumpguard")


def pytest_configure(config):
    # The tests speak as each key file's default role, whatever the shell exported.
    os.environ.pop("PUMPGUARD_ROLE", None)
    if not boards_given(config):
        # Tests that flash, rotate or save keys write the key store: never the user's
        # on an emulator run (a board's run uses it: its keys).
        os.environ["PUMPGUARD_KEYS"] = tempfile.mkdtemp(prefix="pumpguard-test-keys-")
        os.environ.pop("PUMPGUARD_KEY", None)


@pytest.fixture(scope="session")
def _pumpguard_emulators(tmp_path_factory):
    """The plugin's pool of this process's emulators (one per runtime, see
    pumpguard.testing.fixtures), kept for the whole session. The plugin closes it before
    each test that takes no pump fixture (an idle emulator is not free), and the next
    pump test starts new ones; but idle, the two cost 0.5% of a core (0.35% WebAssembly,
    0.15% CPython: boards/emulator/hardware.py's IDLE_MAX_MS), and a start 0.74 s and
    0.15 s of CPU (measured): the 90-odd starts of a make test cost more than the
    pool idling through all of it. Unlike the plugin's, this pool is not in the config's
    stash, so its hook that closes the pool finds none."""
    pool = {}
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PUMPGUARD_KEYS", str(tmp_path_factory.mktemp("pumpguard-keys")))
        env.delenv("PUMPGUARD_KEY", raising=False)  # a board's, never an emulator's
        yield pool
        plugin_fixtures._close_all(pool)


# The pool's emulators that, since their last factory reset (or start), only served
# tests that treat them as a board: tests that take the port, the key, a pump or the CLI
# (pump_port, pump_key, pump, pump_cli), never the emulator itself, and are not marked
# needs_emulator (which a board's run skips). Such a test is written to run on a real
# board (--pump-port, make farm) with nothing between tests but the plugin's clean-up
# (board.clean(): every channel emergency-stopped, every alarm acknowledged): given one
# of these emulators cleaned as a board is, it runs as it does on a board, and the
# factory reset is saved (a boot of the whole firmware: 0.6 s of CPU on the WebAssembly
# runtime, measured; the system tests that run on boards passed so, in file order, on
# one WebAssembly emulator). A test that takes the emulator (faults, its clock, power,
# its store) or needs one gets it factory reset, as the plugin gives it, and the
# emulator is no board's after it until its next reset. Each is mapped to the last test
# that used it so (the one whose leavings the next clean-up meets).
_AS_BOARD = weakref.WeakKeyDictionary()


def _as_board(pool, runtime):
    """The pool's emulator of runtime cleaned as a board is between tests, or None when
    it has no such emulator. A clean-up that fails is this test's setup error naming the
    test that left the emulator so: on a board the same clean-up fails that test's
    teardown (the plugin's pump_port), so it is a broken clean-up or a test that leaves a
    board unusable, never a reason for a quiet factory reset that would hide it."""
    emu = pool.get(runtime)
    if emu is None or emu not in _AS_BOARD or not emu.running():
        return None
    left_by = _AS_BOARD.pop(emu)  # once failed, the next test gets it factory reset
    try:
        board.clean(emu.port, emu.key)
    except pumpguard.PumpguardError as exc:
        pytest.fail(
            f"board.clean() of the {runtime} emulator that {left_by} left failed: {exc} "
            "(on a board that test's teardown fails so)",
            pytrace=False,
        )
    return emu


@pytest.fixture
def emulator(request, tmp_path_factory, pump_target):
    """The plugin's ``emulator`` (a fresh emulator board at real-time speed: see
    pumpguard.testing.fixtures), but for a test that takes only the port, the key, a pump
    or the CLI: that one may get the emulator the last such test left, cleaned as a
    board is (_AS_BOARD above)."""
    if worker_port(request.config):
        pytest.skip("needs the emulator (fault injection, virtual clock, power cycle)")
    pool = request.getfixturevalue("_pumpguard_emulators")
    # the test takes the emulator itself, or says it needs one (a fresh board: idle
    # channels, no other session), and so is never run on a board
    node = request.node
    hands = "emulator" in node.fixturenames or node.get_closest_marker("needs_emulator")
    emu = None if hands else _as_board(pool, pump_target)
    if emu is None:
        emu = plugin_fixtures._reused(pool, pump_target) or plugin_fixtures._new(
            request.config, tmp_path_factory, pump_target
        )
        pool[pump_target] = emu
    if hands:
        _AS_BOARD.pop(emu, None)
    else:
        _AS_BOARD[emu] = node.nodeid
    request.node.stash[board.TARGET] = lambda: (emu.port, emu.key)
    return emu
