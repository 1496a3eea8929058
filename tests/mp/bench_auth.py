# MicroPython half of bench/auth_bench.py: HMAC-SHA256 tag time per frame, on the
# 64-bit unix port at -X heapsize=190k where garbage is collected inline, as on a board
# (the firmware booted into the heap first when it fits: tests/mp/bench_codec.py):
#
#   micropython -X heapsize=190k -c "import sys; sys.path[:] = [BUNDLE, ROOT];
#       import tests.mp.bench_auth as b; b.main([N, WINDOWS])"
#
# Prints LIVE (as bench_codec), then per frame: BENCH name bytes median min max, in us
# per tag over WINDOWS windows of N tags each.
import time

from protocol import auth, messages
from tests.mp.bench_codec import _setup
from tests.mp.benchframes import FRAMES

KEY = bytes(range(32))


def main(args):
    n = int(args[0]) if args else 1000
    windows = int(args[1]) if len(args) > 1 else 5
    _setup()
    for name, fields in FRAMES:
        signed = messages.to_wire(name, 1, fields, sid=0x1234)
        for _ in range(n):  # a window untimed first: the code and heap warmed up
            auth.tag(KEY, b"H", signed)
        times = []
        for _ in range(windows):
            t = time.ticks_us()
            for _ in range(n):
                auth.tag(KEY, b"H", signed)
            times.append(time.ticks_diff(time.ticks_us(), t) / n)
        times.sort()
        mid = times[len(times) // 2]
        print("BENCH %s %d %.1f %.1f %.1f" % (name, len(signed), mid, times[0], times[-1]))
