"""The bundle `pumpguard flash` writes: complete, described by its manifest, reproducible."""

import hashlib
import json
import os
import subprocess
import sys

import pytest
from pumpguard.deploy import bundle

from firmware import druglib


def _tree(root):
    out = {}
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = f.read()
    return out


@pytest.fixture(scope="module")
def pico(tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle") / "pico"
    return out, bundle.build("pico", out)


def test_two_runs_on_the_same_sources_are_byte_identical(tmp_path):
    # Through the real command, from two different working directories.
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        r = subprocess.run(
            [sys.executable, "-m", "pumpguard", "flash", "--board", "pico", "--bundle", "out"],
            cwd=tmp_path / name,
            capture_output=True,
            text=True,
        )
        assert r.returncode == 0, r.stderr
        assert "bytes" in r.stdout
    assert _tree(tmp_path / "a" / "out") == _tree(tmp_path / "b" / "out")


def test_every_module_is_compiled_and_the_entry_point_stays_source(pico):
    out, manifest = pico
    compiled = sorted(p for p in manifest["files"] if p.endswith(".mpy"))
    assert compiled == sorted(p[:-3] + ".mpy" for p in bundle.sources())
    assert not [p for p in manifest["files"] if p.endswith(".py") and p != "main.py"]
    assert (out / "main.py").read_text() == "import firmware.main\n\nfirmware.main.main('pico')\n"
    assert (out / "firmware" / "core.mpy").read_bytes()[:2] == b"M\x06"  # mpy v6


def test_the_manifest_describes_every_file(pico):
    out, manifest = pico
    assert json.loads((out / bundle.MANIFEST).read_text()) == manifest
    on_disk = {p.replace(os.sep, "/"): data for p, data in _tree(out).items()}
    del on_disk[bundle.MANIFEST]
    assert manifest["files"] == {p: hashlib.sha256(d).hexdigest() for p, d in on_disk.items()}
    assert manifest["bundle"] == bundle.bundle_hash(manifest["files"])
    assert manifest["board"] == "pico" and manifest["arch"] == "armv6m"
    assert manifest["firmware"].startswith("pumpguard ")
    assert "mpy-cross" in manifest["mpy_cross"]
    assert "druglib.json" in " ".join(manifest["files"])
    assert isinstance(manifest["library"]["crc"], int)


def test_the_emulator_runs_the_very_modules_a_pico_gets(pico, tmp_path):
    # No module has native code, so mpy-cross emits the same portable bytecode for
    # either arch: the MicroPython runtime's tests run exactly what is flashed.
    _out, manifest = pico
    emulated = bundle.build("emulator", tmp_path / "emu")
    modules = {p: h for p, h in manifest["files"].items() if p.endswith(".mpy")}
    assert modules == {p: h for p, h in emulated["files"].items() if p.endswith(".mpy")}


def test_a_directory_holding_something_else_is_never_overwritten(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(bundle.BundleError, match="not empty"):
        bundle.build("pico", tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_an_earlier_bundle_is_replaced_whole(tmp_path):
    bundle.build("pico", tmp_path)
    (tmp_path / "firmware" / "stale.mpy").write_bytes(b"old")
    bundle.build("pico", tmp_path)
    assert not (tmp_path / "firmware" / "stale.mpy").exists()


def test_unknown_board_is_a_usage_error(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "pumpguard", "flash", "--board", "toaster", "--bundle", "x"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2
    assert "unknown board 'toaster'" in r.stderr


def test_a_version_too_long_for_hello_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(bundle, "FIRMWARE_VERSION", "pumpguard 10.20.30-rc1.build7")
    with pytest.raises(bundle.BundleError, match="24-byte firmware field"):
        bundle.build("pico", tmp_path / "out")


def test_the_library_name_fits_hello_whole_and_a_longer_one_is_refused(tmp_path, monkeypatch):
    name = bundle._library(_BUILTIN)["name"]
    assert name == "pumpguard-adult-icu-vasoactive"  # 30 bytes: HELLO_R once held 24
    long = {"name": "x" * 33, "version": "1", "crc": 0}
    monkeypatch.setattr(bundle, "_library", lambda path: long)
    with pytest.raises(bundle.BundleError, match="32-byte library field"):
        bundle.build("pico", tmp_path / "out")


_BUILTIN = os.path.join(bundle.SOURCE_ROOT, "firmware", "druglib.json")


def _edited(tmp_path, reseal, edit):
    with open(_BUILTIN) as f:
        doc = json.load(f)
    edit(doc)
    if reseal:
        doc["crc32"] = f"0x{druglib.crc_of(doc):08x}"
    path = tmp_path / "lib.json"
    path.write_text(json.dumps(doc, indent=2))
    return path


def test_flash_library_ships_that_library_as_the_bundles(tmp_path):
    path = _edited(tmp_path, True, lambda doc: doc.update(version="2026.12-site"))
    argv = [sys.executable, "-m", "pumpguard", "flash", "--board", "pico"]
    r = subprocess.run(
        argv + ["--bundle", str(tmp_path / "out"), "--library", str(path)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    manifest = bundle.load_manifest(tmp_path / "out")
    assert manifest["library"]["crc"] == druglib.load(path.read_text()).crc
    assert (tmp_path / "out" / "firmware" / "druglib.json").read_bytes() == path.read_bytes()


def test_flash_library_refuses_an_invalid_or_unsealed_one_with_every_problem(tmp_path):
    def edit(doc):
        doc["version"] = "2026.12-site"
        del doc["drugs"]["vasopressin"]["limits"]["hard_max"]

    path = _edited(tmp_path, False, edit)
    problems = druglib.load(path.read_text()).problems
    assert len(problems) == 2 and problems[0].startswith("library.crc32: bad CRC")
    argv = [sys.executable, "-m", "pumpguard", "flash", "--board", "pico"]
    r = subprocess.run(
        argv + ["--bundle", str(tmp_path / "out"), "--library", str(path)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2
    lines = r.stderr.splitlines()
    assert all(problem in lines for problem in problems), r.stderr
    assert not (tmp_path / "out").exists()
