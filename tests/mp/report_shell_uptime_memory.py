# Memory report for the shell's idle loop past 2**30 ms of total uptime, on MicroPython
# (printed by `make test`; issue 10 finding 8). MicroPython's ints above 2**30 are heap
# objects, and a pump's uptime continues across resets: a shell restored from a record
# saved at 3 * 2**30 ms (37 days) runs its idle turns, one channel infusing, the host
# silent (link_lost raised), under micropython.heap_lock() for 40 s of 1 ms turns: an
# allocation raises MemoryError. EXIT_CODE = 1 if an idle turn allocates.
#
# Reported as well, not locked (they allocate by design): one periodic save (the JSON
# record, every 60 s) and the turns across the loop's 2**29 ms re-base (once in 6.2 days
# of one boot). Only public behaviour is used (a record in the store, the clock, the
# link), so the report runs against any firmware of this shape.
import gc
import json
from binascii import crc32

import micropython

from firmware.core import SafetyCore
from tests.portable.corekit import library
from tests.portable.coreview import snapshot
from tests.portable.shellkit import NOREPI, Host, Store, ports, shell

_UPTIME = 3 << 30  # ms of total uptime in the record
_LOCKED_MS = 40_000
_SECOND = 1000


class _CountingStore(Store):
    def __init__(self):
        Store.__init__(self)
        self.writes = 0

    def write(self, name, data):
        self.writes += 1
        Store.write(self, name, data)


def _store_at(uptime):
    # the record format both the firmware of issue 10 and the one before it read
    core = SafetyCore(library(), channels=2)
    body = json.dumps({"uptime_ms": uptime, "gen": 1, "core": snapshot(core)}).encode()
    store = _CountingStore()
    store.files["state.used"] = b""
    store.files["state.json"] = b"pumpguard-state 1 " + ("%08x\n" % crc32(body)).encode() + body
    return store


def _turns(sh, clock, n):
    for _ in range(n):
        clock.advance(1)
        sh.step()


def _phases():
    global EXIT_CODE
    p = ports(_store_at(_UPTIME))
    sh = shell(p)
    sh.begin()
    clock = p["clock"]
    host = Host(sh, p)
    host.hello(supervise_s=1)  # a supervising host, so its silence is an alarm
    host.request("START", NOREPI)
    for _ in range(11):  # the host goes silent: link_lost, saved
        clock.advance(_SECOND)
        sh.step()
    info = host.request("INFO", {})[1]
    assert info["uptime_ms"] > _UPTIME, info
    for _ in range(11):
        clock.advance(_SECOND)
        sh.step()
    yield
    micropython.heap_lock()
    try:
        _turns(sh, clock, _LOCKED_MS)
        failure = None
    except MemoryError as exc:
        failure = exc
    finally:
        micropython.heap_unlock()
    if failure is None:
        print(
            "shell memory: idle loop turn past 2**30 ms uptime (%d ms), 1 channel running: "
            "0 bytes in %d turns (heap_lock)" % (_UPTIME, _LOCKED_MS)
        )
    else:
        print("shell memory: idle loop turn past 2**30 ms uptime ALLOCATES: %r" % (failure,))
        EXIT_CODE = 1
    yield
    # the periodic save: the one turn in a minute that writes the record
    store = p["store"]
    writes = store.writes
    while store.writes == writes:
        before = gc.mem_alloc()
        clock.advance(1)
        sh.step()
        saved = gc.mem_alloc() - before
    print(
        "shell memory: the periodic save (every 60 s) allocates %d bytes (the JSON record, "
        "%d bytes)" % (saved, len(store.files["state.json"]))
    )
    yield
    # the loop's clock re-base, 2**29 ms into a boot: move there in steps the ticks take
    target = _UPTIME + (1 << 29) - 2 * _SECOND
    step = 1 << 27
    while step >= _SECOND:
        while sh.uptime_ms() + step < target:
            clock.advance(step)
            sh.step()
            host.request("HEARTBEAT", {})  # a host heard now and then, as in service
        step //= 4
    _turns(sh, clock, 100)
    yield
    before = gc.mem_alloc()
    _turns(sh, clock, 4 * _SECOND)
    print(
        "shell memory: 4000 idle turns across the 2**29 ms re-base allocate %d bytes"
        % (gc.mem_alloc() - before,)
    )


PHASES = _phases()
