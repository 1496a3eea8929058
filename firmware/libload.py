"""The drug library's loader: druglib.load() imports it for the call and drops it after
(a boot, a LIB_COMMIT), so none of its code stays in a board's heap.

Never the whole document at once, and never both halves of the loader at once: the
first pass is jsonparts.first()'s (druglib.load() imports jsonparts and canonical for it
and drops them before this module is imported): the text is checked as text, scanned
for the members of its top-level object and of its "drugs" object (their byte ranges),
every value parsed (the text is valid JSON), its strings counted and its canonical form
fed to the CRC. The second pass is this module's: each drug parsed on its own again
(json.loads of its bytes), checked into its Drug and dropped. At most one drug's tree is
held beside the text (a drug ~5 KB on the 64-bit unix port, the whole tree ~28 KB), and
one half of the loader's code (measured, issue 14, on the 64-bit unix port: the whole
loader held 20.3 KB of heap, its first half 10.4 KB, this one 9.3 KB).

Problems are those firmware/druglib.py's docstring describes, each
``"<drug>.<field>: <what is wrong>"``, every one listed, never raised.
"""

import json
import sys

from micropython import const

from firmware import units
from firmware.druglib import Drug, Library

_LIMITS = const(("hard_min", "soft_min", "soft_max", "hard_max"))
_ADVISORY_KINDS = const(("needs_any", "note"))
# A drug whose dose unit is unknown is checked on against this one, so that every other
# problem is still reported (a library with problems runs nothing anyway).
_FALLBACK_UNIT = const("mcg/min")
_MAX_FIGURE = const(0x3FFFFFFF)  # figures stay small ints on the device (MicroPython: 2^30)
# Drug names and advisory texts go into the core's messages whole, which must fit the
# wire (protocol/text.py TEXT_MAX): these bounds leave room for the rest of each message.
_NAME_MAX = const(16)
_ADVISORY_MAX = const(80)
# The library's identity travels whole in HELLO (protocol/SPEC.md, HELLO_R library and
# library_version): a longer one could not be reported, so it is refused here.
_LIBRARY_NAME_MAX = const(32)
_LIBRARY_VERSION_MAX = const(16)


def load(text, first=None, lib=None, buf=None):
    """Parse and validate the library JSON (str, or the file's bytes: UTF-8, or with
    first the binary file that holds them); never raises for content problems. first:
    jsonparts.first()'s result for these bytes (in lib.problems), when druglib.load()
    ran it before this module was imported; without it, it is run here. buf: a
    bytearray each drug's bytes are read into from the file when they fit (MicroPython's
    json parses them there: no stretch of heap needed per drug)."""
    data = text.encode() if isinstance(text, str) else text
    text = None
    if lib is None:
        lib = Library()
        from firmware import jsonparts

        first = jsonparts.first(data, lib.problems)
    if first is None:
        return lib
    doc, crc, no_form, spans = first
    first = None
    check = _Checker(lib.problems)
    lib.name = check.text(doc, "name", "library", _LIBRARY_NAME_MAX)
    lib.version = check.text(doc, "version", "library", _LIBRARY_VERSION_MAX)
    if no_form is not None:
        check.problem("library", str(no_form))
        check.problem("library.crc32", "cannot be checked: the content has no CRC")
    else:
        lib.crc = crc
        declared = doc.get("crc32")
        if not isinstance(declared, str) or declared.lower() != "0x%08x" % lib.crc:
            check.problem(
                "library.crc32",
                "bad CRC: file says %r, content 0x%08x, reseal"  # an alarm holds it whole
                % (declared, lib.crc),
            )
    _load_ranges(check, doc, lib)
    # absent, or not an object: a problem
    drugs = check.obj(doc, "drugs", "library") if spans is None else spans
    if not drugs:
        check.problem("library.drugs", "no drugs")
    # MicroPython's json reads bytes in place; from a binary file (druglib._load_file())
    # each drug's bytes are read
    buffer = isinstance(data, (bytes, bytearray))
    view = memoryview(data) if buffer and sys.implementation.name == "micropython" else data
    for name in sorted(drugs):
        if not 0 < len(name) <= _NAME_MAX or not _printable(name):
            check.problem(name, "a drug name is 1-%d printable ASCII characters" % (_NAME_MAX,))
        d = drugs[name]
        if spans is not None and buffer:  # parsed once already (jsonparts.first())
            d = json.loads(view[d[0] : d[1]])  # type: ignore[arg-type]
        elif spans is not None:
            data.seek(d[0])  # type: ignore[union-attr]
            n = d[1] - d[0]
            if buf is not None and n <= len(buf) and sys.implementation.name == "micropython":
                part = memoryview(buf)[:n]
                data.readinto(part)  # type: ignore[union-attr]
                d = json.loads(part)  # type: ignore[arg-type]
                part = None
            else:
                d = json.loads(data.read(n))  # type: ignore[union-attr]
        lib.drugs[name] = _load_drug(check, name, d)
        d = None
    for drug in lib.drugs.values():
        for partner in drug.needs_any:
            if partner not in lib.drugs:
                check.problem(drug.name + ".advisories", "names unknown drug %r" % (partner,))
    return lib


class _Checker:
    """Reads figures out of the parsed JSON, noting every problem by path."""

    def __init__(self, problems):
        self.problems = problems

    def problem(self, path, what, key=None):
        # at path, or at path.key (".key" literals would be interned for good: the
        # keys are names held anyway)
        if key:
            path += "." + key
        self.problems.append("%s: %s" % (path, what))

    def obj(self, doc, key, path):
        value = doc.get(key) if isinstance(doc, dict) else None
        if not isinstance(value, dict):
            self.problem(path or key, "missing or not an object", path and key)
            return {}
        return value

    def text(self, doc, key, path, most=None):
        """A non-empty text; with most, also printable ASCII of at most that length."""
        value = doc.get(key)
        if not isinstance(value, str) or not value:
            self.problem(path, "missing or not a non-empty text", key)
            return None
        if most is not None and (len(value) > most or not _printable(value)):
            self.problem(path, "must be 1-%d printable ASCII characters" % (most,), key)
            return None
        return value

    def figure(self, doc, key, path, kind, optional=False):
        """kind: "dose" (decimal text -> micro-scaled int), "seconds" or "percent" (int)."""
        return self.figure_of(doc.get(key), path + "." + key, kind, optional)

    def figure_of(self, fig, where, kind, optional=False):
        if fig is None and optional:
            return None
        if not isinstance(fig, dict):
            self.problem(where, 'missing; expected {"value": ..., "source": ...}')
            return None
        source = fig.get("source")
        if not isinstance(source, str) or not source.strip():
            self.problem(where, "missing source")
        value = fig.get("value")
        if value is None:
            if not optional:
                self.problem(where, "value is required")
            return None
        if kind == "dose":
            try:
                number = units.parse_decimal(value)
            except ValueError as exc:
                self.problem(where, str(exc))
                return None
        elif isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            self.problem(where, "%r is not a whole number of %s" % (value, kind))
            return None
        if number < 0 or number > _MAX_FIGURE:
            self.problem(where, "%r is out of range" % (value,))
            return None
        return number


def _load_ranges(check, doc, lib):
    weight = check.obj(doc, "weight_kg", "library")
    lib.weight_min = check.figure(weight, "min", "weight_kg", "dose") or 0
    lib.weight_max = check.figure(weight, "max", "weight_kg", "dose") or 0
    if not 0 < lib.weight_min <= lib.weight_max:
        check.problem("weight_kg", "need 0 < min <= max")
    volume = check.obj(doc, "volume_ml", "library")
    lib.volume_min = check.figure(volume, "min", "volume_ml", "dose") or 0
    lib.volume_max = check.figure(volume, "max", "volume_ml", "dose") or 0
    if not 0 < lib.volume_min <= lib.volume_max:
        check.problem("volume_ml", "need 0 < min <= max")


def _load_drug(check, name, d):
    if not isinstance(d, dict):
        check.problem(name, "not an object")
        return Drug(name, _FALLBACK_UNIT)
    unit = d.get("dose_unit")
    # `in` a dict hashes its operand: a list or object there would raise, not be a problem
    if not isinstance(unit, str) or unit not in units.DOSE_UNITS:
        check.problem(
            name,
            "unknown dose unit %r (known: %s)" % (unit, ", ".join(sorted(units.DOSE_UNITS))),
            "dose_unit",
        )
        unit = _FALLBACK_UNIT
    elif d.get("weight_based") is not units.DOSE_UNITS[unit][2]:
        check.problem(
            name + ".weight_based", "must be %s for %s" % (units.DOSE_UNITS[unit][2], unit)
        )
    drug = Drug(name, unit)
    _load_concs(check, name, d, drug)
    _load_limits(check, name, d, drug)
    _load_titration(check, name, d, drug)
    _load_taper(check, name, d, drug)
    _load_advisories(check, name, d, drug)
    return drug


def _load_concs(check, name, d, drug):
    path = name + ".concentrations"
    concs = check.obj(d, "concentrations", name)
    unit = concs.get("unit")
    if (
        not isinstance(unit, str)  # as for dose_unit: no hashing a list or an object
        or unit not in units.CONC_UNITS
        or units.CONC_UNITS[unit][0] != drug.family
    ):
        check.problem(path, "%r is not a %s concentration unit" % (unit, drug.family), "unit")
        return
    drug.conc_unit = unit
    allowed = concs.get("allowed")
    if not isinstance(allowed, list) or not allowed:
        check.problem(path, "missing or empty list", "allowed")
        return
    values = []
    first = {}  # value -> the index of its first entry
    for i in range(len(allowed)):
        where = "%s.allowed.%d" % (path, i)
        value = check.figure_of(allowed[i], where, "dose")
        if value == 0:
            check.problem(where, "must be above 0")
        elif value in first:
            # a start names its concentration by value: a second entry of one value is
            # never a second choice, most likely a typo for another figure
            check.problem(where, "duplicate of %s.allowed.%d" % (path, first[value]))
        elif value is not None:
            first[value] = i
            values.append(value)
    drug.concs = tuple(values)


def _load_limits(check, name, d, drug):
    path = name + "." + "limits"  # (not ".limits": interned for good)
    limits = check.obj(d, "limits", name)
    got = [check.figure(limits, key, path, "dose") for key in _LIMITS]
    drug.start_max = check.figure(limits, "start_max", path, "dose", optional=True)
    if None in got:
        return
    drug.hard_min, drug.soft_min, drug.soft_max, drug.hard_max = got
    if drug.hard_min == 0:
        check.problem(path, "must be above 0 (a zero dose is a stop)", "hard_min")
    if not drug.hard_min <= drug.soft_min <= drug.soft_max <= drug.hard_max:
        check.problem(
            path,
            "need hard_min <= soft_min <= soft_max <= hard_max (hard limit inside soft limit?)",
        )
    if drug.start_max is not None and not drug.hard_min <= drug.start_max <= drug.hard_max:
        check.problem(path, "must lie within the hard limits", "start_max")


def _load_titration(check, name, d, drug):
    path = name + "." + "titration"  # (not ".titration": interned for good)
    tit = check.obj(d, "titration", name)
    drug.step_up = check.figure(tit, "max_step_up", path, "dose", optional=True)
    drug.up_percent = check.figure(tit, "max_up_percent", path, "percent", optional=True)
    drug.up_interval_ms = (check.figure(tit, "up_interval_s", path, "seconds") or 0) * 1000
    drug.step_down = check.figure(tit, "max_step_down", path, "dose", optional=True)
    drug.down_interval_ms = (check.figure(tit, "down_interval_s", path, "seconds") or 0) * 1000
    if drug.up_percent is not None and drug.up_percent <= 100:
        check.problem(path + ".max_up_percent", "must be above 100 (100 allows no increase)")
    if drug.step_up == 0 or drug.step_down == 0:
        check.problem(path, "a step of 0 forbids every change: use null for no limit")


def _load_taper(check, name, d, drug):
    path = name + "." + "taper"  # (not ".taper": interned for good)
    taper = check.obj(d, "taper", name)
    required = taper.get("required")
    if not isinstance(required, bool):
        check.problem(path, "must be true or false", "required")
        return
    if not required:
        if not isinstance(taper.get("source"), str):
            check.problem(path, "missing source")
        return
    drug.taper = True
    drug.taper_step = check.figure(taper, "step", path, "dose") or 0
    drug.taper_interval_ms = (check.figure(taper, "interval_s", path, "seconds") or 0) * 1000
    drug.taper_stop_at = check.figure(taper, "stop_at", path, "dose") or 0
    if not drug.taper_step or not drug.taper_interval_ms:
        check.problem(path, "a taper needs a step and an interval above 0")
    # The taper stops from stop_at or below (channel.taper_after): at or above hard_min,
    # so the steps before it never run a dose below hard_min and the taper ends; within
    # one step, so the drop to 0 is never larger than a step.
    if drug.taper_stop_at < drug.hard_min:
        check.problem(path, "must not be below limits.hard_min", "stop_at")
    if drug.taper_stop_at > drug.taper_step:
        check.problem(path, "must not exceed the taper step", "stop_at")
    # Every decrease of a taper drug (titration, taper step, final stop) stays within
    # max_step_down: that is what makes "never cut short" checkable.
    if drug.step_down is None:
        check.problem(name + ".titration.max_step_down", "required for a taper drug")
    elif drug.taper_step > drug.step_down or drug.taper_stop_at > drug.step_down:
        check.problem(path, "step and stop_at must not exceed titration.max_step_down")


def _load_advisories(check, name, d, drug):
    path = name + ".advisories"
    items = d.get("advisories", [])
    if not isinstance(items, list):
        check.problem(path, "must be a list")
        return
    notes = []
    for i, item in enumerate(items):
        where = "%s.%d" % (path, i)
        if not isinstance(item, dict) or item.get("kind") not in _ADVISORY_KINDS:
            check.problem(where, "needs kind, one of %s" % (", ".join(_ADVISORY_KINDS),))
            continue
        text = check.text(item, "text", where)
        check.text(item, "source", where)
        if item["kind"] == "note":
            notes.append(text)
            continue
        if text is not None and (len(text) > _ADVISORY_MAX or not _printable(text)):
            check.problem(where, "at most %d printable ASCII characters" % (_ADVISORY_MAX,), "text")
        partners = item.get("drugs")
        # names only: load() looks each one up in the drugs (a list or object would raise)
        if (
            not isinstance(partners, list)
            or not partners
            or not all(isinstance(p, str) for p in partners)
        ):
            check.problem(where, "needs_any needs a list of drug names", "drugs")
            continue
        drug.needs_any = tuple(partners)
        drug.advisory = text
    drug.notes = tuple(notes)


def _printable(text):
    return all(" " <= ch <= "~" for ch in text)
