# The imperative shell: the firmware's main loop around the pure safety core.
#
# Each turn of the loop (step()):
#   1. uptime      clock ticks -> a non-wrapping uptime (ticks_diff, so the 2**30 ms
#                  wrap of ticks_ms, about 12.4 days, never shows)
#   2. link        bytes -> protocol decoder -> requests -> core -> responses
#   3. hardware    volume each motor pushed, and its fault sensors, into the core
#   4. time        core.tick(): tapers, host-link silence, near-empty
#   5. motors      each motor set to core.rate(ch) when that changed
#   6. changes     when the core logged anything: state saved to the store, state and
#                  alarm events sent to the host, the alarm output set
#   7. watchdog    fed at the end of a complete turn: any port or store failure
#                  raises out of the loop, the watchdog starves and resets the board,
#                  which restores every channel from the store (persist.py)
#
# The ports come from the board (boards/<name>.py make_ports(), or the emulator):
#   link      readinto(buf) -> count or None; write(bytes)
#   clock     ticks_ms(), ticks_diff(a, b), sleep_ms(ms)   (MicroPython's time module)
#   motors    one per channel: set_rate(rate), delivered() -> volume since last call,
#             fault() -> None | "occlusion" | "air_in_line" | "syringe_empty" | "motor"
#   store     read(name), write(name, data), rename(src, dst)     (see persist.py)
#   alarm     set(level): 0 none, 1 low, 2 medium, 3 high priority
#   watchdog  feed()
# Rates are millionths of mL/h and volumes millionths of mL, as in the core.
from micropython import const

from firmware import persist
from firmware.channel import TAPERING
from firmware.result import refuse
from protocol import catalog, messages, reasons
from protocol.decoder import Decoder
from protocol.frame import MAX_PAYLOAD
from protocol.replay import ReplayCache

FIRMWARE_VERSION = "pumpguard 0.1.0"
_IDLE_MS = const(1)  # sleep between loop turns when there is nothing to do
_RX_CHUNK = const(64)  # link bytes read per loop turn
_SAVE_EVERY_MS = const(60_000)  # volume infused is saved at least this often
_HELLO = const(0x01)  # catalog.ID["HELLO"], frozen across protocol versions
# A taper plan is held from the STOP that started it until the taper ends; a reset
# loses it (the core resumes the taper, and STATUS still shows when its next step is).
_NO_TAPER = "channel %d has no taper plan: none runs, or it began before the last reset"


class Shell:
    def __init__(
        self,
        core,
        board,
        link,
        motors,
        clock,
        store,
        alarm,
        watchdog,
        boot_id,
        uptime_ms=0,
        bundle="",
    ):
        self.core = core
        # The SHA-256 of the bundle this firmware came from ("" when run from source),
        # reported in HELLO_R so `pumpguard flash` can check what runs is what it wrote.
        self.bundle = bundle
        self._board = board
        self._link = link
        self._motors = motors
        self._clock = clock
        self._store = store
        self._alarm = alarm
        self._watchdog = watchdog
        self._boot_id = boot_id
        self._channels = len(motors)
        # Uptime continues from the last saved value after a reset, so the times held
        # in a restored snapshot (taper steps, titration intervals) keep their meaning.
        self.uptime = uptime_ms
        self._ticks = clock.ticks_ms()
        self._rx = bytearray(_RX_CHUNK)
        self._decoder = Decoder()
        self._replay = ReplayCache()
        self._hello = False  # a matching HELLO since boot: other requests are served
        self._events = 0  # event sequence number (a gap tells the host one was lost)
        self._rates = [0] * self._channels  # rate each motor was last set to
        self._faults = [None] * self._channels  # last fault each motor reported
        # (unit, plan) of each channel's last taper, for TAPER to page through: the
        # core hands the plan out once, with the STOP that started it.
        self._tapers = [None] * self._channels  # type: list[tuple | None]
        self._logged = core.log.next_seq  # log entries already acted on
        self._saved_at = uptime_ms
        # (state, dose, rate) last sent per channel
        self._sent = [None] * self._channels  # type: list[tuple | None]
        self._alarm_ids = ()  # alarm ids already sent as events
        self._serve = {
            catalog.ID["HELLO"]: self._on_hello,
            catalog.ID["INFO"]: self._on_info,
            catalog.ID["STATUS"]: self._on_status,
            catalog.ID["START"]: self._on_start,
            catalog.ID["TITRATE"]: self._on_titrate,
            catalog.ID["STOP"]: self._on_stop,
            catalog.ID["ESTOP"]: self._on_estop,
            catalog.ID["ALARMS"]: self._on_alarms,
            catalog.ID["ACK"]: self._on_ack,
            catalog.ID["LOG"]: self._on_log,
            catalog.ID["HEARTBEAT"]: self._on_heartbeat,
            catalog.ID["TAPER"]: self._on_taper,
        }

    def begin(self):
        # Start the motors at the rates a restored core holds before anything else.
        self._apply_rates()
        self._changed(self.uptime)

    def turn(self):
        # One turn of the loop (firmware/main.py run()). The MicroPython emulator calls it
        # from outside, once per turn: its WebAssembly interpreter collects garbage only
        # between calls from JavaScript.
        self.step()
        self._clock.sleep_ms(_IDLE_MS)

    def step(self):
        now = self._now()
        core = self.core
        n = self._link.readinto(self._rx)
        if n:
            self._feed(n, now)
        for i in range(self._channels):
            motor = self._motors[i]
            volume = motor.delivered()
            if volume:
                core.delivered(i + 1, volume)
            fault = motor.fault()
            if fault != self._faults[i]:
                self._faults[i] = fault
                if fault is not None:
                    core.fault(i + 1, fault, now)
        core.tick(now)
        self._apply_rates()
        if core.log.next_seq != self._logged:
            self._changed(now)
        elif now - self._saved_at >= _SAVE_EVERY_MS:
            self._save(now)
        self._watchdog.feed()

    def _now(self):
        t = self._clock.ticks_ms()
        self.uptime += self._clock.ticks_diff(t, self._ticks)
        self._ticks = t
        return self.uptime

    def _apply_rates(self):
        for i in range(self._channels):
            rate = self.core.rate(i + 1)
            if rate != self._rates[i]:
                self._motors[i].set_rate(rate)
                self._rates[i] = rate

    # -- changes: store, events, alarm output ------------------------------------------

    def _changed(self, now):
        self._logged = self.core.log.next_seq
        self._save(now)
        for ch in range(1, self._channels + 1):
            st = self.core.status(ch)
            key = (st.state, st.dose, st.rate)
            if key != self._sent[ch - 1]:
                self._sent[ch - 1] = key
                self._event(
                    "EV_STATE",
                    {
                        "ch": ch,
                        "state": st.state,
                        "drug": st.drug or "",
                        "dose": st.dose or 0,
                        "unit": st.dose_unit or "",
                        "rate": st.rate,
                        "at_ms": now,
                    },
                )
        level = 0
        ids = []
        for alarm in self.core.alarms():
            ids.append(alarm.id)
            if alarm.id not in self._alarm_ids:
                self._event("EV_ALARM", _alarm_fields(alarm))
            if not alarm.acked:
                level = max(level, catalog.PRIORITY[alarm.priority])
        self._alarm_ids = ids
        self._alarm.set(level)

    def _save(self, now):
        self._saved_at = now
        persist.save(self._store, self.core.snapshot(), now)

    def _event(self, name, fields):
        self._events = (self._events + 1) & 0xFFFF
        self._link.write(messages.to_wire(name, self._events, fields))

    # -- requests ------------------------------------------------------------------------

    def _feed(self, n, now):
        decoder = self._decoder
        pos = 0
        while pos < n:
            pos = decoder.feed(self._rx, pos, n)
            if decoder.ready:
                frame = decoder.take()
                self.core.host_seen(now)
                if catalog.is_request(frame.msg_id):
                    self._link.write(self._respond(frame, now))

    def _respond(self, frame, now):
        # A retry (same seq, byte-identical frame) gets the response it already had:
        # the request is never run twice. Only responses to served requests are kept.
        # HELLO is neither looked up nor kept: every host opens with the same HELLO at
        # seq 1 and may ask the same questions after it, so a cached answer would give
        # a new session the last one's (its uptime, volumes, refusals). HELLO runs
        # nothing on the safety core, so answering a retry of it anew is harmless; it
        # starts a new session and empties the cache (_on_hello).
        hello = frame.msg_id == _HELLO
        if not hello:
            cached = self._replay.lookup(frame.seq, frame.crc)
            if cached is not None:
                return cached
        handler = self._serve.get(frame.msg_id)
        if handler is None:
            return self._error(frame, catalog.ERR_UNKNOWN_MESSAGE, "not served by this device")
        if not (self._hello or hello):
            return self._error(frame, catalog.ERR_HELLO_REQUIRED, "send HELLO first")
        try:
            fields = messages.decode(frame.msg_id, frame.payload)
        except ValueError as exc:
            return self._error(frame, catalog.ERR_BAD_PAYLOAD, str(exc))
        name, reply = handler(fields, now)
        wire = messages.to_wire(name, frame.seq, reply)
        if not hello:
            self._replay.store(frame.seq, frame.crc, wire)
        if self.core.log.next_seq != self._logged:
            self._apply_rates()
            self._changed(now)
        return wire

    def _error(self, frame, code, message):
        return messages.to_wire("ERROR", frame.seq, {"code": code, "message": message})

    def _on_hello(self, f, now):
        if f["protocol"] != catalog.PROTOCOL_VERSION or f["schema"] != catalog.SCHEMA_HASH:
            self._hello = False
            return "ERROR", {
                "code": catalog.ERR_MISMATCH,
                "message": "device speaks protocol %d schema %08x, host %d schema %08x"
                % (catalog.PROTOCOL_VERSION, catalog.SCHEMA_HASH, f["protocol"], f["schema"]),
            }
        self._hello = True
        self._replay.clear()  # a new session: no earlier request is a retry any more
        lib = self.core.library
        return "HELLO_R", {
            "protocol": catalog.PROTOCOL_VERSION,
            "schema": catalog.SCHEMA_HASH,
            "firmware": FIRMWARE_VERSION,
            "board": self._board.NAME,
            "channels": self._channels,
            "library": lib.name or "invalid",
            "library_version": lib.version or "",
            "library_crc": lib.crc,
            "boot_id": self._boot_id,
            "replay_window": self._replay.size,
            "max_payload": MAX_PAYLOAD,
            "bundle": self.bundle,
        }

    def _on_info(self, f, now):
        d = self._decoder
        return "INFO_R", {
            "uptime_ms": now,
            "boot_id": self._boot_id,
            "rx_frames": d.frames,
            "rx_bad_crc": d.bad_crc,
            "rx_oversize": d.oversize,
            "rx_bad_cobs": d.bad_cobs,
            "rx_unknown": d.unknown,
            "rx_bad_length": d.bad_length,
        }

    def _on_heartbeat(self, f, now):
        active = 0
        for alarm in self.core.alarms():
            if not alarm.acked:
                active += 1
        return "HEARTBEAT_R", {"uptime_ms": now, "boot_id": self._boot_id, "active_alarms": active}

    def _on_status(self, f, now):
        ch = f["ch"]
        if not 1 <= ch <= self._channels:
            return self._no_channel(ch, now)
        st = self.core.status(ch)
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
            "alarms": [{"id": a.id} for a in self.core.alarms() if a.ch == ch],
            "taper_next_ms": st.taper_next_ms,
        }

    def _no_channel(self, ch, now):
        return _refused(
            refuse("unknown_channel", "no channel %d (1..%d)" % (ch, self._channels)), now
        )

    def _on_start(self, f, now):
        r = self.core.start(
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
            return _refused(r, now)
        return "START_R", {"ch": f["ch"], "dose": r.dose, "unit": r.unit, "rate": r.rate}

    def _on_titrate(self, f, now):
        r = self.core.titrate(f["ch"], f["dose"], f["unit"], now, override=f["override"])
        if not r.ok:
            return _refused(r, now)
        return "TITRATE_R", {"ch": f["ch"], "dose": r.dose, "unit": r.unit, "rate": r.rate}

    def _on_stop(self, f, now):
        ch = f["ch"]
        r = self.core.stop(ch, now)
        if not r.ok:
            return _refused(r, now)
        unit = r.unit or ""
        plan = r.plan if r.code == "taper_started" else []
        self._tapers[ch - 1] = (unit, plan) if plan else None
        return "STOP_R", {
            "ch": ch,
            "unit": unit,
            "total": len(plan),
            "plan": plan[: catalog.TAPER_PAGE],
        }

    def _on_taper(self, f, now):
        ch = f["ch"]
        if not 1 <= ch <= self._channels:
            return self._no_channel(ch, now)
        taper = self._tapers[ch - 1]
        if taper is None or self.core.status(ch).state != TAPERING:
            self._tapers[ch - 1] = None  # over, or cut short by an emergency stop
            return _refused(refuse("invalid_state", _NO_TAPER % ch), now)
        unit, plan = taper
        first = f["first"]
        page = plan[first : first + catalog.TAPER_PAGE]
        return "TAPER_R", {"ch": ch, "unit": unit, "total": len(plan), "plan": page}

    def _on_estop(self, f, now):
        r = self.core.emergency_stop(f["ch"], f["reason"], now)
        if not r.ok:
            return _refused(r, now)
        return "ESTOP_R", {"ch": f["ch"]}

    def _on_alarms(self, f, now):
        alarms = self.core.alarms()
        first = f["first"]
        page = [_alarm_fields(a) for a in alarms[first : first + catalog.ALARMS_PAGE]]
        return "ALARMS_R", {"total": len(alarms), "alarms": page}

    def _on_ack(self, f, now):
        r = self.core.ack(f["alarm_id"], now)
        if not r.ok:
            return _refused(r, now)
        return "ACK_R", {"alarm_id": f["alarm_id"]}

    def _on_log(self, f, now):
        log = self.core.log
        entries = log.since(f["first"])[: catalog.LOG_PAGE]
        nxt = entries[-1][0] + 1 if entries else max(f["first"], log.next_seq - len(log))
        return "LOG_R", {
            "oldest": log.next_seq - len(log),
            "next": nxt,
            "entries": [
                {
                    "seq": e[0],
                    "at_ms": e[1],
                    "ch": e[2],
                    "kind": e[3],
                    "code": reasons.number(e[4]),
                    "text": e[5],
                }
                for e in entries
            ],
        }


def _alarm_fields(alarm):
    return {
        "id": alarm.id,
        "ch": alarm.ch,
        "code": reasons.number(alarm.code),
        "priority": catalog.PRIORITY[alarm.priority],
        "acked": alarm.acked,
        "at_ms": alarm.at_ms,
        "message": alarm.message,
    }


def _refused(r, now):
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
