"""The dispatch and store fuzz on both interpreters, compared frame by frame.

tests/portable/dispatchfuzz.py feeds the firmware shell (on dummy ports) the same seeded
inputs on CPython (here, in this process) and on MicroPython (tests/mp/fuzz_dispatch.py
through node tests/mp/run.mjs). Issue 10: nothing a message or a record says may kill
the loop, on either interpreter; and both must answer alike, byte for byte. Issue 11:
it drives authenticated sessions too, and nothing unauthenticated may run. On a
difference, the window before the first differing digest is run again on both with
every frame shown, and the first frame that differs is named, decoded. Two modes:
`dispatch` (messages only) and `store` (records edited and sealed again as well).

`make fuzz` runs it long: PUMPGUARD_FUZZ_INPUTS (default here 2000 per mode),
PUMPGUARD_FUZZ_SEED (default 10).
"""

import os
import subprocess
from pathlib import Path

import pytest

from protocol import catalog, messages
from protocol.decoder import Decoder
from tests.portable import dispatchfuzz

ROOT = Path(__file__).resolve().parents[1]
SEED = int(os.environ.get("PUMPGUARD_FUZZ_SEED", "10"))
INPUTS = int(os.environ.get("PUMPGUARD_FUZZ_INPUTS", "2000"))
EVERY = max(1, min(1000, INPUTS // 10))
MODES = {"dispatch": 0, "store": 1}


def _micropython(seed, count, every, records, dump=()):
    """The MicroPython run, started: ``.lines()`` waits for it and gives its lines."""
    argv = ["node", "tests/mp/run.mjs", "tests/mp/fuzz_dispatch.py"]
    argv += [str(a) for a in (seed, count, every, records, *dump)]
    return _Node(argv)


class _Node:
    def __init__(self, argv):
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def lines(self):
        try:
            out, err = self.proc.communicate(timeout=7200)
        finally:
            if self.proc.poll() is None:  # the run failed before it: never left behind
                self.proc.kill()
                self.proc.communicate()
        # Exit code 1 is "something escaped": the lines say what, and are judged below.
        if "fuzz done" not in out:
            pytest.fail(f"MicroPython fuzz did not finish: {out[-2000:]}{err}")
        return out.splitlines()


def _cpython(seed, count, every, records, dump=None):
    lines = []
    dispatchfuzz.run(seed, count, every, lines.append, dump, records == 1)
    return lines


def _digests(lines):
    return [line for line in lines if line.startswith("fuzz ") and line.split()[1].isdigit()]


def _shown(line):
    # "out I K HEX" or "in I HEX": the frame decoded (name, seq, fields) if it decodes.
    if " escape " in line or line.endswith(" "):
        return line
    try:
        wire = bytes.fromhex(line.split()[-1])
    except ValueError:
        return line
    for f in Decoder().decode(b"\x00" + wire.strip(b"\x00") + b"\x00"):
        try:
            fields = messages.decode(f.msg_id, f.payload)
        except ValueError as exc:
            fields = f"undecodable: {exc}"
        return f"{line[: line.rfind(' ')]} {catalog.NAME.get(f.msg_id, f.msg_id)} {fields}"
    return line + " (not a frame)"


def _first_difference(ours, theirs):
    """The first input the two interpreters did not answer alike, as text."""
    for a, b in zip(ours, theirs, strict=False):
        if a != b:
            i = a.split()[1]
            sent = [_shown(line) for line in ours if line.startswith(f"in {i} ")]
            return f"input {sent}\nCPython:     {_shown(a)}\nMicroPython: {_shown(b)}"
    if len(ours) != len(theirs):
        extra = (ours[len(theirs) :] or theirs[len(ours) :])[:3]
        return f"one interpreter sent more frames: {extra}"
    return "the frames agree: only the name of an escaped exception differs"


def _both(*args):
    """Both interpreters' lines: MicroPython's Node process runs beside this one's."""
    micropython = _micropython(*args)
    try:
        cpython = _cpython(*args)
    except BaseException:
        micropython.proc.kill()
        raise
    return cpython, micropython.lines()


# One run of each mode for all its tests: an xdist group keeps a mode's tests on one
# worker (make test runs pytest with --dist loadgroup), where a module fixture would
# otherwise be set up again on every worker that draws one of them.
@pytest.fixture(
    scope="module",
    params=[
        pytest.param(m, marks=pytest.mark.xdist_group(f"soak-fuzz-{m}")) for m in sorted(MODES)
    ],
)
def runs(request):
    records = MODES[request.param]
    return request.param, *_both(SEED, INPUTS, EVERY, records)


def _report(lines):
    return "\n".join(line for line in lines if not line.startswith("fuzz "))


@pytest.mark.parametrize("interpreter", ["cpython", "micropython"])
def test_nothing_a_message_or_a_record_says_escapes_the_loop(runs, interpreter):
    _mode, cpython, micropython = runs
    lines = micropython if interpreter == "micropython" else cpython
    (done,) = [line for line in lines if line.startswith("fuzz done")]
    assert done.startswith(f"fuzz done: {INPUTS} inputs, 0 escapes "), _report(lines)
    assert " 0 boot escapes, 0 boot loops" in done, _report(lines)


@pytest.mark.parametrize("interpreter", ["cpython", "micropython"])
def test_nothing_unauthenticated_runs_and_authenticated_sessions_do(runs, interpreter):
    # Issue 11: the fuzz drives authenticated sessions, mostly with mutated frames
    # (untagged, a tag bit flipped, a wrong key, a stale counter); only the genuine
    # frames of a session may run, and some must (the fuzz reached them).
    _mode, cpython, micropython = runs
    lines = micropython if interpreter == "micropython" else cpython
    (line,) = [line for line in lines if line.startswith("fuzz auth: ")]
    genuine = int(line.split()[2])
    assert line.endswith(" 0 unauthenticated ran"), _report(lines)
    assert genuine > INPUTS // 100, line


def test_both_interpreters_answer_every_input_alike(runs):
    mode, *both = runs
    ours, theirs = (_digests(lines) for lines in both)
    assert len(ours) == len(theirs)
    for k, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        if a != b:
            lo = int(ours[k - 1].split()[1]) if k else 0
            hi = int(a.split()[1])
            records = MODES[mode]
            frames = [
                [line for line in lines if line.startswith(("in ", "out "))]
                for lines in _both(SEED, hi, hi, records, (lo, hi))
            ]
            pytest.fail(
                f"{mode} fuzz, seed {SEED}: digests differ first at input {hi} "
                f"({a} vs {b});\n" + _first_difference(*frames)
            )
