"""The store port's durability and journal primitives on CPython: FileStore (the
emulator's state directory; a Pico's littlefs runs the same code, where closing the
file commits and there is no os.fsync) and the micropython runtime's relay of the same
calls to it (boards/emulator/relay.py -> pumpguard/emulator/micropython.py)."""

import importlib
import io
import json
import os
import sys
import types

import pytest
from pumpguard.emulator import micropython

from boards.drivers.filestore import FileStore
from firmware.eventlog import EventLog
from firmware.journal import SEGMENTS, Journal
from protocol import catalog
from protocol.frame import MAX_PAYLOAD
from tests.portable.coreview import page as log_page
from tests.portable.coreview import since


def _synced(monkeypatch):
    calls = []
    real = os.fsync

    def fsync(fd):
        calls.append(os.readlink(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self") else fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return calls


def test_write_and_append_are_fsynced_and_so_are_rename_and_remove(tmp_path, monkeypatch):
    store = FileStore(str(tmp_path))
    calls = _synced(monkeypatch)
    store.write("state.tmp", b"record")
    assert calls == [str(tmp_path / "state.tmp")]
    store.rename("state.tmp", "state.json")
    assert calls[1:] == [str(tmp_path)]  # the directory: the rename itself is durable
    calls.clear()
    store.append("journal.0", b"ab")
    store.append("journal.0", b"cd")
    assert calls == [str(tmp_path / "journal.0")] * 2
    calls.clear()
    store.remove("journal.0")
    assert calls == [str(tmp_path)]
    store.remove("journal.0")  # missing is fine, and nothing to sync
    assert calls == [str(tmp_path)]


def test_append_size_readinto_and_remove(tmp_path):
    store = FileStore(str(tmp_path))
    assert store.size("journal.0") is None and store.readinto("journal.0", 0, bytearray(4)) is None
    store.append("journal.0", b"0123")
    store.append("journal.0", memoryview(b"456789"))  # the journal hands in memoryviews
    assert store.size("journal.0") == 10
    buf = bytearray(4)
    assert store.readinto("journal.0", 3, buf) == 4 and buf == b"3456"
    assert store.readinto("journal.0", 8, buf) == 2 and buf[:2] == b"89"
    assert store.readinto("journal.0", 10, buf) == 0
    store.remove("journal.0")
    assert store.size("journal.0") is None and not (tmp_path / "journal.0").exists()


def test_a_torn_record_on_the_filesystem_drops_only_that_record(tmp_path):
    store = FileStore(str(tmp_path))
    journal = Journal(store, 1)
    log = EventLog(8)
    for i in range(3):
        log.add(i, 1, "decision", "ok", f"entry {i}")
        journal.drain(log)
    path = tmp_path / SEGMENTS[0]
    whole = path.read_bytes()
    last = len(whole) - (2 * (whole[1] + 6))
    for k in range(1, last + 1):
        path.write_bytes(whole[: len(whole) - k])
        page, nxt = log_page(Journal(store, 2), 0, MAX_PAYLOAD, catalog.LOG_PAGE)
        assert ([e["text"] for e in page], nxt) == (["entry 0", "entry 1"], 2), k


class _Wire:
    """mp_emulator.mjs between the two: each line the relay sends goes to the host's
    _relay, and a call gets the line the host answers."""

    def __init__(self, ports):
        self.ports = ports

    def _host(self, line):
        answers = io.StringIO()
        micropython._relay(answers, [line], self.ports)
        return answers.getvalue().strip()

    def send(self, line):
        assert self._host(line) == ""

    def call(self, line):
        if json.loads(line)[0] == "turn":
            return json.dumps([0, "", [0, 0], [None, None], [None, None]])
        return self._host(line)


def test_the_micropython_runtime_relays_the_journal_to_the_host_store(tmp_path, monkeypatch):
    store = FileStore(str(tmp_path))
    ports = {name: None for name in ("link", "motors", "clock", "alarm", "watchdog")}
    ports["store"] = store
    monkeypatch.setitem(sys.modules, "js", types.SimpleNamespace(bridge=_Wire(ports)))
    monkeypatch.delitem(sys.modules, "boards.emulator.relay", raising=False)
    relay = importlib.import_module("boards.emulator.relay")
    relayed = relay.make_ports(2)["store"]
    journal = Journal(relayed, 9, segment_bytes=200)
    log = EventLog(8)
    for i in range(10):  # rotates: remove goes over the relay too
        log.add(i, 0, "input", "received", f"relayed {i}")
        journal.drain(log)
    assert max(store.size(name) or 0 for name in SEGMENTS) <= 200
    again = Journal(relayed, 10, segment_bytes=200)
    page, _ = log_page(again, 0, MAX_PAYLOAD, catalog.LOG_PAGE)
    assert again.next_seq == 10 and page[0]["seq"] == again.oldest > 0
    assert [e["text"] for e in page][-1] == f"relayed {again.oldest + len(page) - 1}"
    assert relayed.size("nothing") is None and relayed.readinto("nothing", 0, bytearray(2)) is None
    relayed.remove("nothing")  # missing is fine over the relay too


@pytest.mark.parametrize("first", [0, 2**31, 2**32 - 1])
def test_the_ram_log_serves_any_u32(first):
    log = EventLog(4)
    log.add(0, 0, "input", "received", "x")
    assert since(log, first) == ([(0, 0, 0, "input", "received", "x")] if first == 0 else [])
