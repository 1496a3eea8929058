"""The dispatch and store fuzz on both interpreters, compared frame by frame.

tests/portable/dispatchfuzz.py feeds the firmware shell (on dummy ports) the same seeded
inputs on CPython (here, in this process) and on MicroPython (tests/mp/fuzz_dispatch.py
through node tests/mp/run.mjs). Issue 10: nothing a message or a record says may kill
the loop, on either interpreter; and both must answer alike, byte for byte. Issue 11:
it drives authenticated sessions too, and nothing unauthenticated may run. On a
difference, the window before the first differing digest is run again on both with
every frame shown, and the first frame that differs is named, decoded. Two modes:
`dispatch` (messages only) and `store` (records edited and sealed again as well).

`make fuzz` runs it long: PUMPGUARD_FUZZ_INPUTS (default here 400 per mode),
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
INPUTS = int(os.environ.get("PUMPGUARD_FUZZ_INPUTS", "400"))
EVERY = max(1, min(1000, INPUTS // 10))
MODES = {"dispatch": 0, "store": 1}


def _micropython(seed, count, every, records, dump=()):
    """The MicroPython run, started (Node): _lines() waits for it and gives its lines."""
    argv = ["node", "tests/mp/run.mjs", "tests/mp/fuzz_dispatch.py"]
    argv += [str(a) for a in (seed, count, every, records, *dump)]
    return subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _lines(node):
    try:
        out, err = node.communicate(timeout=7200)
    finally:
        _reap(node)
    # Exit code 1 is "something escaped": the lines say what, and are judged below.
    if "fuzz done" not in out:
        pytest.fail(f"MicroPython fuzz did not finish: {out[-2000:]}{err}")
    return out.splitlines()


def _reap(node):
    # A run cut short (a timeout, CPython's side failing, Ctrl-C) is not left running.
    if node.poll() is None:
        node.kill()
        node.communicate()


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
    node = _micropython(*args)
    try:
        cpython = _cpython(*args)
    except BaseException:
        _reap(node)
        raise
    return cpython, _lines(node)


def _report(lines):
    return "\n".join(line for line in lines if not line.startswith("fuzz "))


def _escapes(interpreter, lines):
    """What escaped the loop on one interpreter, or None."""
    (done,) = [line for line in lines if line.startswith("fuzz done")]
    if done.startswith(f"fuzz done: {INPUTS} inputs, 0 escapes ") and (
        " 0 boot escapes, 0 boot loops" in done
    ):
        return None
    return f"{interpreter}: something escaped the loop:\n{_report(lines)}"


def _unauthenticated(interpreter, lines):
    # Issue 11: the fuzz drives authenticated sessions, mostly with mutated frames
    # (untagged, a tag bit flipped, a wrong key, a stale counter); only the genuine
    # frames of a session may run, and some must (the fuzz reached them).
    (line,) = [line for line in lines if line.startswith("fuzz auth: ")]
    if not line.endswith(" 0 unauthenticated ran"):
        return f"{interpreter}: {line}\n{_report(lines)}"
    if int(line.split()[2]) <= INPUTS // 100:
        return f"{interpreter}: too few genuine frames ran to judge: {line}"
    return None


def _difference(mode, cpython, micropython):
    """Where the two interpreters first answered differently, frame by frame, or None."""
    ours, theirs = _digests(cpython), _digests(micropython)
    if len(ours) != len(theirs):
        return f"{mode} fuzz: {len(ours)} digests on CPython, {len(theirs)} on MicroPython"
    for k, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        if a != b:
            lo = int(ours[k - 1].split()[1]) if k else 0
            hi = int(a.split()[1])
            frames = [
                [line for line in lines if line.startswith(("in ", "out "))]
                for lines in _both(SEED, hi, hi, MODES[mode], (lo, hi))
            ]
            return (
                f"{mode} fuzz, seed {SEED}: digests differ first at input {hi} "
                f"({a} vs {b});\n" + _first_difference(*frames)
            )
    return None


# One test per mode, each interpreter run once for all three judgements (nothing
# escapes, nothing unauthenticated runs, both answer alike): a module fixture shared by
# a test per judgement is set up again on every xdist worker that draws one of them.
@pytest.mark.parametrize("mode", sorted(MODES))
def test_nothing_escapes_nothing_unauthenticated_runs_and_both_answer_alike(mode):
    cpython, micropython = _both(SEED, INPUTS, EVERY, MODES[mode])
    both = (("CPython", cpython), ("MicroPython", micropython))
    problems = [_escapes(name, lines) for name, lines in both]
    problems += [_unauthenticated(name, lines) for name, lines in both]
    problems.append(_difference(mode, cpython, micropython))
    problems = [p for p in problems if p]
    assert not problems, "\n\n".join(problems)
