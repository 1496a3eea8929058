"""Host side of the wire protocol: one request at a time, retried, matched by seq.

    with Link("socket://localhost:7000") as link:   # or /dev/ttyACM0, a PTY, loop://
        info = link.hello()
        status = link.request("STATUS", {"ch": 1})

Every port is opened with serial.serial_for_url(). HELLO opens a session: every
request after it carries the session id (sid) of HELLO_R's frame. A request is sent
with a fresh seq; when no answer with that seq arrives within `timeout` seconds it is
sent again, byte for byte (same sid and seq, so the device answers a retry from its
replay cache instead of executing it twice), up to `attempts` times in all. Frames are
checked with crcmod's predefined 'crc-32', the device's binascii.crc32 on the other
side (protocol/SPEC.md §3).

Whatever the port does (the device unplugged, the emulator killed, a closed file
descriptor), the caller gets a LinkError that says whether the command may have run,
never an OSError: pyserial raises SerialException (an OSError) for some failures and
lets OSError and termios.error (not an OSError) through for others.
"""

import contextlib
import time
from collections import deque

import crcmod.predefined
import serial

from protocol import catalog, messages
from protocol.decoder import Decoder

from ..errors import (
    BadValue,
    DeviceError,
    DeviceReset,
    LinkError,
    NoAnswer,
    ProtocolMismatch,
    RefusedError,
    reason_name,
)
from .quantity import micro_to_decimal

try:
    import termios
except ImportError:  # Windows: no termios, pyserial's own errors are OSErrors
    PORT_ERRORS = (OSError,)
else:
    PORT_ERRORS = (OSError, termios.error)

CRC32 = crcmod.predefined.mkCrcFun("crc-32")


class Link:
    def __init__(self, url, baudrate=115200, timeout=0.5, attempts=3, host="pumpguard-host"):
        self.timeout = timeout
        self.attempts = attempts
        self.host = host
        self.decoder = Decoder(crc=CRC32)
        self.events = deque(maxlen=256)  # (name, seq, fields) of unsolicited events
        self.device = None  # HELLO_R fields of the last matching HELLO
        self.resets = 0  # HELLOs that found a boot_id other than the one before
        self.boot_id = None  # the device's boot_id at the last matching HELLO
        self.sid = 0  # the session HELLO_R opened; 0: none yet
        # The heartbeat interval every HELLO declares (0: a one-shot user, no link-loss
        # alarm when it goes quiet; Pump.keepalive() sets it).
        self.supervise_s = 0
        self._seq = 0
        try:
            self._port = serial.serial_for_url(url, baudrate=baudrate, timeout=timeout)
        except (*PORT_ERRORS, ValueError) as exc:
            raise LinkError(f"cannot open {url}: {exc}; {_ran(False)}", may_have_run=False) from exc

    def close(self):
        with contextlib.suppress(*PORT_ERRORS):  # gone already: nothing left to close
            self._port.close()

    def discard_input(self):
        """Drop bytes received and not yet read (e.g. events sent before this host came)
        and any partial frame the decoder holds."""
        try:
            self._port.reset_input_buffer()
        except PORT_ERRORS as exc:
            raise LinkError(f"port failed: {exc}; {_ran(False)}", may_have_run=False) from exc
        self.decoder.feed(b"\x00")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def hello(self, library=None):
        """Say HELLO and check the device speaks this catalog; returns HELLO_R's fields.
        With `library` = (name, version, crc), the device's drug library must be that
        one too. Raises ProtocolMismatch saying what differs."""
        fields = {
            "protocol": catalog.PROTOCOL_VERSION,
            "schema": catalog.SCHEMA_HASH,
            "host": self.host,
            "supervise_s": self.supervise_s,
            "wall_ms": int(time.time() * 1000),
        }
        self.sid = 0  # HELLO carries none; until HELLO_R this host has no session
        try:
            reply, sid = self._exchange("HELLO", fields)
        except DeviceError as exc:
            ours = f"protocol {catalog.PROTOCOL_VERSION} schema 0x{catalog.SCHEMA_HASH:08x}"
            if exc.number == catalog.ERR_MISMATCH:
                raise ProtocolMismatch([("protocol/schema", ours, exc.message)]) from exc
            if exc.number == catalog.ERR_BAD_PAYLOAD:  # a version-1 device reads it whole
                theirs = f"a device that cannot read this HELLO ({exc.message})"
                raise ProtocolMismatch([("protocol/schema", ours, theirs)]) from exc
            raise
        # The device checked protocol and schema already; checking again here costs
        # nothing and names both values.
        ours = [
            ("protocol version", catalog.PROTOCOL_VERSION, reply["protocol"]),
            ("schema hash", f"0x{catalog.SCHEMA_HASH:08x}", f"0x{reply['schema']:08x}"),
        ]
        if library is not None:
            name, version, crc = library
            ours.append(("drug library", name, reply["library"]))
            ours.append(("drug library version", version, reply["library_version"]))
            ours.append(("drug library crc", f"0x{crc:08x}", f"0x{reply['library_crc']:08x}"))
        differences = [d for d in ours if d[1] != d[2]]
        if not sid:
            differences.append(("session", "a session id in HELLO_R's frame", "none"))
        if differences:
            self.device = None
            raise ProtocolMismatch(differences)
        self.sid = sid
        if self.boot_id is not None and self.boot_id != reply["boot_id"]:
            self.resets += 1
        self.boot_id = reply["boot_id"]
        self.device = reply
        if self.supervise_s:
            # A session supervises from its first request on (SPEC §3): this one, so a
            # host that declared supervision at HELLO is a supervisor at once.
            self.request("HEARTBEAT")
        return reply

    def request(self, name, fields=None):
        """Send request `name` with `fields` and return its response's fields.
        Raises RefusedError (the safety core said no: its reason named, its range in
        Decimals), DeviceError (ERROR answer), DeviceReset or LinkError."""
        return self._exchange(name, fields or {})[0]

    def poll(self, timeout=0.0):
        """Read what arrives within `timeout` s; returns and clears the queued events."""
        self._read_until(time.monotonic() + timeout, None, None, None)
        out = list(self.events)
        self.events.clear()
        return out

    def _exchange(self, name, fields):
        """(the answer's fields, the sid of its frame)."""
        msg_id = catalog.ID[name]
        hello = msg_id == catalog.ID["HELLO"]
        self._seq = (self._seq + 1) & 0xFFFF
        seq = self._seq
        sid = 0 if hello else self.sid
        try:
            wire = messages.to_wire(msg_id, seq, fields, crc=CRC32, sid=sid)
        except (TypeError, ValueError) as exc:  # a field the catalog cannot carry
            raise BadValue(f"{name}: {exc}; nothing was sent") from None
        # Whether an unanswered attempt may have run a command: HELLO never does (it
        # opens a session and runs nothing on the safety core), anything else once any
        # of its bytes may have gone out (a frame short of its final 0x00 still runs
        # when the next frame's leading 0x00 ends it).
        sent = False
        runs = not hello
        for attempt in range(1, self.attempts + 1):
            try:
                self._port.write(wire)
                self._port.flush()
            except serial.PortNotOpenError as exc:  # raised before a byte is written
                why = f"{name} seq {seq}: {exc}; {_ran(sent)}"
                raise LinkError(why, may_have_run=sent) from exc
            except PORT_ERRORS as exc:
                why = f"{name} seq {seq}: write failed: {exc}; {_ran(runs)}"
                raise LinkError(why, may_have_run=runs) from exc
            sent = runs
            deadline = time.monotonic() + self.timeout
            frame = self._read_until(deadline, msg_id, seq, None if hello else sid, runs)
            if frame is not None:
                return self._answer(name, seq, frame, attempt), frame.sid
        raise NoAnswer(
            f"{name} seq {seq}: no answer after {self.attempts} attempts of "
            f"{self.timeout:.2f} s; {_ran(sent)}",
            may_have_run=sent,
        )

    def _read_until(self, deadline, msg_id, seq, sid, runs=False):
        """Feed the decoder until the answer to request (msg_id, seq) of session sid
        (None: any, for HELLO) arrives (returned) or the deadline passes (None). Events
        are queued; stale answers dropped. `runs`: the request may run a command, so a
        failed read leaves it maybe run."""
        answers = (
            ()
            if msg_id is None
            else (msg_id | catalog.RESPONSE_BIT, catalog.REFUSED, catalog.ERROR)
        )
        answer = None
        while answer is None:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                self._port.timeout = left  # termios.error here when the PTY is gone
                data = self._port.read(self._port.in_waiting or 1)
            except PORT_ERRORS as exc:
                raise LinkError(f"read failed: {exc}; {_ran(runs)}", may_have_run=runs) from exc
            # Every frame in this chunk: an event after the answer must not be lost.
            for frame in self.decoder.decode(data):
                if catalog.is_event(frame.msg_id):
                    self._event(frame)
                elif (
                    frame.seq == seq
                    and frame.msg_id in answers
                    and (sid is None or frame.sid == sid)
                    and answer is None
                ):
                    answer = frame
        return answer

    def _event(self, frame):
        try:
            fields = messages.decode(frame.msg_id, frame.payload)
        except ValueError:
            return  # a schema-matched device sent a payload we cannot read: drop it
        self.events.append((catalog.NAME[frame.msg_id], frame.seq, fields))

    def _answer(self, name, seq, frame, attempt):
        try:
            fields = messages.decode(frame.msg_id, frame.payload)
        except ValueError as exc:
            raise LinkError(
                f"{name} seq {seq}: unreadable answer ({exc}); {_ran(True)}",
                may_have_run=True,
            ) from exc
        if frame.msg_id == catalog.REFUSED:
            # The one place a refusal's wire fields become the API's: the reason's name,
            # the allowed range as exact Decimals of its unit (as every dose the API returns).
            allowed = None
            if fields["lo"] is not None or fields["hi"] is not None:
                lo, hi = (
                    None if q is None else micro_to_decimal(q) for q in (fields["lo"], fields["hi"])
                )
                allowed = (lo, hi, fields["unit"])
            raise RefusedError(
                reason_name(fields["code"]),
                fields["code"],
                fields["message"],
                allowed,
                fields["next_at_ms"],
                fields["uptime_ms"],
            )
        if frame.msg_id == catalog.ERROR:
            code = fields["code"]
            if code == catalog.ERR_HELLO_REQUIRED:
                self.device = None
                # On the first attempt the device had no session: it did not run.
                # Later, an earlier attempt may have run before the device reset.
                raise DeviceReset(
                    f"{name} seq {seq}: the device does not know this session (it reset, "
                    f"or closed the session to make room for other hosts); {_ran(attempt > 1)}",
                    may_have_run=attempt > 1,
                )
            if code == catalog.ERR_STALE:
                # This session already ran this seq or a newer one: our first attempt
                # ran and its answer was lost, or the session's seqs were reused.
                raise LinkError(
                    f"{name} seq {seq}: the device says {fields['message']!r}; {_ran(True)}",
                    may_have_run=True,
                )
            raise DeviceError(code, catalog.ERROR_NAMES.get(code, "unknown"), fields["message"])
        return fields


def _ran(may_have_run):
    if may_have_run:
        return "the command MAY HAVE RUN on the device: check its status before repeating it"
    return "the command did NOT run"
