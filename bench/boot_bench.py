"""How long a boot takes the firmware (a script that prints numbers, not a test).

The firmware's own part of a boot, by its steps, on dummy ports (tests/mp/bench_boot.py:
a memory store, nothing on the link): the bundle's drug library read through its file
as a boot reads it, the same bytes loaded as a LIB_COMMIT loads them, and a whole
firmware.main.build() (the record, the library, the restore, the keys). On CPython
here, on MicroPython as WebAssembly under Node (the emulator's runtime), and on the
64-bit unix port at -X heapsize=HEAP (garbage collected inline, as on a board: the
test harness's source is compiled into that heap too, so it is larger than a board's).
A PC's speed, not a board's: the figures compare steps and runtimes, and the steps are
not additive (each round's garbage is collected when the heap asks: WebAssembly's only
between calls). Median and min-max of ROUNDS rounds, after one untimed (the modules
imported, as at a second boot).

    .venv/bin/python bench/boot_bench.py [ROUNDS]
"""

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
ROUNDS = sys.argv[1] if len(sys.argv) > 1 else "9"
HEAP = "400k"
_RUNTIMES = (
    ("cpython", [sys.executable, "-m", "tests.mp.bench_boot", ROUNDS]),
    ("webassembly", ["node", "tests/mp/run.mjs", "tests/mp/bench_boot.py", ROUNDS]),
    (
        f"unix {HEAP}",
        [
            str(ROOT / ".venv/bin/micropython"),
            "-X",
            f"heapsize={HEAP}",
            "-c",
            "import sys; sys.path[:] = ['build/bundle/emulator', '.']; "
            f"import tests.mp.bench_boot as b; b.main(['{ROUNDS}'])",
        ],
    ),
)


def rows(argv):
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
    found = [line.split()[1:] for line in done.stdout.splitlines() if line.startswith("BENCH ")]
    if done.returncode or not found:
        raise SystemExit(f"{argv[0]} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return found


def main():
    print(f"the firmware's boot, by step, in ms ({ROUNDS} rounds; median, min, max):")
    print(f"{'runtime':<12} {'step':<14} {'median':>8} {'min':>8} {'max':>8}")
    for runtime, argv in _RUNTIMES:
        for name, median, low, high in rows(argv):
            print(f"{runtime:<12} {name:<14} {median:>8} {low:>8} {high:>8}")


if __name__ == "__main__":
    main()
