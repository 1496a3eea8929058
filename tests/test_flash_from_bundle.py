"""`pumpguard flash --from-bundle DIR`: QA flashes exactly the bundle it tested, every file
checked against its manifest before anything reaches the board, nothing rebuilt."""

import io
import json
import os
import shutil

import pytest
from pumpguard.cli.main import main
from pumpguard.deploy import bundle, flash
from pumpguard.deploy.flash import Flasher

from tests.test_bundle import _tree
from tests.test_flash import BOARD_ID, FakeMpremote, FakePump, _device


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("built") / "pico"
    bundle.build("pico", out)
    return out


@pytest.fixture
def tested(built, tmp_path):
    """A copy of the bundle QA tested, to spoil."""
    return shutil.copytree(built, tmp_path / "tested")


class Snapshot(FakeMpremote):
    """Also keeps the tree mpremote copies from (its ``fs cp`` working directory)."""

    copied = None

    def __call__(self, port, *args, cwd=None):
        if args[:2] == ("fs", "cp"):
            self.copied = _tree(cwd)
        return super().__call__(port, *args, cwd=cwd)


def _flasher(tested, run, monkeypatch):
    def never(*args):
        raise AssertionError("a bundle was built")

    monkeypatch.setattr(bundle, "build", never)

    def connect(port, **kw):
        return FakePump(_device(bundle.load_manifest(tested)))

    return Flasher(
        "pico",
        "/dev/ttyACM0",
        link="/dev/ttyUSB0",
        run=run,
        connect=connect,
        out=io.StringIO(),
        from_bundle=str(tested),
    )


def test_the_bundle_flashed_is_the_one_tested_byte_for_byte(tested, monkeypatch):
    run = Snapshot()
    f = _flasher(tested, run, monkeypatch)
    manifest = f.flash()
    assert manifest == bundle.load_manifest(tested)
    assert run.copied == _tree(tested)
    assert "[1/5] build: bundle " + str(tested) + ", every file checked" in f._out.getvalue()


def _refused(tested, monkeypatch, said):
    run = FakeMpremote()
    with pytest.raises(bundle.BundleError) as refused:
        _flasher(tested, run, monkeypatch).flash()
    assert run.calls == []  # nothing reached the board
    assert refused.value.exit_code == 2
    message = str(refused.value)
    assert all(part in message for part in said), message
    return message


def _append(path, data):
    with open(path, "ab") as f:
        f.write(data)


@pytest.mark.parametrize(
    "spoil, said",
    [
        (lambda d: _append(d / "firmware" / "core.mpy", b"\0"), ["firmware/core.mpy changed"]),
        (lambda d: os.remove(d / "protocol" / "crc.mpy"), ["protocol/crc.mpy is missing"]),
        (
            lambda d: (d / "firmware" / "core.py").write_text("x = 1\n"),
            ["firmware/core.py is not in the manifest"],
        ),
        (lambda d: (d / "lib").mkdir(), ["lib/ is not in the manifest"]),
        (
            lambda d: (d / "boards" / "extra.mpy").symlink_to(d / "boards" / "pico.mpy"),
            ["boards/extra.mpy is a symbolic link"],
        ),
        (  # every one named, in one line
            lambda d: (
                _append(d / "main.py", b"#"),
                os.remove(d / "firmware" / "druglib.json"),
            ),
            ["main.py changed", "firmware/druglib.json is missing", "Nothing was sent"],
        ),
    ],
)
def test_a_bundle_not_as_its_manifest_describes_is_refused_naming_each_file(
    tested, monkeypatch, spoil, said
):
    spoil(tested)
    message = _refused(tested, monkeypatch, said)
    assert message.startswith(f"the bundle in {tested} is not the one its manifest describes: ")


def _edit_manifest(tested, **changes):
    path = tested / bundle.MANIFEST
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    for key, value in changes.items():
        if value is None:
            del manifest[key]
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    "changes, said",
    [
        ({"board": "emulator"}, "is for board 'emulator', not pico: build one with --board pico"),
        ({"micropython": None}, "records no MicroPython release"),
        ({"bundle": "0" * 64}, "its bundle hash is not the one of the files it lists"),
        ({"files": None}, "lists no files"),
    ],
)
def test_a_manifest_for_another_board_or_edited_is_refused(tested, monkeypatch, changes, said):
    _edit_manifest(tested, **changes)
    _refused(tested, monkeypatch, [said])


def test_a_directory_without_a_manifest_is_no_bundle(tmp_path, monkeypatch):
    _refused(
        tmp_path,
        monkeypatch,
        [f"{tmp_path} holds no bundle", "`pumpguard flash --bundle DIR` writes one"],
    )


def test_the_command_flashes_the_bundle_and_refuses_rebuilding_options(tested, monkeypatch, capsys):
    monkeypatch.chdir(tested.parent)  # where a --bundle out would go, were it taken
    run = FakeMpremote()
    manifest = bundle.load_manifest(tested)

    class Recorded(flash.Flasher):
        def __init__(self, *args, **kw):
            super().__init__(*args, run=run, connect=connect, out=io.StringIO(), **kw)

    def connect(port, **kw):
        return FakePump(_device(manifest))

    monkeypatch.setattr(flash, "Flasher", Recorded)
    argv = ["flash", "--board", "pico", "--port", "/dev/ttyACM0", "--link", "/dev/ttyUSB0"]
    for extra in (["--bundle", "out"], ["--library", "lib.json"]):
        assert main([*argv, "--from-bundle", str(tested), *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith("pumpguard: --from-bundle flashes a bundle as it was built")
        assert err.count("\n") == 1 and run.calls == [] and not (tested.parent / "out").exists()
    assert main([*argv, "--from-bundle", str(tested)]) == 0, capsys.readouterr().err
    assert [args[:2] for _port, args, _cwd in run.calls][-2:] == [("fs", "cp"), ("reset",)]
    assert os.path.exists(os.path.join(os.environ["PUMPGUARD_KEYS"], BOARD_ID + ".json"))
