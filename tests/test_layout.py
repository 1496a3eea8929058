"""The tree's own rules (issue 8, ARCHITECTURE.md): which package may import which, one
error tree for the host, no module too long to read, and every module named in
ARCHITECTURE.md with the side that owns it."""

import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pumpguard
import pytest

ROOT = Path(__file__).resolve().parents[1]
# The top-level packages, by where their sources live.
PACKAGES = {
    "firmware": ROOT / "firmware",
    "protocol": ROOT / "protocol",
    "boards": ROOT / "boards",
    "pumpguard": ROOT / "host" / "pumpguard",
}
# The one module allowed to put the parts together: it imports the firmware and boards/.
COMPOSITION_ROOT = ROOT / "firmware" / "main.py"
# Who may import whom (besides itself), the composition root left out: protocol is the
# bottom (both sides), the firmware and the boards build on it, the host on everything.
LAYERS = {
    "protocol": set(),
    "firmware": {"protocol"},
    "boards": {"protocol"},  # the emulated hardware names the wire's alarm levels
    "pumpguard": {"firmware", "protocol", "boards"},
}
MAX_LINES = 500


def _modules():
    # Each module once, where its source lives: host/pumpguard/_board/ holds links to the
    # board's packages (pumpguard._board.*), not modules of its own but its __init__.py.
    for package, path in PACKAGES.items():
        for source in sorted(path.rglob("*.py")):
            if not source.is_symlink():
                yield package, source


def _package(name):
    """The package a module name belongs to: the host's pumpguard._board.<name> is the
    board's <name>, as the board's own code names it."""
    parts = name.split(".")
    return parts[2] if parts[:2] == ["pumpguard", "_board"] and len(parts) > 2 else parts[0]


def _imported_packages(source):
    """The top-level packages a module imports, at any depth in the module (a lazy
    import inside a function counts as much as one at the top)."""
    found = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            found.update(_package(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            found.update(_package(name) for name in names)
    return found & set(PACKAGES)


def test_packages_import_only_the_layers_below_them():
    wrong = []
    for package, source in _modules():
        if source == COMPOSITION_ROOT:
            continue
        for other in _imported_packages(source) - {package} - LAYERS[package]:
            wrong.append(f"{source.relative_to(ROOT)} imports {other}")
    assert not wrong, wrong


def test_no_import_cycle_between_packages_with_the_composition_root_counted():
    # firmware/main.py is the firmware's one way into boards/: so nothing in boards/
    # may import the firmware back (boards/pico.py once took its drivers from it).
    edges = {package: set() for package in PACKAGES}
    for package, source in _modules():
        edges[package] |= _imported_packages(source) - {package}

    def reaches(start, goal, seen=()):
        return any(
            step == goal or (step not in seen and reaches(step, goal, (*seen, step)))
            for step in edges[start]
        )

    assert [p for p in PACKAGES if reaches(p, p)] == []
    assert _imported_packages(COMPOSITION_ROOT) == {"firmware", "boards"}


def _host_modules():
    yield pumpguard
    for info in pkgutil.walk_packages(pumpguard.__path__, "pumpguard."):
        # __main__ would start the CLI; pumpguard._board.* is the board's code (its own
        # errors are the firmware's), but for the host code kept in boards/
        if info.name != "pumpguard.__main__" and not info.name.startswith("pumpguard._board."):
            yield importlib.import_module(info.name)
    yield importlib.import_module("pumpguard._board.boards.emulator.hardware")


def test_every_error_the_host_package_raises_on_purpose_is_a_pumpguard_error():
    # Control-flow signals that must unwind through the firmware (the emulator's quit,
    # a watchdog reset, an error of the emulator's own carried out of the firmware's
    # loop) are BaseExceptions like SystemExit, not errors: no `except Exception` in
    # the firmware may swallow them. Every Exception class is under PumpguardError.
    errors, signals = [], []
    for module in _host_modules():
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__ or not issubclass(cls, BaseException):
                continue
            if issubclass(cls, Exception):
                if not issubclass(cls, pumpguard.PumpguardError):
                    errors.append(f"{module.__name__}.{name}")
            else:
                signals.append(name)
    assert errors == []
    assert sorted(signals) == ["WatchdogReset", "_EmulatorFault", "_FactoryReset", "_Quit"]


@pytest.mark.parametrize(
    "source",
    [s for _, s in _modules()] + sorted((ROOT / "host").rglob("*.mjs")),
    ids=lambda s: str(s.relative_to(ROOT)),
)
def test_no_module_is_over_500_lines(source):
    assert len(source.read_text().splitlines()) <= MAX_LINES


def test_architecture_names_every_module_and_its_owner():
    text = (ROOT / "ARCHITECTURE.md").read_text()
    missing = []
    for _, source in _modules():
        rel = source.relative_to(ROOT)
        if source.name == "__init__.py" and not source.read_text().strip():
            continue  # an empty package marker
        if str(rel) not in text:
            missing.append(str(rel))
    for source in sorted((ROOT / "host").rglob("*.mjs")):
        if str(source.relative_to(ROOT)) not in text:
            missing.append(str(source.relative_to(ROOT)))
    assert missing == []


def test_const_has_one_stand_in_on_cpython():
    # MicroPython code writes `from micropython import const`; CPython finds the one
    # stand-in module (host/micropython.py): pumpguard._board.micropython in the host
    # package (a link to it here), the top-level micropython of the checkout's tests.
    defined = [
        str(source.relative_to(ROOT))
        for source in sorted(ROOT.rglob("*.py"))
        if not {".venv", "node_modules", "build"} & set(source.relative_to(ROOT).parts)
        and not source.is_symlink()
        and re.search(r"^\s*def const\(", source.read_text(), re.MULTILINE)
    ]
    assert defined == ["host/micropython.py"]


def test_the_version_is_written_once():
    import importlib.metadata

    import firmware
    from firmware.handlers import FIRMWARE_VERSION

    assert importlib.metadata.version("pumpguard") == firmware.VERSION
    assert FIRMWARE_VERSION == "pumpguard " + firmware.VERSION
    assert 'dynamic = ["version"]' in (ROOT / "pyproject.toml").read_text()


def test_a_hung_test_is_stopped_not_waited_for(pytestconfig):
    # pytest-timeout: a board (or emulator) that never answers fails its test, never
    # hangs the run (CI has 90 minutes in all).
    assert float(pytestconfig.getini("timeout")) > 0


def _functions(tree):
    """(class name or None, function name, node) of every function in a module."""
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    yield node.name, item.name, item
        elif isinstance(node, ast.FunctionDef):
            yield None, node.name, node


def test_only_the_transition_table_writes_a_channel_s_state():
    # Channel.fire() is the one writer (a restore fires its way to the saved state);
    # besides it, only a new channel's IDLE.
    writers = set()
    for source in sorted((ROOT / "firmware").rglob("*.py")):
        for cls, name, func in _functions(ast.parse(source.read_text())):
            for node in ast.walk(func):
                targets = node.targets if isinstance(node, ast.Assign) else []
                if any(isinstance(t, ast.Attribute) and t.attr == "state" for t in targets):
                    writers.add((source.name, cls, name))
    assert writers == {
        ("channel.py", "Channel", "__init__"),
        ("channel.py", "Channel", "fire"),
    }


def test_the_core_decides_in_order_and_every_refusal_is_a_rule():
    # core.py says which checks apply and in which order; it builds no refusal itself
    tree = ast.parse((ROOT / "firmware" / "core.py").read_text())
    built = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id == "refuse")
            or (
                isinstance(node.func, ast.Name)
                and node.func.id == "Result"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and node.args[0].value is False
            )
        )
    ]
    assert built == []


def test_every_package_is_in_the_distribution():
    # A subpackage missing from pyproject.toml is missing from `pip install .`: a wheel
    # without firmware/rules/ builds bundles that cannot boot. (make installs editable,
    # which would never show it.) The board's packages ship as pumpguard._board.*, and
    # nothing else is at the top (tests/test_install.py installs the wheel and looks).
    import tomllib

    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = set()
    for package, path in PACKAGES.items():
        for init in path.rglob("__init__.py"):
            rel = init.parent.relative_to(path).parts
            top = ("pumpguard",) if package == "pumpguard" else ("pumpguard", "_board", package)
            found.add(".".join((*top, *rel)))
    assert set(setuptools["packages"]) == found
    assert "py-modules" not in setuptools
    links = ROOT / "host" / "pumpguard" / "_board"
    for name in ("firmware", "protocol", "boards"):
        assert (links / name).resolve() == PACKAGES[name]
    assert (links / "micropython.py").resolve() == ROOT / "host" / "micropython.py"
