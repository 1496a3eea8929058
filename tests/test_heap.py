"""The bounded-heap runner (tests/heap/): what it reads out of the unix port's output,
the line it ends with, and that a MemoryError is counted, never lost (a runner that
cannot fail is no check): a forced one, at a heap too small for the firmware."""

import subprocess
import sys

import pytest

from tests.heap import figures, run, tree

# What tests/heap/soak.py prints, cut down: the empty heap's mem_info, two samples,
# a MemoryError the shell's net caught during a STATUS, the per-command lines.
SOAK_OUT = """SOAK begin
mem: total=13934, current=12302, peak=12366
stack: 5136 out of 80000
GC: total: 220928, used: 14208, free: 206720
 No. of 1-blocks: 117, 2-blocks: 15, max blk sz: 57, max free sz: 6458
ALLOC start 13312
ALLOC firmware 199840
ALLOC harness 210000
ALLOC booted 228000
pumpguard: a console line of the firmware's
SAMPLE 0 40000 180000
mem: total=1, current=1, peak=1
GC: total: 220928, used: 180000, free: 40000
 No. of 1-blocks: 1, 2-blocks: 1, max blk sz: 9, max free sz: 300
MEMERR firmware STATUS 4507
Traceback (most recent call last):
  File "firmware/shell.py", line 171, in step
  File "firmware/handlers.py", line 88, in status
MemoryError: memory allocation failed, allocating 1024 bytes
SAMPLE 600 30000 190000
mem: total=1, current=1, peak=1
GC: total: 220928, used: 190000, free: 30000
 No. of 1-blocks: 1, 2-blocks: 1, max blk sz: 9, max free sz: 120
ANSWER START 1507 REFUSED cannot start: channel 2 is running
CMD HEARTBEAT 700 4000 4384 0
CMD STATUS 100 6785 7200 0
CMD START 3 18073 20320 1
CMD idle 3600 11571 0 0
END 10800 1 2
"""


def test_the_soak_s_figures_are_read_from_its_output():
    got = figures.parse_soak(SOAK_OUT)
    assert got.block == 32  # 206720 free / 6458 blocks: this 64-bit build's blocks
    assert got.samples == [(0, 40000, 180000, 9600), (600, 30000, 190000, 3840)]
    assert got.largest_free() == 3840
    assert got.alloc["firmware"] - got.alloc["start"] == 186528
    assert got.commands["START"] == (3, 18073, 20320, 1)
    assert got.worst() == (20320, "START")  # the idle turn is no command
    assert got.finished and got.boots == 2
    [error] = got.errors
    assert (error.kind, error.where, error.at_s) == ("firmware", "STATUS", 4507)
    assert error.line() == (
        "firmware in STATUS at 1 h 15 min: MemoryError: memory allocation failed, "
        'allocating 1024 bytes (File "firmware/handlers.py", line 88, in status)'
    )
    assert got.answers == ["START 1507 REFUSED cannot start: channel 2 is running"]


def test_the_summary_line_is_the_one_a_script_reads():
    got = figures.parse_soak(SOAK_OUT)
    assert figures.summary_line(figures.heap_bytes("190k"), 3, got) == (
        "heap 190k: 1 MemoryError over 3 h, largest free block 3840 bytes, "
        "worst command 20320 bytes (START)"
    )


def test_a_run_stopped_at_import_says_so_and_the_hours_it_ran():
    out = SOAK_OUT.split("ALLOC firmware")[0] + (
        "MEMERR import import 0\nTraceback (most recent call last):\n"
        '  File "firmware/handlers.py", line 65, in <module>\n'
        "MemoryError: memory allocation failed, allocating 368 bytes\nEND import\n"
    )
    got = figures.parse_soak(out, status=3)
    assert [e.kind for e in got.errors] == ["import"]
    line = figures.summary_line(figures.heap_bytes("190k"), 72, got)
    assert line.startswith("heap 190k: 1 MemoryError over 0 h, largest free block unknown")


def test_a_run_that_died_without_a_memory_error_is_never_a_clean_one():
    got = figures.parse_soak(SOAK_OUT.split("MEMERR")[0], status=-11)
    assert not got.finished
    assert (
        figures.summary_line(194560, 72, got) == "heap 190k: died (exit status -11) before its end"
    )
    # died after a MemoryError: counted, over the hours it ran (its last sample)
    got = figures.parse_soak(SOAK_OUT.split("ANSWER")[0], status=1)
    assert figures.summary_line(194560, 72, got).startswith("heap 190k: 1 MemoryError over 0 h")


def test_the_portable_runner_s_memory_errors_are_told_per_test():
    out = (
        "FAILED tests.portable.test_units.test_a\nTraceback (most recent call last):\n"
        '  File "tests/portable/test_units.py", line 3, in test_a\n'
        "MemoryError: memory allocation failed, allocating 64 bytes\n"
        "FAILED tests.portable.test_units.test_b\nAssertionError: \n"
        "micropython: 5 passed, 2 failed\n"
    )
    res = figures.parse_portable("tests.portable.test_units", 1, out)
    assert (res.passed, res.failed, res.finished) == (5, 2, True)
    assert res.memory_errors == ["tests.portable.test_units.test_a"]
    assert "MemoryError in tests.portable.test_units.test_a" in figures.portable_line(res)
    died = figures.parse_portable("m", 1, "Traceback (most recent call last):\nMemoryError: x\n")
    assert not died.finished and died.memory_errors == ["import"]
    assert figures.portable_line(died) == "  m: did not finish (import)"


def test_heap_sizes_are_micropython_s():
    assert figures.heap_bytes("190k") == 194560
    assert figures.heap_bytes("2m") == 2 * 1024 * 1024
    assert figures.heap_bytes("400000") == 400000
    assert figures.heap_name(194560) == "190k"
    with pytest.raises(ValueError):
        figures.heap_bytes("190 KB")


needs_port = pytest.mark.skipif(
    not run.MICROPYTHON.exists() or not (tree.BUNDLE / "manifest.json").exists(),
    reason="needs .venv/bin/micropython and the bundle (make mpy)",
)


@needs_port
def test_a_memory_error_is_counted_and_fails_the_check(capsys):
    # 64k: the firmware cannot even import; the runner says where and fails, never
    # crashes nor reports a clean run.
    status = run.main(["--heap", "64k", "--hours", "1", "--no-portable", "--no-credit", "--check"])
    out = capsys.readouterr().out
    assert status == 1
    last = out.strip().splitlines()[-1]
    assert last.startswith("heap 64k: 1 MemoryError over 0 h"), out
    assert "MemoryError import in import" in out


@needs_port
def test_a_portable_module_s_memory_error_is_counted():
    where = tree.build()
    [res] = run.run_portable(figures.heap_bytes("64k"), where, ["tests.portable.test_units"], 1)
    assert res.memory_errors and not res.finished
    [ok] = run.run_portable(figures.heap_bytes("2m"), where, ["tests.portable.test_units"], 1)
    assert ok.finished and ok.passed > 0 and not ok.memory_errors


@needs_port
def test_a_short_run_on_a_heap_the_firmware_fits_is_clean():
    # A large heap: no MemoryError, the figures all there (the run's own sanity).
    status = subprocess.run(
        [sys.executable, "-m", "tests.heap.run", "--heap", "2m", "--hours", "1", "--no-portable"],
        cwd=tree.ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    last = status.stdout.strip().splitlines()[-1]
    assert status.returncode == 0
    assert last.startswith("heap 2048k: 0 MemoryError over 1 h, largest free block "), last
    assert "worst command 0 bytes" not in last  # the commands were measured


@needs_port
def test_the_tree_holds_the_harness_compiled_and_no_host_module():
    where = tree.build()
    assert (where / "tests" / "heap" / "soak.mpy").exists()
    assert (where / "tests" / "mp" / "runner.mpy").exists()
    assert not list(where.rglob("*.py"))  # nothing the unix port would compile itself
    assert not (where / "tests" / "heap" / "run.mpy").exists()


def test_the_two_processes_around_the_power_cut_make_one_run():
    a = figures.parse_soak(SOAK_OUT)
    b = figures.parse_soak(SOAK_OUT.replace("CMD START 3 18073", "CMD START 2 30000"))
    both = figures.merge(a, b)
    assert both.commands["START"] == (5, 30000, 20320, 2)
    assert len(both.errors) == 2 and both.boots == 4 and both.block == 32
    assert both.largest_free() == 3840 and len(both.samples) == 4


def test_builds_of_the_tree_at_once_leave_every_builder_a_whole_tree(tmp_path):
    # make test builds it from several processes at once (heap-short beside pytest, the
    # heap tests in pytest's workers): in a fresh clone each removed the tree another was
    # filling (seen in CI: "no module named 'boards'", FileExistsError)
    where = tmp_path / "tree"
    code = (
        "import sys; from pathlib import Path; from tests.heap import tree; "
        "t = tree.build(tree=Path(sys.argv[1])); "
        "assert (t / 'boards' / '__init__.mpy').exists() and (t / '.built').exists()"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(where)],
            cwd=tree.ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(4)
    ]
    outs = [(p.wait(timeout=300), p.stdout.read()) for p in procs]
    assert all(rc == 0 for rc, _ in outs), outs
    assert sorted(p.name for p in where.iterdir()) == [
        ".built",
        "boards",
        "firmware",
        "protocol",
        "tests",
    ]
