"""The drug library file, for the pharmacist who owns it and for scripts: ``check``,
``seal``, ``show``, ``diff`` (and ``review``: the diff with both identities). Each reads
the file itself and returns a dataclass; the rules of a valid library are
firmware/druglib.py's (``druglib.load``), never restated here. ``pumpguard library`` is
the command line over these."""

from .check import Check, check
from .diff import Change, Review, diff, review
from .document import Figure, Identity, LibraryProblems
from .seal import Sealed, seal
from .show import DrugView, Shown, show

__all__ = [
    "Change",
    "Check",
    "DrugView",
    "Figure",
    "Identity",
    "LibraryProblems",
    "Review",
    "Sealed",
    "Shown",
    "check",
    "diff",
    "review",
    "seal",
    "show",
]
