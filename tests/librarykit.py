"""What the tests of `pumpguard library` share: the shipped library, copies of it edited
as a pharmacist would (unsealed, invalid, changed), and the CLI run in-process."""

import io
import json
from pathlib import Path

from pumpguard.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = ROOT / "firmware" / "druglib.json"
SHIPPED = LIBRARY.read_text()
SHIPPED_CRC = json.loads(SHIPPED)["crc32"]
SHIPPED_VERSION = json.loads(SHIPPED)["version"]
# the shipped library as `pumpguard library` names it
SHIPPED_ID = f"{json.loads(SHIPPED)['name']} {SHIPPED_VERSION}, crc32 {SHIPPED_CRC}"


def run(capsys, *argv):
    """(exit code, stdout, stderr) of `pumpguard ARGV...` run through main()."""
    out = io.StringIO()
    code = main(list(map(str, argv)), out=out)
    return code, out.getvalue(), capsys.readouterr().err


def write(path, doc):
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def shipped():
    return json.loads(SHIPPED)


def places(value, path=()):
    """The path (keys and indexes) of every member and item under value, depth first:
    where the property tests put a value of another type."""
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        yield (*path, key)
        if isinstance(item, (dict, list)):
            yield from places(item, (*path, key))


def unsealed(tmp_path):
    """The shipped library with one reviewed edit and the old crc32 still in it."""
    doc = shipped()
    doc["drugs"]["norepinephrine"]["limits"]["hard_max"]["value"] = "2.5"
    return write(tmp_path / "unsealed.json", doc)


# (drug.field of druglib's problem, the edit that makes it), across four drugs
INVALID = {
    "norepinephrine.limits.hard_max": ("norepinephrine", "limits", "hard_max", "value", "0.5x"),
    "vasopressin.limits.soft_min": ("vasopressin", "limits", "soft_min", "source", ""),
    "epinephrine.dose_unit": ("epinephrine", "dose_unit", None, None, "mcg/fortnight"),
    "dobutamine.titration.max_up_percent": (
        "dobutamine",
        "titration",
        "max_up_percent",
        "value",
        50,
    ),
}


def invalid(tmp_path):
    doc = shipped()
    for drug, *keys, value in INVALID.values():
        node = doc["drugs"][drug]
        keys = [k for k in keys if k is not None]
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    return write(tmp_path / "invalid.json", doc)


MILRINONE = {
    "dose_unit": "mcg/kg/min",
    "weight_based": True,
    "concentrations": {
        "unit": "mcg/mL",
        "allowed": [{"value": "200", "source": "label: 200 mcg/mL premix"}],
    },
    "limits": {
        name: {"value": value, "source": "label"}
        for name, value in [
            ("hard_min", "0.1"),
            ("soft_min", "0.375"),
            ("soft_max", "0.75"),
            ("hard_max", "0.75"),
        ]
    },
    "titration": {
        "max_step_up": {"value": "0.125", "source": "site"},
        "max_up_percent": {"value": None, "source": "no ratio limit"},
        "up_interval_s": {"value": 600, "source": "site"},
        "max_step_down": {"value": "0.125", "source": "site"},
        "down_interval_s": {"value": 600, "source": "site"},
    },
    "taper": {"required": False, "source": "inotrope: no taper"},
    "advisories": [],
}


def changed(tmp_path):
    """A reviewed new version: figures and sources changed, a concentration added,
    milrinone added and phenylephrine removed; valid, not yet sealed."""
    doc = shipped()
    doc["version"] = "0.3.0"
    drugs = doc["drugs"]
    drugs["norepinephrine"]["limits"]["hard_max"] = {"value": "2.5", "source": "P&T 2026-11"}
    drugs["vasopressin"]["limits"]["soft_max"]["source"] = "pharmacist review 2026-11"
    drugs["epinephrine"]["concentrations"]["allowed"].append(
        {"value": "64", "source": "double strength, P&T 2026-11"}
    )
    drugs["dobutamine"]["titration"]["up_interval_s"]["value"] = 600
    del drugs["phenylephrine"]
    drugs["milrinone"] = MILRINONE
    return write(tmp_path / "changed.json", doc)
