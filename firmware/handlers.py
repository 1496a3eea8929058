# The requests the device serves: one handler each, handler(shell, fields, now) ->
# (response name, fields), and SERVED, the table the shell dispatches on (the way
# mpremote's commands.py holds the do_* handlers its main.py's table names).
#
# The shell (shell.py) has decoded the request, checked its session and its replay
# cache, and encodes, caches and sends what the handler returns. Handlers read the
# shell's session state and ask the safety core; a command the core refuses is
# answered REFUSED, its reason sent as its wire number (protocol/reasons.py).
from firmware import VERSION
from firmware.channel import TAPERING
from firmware.result import refuse
from protocol import catalog, reasons
from protocol.frame import MAX_PAYLOAD

_LOG_R_HEAD = 4 + 4 + 1  # LOG_R's oldest, next and entry count, before its entries

FIRMWARE_VERSION = "pumpguard " + VERSION  # what HELLO_R reports
# A taper plan is held from the STOP that started it until the taper ends; a reset
# loses it (the core resumes the taper, and STATUS still shows when its next step is).
_NO_TAPER = "channel %d has no taper plan: none runs, or it began before the last reset"


def hello(shell, f, now):
    # The shell checked protocol and schema before decoding (a mismatch never gets
    # here). A new session each time, even for the same host: the one it had may hold
    # requests still in flight, which must not count in the new one.
    shell.open_session(f["supervise_s"], now)
    if f["wall_ms"]:  # the host's clock: the event log's entries carry wall time from now
        shell.journal.set_wall(f["wall_ms"] - now)
    lib = shell.core.library
    return "HELLO_R", {
        "protocol": catalog.PROTOCOL_VERSION,
        "schema": catalog.SCHEMA_HASH,
        "firmware": FIRMWARE_VERSION,
        "board": shell.board.NAME,
        "channels": shell.channels,
        "library": lib.name or "invalid",
        "library_version": lib.version or "",
        "library_crc": lib.crc,
        "boot_id": shell.boot_id,
        "replay_window": 1,  # per session: the answer to its last request
        "max_payload": MAX_PAYLOAD,
        "bundle": shell.bundle,
    }


def supervise(shell, f, now):
    shell.supervise(f["interval_s"], now)
    return "SUPERVISE_R", {"interval_s": f["interval_s"]}


def info(shell, f, now):
    d = shell.decoder
    return "INFO_R", {
        "uptime_ms": now,
        "boot_id": shell.boot_id,
        "rx_frames": d.frames,
        "rx_bad_crc": d.bad_crc,
        "rx_oversize": d.oversize,
        "rx_bad_cobs": d.bad_cobs,
        "rx_unknown": d.unknown,
        "rx_bad_length": d.bad_length,
    }


def heartbeat(shell, f, now):
    active = 0
    for alarm in shell.core.alarms():
        if not alarm.acked:
            active += 1
    return "HEARTBEAT_R", {"uptime_ms": now, "boot_id": shell.boot_id, "active_alarms": active}


def status(shell, f, now):
    ch = f["ch"]
    if not 1 <= ch <= shell.channels:
        return _no_channel(shell, ch, now)
    st = shell.core.status(ch)
    return "STATUS_R", {
        "ch": ch,
        "state": st.state,
        "drug": st.drug or "",
        "dose": st.dose or 0,
        "dose_unit": st.dose_unit or "",
        "rate": st.rate,
        "volume_infused": st.volume_infused,
        "volume_left": st.volume_left,
        "time_to_empty_s": st.time_to_empty_s,
        "alarms": [{"id": a.id} for a in shell.core.alarms() if a.ch == ch],
        "taper_next_ms": st.taper_next_ms,
    }


def _no_channel(shell, ch, now):
    return refused(refuse("unknown_channel", "no channel %d (1..%d)" % (ch, shell.channels)), now)


def start(shell, f, now):
    r = shell.core.start(
        f["ch"],
        f["drug"],
        f["dose"],
        f["unit"],
        now,
        weight=f["weight"],
        conc=f["conc"],
        conc_unit=f["conc_unit"] or None,
        volume=f["volume"],
        override=f["override"],
    )
    if not r.ok:
        return refused(r, now)
    return "START_R", {"ch": f["ch"], "dose": r.dose, "unit": r.unit, "rate": r.rate}


def titrate(shell, f, now):
    r = shell.core.titrate(f["ch"], f["dose"], f["unit"], now, override=f["override"])
    if not r.ok:
        return refused(r, now)
    return "TITRATE_R", {"ch": f["ch"], "dose": r.dose, "unit": r.unit, "rate": r.rate}


def stop(shell, f, now):
    ch = f["ch"]
    r = shell.core.stop(ch, now)
    if not r.ok:
        return refused(r, now)
    unit = r.unit or ""
    plan = r.plan if r.code == "taper_started" else []
    shell.tapers[ch - 1] = (unit, plan) if plan else None
    return "STOP_R", {
        "ch": ch,
        "unit": unit,
        "total": len(plan),
        "plan": plan[: catalog.TAPER_PAGE],
    }


def taper(shell, f, now):
    ch = f["ch"]
    if not 1 <= ch <= shell.channels:
        return _no_channel(shell, ch, now)
    taper = shell.tapers[ch - 1]
    if taper is None or shell.core.status(ch).state != TAPERING:
        shell.tapers[ch - 1] = None  # over, or cut short by an emergency stop
        return refused(refuse("invalid_state", _NO_TAPER % ch), now)
    unit, plan = taper
    first = f["first"]
    page = plan[first : first + catalog.TAPER_PAGE]
    return "TAPER_R", {"ch": ch, "unit": unit, "total": len(plan), "plan": page}


def estop(shell, f, now):
    r = shell.core.emergency_stop(f["ch"], f["reason"], now)
    if not r.ok:
        return refused(r, now)
    return "ESTOP_R", {"ch": f["ch"]}


def alarms(shell, f, now):
    alarms = shell.core.alarms()
    first = f["first"]
    page = [alarm_fields(a) for a in alarms[first : first + catalog.ALARMS_PAGE]]
    return "ALARMS_R", {"total": len(alarms), "alarms": page}


def ack(shell, f, now):
    r = shell.core.ack(f["alarm_id"], now)
    if not r.ok:
        return refused(r, now)
    return "ACK_R", {"alarm_id": f["alarm_id"]}


def log(shell, f, now):
    # Served from the persistent log (journal.py), packed: as many entries as fit.
    journal = shell.journal
    entries, nxt = journal.page(f["first"], MAX_PAYLOAD - _LOG_R_HEAD, catalog.LOG_PAGE)
    return "LOG_R", {"oldest": journal.oldest, "next": nxt, "entries": entries}


# request id -> handler: every request this device serves
SERVED = {
    catalog.ID["HELLO"]: hello,
    catalog.ID["INFO"]: info,
    catalog.ID["STATUS"]: status,
    catalog.ID["START"]: start,
    catalog.ID["TITRATE"]: titrate,
    catalog.ID["STOP"]: stop,
    catalog.ID["ESTOP"]: estop,
    catalog.ID["ALARMS"]: alarms,
    catalog.ID["ACK"]: ack,
    catalog.ID["LOG"]: log,
    catalog.ID["HEARTBEAT"]: heartbeat,
    catalog.ID["TAPER"]: taper,
    catalog.ID["SUPERVISE"]: supervise,
}


def alarm_fields(alarm):
    """An alarm of the core as the wire's fields (EV_ALARM, ALARMS_R)."""
    return {
        "id": alarm.id,
        "ch": alarm.ch,
        "code": reasons.number(alarm.code),
        "priority": catalog.PRIORITY[alarm.priority],
        "acked": alarm.acked,
        "at_ms": alarm.at_ms,
        "message": alarm.message,
    }


def refused(r, now):
    """A refusal of the core as the wire's REFUSED (its reason as its wire number)."""
    lo = hi = None
    unit = ""
    if r.allowed:
        lo, hi, unit = r.allowed
    return "REFUSED", {
        "code": reasons.number(r.code),
        "message": r.message,
        "lo": lo,
        "hi": hi,
        "unit": unit,
        "next_at_ms": r.next_at_ms,
        "uptime_ms": now,
    }
