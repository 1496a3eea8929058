"""`pumpguard library diff`: every figure that changed, drug by drug, both sources."""

import copy
import json
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from pumpguard import library
from pumpguard.library.diff import ADDED, BOTH, DRUG_ADDED, DRUG_REMOVED, ORDER, SOURCE, VALUE

from tests.budgets import budget
from tests.librarykit import (
    LIBRARY,
    SHIPPED,
    SHIPPED_CRC,
    SHIPPED_ID,
    SHIPPED_VERSION,
    changed,
    places,
    run,
    shipped,
    write,
)


def test_identical_content_is_exit_0_whatever_the_layout_or_seal(capsys, tmp_path):
    relaid = tmp_path / "relaid.json"
    doc = shipped()
    doc["crc32"] = "0x00000000"  # unsealed, same content
    relaid.write_text(json.dumps(dict(reversed(doc.items())), indent=4))
    code, out, err = run(capsys, "library", "diff", LIBRARY, relaid)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"old: {LIBRARY}: {SHIPPED_ID}, sealed",
        f"new: {relaid}: {SHIPPED_ID}, NOT sealed",
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
    assert lines[1].startswith(f"new: {new}: pumpguard-adult-icu-vasoactive 0.3.0, crc32 0x")
    assert lines[1].endswith("NOT sealed")
    text = "\n".join(lines[2:])
    # stable order: the library's own, then the drugs by name
    for block in [
        f"library\n  version: value changed\n    old: {SHIPPED_VERSION}\n    new: 0.3.0",
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
        "version": SHIPPED_VERSION,
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


def test_a_concentration_listed_twice_is_one_addition(tmp_path):
    # keyed by value, the second "16" overwrote the first: "no change in content"
    doc = shipped()
    allowed = doc["drugs"]["norepinephrine"]["concentrations"]["allowed"]
    allowed.append(dict(allowed[1]))
    changes = library.diff(LIBRARY, write(tmp_path / "new.json", doc))
    assert [(c.drug, c.field, c.kind) for c in changes] == [
        ("norepinephrine", "concentrations.allowed[16]", ADDED)
    ]


def test_concentrations_reordered_is_an_order_change(capsys, tmp_path):
    # the canonical form keeps a list's order (the CRC changes): so does the record
    doc = shipped()
    doc["drugs"]["norepinephrine"]["concentrations"]["allowed"].reverse()
    new = write(tmp_path / "new.json", doc)
    code, out, _ = run(capsys, "library", "diff", LIBRARY, new)
    assert code == 1
    assert (
        "norepinephrine\n  concentrations.allowed: order changed\n    old: 4, 16\n    new: 16, 4\n"
    ) in out
    (change,) = library.diff(LIBRARY, new)
    assert (change.kind, change.old.value, change.new.value) == (ORDER, ["4", "16"], ["16", "4"])


def test_true_become_1_is_a_value_change(capsys, tmp_path):
    # Python's True == 1: compared as Python values, the diff saw nothing
    doc = shipped()
    doc["drugs"]["norepinephrine"]["weight_based"] = 1
    code, out, _ = run(capsys, "library", "diff", LIBRARY, write(tmp_path / "new.json", doc))
    assert code == 1
    assert "  weight_based: value changed\n    old: yes\n    new: 1\n" in out


def test_a_note_inserted_before_another_is_one_addition(tmp_path):
    # matched by position among their kind, the renal-dose note was "changed" into the
    # new one and then "added" again
    doc = shipped()
    advisories = doc["drugs"]["dopamine"]["advisories"]
    advisories.insert(0, {"kind": "note", "text": "new note", "source": "P&T 2026-11-24"})
    changes = library.diff(LIBRARY, write(tmp_path / "new.json", doc))
    assert [(c.kind, c.field, c.new.value["text"]) for c in changes if c.new] == [
        (ADDED, "advisories[note]", "new note")
    ]
    assert len(changes) == 1


def test_a_number_for_a_text_says_how_each_file_writes_it(capsys, tmp_path):
    # 4 for "4" (an invalid library): both sides read "4 mcg/mL" in the review record
    doc = shipped()
    doc["drugs"]["norepinephrine"]["concentrations"]["allowed"][0]["value"] = 4
    code, out, _ = run(capsys, "library", "diff", LIBRARY, write(tmp_path / "new.json", doc))
    assert code == 1
    source = shipped()["drugs"]["norepinephrine"]["concentrations"]["allowed"][0]["source"]
    assert (
        "  concentrations.allowed[4]: value changed\n"
        f'    old: 4 mcg/mL (in the file: the text "4") (source: {source})\n'
        f"    new: 4 mcg/mL (in the file: the number 4) (source: {source})\n"
    ) in out


def _parent(doc, place):
    for key in place[:-1]:
        doc = doc[key]
    return doc


def _content(doc):
    """What the CRC covers, typed and in order (floats too, which have no CRC)."""
    return json.dumps({k: v for k, v in doc.items() if k != "crc32"}, sort_keys=True)


_SHIPPED = shipped()
_PLACES = [p for p in places(_SHIPPED) if p != ("crc32",)]
_LISTS = [p for p in _PLACES if isinstance(_parent(_SHIPPED, p)[p[-1]], list)]
_VALUES = [None, True, False, 0, 1, "", "1", "4", "x", [], ["x"], {}, {"value": "4"}, 1.5]


# make test's 60 examples were 200 (8 s)
@settings(max_examples=budget(60, 1000), deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("set"), st.sampled_from(_PLACES), st.sampled_from(_VALUES)),
            st.tuples(st.just("reverse"), st.sampled_from(_LISTS)),
            st.tuples(st.just("repeat"), st.sampled_from(_LISTS)),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_diff_is_empty_exactly_when_the_content_is_the_same(edits):
    doc = shipped()
    for action, place, *value in edits:
        try:
            parent = _parent(doc, place)
            target = parent[place[-1]]
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit replaced what held this place
        if action == "set":
            parent[place[-1]] = value[0]
        elif isinstance(target, list) and action == "reverse":
            target.reverse()
        elif isinstance(target, list) and target:
            target.append(copy.deepcopy(target[0]))
    with tempfile.TemporaryDirectory() as folder:
        new = write(Path(folder) / "new.json", doc)
        assert (library.diff(LIBRARY, new) == []) == (_content(doc) == _content(_SHIPPED)), edits
