"""``diff(old, new)``: every figure that differs between two library files, drug by
drug, with both values and both sources; ``review(old, new)`` adds each file's
identity and writes it all as a plain-text record (``Review.lines()``).

Content is what the CRC covers: the "crc32" member is no figure (each file's identity
line says whether it is sealed), whitespace and member order are no change; but values
are compared as JSON writes them (true is not 1, 4 is not "4"), and a list's order and
its duplicates are content (the canonical form keeps them). A concentration or an
advisory is matched by what it says (its value; its kind and text), so one inserted is
one addition; its list's order changed is one change of that list. Order is stable:
the library's own figures, then the drugs by name; within one, the old file's order,
then what only the new one has in its order.
"""

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .document import Document, Figure, FilePath, Identity, count, read, written

DRUG_ADDED = "drug added"
DRUG_REMOVED = "drug removed"
ADDED = "added"
REMOVED = "removed"
VALUE = "value changed"
SOURCE = "source changed"
BOTH = "value and source changed"
ORDER = "order changed"  # a list's items (field: the list), each side its items in order
LIBRARY = "library"  # the drug name of a change to the library's own figures


@dataclass(frozen=True)
class Change:
    """One difference: ``drug`` (LIBRARY for the library's own figures), ``field`` (None
    for a drug added or removed: its figures follow as ADDED or REMOVED changes),
    ``kind`` one of this module's kinds, ``old``/``new`` the figure in each file
    (None where a file lacks it)."""

    drug: str
    field: str | None
    kind: str
    old: Figure | None = None
    new: Figure | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "drug": self.drug,
            "field": self.field,
            "kind": self.kind,
            "old": None if self.old is None else self.old.as_json(),
            "new": None if self.new is None else self.new.as_json(),
        }


@dataclass(frozen=True)
class Review:
    old_file: str
    new_file: str
    old: Identity
    new: Identity
    changes: tuple[Change, ...]

    def lines(self) -> Iterator[str]:
        """The review as a pharmacist reads it: both identities, each change, a summary."""
        yield f"old: {self.old_file}: {self.old.line()}"
        yield f"new: {self.new_file}: {self.new.line()}"
        if not self.changes:
            yield "no change in content"
            return
        drug = None
        for change in self.changes:
            if change.field is None:
                yield f"{change.drug}: {change.kind}"
                drug = change.drug
                continue
            if change.drug != drug:
                yield change.drug
                drug = change.drug
            yield from _change_lines(change)
        yield _summary(self.changes)

    def as_json(self) -> dict[str, Any]:
        return {
            "old": {"file": self.old_file, **self.old.as_json()},
            "new": {"file": self.new_file, **self.new.as_json()},
            "identical": not self.changes,
            "changes": [c.as_json() for c in self.changes],
        }


def _figure(f, typed=False):
    shown = f"{f.shown()} (in the file: {written(f.value)})" if typed else f.shown()
    return f"{shown} (source: {f.source})" if f.source is not None else shown


def _change_lines(change):
    if change.kind == ADDED and change.new is not None:
        yield f"  + {change.field}: {_figure(change.new)}"
    elif change.kind == REMOVED and change.old is not None:
        yield f"  - {change.field}: {_figure(change.old)}"
    elif change.old is not None and change.new is not None:
        # values that read alike yet differ (4 and "4") each say how the file writes them
        typed = change.old.shown() == change.new.shown() and not _same_value(change.old, change.new)
        yield f"  {change.field}: {change.kind}"
        yield f"    old: {_figure(change.old, typed)}"
        yield f"    new: {_figure(change.new, typed)}"


def _summary(changes):
    figures = [c for c in changes if c.field is not None]
    drugs = sorted({c.drug for c in figures if c.drug != LIBRARY})
    added = [c.drug for c in changes if c.kind == DRUG_ADDED]
    removed = [c.drug for c in changes if c.kind == DRUG_REMOVED]
    text = f"{count(len(figures), 'figure')} differ, in {count(len(drugs), 'drug')}"
    if any(c.drug == LIBRARY for c in figures):
        text += " and the library's own"
    if added:
        text += f"; drugs added: {', '.join(added)}"
    if removed:
        text += f"; drugs removed: {', '.join(removed)}"
    return text


def review(old: FilePath, new: FilePath) -> Review:
    """Compare the library files at old and new (UsageError when one is no JSON object)."""
    a, b = read(old), read(new)
    return Review(str(old), str(new), a.identity, b.identity, tuple(_changes(a, b)))


def diff(old: FilePath, new: FilePath) -> list[Change]:
    """Every change from the library file at old to the one at new ([] when their
    content is the same)."""
    return list(review(old, new).changes)


def _changes(a: Document, b: Document):
    yield from _figure_changes(LIBRARY, a.library_figures(), b.library_figures())
    old_names, new_names = set(a.drug_names()), set(b.drug_names())
    for name in sorted(old_names | new_names):
        if name not in new_names:
            yield Change(name, None, DRUG_REMOVED)
            yield from (Change(name, f.field, REMOVED, old=f) for f in a.drug_figures(name))
        elif name not in old_names:
            yield Change(name, None, DRUG_ADDED)
            yield from (Change(name, f.field, ADDED, new=f) for f in b.drug_figures(name))
        else:
            yield from _figure_changes(name, a.drug_figures(name), b.drug_figures(name))


def _figure_changes(drug, old, new):
    before, after = _matched(old), _matched(new)
    for key, f in before.items():
        g = after.get(key)
        if g is None:
            yield Change(drug, f.field, REMOVED, old=f)
        elif not _same_value(f, g) or f.source != g.source:
            kind = SOURCE if _same_value(f, g) else BOTH if f.source != g.source else VALUE
            yield Change(drug, g.field, kind, old=f, new=g)
    for key, g in after.items():
        if key not in before:
            yield Change(drug, g.field, ADDED, new=g)
    yield from _order_changes(drug, before, after)


def _matched(figures):
    """Each row by what matches it across two versions: its field; an item named by its
    content (Figure.item) by its list, that content and which occurrence of it it is, so
    that a duplicate is a row of its own."""
    seen = Counter()
    out = {}
    for f in figures:
        if f.item is None:
            out[(f.field,)] = f
        else:
            seen[f.item] += 1
            out[(*f.item, str(seen[f.item]))] = f
    return out


def _order_changes(drug, before, after):
    """A list whose items both versions hold stand in another order: one ORDER change."""
    lists = dict.fromkeys(key[0] for key in (*before, *after) if len(key) > 1)
    for path in lists:
        old = [key for key in before if len(key) > 1 and key[0] == path and key in after]
        new = [key for key in after if len(key) > 1 and key[0] == path and key in before]
        if old != new:
            yield Change(
                drug,
                path,
                ORDER,
                old=Figure(path, [key[1] for key in old], None),
                new=Figure(path, [key[1] for key in new], None),
            )


def _same_value(f, g):
    """Equal as JSON: Python's True == 1 and 1 == 1.0 are no equality here."""
    return f.unit == g.unit and _json(f.value) == _json(g.value)


def _json(value):
    return json.dumps(value, sort_keys=True)
