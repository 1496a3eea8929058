# A varied session of the safety core: every kind of log entry and decision text it
# makes (starts with every argument, overrides, advisories, titrations up, down, held,
# refused, taper stops and their steps, faults and their end, emergency stops, acks, the link, odd
# inputs). test_core_logtext.py compares its texts with those the core made before
# its log kept codes and numbers (logtexts.json): they must be the same, byte for byte.
from firmware import startup
from firmware.core import SafetyCore
from tests.portable.corekit import HOUR, MIN, M, library
from tests.portable.coreview import since

NE = "norepinephrine"


def _none():
    return None  # a step whose calls return nothing worth comparing


UNIT = "mcg/kg/min"


def _forget_patient(core):
    # No patient's weight known (rules/inputs.py, check_patient), set here, not by a
    # PATIENT (that would log an entry the texts before it never had): the texts of a
    # start without a weight, and at another weight, as they were before the patient.
    core.weight = None


def _start(core, ch, drug, dose, unit, now, **kw):
    return core.start(ch, drug, dose, unit, now, **kw)


def _ne(core, ch, dose, now, **kw):
    args = {"weight": 80 * M, "conc": 16 * M, "conc_unit": "mcg/mL", "volume": 50 * M}
    args.update(kw)
    return core.start(ch, NE, dose, UNIT, now, **args)


def _vaso(core, ch, dose, now, **kw):
    args = {"conc": 100000, "conc_unit": "units/mL", "volume": 50 * M}
    args.update(kw)
    return core.start(ch, "vasopressin", dose, "units/min", now, **args)


def steps(core, t):
    """(callable, ...) of the session: each returns a Result or None."""
    big = 2**31 + 7  # an uptime past a small int on 32-bit MicroPython
    return [
        lambda: _ne(core, 1, 100000, t),
        lambda: _ne(core, 1, 100000, t),  # running: invalid state
        lambda: _vaso(core, 2, 30000, t + 1000),  # second line: advisory? (norepi runs)
        lambda: core.titrate(1, 120000, UNIT, t + 2000),  # too soon
        lambda: core.titrate(1, 120000, UNIT, t + 2000, override=True),
        lambda: core.titrate(1, 120000, UNIT, t + 20 * MIN),  # already at
        lambda: core.titrate(1, 90000, UNIT, t + 40 * MIN),
        lambda: core.titrate(1, 2000000, UNIT, t + 60 * MIN),  # step/hard max
        lambda: core.titrate(1, 150, "mcg/min", t + 61 * MIN),  # another unit
        lambda: core.titrate(1, 7200, "mcg/kg/h", t + 62 * MIN),
        lambda: core.titrate(1, -1, UNIT, t + 63 * MIN),
        lambda: core.titrate(1, True, UNIT, t + 63 * MIN),
        lambda: core.titrate(1, 100000, "mg/min", t + 64 * MIN),
        lambda: core.titrate(1, 100000, None, t + 64 * MIN),
        lambda: core.titrate(3, 100000, UNIT, t + 64 * MIN),
        lambda: core.stop(2, t + 65 * MIN),
        lambda: core.stop(2, t + 65 * MIN),
        lambda: core.stop(1, t + 90 * MIN),  # taper
        lambda: core.stop(1, t + 91 * MIN),  # taper running
        lambda: core.tick(t + 100 * MIN),
        lambda: core.tick(t + 120 * MIN),
        lambda: core.titrate(1, 50000, UNIT, t + 121 * MIN),  # cancels the taper
        lambda: core.stop(1, t + 122 * MIN),
        lambda: [core.tick(t + (130 + 10 * i) * MIN) for i in range(30)] and _none(),
        lambda: _vaso(core, 2, 30000, t + 10 * HOUR),  # alone: advisory
        lambda: _vaso(core, 1, 40000, t + 10 * HOUR, override=True),  # soft max, override
        lambda: _vaso(core, 1, 30000, t + 10 * HOUR),  # combined above hard max
        lambda: core.emergency_stop(2, "air_in_line", t + 11 * HOUR),
        lambda: core.emergency_stop(2, "bored", t + 11 * HOUR),
        lambda: core.ack(1, t + 11 * HOUR),
        lambda: core.ack(999, t + 11 * HOUR),
        lambda: core.ack(core.alarms()[0].id if core.alarms() else 0, t + 11 * HOUR),
        lambda: _forget_patient(core),
        lambda: _ne(core, 2, 100000, t + 12 * HOUR, weight=None),
        lambda: _ne(core, 2, 100000, t + 12 * HOUR, weight=500 * M),
        lambda: _ne(core, 2, 100000, t + 12 * HOUR, conc=None),
        lambda: _ne(core, 2, 100000, t + 12 * HOUR, conc=5 * M),
        lambda: _ne(core, 2, 100000, t + 12 * HOUR, conc_unit="mg/mL", conc=16000),
        lambda: core.emergency_stop(2, "extravasation", t + 12 * HOUR),
        lambda: _ne(core, 2, 100000, t + 12 * HOUR, conc_unit="furlong/mL"),
        lambda: _ne(core, 2, 100000, t + 12 * HOUR, volume=None),
        lambda: _ne(core, 2, 100000, t + 12 * HOUR, volume=9000 * M),
        lambda: _ne(core, 2, 100000000, t + 12 * HOUR),  # thousandfold slip
        lambda: _ne(core, 2, 1000, t + 12 * HOUR),  # below hard min
        lambda: _ne(core, 2, 900000, t + 12 * HOUR),  # above start max?
        lambda: _ne(core, 2, 900000, t + 12 * HOUR, override=True),
        lambda: core.titrate(2, 950000, UNIT, t + 13 * HOUR, override=True),
        lambda: core.titrate(2, 1900000, UNIT, t + 13 * HOUR, override=True),
        lambda: core.emergency_stop(2, "occlusion", t + 13 * HOUR),
        lambda: _ne(core, 2, 1500000, t + 13 * HOUR, override=True),
        lambda: core.emergency_stop(2, "occlusion", t + 13 * HOUR),
        lambda: core.start(2, "norepinephrin\u00e9-long-name-x", 1, UNIT, t + 12 * HOUR),
        lambda: core.start(2, NE, 100000, "mcg/kg/min-and-more", t + 12 * HOUR),
        lambda: core.start(2, NE, [1], UNIT, t + 12 * HOUR, weight=80 * M),
        lambda: core.start(2, NE, 0, UNIT, t + 12 * HOUR, weight=80 * M, volume=1),
        lambda: core.start(0, NE, 1, UNIT, t + 12 * HOUR),
        lambda: core.fault(1, "occlusion", t + 13 * HOUR),
        # the sensor clear again (logged: an input), or channel 1's start below is refused
        lambda: core.fault(1, None, t + 13 * HOUR + MIN),
        lambda: _forget_patient(core),
        lambda: _ne(core, 2, 100000, big, weight=75500000, volume=1 * M),
        lambda: [core.delivered(2, 400000), core.tick(big + 1000)] and _none(),
        lambda: [core.delivered(2, 700000), core.tick(big + 2000)] and _none(),
        lambda: core.supervise(2000, big + 3000),
        lambda: core.tick(big + 20000),
        lambda: core.host_seen(big + 21000),
        lambda: startup.store_lost(core, "crc mismatch", big + 22000),
        lambda: core.titrate(2, 100000, UNIT, big + 23000),
        lambda: _forget_patient(core),
        lambda: _start(
            core,
            1,
            "dobutamine",
            2500000,
            UNIT,
            big + 24000,
            weight=80 * M,
            conc=1 * M,
            conc_unit="mg/mL",
            volume=50 * M,
        ),
        lambda: core.titrate(1, 5000000, UNIT, big + 25000),
        lambda: core.titrate(1, 5000000, UNIT, big + 25000 + 20 * MIN, override=True),
        lambda: core.titrate(1, 1000000, UNIT, big + 26000 + 40 * MIN, override=True),
        lambda: core.stop(1, big + 27000 + 40 * MIN),
        lambda: _start(
            core,
            1,
            "phenylephrine",
            30 * M,
            "mcg/min",
            big + HOUR,
            conc=100 * M,
            conc_unit="mcg/mL",
            volume=50 * M,
        ),
        lambda: _start(
            core,
            1,
            "dopamine",
            5 * M,
            UNIT,
            big + HOUR,
            weight=80 * M,
            conc=1600000,
            conc_unit="mg/mL",
            volume=250 * M,
        ),
        lambda: core.emergency_stop(1, "clinician", big + 2 * HOUR),
        lambda: _start(
            core,
            1,
            "epinephrine",
            50000,
            UNIT,
            big + 3 * HOUR,
            weight=80 * M,
            conc=16 * M,
            conc_unit="mcg/mL",
            volume=50 * M,
            override=True,
        ),
        lambda: core.stop(1, big + 4 * HOUR),
        lambda: [core.tick(big + 4 * HOUR + i * 10 * MIN) for i in range(1, 40)] and _none(),
        lambda: core.fault(2, "syringe_empty", big + 5 * HOUR),
    ]


def run(log_size=64):
    """[text, ...]: every log entry (seq, at_ms, ch, kind, code, text as strings) and
    every decision's code and message, in order."""
    core = SafetyCore(library(), log_size=log_size)
    out = []
    seen = 0
    for step in steps(core, 5000):
        r = step()
        if r is not None and hasattr(r, "ok"):
            out.append("R %s %s %s" % (r.ok, r.code, r.message))
        for e in since(core.log, seen):
            out.append("L %d %d %d %s %s %s" % e)
            seen = e[0] + 1
    return out
