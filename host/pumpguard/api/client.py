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
declares the interval at HELLO instead and leaves the talking to you: some request at
least every ``s`` seconds, supervision counting from the first (``close()`` says
goodbye). Without either (one-shot use, as
every ``pumpguard`` CLI command), silence raises nothing.

``connect()`` waits up to ``boot_wait`` seconds (default 10) for a device that does not
answer yet (still booting, or the emulator starting); a device that answers with a
mismatch is reported at once.
"""

import contextlib
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from protocol.catalog import PRIORITY_NAMES

from ..errors import (
    BadValue,
    DeviceReset,
    NoAnswer,
    PumpguardError,
    RefusedError,
    WrongType,
    reason_name,
)
from . import keepalive
from .link import Link
from .quantity import micro_to_decimal, to_micro

BOOT_WAIT_S = 10.0  # connect(): how long a device that does not answer yet is waited for


@dataclass(frozen=True)
class Info:
    """What the device said about itself at HELLO, and its link counters now."""

    firmware: str
    board: str
    channels: int
    library: str
    library_version: str
    library_crc: int
    bundle: str  # SHA-256 of the bundle flashed, "" when the firmware runs from source
    boot_id: int
    uptime_ms: int
    counters: dict


@dataclass(frozen=True)
class Status:
    """One channel's state; quantities are exact ``Decimal`` in the unit named."""

    channel: int
    state: str  # idle | running | tapering | stopped | ... (firmware/core.py)
    drug: str | None
    dose: Decimal | None
    dose_unit: str | None
    rate_ml_h: Decimal
    volume_infused_ml: Decimal
    volume_left_ml: Decimal | None
    time_to_empty_s: int | None
    alarms: tuple  # ids of the alarms listed on this channel
    taper_next_in_s: Decimal | None  # tapering: seconds until the next step, else None

    def as_json(self):
        """A dict for ``json.dumps``: Decimals as JSON numbers, exact to 6 decimals."""
        out = {}
        for key, value in self.__dict__.items():
            if isinstance(value, Decimal):
                # Shortest float repr of text with <= 6 decimals is that same text.
                value = int(value) if value == value.to_integral_value() else float(value)
            out[key] = list(value) if isinstance(value, tuple) else value
        return out


@dataclass(frozen=True)
class Decision:
    """An accepted start or titrate: the dose now set and the rate the motor runs."""

    channel: int
    dose: Decimal
    dose_unit: str
    rate_ml_h: Decimal


@dataclass(frozen=True)
class TaperStep:
    at_ms: int  # device uptime of the step
    in_s: Decimal  # seconds from the stop command to the step
    dose: Decimal


@dataclass(frozen=True)
class Stopped:
    """The answer to stop(): ``plan`` is empty when the channel stopped at once, else the
    whole taper the device now runs by itself (every step), the last at dose 0."""

    channel: int
    dose_unit: str
    plan: tuple


@dataclass(frozen=True)
class Alarm:
    id: int
    channel: int  # 0: the whole device
    code: str  # reason name, e.g. "occlusion" (protocol/reasons.py)
    priority: str  # low | medium | high
    message: str
    at_ms: int
    acked: bool


@dataclass(frozen=True)
class LogEntry:
    """One entry of the device's persistent event log.

    ``seq`` counts across the device's boots; ``boot_id`` names the boot that made the
    entry (HELLO_R's); ``at_ms`` is device uptime; ``wall_ms`` the Unix time in ms
    once a host had given the device the wall clock at HELLO (None before).
    """

    seq: int
    at_ms: int
    channel: int
    kind: str
    code: str
    text: str
    boot_id: int = 0
    wall_ms: int | None = None

    @property
    def wall_time(self):
        """``wall_ms`` as ISO 8601 UTC with milliseconds ("2026-12-01T09:41:02.123Z"),
        or None."""
        if self.wall_ms is None:
            return None
        at = datetime.fromtimestamp(self.wall_ms // 1000, UTC)
        return f"{at:%Y-%m-%dT%H:%M:%S}.{self.wall_ms % 1000:03d}Z"

    def as_json(self):
        """The entry as one JSON Lines object (``pumpguard log --jsonl``): seq,
        boot_id, at_ms, wall_ms (null: no wall clock yet), wall_time, channel, kind,
        code, text."""
        return {
            "seq": self.seq,
            "boot_id": self.boot_id,
            "at_ms": self.at_ms,
            "wall_ms": self.wall_ms,
            "wall_time": self.wall_time,
            "channel": self.channel,
            "kind": self.kind,
            "code": self.code,
            "text": self.text,
        }


def _log_entry(e):
    return LogEntry(
        e["seq"],
        e["at_ms"],
        e["ch"],
        e["kind"],
        reason_name(e["code"]),
        e["text"],
        boot_id=e["boot_id"],
        wall_ms=e["wall_ms"],
    )


def _alarm(fields):
    return Alarm(
        fields["id"],
        fields["ch"],
        reason_name(fields["code"]),
        PRIORITY_NAMES.get(fields["priority"], str(fields["priority"])),
        fields["message"],
        fields["at_ms"],
        fields["acked"],
    )


def _concentration(value):
    # "16 mcg/mL" or ("16", "mcg/mL") -> (micro-scaled value, unit)
    if value is None:
        return None, ""
    if isinstance(value, str):
        parts = value.split()
        value = parts
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

    def __init__(self, port, timeout=0.5, attempts=3, boot_wait=BOOT_WAIT_S, supervise=0):
        self.port = port
        self.keepalive_error = None  # the last heartbeat that failed (keepalive())
        # One request at a time on the link: the caller's and the keepalive thread's.
        self._lock = threading.RLock()
        self._link = Link(port, timeout=timeout, attempts=attempts)
        self._link.supervise_s = keepalive.interval(supervise, 0)
        try:
            self._link.discard_input()  # events queued before we came
            self.device = self._hello(boot_wait)
        except BaseException:
            self._link.close()
            raise

    def _hello(self, boot_wait):
        # HELLO again while nothing answers, until boot_wait has passed: a device still
        # booting says nothing yet. HELLO runs nothing, so asking again is harmless; a
        # mismatch or a port that fails is final at once.
        deadline = time.monotonic() + boot_wait
        while True:
            try:
                return self._link.hello()
            except NoAnswer:
                if time.monotonic() >= deadline:
                    raise

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

    def _call(self, name, fields, rerun=False):
        # The device no longer knows this session (it reset, or closed the session for
        # newer hosts'): a new HELLO, then the request once more when it certainly did
        # not run (the device answered its only attempt so), or when it is a read with
        # no effect (rerun). A command that may have run is never repeated behind the
        # caller's back: that DeviceReset says so. An emergency stop crowded out by
        # one-shot CLI sessions therefore still runs, once.
        with self._lock:
            try:
                return self._link.request(name, fields)
            except DeviceReset as exc:
                self.device = self._link.hello()  # declares link.supervise_s again
                if exc.may_have_run and not rerun:
                    raise
                return self._link.request(name, fields)

    @property
    def supervise_s(self):
        """The heartbeat interval this host has declared (0: none)."""
        return self._link.supervise_s

    def supervise(self, interval_s):
        """Declare a heartbeat interval in whole seconds (0: stop supervising, a clean
        goodbye). Prefer ``keepalive()``, which also sends the heartbeats."""
        self._link.supervise_s = keepalive.interval(interval_s, 0)
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
        return Info(
            d["firmware"],
            d["board"],
            d["channels"],
            d["library"],
            d["library_version"],
            d["library_crc"],
            d["bundle"],
            info["boot_id"],
            info["uptime_ms"],
            counters,
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
        self._call("ESTOP", {"ch": channel, "reason": reason})

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

    def events(self, timeout=0.0):
        """Unsolicited events (alarms, state changes) received so far, or within
        ``timeout`` seconds: a list of (name, fields)."""
        with self._lock:
            polled = self._link.poll(timeout)
        return [(name, fields) for name, _seq, fields in polled]


def connect(port, timeout=0.5, attempts=3, boot_wait=BOOT_WAIT_S, supervise=0):
    """Open ``port`` (device path, PTY or pyserial URL), say HELLO, return a ``Pump``.

    ``boot_wait``: seconds to keep saying HELLO while nothing answers (a device still
    booting). ``supervise``: the heartbeat interval in whole seconds this host promises
    (0, the default: none, one-shot use; see ``Pump.keepalive()`` for a background one).
    Raises ``LinkError`` when nothing answers and ``ProtocolMismatch`` when the device
    speaks another protocol version or message schema.
    """
    return Pump(port, timeout=timeout, attempts=attempts, boot_wait=boot_wait, supervise=supervise)
