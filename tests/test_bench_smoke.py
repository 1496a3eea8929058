# The benchmark scripts are not tests (they print numbers; nothing asserts on time),
# but they must keep running as the code under them changes: run each once, briefly,
# and check it printed its table.
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("script", "args", "shows"),
    [
        ("bench/latency_bench.py", ["5"], ("115200 baud ms", "HEARTBEAT", "STATUS", "TITRATE")),
        ("bench/protocol_bench.py", ["0.05"], ("115200 bd/s", "cpython", "micropython")),
        ("bench/auth_bench.py", ["5"], ("added", "us/tag", "micropython", "ratio")),
        ("bench/library_bench.py", ["1"], ("library push", "cpython", "micropython")),
    ],
)
def test_bench_runs_and_prints_its_table(script, args, shows):
    run = subprocess.run(
        [sys.executable, script, *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    for text in shows:
        assert text in run.stdout
