# MicroPython half of bench/auth_bench.py: HMAC-SHA256 tag time per frame on the real
# interpreter, the median of several windows (time.ticks_us), printed as BENCH lines.
# Each window is a PHASES step: this WebAssembly build collects garbage only between
# calls from JavaScript (tests/mp/run.mjs), so a window never runs out of heap.
import time

from protocol import auth, messages
from tests.mp.benchframes import FRAMES

KEY = bytes(range(32))
WINDOWS = 5
N = 1000  # tags per window: ticks_us counts whole ms on this build, so 1 us of resolution


def _phases():
    for name, fields in FRAMES:
        signed = messages.to_wire(name, 1, fields, sid=0x1234)
        windows = []
        for _ in range(N):  # a window untimed first: the code and heap warmed up
            auth.tag(KEY, b"H", signed)
        yield
        for _ in range(WINDOWS):
            t = time.ticks_us()
            for _ in range(N):
                auth.tag(KEY, b"H", signed)
            windows.append(time.ticks_diff(time.ticks_us(), t) / N)
            yield
        windows.sort()
        print("BENCH %s %d %.1f" % (name, len(signed), windows[WINDOWS // 2]))


PHASES = _phases()
