"""``show(path, drug=None)``: every drug of a library file, each figure with its unit
and its source, as a table a pharmacist reads (``Shown.lines()``) or as data."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError
from .document import Figure, FilePath, Identity, count, read

_VALUE_W = 32  # a longer value does not widen the value column


@dataclass(frozen=True)
class DrugView:
    name: str
    figures: tuple[Figure, ...]


@dataclass(frozen=True)
class Shown:
    """``library`` the library's own figures (none when one drug was asked for),
    ``drugs`` each drug asked for in the file's order; ``problems`` as check() finds
    them (shown, not refused: a library under review may have some)."""

    file: str
    identity: Identity
    problems: tuple[str, ...]
    library: tuple[Figure, ...]
    drugs: tuple[DrugView, ...]

    def lines(self) -> Iterator[str]:
        """The table: a head line (identity, problems), the library's own figures (when
        no one drug was asked for), then one block per drug; columns aligned across the
        whole table. A value too long for its column (a note, the library's "about")
        has its source on the line below, in the source column."""
        rows = [*self.library, *(f for d in self.drugs for f in d.figures)]
        field_w = max((len(f.field) for f in rows), default=0)
        value_w = max((len(f.shown()) for f in rows if len(f.shown()) <= _VALUE_W), default=0)

        def row(f):
            shown = f.shown()
            if len(shown) <= value_w:
                yield f"  {f.field:<{field_w}}  {shown:<{value_w}}  {f.source or ''}".rstrip()
                return
            yield f"  {f.field:<{field_w}}  {shown}"
            if f.source:
                yield f"  {'':<{field_w}}  {'':<{value_w}}  {f.source}"

        verdict = f"{count(len(self.problems), 'problem')} (pumpguard library check lists them)"
        yield f"{self.file}: {self.identity.line()}; {verdict if self.problems else 'valid'}"
        if self.library:
            yield ""
            yield "library"
            yield from (line for f in self.library for line in row(f))
        for drug in self.drugs:
            yield ""
            yield drug.name
            yield from (line for f in drug.figures for line in row(f))

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "identity": self.identity.as_json(),
            "problems": list(self.problems),
            "library": [f.as_json() for f in self.library],
            "drugs": {d.name: [f.as_json() for f in d.figures] for d in self.drugs},
        }


def show(path: FilePath, drug: str | None = None) -> Shown:
    """Every drug of the library file at path, or only drug (UsageError naming every
    drug of the file when it has no such drug)."""
    doc = read(path)
    names = doc.drug_names()
    if drug is not None and drug not in names:
        raise UsageError(f"{path} has no drug {drug!r}; its drugs: {', '.join(names) or 'none'}")
    wanted = names if drug is None else [drug]
    return Shown(
        str(path),
        doc.identity,
        doc.problems,
        tuple(doc.library_figures()) if drug is None else (),
        tuple(DrugView(name, tuple(doc.drug_figures(name))) for name in wanted),
    )
