"""`pumpguard flash` with no board to flash: the mpremote commands it runs, in order, and what
each failure says. Its last step, the check over the protocol, runs for real against
the MicroPython emulator in test_system_runtime.py."""

import io
import os
import re
import subprocess
import sys
import types

import pumpguard
import pytest
from pumpguard._board import boards  # the registry the flasher reads
from pumpguard.api import keys
from pumpguard.deploy import abi, bundle, flash
from pumpguard.deploy.flash import Flasher, FlashError, FlashRefused
from pumpguard.errors import UsageError

from tests.systemkit import ANSWER_TIMEOUT_S, start_norepinephrine


def _compiled_for():
    found = re.search(
        r"MicroPython v(\d+)\.(\d+)\.(\d+).*mpy v(\d+)\.(\d+)", bundle.mpy_cross_version()
    )
    assert found, bundle.mpy_cross_version()
    return tuple(int(n) for n in found.groups())


_MAJOR, _MINOR, _MICRO, _MPY, _MPY_SUB = _compiled_for()
# What a Pico running the MicroPython of this mpy-cross says to abi.QUERY: armv6m is
# native arch 4 (bits 10-13 of _mpy).
PICO_SAYS = (
    "micropython",
    (_MAJOR, _MINOR, _MICRO),
    _MPY | _MPY_SUB << 8 | 4 << 10,
    "Raspberry Pi Pico with RP2040",
)


class FakeMpremote:
    """Records each ``mpremote connect PORT ...`` call; fails the ones asked to. A board
    asked what it runs (``capture``) says ``board``."""

    def __init__(self, fail=(), board=PICO_SAYS):
        self.calls = []
        self.fail = fail
        self.board = board

    def __call__(self, port, *args, cwd=None):
        self.calls.append((port, args, cwd))
        return 1 if any(word in args for word in self.fail) else 0

    def capture(self, port, *args):
        return self(port, *args), repr(self.board) + "\n"


class FakePump:
    channels = 0  # nothing infuses

    def __init__(self, device):
        self.device = device

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


BOARD_ID = "0123456789abcdef"


def _device(manifest, **changes):
    device = {
        "board_id": BOARD_ID,
        "firmware": manifest["firmware"],
        "bundle": manifest["bundle"],
        "library_crc": manifest["library"]["crc"],
        "board": manifest["board"],
    }
    device.update(changes)
    return device


def _flasher(run, device=None, link="/dev/ttyUSB0"):
    seen = {}

    def connect(port, **kw):
        seen["link"] = port
        seen.setdefault("connects", []).append(kw)
        return FakePump(device(seen["manifest"]) if device else {"board_id": BOARD_ID})

    f = Flasher("pico", "/dev/ttyACM0", link=link, run=run, connect=connect, out=io.StringIO())
    real_build = f.build

    def build(out_dir):
        seen["manifest"] = real_build(out_dir)
        return seen["manifest"]

    f.build = build
    return f, seen


def test_a_flash_runs_every_step_in_order_and_checks_the_link():
    run = FakeMpremote()
    f, seen = _flasher(run, device=_device)
    manifest = f.flash()
    commands = [args[:2] for _port, args, _cwd in run.calls]
    assert commands == [
        ("exec", abi.QUERY),  # the board answers on USB, saying which MicroPython it runs
        ("exec", "--no-follow"),  # safeboot file + reset
        ("exec", "pass"),  # back at its REPL
        ("fs", "cp"),  # the copy (identical files skipped by mpremote) + cleanup
        ("reset",),
    ]
    assert all(port == "/dev/ttyACM0" for port, _args, _cwd in run.calls)
    assert "/state" in run.calls[1][1][2] and "safeboot" in run.calls[1][1][2]
    _port, cp, cwd = run.calls[3]
    assert cp[:3] == ("fs", "cp", "-r") and cp[-3:-1] == ("+", "exec")
    assert sorted(cp[3 : cp.index(":")]) == [
        "boards",
        "firmware",
        "main.py",
        "manifest.json",
        "protocol",
    ]
    assert "removed stale" in cp[-1] and "safeboot" in cp[-1]
    assert cwd  # the bundle directory
    assert seen["link"] == "/dev/ttyUSB0"
    # The keys: into the board's store, and the host key store (the board's id kept),
    # the link steps speaking as service.
    assert cp[cp.index(":") + 1 : cp.index(":") + 4] == ("+", "fs", "cp")
    assert cp[cp.index(":") + 5] == "/state/keys".join((":", ""))
    stored = keys.KeyFile.load(keys.store_path(BOARD_ID))
    assert stored.roles == ("monitor", "clinician", "service")
    assert oct(os.stat(stored.path).st_mode & 0o777) == "0o600"
    assert not os.path.exists(stored.path + ".new")
    assert [kw["role"] for kw in seen["connects"]] == ["service", "service"]
    assert seen["connects"][1]["key"].keys == stored.keys
    progress = f._out.getvalue()
    assert [line[:5] for line in progress.splitlines()[:5]] == [
        "[1/5]",
        "[2/5]",
        "[3/5]",
        "[4/5]",
        "[5/5]",
    ]
    assert manifest["bundle"][:8] in progress.splitlines()[-1]


def test_a_failed_copy_names_its_step_and_what_to_do():
    f, _seen = _flasher(FakeMpremote(fail=("cp",)), device=_device)
    with pytest.raises(FlashError, match=r"step 3/5 \(copy\).*run the same command again"):
        f.flash()


def test_an_unreachable_board_fails_at_the_repl_step():
    f, _seen = _flasher(FakeMpremote(fail=("exec",)), device=_device)
    with pytest.raises(FlashError, match=r"step 2/5 \(repl\).*--port"):
        f.flash()


@pytest.mark.parametrize(
    "change, said",
    [
        (lambda m: {"firmware": "pumpguard 0.0.9"}, "firmware"),
        (lambda m: {"bundle": ""}, r"bundle \(none\)"),
        # The whole hash is compared: one equal in its first 16 digits still fails.
        (lambda m: {"bundle": m["bundle"][:16] + "0" * 48}, "bundle"),
        (lambda m: {"library_crc": 1}, "library crc"),
        (lambda m: {"board": "emulator"}, "board"),
    ],
)
def test_a_board_running_something_else_fails_the_check(change, said):
    f, _seen = _flasher(FakeMpremote(), device=lambda m: _device(m, **change(m)))
    with pytest.raises(FlashError, match=rf"step 5/5 \(verify\).*{said}"):
        f.flash()


def test_a_board_with_its_protocol_on_a_uart_needs_link():
    with pytest.raises(UsageError, match="UART0.*--link"):
        Flasher("pico", "/dev/ttyACM0", run=FakeMpremote())


def test_a_board_with_its_protocol_on_usb_flashes_and_checks_on_that_port(monkeypatch):
    # LINK_UART None (boards/__init__.py): the protocol shares the USB port, so --link
    # defaults to --port.
    usb = types.ModuleType("usb_board")
    usb.NAME, usb.MACHINE, usb.LINK_UART, usb.STATE_DIR = "usb", "USB Board", None, "/state"
    monkeypatch.setitem(sys.modules, "usb_board", usb)
    monkeypatch.setitem(boards._BOARDS, "usb", "usb_board")
    assert Flasher("usb", "/dev/ttyACM0", run=FakeMpremote()).link == "/dev/ttyACM0"


def test_flash_without_link_is_a_usage_error_before_any_build(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "pumpguard", "flash", "--board", "pico", "--port", "/dev/x"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("pumpguard: ") and "--link" in r.stderr
    assert "[1/5]" not in r.stderr


def test_the_emulator_is_not_flashed():
    with pytest.raises(FlashError, match="not real hardware"):
        Flasher("emulator", "/dev/ttyACM0", run=FakeMpremote())


def test_repl_only_stops_the_pump_loop():
    run = FakeMpremote()
    f, _seen = _flasher(run)
    f.enter_repl()
    assert [args[:2] for _p, args, _c in run.calls] == [
        ("exec", "pass"),
        ("exec", "--no-follow"),
        ("exec", "pass"),
    ]


def test_nothing_answering_on_the_link_is_a_verify_failure():
    def connect(port, **kw):
        raise flash.PumpguardError("no answer")

    with pytest.raises(FlashError, match=r"step 5/5 \(verify\).*no pumpguard firmware"):
        flash.verify("/dev/null", {}, connect=connect)


def test_the_safe_boot_script_compiles_for_micropython(tmp_path):
    # mpremote exec sends it as source (it resets the board, so it is only compiled here;
    # the cleanup script runs for real below).
    source = tmp_path / "safe_boot.py"
    source.write_text(flash._safe_boot_script("/state"))
    r = subprocess.run(
        [bundle.mpy_cross(), "-o", str(tmp_path / "safe_boot.mpy"), str(source)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr


_RUN_ON_MICROPYTHON = """
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
const mp = await loadMicroPython({ stdout: (l) => console.log(l) });
for (const d of ["/firmware", "/protocol", "/boards", "/boards/drivers", "/firmware/gone",
                 "/state"]) mp.FS.mkdir(d);
for (const f of ["/firmware/core.mpy", "/firmware/core.py", "/protocol/old.mpy",
                 "/boards/pico.mpy", "/boards/drivers/stepper.mpy", "/boards/drivers/old.mpy",
                 "/firmware/gone/rules.mpy", "/state/safeboot", "/state/state.json",
                 "/state/druglib.json", "/state/druglib.new"]) {
  mp.FS.writeFile(f, "x");
}
mp.runPython(process.env.SCRIPT);
mp.runPython("import os; print(sorted(os.listdir('/firmware') + os.listdir('/protocol') "
  + "+ os.listdir('/boards') + os.listdir('/boards/drivers') + os.listdir('/state')))");
"""


def test_the_cleanup_removes_what_the_manifest_does_not_list(tmp_path):
    # On the real MicroPython interpreter, over a filesystem laid out like a board's.
    keep = {"firmware/core.mpy": "ab", "boards/pico.mpy": "cd", "boards/drivers/stepper.mpy": "e"}
    r = subprocess.run(
        ["node", "--input-type=module", "-e", _RUN_ON_MICROPYTHON],
        capture_output=True,
        text=True,
        env={**os.environ, "SCRIPT": flash._cleanup_script(keep, "/state")},
        cwd=bundle.SOURCE_ROOT,
    )
    assert r.returncode == 0, r.stderr
    assert "removed stale firmware/core.py" in r.stdout
    assert "removed stale protocol/old.mpy" in r.stdout
    assert "removed stale boards/drivers/old.mpy" in r.stdout
    # a subpackage the new bundle no longer has goes, with its files
    assert "removed stale firmware/gone/rules.mpy" in r.stdout
    # and a library pushed over the link (druglib.json) with one half pushed: gone
    assert r.stdout.splitlines()[-1] == (
        "['core.mpy', 'drivers', 'pico.mpy', 'state.json', 'stepper.mpy']"
    )


# -- never while a channel infuses: the channels' state asked over --link, on the board under
# test (the emulator, or --pump-port's: mpremote is faked, so nothing but the check
# reaches it)


def _infusing(port):
    with pumpguard.connect(port, timeout=ANSWER_TIMEOUT_S) as pump:
        start_norepinephrine(pump, channel=2)


@pytest.mark.parametrize("repl_only", [False, True])
def test_a_flash_is_refused_while_a_channel_infuses(pump_port, repl_only):
    _infusing(pump_port)
    run = FakeMpremote()
    f = Flasher("pico", "/dev/ttyACM0", link=pump_port, run=run, out=io.StringIO())
    with pytest.raises(FlashRefused, match=r"channel 2 \(running norepinephrine\).*stop") as e:
        f.enter_repl() if repl_only else f.flash()
    assert e.value.exit_code == 3
    assert run.calls == []  # no safe boot, no reset: nothing reached mpremote
    with pumpguard.connect(pump_port, timeout=ANSWER_TIMEOUT_S) as pump:
        assert pump.status(2).state == "running"


def test_the_cli_refuses_a_flash_while_a_channel_infuses(pump_port):
    _infusing(pump_port)
    r = subprocess.run(
        [sys.executable, "-m", "pumpguard", "flash", "--board", "pico", "--repl"]
        + ["--port", "/dev/nonexistent-usb", "--link", pump_port],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 3, r.stderr
    assert r.stderr.startswith("pumpguard: refused") and "channel 2" in r.stderr
    assert "--force" in r.stderr


def test_force_flashes_an_infusing_board_and_says_so(pump_port):
    _infusing(pump_port)
    run = FakeMpremote()
    out = io.StringIO()
    Flasher("pico", "/dev/ttyACM0", link=pump_port, run=run, out=out, force=True).enter_repl()
    assert [args[:2] for _p, args, _c in run.calls][:2] == [
        ("exec", "pass"),
        ("exec", "--no-follow"),
    ]
    assert "--force" in out.getvalue() and "channel 2" in out.getvalue()


def test_idle_or_stopped_channels_let_the_flash_go_on(pump_port):
    with pumpguard.connect(pump_port, timeout=ANSWER_TIMEOUT_S) as pump:
        start_norepinephrine(pump, channel=1)
        pump.emergency_stop(1, "clinician")
    run = FakeMpremote()
    Flasher("pico", "/dev/ttyACM0", link=pump_port, run=run, out=io.StringIO()).enter_repl()
    assert len(run.calls) == 3


def test_nothing_answering_on_the_link_is_refused_without_force():
    def connect(port, **kw):
        raise flash.PumpguardError("no answer")

    run = FakeMpremote()
    f = Flasher("pico", "/dev/ttyACM0", link="/dev/x", run=run, connect=connect, out=io.StringIO())
    with pytest.raises(FlashRefused, match="cannot check.*--force"):
        f.enter_repl()
    assert run.calls == []
