# The imperative shell: the firmware's main loop around the pure safety core.
#
# Each turn of the loop (step()):
#   1. uptime      clock ticks -> a non-wrapping uptime (ticks_diff, so the 2**30 ms
#                  wrap of ticks_ms, about 12.4 days, never shows)
#   2. link        bytes -> protocol decoder -> requests -> core -> responses
#   3. hardware    volume each motor pushed, and its fault sensors, into the core
#   4. time        core.tick(): tapers, host-link silence, near-empty, empty
#   5. motors      each motor set to core.rate(ch) when that changed
#   6. changes     when the core logged anything: the entries kept in the persistent
#                  log (journal.py), state saved to the store, state and alarm events
#                  sent to the host, the alarm output set
#   7. watchdog    fed at the end of every turn that returns
#
# Nothing a turn raises stops the loop (step()): the exception is caught there, a
# request being served is answered ERROR internal with nothing of it applied (the core
# is rolled back to a snapshot taken before it), every motor keeps the last rate the
# core verified, and a HIGH internal_fault alarm names what failed; the link is still
# served and the watchdog still fed. Only a loop wedged inside a turn starves the
# watchdog, which resets the board.
#
# Stops are applied before they are stored: the motors are set (_apply_rates) before
# the state is saved (_changed), and a save that fails undoes nothing. It raises HIGH
# store_failed once and the pump runs on degraded, in its current state, answering;
# every change still tries to save and the periodic save retries after 1 s, doubling to
# a minute; the alarm's condition ends with the first save that succeeds. A request's
# answer is sent after the save of what it changed was attempted: when the store works,
# what a host was told is in the store.
#
# Time without allocation: MicroPython's ints above 2**30 are heap objects, and a
# pump's uptime (carried across resets) passes 2**30 ms in 12.4 days. The turn counts
# the small int _since from _base (re-based every 2**29 ms), and makes the uptime
# (_base + _since, possibly large) only when the turn needs it: a frame, a fault, a
# due tick (core.next_due()), a pending delivery alarm, a save. An idle turn never does.
#
# The requests themselves are served by handlers.py, behind the authenticated link's
# gate (gate.py: HELLO's session key, then each request's tag, counter, seq and role);
# this module is the loop. Only a frame the host tagged anew counts as the host heard.
#
# The ports come from the board (make_ports(), or the emulator's models): link, clock,
# motors (one per channel), store, alarm, watchdog and entropy, with the methods this
# module and the handlers call on each, are the board contract in boards/__init__.py
# (PORTS). Rates are millionths of mL/h and volumes millionths of mL, as in the core.
from micropython import const

from firmware import persist
from firmware.journal import Journal
from firmware.libpush import Push
from firmware.sensors import Sensors
from firmware.sessions import CLINICIAN, SESSIONS, Sessions
from protocol import catalog, messages
from protocol.decoder import Decoder
from protocol.frame import MAX_WIRE
from protocol.replay import ReplayCache
from protocol.text import TEXT_MAX, clip

_IDLE_MS = const(1)  # sleep between loop turns when there is nothing to do
_RX_CHUNK = const(64)  # link bytes read per loop turn
_SAVE_EVERY_MS = const(60_000)  # volume infused is saved at least this often
_RETRY_MS = const(1_000)  # first retry of a failed save; doubles up to _SAVE_EVERY_MS
_REBASE_MS = const(1 << 29)  # _since stays below this (plus a turn): a small int
_HELLO = const(0x01)  # catalog.ID["HELLO"], frozen across protocol versions
_FIELDS = const(9)  # fields of the longest request (START); HELLO's are gate.hello's
_SENT = const(5)  # entries of Shell._sent per channel


# At most 46 attributes: a dict of 47 is 752 B, of 48 944 B (tests/portable/test_shell.py)
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
        entropy,
        keys,
        boot_id,
        uptime_ms=0,
        bundle="",
        record=None,
    ):
        # imported once the boot's code is dropped, not beside its peak (main._SHELL_ROOM)
        global gate, handlers
        from firmware import gate, handlers

        # What the request handlers (handlers.py) read and keep, besides the core:
        self.core = core
        self.board = board
        self.boot_id = boot_id
        # The SHA-256 of the bundle this firmware came from ("" when run from source),
        # reported in HELLO_R so `pumpguard flash` can check what runs is what it wrote.
        self.bundle = bundle
        self.channels = len(motors)
        self.decoder = Decoder()  # its counters are INFO's
        # The board's keys (keys.py), its random numbers (the nonce of each HELLO_R),
        # and INFO's counts of what the gate (gate.py) refused.
        self.keys = keys
        self.entropy = entropy
        self.auth_refused = 0  # AUTH proofs refused
        self.bad_tag = 0  # frames without a tag, or with a wrong one
        self.stale_ctr = 0  # frames whose counter was not newer
        self.forbidden = 0  # frames their session's role may not send
        # One session per host that said a matching HELLO, and the answer to each
        # one's last request (protocol/SPEC.md §3): as many slots as sessions, so no
        # host pushes out another's answer.
        self.sessions = Sessions(boot_id, link_timeout_ms=board.LINK_TIMEOUT_MS)
        self.replay = ReplayCache(SESSIONS)
        self.slot = -1  # the session slot of the request being served
        self.seq = 0  # and its seq
        # (unit, plan) of each channel's last taper, for TAPER to page through: the
        # core hands the plan out once, with the STOP that started it.
        self.tapers = [None] * self.channels  # type: list[tuple | None]
        # The persistent event log LOG serves; every core log entry goes there.
        self.journal = Journal(store, boot_id)
        self.push = Push(store)  # a drug library being pushed (LIB_*, libpush.py)
        self._link = link
        self._motors = motors
        self._clock = clock
        self._alarm = alarm
        self._watchdog = watchdog
        self._record = record if record is not None else persist.Record(store)
        # Uptime continues from the last saved value after a reset, so the times held
        # in a restored snapshot (taper steps, titration intervals) keep their meaning.
        # It is _base + _since (see the top of this module).
        self._base = uptime_ms
        self._since = 0
        self._ticks = clock.ticks_ms()
        self._tick_at = 0  # _since from which core.tick() is due on its own
        self._save_at = _SAVE_EVERY_MS  # _since of the next periodic save (or retry)
        self._retry_ms = 0  # 0: the store works; else the current backoff of retries
        self._booting = True  # no turn completed yet: the store's boot mark stays
        self._serving = None  # the request frame being handled, for the safety net
        self._undo = None  # the core's snapshot from before that request
        self._rx = bytearray(_RX_CHUNK)
        # The wire of the answer being sent (gate.py, error()) and of events, written in
        # place (messages.wire): an answer is written out before the next is made, and
        # the events of a request go out before its answer does.
        self.out = memoryview(bytearray(MAX_WIRE))
        # The request's fields in their order (messages.decode_into), the handlers' f:
        # one list for every request, as long as the longest request.
        self.fields = [None] * _FIELDS
        self.ids = []  # STATUS_R's alarm ids, in place; _changed's spare of _alarm_ids
        self._ev_out = memoryview(bytearray(MAX_WIRE))
        self._events = 0  # event sequence number (a gap tells the host one was lost)
        self._sensors = Sensors(self.channels, clock)  # each motor's fault, as the core heard
        self._logged = core.log.next_seq  # log entries already acted on
        # per channel: state, drug, dose, rate last sent, rate its motor was last set to
        self._sent = [None, None, None, None, 0] * self.channels
        self._state = [0] * 7  # type: list  # EV_STATE's fields in their order, written in place
        self._alarm_ids = []  # alarm ids already sent as events (_changed: kept in place)
        self._supervised_s = 0  # the heartbeat interval the core was last told

    def begin(self):
        # Start the motors at the rates a restored core holds before anything else.
        self._apply_rates()
        self._changed(self.uptime_ms())

    def turn(self):
        # One turn of the loop (firmware/main.py run()). The MicroPython emulator calls it
        # from outside, once per turn: its WebAssembly interpreter collects garbage only
        # between calls from JavaScript.
        self.step()
        self._clock.sleep_ms(_IDLE_MS)

    def uptime_ms(self):
        """Uptime now (ms, continued across resets): a large int past 2**30, so the
        loop makes it only when a turn needs it."""
        return self._base + self._since

    def step(self):
        # The safety net, at the turn and only here. Exception, not BaseException:
        # Ctrl-C (KeyboardInterrupt) still ends the loop for the engineer at the REPL.
        # Anything else is caught, whatever raised it (a handler, the core, a port, the
        # store): a loop that died would have the watchdog reset the board into the same
        # record, the same request or the same port, and with it every infusion. Only a
        # failure of the net itself (_fault) leaves the loop: the watchdog is the last
        # resort, and a record that fails boot after boot is set aside (firmware/main.py).
        try:
            self._turn()
        except Exception as exc:
            self._fault(exc)
        if self._booting:
            self._booted()
        # Every turn that returns feeds it, one with a fault included: the loop is alive
        # and serving. A turn that never returns (a wedged loop) starves it.
        self._watchdog.feed()

    def _turn(self):
        self._advance()
        core = self.core
        now = None  # made only when this turn needs it (see the top of this module)
        # The link before the ports: a port that raises leaves the link served (a start
        # in the turn a fault begins is stopped by it in that turn, alarmed).
        n = self._link.readinto(self._rx)
        if n:
            now = self.uptime_ms()
            self._feed(n, now)
        for i in range(self.channels):
            motor = self._motors[i]
            core.delivered(i + 1, motor.delivered(), motor.left())
            fault = motor.fault()
            if self._sensors.changed(i, fault, self._ticks):  # begun, ended, another
                now = self.uptime_ms()
                core.fault(i + 1, fault, now)
        since = self._since
        if now is not None or core.pending or since >= self._tick_at or since >= self._save_at:
            now = self.uptime_ms()
            core.tick(now)
            self._apply_rates()
            if core.log.next_seq != self._logged:
                self._changed(now)
            elif since >= self._save_at:
                self._save(now)
            self._plan()

    def _advance(self):
        t = self._clock.ticks_ms()
        self._since += self._clock.ticks_diff(t, self._ticks)
        self._ticks = t
        if self._since >= _REBASE_MS:
            # Once in 2**29 ms (6.2 days): the idle loop's one allocation of time.
            since = self._since
            self._base += since
            self._since = 0
            self._tick_at -= since
            self._save_at -= since

    def _plan(self):
        # _since of the core's next tick of its own (re-planned after every busy turn)
        due = self.core.next_due()
        at = _REBASE_MS if due is None else due - self._base
        self._tick_at = 0 if at < 0 else _REBASE_MS if at > _REBASE_MS else at

    def _booted(self):
        # The first turn is complete: the record restored is not what failed a boot.
        self._booting = False
        try:
            self._record.booted()
        except OSError as exc:  # the store's own failure: degraded, as a failed save
            self._save_failed(exc, self.uptime_ms())

    def _guard(self, frame):
        # The safety net's undo: a request whose handling raises leaves the core as it
        # was before it (snapshot, then core.rollback() in _fault).
        self._undo = self.core.keep()  # in place: nothing made per request
        self._serving = frame

    def applied(self):
        """The request being served changes the store from here on (a library commit,
        firmware/libpush.py): the core the store now goes with cannot be rolled back
        to the snapshot from before it, so the net undoes nothing of it."""
        self._undo = None

    def _fault(self, exc):
        # An exception out of a turn (step()). The core rolls back a request it was
        # serving, which is answered ERROR internal; the motors keep the rates they run,
        # the last the core verified (the next turn sets them again from the core, so a
        # port that failed mid-way is retried): a taper drug is never cut off by a fault
        # of the firmware. The alarm names the exception.
        now = self.uptime_ms()
        what = clip("%s: %s" % (type(exc).__name__, exc), 60)
        frame = self._serving
        self._serving = None
        undo = self._undo
        self._undo = None
        self._tick_at = self._since  # the next turn acts on it (events, alarm output)
        if frame is not None and undo is not None:
            # A rollback that raises leaves a core that cannot be trusted: that one
            # leaves the loop, and the watchdog resets into the stored record.
            self.core.rollback(undo)
        try:
            # The alarm first: raised in the core, the next turn sets the alarm output
            # from it (_changed) even when the answer's write below fails.
            held = "internal fault (%s): rates held" % (what,)
            self.core.device_alarm("internal_fault", held, now)
            if frame is not None:
                ran = "not run" if undo is not None else "after it ran"
                message = clip("internal fault, %s: %s" % (ran, what), TEXT_MAX)
                self._link.write(gate.refuse(self, frame, self.slot, catalog.ERR_INTERNAL, message))
        except Exception:  # any: the net's own last step. Nothing else would catch it
            # but the watchdog, whose reset stops every infusion; the failing link or
            # core is met again, and alarmed, on the next turn.
            pass

    def _apply_rates(self):
        for i in range(self.channels):
            rate = self.core.rate(i + 1)
            if rate != self._sent[_SENT * i + 4]:
                self._motors[i].set_rate(rate)
                self._sent[_SENT * i + 4] = rate

    # -- changes: store, events, alarm output ------------------------------------------

    def _changed(self, now):
        # The motors are already set (_apply_rates); then what the link cannot undo: the
        # save and the alarm output, before the journal and the events, whose failure
        # (a link write that raises) the turn's net catches once they are all tried.
        self._logged = self.core.log.next_seq
        self._save(now)
        core = self.core
        listed = core.listed()  # the core's own list: read, never kept or changed here
        level = 0
        for alarm in listed:
            if not alarm.acked:
                level = max(level, catalog.PRIORITY[alarm.priority])
        self._alarm.set(level)
        # The ids listed now, written in place into the spare list (grown only past the
        # most ever listed), which becomes the list sent: nothing is made per change.
        was = self._alarm_ids
        ids = self.ids
        n = len(listed)
        while len(ids) > n:
            ids.pop()
        for i in range(n):
            if i < len(ids):
                ids[i] = listed[i].id
            else:
                ids.append(listed[i].id)
        self._alarm_ids = ids
        self.ids = was
        self.journal.drain(core.log)
        failed = None  # the link's failure to write an event of this change
        sent = self._sent
        for ch in range(1, self.channels + 1):
            c = core.channel(ch)
            drug = c.drug
            # The drug too: a library switch drops a stopped channel's drug the new
            # library lacks (libsteps.switch), changing nothing else a monitor shows.
            name = drug.name if drug else None
            o = _SENT * (ch - 1)
            if (
                sent[o] != c.state
                or sent[o + 1] != name
                or sent[o + 2] != c.dose
                or (sent[o + 3] != c.rate)
            ):
                sent[o] = c.state
                sent[o + 1] = name
                sent[o + 2] = c.dose
                sent[o + 3] = c.rate
                ev = self._state  # ch, state, drug, dose, unit, rate, at_ms
                ev[0] = ch
                ev[1] = c.state
                ev[2] = name or ""
                ev[3] = c.dose or 0
                ev[4] = drug.dose_unit if drug else ""
                ev[5] = c.rate
                ev[6] = now
                failed = self._event("EV_STATE", ev) or failed
        for alarm in listed:
            if alarm.id not in was:  # raised since the last change
                failed = self._event("EV_ALARM", handlers.alarm_fields(alarm)) or failed
        if failed is not None:
            raise failed  # the net (step()) alarms it: the events it lost are a gap

    def _save(self, now):
        since = self._since
        try:
            self._record.save_core(self.core, now)
        except OSError as exc:  # the store's own failure (a failing or full flash)
            self._save_failed(exc, now)
            return
        self._save_at = since + _SAVE_EVERY_MS
        if self._retry_ms:
            self._retry_ms = 0
            self.core.condition_over("store_failed")
            self._save_at = since  # saved again next turn: the record says it is over

    def _save_failed(self, exc, now):
        # Degraded: no reset (one would restore the record from before the failure and
        # undo every stop since), the current state kept, requests still answered.
        if self._retry_ms:
            self._retry_ms = min(2 * self._retry_ms, _SAVE_EVERY_MS)
        else:
            self._retry_ms = _RETRY_MS
            self.core.device_alarm(
                "store_failed",
                "saving the state failed (%s): running on as it is, retrying"
                % (clip(str(exc), 40),),
                now,
                True,
            )
        self._save_at = self._since + self._retry_ms

    def _event(self, name, fields):
        # None, or the link's OSError: its own failure, the other events are still tried
        self._events = (self._events + 1) & 0xFFFF
        try:
            self._link.write(messages.wire(self._ev_out, name, self._events, fields))
        except OSError as exc:
            return exc
        return None

    # -- requests ------------------------------------------------------------------------

    def _feed(self, n, now):
        decoder = self.decoder
        pos = 0
        while pos < n:
            pos = decoder.feed(self._rx, pos, n)
            if decoder.ready:
                frame = decoder.view()  # answered before the next bytes are fed
                if catalog.is_request(frame.msg_id):
                    self._link.write(self._respond(frame, now))

    def _respond(self, frame, now):
        # Exactly once per session (protocol/SPEC.md §3): a retry (same sid, seq and
        # bytes) of the session's last request gets the answer it already had; any
        # other request must pass the gate (gate.py: its tag, counter, seq and role)
        # before it runs. HELLO is neither looked up nor kept: it opens a new session
        # (gate.hello, handlers.hello), whose requests nothing from before can match.
        handler = handlers.SERVED.get(frame.msg_id)
        if handler is None:
            return self.error(frame, catalog.ERR_UNKNOWN_MESSAGE, "not served by this device")
        self.seq = frame.seq
        if frame.msg_id == _HELLO:
            return gate.hello(self, frame, handler, now)
        sessions = self.sessions
        i = sessions.find(frame.sid)
        if i < 0:
            return self.error(frame, catalog.ERR_HELLO_REQUIRED, "send HELLO first")
        cached = self.replay.lookup(frame.sid, frame.seq, frame.crc)
        if cached is not None:
            return cached
        refusal = gate.check(self, frame, i)
        if refusal is not None:
            return refusal
        sessions.heard(i)  # recency (which session a new one closes): never a refused frame
        sessions.heard_at[i] = now
        if sessions.authed[i] and sessions.role[i] == CLINICIAN:
            # The host is heard: a sign of life is a frame a clinician's host tagged
            # with a new counter, never a frame refused (anyone on the wire could send
            # one), a replay, or a display's or service tool's frame (link_lost watches
            # the host that changes delivery).
            self.core.host_seen(now)
        fields = self.fields
        try:
            messages.decode_into(frame.msg_id, frame.payload, fields)
        except ValueError as exc:
            return gate.refuse(self, frame, i, catalog.ERR_BAD_PAYLOAD, str(exc))
        # Marked run before it runs: should it fail half way, a retry is stale, never
        # a second run.
        first = not sessions.confirmed[i]
        sessions.ran(i, frame.seq, frame.ctr)
        self.slot = i
        self._guard(frame)
        name, reply = handler(self, fields, now)
        wire = gate.answer(self, frame, i, name, reply)
        if first and sessions.authed[i]:
            # AUTH proved the key: what the HELLO declared (a supervisor, the host's
            # clock) counts from now, never for a host that could not prove it.
            self._supervision(now)
        self._serving = None  # answered: the rates go to the motors, never rolled back
        if self.core.log.next_seq != self._logged:
            self._apply_rates()
            self._changed(now)
        return wire

    def open_session(self, interval_s, hello_id, now):
        """A new session for the HELLO being served (hello_id: its digest), supervising
        every interval_s (0: not) once AUTH passed; when every slot is taken a
        handshake's that waited in vain goes (sessions.py: never an authenticated one).
        False: no room."""
        self.slot, evicted = self.sessions.open(self.seq, hello_id, interval_s, now)
        if evicted:  # a pending session: it supervised nothing, nothing else changes
            self.replay.forget(evicted)
        return self.slot >= 0

    def supervise(self, interval_s, now):
        """The session being served declares its heartbeat interval (0: ends it)."""
        self.sessions.interval_s[self.slot] = interval_s
        self._supervision(now)

    def close_session(self, i, now):
        """End the session in slot i (its AUTH refused, or closed to make room for a
        host that proved its key), its cached answer with it; a supervision it held
        ends without counting as the host heard."""
        self.replay.forget(self.sessions.sid[i])
        self.sessions.close(i)
        self._supervision(now, False)

    def _supervision(self, now, heard=True):
        # Told to the core only when it changes, so a session that supervises nothing
        # (a monitor's AUTH) never reaches it. heard: a clinician's request declared it,
        # which counts as the host heard (and its goodbye clears link_lost); a session
        # closed or evicted is not a host heard, and leaves link_lost as it is.
        interval_s = self.sessions.supervision_s()
        if interval_s != self._supervised_s:
            self._supervised_s = interval_s
            self.core.supervise(interval_s * 1000, now, heard)

    def error(self, frame, code, message):
        """An untagged ERROR to frame, in its own session (none for HELLO): the host
        matches it by both."""
        sid = 0 if frame.msg_id == _HELLO else frame.sid
        return messages.wire(self.out, "ERROR", frame.seq, (code, message), sid)
