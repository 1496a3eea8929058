"""How long a drug library push takes (a script that prints numbers, not a test).

A whole library (the shipped one, resealed under another version each round so every
push really switches) pushed with ``Pump.push_library`` over the emulator's PTY as a
service session, on both runtimes: the median and spread of ROUNDS pushes, the frames
and bytes that crossed the link, and the time those bytes need on a 115200-baud UART.
The board's part of a push is its check of the library at LIB_COMMIT (the same parse a
boot does); the rest is one authenticated round trip per chunk (catalog.LIB_CHUNK).

    .venv/bin/python bench/library_bench.py [ROUNDS]
"""

import pathlib
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import pumpguard  # noqa: E402
from latency_bench import CountingPort, library_versions, line_ms  # noqa: E402

from protocol import catalog  # noqa: E402

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
_LIBRARY = ROOT / "firmware" / "druglib.json"


def pushes(runtime, rounds):
    """(median s, min s, max s, frames sent, bytes on the wire) of a push on runtime."""
    with (
        tempfile.TemporaryDirectory() as folder,
        pumpguard.Emulator(runtime=runtime) as emu,
        pumpguard.connect(emu.port, key=emu.key, role="service", timeout=10) as pump,
    ):
        # The bench reaches into the link once, to count bytes; the API has no reason to.
        counter = pump._link._port = CountingPort(pump._link._port)
        samples = []
        for path in library_versions(folder, rounds):
            counter.bytes = 0
            t = time.perf_counter()
            pump.push_library(path)
            samples.append(time.perf_counter() - t)
        size = path.stat().st_size
        frames = 2 + -(-size // catalog.LIB_CHUNK)  # LIB_BEGIN, the chunks, LIB_COMMIT
        return statistics.median(samples), min(samples), max(samples), frames, counter.bytes


def main():
    print(f"library push of {_LIBRARY.name} ({ROUNDS} pushes per runtime, each switching):")
    print(
        f"{'runtime':<12} {'median s':>9} {'min s':>7} {'max s':>7} {'frames':>7} "
        f"{'wire bytes':>11} {'115200 baud s':>14}"
    )
    for runtime in ("cpython", "micropython"):
        median, low, high, frames, nbytes = pushes(runtime, ROUNDS)
        print(
            f"{runtime:<12} {median:9.3f} {low:7.3f} {high:7.3f} {frames:7d} {nbytes:11d} "
            f"{line_ms(nbytes) / 1000:14.3f}"
        )


if __name__ == "__main__":
    main()
