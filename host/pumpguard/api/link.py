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

Authentication (protocol/SPEC.md §12). HELLO names the role this host speaks as and
carries a fresh random nonce; HELLO_R carries the device's, and its board id. Both
sides derive the session key from the role's key and the transcript of the two frames,
then prove they hold it: AUTH (this host's proof), AUTH_R (the device's, checked here:
a device that fails it does not hold the key). From then on every request carries a
counter that only grows (a retry is the same frame, its counter included) and a tag,
and every answer must carry a valid tag and a device counter above the last one
accepted: a frame that fails is dropped (counted in ``dropped``), never taken as the
answer, as if the line had lost it. Untagged answers are believed only where the device
could not authenticate the request: before AUTH_R an ERROR answering AUTH (its refusal
of the key: the device has no tag to give), after it hello_required (it does not know
the session) and ERROR auth; and only as a fallback: anyone on the line can send one (or
make the device send one, answering a frame of their own with this host's sid and seq),
so it is kept for a short grace (GRACE_S, at most the attempt's timeout) from its
arrival, and a tagged answer that verifies arriving meanwhile wins (the device's own
comes within a round trip). Only when none came is the untagged one believed: ERROR
auth then says the command MAY HAVE RUN (the request may have reached the device behind
the forgery); hello_required on a first attempt says it did not run, as without
authentication (protocol/SPEC.md §3), and Pump._call may say HELLO again and send it
once more, a grace (not a whole timeout) after the device's reset answered. The residual
risk (SPEC §12, "What is not tagged"): a forger who also suppresses the device's real
answer can so have a command run twice, in two sessions, or make connect() give up on
a session the device authenticated (one that supervises nothing: supervision is
declared only after AUTH_R, by SUPERVISE); every command is absolute (a dose, a stop,
an alarm id), so the second sets what the first did, or is refused.
"""

import contextlib
import secrets
import time
from collections import deque

import crcmod.predefined
import serial

from pumpguard._board.protocol import auth, catalog, messages
from pumpguard._board.protocol.decoder import Decoder

from ..errors import (
    AuthError,
    BadValue,
    Busy,
    DeviceError,
    DeviceReset,
    Forbidden,
    LinkError,
    NoAnswer,
    ProtocolMismatch,
    RefusedError,
    reason_name,
)
from . import keepalive, keys
from .quantity import micro_to_decimal

try:
    import termios
except ImportError:  # Windows: no termios, pyserial's own errors are OSErrors
    PORT_ERRORS = (OSError,)
else:
    PORT_ERRORS = (OSError, termios.error)

CRC32 = crcmod.predefined.mkCrcFun("crc-32")
_INSECURE_KEY = bytes(auth.KEY)  # the emulator's --insecure mode: every role's key
# Untagged answers believed in an authenticated session, when no tagged one came: the
# device could not authenticate the request (it does not know the session, or refused
# its tag).
_UNTAGGED_OK = (catalog.ERR_HELLO_REQUIRED, catalog.ERR_AUTH)
# How long an untagged error is held, from its arrival, for a tagged answer that wins
# over it (at most the attempt's timeout): several round trips of the largest frame at
# 115200 baud (23 ms each), so the device's own answer comes within it.
GRACE_S = 0.25


class Link:
    def __init__(
        self,
        url,
        baudrate=115200,
        timeout=0.5,
        attempts=3,
        host="pumpguard-host",
        key=None,
        role=None,
        insecure=False,
    ):
        if role is not None and role not in catalog.ROLES:
            raise BadValue(f"role {role!r} is not one of {', '.join(keys.ROLES)}")
        # A key file given (or $PUMPGUARD_KEY) is read before the port is opened: a bad
        # one is said before anything is sent. None: the store, once HELLO_R names the board.
        self.keyfile = keys.given(key)
        if self.keyfile is not None and role is not None:
            self.keyfile.key(role)
        self.role = role  # None: the key file's default role (keys.DEFAULT_ROLES)
        self.session_role = None  # the role the last authenticated session speaks as
        self.session_keyfile = None  # its key file (None: none yet, or the insecure mode)
        self.insecure = insecure
        self.dropped = 0  # answers dropped: a wrong or missing tag, a counter not newer
        self._ks = None  # the session key, from HELLO_R on; None: no session
        self._authed = False  # AUTH_R checked: every request is tagged from now on
        self._ctr = 0  # the last counter this host sent in the session
        self._dev_ctr = 0  # the last device counter accepted in the session
        self.timeout = timeout
        self.attempts = attempts
        self.host = host
        self.decoder = Decoder(crc=CRC32)
        self.events = deque(maxlen=256)  # (name, seq, fields) of unsolicited events
        self.device = None  # HELLO_R fields of the last matching HELLO
        self.resets = 0  # HELLOs that found a boot_id other than the one before
        self.boot_id = None  # the device's boot_id at the last matching HELLO
        self.sid = 0  # the session HELLO_R opened; 0: none yet
        # The heartbeat interval every session declares once authenticated, by SUPERVISE
        # (0: a one-shot user, no link-loss alarm when it goes quiet; Pump.keepalive()
        # sets it). HELLO declares none: a handshake that dies leaves no supervisor.
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
        """Say HELLO, check the device speaks this catalog, and authenticate the session
        (AUTH); returns HELLO_R's fields. With `library` = (name, version, crc), the
        device's drug library must be that one too. Raises ProtocolMismatch saying what
        differs, KeyFileError when no key for the board is at hand, AuthError when the
        board refuses the key or fails its own proof."""
        role = self.role or (self.keyfile.default_role() if self.keyfile else "clinician")
        keepalive.may_supervise(role, self.supervise_s)
        reply, frame, payload = self._say_hello(role, library)
        keyfile = None
        if reply["auth"] == 0:
            keys.check_insecure(reply, self.keyfile, self.insecure)
            role_key = _INSECURE_KEY
        else:
            keyfile = keys.for_board(reply, self.keyfile)
            if self.role is None and keyfile.default_role() != role:
                # The store's key file, read once the board named itself, lacks the role
                # guessed: HELLO again as the one it holds (the pending session lapses).
                role = keyfile.default_role()
                keepalive.may_supervise(role, self.supervise_s)
                reply, frame, payload = self._say_hello(role, library)
            role_key = keyfile.key(role)
        sid = frame.sid
        th = auth.transcript(payload, sid, frame.payload)
        self._ks = auth.session_key(role_key, th)
        self.sid = sid
        try:
            answer = self._exchange("AUTH", {"proof": auth.proof(self._ks, th, auth.HOST)})[0]
        except AuthError as exc:  # "the board refused the key for role clinician"
            self._ks = None
            self.sid = 0
            used = f"key file {keyfile.path}" if keyfile else "the insecure mode's key"
            raise AuthError(f"{exc} ({used}); nothing ran", may_have_run=False) from None
        except DeviceError as exc:
            self._ks = None
            self.sid = 0
            if exc.number == catalog.ERR_BUSY:  # no room for a role but a clinician's
                raise _no_room(exc, LinkError) from exc
            raise
        if not auth.equal(answer["proof"], auth.proof(self._ks, th, auth.DEVICE)):
            self._ks = None
            self.sid = 0
            raise AuthError(
                f"the device failed its proof for role {role}: it does not hold the key of "
                f"{keyfile.path if keyfile else 'the insecure mode'} (not the board "
                f"{reply['board_id']} it says it is?); refusing to talk to it"
            )
        self._authed = True
        self.session_role = role
        self.session_keyfile = keyfile
        if self.boot_id is not None and self.boot_id != reply["boot_id"]:
            self.resets += 1
        self.boot_id = reply["boot_id"]
        self.device = reply
        if self.supervise_s:
            # Supervision is declared only now, AUTH_R checked, by the session's first
            # tagged request: a handshake that dies (a forged refusal of AUTH that won)
            # leaves no supervisor on the device that no host will ever speak in.
            self.request("SUPERVISE", {"interval_s": self.supervise_s})
        return reply

    def _say_hello(self, role, library):
        """HELLO as `role`, with a new nonce: (HELLO_R's fields, its frame, HELLO's
        payload), once the device is known to speak this catalog."""
        fields = {
            "protocol": catalog.PROTOCOL_VERSION,
            "schema": catalog.SCHEMA_HASH,
            "host": self.host,
            "supervise_s": 0,  # declared by SUPERVISE once AUTH_R is checked (hello())
            "wall_ms": int(time.time() * 1000),
            "role": catalog.ROLES[role],
            "nonce": secrets.token_bytes(auth.NONCE),
        }
        # HELLO carries no sid and no tag; until AUTH_R this host has no session.
        self.sid = 0
        self._ks = None
        self._authed = False
        self._ctr = self._dev_ctr = 0
        self.device = None
        try:
            reply, frame = self._exchange("HELLO", fields)
        except DeviceError as exc:
            ours = f"protocol {catalog.PROTOCOL_VERSION} schema 0x{catalog.SCHEMA_HASH:08x}"
            if exc.number == catalog.ERR_MISMATCH:
                raise ProtocolMismatch([("protocol/schema", ours, exc.message)]) from exc
            if exc.number == catalog.ERR_BAD_PAYLOAD:  # an older device reads it whole
                theirs = f"a device that cannot read this HELLO ({exc.message})"
                raise ProtocolMismatch([("protocol/schema", ours, theirs)]) from exc
            if exc.number == catalog.ERR_BUSY:  # every slot taken: worth another HELLO
                raise _no_room(exc, Busy) from exc
            raise
        # The device checked protocol and schema already; checking again here costs
        # nothing and names both values.
        ours = [
            ("protocol version", catalog.PROTOCOL_VERSION, reply["protocol"]),
            ("schema hash", f"0x{catalog.SCHEMA_HASH:08x}", f"0x{reply['schema']:08x}"),
            ("role", role, catalog.ROLE_NAMES.get(reply["role"], str(reply["role"]))),
        ]
        if library is not None:
            name, version, crc = library
            ours.append(("drug library", name, reply["library"]))
            ours.append(("drug library version", version, reply["library_version"]))
            ours.append(("drug library crc", f"0x{crc:08x}", f"0x{reply['library_crc']:08x}"))
        differences = [d for d in ours if d[1] != d[2]]
        if not frame.sid:
            differences.append(("session", "a session id in HELLO_R's frame", "none"))
        if differences:
            raise ProtocolMismatch(differences)
        return reply, frame, messages.encode("HELLO", fields)

    def request(self, name, fields=None, wrap=None):
        """Send request `name` with `fields` and return its response's fields.
        `wrap` = (field, key): that field carries `key` wrapped under the session key
        and the request's counter (auth.wrap: KEY's new key). Raises RefusedError (the
        safety core said no: its reason named, its range in Decimals), DeviceError
        (ERROR answer), Forbidden, AuthError, DeviceReset or LinkError."""
        return self._exchange(name, dict(fields or {}), wrap)[0]

    def poll(self, timeout=0.0):
        """Read what arrives within `timeout` s; returns and clears the queued events."""
        self._read_until(time.monotonic() + timeout, None, None, None)
        out = list(self.events)
        self.events.clear()
        return out

    def _exchange(self, name, fields, wrap=None):
        """(the answer's fields, its frame)."""
        msg_id = catalog.ID[name]
        hello = msg_id == catalog.ID["HELLO"]
        self._seq = (self._seq + 1) & 0xFFFF
        seq = self._seq
        sid = 0 if hello else self.sid
        key, ctr = None, 0
        if self._authed:  # every request after AUTH_R: tagged, under a new counter
            if self._ctr >= 0xFFFFFFFF:
                raise DeviceReset(f"{name}: the session's counter is spent; {_ran(False)}", False)
            self._ctr += 1
            key, ctr = self._ks, self._ctr
            if wrap is not None:
                field, new_key = wrap
                fields[field] = auth.wrap(key, ctr, new_key)
        try:
            wire = messages.to_wire(
                msg_id, seq, fields, crc=CRC32, sid=sid, key=key, ctr=ctr, sender=auth.HOST
            )
        except (TypeError, ValueError) as exc:  # a field the catalog cannot carry
            raise BadValue(f"{name}: {exc}; nothing was sent") from None
        # Whether an unanswered attempt may have run a command: HELLO and AUTH never do
        # (they open and authenticate a session and run nothing on the safety core),
        # anything else once any of its bytes may have gone out (a frame short of its
        # final 0x00 still runs when the next frame's leading 0x00 ends it).
        sent = False
        runs = not hello and msg_id != catalog.ID["AUTH"]
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
                return self._answer(name, seq, frame, attempt, runs), frame
        raise NoAnswer(
            f"{name} seq {seq}: no answer after {self.attempts} attempts of "
            f"{self.timeout:.2f} s; {_ran(sent)}",
            may_have_run=sent,
        )

    def _read_until(self, deadline, msg_id, seq, sid, runs=False):
        """Feed the decoder until the answer to request (msg_id, seq) of session sid
        (None: any, for HELLO) arrives (returned) or the deadline passes (None). Events
        are queued; stale answers dropped. An untagged error (_untagged_ok) is held and
        returned when no tagged answer came within GRACE_S of its arrival (or before
        the deadline, if sooner). `runs`: the request may run a command, so a failed
        read leaves it maybe run."""
        answers = (
            ()
            if msg_id is None
            else (msg_id | catalog.RESPONSE_BIT, catalog.REFUSED, catalog.ERROR)
        )
        answer = None
        fallback = None  # an untagged error the device may have sent: believed after a grace
        while answer is None:
            left = deadline - time.monotonic()
            if left <= 0:
                return fallback
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
                    if self._untagged_ok(frame):
                        if fallback is None:  # a tagged answer has a grace to win over it
                            fallback = frame
                            grace = min(self.timeout, GRACE_S)
                            deadline = min(deadline, time.monotonic() + grace)
                    elif self._genuine(frame):
                        answer = frame
        if fallback is not None:
            self.dropped += 1  # a tagged answer came: the untagged error was not its answer
        return answer

    def _genuine(self, frame):
        """Whether an answer of this session may be believed (else it is dropped and
        counted): before HELLO_R any; then a valid tag with a device counter above the
        last accepted. The untagged errors believed as a fallback are _untagged_ok's."""
        if self._ks is None:
            return True
        if (
            frame.tag is not None
            and frame.ctr > self._dev_ctr
            and auth.equal(frame.tag, auth.tag(self._ks, auth.DEVICE, frame.signed))
        ):
            self._dev_ctr = frame.ctr
            return True
        self.dropped += 1
        return False

    def _untagged_ok(self, frame):
        """An untagged ERROR answering AUTH (HELLO_R had, AUTH_R not yet: the
        device's refusal of the key), or hello_required or auth in an authenticated
        session: the device's answer to a frame it could not authenticate, or anyone's
        (the fallback of _read_until)."""
        if self._ks is None or frame.tag is not None or frame.msg_id != catalog.ERROR:
            return False
        return not self._authed or self._error_code(frame) in _UNTAGGED_OK

    @staticmethod
    def _error_code(frame):
        try:
            return messages.decode(frame.msg_id, frame.payload)["code"]
        except ValueError:
            return None

    def _event(self, frame):
        try:
            fields = messages.decode(frame.msg_id, frame.payload)
        except ValueError:
            return  # a schema-matched device sent a payload we cannot read: drop it
        self.events.append((catalog.NAME[frame.msg_id], frame.seq, fields))

    def _answer(self, name, seq, frame, attempt, runs):
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
                # Before AUTH, on the first attempt, the device had no session: it did not
                # run. Later, an earlier attempt may have run before the device reset;
                # and in an authenticated session the answer is untagged, so anyone on
                # the line could have sent it ahead of the device's: it proves nothing
                # (Pump._call tells a real reset by the boot_id of its new HELLO).
                authed = self._authed
                self.device = None
                self._ks = None
                self._authed = False
                ran = runs and (attempt > 1 or authed)
                why = ", an untagged answer" if authed and attempt == 1 else ""
                raise DeviceReset(
                    f"{name} seq {seq}: the device does not know this session (it reset, "
                    f"or closed the session to make room for other hosts{why}); {_ran(ran)}",
                    may_have_run=ran,
                    first_attempt=attempt == 1,
                )
            if code == catalog.ERR_STALE:
                # This session already ran this seq or a newer one: our first attempt
                # ran and its answer was lost, or the session's seqs were reused.
                raise LinkError(
                    f"{name} seq {seq}: the device says {fields['message']!r}; {_ran(True)}",
                    may_have_run=True,
                )
            if code == catalog.ERR_AUTH:
                if name == "AUTH":  # hello() says which key the board refused
                    raise AuthError(fields["message"], may_have_run=False)
                # The device refused this frame's tag, untagged: so anyone on the line
                # could have sent this answer, and the request itself may still have
                # reached the device and run.
                raise AuthError(f"{fields['message']}; {_ran(runs)}", may_have_run=runs)
            if code == catalog.ERR_FORBIDDEN:
                raise Forbidden(f"{fields['message']}; {_ran(False)}", may_have_run=False)
            raise DeviceError(code, catalog.ERROR_NAMES.get(code, "unknown"), fields["message"])
        return fields


def _no_room(exc, cls):
    """ERROR busy answering HELLO or AUTH (SPEC §3): a link error that ran nothing."""
    return cls(f"the device has no session free: {exc.message}; {_ran(False)}", False)


def _ran(may_have_run):
    if may_have_run:
        return "the command MAY HAVE RUN on the device: check its status before repeating it"
    return "the command did NOT run"
