"""The soak of issue 10, short (`make soak` runs it long): each part on a small sample.

Every figure must be 0: a command the noisy link makes run twice or differently from
what the host believes, an acknowledged command a power cut loses, a stop a store
failure or a rolled-back record undoes, a boot loop. Counts, not timings: nothing here
asserts how long anything took (soak/device.py waits for a booting device with a
generous bound).
"""

import re

import pytest

from soak import __main__ as soak_main
from soak import noisy
from soak.noisy import NoisySoak
from soak.power import PowerSoak
from soak.relay import Faults
from soak.store import StoreSoak
from tests.systemkit import ANSWER_TIMEOUT_S

# The emulator itself (its own processes): nothing here runs on a board.
pytestmark = [pytest.mark.system, pytest.mark.needs_emulator]


def _figures(part):
    return "\n".join(part.figures())


def test_noisy_link_commands_run_once_and_as_the_host_believes():
    a = NoisySoak("cpython", seed=3, checkpoint=5, log_every=5).run(20)
    assert a.accepted_titrations > 0, _figures(a)
    assert a.relay is not None and a.relay.counts["bit flips"] > 0, _figures(a)
    assert (a.applied_twice, a.divergences, a.unexpected) == (0, 0, 0), _figures(a)


def test_the_relay_delivers_everything_when_it_injects_nothing(monkeypatch):
    # Nothing is held up on a quiet relay: the tests' generous answer timeout instead of
    # the noisy run's 0.3 s (sized to its delays), so that a loaded machine's slow
    # answer is never taken for a frame the relay lost.
    monkeypatch.setattr(noisy, "ANSWER_TIMEOUT_S", ANSWER_TIMEOUT_S)
    quiet = Faults(ber=0, drop=0, delay=0, dup=0, split=0)
    a = NoisySoak("cpython", seed=4, faults=quiet, checkpoint=5, log_every=5).run(15)
    assert a.relay is not None
    assert set(a.relay.counts) == {"frames to device", "frames to host"}, _figures(a)
    assert (a.applied_twice, a.divergences, dict(a.link_errors)) == (0, 0, {}), _figures(a)


def test_power_cuts_lose_no_acknowledged_command(pump_target):  # both runtimes (pump_target)
    b = PowerSoak(pump_target, seed=5).run(4)
    assert b.cuts == 4
    assert (b.lost, b.boot_loops, b.unexpected) == (0, 0, 0), _figures(b)
    assert not b.problems, _figures(b)


def test_a_failed_write_or_a_rolled_back_record_never_undoes_a_stop():
    c = StoreSoak("cpython", seed=6).run(1, fields=0, scenarios=("write once", "rollback"))
    assert (c.total_undone, c.total_boot_loops, c.unexpected) == (0, 0, 0), _figures(c)
    assert not c.problems, _figures(c)


def test_the_soak_ends_with_one_line_a_script_can_read():
    lines = []
    soak_main.main(["--parts", "power", "--runtime", "cpython", "--cuts", "1"], lines.append)
    assert re.fullmatch(
        r"soak: \d+ commands, \d+ applied twice, \d+ silent divergences; "
        r"1 power cuts, \d+ acknowledged lost, \d+ boot loops",
        lines[-1],
    )
