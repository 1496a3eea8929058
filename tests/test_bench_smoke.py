# The benchmark scripts are not tests (they print numbers; nothing asserts on time),
# but they must keep running as the code under them changes: run each once with tiny
# parameters and check it printed its table, labelled, for every runtime and every row
# it claims (the format, never the figures).
import pathlib
import re
import subprocess
import sys

import pytest

from protocol import catalog

ROOT = pathlib.Path(__file__).resolve().parent.parent
REQUESTS = [name for msg_id, name, _ in catalog.MESSAGES if catalog.is_request(msg_id)]
NUM = r"\d+(\.\d+)?"


def _run(script, *args):
    run = subprocess.run(
        [sys.executable, script, *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    return run.stdout


def _rows(out, first):
    return [line.split() for line in out.splitlines() if line.split()[:1] == [first]]


def test_latency_bench_times_every_request_on_both_runtimes():
    out = _run("bench/latency_bench.py", "2", "1")
    assert "median ms" in out and "p99 ms" in out and "115200 baud ms" in out
    assert "not measured" not in out
    for runtime in ("cpython", "micropython"):
        rows = {row[1]: row for row in _rows(out, runtime)}
        assert sorted(rows) == sorted(REQUESTS), runtime
        for row in rows.values():
            assert len(row) == 8 and all(re.fullmatch(NUM, cell) for cell in row[2:]), row


def test_protocol_bench_prints_median_and_spread_with_gc_paid():
    out = _run("bench/protocol_bench.py", "0.02", "2")
    assert "median and min-max of 2 windows" in out
    assert "unix port, -X heapsize=190k, GC inline" in out
    for runtime in ("cpython", "micropython"):
        rows = _rows(out, runtime)
        assert len(rows) == 6, runtime  # 3 frames x encode, decode
        for row in rows:
            assert len(row) == 10 and re.fullmatch(r"\d+-\d+", row[5]), row  # min-max
            assert row[9] == "-" if runtime == "cpython" else row[9].isdigit(), row


def test_memory_bench_prints_phases_per_request_and_the_idle_save():
    # 1 MiB of WebAssembly heap, not the bench's 8: the same figures (at e8b2b18), but
    # each gc.collect() before a command sweeps an eighth of the heap (14 s of CPU -> 3.5)
    out = _run("bench/memory_bench.py", "1000", str(1 << 20))
    assert "decode dispatch    rules      log  persist   encode" in out
    sections = out.split("-- MicroPython ")[1:]
    assert [s.split()[0] for s in sections] == ["unix", "WebAssembly"]
    for section in sections:
        assert re.search(r"check: HEARTBEAT x4 .* wrapped .* \(they agree\)", section)
        assert "do not add up" not in section and "warning" not in section
        assert re.search(r"idle loop: 61 turns of 1000 ms \(61\.0 s of uptime\), [1-9]", section)
        labels = [line.split()[0] for line in section.splitlines() if re.search(r"_R\s", line)]
        for name in REQUESTS:
            assert name in {label.split("(")[0] for label in labels}, name


def test_the_idle_figure_on_the_unix_port_is_of_every_1_ms_turn():
    # The bench's own pace (1 ms per turn, 61,000 turns): the figure must be a count of
    # bytes, never a delta across collections (-11,079,392 B printed so, the wrappers'
    # own bytes in every turn having filled the heap)
    code = (
        "import sys; sys.path[:] = ['build/bundle/emulator', '.']; "
        "import tests.mp.bench_phases as b; b.main(['1'])"
    )
    run = subprocess.run(
        [str(ROOT / ".venv/bin/micropython"), "-X", "heapsize=2m", "-c", code],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    (idle,) = _rows(run.stdout, "IDLE")
    turns, ms, saves, save_b, rest_b, total = map(int, idle[1:])
    assert (turns, ms, saves) == (61000, 1, 1), idle
    assert min(save_b, rest_b) >= 0 and save_b + rest_b == total, idle


@pytest.mark.parametrize(
    ("script", "args", "shows"),
    [
        ("bench/auth_bench.py", ["20"], ("added", "us/tag", "min-max", "micropython")),
        ("bench/library_bench.py", ["1"], ("library push", "cpython", "micropython")),
        ("bench/boot_bench.py", ["1"], ("library_file", "webassembly", "unix 400k")),
    ],
)
def test_bench_runs_and_prints_its_table(script, args, shows):
    out = _run(script, *args)
    for text in shows:
        assert text in out
