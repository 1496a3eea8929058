"""``check(path)``: every problem of a library file at once, and whether it is sealed."""

from dataclasses import dataclass
from typing import Any

from .document import FilePath, Identity, read


@dataclass(frozen=True)
class Check:
    """The verdict on one library file: ``problems`` every one druglib.load finds
    ("norepinephrine.limits.hard_max: ..."), the stored CRC's included; ``valid``: none
    but the CRC's; ``sealed``: the file's "crc32" is its content's CRC. A pump loads
    only a file that is both (``ok``)."""

    file: str
    problems: tuple[str, ...]
    content_problems: tuple[str, ...]
    identity: Identity

    @property
    def valid(self) -> bool:
        return not self.content_problems

    @property
    def sealed(self) -> bool:
        return self.identity.sealed

    @property
    def ok(self) -> bool:
        return self.valid and self.sealed

    def as_json(self) -> dict[str, Any]:
        identity = self.identity.as_json()
        del identity["sealed"]  # said once, beside valid
        return {
            "file": self.file,
            "valid": self.valid,
            "sealed": self.sealed,
            "problems": list(self.problems),
            "identity": identity,
        }


def check(path: FilePath) -> Check:
    """Check the library file at path (UsageError when it is not a JSON object)."""
    doc = read(path)
    return Check(str(path), doc.problems, doc.content_problems, doc.identity)
