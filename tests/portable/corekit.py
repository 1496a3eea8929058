# Shared fixtures for the safety-core tests, in the MicroPython subset (no pytest).
from firmware import druglib
from firmware.core import SafetyCore

M = 1000000  # micro-scaling: M is one whole unit (1 mL, 1 kg, 1 mcg/min...)
MIN = 60000  # one minute in ms
HOUR = 3600000


def _library_path():
    # tests/portable/corekit.py -> the repository (CPython) or board filesystem root
    # (MicroPython), both of which hold firmware/druglib.json.
    parts = __file__.replace("\\", "/").split("/")
    root = "/".join(parts[:-3])
    return (root + "/" if root else "") + "firmware/druglib.json"


def library_text():
    with open(_library_path()) as f:
        return f.read()


_LIBRARY = []


def library():
    """The shipped library, loaded once per run (tests never mutate it)."""
    if not _LIBRARY:
        _LIBRARY.append(druglib.load(library_text()))
    return _LIBRARY[0]


def make_core(**kwargs):
    return SafetyCore(library(), **kwargs)


# Typical starts, each valid against the shipped library.
def start_norepinephrine(core, ch=1, dose=100000, now=0, unit="mcg/kg/min", **kw):
    """0.1 mcg/kg/min, 80 kg, 16 mcg/mL, 50 mL: 30 mL/h."""
    args = {"weight": 80 * M, "conc": 16 * M, "conc_unit": "mcg/mL", "volume": 50 * M}
    args.update(kw)
    return core.start(ch, "norepinephrine", dose, unit, now, **args)


def start_vasopressin(core, ch=2, dose=30000, now=0, unit="units/min", **kw):
    """0.03 units/min, 0.1 units/mL, 50 mL: 18 mL/h."""
    args = {"conc": 100000, "conc_unit": "units/mL", "volume": 50 * M}
    args.update(kw)
    return core.start(ch, "vasopressin", dose, unit, now, **args)


def start_dobutamine(core, ch=1, dose=2500000, now=0, unit="mcg/kg/min", **kw):
    """2.5 mcg/kg/min, 80 kg, 1 mg/mL, 50 mL: 12 mL/h."""
    args = {"weight": 80 * M, "conc": 1 * M, "conc_unit": "mg/mL", "volume": 50 * M}
    args.update(kw)
    return core.start(ch, "dobutamine", dose, unit, now, **args)


def codes(core):
    return [a.code for a in core.alarms()]


def alarm(core, code):
    for a in core.alarms():
        if a.code == code:
            return a
    return None
