"""`pumpguard library show`: every drug's figures, each with its unit and its source."""

import json

from pumpguard import library

from tests.librarykit import (
    LIBRARY,
    SHIPPED_ID,
    invalid,
    run,
    shipped,
)

DRUGS = ["norepinephrine", "vasopressin", "epinephrine", "dobutamine", "phenylephrine", "dopamine"]


def _rows(out):
    """{drug: {field: line}} of show's table."""
    blocks, drug = {}, None
    for line in out.splitlines()[1:]:
        if line and not line.startswith(" "):
            drug = line
            blocks[drug] = {}
        elif line.strip() and drug is not None and not line.startswith("   " + " " * 20):
            blocks[drug][line.split()[0]] = line
    return blocks


def test_every_drug_and_every_figure_with_its_unit_and_source(capsys):
    code, out, err = run(capsys, "library", "show", LIBRARY)
    assert code == 0, err
    assert out.splitlines()[0] == (f"{LIBRARY}: {SHIPPED_ID}, sealed; valid")
    rows = _rows(out)
    assert list(rows) == ["library", *DRUGS]  # the file's order
    doc = shipped()
    for name in DRUGS:
        spec = doc["drugs"][name]
        drug = rows[name]
        assert drug["dose_unit"].split()[1] == spec["dose_unit"]
        for conc in spec["concentrations"]["allowed"]:
            line = drug[f"concentrations.allowed[{conc['value']}]"]
            assert f"{conc['value']} {spec['concentrations']['unit']}" in line
            assert line.endswith(conc["source"])
        for section in ("limits", "titration"):
            for field, figure in spec[section].items():
                assert drug[f"{section}.{field}"].endswith(figure["source"]), field
        for field in ("step", "interval_s", "stop_at"):
            if spec["taper"]["required"]:
                assert drug[f"taper.{field}"].endswith(spec["taper"][field]["source"])
    nor = rows["norepinephrine"]
    assert nor["limits.hard_max"].split()[1:3] == ["3", "mcg/kg/min"]
    assert nor["titration.up_interval_s"].split()[1:3] == ["120", "s"]
    assert nor["titration.max_up_percent"].split()[1:4] == ["none", "(no", "limit)"]
    assert "weight_kg.max" in rows["library"]
    # a long advisory keeps its source, on the line below
    assert "vasopressin is not a monotherapy" in rows["vasopressin"]["advisories[needs_any]"]
    assert "seed 002_2e899deec2a64180.txt: 'do not use vasopressin as monotherapy'" in out
    assert "advisories[note]" in rows["dopamine"]


def test_one_drug_and_an_unknown_one_names_every_drug(capsys):
    code, out, _ = run(capsys, "library", "show", LIBRARY, "vasopressin")
    assert code == 0
    assert list(_rows(out)) == ["vasopressin"]
    code, out, err = run(capsys, "library", "show", LIBRARY, "norepi")
    assert (code, out) == (2, "")
    assert err == f"pumpguard: {LIBRARY} has no drug 'norepi'; its drugs: {', '.join(DRUGS)}\n"


def test_json_form_keeps_every_value_and_source(capsys):
    code, out, _ = run(capsys, "library", "show", "--json", LIBRARY, "norepinephrine")
    doc = json.loads(out)
    assert code == 0 and list(doc["drugs"]) == ["norepinephrine"]
    rows = {r["field"]: r for r in doc["drugs"]["norepinephrine"]}
    assert rows["limits.hard_max"] == {
        "field": "limits.hard_max",
        "value": "3",
        "unit": "mcg/kg/min",
        "source": shipped()["drugs"]["norepinephrine"]["limits"]["hard_max"]["source"],
    }
    assert doc["identity"]["sealed"] is True


def test_an_invalid_library_is_shown_with_its_problem_count(capsys, tmp_path):
    code, out, _ = run(capsys, "library", "show", invalid(tmp_path), "epinephrine")
    assert code == 0
    assert out.splitlines()[0].endswith(
        "NOT sealed; 5 problems (pumpguard library check lists them)"
    )
    assert "mcg/fortnight" in out
    shown = library.show(invalid(tmp_path))
    assert len(shown.problems) == 5 and len(shown.drugs) == 6


def test_a_file_that_is_not_json_or_missing_is_one_line(capsys, tmp_path):
    (tmp_path / "x.json").write_text("drugs: none")
    for path in (tmp_path / "x.json", tmp_path / "missing.json"):
        code, out, err = run(capsys, "library", "show", path)
        assert (code, out, err.count("\n")) == (2, "", 1)
