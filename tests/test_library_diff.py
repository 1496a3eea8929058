"""`pumpguard library diff`: every figure that changed, drug by drug, both sources."""

import json

from pumpguard import library
from pumpguard.library.diff import ADDED, BOTH, DRUG_ADDED, DRUG_REMOVED, SOURCE, VALUE

from tests.librarykit import LIBRARY, SHIPPED, SHIPPED_CRC, changed, run, shipped


def test_identical_content_is_exit_0_whatever_the_layout_or_seal(capsys, tmp_path):
    relaid = tmp_path / "relaid.json"
    doc = shipped()
    doc["crc32"] = "0x00000000"  # unsealed, same content
    relaid.write_text(json.dumps(dict(reversed(doc.items())), indent=4))
    code, out, err = run(capsys, "library", "diff", LIBRARY, relaid)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"old: {LIBRARY}: pumpguard-adult-icu-vasoactive 0.1.0, crc32 {SHIPPED_CRC}, sealed",
        f"new: {relaid}: pumpguard-adult-icu-vasoactive 0.1.0, crc32 {SHIPPED_CRC}, NOT sealed",
        "no change in content",
    ]
    assert library.diff(LIBRARY, relaid) == []


def test_every_change_is_listed_with_both_values_and_sources(capsys, tmp_path):
    new = changed(tmp_path)
    code, out, err = run(capsys, "library", "diff", LIBRARY, new)
    assert code == 1
    assert err == f"pumpguard: {LIBRARY} and {new} differ\n"
    nor = shipped()["drugs"]["norepinephrine"]["limits"]["hard_max"]["source"]
    dobu = shipped()["drugs"]["dobutamine"]["titration"]["up_interval_s"]["source"]
    vaso = shipped()["drugs"]["vasopressin"]["limits"]["soft_max"]["source"]
    lines = out.splitlines()
    assert lines[1].startswith(f"new: {new}: pumpguard-adult-icu-vasoactive 0.2.0, crc32 0x")
    assert lines[1].endswith("NOT sealed")
    text = "\n".join(lines[2:])
    # stable order: the library's own, then the drugs by name
    for block in [
        "library\n  version: value changed\n    old: 0.1.0\n    new: 0.2.0",
        "dobutamine\n  titration.up_interval_s: value changed\n"
        f"    old: 900 s (source: {dobu})\n"
        f"    new: 600 s (source: {dobu})",
        "epinephrine\n"
        "  + concentrations.allowed[64]: 64 mcg/mL (source: double strength, P&T 2026-11)",
        "milrinone: drug added\n  + dose_unit: mcg/kg/min\n",
        "  + limits.hard_max: 0.75 mcg/kg/min (source: label)\n",
        "norepinephrine\n  limits.hard_max: value and source changed\n"
        f"    old: 3 mcg/kg/min (source: {nor})\n"
        "    new: 2.5 mcg/kg/min (source: P&T 2026-11)",
        "phenylephrine: drug removed\n  - dose_unit: mcg/min\n",
        "vasopressin\n  limits.soft_max: source changed\n"
        f"    old: 0.03 units/min (source: {vaso})\n"
        "    new: 0.03 units/min (source: pharmacist review 2026-11)",
    ]:
        assert block in text, block
    starts = [text.index(d) for d in ("library\n", "dobutamine\n", "epinephrine\n", "milrinone:")]
    assert starts == sorted(starts)
    assert lines[-1].endswith("drugs added: milrinone; drugs removed: phenylephrine")


def test_the_api_returns_typed_changes(tmp_path):
    changes = library.diff(LIBRARY, changed(tmp_path))
    assert all(isinstance(c, library.Change) for c in changes)
    by = {(c.drug, c.field): c for c in changes}
    hard_max = by[("norepinephrine", "limits.hard_max")]
    assert hard_max.kind == BOTH
    assert hard_max.old is not None and hard_max.new is not None
    assert (hard_max.old.value, hard_max.new.value) == ("3", "2.5")
    assert by[("milrinone", None)].kind == DRUG_ADDED
    assert by[("phenylephrine", None)].kind == DRUG_REMOVED
    assert by[("vasopressin", "limits.soft_max")].kind == SOURCE
    assert by[("epinephrine", "concentrations.allowed[64]")].kind == ADDED
    assert by[("library", "version")].kind == VALUE


def test_json_form(capsys, tmp_path):
    new = changed(tmp_path)
    code, out, _ = run(capsys, "library", "diff", "--json", LIBRARY, new)
    doc = json.loads(out)
    assert code == 1 and doc["identical"] is False
    assert doc["old"] == {
        "file": str(LIBRARY),
        "name": "pumpguard-adult-icu-vasoactive",
        "version": "0.1.0",
        "crc": SHIPPED_CRC,
        "sealed": True,
    }
    change = next(
        c
        for c in doc["changes"]
        if (c["drug"], c["field"]) == ("norepinephrine", "limits.hard_max")
    )
    assert change["old"]["source"] != change["new"]["source"]
    assert (change["old"]["value"], change["new"]["value"]) == ("3", "2.5")


def test_a_missing_or_non_json_file_is_exit_2(capsys, tmp_path):
    (tmp_path / "torn.json").write_text(SHIPPED[:100])
    for other in (tmp_path / "torn.json", tmp_path / "missing.json"):
        code, out, err = run(capsys, "library", "diff", LIBRARY, other)
        assert (code, out, err.count("\n")) == (2, "", 1)
    assert run(capsys, "library", "diff", LIBRARY)[0] == 2  # usage: NEW missing
