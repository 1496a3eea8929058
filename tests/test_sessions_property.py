"""Exactly once per session, as a property (SPEC §3): any interleaving hypothesis finds
of new requests, HELLOs (reconnects and restarts), and copies dropped, corrupted,
split, joined, duplicated, delayed and reordered, through the real shell: no request
runs twice, and every answer a host takes as its own is of a request that ran once.
The same play() runs on MicroPython with fixed interleavings
(tests/portable/test_firmware_sessions.py)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware import sessions
from tests.portable.test_firmware_sessions import play

OPS = st.lists(st.integers(0, 1 << 20), max_size=120)


@settings(max_examples=150)
@given(ops=OPS, hosts=st.integers(1, 5))
def test_no_interleaving_runs_a_request_twice(ops, hosts):
    play(ops, hosts)


def test_control_without_the_stale_check_a_late_copy_runs_again(monkeypatch):
    # The property has teeth: with every seq taken as newer and no host counter kept
    # (the authenticated link's own replay check, firmware/gate.py), a delayed copy of
    # a request that is no longer the session's last runs a second time.
    monkeypatch.setattr(sessions.Sessions, "newer", lambda self, i, seq: True)
    ran = sessions.Sessions.ran
    monkeypatch.setattr(sessions.Sessions, "ran", lambda self, i, seq, ctr=0: ran(self, i, seq))
    ops = [0, 0, 2]  # host 0 sends two requests, then a copy of the first arrives
    try:
        play(ops, 1)
    except AssertionError:
        return
    raise AssertionError("a late copy did not run again without the stale check")
