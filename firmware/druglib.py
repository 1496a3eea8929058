"""The drug library: load, validate and identify firmware/druglib.json.

The file is data a pharmacist reviews. Every figure is an object
``{"value": ..., "source": "..."}``: doses and concentrations as decimal TEXT ("0.04",
never the JSON number 0.04, which a float parser would make inexact), intervals in whole
seconds, percentages as integers; ``"value": null`` means "no limit" where a limit is
optional. Dose figures are in the drug's ``dose_unit``; concentrations in its
``concentrations.unit``.

Loading (firmware/libload.py, imported for the call and dropped after it: a boot and a
LIB_COMMIT only) never stops at the first problem: ``load`` returns a Library whose ``problems``
lists every one, each as ``"<drug>.<field>: <what is wrong>"``. A library with problems
runs no infusion (the core refuses every start with ``library_invalid`` and says why).

Integrity: ``crc32`` in the file is ``"0x%08x"`` of CRC-32 over the document's
canonical form (firmware/canonical.py defines it). To reseal after a reviewed edit:
``pumpguard library seal firmware/druglib.json`` writes the new value into the file
(``pumpguard library check`` lists every problem; README, "For the pharmacist").
"""

import sys

from micropython import const

from firmware import units


class Drug:
    """One drug's rules, as micro-scaled integers in its dose_unit (None: no limit)."""

    # What only some drugs have, a taper and an advisory's partners, is the class's until
    # the loader sets it (firmware/libload.py): a drug without them holds 15 attributes,
    # a dict of 272 B on the 64-bit unix port, not 21 in 368 B (MicroPython grows it by
    # steps: 17 entries, then 23).
    taper = False
    taper_step = 0
    taper_interval_ms = 0
    taper_stop_at = 0
    needs_any = ()  # second-line: advisory unless one of these runs alongside
    advisory = None  # type: str | None  # text of that advisory

    def __init__(self, name, dose_unit):
        self.name = name
        self.dose_unit = dose_unit
        self.conc_unit = None  # type: str | None
        self.concs = ()
        self.hard_min = self.soft_min = self.soft_max = self.hard_max = 0
        self.start_max = None
        self.step_up = None
        self.up_percent = None
        self.up_interval_ms = 0
        self.step_down = None
        self.down_interval_ms = 0
        self.notes = ()

    @property
    def weight_based(self):
        return units.DOSE_UNITS[self.dose_unit][2]

    @property
    def family(self):
        return units.DOSE_UNITS[self.dose_unit][0]


class Library:
    """name, version, crc (computed), drugs {name: Drug}, weight and volume ranges, problems."""

    def __init__(self):
        self.name = None  # type: str | None
        self.version = None  # type: str | None
        # 0 until computed, and when the content has none: HELLO_R's library_crc is a u32
        # and the state record's crc32 an int (resume.py refuses any other); such a
        # library is invalid (a problem says why) and unsealed
        self.crc = 0
        self.drugs = {}
        self.weight_min = self.weight_max = 0
        self.volume_min = self.volume_max = 0
        self.problems = []

    @property
    def ok(self):
        return not self.problems

    def identity(self):
        return "%s %s (crc32 0x%08x)" % (self.name, self.version, self.crc)

    def why_invalid(self, limit=5):
        shown = "; ".join(self.problems[:limit])
        more = len(self.problems) - limit
        return shown + ("; and %d more" % more if more > 0 else "")


# The loader's two passes' modules, and the canonical form's (call()'s modules)
_FIRST = const(("jsonparts", "canonical", "jsontext"))
_LOADER = const(("libload",))
_CANONICAL = const(("canonical",))
# The bundle's library sits beside this module, on the board as on the host.
_LIBRARY = __file__.rsplit("/", 1)[0] + "/druglib.json"


def load(text):
    """Parse and validate the library JSON (str, or the file's bytes: UTF-8); never
    raises for content problems. Two passes, each one's code imported for it and
    dropped after (firmware/libload.py): jsonparts.first(), then libload.load()."""
    lib = Library()
    data = text.encode() if isinstance(text, str) else text
    text = None
    first = call(_FIRST, "first", data, lib.problems)
    if first is None:
        return lib
    return call(_LOADER, "load", data, first, lib)


def _load_file(path, buf=None):
    """load() of the file at path, its text never read whole: the first pass reads it
    through a window (jsonparts.Source), the second each drug's bytes (into buf, a
    bytearray, when they fit: the first pass's values read into it too made the 72 h at
    190k fail, measured)."""
    lib = Library()
    with open(path, "rb") as f:
        got = call(_FIRST, "first_file", f, lib.problems)
        if got is None:
            return lib
        return call(_LOADER, "load", f, got, lib, buf)


def active(store, buf=None):
    """The active drug library: the one pushed last (the store's druglib.json,
    firmware/libpush.py) when there is one, else the bundle's; its problems printed,
    every one, for the engineer at the console. A pushed library that the store cannot
    read is the one that failed: the built-in never stands in for it unseen (a store
    that reads nothing back reads no record either, startup.restore()). buf: a bytearray
    the bundle's library's loader may read each drug's bytes into (main.start()'s)."""
    from firmware.libpush import ACTIVE  # (libpush imports this module)

    try:
        text = store.read(ACTIVE)
    except OSError as exc:
        lib = Library()
        lib.problems.append("library: the store cannot read %s (%s)" % (ACTIVE, exc))
    else:
        # a library without a CRC (not JSON) says crc 0
        lib = _load_file(_LIBRARY, buf) if text is None else load(text)
        text = None
    for problem in lib.problems:
        print("pumpguard: drug library: %s" % (problem,))
    return lib


def crc_of(doc):
    """CRC-32 of the canonical form of a parsed document (firmware/canonical.py)."""
    return call(_CANONICAL, "crc_of", doc)


def canonical(doc):
    """The canonical form of a parsed document, as a str (firmware/canonical.py)."""
    return call(_CANONICAL, "canonical", doc)


def call(modules, name, *args):
    """modules[0]'s function name called with args, the modules named (this package's:
    modules[0] and what it imports that no resident module holds) imported for the call
    and dropped after it, but for those loaded before it: their code is collected, not
    held for good by a board that runs it at a boot or a rare request only (the loader,
    the boot, a library push). Whatever the import or the call raises is raised as it
    is (a MemoryError importing: no stretch of free heap large enough for the code)."""
    package = __name__.rpartition(".")[0]
    loaded = [m for m in modules if package + "." + m not in sys.modules]
    try:
        _import(package + "." + modules[0])
        return getattr(sys.modules[package + "." + modules[0]], name)(*args)
    finally:
        parent = sys.modules[package]
        for m in loaded:
            sys.modules.pop(package + "." + m, None)
            if m in parent.__dict__:
                delattr(parent, m)


_import = __import__  # (the tests' stand-in makes an import run out of memory)
