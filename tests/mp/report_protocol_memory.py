# Memory of the protocol codec on real MicroPython: the decoder's per-byte loop
# allocates nothing (proved under heap_lock), and a whole frame costs a bounded,
# printed number of bytes, tagged frames (flag A) and their tag included. Fails
# (EXIT_CODE 1) if either stops being true.
import gc
import sys

import micropython

from protocol import auth, messages
from protocol.decoder import Decoder
from protocol.replay import ReplayCache
from tests.mp.benchframes import FRAMES
from tests.mp.benchframes import TAPER_R as BIG_FIELDS
from tests.mp.benchframes import TITRATE as FIELDS

EXIT_CODE = 0
wire = messages.to_wire("TITRATE", 7, FIELDS, sid=0x5A3C)
# The largest frame: a full page of taper steps (benchframes.TAPER_R).
big = messages.to_wire("TAPER_R", 9, BIG_FIELDS)
# The same two, tagged as in an authenticated session (SPEC §12).
KS = bytes(range(32))
tagged = messages.to_wire("TITRATE", 7, FIELDS, sid=0x5A3C, key=KS, ctr=5)
big_tagged = messages.to_wire("TAPER_R", 9, BIG_FIELDS, sid=0x5A3C, key=KS, ctr=6, sender=b"D")
dec = Decoder()
cache = ReplayCache()

# 1. Every byte but the closing delimiter, with the heap locked: any allocation
#    raises MemoryError. locked_ok exists before the lock: a new module global
#    assigned under it could grow the globals dict, an allocation of the report's own.
locked_ok = False
for w in (wire, big, tagged, big_tagged):
    body = bytearray(w)
    gc.collect()
    micropython.heap_lock()
    try:
        dec.feed(body, 0, len(body) - 1)
        locked_ok = True
    except MemoryError:
        locked_ok = False
    micropython.heap_unlock()
    result = "0 bytes" if locked_ok else "ALLOCATED"
    print("per-byte loop, %d bytes under heap_lock: %s" % (len(body) - 1, result))
    if not locked_ok:
        EXIT_CODE = 1
    dec.feed(body, len(body) - 1)
    assert dec.ready
    dec.take()


def measure(label, fn, limit):
    global EXIT_CODE
    fn()
    gc.collect()
    before = gc.mem_alloc()
    fn()
    used = gc.mem_alloc() - before
    print("%s: %d bytes (limit %d)" % (label, used, limit))
    if used > limit:
        EXIT_CODE = 1


def verify_only():
    dec.feed(wire)
    assert dec.ready


def verify_and_take():
    dec.feed(wire)
    dec.take()


def verify_take_decode():
    dec.feed(wire)
    f = dec.take()
    messages.decode(f.msg_id, f.payload)


def verify_big():
    dec.feed(big)
    dec.take()


def replay_hit():
    cache.lookup(0x5A3C, 7, 12345)


def verify_tagged():
    # What the device does with every request: take it, then check its tag.
    dec.feed(tagged)
    f = dec.take()
    assert auth.equal(f.tag, auth.tag(KS, auth.HOST, f.signed))


def tag_only():
    auth.tag(KS, auth.DEVICE, big_tagged)


cache.store(0x5A3C, 7, 12345, wire)
measure("frame verified (CRC residue check)", verify_only, 64)
measure("frame verified + take()", verify_and_take, 256)
measure("frame verified + take() + messages.decode (TITRATE)", verify_take_decode, 1024)
measure("%d-byte frame verified + take()" % len(big), verify_big, 512)
measure("replay cache hit", replay_hit, 64)
measure("encode TITRATE to wire", lambda: messages.to_wire("TITRATE", 7, FIELDS), 1024)
# An HMAC is two sha256 objects, a 64-byte pad and two digests, whatever the length.
measure("auth.tag over %d bytes" % len(big_tagged), tag_only, 768)
measure("tagged frame verified + take() + tag checked (TITRATE)", verify_tagged, 1024)
measure(
    "encode TITRATE to wire, tagged",
    lambda: messages.to_wire("TITRATE", 7, FIELDS, sid=0x5A3C, key=KS, ctr=5),
    2048,
)


# With --bench WINDOW_MS (bench/protocol_bench.py passes it): frames per second on this
# interpreter, for the same three frames the CPython side of the benchmark times.
def encode(name, fields, w):
    messages.to_wire(name, 1, fields)


def decode(name, fields, w):
    dec.feed(w)
    f = dec.take()
    messages.decode(f.msg_id, f.payload)


if "--bench" in sys.argv:
    import time

    args = sys.argv[sys.argv.index("--bench") + 1 :]
    window_ms = int(args[0]) if args else 1000

    for name, fields in FRAMES:
        w = messages.to_wire(name, 1, fields)
        for fn in (encode, decode):
            n = 0
            t0 = time.ticks_ms()
            while time.ticks_diff(time.ticks_ms(), t0) < window_ms:
                fn(name, fields, w)
                n += 1
            ms = time.ticks_diff(time.ticks_ms(), t0)
            gc.collect()
            before = gc.mem_alloc()
            fn(name, fields, w)
            alloc = gc.mem_alloc() - before
            print("BENCH %s %s %d %d %d" % (fn.__name__, name, len(w), n * 1000 // ms, alloc))
