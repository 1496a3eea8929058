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

from protocol import messages

BAUD = 115200
ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 300


def _line_ms(request, response):
    return (len(request) + len(response)) * 10 / BAUD * 1000


def _measure(call):
    samples = []
    for _ in range(ROUNDS):
        t = time.perf_counter()
        call()
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def main():
    with pumpguard.Emulator() as emu, pumpguard.connect(emu.port) as pump:
        pump.start(
            1,
            "norepinephrine",
            "0.1",
            "mcg/kg/min",
            weight_kg="70",
            concentration="16 mcg/mL",
            volume_ml="50",
        )
        status = {  # a running channel's STATUS_R, for its size on the line
            "ch": 1,
            "state": "running",
            "drug": "norepinephrine",
            "dose": 100000,
            "dose_unit": "mcg/kg/min",
            "rate": 26250000,
            "volume_infused": 1000000,
            "volume_left": 49000000,
            "time_to_empty_s": 6720,
            "alarms": [],
        }
        cases = [
            (
                "HEARTBEAT",
                pump.uptime_ms,
                messages.to_wire("HEARTBEAT", 1, {}),
                messages.to_wire(
                    "HEARTBEAT_R", 1, {"uptime_ms": 1, "boot_id": 1, "active_alarms": 0}
                ),
            ),
            (
                "STATUS",
                lambda: pump.status(1),
                messages.to_wire("STATUS", 1, {"ch": 1}),
                messages.to_wire("STATUS_R", 1, status),
            ),
            (
                "TITRATE (same dose)",
                lambda: pump.titrate(1, "0.1", "mcg/kg/min"),
                messages.to_wire(
                    "TITRATE", 1, {"ch": 1, "dose": 100000, "unit": "mcg/kg/min", "override": False}
                ),
                messages.to_wire(
                    "TITRATE_R",
                    1,
                    {"ch": 1, "dose": 100000, "unit": "mcg/kg/min", "rate": 26250000},
                ),
            ),
        ]
        print(f"round trip through pumpguard.connect() over the emulator PTY, {ROUNDS} rounds")
        print(f"{'command':<22}{'median ms':>10}{'p99 ms':>10}{'bytes':>8}{'115200 baud ms':>16}")
        for name, call, request, response in cases:
            median, p99 = _measure(call)
            print(
                f"{name:<22}{median:>10.3f}{p99:>10.3f}{len(request) + len(response):>8}"
                f"{_line_ms(request, response):>16.3f}"
            )


if __name__ == "__main__":
    main()
