"""`pumpguard library seal`: the CRC written in place, every other byte as it was."""

import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pumpguard import library

from tests.librarykit import SHIPPED, SHIPPED_CRC, changed, invalid, run

WRONG = "0x00000000"
SHIPPED_LINE = f'  "crc32": "{SHIPPED_CRC}",\n'


def _file(tmp_path, text, name="druglib.json"):
    path = tmp_path / name
    path.write_bytes(text.encode())
    return path


@pytest.mark.parametrize(
    "stale",
    [
        SHIPPED.replace(SHIPPED_CRC, WRONG),  # a wrong crc
        SHIPPED.replace(SHIPPED_LINE, ""),  # none at all: inserted after "version"
        SHIPPED.replace(SHIPPED_CRC, WRONG).replace("\n", "\r\n"),  # CRLF kept
    ],
    ids=["wrong", "absent", "crlf"],
)
def test_seal_writes_only_the_crc_and_the_result_checks(capsys, tmp_path, stale):
    path = _file(tmp_path, stale)
    os.chmod(path, 0o640)
    code, out, err = run(capsys, "library", "seal", path)
    assert code == 0, err
    old = WRONG if WRONG in stale else "none"
    assert out == f"{path}: crc32 {old} -> {SHIPPED_CRC}\n"
    expected = SHIPPED.replace("\n", "\r\n") if "\r\n" in stale else SHIPPED
    assert path.read_bytes() == expected.encode()
    assert os.stat(path).st_mode & 0o777 == 0o640
    assert sorted(os.listdir(tmp_path)) == ["druglib.json"]  # no temporary file left
    assert run(capsys, "library", "check", path)[0] == 0


def test_seal_of_a_sealed_file_changes_nothing(capsys, tmp_path):
    path = _file(tmp_path, SHIPPED)
    code, out, _ = run(capsys, "library", "seal", path)
    assert (code, out) == (0, f"{path}: already sealed, crc32 {SHIPPED_CRC}\n")
    assert path.read_text() == SHIPPED


def test_seal_of_a_reviewed_edit_gives_the_crc_check_and_druglib_agree_on(capsys, tmp_path):
    path = changed(tmp_path)
    before = path.read_text()
    sealed = library.seal(path)
    assert (sealed.old, sealed.changed) == (SHIPPED_CRC, True)
    assert path.read_text() == before.replace(SHIPPED_CRC, sealed.new)
    assert library.check(path).ok
    assert sealed.new == f"0x{library.check(path).identity.crc:08x}"


def test_seal_refuses_an_invalid_file_lists_its_problems_and_writes_nothing(capsys, tmp_path):
    path = invalid(tmp_path)
    before = path.read_bytes()
    code, out, err = run(capsys, "library", "seal", path)
    assert (code, out) == (1, "")
    lines = err.splitlines()
    assert lines[0] == f"pumpguard: {path}: not sealed, 4 problems to fix first:"
    assert [line.split(":")[0] for line in lines[1:]] == [
        "dobutamine.titration.max_up_percent",
        "epinephrine.dose_unit",
        "norepinephrine.limits.hard_max",
        "vasopressin.limits.soft_min",
    ]
    assert path.read_bytes() == before
    with pytest.raises(library.LibraryProblems) as caught:
        library.seal(path)
    assert len(caught.value.problems) == 4


def test_seal_of_a_file_that_is_not_json_or_missing_is_one_line(capsys, tmp_path):
    path = _file(tmp_path, SHIPPED[:-20])
    code, _, err = run(capsys, "library", "seal", path)
    assert code == 2 and err.count("\n") == 1 and "not valid JSON" in err
    assert path.read_text() == SHIPPED[:-20]
    code, _, err = run(capsys, "library", "seal", tmp_path / "missing.json")
    assert code == 2 and "cannot read it" in err


def _shuffled(value, rng):
    if isinstance(value, dict):
        keys = list(value)
        rng.shuffle(keys)
        return {k: _shuffled(value[k], rng) for k in keys}
    if isinstance(value, list):
        return [_shuffled(v, rng) for v in value]
    return value


@settings(max_examples=40)
@given(
    rng=st.randoms(use_true_random=False),
    indent=st.sampled_from([None, 0, 1, 2, 4, "\t"]),
    separators=st.sampled_from([(",", ":"), (", ", ": "), (" ,", " : "), (",\n", ":\t")]),
    crc=st.sampled_from(["keep", "wrong", "absent"]),
)
def test_seal_then_check_is_sealed_for_any_layout_of_the_shipped_library(
    rng, indent, separators, crc
):
    doc = _shuffled(json.loads(SHIPPED), rng)
    if crc == "absent":
        del doc["crc32"]
    elif crc == "wrong":
        doc["crc32"] = WRONG
    text = json.dumps(doc, indent=indent, separators=separators, ensure_ascii=False)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "druglib.json"
        path.write_text(text)
        sealed = library.seal(path)
        assert sealed.new == SHIPPED_CRC  # layout and order are no content
        assert library.check(path).ok
        after = json.loads(path.read_text())
        assert after == {**doc, "crc32": SHIPPED_CRC}
        if crc != "absent":  # the rest of the text as it was, byte for byte
            assert path.read_text() == text.replace(json.dumps(doc["crc32"]), f'"{SHIPPED_CRC}"')


def test_seal_through_a_symlink_seals_the_file_it_points_to(capsys, tmp_path):
    # the rename went over the link: a regular file in its place, the target unsealed
    real = _file(tmp_path, SHIPPED.replace(SHIPPED_CRC, WRONG), "real.json")
    link = tmp_path / "druglib.json"
    link.symlink_to(real)
    code, _, err = run(capsys, "library", "seal", link)
    assert code == 0, err
    assert link.is_symlink() and link.resolve() == real
    assert real.read_text() == SHIPPED
    assert sorted(p.name for p in tmp_path.iterdir()) == ["druglib.json", "real.json"]


def test_seal_refuses_a_read_only_file_and_writes_nothing(capsys, tmp_path):
    # the rename replaced a 0444 file as if it were writable
    path = _file(tmp_path, SHIPPED.replace(SHIPPED_CRC, WRONG))
    path.chmod(0o444)
    code, out, err = run(capsys, "library", "seal", path)
    assert (code, out) == (2, "")
    assert err == (
        f"pumpguard: {path}: read-only (mode 0444): not sealed; "
        "make it writable (chmod u+w) to seal it\n"
    )
    assert path.read_text() == SHIPPED.replace(SHIPPED_CRC, WRONG)
    assert os.stat(path).st_mode & 0o777 == 0o444


def test_seal_refuses_a_file_with_other_hard_links_and_writes_nothing(capsys, tmp_path):
    # the rename would give the sealed text to this name only, the other still unsealed
    path = _file(tmp_path, SHIPPED.replace(SHIPPED_CRC, WRONG))
    os.link(path, tmp_path / "other.json")
    code, _, err = run(capsys, "library", "seal", path)
    assert code == 2
    assert err.startswith(f"pumpguard: {path}: has 2 hard links: sealing replaces the file")
    assert (tmp_path / "other.json").read_text() == path.read_text()
    assert path.read_text() == SHIPPED.replace(SHIPPED_CRC, WRONG)
