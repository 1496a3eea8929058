# Frames per second of the protocol codec on MicroPython, garbage collection paid
# (bench/protocol_bench.py runs it and prints the table):
#
#   unix port, GC inline: micropython -X heapsize=190k -c "import sys;
#       sys.path[:] = [BUNDLE, ROOT]; import tests.mp.bench_codec as b; b.main(ARGS)"
#     The whole firmware is loaded and booted first when it fits the heap (LIVE says
#     whether it did and what the heap holds): a collection's cost grows with what is
#     live, and how often one runs with what is free.
#   Not on WebAssembly: that build collects only between calls from JavaScript, and a
#     collection there (its heap grows, tens of MB) costs milliseconds: split into calls
#     of 32 KB of garbage each, the 243-byte decode ran at 0.5-1.9 k/s against 8 k/s on
#     the unix port, a figure of the build's glue, not of the firmware's codec.
#
# ARGS: WINDOW_MS REPEATS. Prints LIVE, then per frame and op: ALLOC (gc.mem_alloc()
# delta of one op, no collection inside) and one RATE line per repeat.
import gc
import time

from protocol import messages
from protocol.decoder import Decoder
from tests.mp.benchframes import FRAMES

_dec = Decoder()


def encode(name, fields, wire):
    messages.to_wire(name, 1, fields)


def decode(name, fields, wire):
    _dec.feed(wire)
    f = _dec.take()
    messages.decode(f.msg_id, f.payload)


OPS = (encode, decode)


def _alloc(fn, name, fields, wire):
    fn(name, fields, wire)
    gc.collect()
    before = gc.mem_alloc()
    fn(name, fields, wire)
    return gc.mem_alloc() - before


def _firmware():
    # The firmware in the heap, as on a board; False when it does not fit.
    try:
        import tests.mp.firmware_memory as m

        m.boot()
        return m.hello() == "HELLO_R" and m.request("START", m.NOREPI) == "START_R"
    except MemoryError:
        return False


def _setup():
    loaded = _firmware()
    gc.collect()
    print("LIVE %d %d %d" % (gc.mem_alloc(), gc.mem_free(), 1 if loaded else 0))


def main(args):
    window_ms = int(args[0]) if args else 1000
    repeats = int(args[1]) if len(args) > 1 else 5
    _setup()
    for name, fields in FRAMES:
        wire = messages.to_wire(name, 1, fields)
        for fn in OPS:
            used = _alloc(fn, name, fields, wire)
            print("ALLOC %s %s %d %d" % (fn.__name__, name, len(wire), used))
            for rep in range(repeats):
                n = 0
                t0 = time.ticks_us()
                end = window_ms * 1000
                while time.ticks_diff(time.ticks_us(), t0) < end:
                    fn(name, fields, wire)
                    n += 1
                us = time.ticks_diff(time.ticks_us(), t0)
                print(
                    "RATE %s %s %d %d %d" % (fn.__name__, name, len(wire), rep, n * 1000000 // us)
                )
