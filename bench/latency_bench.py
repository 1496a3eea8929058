"""Round trip of every request in the catalog, on both emulator runtimes (a script that
prints numbers, not a test).

Each request goes through the host's own protocol code (pumpguard.connect()'s link:
encoded, tagged, sent, its answer read and checked) over the emulator's PTY, on the
CPython runtime and on the MicroPython one (the emulator bundle's .mpy on WebAssembly
under Node). Each one is timed in a state where it does what it is for: START and STOP
(at once) a channel, TITRATE to a new dose every time, ESTOP then ACK its alarm, TAPER
a running taper, SUPERVISE on and off, PATIENT, HANDOVER to the other channel and back, HELLO
and AUTH a new session, KEY a new key (a service session), LIB_BEGIN, LIB_DATA and
LIB_COMMIT a whole library push.

Per request: samples, median and p99 (nearest rank) of the round trip, the bytes that
crossed the link meanwhile (the request, the answer, and any event the device sent
before it), the time those bytes need on a 115200-baud UART (10 bits a byte: the floor
a board on a hardware UART cannot beat), and median / wire time.

    .venv/bin/python bench/latency_bench.py [ROUNDS [PUSHES]]

ROUNDS: samples per request (default 100); PUSHES: library pushes (default 2).
"""

import json
import math
import pathlib
import statistics
import sys
import tempfile
import time
from decimal import Decimal

import pumpguard

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from firmware import druglib  # noqa: E402
from protocol import catalog  # noqa: E402

BAUD = 115200
ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 100
PUSHES = int(sys.argv[2]) if len(sys.argv) > 2 else 2
RUNTIMES = ("cpython", "micropython")
_LIBRARY = ROOT / "firmware" / "druglib.json"
# A drug stopped at once, titrated down without an interval (the shipped library's).
PHENYL = dict(drug="phenylephrine", unit="mcg/min", concentration="20 mcg/mL", volume_ml="50")
NOREPI = dict(
    drug="norepinephrine",
    unit="mcg/kg/min",
    weight_kg="70",
    concentration="16 mcg/mL",
    volume_ml="50",
)


class CountingPort:
    """Wraps the link's serial port and counts the bytes that really cross it, so the
    line-time column is for the frames the firmware sent, not for a guess at them."""

    def __init__(self, port):
        self._port = port
        self.bytes = 0

    def write(self, data):
        self.bytes += len(data)
        return self._port.write(data)

    def read(self, size=1):
        data = self._port.read(size)
        self.bytes += len(data)
        return data

    def __getattr__(self, name):  # timeout, in_waiting, flush...: the real port's
        return getattr(self._port, name)

    def __setattr__(self, name, value):
        if name in ("_port", "bytes"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._port, name, value)


def line_ms(nbytes):
    return nbytes * 10 / BAUD * 1000


class Recorder:
    """Times every exchange of a Pump's link while `on`: samples[name] of (s, bytes)."""

    def __init__(self):
        self.samples = {}
        self.on = False

    def attach(self, pump):
        # The bench reaches into the link once, to count and time; the API has no reason to.
        link = pump._link
        counter = link._port = CountingPort(link._port)
        inner = link._exchange

        def timed(name, fields, wrap=None):
            b0 = counter.bytes
            t0 = time.perf_counter()
            try:
                return inner(name, fields, wrap)
            finally:
                if self.on:
                    sample = (time.perf_counter() - t0, counter.bytes - b0)
                    self.samples.setdefault(name, []).append(sample)

        link._exchange = timed
        return link

    def measure(self, call, *args, **kwargs):
        self.on = True
        try:
            return call(*args, **kwargs)
        finally:
            self.on = False


def _clinical(emu, rec, rounds):
    with pumpguard.connect(emu.port, key=emu.key, role="clinician") as pump:
        link = rec.attach(pump)
        req = link.request
        # 150 + 30 mcg/min on two channels: the patient's total stays under the hard max
        # (150 past the start limit, 35: overridden once, before the measured requests)
        pump.start(1, dose="150", override=True, **PHENYL)
        for r in range(rounds):
            rec.measure(req, "HEARTBEAT")
            rec.measure(req, "INFO")
            rec.measure(req, "STATUS", {"ch": 1})
            rec.measure(req, "LOG", {"first": 0})
            dose = f"{150 - (r + 1) * 0.25:g}"  # a new dose each time: down, no interval
            done = rec.measure(pump.titrate, 1, dose, "mcg/min")
            if done.dose != Decimal(dose):  # the bench's own check: a real change each time
                raise SystemExit(f"TITRATE to {dose} answered {done.dose}")
            rec.measure(pump.start, 2, dose="30", **PHENYL)
            rec.measure(pump.stop, 2)
            pump.start(2, dose="30", **PHENYL)
            rec.measure(pump.emergency_stop, 2, "clinician")
            alarms = rec.measure(req, "ALARMS", {"first": 0})["alarms"]
            unacked = [a["id"] for a in alarms if not a["acked"]] or [a["id"] for a in alarms]
            rec.measure(req, "ACK", {"alarm_id": unacked[-1]})
            rec.measure(req, "SUPERVISE", {"interval_s": 30 if r % 2 == 0 else 0})
            # the patient's weight: set the first time (none known), the same after
            rec.measure(req, "PATIENT", {"weight": 70_000000})
            label = {k: PHENYL[k] for k in ("drug", "concentration", "volume_ml")}
            rec.measure(pump.handover, 1, 2, **label)  # to channel 2's syringe, and back
            rec.measure(pump.handover, 2, 1, **label)
        req("SUPERVISE", {"interval_s": 0})
        pump.start(2, dose="0.1", **NOREPI)
        total = req("STOP", {"ch": 2})["total"]  # a taper: the plan's first page, then TAPER
        for r in range(rounds):
            rec.measure(req, "TAPER", {"ch": 2, "first": r % max(total, 1)})
        pump.emergency_stop(2, "clinician")
        pump.stop(1)
        for _ in range(rounds):
            rec.measure(link.hello)  # HELLO, then AUTH: a new session each time


def library_versions(folder, n):
    """n sealed copies of the drug library in folder, each its own version (a push of
    the same library twice would change nothing)."""
    doc = json.loads(_LIBRARY.read_text())
    for i in range(n):
        doc["version"] = f"bench-{i}"
        doc["crc32"] = f"0x{druglib.crc_of(doc):08x}"
        path = pathlib.Path(folder) / f"lib-{i}.json"
        path.write_text(json.dumps(doc, indent=1))
        yield path


def _service(emu, rec, rounds, pushes):
    with (
        tempfile.TemporaryDirectory() as folder,
        pumpguard.connect(emu.port, key=emu.key, role="service", timeout=10) as pump,
    ):
        link = rec.attach(pump)
        for i in range(rounds):
            new = bytes((i + j) & 0xFF for j in range(32))
            wrap = ("key", new)
            rec.measure(link.request, "KEY", {"role": 1, "key": b""}, wrap=wrap)
        for path in library_versions(folder, pushes):
            rec.measure(pump.push_library, path)


def measure_all(runtime, rounds=ROUNDS, pushes=PUSHES):
    """{request name: [(seconds, bytes), ...]} on one emulator runtime."""
    rec = Recorder()
    with pumpguard.Emulator(runtime=runtime) as emu:
        _clinical(emu, rec, rounds)
        _service(emu, rec, rounds, pushes)
    return rec.samples


def p99(values):
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


def summary(samples):
    """(n, median ms, p99 ms, median bytes) of a request's samples."""
    ms = [s * 1000 for s, _ in samples]
    return len(ms), statistics.median(ms), p99(ms), statistics.median(b for _, b in samples)


def round_trips(rounds=ROUNDS, runtime="cpython", pushes=0):
    """(request, median ms, p99 ms, median bytes) for each request measured."""
    for name, samples in measure_all(runtime, rounds, pushes).items():
        n, med, high, nbytes = summary(samples)
        yield name, med, high, nbytes


def requests():
    return [name for msg_id, name, _ in catalog.MESSAGES if catalog.is_request(msg_id)]


def main():
    print(
        f"round trip through the host's link (pumpguard.connect()) over the emulator PTY, "
        f"{ROUNDS} samples per request ({PUSHES} library pushes for LIB_*)"
    )
    head = f"{'runtime':<12}{'request':<12}{'n':>5}{'median ms':>11}{'p99 ms':>9}"
    print(head + f"{'bytes':>7}{'115200 baud ms':>16}{'median/wire':>13}")
    for runtime in RUNTIMES:
        samples = measure_all(runtime)
        for name in requests():
            if name not in samples:
                print(f"{runtime:<12}{name:<12}  not measured")
                continue
            n, med, high, nbytes = summary(samples[name])
            wire = line_ms(nbytes)
            print(
                f"{runtime:<12}{name:<12}{n:>5}{med:>11.3f}{high:>9.3f}{nbytes:>7.0f}"
                f"{wire:>16.3f}{med / wire:>13.2f}"
            )
    print(
        "(bytes: median per round trip, the request, its answer and the events sent before "
        "it; cpython: the emulator's firmware on CPython; micropython: its .mpy on "
        "WebAssembly under Node; a PC's speed, not a board's)"
    )


if __name__ == "__main__":
    main()
