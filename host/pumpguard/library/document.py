"""A drug library file as the host's tools read it: the text, the parsed document, its
identity, and every figure as a row (field, value, source) for show and diff.

The rules of a valid library are firmware/druglib.py's alone (``druglib.load``): nothing
here judges a figure. The rows are read from the JSON as written, so a library with
problems can still be shown and compared, and every member (an unknown one too) is a row.
"""

import json
from dataclasses import dataclass

from firmware import druglib

from ..errors import PumpguardError, UsageError

# The problems druglib.load reports about the stored CRC, and nothing else, start so: a
# library whose only problem is one of these is valid but not sealed.
_CRC_PROBLEM = "library.crc32:"
# Each section's figures are in this unit (the drug's own units filled in by _unit()).
_SECTION_UNIT = {
    "weight_kg": "kg",
    "volume_ml": "mL",
    "limits": "dose",
    "titration": "dose",
    "taper": "dose",
    "concentrations": "conc",
}


def count(n, what):
    """ "1 problem", "4 problems": what a pharmacist reads in a report."""
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


class LibraryProblems(PumpguardError):
    """A library with problems where none may be (check, seal): ``problems`` lists every
    one, as druglib.load words them; the message says how many and lists them."""

    def __init__(self, headline, problems):
        super().__init__("\n".join([headline, *problems]))
        self.problems = tuple(problems)


@dataclass(frozen=True)
class Identity:
    """What a pump reports of a library: name and version as the file writes them
    (None when missing), ``crc`` the CRC-32 of its content (None: it has none, e.g. a
    float in it), ``sealed`` whether the file's "crc32" says that CRC."""

    name: str | None
    version: str | None
    crc: int | None
    sealed: bool

    def line(self):
        crc = "no crc" if self.crc is None else f"crc32 0x{self.crc:08x}"
        return f"{self.name} {self.version}, {crc}, {'sealed' if self.sealed else 'NOT sealed'}"

    def as_json(self):
        crc = None if self.crc is None else f"0x{self.crc:08x}"
        return {"name": self.name, "version": self.version, "crc": crc, "sealed": self.sealed}


@dataclass(frozen=True)
class Figure:
    """One row: ``field`` its path within its drug (or the library), e.g.
    "limits.hard_max", "concentrations.allowed[16]", "advisories[<its text>]"; ``value``
    as the JSON writes it; ``source`` the reviewed source (None where the file keeps
    none, as for dose_unit); ``unit`` the unit its value is in ("" when none)."""

    field: str
    value: object
    source: str | None
    unit: str = ""

    def shown(self):
        """The value as a reader sees it: "0.1 mcg/kg/min", "120 s", "none (no limit)"."""
        value = self.value
        if value is None:
            return "none (no limit)"
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, dict):
            return "; ".join(f"{k}: {_plain(v)}" for k, v in value.items())
        text = _plain(value)
        return f"{text} {self.unit}" if self.unit else text

    def as_json(self):
        return {"field": self.field, "value": self.value, "unit": self.unit, "source": self.source}


def _plain(value):
    if isinstance(value, list):
        return ", ".join(_plain(v) for v in value)
    return value if isinstance(value, str) else json.dumps(value)


@dataclass(frozen=True)
class Document:
    """A library file read whole: its path, text, parsed JSON object and druglib's
    verdict on it."""

    path: str
    text: str
    doc: dict
    library: druglib.Library

    @property
    def problems(self):
        return tuple(self.library.problems)

    @property
    def content_problems(self):
        """Every problem but the stored CRC's: what seal cannot mend."""
        return tuple(p for p in self.library.problems if not p.startswith(_CRC_PROBLEM))

    @property
    def identity(self):
        sealed = self.library.crc is not None and not any(
            p.startswith(_CRC_PROBLEM) for p in self.library.problems
        )
        name, version = self.doc.get("name"), self.doc.get("version")
        return Identity(
            name if isinstance(name, str) else None,
            version if isinstance(version, str) else None,
            self.library.crc,
            sealed,
        )

    def drug_names(self):
        """The drugs in the order the file lists them."""
        drugs = self.doc.get("drugs")
        return list(drugs) if isinstance(drugs, dict) else []

    def library_figures(self):
        """The library's own rows (name, version, about, weight and volume ranges): every
        top-level member but "drugs" and "crc32" (the seal, not content)."""
        body = {k: v for k, v in self.doc.items() if k not in ("drugs", "crc32")}
        return _with_units(_rows(body, "", None), None, None)

    def drug_figures(self, name):
        """One drug's rows, in the order the file writes them."""
        spec = self.doc["drugs"][name]
        if not isinstance(spec, dict):
            return [Figure("value", spec, None)]
        concs = spec.get("concentrations")
        conc_unit = concs.get("unit") if isinstance(concs, dict) else None
        return _with_units(_rows(spec, "", None), spec.get("dose_unit"), conc_unit)


def read(path):
    """The library file at path; UsageError (one line) when it cannot be read, is not
    UTF-8 JSON, or is not a JSON object: such a file is no library to check."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
        doc = json.loads(text)
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except ValueError as exc:
        raise UsageError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise UsageError(f"{path}: not a drug library: the JSON is not an object")
    return Document(path, text, doc, druglib.load(text))


def _rows(value, path, source):
    """Rows of a parsed JSON object. A member {"value", "source"} is one figure; an object
    with a "source" but no "value" (a taper that is not required) gives that source to
    each of its other members; a list's items are keyed by what they say, not where
    they stand (a concentration by its value, an advisory by its kind, "note 2" for a
    second note), so inserting one does not shift the others in a diff."""
    rows = []
    for key, member in value.items():
        where = f"{path}.{key}" if path else key
        if isinstance(member, dict) and "value" in member:
            extra = {k: v for k, v in member.items() if k not in ("value", "source")}
            rows.append(Figure(where, member["value"], _text(member.get("source"))))
            rows.extend(_rows(extra, where, None))
        elif isinstance(member, dict) and "source" in member:
            rest = {k: v for k, v in member.items() if k != "source"}
            source_of = _text(member["source"])
            rows.extend(_rows(rest, where, source_of) or [Figure(where, None, source_of)])
        elif isinstance(member, dict):
            rows.extend(_rows(member, where, source))
        elif isinstance(member, list):
            rows.extend(_items(member, where))
        else:
            rows.append(Figure(where, member, source))
    return rows


def _items(items, path):
    rows, kinds = [], []
    for i, item in enumerate(items):
        if isinstance(item, dict) and "value" in item:
            key, value = item["value"], item["value"]
        elif isinstance(item, dict) and "kind" in item:
            kinds.append(_plain(item["kind"]))
            count = kinds.count(kinds[-1])
            key = kinds[-1] if count == 1 else f"{kinds[-1]} {count}"
            value = {k: v for k, v in item.items() if k not in ("kind", "source")}
        else:
            key, value = i, item
        source = _text(item.get("source")) if isinstance(item, dict) else None
        rows.append(Figure(f"{path}[{_plain(key)}]", value, source))
    return rows


def _text(source):
    return source if isinstance(source, str) else None if source is None else _plain(source)


def _with_units(rows, dose_unit, conc_unit):
    """Each figure's unit, from its section and name (the document's own conventions,
    druglib.py's docstring): seconds for *_s, percent for *_percent, the drug's units
    for its doses and concentrations."""
    units = {"dose": dose_unit, "conc": conc_unit}
    out = []
    for row in rows:
        section, name = row.field.split(".")[0], row.field.split(".")[-1].split("[")[0]
        unit = _SECTION_UNIT.get(section, "")
        unit = units.get(unit, unit)
        if name.endswith("_s"):
            unit = "s"
        elif name.endswith("_percent"):
            unit = "%"
        shows_unit = isinstance(row.value, (str, int)) and not isinstance(row.value, bool)
        if not shows_unit or name in ("unit", "dose_unit") or not isinstance(unit, str):
            unit = ""
        out.append(Figure(row.field, row.value, row.source, unit))
    return out
