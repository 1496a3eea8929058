"""The names the firmware interns for good (issue 14, round 3): MicroPython never frees
an interned string (qstr) and grows its pools by doubling; on the 64-bit unix port the
6th pool fills at about 1,260 qstrs and the next one allocates a 7th of ~14 KB at once.
At int e4e84c0 a restoring boot with the harness ended at 1,282 (n_pool=7: +14 KB of
heap for the rest of the firmware's life); names cut since (a module's source named as
its module, private tables and texts as const(), wording's fragments as bytes, argument
names unified, the tests' readers of the log and the core's state in
tests/portable/coreview.py, the board contract in boards/contract.py) leave room."""

import re
import subprocess

from firmware import journal, persist, recordload, recordtext, resume
from firmware.alarms import HIGH, ID_MAX, LOW, MEDIUM, MESSAGE_MAX
from firmware.channel import IDLE, RUNNING, STOPPED, TAPERING
from protocol import reasons
from protocol.text import TEXT_MAX
from tests.heap import run, tree
from tests.test_heap import needs_port

# The 6th pool, with room to spare for the next round's names (1,282 before this one).
# 1,180 until issue 9's latched faults (firmware/sensors.py, fault_active, fault_cleared:
# 1,184 at its merge), 1,200 since: the 6th pool still has some 60 names of room (1,194,
# then 1,180 at heapfree: persist.py's file names and resume.py's figures as const()s).
N_POOL = 6
N_QSTR = 1200


def _phases(tmp_path):
    out = subprocess.run(
        [str(run.MICROPYTHON), "-X", "heapsize=600k", "tests/mp/qstr_boot.py"]
        + [str(tree.ROOT), str(tmp_path)],
        cwd=tree.ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    phases = dict(re.findall(r"phase (\w+)\nqstr pool: (n_pool=\d+, n_qstr=\d+)", out.stdout))
    return {k: tuple(int(n) for n in re.findall(r"\d+", v)) for k, v in phases.items()}


@needs_port
def test_a_restoring_boot_with_the_harness_interns_no_seventh_pool_of_names(tmp_path):
    phases = _phases(tmp_path)
    assert set(phases) == {"start", "imported", "fresh", "restoring"}, phases
    n_pool, n_qstr = phases["restoring"]
    assert n_pool <= N_POOL and n_qstr <= N_QSTR, phases


def test_the_literals_that_stand_for_names_elsewhere_say_the_same():
    # const() tuples and figures that spell another module's values (no name interned)
    assert resume._STATES == (IDLE, RUNNING, TAPERING, STOPPED)
    assert resume._PRIORITIES == (HIGH, MEDIUM, LOW)
    assert (resume._IDLE, resume._RUNNING, resume._TAPERING, resume._STOPPED) == resume._STATES
    assert (resume._HIGH, resume._MEDIUM) == (HIGH, MEDIUM)
    assert (resume._ID_MAX, resume._MESSAGE_MAX) == (ID_MAX, MESSAGE_MAX)
    assert (resume._VERSION, resume._TEXT_MAX) == (recordtext.VERSION, TEXT_MAX)
    assert journal._MAX_LEN == journal._FIXED_SIZE + journal._KIND_MAX + 1 + TEXT_MAX
    assert f"{TEXT_MAX + 1}s" == journal._TEXT_PACK
    assert reasons.number("link_lost") == journal._LINK_LOST
    assert reasons.number("link_back") == journal._LINK_BACK
    assert (recordload._NAME, recordload._USED, recordload._BOOT) == (
        persist._NAME,
        persist._USED,
        persist._BOOT,
    )
