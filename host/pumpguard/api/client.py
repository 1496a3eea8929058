"""The pump API: one object per connected pumpguard device.

::

    import pumpguard

    with pumpguard.connect("/dev/ttyUSB0") as pump:        # or a PTY, or socket://...
        pump.start(1, "norepinephrine", "0.1", "mcg/kg/min",
                   weight_kg="70", concentration="16 mcg/mL", volume_ml="50")
        print(pump.status(1).rate_ml_h)                   # Decimal('26.25')

Quantities go in as ``str``, ``Decimal`` or ``int`` and come back as ``Decimal`` in the
unit their name says (``rate_ml_h``) or a field beside them names (``dose_unit``):
exact, never ``float``, never the wire's millionths. Every bad argument raises a
``UsageError`` before anything is sent, saying what was wrong and what is allowed:
``WrongType`` (also a ``TypeError``) for a value of the wrong type, a float for a
quantity among them (a float may already be inexact), ``BadValue`` (also a
``ValueError``) for one out of range (channel 0, a dose with seven decimals). A command the safety
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
import threading
import time
from contextlib import AbstractContextManager
from decimal import Decimal
from typing import Any, cast

from pumpguard._board.protocol import catalog

from ..errors import AuthError, Busy, DeviceReset, LinkError, NoAnswer, PumpguardError, RefusedError
from . import answers, args, keepalive, keys, libpush
from .answers import Alarm, LogEntry  # noqa: F401 (re-exported: pumpguard.api.client.Alarm)
from .link import Link
from .quantity import micro_to_decimal, to_micro

BOOT_WAIT_S = 10.0  # connect(): how long a device that does not answer yet is waited for
_BUSY_S = 0.25  # connect(): the pause before a HELLO the device had no room for is sent again
# INFO_R's counters of the link's authentication, beside its decoder's rx_ ones.
AUTH_COUNTERS = ("auth_refused", "bad_tag", "stale_ctr", "forbidden")
# A quantity as the API takes it: exact (a float is refused: it may already be inexact).
Quantity = str | Decimal | int
# A key file for connect(): its path, or one in memory.
KeyArg = str | os.PathLike[str] | keys.KeyFile | None
# The wire's sizes of what the device alone knows (protocol/catalog.py): text longer than
# these cannot be sent, so it is a BadValue here rather than a refusal there.
_SIZE = {f[0]: f[2] for f in catalog.FIELDS[catalog.ID["START"]] if f[1] == catalog.STR}
_REASON_SIZE = catalog.FIELDS[catalog.ID["ESTOP"]][1][2]
_ALARM_ID_MAX = 0xFFFF


class Pump:
    """A connected device: ``pumpguard.connect(port)`` (``Pump(port)`` is the same).

    Channels are numbered from 1. Every method is one request to the device, retried
    over the link without ever running twice (the device's replay cache).
    """

    def __init__(
        self,
        port: str | os.PathLike[str],
        timeout: float = 0.5,
        attempts: int = 3,
        boot_wait: float = BOOT_WAIT_S,
        supervise: int = 0,
        key: KeyArg = None,
        role: str | None = None,
        insecure: bool = False,
    ) -> None:
        """Open ``port`` (device path, PTY or pyserial URL), say HELLO, authenticate the
        session (``connect(port, ...)`` is this). ``timeout``: seconds per attempt;
        ``attempts``: of each request.

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
        # Every argument checked before the port is opened: a bad one sends nothing.
        port = args.path(port, "port")
        timeout = args.seconds(timeout, "timeout", positive=True)
        attempts = args.whole(attempts, "attempts", 1, args.ATTEMPTS_MAX)
        boot_wait = args.seconds(boot_wait, "boot_wait")
        supervise = keepalive.interval(supervise, 0)
        if not isinstance(key, keys.KeyFile) and key is not None:
            key = args.path(key, "key")
        if role is not None:
            role = args.one_of(role, "role", keys.ROLES)
        insecure = args.flag(insecure, "insecure")
        self.port = port
        self.keepalive_error: PumpguardError | None = None  # the last heartbeat that failed
        # One request at a time on the link: the caller's and the keepalive thread's.
        self._lock = threading.RLock()
        self._link = Link(
            port, timeout=timeout, attempts=attempts, key=key, role=role, insecure=insecure
        )
        self._link.supervise_s = supervise
        try:
            self._link.discard_input()  # events queued before we came
            self.device: dict[str, Any] = self._hello(boot_wait)  # HELLO_R's fields
        except BaseException:
            self._link.close()
            raise

    def _hello(self, boot_wait: float) -> dict[str, Any]:
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

    def close(self) -> None:
        """Say goodbye to supervision (when declared) and close the port."""
        with self._lock:
            if self._link.supervise_s:
                with contextlib.suppress(PumpguardError):  # gone: the device alarms, rightly
                    self.supervise(0)
            self._link.close()

    def __enter__(self) -> "Pump":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def role(self) -> str:
        """The role this session speaks as (monitor, clinician or service)."""
        return cast(str, self._link.session_role)  # set by the HELLO that made this Pump

    @property
    def key_path(self) -> str | None:
        """The key file the session authenticated with (None: the insecure mode)."""
        keyfile = self._link.session_keyfile
        return None if keyfile is None else keyfile.path

    @property
    def dropped(self) -> int:
        """Answers this host dropped: a wrong or missing tag, a device counter not newer."""
        return self._link.dropped

    def _call(
        self,
        name: str,
        fields: dict[str, Any],
        rerun: bool = False,
        wrap: tuple[str, bytes] | None = None,
    ) -> dict[str, Any]:
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
    def supervise_s(self) -> int:
        """The heartbeat interval this host has declared (0: none)."""
        return self._link.supervise_s

    def supervise(self, interval_s: int) -> None:
        """Declare a heartbeat interval in whole seconds (0: stop supervising, a clean
        goodbye). Prefer ``keepalive()``, which also sends the heartbeats. The
        clinician's alone (the device's rule): a UsageError in another role's session."""
        interval_s = keepalive.interval(interval_s, 0)
        keepalive.may_supervise(self.role, True)  # 0 too: SUPERVISE is the clinician's
        self._link.supervise_s = interval_s
        self._call("SUPERVISE", {"interval_s": interval_s}, rerun=True)

    def heartbeat(self) -> answers.Heartbeat:
        """One HEARTBEAT: the device hears this host (its uptime, boot, alarms unacked)."""
        r = self._call("HEARTBEAT", {}, rerun=True)
        return answers.Heartbeat(r["uptime_ms"], r["boot_id"], r["active_alarms"])

    def keepalive(self, interval_s: int = 2) -> AbstractContextManager["Pump"]:
        """A context manager: supervise the device while the ``with`` block runs
        (declare ``interval_s``, heartbeat every ``interval_s`` seconds from a
        background thread, then say goodbye). A heartbeat that fails is kept in
        ``keepalive_error`` and the next one tried."""
        return keepalive.keepalive(self, interval_s)

    def info(self) -> answers.Info:
        """Firmware, board, channels, drug library and link counters (``Info``)."""
        info = self._call("INFO", {}, rerun=True)
        d = self.device
        counters = {k[3:]: v for k, v in info.items() if k.startswith("rx_")}
        counters.update((k, info[k]) for k in AUTH_COUNTERS)
        return answers.Info(
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
    def channels(self) -> int:
        """How many channels the device has (numbered from 1)."""
        return self.device["channels"]

    def _channel(self, channel: object) -> int:
        return args.channel(channel, self.channels)

    def uptime_ms(self) -> int:
        """The device's uptime now (ms): the clock its times are in."""
        return self.heartbeat().uptime_ms

    def status(self, channel: int = 1) -> answers.Status:
        """The channel's ``Status``."""
        s = self._call("STATUS", {"ch": self._channel(channel)}, rerun=True)
        return answers.Status(
            s["ch"],
            s["state"],
            s["drug"] or None,
            micro_to_decimal(s["dose"]) if s["drug"] else None,
            s["dose_unit"] or None,
            micro_to_decimal(s["rate"]),
            micro_to_decimal(s["volume_infused"]),
            _decimal(s["volume_left"]),
            s["time_to_empty_s"],
            tuple(a["id"] for a in s["alarms"]),
            None if s["taper_next_ms"] is None else self._in_s(s["taper_next_ms"]),
            _decimal(s["taper_next_dose"]),
            s["override"],
            _decimal(s["conc"]),
            s["conc_unit"] or None,
            _decimal(s["weight"]),
            _decimal(s["volume"]),
            _decimal(s["patient_weight"]),
        )

    def patient(self, weight_kg: Quantity | None = None, *, clear: bool = False) -> answers.Patient:
        """The patient every channel delivers to: sets its weight (``weight_kg``), forgets
        it (``clear=True``: the next start that gives one sets it), or reads it (neither;
        any role). Refused while a dose that went through the weight runs, unless it is the
        patient's already or none was known. Every start's weight must be it
        (``weight_mismatch``)."""
        if args.flag(clear, "clear") and weight_kg is not None:
            raise args.BadValue("give weight_kg or clear=True, not both")
        if weight_kg is None and not clear:
            return answers.Patient(self.status(1).patient_weight_kg)
        weight = None if weight_kg is None else to_micro(weight_kg, "weight")
        return answers.Patient(_decimal(self._call("PATIENT", {"weight": weight})["weight"]))

    def _in_s(self, at_ms: int, now_ms: int | None = None) -> Decimal:
        # Seconds from the device's uptime now to its uptime at_ms (0 if already past).
        if now_ms is None:
            now_ms = self.uptime_ms()
        return Decimal(max(0, at_ms - now_ms)) / 1000

    def start(
        self,
        channel: int,
        drug: str,
        dose: Quantity,
        unit: str,
        weight_kg: Quantity | None = None,
        concentration: str | tuple[Quantity, str] | None = None,
        volume_ml: Quantity | None = None,
        override: bool = False,
    ) -> answers.Decision:
        """Start ``drug`` at ``dose`` ``unit`` on ``channel``; returns a ``Decision``.

        ``concentration`` is ``"16 mcg/mL"`` or ``("16", "mcg/mL")``; ``override``
        (True or False) accepts a dose past a soft limit (never a hard one), and is logged.
        """
        fields = {
            "ch": self._channel(channel),
            "drug": args.name(drug, "drug", _SIZE["drug"]),
            "dose": to_micro(dose, "dose"),
            "unit": args.name(unit, "unit", _SIZE["unit"]),
            "weight": None if weight_kg is None else to_micro(weight_kg, "weight"),
            "conc": None,
            "conc_unit": "",
            "volume": None if volume_ml is None else to_micro(volume_ml, "volume"),
            "override": args.flag(override, "override"),
        }
        fields["conc"], fields["conc_unit"] = args.concentration(concentration, _SIZE["conc_unit"])
        r = self._call("START", fields)
        return answers.Decision(
            r["ch"], micro_to_decimal(r["dose"]), r["unit"], micro_to_decimal(r["rate"])
        )

    def titrate(
        self, channel: int, dose: Quantity, unit: str, override: bool = False
    ) -> answers.Decision:
        """Change the running dose; the library's step and interval limits apply."""
        fields = {
            "ch": self._channel(channel),
            "dose": to_micro(dose, "dose"),
            "unit": args.name(unit, "unit", _SIZE["unit"]),
            "override": args.flag(override, "override"),
        }
        r = self._call("TITRATE", fields)
        return answers.Decision(
            r["ch"], micro_to_decimal(r["dose"]), r["unit"], micro_to_decimal(r["rate"])
        )

    def stop(self, channel: int) -> answers.Stopped:
        """Stop the channel: at once, or by the library's taper for a taper drug (the
        whole plan, every step, fetched page by page)."""
        channel = self._channel(channel)
        r = self._call("STOP", {"ch": channel})
        steps = list(r["plan"])
        while len(steps) < r["total"]:
            steps.extend(self._taper_page(channel, len(steps), r["total"]))
        plan = ()
        if steps:
            now = self.uptime_ms()
            plan = tuple(
                answers.TaperStep(
                    s["at_ms"], self._in_s(s["at_ms"], now), micro_to_decimal(s["dose"])
                )
                for s in steps
            )
        return answers.Stopped(r["ch"], r["unit"], plan)

    def handover(
        self,
        from_ch: int,
        to_ch: int,
        *,
        drug: str,
        concentration: str | tuple[Quantity, str],
        volume_ml: Quantity,
    ) -> answers.HandedOver:
        """Move the program running on ``from_ch`` to the new syringe loaded on ``to_ch``,
        in one decision: ``to_ch`` starts at ``from_ch``'s dose (and goes on with its
        taper, if one runs); ``from_ch`` stops without a taper. ``drug``,
        ``concentration`` and ``volume_ml`` are the new syringe's label: refused
        (``handover_mismatch``) unless they are the program's drug and concentration,
        and refused unless ``to_ch`` is free and reports no fault."""
        fields = {
            "ch": self._channel(from_ch),
            "to": self._channel(to_ch),
            "drug": args.name(drug, "drug", _SIZE["drug"]),
            "conc": None,
            "conc_unit": "",
            "volume": to_micro(volume_ml, "volume"),
        }
        fields["conc"], fields["conc_unit"] = args.concentration(concentration, _SIZE["conc_unit"])
        r = self._call("HANDOVER", fields)
        return answers.HandedOver(
            r["ch"],
            r["to"],
            r["state"],
            micro_to_decimal(r["dose"]),
            r["unit"],
            micro_to_decimal(r["rate"]),
        )

    def _taper_page(self, channel: int, first: int, total: int) -> list[dict[str, Any]]:
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

    def emergency_stop(self, channel: int, reason: str) -> None:
        """Stop flow at once: reason is occlusion, air_in_line, extravasation or
        clinician. The one way to stop a taper drug abruptly; always alarmed and logged."""
        fields = {"ch": self._channel(channel), "reason": args.name(reason, "reason", _REASON_SIZE)}
        self._call("ESTOP", fields, rerun=True)  # stopped is stopped

    def alarms(self) -> list[answers.Alarm]:
        """Every alarm the device lists, oldest first (a list of ``Alarm``)."""
        out = []
        while True:
            r = self._call("ALARMS", {"first": len(out)}, rerun=True)
            out.extend(answers._alarm(a) for a in r["alarms"])
            if not r["alarms"] or len(out) >= r["total"]:
                return out

    def ack(self, alarm_id: int) -> None:
        """Acknowledge alarm ``alarm_id`` (silences it; a lasting condition stays listed)."""
        self._call("ACK", {"alarm_id": args.whole(alarm_id, "alarm_id", 1, _ALARM_ID_MAX)})

    def log(self, since: int = 0) -> list[answers.LogEntry]:
        """The device's persistent event log from entry ``since`` on, across its boots
        (a list of ``LogEntry``, oldest first), many entries per LOG page. Entries the
        device rotated out are missing: the first seq returned may be above ``since``."""
        since = args.whole(since, "since (an entry seq)", 0, 0xFFFFFFFF)
        out = []
        first = since
        while True:
            r = self._call("LOG", {"first": first}, rerun=True)
            out.extend(answers._log_entry(e) for e in r["entries"])
            if not r["entries"] or r["next"] == first:
                return out
            first = r["next"]

    def rotate_key(self, role: str) -> str:
        """Replace ``role``'s key on the board with a new random one (this session must
        be a service one) and in the key file the session used; returns its path
        (``api/keys.py``, ``rotate()``: how a rotation whose end is unknown keeps the new
        key in ``<path>.new``)."""
        return keys.rotate(self, args.one_of(role, "role", keys.ROLES))

    def push_library(self, path: str | os.PathLike[str]) -> answers.LibraryId:
        """Check the library file at ``path`` here, push it and switch the device to it
        (a service session, no channel delivering); its ``LibraryId`` (api/libpush.py)."""
        return libpush.push(self, args.path(path, "library path"))

    def events(self, timeout: float = 0.0) -> list[answers.Event]:
        """Unsolicited events received so far, or within ``timeout`` seconds, oldest
        first: an ``Alarm`` for each alarm raised, a ``StateChange`` for each change of a
        channel's state (its dose and rate as ``Decimal``s)."""
        timeout = args.seconds(timeout, "timeout")
        with self._lock:
            polled = self._link.poll(timeout)
        return [answers._event(name, fields) for name, _seq, fields in polled]


def _decimal(micro: int | None) -> Decimal | None:
    # An optional quantity of the wire (None: absent) as the API gives it.
    return None if micro is None else micro_to_decimal(micro)


# connect(port, ...) is the Pump, connected: one signature, the constructor's.
connect = Pump
