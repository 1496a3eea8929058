# The safety core's log and state as the tests read them, in the MicroPython subset:
# what the board never calls itself (every name a board module holds is interned for
# good on MicroPython, and its code is held in the heap: issue 14), read from the
# same fields the board's code keeps.
from firmware.channel import TAPERING
from firmware.recordtext import VERSION
from firmware.resume import record_of


def entry(log, seq):
    """EventLog entry seq as a tuple (seq, at_ms, ch, kind, code, text)."""
    return (seq, log.at_ms(seq), log.ch(seq), log.kind(seq), log.code(seq), log.text(seq))


def since(log, seq):
    """The entries with seq >= seq still held, oldest first (none for a seq from the
    future)."""
    first = log.first(seq)
    return [entry(log, s) for s in range(first, log.next_seq)]


def entries(log):
    return since(log, 0)


def last(log):
    return entry(log, log.next_seq - 1) if log.next_seq else None


class _Shell:
    # what firmware.handlers.patient reads of the shell: its core
    def __init__(self, core):
        self.core = core


def patient(core, weight, now_ms):
    """PATIENT as the shell serves it (firmware/handlers.py), its decision as the
    core logged it: a Result (ok, code, message)."""
    from firmware.handlers import patient as serve
    from firmware.result import Result

    name, _fields = serve(_Shell(core), [weight], now_ms)
    e = last(core.log)
    return Result(name == "PATIENT_R", e[4], e[5])


# ChannelStatus's fields, in the order it documents them
_STATUS_FIELDS = (
    "ch",
    "state",
    "drug",
    "dose",
    "dose_unit",
    "rate",
    "volume_infused",
    "volume_left",
    "time_to_empty_s",
    "alarms",
    "weight",
    "conc",
    "conc_unit",
    "volume",
    "taper_next_ms",
    "taper_next_dose",
    "override",
)


class ChannelStatus:
    """What status_of(core, ch) reports: ch, state, drug, dose, dose_unit, rate, volume_infused,
    volume_left, time_to_empty_s, alarms (codes); the last start's weight, conc,
    conc_unit and volume (the volume programmed; each None before a first start, the
    weight also when none was given); taper_next_ms and taper_next_dose (TAPERING only,
    else None: when the next step is due and the dose it sets), override (the dose was
    set past a soft limit by an override)."""

    def __init__(self, c, alarms):
        drug = c.drug
        self.ch = c.ch
        self.state = c.state
        self.drug = drug.name if drug else None
        self.dose = c.dose
        self.dose_unit = drug.dose_unit if drug else None
        self.rate = c.rate
        self.volume_infused = c.volume_infused
        self.volume_left = c.volume_left
        self.time_to_empty_s = c.time_to_empty_s()
        self.alarms = alarms  # codes
        self.weight = c.weight
        self.conc = c.conc if drug else None
        self.conc_unit = drug.conc_unit if drug else None
        self.volume = c.volume
        tapering = c.state == TAPERING
        self.taper_next_ms = c.taper_next_ms if tapering else None
        self.taper_next_dose = c.next_taper_dose() if tapering else None
        self.override = c.override


def status_of(core, ch):
    """Channel ch of core as a ChannelStatus (ValueError for no channel ch, as the
    core's own queries): read from the channel and the alarms listed, as the board's
    STATUS is (handlers.status)."""
    c = core.channel(ch)
    return ChannelStatus(c, [a.code for a in core.listed() if a.ch == ch])


def status_dict(status):
    """A ChannelStatus (status_of(core, ch)) as a dict of its fields."""
    return {name: getattr(status, name) for name in _STATUS_FIELDS}


def alarm_dict(a):
    """An alarm's fields as the state record holds them."""
    return {
        "id": a.id,
        "ch": a.ch,
        "code": a.code,
        "priority": a.priority,
        "message": a.message,
        "at_ms": a.at_ms,
        "acked": a.acked,
        "active": a.active,
    }


def snapshot(core):
    """A JSON-able dict of everything the core resumes from after a reset: the state
    record's content (firmware/recordtext.py writes it from the same fields)."""
    lib = core.library
    return {
        "version": VERSION,
        # An invalid library runs nothing, and its name may be None: the record names
        # no library ("", crc 0), which resume takes as another library's.
        "library": {
            "name": lib.name if lib.ok else "",
            "version": lib.version if lib.ok else "",
            "crc32": lib.crc if lib.ok else 0,
        },
        "at_ms": core._now,
        "weight": core.weight,
        "channels": [record_of(core.channel(ch)) for ch in range(1, core.channels + 1)],
        "alarms": [alarm_dict(a) for a in core.listed()],
        "next_alarm_id": core._alarms.next_id,
    }


def page(journal, first, room, most):
    """journal.page_into()'s page read back: (its entries as LOG_R's fields by name,
    the seq to ask for next)."""
    import struct

    buf = bytearray(9 + most * 170)
    end = journal.page_into(first, room, most, buf, 0)
    out = []
    o = 9
    for _ in range(buf[8]):
        seq, boot, at_ms, wall, ch = struct.unpack_from("<IIQQB", buf, o)
        o += 25
        kind = str(bytes(buf[o + 1 : o + 1 + buf[o]]), "utf-8")
        o += 1 + buf[o]
        code = buf[o]
        text = str(bytes(buf[o + 2 : o + 2 + buf[o + 1]]), "utf-8")
        o += 2 + buf[o + 1]
        entry = {"seq": seq, "boot_id": boot, "at_ms": at_ms, "wall_ms": wall, "ch": ch}
        if wall == 0xFFFFFFFFFFFFFFFF:
            entry["wall_ms"] = None
        entry.update({"kind": kind, "code": code, "text": text})
        out.append(entry)
    assert o == end, (o, end)
    return out, struct.unpack_from("<I", buf, 4)[0]
