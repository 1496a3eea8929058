"""A drug library file as the host's tools read it: the text, the parsed document, its
identity, and every figure as a row (field, value, source) for show and diff.

The rules of a valid library are firmware/druglib.py's alone (``druglib.load``): nothing
here judges a figure. The rows are read from the JSON as written, so a library with
problems can still be shown and compared, and every member (an unknown one too) is a row.
"""

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from pumpguard._board.firmware import druglib

from ..api import args
from ..errors import PumpguardError, UsageError

# The problems druglib.load reports about the stored CRC, and nothing else, start so: a
# library whose only problem is one of these is valid but not sealed.
_CRC_PROBLEM = "library.crc32:"
# A library nests 6 levels (drugs, a drug, concentrations, allowed, an entry, its
# value); a file far deeper is no library, and would exhaust the recursion of the tools
# that read it level by level (druglib.canonical, _rows).
_DEPTH_MAX = 64
# Each section's figures are in this unit (the drug's own units filled in by _unit()).
# A library file as the API takes it.
FilePath = str | os.PathLike[str]
_SECTION_UNIT = {
    "weight_kg": "kg",
    "volume_ml": "mL",
    "limits": "dose",
    "titration": "dose",
    "taper": "dose",
    "concentrations": "conc",
}


def count(n: int, what: str) -> str:
    """ "1 problem", "4 problems": what a pharmacist reads in a report."""
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


class LibraryProblems(PumpguardError):
    """A library with problems where none may be (check, seal): ``problems`` lists every
    one, as druglib.load words them; the message says how many and lists them."""

    def __init__(self, headline: str, problems: Iterable[str]) -> None:
        super().__init__("\n".join([headline, *problems]))
        self.problems: tuple[str, ...] = tuple(problems)


@dataclass(frozen=True)
class Identity:
    """What a pump reports of a library: name and version as the file writes them
    (None when missing), ``crc`` the CRC-32 of its content (0 when it has none, e.g. a
    float in it: what the pump reports of it too), ``sealed`` whether the file's "crc32"
    says that CRC."""

    name: str | None
    version: str | None
    crc: int
    sealed: bool

    def line(self) -> str:
        """One line: name, version, CRC-32, whether sealed."""
        sealed = "sealed" if self.sealed else "NOT sealed"
        return f"{self.name} {self.version}, crc32 0x{self.crc:08x}, {sealed}"

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "crc": f"0x{self.crc:08x}",
            "sealed": self.sealed,
        }


@dataclass(frozen=True)
class Figure:
    """One row: ``field`` its path within its drug (or the library), e.g.
    "limits.hard_max", "concentrations.allowed[16]", "advisories[<its text>]"; ``value``
    as the JSON writes it; ``source`` the reviewed source (None where the file keeps
    none, as for dose_unit); ``unit`` the unit its value is in ("" when none); ``item``
    for an item of a list that is named by what it says (a concentration, an advisory):
    (the list's field, its content: the value, or kind and text), else None."""

    field: str
    value: object
    source: str | None
    unit: str = ""
    item: tuple[str, str] | None = None

    def shown(self) -> str:
        """The value as a reader sees it: "0.1 mcg/kg/min", "120 s", "none (no limit)"."""
        value = self.value
        if value is None:
            return "none (no limit)"
        if isinstance(value, (list, dict)) and not value:
            return "none (empty)"
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, dict):
            return "; ".join(f"{k}: {_plain(v)}" for k, v in value.items())
        text = _plain(value)
        return f"{text} {self.unit}" if self.unit else text

    def as_json(self) -> dict[str, Any]:
        return {"field": self.field, "value": self.value, "unit": self.unit, "source": self.source}


def _plain(value):
    if isinstance(value, list):
        return ", ".join(_plain(v) for v in value)
    return value if isinstance(value, str) else json.dumps(value)


def written(value: object) -> str:
    """How the JSON writes value, its type said: 'the text "4"', "the number 4": two
    values that read alike (shown()) are told apart by it."""
    kind = (
        "text"
        if isinstance(value, str)
        else "list"
        if isinstance(value, list)
        else "object"
        if isinstance(value, dict)
        else "number"
        if isinstance(value, (int, float)) and not isinstance(value, bool)
        else "value"  # true, false, null: their JSON says what they are
    )
    return f"the {kind} {json.dumps(value)}"


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
        sealed = not any(p.startswith(_CRC_PROBLEM) for p in self.library.problems)
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


def read(path: FilePath) -> "Document":
    """The library file at path; UsageError (one line) when it cannot be read, is not
    UTF-8 JSON, or is not a JSON object: such a file is no library to check; WrongType
    for a path that is no path (an int would be read as a file descriptor)."""
    path = args.path(path, "library file")
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
    except RecursionError:  # deeper than json can parse: deeper than _DEPTH_MAX too
        raise _too_deep(path) from None
    if _deeper_than(doc, _DEPTH_MAX):
        raise _too_deep(path)
    if not isinstance(doc, dict):
        raise UsageError(f"{path}: not a drug library: the JSON is not an object")
    return Document(path, text, doc, druglib.load(text))


def _too_deep(path):
    return UsageError(f"{path}: not a drug library: its JSON is nested more than {_DEPTH_MAX} deep")


def _deeper_than(doc, most):
    """Whether doc nests more than most levels; by a stack, not recursion (the depth is
    the file's: druglib's canonical form and _rows recurse once per level)."""
    stack = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > most:
                return True
            items = value.values() if isinstance(value, dict) else value
            stack.extend((item, depth + 1) for item in items)
    return False


def _rows(value, path, source):
    """Rows of a parsed JSON object. A member {"value", "source"} is one figure; an object
    with a "source" but no "value" (a taper that is not required) gives that source to
    each of its other members; a list's items are named by what they say (a
    concentration by its value, an advisory by its kind, "note 2" for a second note)."""
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
        # an empty object or list is a row: the CRC tells [] from {} from no member at all
        elif isinstance(member, dict):
            rows.extend(_rows(member, where, source) or [Figure(where, member, source)])
        elif isinstance(member, list):
            rows.extend(_items(member, where) or [Figure(where, member, source)])
        else:
            rows.append(Figure(where, member, source))
    return rows


def _items(items, path):
    """A concentration or an advisory also carries its content (Figure.item), by which
    diff matches two versions' items, so that inserting one shifts none of the others;
    any other item is named and matched by its position."""
    rows, kinds = [], []
    for i, item in enumerate(items):
        content = None
        if isinstance(item, dict) and "value" in item:
            key, value = item["value"], item["value"]
            content = _plain(key)
        elif isinstance(item, dict) and "kind" in item:
            kinds.append(_plain(item["kind"]))
            count = kinds.count(kinds[-1])
            key = kinds[-1] if count == 1 else f"{kinds[-1]} {count}"
            value = {k: v for k, v in item.items() if k not in ("kind", "source")}
            content = f"{kinds[-1]}: {_plain(item.get('text'))}"
        else:
            key, value = i, item
        source = _text(item.get("source")) if isinstance(item, dict) else None
        row = Figure(f"{path}[{_plain(key)}]", value, source)
        rows.append(row if content is None else replace(row, item=(path, content)))
    return rows


def _text(source):
    """A source as a reader sees it: one that is no text says what it is instead, so a
    number 4 is never shown (nor compared) as the text "4"."""
    if isinstance(source, str) or source is None:
        return source
    return f"{written(source)}, not a text"


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
        out.append(replace(row, unit=unit))
    return out
