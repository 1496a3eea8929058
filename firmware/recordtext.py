# The state record's text written in place (persist.Record.save_core): the JSON text
# json.dumps made of {"uptime_ms", "gen", "core": SafetyCore.snapshot()} (separators
# "," and ":"), written byte by byte through one small buffer made with the Record
# and handed to the store in chunks. No dict, no json, no str built per save: the
# core's own objects are read through core.record() (channels, alarms, at_ms), strings
# copied a character at a time, numbers digit by digit, fixed text from bytes constants.
#
#   record: b"pumpguard-state 1 " + 8 hex digits + b"\n" + body + spaces
#
# The header holds the CRC-32 of the body, and the store only appends: so the body is
# written twice (write()), the first time only into the CRC (binascii.crc32(chunk,
# crc), a chunk at a time), the second into the store: write(name, header + the first
# chunk), then append(name, chunk) for each one after. The body is padded with spaces
# (JSON's whitespace, which load() reads past) to a multiple of _STEP, the chunk is a
# multiple of it too, so every chunk handed over is one of a few lengths: a memoryview
# of the buffer made once per length and kept, and a save of a record of any size
# allocates nothing. A record is never cut short nor the buffer grown: a longer record
# is more chunks. The record counter (state.gen) is written from counter: the counter
# in decimal, spaces before it (int() reads past them).
#
# What allocates even so: on a 32-bit port (a Pico, WebAssembly) an int past 2**30 is a
# heap object, so past 12.4 days of uptime each time written is formatted with str()
# (on the 64-bit unix port ints stay small to 2**62), and binascii.crc32's result is
# one when it is 2**30 or more (once per chunk: the CRC is carried from one to the
# next); a string with characters past ASCII (none the core writes: names are
# printable ASCII, messages clipped to it) is encoded. The library's member is made
# with json once per library (a switch) and kept.
import json
import sys
from binascii import crc32
from struct import pack_into

from micropython import const

# Of the snapshot format (SafetyCore.snapshot()). 2: a channel keeps the volume its start
# programmed ("volume"); a record of format 1 boots as a lost one (store_lost). 3: the
# patient's weight ("weight", rules.check_patient); one of format 2 is still read.
VERSION = const(3)
# A channel's and an alarm's members, in the order written (and resume.py checks):
# each is the attribute of that name of a Channel or an Alarm (a channel's drug: its name).
CHANNEL = (
    "ch",
    "state",
    "drug",
    "dose",
    "weight",
    "conc",
    "volume",
    "volume_left",
    "volume_infused",
    "rate",
    "override",
    "last_up_ms",
    "last_down_ms",
    "taper_next_ms",
    "near_empty_raised",
)
ALARM = ("id", "ch", "code", "priority", "message", "at_ms", "acked", "active")

MAGIC = b"pumpguard-state 1 "
HEAD = const(27)  # len(MAGIC) + 8 hex digits + "\n"
_STEP = const(64)
# The buffer (SIZE bytes, whatever the board or the record): the header, a chunk of the
# body (CHUNK bytes, _STEPS steps), and the slack a piece written at once may run past
# the chunk's end before the chunk is handed over (a number 20 bytes at most, a fixed
# text 20, a character 6 and the closing quote; longer bytes go a byte at a time).
SIZE = const(512)
CHUNK = const(448)
_STEPS = const(7)  # CHUNK // _STEP
_LIM = const(475)  # HEAD + CHUNK: the body's text there hands the chunk over
_SLACK = const(37)  # SIZE - _LIM
_GEN = const(16)
# The largest int this port keeps small (no heap object): 2**30 - 1 on 32 bits, 2**62 - 1
# on 64 (small themselves, so comparing with them allocates nothing).
_SMALL = (1 << (62 if sys.maxsize > 1 << 32 else 30)) - 1
_NSMALL = -_SMALL
_HEX = b"0123456789abcdef"


class Text:
    """The state record's buffer (SIZE bytes), and the writer of one record through it."""

    def __init__(self):
        self.buf = buf = bytearray(SIZE)
        buf[: len(MAGIC)] = MAGIC
        buf[HEAD - 1] = 0x0A
        self.pos = HEAD
        self.mv = memoryview(buf)
        self.counter = bytearray(_GEN)  # state.gen's text
        # The view of a chunk of k steps of body: [k], with the header before it: [_STEPS
        # + k]; each made at its first chunk and kept.
        self._views = [None] * (2 * _STEPS + 1)  # type: list
        self._store = None  # the store a pass writes into; None: the CRC's pass
        self._name = ""
        self._chunks = 0  # the chunks this pass handed over
        self.crc = 0  # the CRC-32 of the body's chunks handed over in the CRC's pass
        self._library = None  # the library whose text _libtext is
        self._libtext = b""
        self._crc = bytearray(4)
        self._state = self.state  # the bound method, made once (each would allocate)

    def write(self, store, name, core, uptime_ms, gen):
        """Write the record of core's state into store as name: the body once into its
        CRC, then the header and the body in chunks (write(name, the first), append(name,
        each one after)); the text of gen into counter. Raises what the store raises: a
        failure leaves name part written, nothing else."""
        lib = core.library
        if lib is not self._library:  # the library's member, made once per library
            ok = lib.ok
            named = {"name": lib.name if ok else "", "version": lib.version if ok else ""}
            named["crc32"] = lib.crc if ok else 0
            self._libtext = json.dumps(named, separators=(",", ":")).encode()
            self._library = lib
        self._store = None
        self.crc = 0
        self._body(core, uptime_ms, gen)
        # Its 4 bytes first: on a 32-bit port the CRC may be a heap int, whose every
        # shift would be another; its bytes are small ints.
        crc = self._crc
        pack_into(">I", crc, 0, self.crc)
        buf = self.buf
        for i in range(4):
            b = crc[i]
            buf[len(MAGIC) + 2 * i] = _HEX[b >> 4]
            buf[len(MAGIC) + 2 * i + 1] = _HEX[b & 15]
        self._store = store
        self._name = name
        self._body(core, uptime_ms, gen)
        counter = self.counter
        i = _GEN - 1
        while True:
            counter[i] = 0x30 + gen % 10
            gen //= 10
            i -= 1
            if not gen or i < 0:
                break
        while i >= 0:
            counter[i] = 0x20
            i -= 1

    def _body(self, core, uptime_ms, gen):
        # one pass over the body: its chunks handed over (_hand()), the last padded
        self.pos = HEAD
        self._chunks = 0
        self.put(b'{"uptime_ms":')
        self.num(uptime_ms)
        self.put(b',"gen":')
        self.num(gen)
        self.put(b',"core":{"version":')
        self.num(VERSION)
        self.put(b',"library":')
        self.put(self._libtext)
        core.record(self._state)
        p = self.pos
        buf = self.buf
        while (p - HEAD) % _STEP:  # to _LIM at most: CHUNK is whole steps
            buf[p] = 0x20
            p += 1
        self.pos = p
        if p > HEAD:
            self._hand((p - HEAD) // _STEP)

    def _hand(self, steps):
        # The buffer's chunk of steps: into the CRC, or to the store (the first with
        # the header before it)
        store = self._store
        first = store is not None and not self._chunks
        i = steps + _STEPS if first else steps
        view = self._views[i]
        if view is None:  # the first chunk of this length: its view, kept
            view = self._views[i] = self.mv[0 if first else HEAD : HEAD + steps * _STEP]
        if store is None:
            self.crc = crc32(view, self.crc)
        elif first:
            store.write(self._name, view)
        else:
            store.append(self._name, view)
        self._chunks += 1

    def _spill(self):
        # The chunk the buffer holds handed over; the bytes past it moved to its start.
        self._hand(_STEPS)
        buf = self.buf
        p = _LIM
        q = HEAD
        end = self.pos
        while p < end:
            buf[q] = buf[p]
            p += 1
            q += 1
        self.pos = q

    def put(self, data):
        """Bytes-like data (bytes constants) at the end."""
        p = self.pos
        n = len(data)
        buf = self.buf
        if n <= _SLACK:
            buf[p : p + n] = data
            self.pos = p + n
            if p + n >= _LIM:
                self._spill()
            return
        for b in data:  # longer than the slack (the library's member): a byte at a time
            buf[p] = b
            p += 1
            if p >= _LIM:
                self.pos = p
                self._spill()
                p = self.pos
        self.pos = p

    def num(self, n):
        """An int in decimal at the end, digit by digit (see the top of this module for
        a large one)."""
        buf = self.buf
        p = self.pos
        if not _NSMALL <= n <= _SMALL:
            self.put(b"%d" % n)  # a heap int: its digits are a heap object anyway
            return
        if n < 0:
            buf[p] = 0x2D
            p += 1
            n = -n
        m = n
        while m >= 10:  # the end of its digits
            m //= 10
            p += 1
        self.pos = end = p + 1
        while True:
            buf[p] = 0x30 + n % 10
            n //= 10
            if not n:
                break
            p -= 1
        if end >= _LIM:
            self._spill()

    def value(self, v):
        """None, a bool, an int or a str, as JSON. A string's characters: " and \\
        escaped, control characters as \\u00XX, others as their UTF-8 bytes."""
        if v is None:
            self.put(b"null")
        elif v is True:
            self.put(b"true")
        elif v is False:
            self.put(b"false")
        elif type(v) is not str:
            self.num(v)
        else:
            p = self.pos
            buf = self.buf
            buf[p] = 0x22
            p += 1
            for ch in v:
                if p >= _LIM:  # a character's longest form fits the slack
                    self.pos = p
                    self._spill()
                    p = self.pos
                c = ord(ch)
                if c < 0x20:
                    buf[p : p + 4] = b"\\u00"
                    buf[p + 4] = _HEX[c >> 4]
                    buf[p + 5] = _HEX[c & 15]
                    p += 6
                    continue
                if c == 0x22 or c == 0x5C:
                    buf[p] = 0x5C
                    p += 1
                if c < 0x80:
                    buf[p] = c
                    p += 1
                    continue
                for b in ch.encode():  # past ASCII (allocates: no text the core writes)
                    buf[p] = b
                    p += 1
            buf[p] = 0x22
            self.pos = p + 1
            if p + 1 >= _LIM:
                self._spill()

    def fields(self, obj, keys):
        """An object of obj's attributes named keys (Channel, Alarm: their snapshot's
        keys are their attributes; a channel's drug is its name)."""
        sep = b"{"
        for key in keys:
            self.put(sep)
            sep = b","
            self.value(key)
            self.put(b":")
            v = getattr(obj, key)
            if key == "drug" and v is not None:
                v = v.name
            self.value(v)
        self.put(b"}")

    def state(self, at_ms, channels, alarms, weight):
        # core.record()'s call back: the rest of the core's member, read in place.
        self.put(b',"at_ms":')
        self.num(at_ms)
        self.put(b',"weight":')
        self.value(weight)
        sep = b',"channels":['
        for c in channels:
            self.put(sep)
            sep = b","
            self.fields(c, CHANNEL)
        self.put(b',"channels":[]' if sep != b"," else b"]")
        sep = b',"alarms":['
        for a in alarms.items:
            self.put(sep)
            sep = b","
            self.fields(a, ALARM)
        self.put(b',"alarms":[]' if sep != b"," else b"]")
        self.put(b',"next_alarm_id":')
        self.num(alarms.next_id)
        self.put(b"}}")
