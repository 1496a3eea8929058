# Exactly once: the device's replay cache on both interpreters.
from protocol import messages
from protocol.decoder import Decoder
from protocol.replay import ReplayCache


def _request(seq, ch):
    return Decoder().decode(messages.to_wire("STOP", seq, {"ch": ch}))[0]


class _Device:
    """The shell's serve loop reduced to the cache: counts executions."""

    def __init__(self, size=4):
        self.cache = ReplayCache(size)
        self.runs = 0

    def serve(self, req):
        wire = self.cache.lookup(req.seq, req.crc)
        if wire is None:
            self.runs += 1
            wire = messages.to_wire(
                "STOP_R", req.seq, {"ch": self.runs, "unit": "", "total": 0, "plan": []}
            )
            self.cache.store(req.seq, req.crc, wire)
        return bytes(wire)


def test_a_retry_gets_the_cached_answer_and_does_not_run_again():
    dev = _Device()
    first = dev.serve(_request(1, 1))
    assert dev.serve(_request(1, 1)) == first
    assert dev.serve(_request(1, 1)) == first
    assert dev.runs == 1


def test_same_seq_different_request_runs():
    dev = _Device()
    dev.serve(_request(1, 1))
    dev.serve(_request(1, 2))  # a restarted host reusing seq 1
    assert dev.runs == 2
    assert dev.cache.lookup(1, _request(1, 1).crc) is None


def test_window_keeps_the_last_size_requests():
    dev = _Device(size=4)
    for seq in range(1, 7):
        dev.serve(_request(seq, 1))
    for seq in (3, 4, 5, 6):
        dev.serve(_request(seq, 1))
    assert dev.runs == 6
    dev.serve(_request(1, 1))  # fell out of the window: runs again
    assert dev.runs == 7


def test_clear_forgets_everything():
    dev = _Device()
    dev.serve(_request(1, 1))
    dev.cache.clear()
    dev.serve(_request(1, 1))
    assert dev.runs == 2


def test_store_refuses_more_than_a_frame():
    cache = ReplayCache(1)
    try:
        cache.store(1, 0, bytes(300))
    except ValueError:
        return
    raise AssertionError("stored an oversize response")
