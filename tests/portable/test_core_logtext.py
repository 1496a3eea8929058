# The log's texts, kept as codes and numbers and worded only when read (issue 14), are
# those the core wrote as text before, byte for byte: host/pumpguard/report/parse.py and
# many tests read them. logtexts.json holds what the core made of logsession.py's
# session before (main b42d823); every entry and every decision's message must match.
import json

from tests.portable import logsession


def _golden():
    parts = __file__.replace("\\", "/").split("/")
    with open("/".join(parts[:-1]) + "/logtexts.json") as f:
        return json.load(f)


def test_every_log_text_and_message_is_as_before():
    got = logsession.run()
    want = _golden()
    for i in range(min(len(got), len(want))):
        assert got[i] == want[i], (i, got[i], want[i])
    assert len(got) == len(want)


def test_texts_read_after_the_ring_wrapped_are_as_before():
    # A small ring, read only at the end: the entries still held read the same.
    from firmware.core import SafetyCore
    from tests.portable.corekit import library

    core = SafetyCore(library(), log_size=8)
    for step in logsession.steps(core, 5000):
        step()
    held = ["L %d %d %d %s %s %s" % e for e in core.log.entries()]
    want = [t for t in _golden() if t.startswith("L ")][-8:]
    assert held == want
