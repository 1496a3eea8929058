"""The cost of authentication (a script that prints numbers, not a test).

1. Bytes each frame gains: the counter (4) and the tag (8), measured by encoding the
   same frames with and without a session key.
2. HMAC-SHA256 time per tag, on CPython here and on real MicroPython (WebAssembly under
   Node: a PC's speed, not a board's), for a small request and the largest frame: the
   median of several timed windows. A request costs the device two tags (it checks the
   host's and tags its answer), the host two more.
3. Round trips through pumpguard.connect() over the emulator's PTY (CPython runtime),
   authenticated as every session now is, beside the time its bytes need on a 115200-baud
   UART, and their ratio (the goal: at most 0.15 at the median).

    .venv/bin/python bench/auth_bench.py [ROUNDS]
"""

import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from latency_bench import line_ms, round_trips  # noqa: E402

from protocol import auth, messages  # noqa: E402
from tests.mp.benchframes import FRAMES  # noqa: E402

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 200
WINDOWS = 5
KEY = bytes(range(32))
_MP_ENTRY = ["--heap", str(4 * 1024 * 1024), "tests/mp/bench_auth.py"]


def overhead():
    for name, fields in FRAMES:
        plain = messages.to_wire(name, 1, fields, sid=0x1234)
        tagged = messages.to_wire(name, 1, fields, sid=0x1234, key=KEY, ctr=7)
        yield name, len(plain), len(tagged)


def cpython_tags():
    for name, fields in FRAMES:
        signed = messages.to_wire(
            name, 1, fields, sid=0x1234
        )  # the bytes a tag covers, near enough
        n = 2000
        windows = []
        for _ in range(WINDOWS):
            t = time.perf_counter()
            for _ in range(n):
                auth.tag(KEY, b"H", signed)
            windows.append((time.perf_counter() - t) / n * 1e6)
        yield name, len(signed), statistics.median(windows)


def micropython_tags():
    out = subprocess.run(
        ["node", "tests/mp/run.mjs", *_MP_ENTRY],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for line in out.splitlines():
        if line.startswith("BENCH "):
            name, size, us = line.split()[1:]
            yield name, int(size), float(us)


def main():
    print("bytes per frame, without and with authentication (counter 4 + tag 8)")
    print(f"{'frame':<10}{'plain':>7}{'tagged':>8}{'added':>7}")
    for name, plain, tagged in overhead():
        print(f"{name:<10}{plain:>7}{tagged:>8}{tagged - plain:>7}")
    print(f"\nHMAC-SHA256 tag, median of {WINDOWS} windows")
    print(f"{'interpreter':<12}{'frame':<10}{'bytes':>6}{'us/tag':>9}")
    for interp, rows in (("cpython", cpython_tags()), ("micropython", micropython_tags())):
        for name, size, us in rows:
            print(f"{interp:<12}{name:<10}{size:>6}{us:>9.1f}")
    print(f"\nround trip, authenticated, emulator PTY (cpython runtime), {ROUNDS} rounds")
    print(f"{'command':<22}{'median ms':>10}{'bytes':>7}{'115200 baud ms':>16}{'ratio':>7}")
    for name, median, _, nbytes in round_trips(ROUNDS):
        wire = line_ms(nbytes)
        print(f"{name:<22}{median:>10.3f}{nbytes:>7.0f}{wire:>16.3f}{median / wire:>7.3f}")


if __name__ == "__main__":
    main()
