"""`pumpguard flash` asks the board which MicroPython it runs before the safe boot, and
refuses one that cannot import the bundle or was never tested with it, saying which
release to install, with nothing written to the board."""

import io
import os
import shutil
import subprocess

import pytest
from pumpguard.api import keys
from pumpguard.deploy import abi, bundle
from pumpguard.deploy.flash import Flasher, FlashError

import boards
from tests.test_flash import (
    _MAJOR,
    _MICRO,
    _MINOR,
    _MPY,
    _MPY_SUB,
    BOARD_ID,
    PICO_SAYS,
    FakeMpremote,
    FakePump,
    _device,
)

RP2040 = "Raspberry Pi Pico with RP2040"
_ARMV6M = 4 << 10  # _mpy bits 10-13: the native arch
INSTALL = f"Install MicroPython v{_MAJOR}.{_MINOR} for the Raspberry Pi Pico (micropython.org"
CHECK = "Check --port and --board: a pico bundle is for a Raspberry Pi Pico"


def _mpy(version=_MPY, sub=_MPY_SUB, arch=_ARMV6M):
    return version | sub << 8 | arch


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("built") / "pico"
    return out, bundle.build("pico", out)


@pytest.fixture
def flasher(built):
    """A Flasher of the built bundle on a board that says what ``run`` says it runs;
    returns it and the list of each check over the link before."""
    out, manifest = built
    checks = []

    def connect(port, **kw):
        checks.append(port)
        return FakePump(_device(manifest))

    def make(run):
        f = Flasher(
            "pico", "/dev/ttyACM0", link="/dev/ttyUSB0", run=run, connect=connect, out=io.StringIO()
        )

        def build(out_dir):  # the built bundle: what is checked here is the board
            shutil.copytree(out, out_dir, dirs_exist_ok=True)
            return manifest

        f.build = build
        return f, checks

    return make


@pytest.mark.parametrize(
    "board, said, todo",
    [
        (  # the same .mpy version (it would even import), another release: not tested
            ("micropython", (_MAJOR, _MINOR - 1, 2), _mpy(sub=_MPY_SUB - 1), RP2040),
            f"tested on MicroPython v{_MAJOR}.{_MINOR}, not v{_MAJOR}.{_MINOR - 1}.2",
            INSTALL,
        ),
        (  # MicroPython 1.18: .mpy v5, every import would fail
            ("micropython", (1, 18, 0), 5 | 0x200 | _ARMV6M, RP2040),
            f"it loads .mpy v5, the bundle's modules are .mpy v{_MPY}",
            INSTALL,
        ),
        (  # a Pico 2 (RP2350, Cortex-M33) on this release: not the pico board
            ("micropython", (_MAJOR, _MINOR, 0), _mpy(arch=7 << 10), "Raspberry Pi Pico2"),
            "built for armv7emsp, the bundle for armv6m",
            CHECK,
        ),
        (  # an ESP32 board: neither the machine nor the arch
            ("micropython", (_MAJOR, _MINOR, 0), _mpy(arch=10 << 10), "Generic ESP32 module"),
            "it is no Raspberry Pi Pico (board pico); its MicroPython is built for xtensawin",
            CHECK,
        ),
        (
            ("circuitpython", (9, 2, 1), 0, RP2040),
            "runs circuitpython v9.2.1 on 'Raspberry Pi Pico with RP2040': it does not run "
            "MicroPython",
            INSTALL,
        ),
    ],
)
def test_a_board_of_another_micropython_is_refused_before_the_safe_boot(flasher, board, said, todo):
    run = FakeMpremote(board=board)
    f, checks = flasher(run)
    with pytest.raises(FlashError) as refused:
        f.flash()
    message = str(refused.value)
    assert message.startswith("flash failed at step 2/5 (repl): refused: the board on "), message
    assert said in message and todo in message, message
    assert "nothing was written to the board" in message
    # asked, and nothing else: no safe boot, no copy, no reset, no keys made
    assert [args for _port, args, _cwd in run.calls] == [("exec", abi.QUERY)]
    assert not os.path.exists(keys.store_path(BOARD_ID) + ".new")
    assert len(checks) == 1  # the check that nothing infuses, before


def test_a_patch_release_of_the_same_micropython_is_flashed(flasher):
    board = ("micropython", (_MAJOR, _MINOR, _MICRO + 1), PICO_SAYS[2], RP2040)
    run = FakeMpremote(board=board)
    f, _checks = flasher(run)
    f.flash()
    assert [args[:2] for _port, args, _cwd in run.calls][-2:] == [("fs", "cp"), ("reset",)]


@pytest.mark.parametrize("printed", ["", "Traceback (most recent call last):", "('x', 1)"])
def test_a_board_that_does_not_say_what_it_runs_is_not_flashed(flasher, printed):
    class Says(FakeMpremote):
        def capture(self, port, *args):
            return self(port, *args), printed

    run = Says()
    f, _checks = flasher(run)
    with pytest.raises(FlashError, match=r"step 2/5 \(repl\): the board on .* did not say"):
        f.flash()
    assert len(run.calls) == 1


def test_the_manifest_records_what_its_modules_need(built):
    tmp_path, manifest = built
    assert manifest["micropython"] == f"{_MAJOR}.{_MINOR}.{_MICRO}"
    assert manifest["mpy"] == _MPY
    for path in manifest["files"]:
        if path.endswith(".mpy"):
            header = (tmp_path / path).read_bytes()[:3]
            # the .mpy version the loader compares, and no native code (flags 0), so
            # neither the sub-version nor the arch binds them
            assert header == bytes([ord("M"), _MPY, 0]), path


_ASK_MICROPYTHON = """
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
const mp = await loadMicroPython({ stdout: (l) => console.log(l) });
mp.runPython(process.env.SCRIPT);
"""


def test_the_query_runs_on_micropython_and_its_answer_matches_the_emulators_bundle():
    # The real interpreter the MicroPython tests run the emulator's bundle on (no
    # os.uname there: sys.implementation._machine).
    r = subprocess.run(
        ["node", "--input-type=module", "-e", _ASK_MICROPYTHON],
        capture_output=True,
        text=True,
        env={**os.environ, "SCRIPT": abi.QUERY},
        cwd=bundle.SOURCE_ROOT,
    )
    assert r.returncode == 0, r.stderr
    said = abi.parse(r.stdout)
    assert said[0] == "micropython" and said[1][:2] == (_MAJOR, _MINOR)
    assert abi.describe(said).startswith(f"MicroPython v{_MAJOR}.{_MINOR}")
    manifest = bundle.load_manifest(bundle.cached("emulator"))
    assert abi.problems(said, manifest, boards.get("emulator")) == ([], [])
