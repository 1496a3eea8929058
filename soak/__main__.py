"""``python -m soak``: the figures of issue 10, on both emulator runtimes.

    python -m soak                  # the long soak (`make soak`): targets of issue 10
    python -m soak --short          # a minute's sample of each part
    python -m soak --parts noisy --runtime micropython --commands 2000
    python -m soak --jobs 8         # the work split over 8 processes (seeds 1..8)

Parts: ``noisy`` (soak/noisy.py: commands through a fault-injecting relay), ``power``
(soak/power.py: power cuts at random points), ``store`` (soak/store.py: store faults
and edited records). Each prints its figures and its wall time; the run ends with one
line a script can read (one line, here folded)::

    soak: N commands, D applied twice, S silent divergences;
          P power cuts, L acknowledged lost, B boot loops

N counts the commands of the noisy and power parts; L counts acknowledged commands
a boot did not reflect and stops a store fault undid; B counts boot loops of the power
and store parts. The exit code is 1 when any figure (those of the last line, or an
unexpected exception, a delivery over a limit, a delivering channel without a resume
alarm) is not 0.
"""

import argparse
import concurrent.futures
import functools
import sys
import time

from .noisy import NoisySoak
from .power import PowerSoak
from .relay import Faults
from .store import SCENARIOS, StoreSoak

RUNTIMES = ("cpython", "micropython")
PARTS = ("noisy", "power", "store")
# Long soak: >= 10,000 noisy commands per runtime, >= 1,000 cuts over both runtimes,
# each store scenario twice and every field of the record edited, per runtime.
LONG = {"commands": 10_000, "cuts": 500, "repeats": 2, "fields": None}
SHORT = {"commands": 60, "cuts": 6, "repeats": 1, "fields": 2}


def main(argv=None, out=print):
    about = (__doc__ or "").split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m soak", description=about)
    parser.add_argument("--short", action="store_true", help="a short sample of each part")
    parser.add_argument("--runtime", action="append", choices=RUNTIMES)
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated parts")
    parser.add_argument("--commands", type=int, help="noisy commands per runtime")
    parser.add_argument("--cuts", type=int, help="power cuts per runtime")
    parser.add_argument("--repeats", type=int, help="runs of each store scenario")
    parser.add_argument("--fields", type=int, help="record fields edited (default: all)")
    parser.add_argument("--ber", type=float, default=Faults.ber, help="bit error rate")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--jobs", type=int, default=1, help="processes to share the work (each its own seed)"
    )
    args = parser.parse_args(argv)
    counts = dict(SHORT if args.short else LONG)
    for key in counts:
        if getattr(args, key) is not None:
            counts[key] = getattr(args, key)
    parts = [p for p in args.parts.split(",") if p]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown parts {unknown}: choose from {', '.join(PARTS)}")
    if args.jobs < 1:
        parser.error(f"--jobs {args.jobs}: give at least 1 process")
    runtimes = args.runtime or RUNTIMES
    scenarios = SCENARIOS[:-1]
    if args.short:  # the lasting failure waits out the whole boot bound: long soak only
        scenarios = tuple(s for s in scenarios if s != "lasting")

    tasks = []  # (runtime, part, seed, count): the work, split over --jobs processes
    for runtime in runtimes:
        for part, key in (("noisy", "commands"), ("power", "cuts"), ("store", "repeats")):
            if part in parts:
                for k, n in enumerate(_split(counts[key], args.jobs)):
                    tasks.append((runtime, part, args.seed + k, n))
    total: dict[str, int] = dict.fromkeys(("N", "D", "S", "P", "L", "B", "other"), 0)
    job = functools.partial(_task, counts=counts, ber=args.ber, scenarios=scenarios)
    with concurrent.futures.ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for lines, figures in pool.map(job, tasks):
            _show(out, lines)
            for key, value in figures.items():
                total[key] += value
    out(
        "soak: {N} commands, {D} applied twice, {S} silent divergences; "
        "{P} power cuts, {L} acknowledged lost, {B} boot loops".format(**total)
    )
    bad = total["D"] + total["S"] + total["L"] + total["B"] + total["other"]
    return 1 if bad else 0


def _split(count, jobs):
    """count as up to `jobs` nearly equal shares (none empty)."""
    shares = [count // jobs + (1 if k < count % jobs else 0) for k in range(jobs)]
    return [n for n in shares if n] or [count]


def _task(task, counts, ber, scenarios):
    # One process's share of one part on one runtime (an emulator of its own): the
    # lines it prints and the figures it adds to the summary line.
    runtime, part, seed, n = task
    if part == "noisy":
        a = NoisySoak(runtime, seed, Faults(ber=ber)).run(n)
        return a.figures(), {
            "N": a.commands,
            "D": a.applied_twice,
            "S": a.divergences,
            "other": a.unexpected,
        }
    if part == "power":
        b = PowerSoak(runtime, seed).run(n)
        return b.figures(), {
            "N": b.commands,
            "P": b.cuts,
            "L": b.lost,
            "B": b.boot_loops,
            "other": b.unexpected + sum(b.problems.values()),
        }
    c = StoreSoak(runtime, seed).run(n, counts["fields"], scenarios)
    return c.figures(), {
        "L": c.total_undone,
        "B": c.total_boot_loops,
        "other": c.unexpected + sum(c.problems.values()),
    }


def _show(out, lines):
    out(time.strftime("%H:%M:%S ") + lines[0])
    for line in lines[1:]:
        out(line)


if __name__ == "__main__":
    sys.exit(main())
