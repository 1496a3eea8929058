"""Protocol codec benchmark (a script that prints numbers, not a test).

For three frames (smallest, typical command, largest payload) it prints encode and
decode frames per second and bytes allocated per frame, on CPython here and on real
MicroPython (WebAssembly under Node: a PC's speed, not a board's), next to the frames
per second a 115200-baud 8N1 line carries (11520 bytes/s).

    .venv/bin/python bench/protocol_bench.py [SECONDS]

SECONDS: each rate's timing window (default 1; tests/test_bench_smoke.py runs it short).
"""

import pathlib
import subprocess
import sys
import time
import tracemalloc

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from protocol import messages  # noqa: E402
from protocol.decoder import Decoder  # noqa: E402
from tests.mp.benchframes import FRAMES  # noqa: E402

LINE_BYTES_PER_S = 115200 // 10
WINDOW_S = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
_ENTRY = ["--heap", str(4 * 1024 * 1024), "tests/mp/report_protocol_memory.py", "--bench"]
_ENTRY.append(str(int(WINDOW_S * 1000)))  # the window, in ms, on MicroPython too


def encode(name, fields, dec, wire):
    messages.to_wire(name, 1, fields)


def decode(name, fields, dec, wire):
    dec.feed(wire)
    f = dec.take()
    messages.decode(f.msg_id, f.payload)


def cpython():
    dec = Decoder()
    for name, fields in FRAMES:
        wire = messages.to_wire(name, 1, fields)
        for fn in (encode, decode):
            n = 0
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < WINDOW_S:
                fn(name, fields, dec, wire)
                n += 1
            rate = n / (time.perf_counter() - t0)
            tracemalloc.start()
            fn(name, fields, dec, wire)
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            fn(name, fields, dec, wire)
            alloc = tracemalloc.get_traced_memory()[1] - before
            tracemalloc.stop()
            yield fn.__name__, name, len(wire), int(rate), alloc


def micropython():
    out = subprocess.run(
        ["node", "tests/mp/run.mjs", *_ENTRY], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    for line in out.splitlines():
        if line.startswith("BENCH "):
            op, name, size, rate, alloc = line.split()[1:]
            yield op, name, int(size), int(rate), int(alloc)


def main():
    head = ("interpreter", "op", "frame", "bytes", "frames/s", "bytes alloc'd", "115200 bd/s")
    print("{:<11} {:<6} {:<10} {:>5} {:>10} {:>14} {:>12}".format(*head))
    for interp, rows in (("cpython", cpython()), ("micropython", micropython())):
        for op, name, size, rate, alloc in rows:
            line = LINE_BYTES_PER_S / size
            print(f"{interp:<11} {op:<6} {name:<10} {size:>5} {rate:>10} {alloc:>14} {line:>12.0f}")
    print("(CPython: peak bytes traced by tracemalloc; MicroPython: gc.mem_alloc() delta)")


if __name__ == "__main__":
    main()
