"""The pump API: one object per connected pumpguard device.

::

    import pumpguard

    with pumpguard.connect("/dev/ttyUSB0") as pump:        # or a PTY, or socket://...
        pump.start(1, "norepinephrine", "0.1", "mcg/kg/min",
                   weight_kg="70", concentration="16 mcg/mL", volume_ml="50")
        print(pump.status(1).rate_ml_h)                   # Decimal('26.25')

Quantities go in as ``str``, ``Decimal`` or ``int`` and come back as ``Decimal``:
exact, never ``float`` (a float is refused with ``WrongType``, a ``TypeError``; every
bad argument raises a ``UsageError`` before anything is sent). A command the safety
layer refuses raises ``RefusedError``: its reason's name (``code``, e.g.
``"above_hard_max"``) and wire ``number``, message, and allowed range (``allowed``,
``Decimal``s as above); ``str()`` of it is the whole line the CLI prints. A link that
fails raises ``LinkError``, which says whether the command may have run (``may_have_run``),
whatever the port did: a device unplugged mid-command is a ``LinkError`` too, never an
``OSError``. Both derive from ``PumpguardError``.

Supervision. A host that keeps a pump running under its watch declares it, so the
device raises its ``link_lost`` alarm when the host falls silent::

    with pumpguard.connect(port) as pump, pump.keepalive(interval_s=2):
        ...   # a background thread sends a heartbeat every 2 s

``keepalive(interval_s)`` tells the device the interval (SUPERVISE), heartbeats from a
background thread (its requests and yours take turns on one lock) and says goodbye on
exit (SUPERVISE 0: no alarm follows). The device alarms after
max(its link timeout, 3 x interval_s) of silence. ``connect(port, supervise=s)``
declares it once the session is authenticated (SUPERVISE, its first request) and
leaves the talking to you: some request at least every ``s`` seconds (``close()`` says
goodbye). Without either (one-shot use, as
every ``pumpguard`` CLI command), silence raises nothing.

``connect()`` waits up to ``boot_wait`` seconds (default 10) for a device that does not
answer yet (still booting, or the emulator starting); a device that answers with a
mismatch is reported at once.

Keys. Every session is authenticated (``link.py``): ``connect(port, key=PATH)`` (or a
``KeyFile``; by default ``$PUMPGUARD_KEY``, else the key store's file for the board id
the device names, ``api/keys.py``) and ``role=`` one of monitor, clinician, service
(default: clinician if the key file holds it, else monitor, else service). A board that
refuses the key raises ``AuthError``; a request the role may not send, ``Forbidden``.
``pump.rotate_key(role)`` (a service session) replaces a role's key on the board and in
the key file.
"""

import contextlib
import os
import secrets
import sys
import threading
import time
from decimal import Decimal

from pumpguard._board.protocol import auth, catalog

from ..errors import (
    AuthError,
    BadValue,
    Busy,
    DeviceError,
    DeviceReset,
    Forbidden,
    LinkError,
    NoAnswer,
    PumpguardError,
    RefusedError,
    UsageError,
    WrongType,
)
from . import keepalive, keys, libpush
from .answers import (  # noqa: F401 (re-exported: pumpguard.api.client.LogEntry...)
    Alarm,
    Decision,
    Info,
    LibraryId,
    LogEntry,
    Status,
    Stopped,
    TaperStep,
    _alarm,
    _log_entry,
)
from .link import Link
from .quantity import micro_to_decimal, to_micro

BOOT_WAIT_S = 10.0  # connect(): how long a device that does not answer yet is waited for
_BUSY_S = 0.25  # connect(): the pause before a HELLO the device had no room for is sent again
# INFO_R's counters of the link's authentication, beside its decoder's rx_ ones.
AUTH_COUNTERS = ("auth_refused", "bad_tag", "stale_ctr", "forbidden")


def _concentration(value):
    # "16 mcg/mL" or ("16", "mcg/mL") -> (micro-scaled value, unit)
    if value is None:
        return None, ""
    if isinstance(value, str):
        value = value.split()
    try:
        number, unit = value
    except (TypeError, ValueError):
        raise BadValue(
            f"concentration {value!r} must be 'VALUE UNIT' or (VALUE, UNIT), e.g. '16 mcg/mL'"
        ) from None
    return to_micro(number, "concentration"), unit


class Pump:
    """A connected device; build it with ``pumpguard.connect(port)``.

    Channels are numbered from 1. Every method is one request to the device, retried
    over the link without ever running twice (the device's replay cache).
    """

    def __init__(
        self,
        port,
        timeout=0.5,
        attempts=3,
        boot_wait=BOOT_WAIT_S,
        supervise=0,
        key=None,
        role=None,
        insecure=False,
    ):
        self.port = port
        self.keepalive_error = None  # the last heartbeat that failed (keepalive())
        # One request at a time on the link: the caller's and the keepalive thread's.
        self._lock = threading.RLock()
        self._link = Link(
            port, timeout=timeout, attempts=attempts, key=key, role=role, insecure=insecure
        )
        self._link.supervise_s = keepalive.interval(supervise, 0)
        try:
            self._link.discard_input()  # events queued before we came
            self.device = self._hello(boot_wait)
        except BaseException:
            self._link.close()
            raise

    def _hello(self, boot_wait):
        # HELLO again while nothing answers or no session is free, until boot_wait has
        # passed: a device still booting says nothing yet, and another host's handshake
        # holds a slot for 2 s. HELLO runs nothing, so asking again is harmless; a
        # mismatch or a port that fails is final at once.
        deadline = time.monotonic() + boot_wait
        while True:
            try:
                return self._link.hello()
            except (NoAnswer, Busy) as exc:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(_BUSY_S if isinstance(exc, Busy) else 0)

    def close(self):
        """Say goodbye to supervision (when declared) and close the port."""
        with self._lock:
            if self._link.supervise_s:
                with contextlib.suppress(PumpguardError):  # gone: the device alarms, rightly
                    self.supervise(0)
            self._link.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def role(self):
        """The role this session speaks as (monitor, clinician or service)."""
        return self._link.session_role

    @property
    def key_path(self):
        """The key file the session authenticated with (None: the insecure mode)."""
        keyfile = self._link.session_keyfile
        return None if keyfile is None else keyfile.path

    @property
    def dropped(self):
        """Answers this host dropped: a wrong or missing tag, a device counter not newer."""
        return self._link.dropped

    def _call(self, name, fields, rerun=False, wrap=None):
        # The device no longer knows this session (it reset, or closed the session for
        # newer hosts'): a new HELLO, then the request once more when it certainly did
        # not run (the device reset before its first attempt), or when running it twice
        # sets nothing new (rerun: a read, an emergency stop). A command that may have
        # run is never repeated behind the caller's back: that DeviceReset says so.
        with self._lock:
            try:
                return self._link.request(name, fields, wrap)
            except DeviceReset as exc:
                resets = self._link.resets
                try:
                    self.device = self._link.hello()  # declares link.supervise_s again
                except PumpguardError as again:
                    if not exc.may_have_run:
                        raise
                    # Whatever the HELLO's own error says, the request may have run.
                    why = f"{exc}; then HELLO again failed: {again} (the HELLO's; {name} "
                    cls = type(again) if isinstance(again, (LinkError, AuthError)) else DeviceReset
                    raise cls(f"{why}MAY HAVE RUN)", may_have_run=True) from again
                # A new boot_id: the device did reset, so its unknown first attempt never ran
                reset = self._link.resets > resets and exc.first_attempt
                if exc.may_have_run and not rerun and not reset:
                    raise
                return self._link.request(name, fields, wrap)

    @property
    def supervise_s(self):
        """The heartbeat interval this host has declared (0: none)."""
        return self._link.supervise_s

    def supervise(self, interval_s):
        """Declare a heartbeat interval in whole seconds (0: stop supervising, a clean
        goodbye). Prefer ``keepalive()``, which also sends the heartbeats. The
        clinician's alone (the device's rule): a UsageError in another role's session."""
        interval_s = keepalive.interval(interval_s, 0)
        keepalive.may_supervise(self.role, True)  # 0 too: SUPERVISE is the clinician's
        self._link.supervise_s = interval_s
        self._call("SUPERVISE", {"interval_s": interval_s}, rerun=True)

    def heartbeat(self):
        """One HEARTBEAT: the device hears this host (its answer's fields)."""
        return self._call("HEARTBEAT", {}, rerun=True)

    def keepalive(self, interval_s=2):
        """A context manager: supervise the device while the ``with`` block runs
        (declare ``interval_s``, heartbeat every ``interval_s`` seconds from a
        background thread, then say goodbye). A heartbeat that fails is kept in
        ``keepalive_error`` and the next one tried."""
        return keepalive.keepalive(self, interval_s)

    def info(self):
        """Firmware, board, channels, drug library and link counters (``Info``)."""
        info = self._call("INFO", {}, rerun=True)
        d = self.device
        counters = {k[3:]: v for k, v in info.items() if k.startswith("rx_")}
        counters.update((k, info[k]) for k in AUTH_COUNTERS)
        return Info(
            d["firmware"],
            d["board"],
            d["channels"],
            info["library"],
            info["library_version"],
            info["library_crc"],
            d["bundle"],
            info["boot_id"],
            info["uptime_ms"],
            counters,
            info["library_problems"],
        )

    @property
    def channels(self):
        return self.device["channels"]

    def uptime_ms(self):
        return self.heartbeat()["uptime_ms"]

    def status(self, channel=1):
        """The channel's ``Status``."""
        s = self._call("STATUS", {"ch": channel}, rerun=True)
        left = s["volume_left"]
        return Status(
            s["ch"],
            s["state"],
            s["drug"] or None,
            micro_to_decimal(s["dose"]) if s["drug"] else None,
            s["dose_unit"] or None,
            micro_to_decimal(s["rate"]),
            micro_to_decimal(s["volume_infused"]),
            None if left is None else micro_to_decimal(left),
            s["time_to_empty_s"],
            tuple(a["id"] for a in s["alarms"]),
            None if s["taper_next_ms"] is None else self._in_s(s["taper_next_ms"]),
            None if s["taper_next_dose"] is None else micro_to_decimal(s["taper_next_dose"]),
            s["override"],
        )

    def _in_s(self, at_ms, now_ms=None):
        # Seconds from the device's uptime now to its uptime at_ms (0 if already past).
        if now_ms is None:
            now_ms = self.uptime_ms()
        return Decimal(max(0, at_ms - now_ms)) / 1000

    def start(
        self,
        channel,
        drug,
        dose,
        unit,
        weight_kg=None,
        concentration=None,
        volume_ml=None,
        override=False,
    ):
        """Start ``drug`` at ``dose`` ``unit`` on ``channel``; returns a ``Decision``.

        ``concentration`` is ``"16 mcg/mL"`` or ``("16", "mcg/mL")``; ``override``
        accepts a dose past a soft limit (never a hard one), and is logged.
        """
        conc, conc_unit = _concentration(concentration)
        r = self._call(
            "START",
            {
                "ch": channel,
                "drug": drug,
                "dose": to_micro(dose, "dose"),
                "unit": unit,
                "weight": None if weight_kg is None else to_micro(weight_kg, "weight"),
                "conc": conc,
                "conc_unit": conc_unit,
                "volume": None if volume_ml is None else to_micro(volume_ml, "volume"),
                "override": bool(override),
            },
        )
        return Decision(
            r["ch"], micro_to_decimal(r["dose"]), r["unit"], micro_to_decimal(r["rate"])
        )

    def titrate(self, channel, dose, unit, override=False):
        """Change the running dose; the library's step and interval limits apply."""
        r = self._call(
            "TITRATE",
            {"ch": channel, "dose": to_micro(dose, "dose"), "unit": unit, "override": override},
        )
        return Decision(
            r["ch"], micro_to_decimal(r["dose"]), r["unit"], micro_to_decimal(r["rate"])
        )

    def stop(self, channel):
        """Stop the channel: at once, or by the library's taper for a taper drug (the
        whole plan, every step, fetched page by page)."""
        r = self._call("STOP", {"ch": channel})
        steps = list(r["plan"])
        while len(steps) < r["total"]:
            steps.extend(self._taper_page(channel, len(steps), r["total"]))
        plan = ()
        if steps:
            now = self.uptime_ms()
            plan = tuple(
                TaperStep(s["at_ms"], self._in_s(s["at_ms"], now), micro_to_decimal(s["dose"]))
                for s in steps
            )
        return Stopped(r["ch"], r["unit"], plan)

    def _taper_page(self, channel, first, total):
        # The steps of the taper STOP announced (total of them) from step `first` on.
        try:
            page = self._call("TAPER", {"ch": channel, "first": first}, rerun=True)
        except RefusedError as exc:  # the taper ended meanwhile (an emergency stop)
            why = exc.message
        else:
            if page["total"] == total and page["plan"]:
                return page["plan"]
            why = f"the device now lists {page['total']}"
        raise PumpguardError(
            f"channel {channel} accepted the stop and tapers in {total} steps, but only "
            f"{first} could be read ({why}); check its status"
        )

    def emergency_stop(self, channel, reason):
        """Stop flow at once: reason is occlusion, air_in_line, extravasation or
        clinician. The one way to stop a taper drug abruptly; always alarmed and logged."""
        self._call("ESTOP", {"ch": channel, "reason": reason}, rerun=True)  # stopped is stopped

    def alarms(self):
        """Every alarm the device lists, oldest first (a list of ``Alarm``)."""
        out = []
        while True:
            r = self._call("ALARMS", {"first": len(out)}, rerun=True)
            out.extend(_alarm(a) for a in r["alarms"])
            if not r["alarms"] or len(out) >= r["total"]:
                return out

    def ack(self, alarm_id):
        """Acknowledge alarm ``alarm_id`` (silences it; a lasting condition stays listed)."""
        self._call("ACK", {"alarm_id": alarm_id})

    def log(self, since=0):
        """The device's persistent event log from entry ``since`` on, across its boots
        (a list of ``LogEntry``, oldest first), many entries per LOG page. Entries the
        device rotated out are missing: the first seq returned may be above ``since``."""
        if isinstance(since, bool) or not isinstance(since, int):
            raise WrongType(f"since must be an entry seq (int), not {since!r}")
        if not 0 <= since <= 0xFFFFFFFF:
            raise BadValue(f"since {since} is not an entry seq: give 0 to 4294967295")
        out = []
        first = since
        while True:
            r = self._call("LOG", {"first": first}, rerun=True)
            out.extend(_log_entry(e) for e in r["entries"])
            if not r["entries"] or r["next"] == first:
                return out
            first = r["next"]

    def rotate_key(self, role):
        """Replace ``role``'s key on the board with a new random one (this session must
        be a service one) and in the key file the session used; returns its path.

        The new key file is written to ``<path>.new`` first, and removed only once the
        board's tagged answer says how it ended: KEY_R with the new key's check (then
        the key file has the new key), or a tagged ERROR or REFUSED (the board kept the
        old key). Anything else (a lost answer, an untagged error anyone could have
        sent, Ctrl-C, a reset) may leave the board with the new key already: ``.new``
        is kept, and the error says so; no rotation starts while one is kept (a
        UsageError says how to settle it). Sessions open keep working; new ones need the
        new key. A session whose key file has no path (a ``KeyFile`` built in memory)
        is refused before anything is sent: the new key would be in no file."""
        if role not in keys.ROLES:
            raise BadValue(f"role {role!r} is not one of {', '.join(keys.ROLES)}")
        with self._lock:
            keyfile = self._link.session_keyfile
            if keyfile is None:
                raise UsageError("the device runs without keys (--insecure): none to rotate")
            if self.role != "service":
                raise UsageError(
                    f"rotating a key needs the service key (connect with role='service', "
                    f"or --role service); this session is {self.role}: nothing was sent"
                )
            if not keyfile.path:
                raise UsageError(
                    "rotating a key needs a key file on disk to write the new key to: "
                    "this session's KeyFile has no path (save() it, then connect(port, "
                    "key=PATH)); nothing was sent"
                )
            new = keys.pending(keyfile)  # never over an earlier rotation's kept key
            new_key = secrets.token_bytes(auth.KEY)
            rotated = keyfile.replaced(role, new_key)
            path = keyfile.path
            pending = rotated.save(new)
            try:
                r = self._call("KEY", {"role": catalog.ROLES[role]}, wrap=("key", new_key))
            except (RefusedError, DeviceError, Forbidden, BadValue):
                # A tagged answer of the board's (or nothing sent): it kept the old key.
                os.remove(pending)
                raise
            except (LinkError, AuthError) as exc:
                # No answer, an untagged one (anyone's), or a reset (its re-HELLO too):
                # whatever the error says of this attempt, KEY may have run on the board.
                raise type(exc)(keys.kept(exc, role, pending, path), exc.may_have_run) from None
            except BaseException:  # Ctrl-C while the answer was awaited, and the like
                print(keys.kept(None, role, pending, path), file=sys.stderr)
                raise
            if r["role"] != catalog.ROLES[role] or not auth.equal(
                r["check"], auth.key_check(new_key)
            ):
                raise PumpguardError(
                    f"the board answered the rotation of the {role} key with the check of "
                    f"another key: the key it holds is unknown here; the new one is kept in "
                    f"{pending}, the old in {path}"
                )
            rotated.save(path)
            os.remove(pending)
            if self._link.keyfile is keyfile:
                self._link.keyfile = rotated
            self._link.session_keyfile = rotated
            return path

    def push_library(self, path):
        """Check the library file at ``path`` here, push it and switch the device to it
        (a service session, no channel delivering); its ``LibraryId`` (api/libpush.py)."""
        return libpush.push(self, path)

    def events(self, timeout=0.0):
        """Unsolicited events (alarms, state changes) received so far, or within
        ``timeout`` seconds: a list of (name, fields)."""
        with self._lock:
            polled = self._link.poll(timeout)
        return [(name, fields) for name, _seq, fields in polled]


def connect(port, **options):
    """Open ``port`` (device path, PTY or pyserial URL), say HELLO, authenticate the
    session, return a ``Pump``. The options are ``Pump``'s: ``timeout`` (s per attempt,
    0.5), ``attempts`` (3), ``boot_wait``, ``supervise``, ``key``, ``role``, ``insecure``.

    ``boot_wait``: seconds to keep saying HELLO while nothing answers (a device still
    booting) or no session is free (``Busy``: another host's handshake holds a slot).
    ``supervise``: the heartbeat interval in whole seconds this host promises (0, the
    default: none, one-shot use; see ``Pump.keepalive()`` for a background one).
    ``key``: a key file's path or a ``KeyFile`` (None: ``$PUMPGUARD_KEY``, else the key
    store's file for the board); ``role``: monitor, clinician or service (None: the
    key file's first of clinician, monitor, service); ``insecure``: talk to an
    emulator started with ``--insecure`` (no keys). Raises ``LinkError`` when nothing
    answers, ``ProtocolMismatch`` when the device speaks another protocol version or
    message schema, ``KeyFileError`` without a usable key, ``AuthError`` when the
    board refuses the key or fails its own proof.
    """
    return Pump(port, **options)
