"""Command round-trip latency through the API over the emulator's PTY.

Prints median and p99 per command, beside the time the same request and response
bytes need on a 115200-baud UART (10 bits per byte: start, 8 data, stop), which is the
floor a board on a hardware UART cannot beat. A benchmark prints numbers; no test
asserts on them.

    .venv/bin/python bench/latency_bench.py [ROUNDS]
"""

import statistics
import sys
import time

import pumpguard

BAUD = 115200
ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 300


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


def measure(call, counter, rounds=ROUNDS):
    samples = []
    counter.bytes = 0
    for _ in range(rounds):
        t = time.perf_counter()
        call()
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1], counter.bytes / rounds


def round_trips(rounds=ROUNDS):
    """(command, median ms, p99 ms, bytes per round trip) for each command measured."""
    with pumpguard.Emulator() as emu, pumpguard.connect(emu.port, key=emu.key) as pump:
        pump.start(
            1,
            "norepinephrine",
            "0.1",
            "mcg/kg/min",
            weight_kg="70",
            concentration="16 mcg/mL",
            volume_ml="50",
        )
        # The bench reaches into the link once, to count bytes; the API has no reason to.
        counter = pump._link._port = CountingPort(pump._link._port)
        cases = [
            ("HEARTBEAT", pump.uptime_ms),
            ("STATUS", lambda: pump.status(1)),
            ("TITRATE (same dose)", lambda: pump.titrate(1, "0.1", "mcg/kg/min")),
        ]
        for name, call in cases:
            yield (name, *measure(call, counter, rounds))


def main():
    print(f"round trip through pumpguard.connect() over the emulator PTY, {ROUNDS} rounds")
    print(
        f"{'command':<22}{'median ms':>10}{'p99 ms':>10}{'bytes':>8}{'115200 baud ms':>16}"
        f"{'median/line':>13}"
    )
    for name, median, p99, nbytes in round_trips():
        line = line_ms(nbytes)
        ratio = median / line
        print(f"{name:<22}{median:>10.3f}{p99:>10.3f}{nbytes:>8.0f}{line:>16.3f}{ratio:>13.3f}")


if __name__ == "__main__":
    main()
