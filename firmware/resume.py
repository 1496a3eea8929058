# Restore re-verifies: a record of the safety core (the state record recordtext.py
# writes, as the store gives it back; tests/portable/coreview.py's snapshot()) passes
# the same rules a command does before any channel delivers again.
#
# A CRC says a record is the one written, not that what it says is allowed (a hand edit
# re-sealed, a bug that wrote a bad record, a record of another library). Two outcomes:
#   - the record is not one this firmware writes for this board and library (a field
#     of the wrong type or range, a string too long, another library, another channel
#     count): ValueError, and the shell starts with every channel idle and store_lost
#     (firmware/main.py);
#   - a channel's infusion breaks a rule (its drug or concentration not in the library,
#     its dose outside the hard limits, its weight outside the library's range or not
#     the patient's (rules.check_patient; a record of format 2 has none), a rate
#     its dose does not give or above the pump's max, the patient's total above the hard
#     max): that channel stays stopped, with a HIGH restore_refused alarm naming why;
#     the channels that pass resume.
#
# A friend of core.py: restore() fills a core just built for the library and the board.
# Boot code, and a library push's commit's (firmware/libsteps.py): imported then only
# (SafetyCore.restore() imports it), and dropped after the boot (firmware/main.py) and
# the commit (druglib.call), so a running pump holds none of this code.
from micropython import const

from firmware import rules, units
from firmware.alarms import Alarm
from firmware.channel import _TRANSITIONS, Channel, describe, dose_text
from firmware.core import FAULTS
from firmware.persist import is_count
from firmware.recordtext import ALARM, CHANNEL
from protocol import reasons
from protocol.text import clip

# channel.py's IDLE, RUNNING, TAPERING, STOPPED, alarms.py's HIGH, MEDIUM, LOW and their
# ID_MAX and MESSAGE_MAX, recordtext.py's VERSION, protocol/text.py's TEXT_MAX as
# literals: const()s, no name of their own and no entry in this module's dict, which
# holds 35, not 45 (a step smaller: 592 B, not 752 B, found in a restoring boot's heap)
# (tests/test_qstr_budget.py checks they say the same)
_IDLE = const("idle")
_RUNNING = const("running")
_TAPERING = const("tapering")
_STOPPED = const("stopped")
_STATES = const(("idle", "running", "tapering", "stopped"))
_HIGH = const("high")
_MEDIUM = const("medium")
_PRIORITIES = const(("high", "medium", "low"))
_ID_MAX = const(0xFFFF)
_MESSAGE_MAX = const(104)
_VERSION = const(3)
_UNWEIGHED = const(2)  # the format before the patient's weight: read still, weight derived
_TEXT_MAX = const(120)
# The longest strings a record may hold (druglib's bounds for names; TEXT for messages).
_DRUG_MAX = const(16)
_LIBRARY_MAX = const(32)
# More alarms than one per reason per channel of the largest board is not a record.
_ALARMS_MAX = const(256)
_TOP = const(("version", "library", "at_ms", "channels", "alarms", "next_alarm_id", "weight"))
_LIBRARY = const(("name", "version", "crc32"))


def _is_time(v):
    """A channel's time (ms of uptime): negative after a restore at an uptime below the
    record's (a test's reset to 0), bounded as counts are."""
    return type(v) is int and -0x1000000000000 < v < 0x1000000000000  # 2**48


def _record(d, keys, what):
    """d is a dict holding exactly keys, else ValueError naming what."""
    if type(d) is not dict or len(d) != len(keys) or any(k not in d for k in keys):
        raise ValueError("%s is not as this firmware writes it" % (what,))
    return d


def _bad(what, key):
    return ValueError("%s: %s out of type or range" % (what, key))


# -- a record's channel and alarm, made again (here, not in channel.py and alarms.py: a
# running pump never calls them, and its heap holds no boot code) --------------------


def record_of(c):
    """Channel c as the state record holds it (recordtext.CHANNEL, its drug by name):
    what channel() makes it again from (tests/portable/coreview.py reads it too)."""
    saved = {}
    for key in CHANNEL:
        saved[key] = getattr(c, key)
    if c.drug is not None:
        saved["drug"] = c.drug.name
    return saved


def _path_to(state):
    """The fewest events that take a new channel (IDLE) to state through the table, or
    None when the table never gets there. A restore fires them, so the table stays the
    only writer of a channel's state: a state it cannot reach, no snapshot can make up.
    state is compared with ==, never hashed: a corrupt record may hold anything."""
    paths = [(_IDLE, [])]  # breadth first: the loop walks it as it grows
    seen = [_IDLE]
    for at, path in paths:
        if at == state:
            return path
        for event in sorted(_TRANSITIONS[at]):  # sorted: the same path on every port
            to = _TRANSITIONS[at][event]
            if to not in seen:
                seen.append(to)
                paths.append((to, path + [event]))
    return None


def _later(ms, offset):
    return None if ms is None else ms + offset


def channel(ch, saved, drugs, offset, near_empty_s):
    """Channel ch as record_of() saved it, its times moved by offset ms; drugs is the
    library's (name -> Drug). Raises ValueError for a record that is not channel ch
    or names a state the table never reaches. Nothing else is checked here: a record
    from the store passes check() first."""
    if saved["ch"] != ch:
        raise ValueError("snapshot channel %r out of order" % (saved["ch"],))
    path = _path_to(saved["state"])
    if path is None:
        raise ValueError("snapshot channel %d: unknown state %r" % (ch, saved["state"]))
    c = Channel(ch)
    for event in path:
        c.fire(event)
    if saved["drug"] is None:
        return c
    c.begin(drugs[saved["drug"]], saved["weight"], saved["conc"], saved["volume"], 0)
    c.volume_left = saved["volume_left"]
    c.volume_infused = saved["volume_infused"]
    c.override = saved["override"]
    c.last_up_ms = _later(saved["last_up_ms"], offset)
    c.last_down_ms = _later(saved["last_down_ms"], offset)
    c.taper_next_ms = saved["taper_next_ms"] + offset
    c.near_empty_raised = saved["near_empty_raised"]
    c.set_dose(saved["dose"] if c.delivering else 0, near_empty_s)
    return c


def _alarm(d):
    # an alarm of the record (recordtext.ALARM's members)
    alarm = Alarm(d["id"], d["ch"], d["code"], d["priority"], d["message"], d["at_ms"], d["active"])
    alarm.acked = d["acked"]
    return alarm


def _ints(d, what, keys, check, optional=False):
    for key in keys:
        v = d[key]
        if not (check(v) or (optional and v is None)):
            raise _bad(what, key)


def _flags(d, what, keys):
    for key in keys:
        if type(d[key]) is not bool:
            raise _bad(what, key)


def _text(v, most):
    return type(v) is str and len(v) <= most


def check(library, snapshot, channels):
    """ValueError unless snapshot has this firmware's format and every field its type
    and range, names this very library and holds this board's channels."""
    v = snapshot.get("version") if type(snapshot) is dict else None
    old = type(v) is int and v == _UNWEIGHED
    _record(snapshot, _TOP[:-1] if old else _TOP, "the record")
    if not old and (type(v) is not int or v != _VERSION):
        raise ValueError(
            "record format %s is not %d or %d" % (clip(repr(v), 12), _UNWEIGHED, _VERSION)
        )
    if not old:
        _ints(snapshot, "the record", ("weight",), rules.is_quantity, True)
    lib = _record(snapshot["library"], _LIBRARY, "the record's library")
    if not (_text(lib["name"], _LIBRARY_MAX) and _text(lib["version"], _LIBRARY_MAX)):
        raise _bad("the record's library", "name")
    if type(lib["crc32"]) is not int:
        raise _bad("the record's library", "crc32")
    _ints(snapshot, "the record", ("at_ms",), is_count)
    saved = snapshot["channels"]
    if type(saved) is not list or len(saved) != channels:
        raise ValueError(
            "record holds %s channels, this board has %d"
            % (len(saved) if type(saved) is list else "no", channels)
        )
    # Another library (or an invalid one) refuses the record only when a channel in it
    # delivers: a dose, a rate and a taper are verified against the library they were
    # set under, so one may not resume under another. A record where nothing delivers
    # carries no dose to verify: its alarms, times and counter hold under any library
    # (a drug a stopped channel shows is dropped if the library lacks it, restore()).
    # That is the record a library push leaves (pushed only while nothing delivers):
    # a power cut between the switch (the store's rename) and the next save boots with
    # the new library and that record, and must not raise store_lost for it.
    if not (library.ok and same_library(lib, library)) and any(_delivers(c) for c in saved):
        raise ValueError(
            "record of library %s %s, not %s"
            % (clip(lib["name"], 16), clip(lib["version"], 12), library.identity())
        )
    for i, c in enumerate(saved):
        what = "record channel %d" % (i + 1,)
        _record(c, CHANNEL, what)
        if c["ch"] != i + 1 or type(c["ch"]) is not int:
            raise ValueError("%s: out of order" % (what,))
        if not _text(c["state"], 16) or c["state"] not in _STATES:
            raise ValueError("%s: unknown state" % (what,))
        if not (c["drug"] is None or _text(c["drug"], _DRUG_MAX)):
            raise _bad(what, "drug")
        _ints(c, what, ("dose", "conc", "rate"), rules.is_quantity)
        _ints(c, what, ("weight", "volume"), rules.is_quantity, True)
        _ints(c, what, ("volume_left", "volume_infused"), is_count)
        _ints(c, what, ("taper_next_ms",), _is_time)
        _ints(c, what, ("last_up_ms", "last_down_ms"), _is_time, True)
        _flags(c, what, ("override", "near_empty_raised"))
    alarms = snapshot["alarms"]
    if type(alarms) is not list or len(alarms) > _ALARMS_MAX:
        raise _bad("the record", "alarms")
    for a in alarms:
        _record(a, ALARM, "a record alarm")
        _ints(a, "a record alarm", ("id", "at_ms"), is_count)
        if type(a["ch"]) is not int or not 0 <= a["ch"] <= channels:
            raise _bad("a record alarm", "ch")
        # reasons.number(), not reasons.NUMBER: that dict is made anew at each read on a
        # board (944 B on the 64-bit unix port, per alarm: a restoring boot at 190k ran
        # out there, measured, issue 14)
        if not _text(a["code"], 32) or reasons.number(a["code"]) == reasons.UNKNOWN:
            raise _bad("a record alarm", "code")
        if not _text(a["priority"], 8) or a["priority"] not in _PRIORITIES:
            raise _bad("a record alarm", "priority")
        if not _text(a["message"], _TEXT_MAX):
            raise _bad("a record alarm", "message")
        _flags(a, "a record alarm", ("acked", "active"))


def same_library(lib, library):
    """Whether the record's library lib (name, version, crc32) is library's identity."""
    return (lib["name"], lib["version"], lib["crc32"]) == (
        library.name,
        library.version,
        library.crc,
    )


def _delivers(c):
    return type(c) is dict and c.get("state") in (_RUNNING, _TAPERING)


def _infusion(library, saved):
    """Why the infusion channel saved names is not one of this library (a short text),
    or None: its drug, its concentration, its weight."""
    name = saved["drug"]
    if name is None:
        return "no drug recorded"
    if name not in library.drugs:
        return "%s is not in the drug library" % (name,)
    drug = library.drugs[name]
    if saved["conc"] not in drug.concs:
        return "%s %s is not a library concentration of %s" % (
            units.fmt(saved["conc"]),
            drug.conc_unit,
            name,
        )
    refused = rules.check_weight(library, drug, drug.dose_unit, saved["weight"])
    return refused.message if refused else None


def refusal(library, saved, channels, max_rate):
    """Why the delivering channel saved may not resume (a short text), or None.
    channels: the channels already resumed (the patient's total counts them)."""
    why = _infusion(library, saved)
    if why is not None:
        return why
    drug = library.drugs[saved["drug"]]
    dose, weight, conc = saved["dose"], saved["weight"], saved["conc"]
    if saved["state"] == _TAPERING and not drug.taper:
        return "%s is never tapered" % (drug.name,)
    if not drug.hard_min <= dose <= drug.hard_max:
        return "%s is outside its hard limits %s-%s" % (
            dose_text(drug, dose),
            units.fmt(drug.hard_min),
            dose_text(drug, drug.hard_max),
        )
    total = dose
    for o in channels:
        if o.delivering and o.drug is drug:
            total += o.dose
    if total > drug.hard_max:
        return "%s with the other channels is above the hard max %s" % (
            dose_text(drug, total),
            dose_text(drug, drug.hard_max),
        )
    left, volume = saved["volume_left"], saved["volume"]
    if left > library.volume_max:
        return "%s mL left is more than a syringe holds" % (units.fmt(left),)
    if volume is None:
        return "no volume programmed"
    if left > volume:
        return "%s mL left is more than the %s mL programmed" % (units.fmt(left), units.fmt(volume))
    rate = units.rate_for(dose, drug.dose_unit, weight, conc, drug.conc_unit)
    if rate != saved["rate"]:
        return "rate %s mL/h does not follow from %s" % (
            units.fmt(saved["rate"]),
            dose_text(drug, dose),
        )
    refused = rules.check_rate(drug, weight, conc, dose, max_rate)
    return refused.message if refused else None


def _bound(c, now_ms):
    # Times a record holds, shifted, are no later than a record this firmware writes
    # makes them: a last rise or fall at most now, a taper's next step at most one
    # interval ahead. One far ahead (re-sealed, a bug) would hold back titration or,
    # worse, a taper step forever (a stopped drug running on); clamped, the taper goes on.
    if c.last_up_ms is not None:
        c.last_up_ms = min(c.last_up_ms, now_ms)
    elif c.delivering:
        # A delivering channel always has one (its start's time): missing, it is taken
        # as now, so the rise interval restarts (the safe side) and no rule meets None.
        c.last_up_ms = now_ms
    if c.last_down_ms is not None:
        c.last_down_ms = min(c.last_down_ms, now_ms)
    if c.state == _TAPERING:
        c.taper_next_ms = min(c.taper_next_ms, now_ms + c.drug.taper_interval_ms)
    c.taper_next_ms = max(0, c.taper_next_ms)  # shown on the wire, never negative


def restore(core, snapshot, now_ms):
    """Fill core (just built for this library and board, its channels idle) from
    snapshot; raises ValueError, changing nothing a caller keeps, when check() fails.

    Times in the snapshot are shifted so that no time seems to have passed: the
    outage is unknown, so intervals and taper steps restart from now (later, never
    earlier)."""
    library = core.library
    check(library, snapshot, core.channels)
    shift = now_ms - snapshot["at_ms"]
    # The patient's weight. A record without one (format 2, or none known) takes the
    # weight of its first channel dosed by weight that resumes; another such channel at
    # another weight stays stopped. One dosed per minute runs at the patient's.
    weight = snapshot.get("weight")
    if weight is not None and not library.weight_min <= weight <= library.weight_max:
        weight = None  # outside this library's range: none known (a START sets it anew)
    core._now = now_ms
    core._watch.expect_host(now_ms)
    refused = []
    channels = core._channels  # in place: the watchers hold this very list
    for i, saved in enumerate(snapshot["channels"]):
        why = None
        if saved["state"] == _RUNNING or saved["state"] == _TAPERING:
            why = refusal(library, saved, channels[:i], core.max_rate)
            if why is None and library.drugs[saved["drug"]].weight_based:
                if weight is None:
                    weight = saved["weight"]
                elif saved["weight"] != weight:
                    # a start's refusal's text (rules.check_weight): one string interned
                    why = "weight %s kg is not the patient's %s kg" % (
                        units.fmt(saved["weight"]),
                        units.fmt(weight),
                    )
        else:
            saved = shown(library, saved)
        if why is None:
            c = channel(i + 1, saved, library.drugs, shift, core.near_empty_s)
            _bound(c, now_ms)
            channels[i] = c
        else:
            # stays stopped: a stopped channel, never started, as an emergency stop leaves it
            channels[i] = channel(
                i + 1, {"ch": i + 1, "state": _STOPPED, "drug": None}, library.drugs, 0, 0
            )
            refused.append((i + 1, "channel %d not resumed: %s" % (i + 1, why)))
    core.weight = weight
    for c in channels:
        if c.delivering and not c.drug.weight_based:
            c.weight = weight  # its rate follows none
    alarms = core._alarms
    renumber = []
    for saved in snapshot["alarms"]:
        alarm = _alarm(saved)
        alarm.at_ms = max(0, alarm.at_ms + shift)  # the wire's times are never negative
        if not 1 <= alarm.id <= _ID_MAX or alarms.listed(alarm.id):
            renumber.append(alarm)  # an id the wire cannot carry, or one listed twice
        else:
            alarms.items.append(alarm)
    next_id = snapshot["next_alarm_id"]
    alarms.next_id = next_id if type(next_id) is int else 1  # new_id() wraps the range
    for alarm in renumber:
        alarm.id = alarms.new_id()
        alarms.items.append(alarm)
    # A sensor's fault is over as far as a record can tell: the shell reads the sensors
    # again in its first turn (firmware/shell.py), and one still reporting raises its
    # alarm anew; one that cleared while the board was off must not stay listed active,
    # which no acknowledgement would then remove.
    for code in FAULTS.values():
        for c in channels:
            alarms.clear(c.ch, code)
    for ch, why in refused:
        core._watch.alarm(ch, "restore_refused", _HIGH, clip(why, _MESSAGE_MAX), now_ms, False)
    for c in channels:
        if c.delivering:
            core._watch.alarm(
                c.ch,
                "resumed_after_reset",
                _MEDIUM,
                "channel %d resumed after a reset: %s" % (c.ch, describe(c)),
                now_ms,
                False,
            )
    if refused:
        core._watch.advisories(now_ms)  # a partner drug that did not resume
    core.log.add(now_ms, 0, "input", "restored", "restored from snapshot")
    lib = snapshot["library"]
    if library.ok and lib["name"] and not same_library(lib, library):
        # The switch a power cut kept out of the record (and of the log): said now. Only
        # between two valid libraries (a record of an invalid one names "", core
        # snapshot()): a boot to an invalid one is no switch, its library_refused alarm
        # says what happened, and a boot from one ends that condition.
        was = switched_from(library, lib["name"], lib["version"], lib["crc32"])
        core.log.add(now_ms, 0, "input", "library_switched", "at boot: " + was)


def shown(library, saved):
    """A channel's record that delivers nothing, as library can show it: the drug it
    ran is only shown, so a name the library lacks (or figures it would not take) is
    dropped, not refused."""
    if saved["drug"] is not None and _infusion(library, saved) is not None:
        saved = dict(saved)
        saved["drug"] = None
    return saved


def switched_from(library, name, version, crc):
    """ "now <library>, was <the one before>", both named whole within the log's text:
    the library before by its version and CRC when the name is the same (a new version
    of one library, the usual push), else by its name and version."""
    if name == library.name:
        was = "%s (crc32 0x%08x)" % (version, crc)
    else:
        was = "%s %s" % (name, version)
    return clip("now %s, was %s" % (library.identity(), was), _TEXT_MAX - len("at boot: "))
