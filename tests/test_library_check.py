"""`pumpguard library check` and pumpguard.library.check(): every problem at once."""

import json

import pytest
from pumpguard import library

from tests.librarykit import (
    INVALID,
    LIBRARY,
    SHIPPED_CRC,
    SHIPPED_ID,
    SHIPPED_VERSION,
    invalid,
    run,
    shipped,
    unsealed,
    write,
)


def test_the_shipped_library_is_valid_and_sealed(capsys):
    code, out, err = run(capsys, "library", "check", LIBRARY)
    assert code == 0, err
    assert out == (f"{LIBRARY}: {SHIPPED_ID}, sealed; valid\n")
    result = library.check(LIBRARY)
    assert (result.valid, result.sealed, result.ok, result.problems) == (True, True, True, ())
    assert result.identity.crc == int(SHIPPED_CRC, 16)


def test_an_unsealed_copy_is_valid_but_not_sealed_and_says_how_to_seal(capsys, tmp_path):
    path = unsealed(tmp_path)
    code, out, err = run(capsys, "library", "check", path)
    assert code == 1
    lines = out.splitlines()
    assert lines[0].endswith("NOT sealed; 1 problem")
    assert lines[1].startswith(f"library.crc32: bad CRC: file says '{SHIPPED_CRC}'")
    assert (
        err == f"pumpguard: {path}: valid but not sealed (pumpguard library seal FILE seals it)\n"
    )
    result = library.check(path)
    assert (result.valid, result.sealed) == (True, False)


def test_an_invalid_copy_lists_every_problem_by_drug_and_field(capsys, tmp_path):
    path = invalid(tmp_path)
    code, out, err = run(capsys, "library", "check", path)
    assert code == 1
    problems = out.splitlines()[1:]
    fields = [p.split(": ", 1)[0] for p in problems]
    assert fields == ["library.crc32", *sorted(INVALID)]  # the CRC's, then by drug
    assert "'0.5x' is not a plain decimal" in out
    assert err == f"pumpguard: {path}: invalid, 5 problems\n"  # the count the first line says
    assert "NOT sealed; 5 problems" in out.splitlines()[0]
    assert not library.check(path).valid


def test_json_form_for_scripts(capsys, tmp_path):
    code, out, _ = run(capsys, "library", "check", "--json", LIBRARY)
    assert code == 0
    assert json.loads(out) == {
        "file": str(LIBRARY),
        "valid": True,
        "sealed": True,
        "problems": [],
        "identity": {
            "name": "pumpguard-adult-icu-vasoactive",
            "version": SHIPPED_VERSION,
            "crc": SHIPPED_CRC,
        },
    }
    code, out, _ = run(capsys, "library", "check", "--json", invalid(tmp_path))
    doc = json.loads(out)
    assert code == 1
    assert (doc["valid"], doc["sealed"], len(doc["problems"])) == (False, False, 5)


def test_a_file_that_is_not_json_or_not_there_is_one_line_and_exit_2(capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x",}')
    for path, what in [
        (bad, "not valid JSON: Expecting property name"),
        (tmp_path / "missing.json", "cannot read it: No such file or directory"),
    ]:
        code, out, err = run(capsys, "library", "check", path)
        assert (code, out) == (2, "")
        assert err.startswith(f"pumpguard: {path}: {what}") and err.count("\n") == 1
    (tmp_path / "list.json").write_text("[]")
    code, _, err = run(capsys, "library", "check", tmp_path / "list.json")
    assert code == 2 and "the JSON is not an object" in err


@pytest.mark.parametrize(
    "edit, problem",
    [
        pytest.param(
            lambda d: d["norepinephrine"].update(dose_unit={}),
            "norepinephrine.dose_unit: unknown dose unit {}",
            id="dose_unit",
        ),
        pytest.param(
            lambda d: d["norepinephrine"]["concentrations"].update(unit=["mcg/mL"]),
            "norepinephrine.concentrations.unit: ['mcg/mL'] is not a mass concentration unit",
            id="conc_unit",
        ),
        pytest.param(
            lambda d: d["vasopressin"]["advisories"][0].update(drugs=[["dopamine"]]),
            "vasopressin.advisories.0.drugs: needs_any needs a list of drug names",
            id="needs_any_partner",
        ),
    ],
)
def test_a_list_or_object_where_a_text_belongs_is_a_listed_problem(capsys, tmp_path, edit, problem):
    # druglib.load hashed it (`in` a dict): a TypeError traceback here, at boot, at flash
    doc = shipped()
    edit(doc["drugs"])
    code, out, err = run(capsys, "library", "check", write(tmp_path / "bad.json", doc))
    assert code == 1 and "Traceback" not in err
    assert [line for line in out.splitlines()[2:] if line.startswith(problem)], out


def test_a_concentration_listed_twice_is_a_listed_problem(capsys, tmp_path):
    doc = shipped()
    allowed = doc["drugs"]["norepinephrine"]["concentrations"]["allowed"]
    allowed.append(dict(allowed[1]))
    path = write(tmp_path / "twice.json", doc)
    code, out, _ = run(capsys, "library", "check", path)
    assert code == 1
    assert (
        "norepinephrine.concentrations.allowed.2: duplicate of "
        "norepinephrine.concentrations.allowed.1"
    ) in out.splitlines()
    assert not library.check(path).valid


@pytest.mark.parametrize("action", ["check", "show", "seal", "diff"])
@pytest.mark.parametrize("depth", [100, 100_000])  # past _DEPTH_MAX; past json's recursion
def test_json_nested_deeper_than_any_library_is_a_one_line_usage_error(
    capsys, tmp_path, action, depth
):
    deep = tmp_path / "deep.json"
    deep.write_text('{"a":' * depth + "1" + "}" * depth)
    files = (LIBRARY, deep) if action == "diff" else (deep,)
    code, out, err = run(capsys, "library", action, *files)
    assert (code, out) == (2, "")
    assert err == f"pumpguard: {deep}: not a drug library: its JSON is nested more than 64 deep\n"
