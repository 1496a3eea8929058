# The imperative shell: the firmware's main loop around the pure safety core.
#
# Each turn of the loop (step()):
#   1. uptime      clock ticks -> a non-wrapping uptime (ticks_diff, so the 2**30 ms
#                  wrap of ticks_ms, about 12.4 days, never shows)
#   2. link        bytes -> protocol decoder -> requests -> core -> responses
#   3. hardware    volume each motor pushed, and its fault sensors, into the core
#   4. time        core.tick(): tapers, host-link silence, near-empty
#   5. motors      each motor set to core.rate(ch) when that changed
#   6. changes     when the core logged anything: the entries kept in the persistent
#                  log (journal.py), state saved to the store, state and alarm events
#                  sent to the host, the alarm output set
#   7. watchdog    fed at the end of a complete turn: any port or store failure
#                  raises out of the loop, the watchdog starves and resets the board,
#                  which restores every channel from the store (persist.py)
#
# The requests themselves are served by handlers.py; this module is the loop.
#
# The ports come from the board (make_ports(), or the emulator's models): link, clock,
# motors (one per channel), store, alarm and watchdog, with the methods this module
# calls on each, are the board contract in boards/__init__.py (PORTS). Rates are
# millionths of mL/h and volumes millionths of mL, as in the core.
from micropython import const

from firmware import handlers, persist
from firmware.journal import Journal
from protocol import catalog, messages
from protocol.decoder import Decoder
from protocol.replay import ReplayCache

_IDLE_MS = const(1)  # sleep between loop turns when there is nothing to do
_RX_CHUNK = const(64)  # link bytes read per loop turn
_SAVE_EVERY_MS = const(60_000)  # volume infused is saved at least this often
_HELLO = const(0x01)  # catalog.ID["HELLO"], frozen across protocol versions


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
        # What the request handlers (handlers.py) read and keep, besides the core:
        self.core = core
        self.board = board
        self.boot_id = boot_id
        # The SHA-256 of the bundle this firmware came from ("" when run from source),
        # reported in HELLO_R so `pumpguard flash` can check what runs is what it wrote.
        self.bundle = bundle
        self.channels = len(motors)
        self.decoder = Decoder()  # its counters are INFO's
        self.replay = ReplayCache()
        self.session = False  # a matching HELLO since boot: other requests are served
        # (unit, plan) of each channel's last taper, for TAPER to page through: the
        # core hands the plan out once, with the STOP that started it.
        self.tapers = [None] * self.channels  # type: list[tuple | None]
        # The persistent event log LOG serves; every core log entry goes there.
        self.journal = Journal(store, boot_id)
        self._link = link
        self._motors = motors
        self._clock = clock
        self._store = store
        self._alarm = alarm
        self._watchdog = watchdog
        # Uptime continues from the last saved value after a reset, so the times held
        # in a restored snapshot (taper steps, titration intervals) keep their meaning.
        self.uptime = uptime_ms
        self._ticks = clock.ticks_ms()
        self._rx = bytearray(_RX_CHUNK)
        self._events = 0  # event sequence number (a gap tells the host one was lost)
        self._rates = [0] * self.channels  # rate each motor was last set to
        self._faults = [None] * self.channels  # last fault each motor reported
        self._logged = core.log.next_seq  # log entries already acted on
        self._saved_at = uptime_ms
        # (state, dose, rate) last sent per channel
        self._sent = [None] * self.channels  # type: list[tuple | None]
        self._alarm_ids = ()  # alarm ids already sent as events

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
        for i in range(self.channels):
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
        for i in range(self.channels):
            rate = self.core.rate(i + 1)
            if rate != self._rates[i]:
                self._motors[i].set_rate(rate)
                self._rates[i] = rate

    # -- changes: store, events, alarm output ------------------------------------------

    def _changed(self, now):
        self._logged = self.core.log.next_seq
        self.journal.drain(self.core.log)
        self._save(now)
        for ch in range(1, self.channels + 1):
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
                self._event("EV_ALARM", handlers.alarm_fields(alarm))
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
        decoder = self.decoder
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
        # starts a new session and empties the cache (handlers.hello).
        hello = frame.msg_id == _HELLO
        if not hello:
            cached = self.replay.lookup(frame.seq, frame.crc)
            if cached is not None:
                return cached
        handler = handlers.SERVED.get(frame.msg_id)
        if handler is None:
            return self._error(frame, catalog.ERR_UNKNOWN_MESSAGE, "not served by this device")
        if not (self.session or hello):
            return self._error(frame, catalog.ERR_HELLO_REQUIRED, "send HELLO first")
        try:
            fields = messages.decode(frame.msg_id, frame.payload)
        except ValueError as exc:
            return self._error(frame, catalog.ERR_BAD_PAYLOAD, str(exc))
        name, reply = handler(self, fields, now)
        wire = messages.to_wire(name, frame.seq, reply)
        if not hello:
            self.replay.store(frame.seq, frame.crc, wire)
        if self.core.log.next_seq != self._logged:
            self._apply_rates()
            self._changed(now)
        return wire

    def _error(self, frame, code, message):
        return messages.to_wire("ERROR", frame.seq, {"code": code, "message": message})
