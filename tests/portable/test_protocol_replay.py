# Exactly once: the device's replay cache on both interpreters.
from protocol import messages
from protocol.decoder import Decoder
from protocol.replay import ReplayCache


def _request(sid, seq, ch):
    return Decoder().decode(messages.to_wire("STOP", seq, {"ch": ch}, sid=sid))[0]


class _Device:
    """The shell's serve loop reduced to the cache: counts executions."""

    def __init__(self, size=4):
        self.cache = ReplayCache(size)
        self.runs = 0

    def serve(self, req):
        wire = self.cache.lookup(req.sid, req.seq, req.crc)
        if wire is None:
            self.runs += 1
            wire = messages.to_wire(
                "STOP_R", req.seq, {"ch": self.runs, "unit": "", "total": 0, "plan": []}
            )
            self.cache.store(req.sid, req.seq, req.crc, wire)
        return bytes(wire)


def test_a_retry_gets_the_cached_answer_and_does_not_run_again():
    dev = _Device()
    first = dev.serve(_request(7, 1, 1))
    assert dev.serve(_request(7, 1, 1)) == first
    assert dev.serve(_request(7, 1, 1)) == first
    assert dev.runs == 1


def test_the_key_is_sid_seq_and_crc():
    dev = _Device()
    dev.serve(_request(7, 1, 1))
    dev.serve(_request(7, 1, 2))  # same session and seq, other bytes: not a retry
    dev.serve(_request(8, 1, 1))  # another session's seq 1
    assert dev.runs == 3
    assert dev.cache.lookup(7, 1, _request(7, 1, 1).crc) is None  # replaced by seq 1 ch 2


def test_one_answer_per_session_however_busy_the_others_are():
    dev = _Device(size=4)
    mine = dev.serve(_request(1, 5, 1))
    for seq in range(1, 50):
        for sid in (2, 3, 4):
            dev.serve(_request(sid, seq, 1))
    assert dev.serve(_request(1, 5, 1)) == mine
    assert dev.runs == 1 + 49 * 3


def test_a_session_keeps_only_its_last_answer():
    dev = _Device()
    dev.serve(_request(1, 1, 1))
    dev.serve(_request(1, 2, 1))
    assert dev.cache.lookup(1, 1, _request(1, 1, 1).crc) is None
    assert dev.cache.lookup(1, 2, _request(1, 2, 1).crc) is not None


def test_forget_drops_a_closed_session_s_answer():
    dev = _Device()
    dev.serve(_request(1, 1, 1))
    dev.cache.forget(1)
    assert dev.cache.lookup(1, 1, _request(1, 1, 1).crc) is None


def test_no_session_has_sid_0():
    cache = ReplayCache(1)
    for bad in (0, 0x10000):
        try:
            cache.store(bad, 1, 0, b"x")
        except ValueError:
            continue
        raise AssertionError("stored an answer of sid %d" % bad)
    assert cache.lookup(0, 0, 0) is None


def test_store_refuses_more_than_a_frame():
    cache = ReplayCache(1)
    try:
        cache.store(1, 1, 0, bytes(300))
    except ValueError:
        return
    raise AssertionError("stored an oversize response")
