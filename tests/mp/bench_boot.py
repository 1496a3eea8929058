# MicroPython half of bench/boot_bench.py (and its CPython half, run in that process):
# how long a boot takes the firmware, by its steps, on dummy ports (tests/portable
# shellkit: a memory store, no link traffic):
#
#   node tests/mp/run.mjs tests/mp/bench_boot.py [ROUNDS]
#   python -m tests.mp.bench_boot [ROUNDS]
#   micropython -X heapsize=190k -c "...; import tests.mp.bench_boot as b; b.main([ROUNDS])"
#
# Prints, per step: BENCH name median min max, in ms over ROUNDS rounds, after one
# untimed round (the modules imported and their names interned, as at a second boot):
#   library_file  druglib.active(): the bundle's library read through its file (a boot)
#   library_bytes druglib.load() of the same bytes (a LIB_COMMIT, `library check`)
#   boot          firmware.main.build(): the record, the library, the restore, the keys
import sys
import time

from firmware import druglib
from firmware import main as firmware_main
from tests.portable import shellkit

_BOARD = shellkit.board


if sys.implementation.name == "micropython":

    def _ms(f):
        t = time.ticks_us()
        f()
        return time.ticks_diff(time.ticks_us(), t) / 1000

else:

    def _ms(f):
        t = time.perf_counter()
        f()
        return (time.perf_counter() - t) * 1000


def _steps():
    with open(druglib._LIBRARY, "rb") as f:
        text = f.read()
    return (
        # a boot's buffer for each drug's bytes (firmware/main.py _first(): 6,144 B)
        ("library_file", lambda: druglib.active(shellkit.Store(), bytearray(6144))),
        ("library_bytes", lambda: druglib.load(text)),
        ("boot", lambda: firmware_main.build(_BOARD, shellkit.ports(), shellkit.BOOT_ID)),
    )


def main(args):
    rounds = int(args[0]) if args else 5
    for name, step in _steps():
        step()  # untimed
        times = sorted(_ms(step) for _ in range(rounds))
        print("BENCH %s %.1f %.1f %.1f" % (name, times[len(times) // 2], times[0], times[-1]))


if __name__ == "__main__":
    main(sys.argv[1:])
