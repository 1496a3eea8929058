"""pumpguard's pytest plugin: options, ini keys and hooks (the fixtures are in
``fixtures.py``).

Without a port every test that takes a pump fixture runs on a fresh emulator, once per
emulator runtime (ids ``[cpython]``, ``[micropython]``). With ``--pump-port`` (or the
ini key ``pump_port``, or labgrid's ``--lg-env``) the same tests drive the boards
instead (ids ``[<board>]``): before any test runs, every port must answer HELLO as the
board ``--pump-board`` names, else the run stops with one error naming the port; with
several ports, pytest-xdist runs exactly one worker per board (``-n <ports>``: worker
gwN drives the N-th port). Tests marked ``needs_emulator`` (and the ``emulator``
fixture) are skipped on a board; after each test on a board every channel is
emergency-stopped and every alarm acknowledged.

The JUnit report (``--junitxml``) gets each board's identity as testsuite properties;
a failing test's report gets the tail of the board's event log; pytest-timeout, when
installed, stops a pump test after ``--pump-timeout`` seconds.
"""

import importlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from _pytest.junitxml import xml_key

from ..api import keys
from ..emulator import RUNTIMES
from ..errors import KeyFileError
from . import board

# The fixtures live in their own module: pytest registers it with this plugin.
pytest_plugins = ["pumpguard.testing.fixtures"]

DEFAULT_TIMEOUT_S = 120.0
# Where xdist carries what a worker learnt (the emulators it drove) to the controller.
_WORKER_TARGETS = "pumpguard_targets"
_WORKER_PORTS = "pumpguard_ports"
_WORKER_UNTIMED = "pumpguard_untimed"


@dataclass
class Settings:
    """The plugin's settings for this run: the command line's, else the ini file's."""

    ports: list[str]  # the boards' ports, [] for the emulator (filled at sessionstart)
    board: str  # the board the ports are (the emulators' board without ports)
    key: str | None  # --pump-key, absolute
    runtimes: list[str]  # the emulator runtimes to run on
    runtimes_given: bool  # --pump-runtime on the command line (refused with ports)
    timeout: float  # seconds per pump test (pytest-timeout), 0: none
    recorded: set = field(default_factory=set)  # JUnit property groups already written
    untimed: bool = False  # pump tests ran without pytest-timeout


_SETTINGS = pytest.StashKey[Settings]()


def settings(config):
    return config.stash[_SETTINGS]


def pytest_addoption(parser):
    group = parser.getgroup("pumpguard", "pumpguard boards and emulators")
    group.addoption(
        "--pump-port",
        metavar="PATH",
        action="append",
        help="run the pump tests against the board on PATH (device, PTY or pyserial URL) "
        "instead of the emulator; repeat for several boards, with pytest-xdist "
        "-n <number of ports> (ini: pump_port, one per line)",
    )
    group.addoption(
        "--pump-board",
        metavar="NAME",
        help="the board the --pump-port boards are, checked at HELLO; without a port, "
        "the emulated board (default: emulator; ini: pump_board)",
    )
    group.addoption(
        "--pump-key",
        metavar="FILE",
        help="the key file of the --pump-port board (default: PUMPGUARD_KEY, else the key "
        "store's file for its board id); with several ports the key store is the way "
        "(ini: pump_key, relative to the ini file)",
    )
    group.addoption(
        "--pump-runtime",
        choices=RUNTIMES,
        action="append",
        help="emulator runtime(s) the pump tests run on, without a port (default: all; "
        "ini: pump_runtime, one per line)",
    )
    group.addoption(
        "--pump-timeout",
        metavar="S",
        type=float,
        help=f"seconds a pump test may take before pytest-timeout stops it, 0: no limit "
        f"(default: {DEFAULT_TIMEOUT_S:g}; ini: pump_timeout)",
    )
    parser.addini("pump_port", "the boards' ports (--pump-port), one per line", "linelist")
    parser.addini("pump_board", "the board the ports are (--pump-board)", default="emulator")
    parser.addini("pump_key", "the board's key file (--pump-key)")
    parser.addini("pump_runtime", "emulator runtimes (--pump-runtime)", "linelist")
    # a string, parsed here: ini type float needs pytest 8.4, and the plugin loads in
    # whatever pytest a project that installs pumpguard has
    parser.addini("pump_timeout", "seconds per pump test (--pump-timeout)")


def _key(config):
    key = config.getoption("--pump-key")
    if key:
        return os.path.abspath(key)
    key = config.getini("pump_key")
    if key and config.inipath is not None:
        return os.path.join(config.inipath.parent, key)  # absolute when key is
    return key or None


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    # pytest finds its rootdir and ini file before it loads any plugin, so it takes the
    # value of `--pump-port /dev/ttyUSB0` for a test path (pytest issue 8846): a run
    # rooted at /dev reads none of the project's configuration. `--pump-port=PATH`
    # is one word, never a path.
    invocation = early_config.invocation_params
    words = list(invocation.args)
    for option, value in zip(words, words[1:], strict=False):
        if option not in ("--pump-port", "--pump-key") or not os.path.exists(value):
            continue
        root = early_config.rootpath
        path = Path(os.path.abspath(invocation.dir / value))
        if path.is_relative_to(root) and not invocation.dir.is_relative_to(root):
            raise pytest.UsageError(
                f"pumpguard: write {option}={value} (one word): given as two, pytest "
                f"takes {value} for a test path before it knows the option and roots the "
                f"run at {root}, reading none of this project's configuration"
            )


def _timeout(config):
    given = config.getoption("--pump-timeout")
    text = config.getini("pump_timeout")
    try:
        # unset is "" (a string key); a TOML file may give a number, 0 included
        timeout = given if given is not None else float(text if text != "" else DEFAULT_TIMEOUT_S)
    except ValueError:
        timeout = math.nan
    if not timeout >= 0:  # NaN too
        raise pytest.UsageError(
            f"pumpguard: pump timeout {text if given is None else given}: give 0 or more "
            "seconds (0: no limit)"
        )
    return timeout


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "needs_emulator: needs the emulator's hands (faults, its clock, power): skipped on a board",
    )
    config.addinivalue_line(
        "markers",
        "one_runtime(why): the test's subject is the host's (refused before anything is "
        "sent, rendered from answers already had): on emulators it runs on the run's first "
        "runtime only, on a board as ever; why says so",
    )
    runtimes = config.getoption("--pump-runtime") or config.getini("pump_runtime")
    unknown = [r for r in runtimes if r not in RUNTIMES]
    if unknown:
        raise pytest.UsageError(
            f"pumpguard: pump_runtime {', '.join(unknown)}: the runtimes are " + ", ".join(RUNTIMES)
        )
    workerinput = getattr(config, "workerinput", None)
    config.stash[_SETTINGS] = Settings(
        # a worker has the controller's list (labgrid's included), in its order
        ports=list(workerinput.get(_WORKER_PORTS, [])) if workerinput else [],
        board=config.getoption("--pump-board") or config.getini("pump_board"),
        key=_key(config),
        runtimes=[r for r in RUNTIMES if r in runtimes] if runtimes else list(RUNTIMES),
        runtimes_given=bool(config.getoption("--pump-runtime")),
        timeout=_timeout(config),
    )


def _distributed(config):
    # pytest-xdist's own test of distribution mode (absent xdist: never)
    return config.getoption("dist", "no") != "no" and bool(config.getoption("tx", None))


def _labgrid(config):
    return bool(config.getoption("--lg-env", None))  # labgrid's plugin is there, and given


def boards_given(config):
    """Whether this run drives boards (``--pump-port``, ``pump_port``, labgrid's
    ``--lg-env``), not emulators; known from ``pytest_configure`` on."""
    return bool(config.getoption("--pump-port") or config.getini("pump_port") or _labgrid(config))


def _given_ports(config):
    given = config.getoption("--pump-port") or config.getini("pump_port")
    if _labgrid(config):
        if given:
            raise pytest.UsageError(
                "pumpguard: --pump-port and --lg-env both name the boards: give one"
            )
        # farm.py, the labgrid side, imports labgrid: only a labgrid run loads it.
        farm = importlib.import_module("pumpguard.testing.farm")
        return list(farm.labgrid_ports(config))
    return list(given)


def _check_usage(config, s):
    if s.key and not s.ports:
        raise pytest.UsageError("pumpguard: --pump-key is the key file of a --pump-port board")
    if s.key and len(s.ports) > 1:
        raise pytest.UsageError(
            "pumpguard: --pump-key is one board's key file: with several --pump-port, put "
            "each board's key file in the key store (PUMPGUARD_KEYS) as <board_id>.json"
        )
    if s.key:
        try:
            keys.KeyFile.load(s.key)  # a bad one is said now, not in every test
        except KeyFileError as exc:
            raise pytest.UsageError(f"pumpguard: --pump-key: {exc}") from None
    if s.ports and s.runtimes_given:
        raise pytest.UsageError(
            "pumpguard: --pump-runtime chooses the emulator's runtimes: a board given with "
            "--pump-port runs its own firmware (leave --pump-runtime out)"
        )


@pytest.hookimpl(tryfirst=True)  # before xdist starts its workers
def pytest_sessionstart(session):
    config = session.config
    if hasattr(config, "workerinput"):
        return  # the controller checked it all
    s = settings(config)
    s.ports = _given_ports(config)
    _check_usage(config, s)
    if s.key:
        # Tests that connect by themselves find the board's key as a host does.
        os.environ["PUMPGUARD_KEY"] = s.key
    if not s.ports or config.option.collectonly:
        return
    if len(s.ports) > 1 and not _distributed(config):
        raise pytest.UsageError(
            f"pumpguard: {len(s.ports)} --pump-port need one pytest-xdist worker each: "
            f"give -n {len(s.ports)}"
        )
    found, problems = board.check_all(s.ports, s.board, s.key)
    if problems:
        raise pytest.UsageError(*problems)
    for identity in found:
        record(config, identity, identity["port"])


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_setupnodes(config, specs):
    ports = settings(config).ports
    if ports and len(specs) != len(ports):
        raise pytest.UsageError(
            f"pumpguard: {len(specs)} xdist workers for {len(ports)} --pump-port: one worker "
            f"drives one board, give -n {len(ports)}"
        )


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    node.workerinput[_WORKER_PORTS] = settings(node.config).ports


def pytest_unconfigure(config):
    s = config.stash.get(_SETTINGS, None)
    if s is not None and s.key and os.environ.get("PUMPGUARD_KEY") == s.key:
        del os.environ["PUMPGUARD_KEY"]  # set by this run (an in-process pytester run too)


def worker_port(config):
    """This process's board port (gwN drives the N-th), or None on the emulator."""
    ports = settings(config).ports
    if not ports:
        return None
    worker = getattr(config, "workerinput", {}).get("workerid", "gw0")
    return ports[int(worker.removeprefix("gw"))]


def pytest_generate_tests(metafunc):
    if "pump_target" in metafunc.fixturenames:
        s = settings(metafunc.config)
        targets = [s.board] if s.ports else s.runtimes
        one = metafunc.definition.get_closest_marker("one_runtime")
        if one is not None:
            if not (one.args and isinstance(one.args[0], str) and one.args[0].strip()):
                raise pytest.UsageError(
                    f"pumpguard: {metafunc.definition.nodeid}: one_runtime needs its reason, "
                    'one_runtime("why the device\'s runtime is not the subject")'
                )
            # What the device does is proven on every runtime; a test whose subject the
            # device's runtime never touches runs once, on the first the run has (the
            # runtime --pump-runtime names, when it names one).
            targets = targets[:1]
        metafunc.parametrize("pump_target", targets, indirect=True)


def pytest_collection_modifyitems(config, items):
    s = settings(config)
    timeout = config.pluginmanager.hasplugin("timeout")
    skip = pytest.mark.skip(reason=f"needs the emulator: the run drives {s.board} boards")
    pump_tests = [item for item in items if "pump_target" in getattr(item, "fixturenames", ())]
    for item in items:
        if s.ports and item.get_closest_marker("needs_emulator"):
            item.add_marker(skip)
    if not timeout:
        if pump_tests:  # said once, by the controller (pytest_terminal_summary)
            _flag_untimed(config)
        return
    for item in pump_tests:
        if item.get_closest_marker("timeout") is None:  # a test's own timeout wins
            item.add_marker(pytest.mark.timeout(s.timeout))


def record(config, identity, key):
    """One target's identity as JUnit testsuite properties, once per ``key``.

    ``record_testsuite_property`` is a no-op on xdist workers (pytest issue 7767: the
    controller alone writes the XML), so a worker hands its identities to the
    controller (xdist's ``workeroutput``) and the controller writes them."""
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput.setdefault(_WORKER_TARGETS, []).append((identity, key))
        return
    s = settings(config)
    xml = config.stash.get(xml_key, None)
    if xml is None or key in s.recorded:
        return
    s.recorded.add(key)
    for name in board.PROPERTIES:
        xml.add_global_property(name, identity[name])


def _flag_untimed(config):
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput[_WORKER_UNTIMED] = True
    else:
        settings(config).untimed = True


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    workeroutput = getattr(node, "workeroutput", {})
    for identity, key in workeroutput.get(_WORKER_TARGETS, []):
        record(node.config, identity, key)
    if workeroutput.get(_WORKER_UNTIMED):
        settings(node.config).untimed = True


def pytest_terminal_summary(terminalreporter, config):
    s = settings(config)
    if s.untimed:
        terminalreporter.write_line(
            f"pumpguard: pytest-timeout is not installed, so --pump-timeout ({s.timeout:g} s) "
            "is not enforced: a silent board hangs the run (pip install pytest-timeout)",
            yellow=True,
        )


_LOGGED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    target = item.stash.get(board.TARGET, None)
    if report.failed and target is not None and not item.stash.get(_LOGGED, False):
        item.stash[_LOGGED] = True  # once per test: a failed call, then its teardown
        port, key = target()
        try:
            text = board.log_tail(port, key)
        except pytest.fail.Exception:
            # pytest-timeout's alarm, due while the log was read: here, inside the making
            # of a report, it would end the whole run (an internal error), not the test.
            text = "(no event log: the test's timeout ran out while it was being read)\n"
        report.sections.append((f"pumpguard event log of {port} (last entries)", text))
    return report
