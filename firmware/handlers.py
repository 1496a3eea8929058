# The requests the device serves: one handler each, handler(shell, f, now) ->
# (response name, fields), and SERVED, the table the shell dispatches on (the way
# mpremote's commands.py holds the do_* handlers its main.py's table names).
#
# f is the request's fields in their catalog order (messages.decode_into: a list the
# shell reuses, no dict per request), the answer's fields a tuple in its order (or a
# dict by name: libpush's). The shell (shell.py) has decoded the request, checked its
# session, its replay cache and its authentication (gate.py: tag, counter, seq, role),
# and encodes, tags, caches and sends what the handler returns. Handlers read the
# shell's session state and ask the safety core; a command the core refuses is
# answered REFUSED, its reason sent as its wire number (protocol/reasons.py).
from micropython import const

from firmware import VERSION, libpush, rules
from firmware.channel import TAPERING
from firmware.handover import move
from firmware.result import Result, refuse
from firmware.units import fmt
from protocol import auth, catalog, reasons
from protocol.frame import MAX_PAYLOAD
from protocol.text import clip

FIRMWARE_VERSION = "pumpguard " + VERSION  # what HELLO_R reports
# A taper plan is held from the STOP that started it until the taper ends; a reset
# loses it (the core resumes the taper, and STATUS still shows when its next step is).
_NO_TAPER = "channel %d has no taper plan: none runs, or it began before the last reset"


def hello(shell, f, now):
    # The gate checked protocol, schema and role and opened the session (shell.slot): a
    # new one each time, even for the same host, whose old one may hold requests still
    # in flight, which must not count in the new one. Its nonce comes from the board's
    # entropy port; a retried HELLO's session keeps the one it drew, so the retry's
    # HELLO_R is the first one's, byte for byte.
    sessions = shell.sessions
    i = shell.slot
    if sessions.nonce[i] is None:
        sessions.nonce[i] = shell.entropy.random(auth.NONCE)
    role = f[5]
    sessions.role[i] = role
    # The host's clock, for the event log's entries from its AUTH on (authenticate)
    sessions.wall[i] = f[4] - now if f[4] else None
    lib = shell.core.library
    return "HELLO_R", (
        catalog.PROTOCOL_VERSION,
        catalog.SCHEMA_HASH,
        FIRMWARE_VERSION,
        shell.board.NAME,
        shell.channels,
        _lib_name(lib),
        lib.version or "",
        lib.crc or 0,  # a u32 always, whatever made the library
        shell.boot_id,
        1,  # replay_window, per session: the answer to its last request
        MAX_PAYLOAD,
        shell.bundle,
        shell.keys.board_id,
        0 if shell.keys.insecure else 1,
        role,
        sessions.nonce[i],
    )


def _lib_name(lib):
    # HELLO_R's and INFO_R's library, library_version and library_crc are of the active
    # library (INFO tells a session open across a push the one it switched to).
    return lib.name or "invalid"


def authenticate(shell, f, now):
    # The host's proof of the role's key over this session's transcript; refused, the
    # shell ends the pending session (gate.answer). The reason names the role, never a
    # key.
    sessions = shell.sessions
    i = shell.slot
    ks = sessions.ks[i]
    th = sessions.th[i]
    if ks is None:
        why = "the board has no keys provisioned: reflash it with pumpguard flash"
    elif not auth.equal(f[0], auth.proof(ks, th, auth.HOST)):
        why = "the board refused the key for role %s" % (catalog.ROLE_NAMES[sessions.role[i]],)
    else:
        room = sessions.make_room(i, now)
        if room == -2:  # every other session a live supervisor, and this no clinician
            why = "busy: the other sessions are supervising hosts'; nothing ran"
            return "ERROR", (catalog.ERR_BUSY, why)
        if room >= 0:
            shell.close_session(room, now)
        sessions.authed[i] = True
        if sessions.wall[i] is not None:  # the event log's entries carry wall time from now
            shell.journal.set_wall(sessions.wall[i])
        return "AUTH_R", (auth.proof(ks, th, auth.DEVICE),)
    shell.auth_refused += 1
    n = shell.auth_refused
    if n & (n - 1) == 0:
        # Logged at the 1st, 2nd, 4th, 8th... refusal since boot: each entry costs the
        # flash a log append and a state save, and anyone on the line can send wrong
        # keys as fast as the line goes. INFO's auth_refused counts every one.
        shell.core.log.add(
            now,
            0,
            "input",
            "auth_refused",
            why if n == 1 else "%s (%d refused since boot)" % (why, n),
        )
    return "ERROR", (catalog.ERR_AUTH, why)


def key(shell, f, now):
    # A new key for a role, wrapped under this (service) session's key and the
    # request's counter; the keys file is rewritten atomically (keys.py). Sessions
    # open keep their session keys.
    role = f[0]
    if role not in catalog.ROLE_NAMES:
        return _error(catalog.ERR_BAD_PAYLOAD, "role %d unknown: no key replaced" % (role,))
    name = catalog.ROLE_NAMES[role]
    if shell.keys.insecure:
        return _error(catalog.ERR_FORBIDDEN, "insecure mode has no keys to replace")
    sessions = shell.sessions
    i = shell.slot
    new = auth.wrap(sessions.ks[i], sessions.host_ctr[i], f[1])
    try:
        shell.keys.rotate(role, new)
    except ValueError as exc:  # a key the next boot would refuse: nothing written
        return _error(catalog.ERR_BAD_PAYLOAD, "key for role %s not replaced: %s" % (name, exc))
    except OSError as exc:  # the store failed: the old key stays, in RAM and in the file
        return _error(
            catalog.ERR_INTERNAL,
            "key for role %s not replaced: the store failed (%s)" % (name, clip(str(exc), 40)),
        )
    shell.core.log.add(now, 0, "input", "key_rotated", "key for role %s replaced" % (name,))
    return "KEY_R", (role, auth.key_check(new))


def _error(code, message):
    return "ERROR", (code, message)


def lib_begin(shell, f, now):
    return _push(shell, "LIB_BEGIN_R", now, shell.push.begin, f[0], f[1])


def lib_data(shell, f, now):
    return _push(shell, "LIB_DATA_R", now, shell.push.data, f[0], f[1], f[2])


def lib_commit(shell, f, now):
    return _push(shell, "LIB_COMMIT_R", now, shell.push.commit, shell.applied)


def _push(shell, name, now, step, *args):
    # A step of a library push (libpush.py): its answer's fields, or the refusal.
    try:
        r = step(shell.core, shell.sessions.sid[shell.slot], now, *args)
    except libpush.Unsure as exc:  # the push is over; the core runs no library (libpush.py)
        return _error(catalog.ERR_INTERNAL, exc.args[0])
    except OSError as exc:  # the store failed: the push is over, the active library stays
        shell.push.end()
        return _error(
            catalog.ERR_INTERNAL,
            "library push ended, nothing switched: the store failed (%s)" % (clip(str(exc), 40),),
        )
    if isinstance(r, Result):
        return refused(r, now)
    return name, r


# The answers written in place (_A, below), each an index there: a const, no name
# interned (tests/test_qstr_budget.py).
_ALARMS_R = const(0)
_RECORDS = const(1)  # ALARMS_R's records
_EVENT = const(2)  # EV_ALARM's


def supervise(shell, f, now):
    shell.supervise(f[0], now)
    return "SUPERVISE_R", (f[0],)


def info(shell, f, now):
    d = shell.decoder
    lib = shell.core.library
    return "INFO_R", (
        now,
        shell.boot_id,
        d.frames,
        d.bad_crc,
        d.oversize,
        d.bad_cobs,
        d.unknown,
        d.bad_length,
        shell.auth_refused,
        shell.bad_tag,
        shell.stale_ctr,
        shell.forbidden,
        len(lib.problems),
        _lib_name(lib),
        lib.version or "",
        lib.crc or 0,
    )


def heartbeat(shell, f, now):
    active = 0
    for alarm in shell.core.listed():  # read at once: no copy of the list
        if not alarm.acked:
            active += 1
    return "HEARTBEAT_R", (now, shell.boot_id, active)


def status(shell, f, now):
    # Read from the channel itself (core.channel), its alarms' ids written in place into
    # the shell's list (a record of one field is encoded from its bare value): no status
    # object, no list made per request.
    ch = f[0]
    if not 1 <= ch <= shell.channels:
        return _no_channel(shell, ch, now)
    core = shell.core
    c = core.channel(ch)
    drug = c.drug
    ids = shell.ids
    n = 0
    for a in core.listed():
        if a.ch == ch:
            if n < len(ids):
                ids[n] = a.id
            else:
                ids.append(a.id)
            n += 1
    while len(ids) > n:
        ids.pop()
    tapering = c.state == TAPERING
    return "STATUS_R", (
        ch,
        c.state,
        (drug.name if drug else None) or "",
        c.dose or 0,
        (drug.dose_unit if drug else None) or "",
        c.rate,
        c.volume_infused,
        c.volume_left,
        c.time_to_empty_s(),
        ids,
        c.taper_next_ms if tapering else None,
        c.next_taper_dose() if tapering else None,
        c.override and c.delivering,  # of the running dose (SPEC §5): none once stopped
        c.conc if drug else None,
        (drug.conc_unit if drug else None) or "",
        c.weight,
        c.volume,
        core.weight,
    )


def _no_channel(shell, ch, now):
    return refused(refuse("unknown_channel", "no channel %d (1..%d)" % (ch, shell.channels)), now)


def start(shell, f, now):
    # START: ch, drug, dose, unit, weight, conc, conc_unit, volume, override. The volume
    # is bounded by the syringe the channel's motor has loaded; once accepted, the motor
    # counts its travel from it (load()).
    r = shell.core.start(
        f[0],
        f[1],
        f[2],
        f[3],
        now,
        weight=f[4],
        conc=f[5],
        conc_unit=f[6] or None,
        volume=f[7],
        override=f[8],
        syringe=_syringe(shell, f[0]),
    )
    if not r.ok:
        return refused(r, now)
    shell._motors[f[0] - 1].load(f[7])  # accepted: f[0] is a channel
    return "START_R", (f[0], r.dose, r.unit, r.rate)


def handover(shell, f, now):
    # HANDOVER: ch, to, drug, conc, conc_unit, volume. As START's, the volume is bounded
    # by the syringe the new channel's motor has loaded, which counts its travel from it
    # once accepted; a taper plan held for the old channel is the new one's now.
    to = f[1]
    r = move(shell.core, f[0], to, f[2], f[3], f[4] or None, f[5], _syringe(shell, to), now)
    if not r.ok:
        return refused(r, now)
    shell._motors[to - 1].load(f[5])  # accepted: both are channels
    tapers = shell.tapers
    tapers[to - 1] = tapers[f[0] - 1]
    tapers[f[0] - 1] = None
    return "HANDOVER_R", (f[0], to, shell.core.channel(to).state, r.dose, r.unit, r.rate)


def patient(shell, f, now):
    # PATIENT: weight (None: no patient known, the next start's weight is the new one's),
    # answered with the patient's weight now (rules.check_patient). Here, not in a module
    # of its own nor in the core's: each costs the heap of a board that has none to spare.
    core = shell.core
    weight = f[0]  # the decoder's: an i32 or None
    # whole texts (each past 10 characters): no name interned for them
    if weight is None:
        said = "patient clear"
    elif weight < 0:
        said = "patient %d millionths of a kg" % (weight,)
    else:
        said = "patient %s kg" % (fmt(weight),)
    core._command(now, 0, "patient", said)
    r = rules.check_patient(core.library, weight, core.weight, core._channels)
    if r is None:
        core.weight = weight
        for c in core._channels:  # none by weight (check_patient): no rate changes
            if c.delivering:
                c.weight = weight
        r = Result(True, "patient_set", "patient cleared" if weight is None else said)
    core._decided(now, 0, r)
    if not r.ok:
        return refused(r, now)
    return "PATIENT_R", (weight,)


def _syringe(shell, ch):
    # the capacity of the syringe channel ch's motor has loaded (None: no such channel)
    motors = shell._motors
    return motors[ch - 1].syringe() if 0 < ch <= len(motors) else None


def titrate(shell, f, now):
    # TITRATE: ch, dose, unit, override
    r = shell.core.titrate(f[0], f[1], f[2], now, override=f[3])
    if not r.ok:
        return refused(r, now)
    return "TITRATE_R", (f[0], r.dose, r.unit, r.rate)


def stop(shell, f, now):
    ch = f[0]
    r = shell.core.stop(ch, now)
    if not r.ok:
        return refused(r, now)
    unit = r.unit or ""
    plan = r.plan if r.code == "taper_started" else []
    shell.tapers[ch - 1] = (unit, plan) if plan else None
    page = plan if len(plan) <= catalog.TAPER_PAGE else plan[: catalog.TAPER_PAGE]
    return "STOP_R", (ch, unit, len(plan), page)


def taper(shell, f, now):
    ch = f[0]
    if not 1 <= ch <= shell.channels:
        return _no_channel(shell, ch, now)
    taper = shell.tapers[ch - 1]
    if taper is None or shell.core.channel(ch).state != TAPERING:
        shell.tapers[ch - 1] = None  # over, or cut short by an emergency stop
        return refused(refuse("invalid_state", _NO_TAPER % ch), now)
    unit, plan = taper
    first = f[1]
    page = plan[first : first + catalog.TAPER_PAGE]
    return "TAPER_R", (ch, unit, len(plan), page)


def estop(shell, f, now):
    r = shell.core.emergency_stop(f[0], f[1], now)
    if not r.ok:
        return refused(r, now)
    return "ESTOP_R", (f[0],)


def alarms(shell, f, now):
    # From the core's own list (core.listed(): read at once), no copy or slice of it
    listed = shell.core.listed()
    answer = _A[_ALARMS_R]
    page = answer[1][1]
    while page:
        page.pop()
    i = f[0]
    while i < len(listed) and len(page) < catalog.ALARMS_PAGE:
        page.append(_alarm_into(_A[_RECORDS][len(page)], listed[i]))
        i += 1
    answer[1][0] = len(listed)
    return answer


def ack(shell, f, now):
    r = shell.core.ack(f[0], now)
    if not r.ok:
        return refused(r, now)
    return "ACK_R", (f[0],)


# ALARMS_R (name, fields) and its records, EV_ALARM's: made once, written in place (an
# answer or event is encoded before the next is made, shell.py).
_A = (
    ("ALARMS_R", [0, []]),
    [[None] * 7 for _ in range(catalog.ALARMS_PAGE)],
    [None] * 7,
)  # type: tuple


def log(shell, f, now):
    # Served from the persistent log (journal.py), packed: as many entries as fit.
    # The journal writes LOG_R's payload from its records straight into the wire
    # (messages.wire: a payload that writes itself, journal.put), no entry made.
    journal = shell.journal
    journal.asked = f[0]
    return "LOG_R", journal


# request id -> handler: every request this device serves
SERVED = {
    catalog.msg_id("HELLO"): hello,
    catalog.msg_id("INFO"): info,
    catalog.msg_id("STATUS"): status,
    catalog.msg_id("START"): start,
    catalog.msg_id("TITRATE"): titrate,
    catalog.msg_id("STOP"): stop,
    catalog.msg_id("HANDOVER"): handover,
    catalog.msg_id("PATIENT"): patient,
    catalog.msg_id("ESTOP"): estop,
    catalog.msg_id("ALARMS"): alarms,
    catalog.msg_id("ACK"): ack,
    catalog.msg_id("LOG"): log,
    catalog.msg_id("HEARTBEAT"): heartbeat,
    catalog.msg_id("TAPER"): taper,
    catalog.msg_id("SUPERVISE"): supervise,
    catalog.msg_id("AUTH"): authenticate,
    catalog.msg_id("KEY"): key,
    catalog.msg_id("LIB_BEGIN"): lib_begin,
    catalog.msg_id("LIB_DATA"): lib_data,
    catalog.msg_id("LIB_COMMIT"): lib_commit,
}


def alarm_fields(alarm):
    """An alarm of the core as EV_ALARM's fields in their order: id, ch, code,
    priority, acked, at_ms, message (a list made once, written in place: encode it
    before the next call)."""
    return _alarm_into(_A[_EVENT], alarm)


def _alarm_into(r, alarm):
    r[0] = alarm.id
    r[1] = alarm.ch
    r[2] = reasons.number(alarm.code)
    r[3] = catalog.PRIORITY[alarm.priority]
    r[4] = alarm.acked
    r[5] = alarm.at_ms
    r[6] = alarm.message
    return r


def refused(r, now):
    """A refusal of the core as the wire's REFUSED (its reason as its wire number), its
    fields in their order: code, message, lo, hi, unit, next_at_ms, uptime_ms."""
    lo = hi = None
    unit = ""
    if r.allowed:
        lo, hi, unit = r.allowed
    return "REFUSED", (reasons.number(r.code), r.message, lo, hi, unit, r.next_at_ms, now)
