# The state record's text written in place (persist.Record.save_core): the JSON text
# json.dumps made of {"uptime_ms", "gen", "core": SafetyCore.snapshot()} (separators
# "," and ":"), written byte by byte into one buffer made at the first save, its CRC-32
# computed over the buffer where it lies. No dict, no json, no str built per save: the
# core's own objects are read through core.record() (channels, alarms, at_ms), strings
# copied a character at a time, numbers digit by digit, fixed text from bytes constants.
#
#   buffer: b"pumpguard-state 1 " + 8 hex digits + b"\n" + body + spaces
#
# The body is padded with spaces (JSON's whitespace, which load() reads past) to a
# multiple of _STEP, and the store is handed a memoryview of the buffer that is made
# once per padded length and kept: a save of a size seen before allocates nothing. The
# record counter (state.gen) is written from the buffer's last _GEN bytes: the counter
# in decimal, spaces before it (int() reads past them).
#
# Sized for the largest record the board can make: every channel with its longest
# figures, and every alarm the core can list at once (one per device code and one per
# channel code, each with a message of TEXT_MAX). A record longer still (text that
# needs escapes) makes the buffer larger once, never a record cut short.
#
# What allocates even so: on a 32-bit port (a Pico, WebAssembly) an int past 2**30 is a
# heap object, so past 12.4 days of uptime each time written is formatted with str()
# (on the 64-bit unix port ints stay small to 2**62), and binascii.crc32's result is
# one when it is 2**30 or more; a string with characters past ASCII (none the core
# writes: names are printable ASCII, messages clipped to it) is encoded. The library's
# member is made with json once per library (a switch) and kept.
import json
import sys
from binascii import crc32
from struct import pack_into

from micropython import const

# Of the snapshot format (SafetyCore.snapshot()). 2: a channel keeps the volume its start
# programmed ("volume"); a record of format 1 boots as a lost one (store_lost).
VERSION = const(2)
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
_GEN = const(16)
# The largest int this port keeps small (no heap object): 2**30 - 1 on 32 bits, 2**62 - 1
# on 64 (small themselves, so comparing with them allocates nothing).
_SMALL = (1 << (62 if sys.maxsize > 1 << 32 else 30)) - 1
_NSMALL = -_SMALL
_HEX = b"0123456789abcdef"
# Bounds of the text (bytes): a channel at its longest (keys 170, figures 16 digits each,
# a drug of 16 characters); an alarm (keys 78, a code of 32, a message of TEXT_MAX, 120);
# the body's own members and the library (names of 32); the counter.
_CHANNEL_MAX = const(400)
_ALARM_MAX = const(270)
_OTHER_MAX = const(320 + _GEN)
# The codes an alarm may have at once: about the device (link_lost, store_lost,
# store_failed, internal_fault, library_refused, keys_missing, insecure_link,
# record_rolled_back, record_set_aside) and about a channel (near_empty,
# second_line_alone, resumed_after_reset, restore_refused, occlusion, air_in_line,
# syringe_empty, motor_fault, extravasation, clinician): one alarm each at most.
_DEVICE_CODES = const(9)
_CHANNEL_CODES = const(10)


class Text:
    """The state record's buffer (for the largest record of a board with channels, or
    of size bytes), and the writer of one record into it."""

    def __init__(self, channels, size=0):
        if not size:
            alarms = _DEVICE_CODES + _CHANNEL_CODES * channels
            size = HEAD + _OTHER_MAX + _CHANNEL_MAX * channels + _ALARM_MAX * alarms
        self.size = size = size + _STEP - size % _STEP
        self.end = size - _GEN  # the record's room; the counter's after it
        self.buf = buf = bytearray(size)
        buf[: len(MAGIC)] = MAGIC
        buf[HEAD - 1] = 0x0A
        self.pos = 0
        self.mv = memoryview(buf)
        self.counter = self.mv[self.end :]
        self._views = {}  # padded length k: its record's view; -k: its body's
        self._library = None  # the library whose text _libtext is
        self._libtext = b""
        self._crc = bytearray(4)
        self._state = self.state  # the bound method, made once (each would allocate)

    def put(self, data):
        """Bytes-like data (bytes constants) at the end."""
        p = self.pos
        n = len(data)
        if p + n > self.end:
            raise IndexError
        self.buf[p : p + n] = data
        self.pos = p + n

    def num(self, n, at=-1):
        """An int in decimal at the end, digit by digit (see the top of this module for
        a large one); at >= 0: ending at at (the counter), spaces before it."""
        buf = self.buf
        if at >= 0:
            i = self.end
            while i < at:
                buf[i] = 0x20
                i += 1
            p = at
        else:
            p = self.pos
            if p + 21 > self.end:
                raise IndexError
            if not _NSMALL <= n <= _SMALL:
                for ch in str(n):
                    buf[p] = ord(ch)
                    p += 1
                self.pos = p
                return
            if n < 0:
                buf[p] = 0x2D
                p += 1
                n = -n
            m = n
            while m >= 10:  # the end of its digits
                m //= 10
                p += 1
            self.pos = p + 1
        while True:
            buf[p] = 0x30 + n % 10
            n //= 10
            if not n:
                return
            p -= 1

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
            last = self.end - 7  # room for a character's longest form and the quote
            buf = self.buf
            buf[p] = 0x22
            p += 1
            for ch in v:
                if p > last:
                    raise IndexError
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

    def record(self, core, uptime_ms, gen):
        """The record of core's state into the buffer: the memoryview to write (header,
        body, padding), its CRC over the body computed in place; the counter's text of
        gen in counter. Raises IndexError: the record does not fit the buffer."""
        lib = core.library
        if lib is not self._library:  # the library's member, made once per library
            ok = lib.ok
            named = {"name": lib.name if ok else "", "version": lib.version if ok else ""}
            named["crc32"] = lib.crc if ok else 0
            self._libtext = json.dumps(named, separators=(",", ":")).encode()
            self._library = lib
        self.pos = HEAD
        self.put(b'{"uptime_ms":')
        self.num(uptime_ms)
        self.put(b',"gen":')
        self.num(gen)
        self.put(b',"core":{"version":')
        self.num(VERSION)
        self.put(b',"library":')
        self.put(self._libtext)
        core.record(self._state)
        k = self.pos - HEAD + _STEP - 1
        k -= k % _STEP
        while self.pos < HEAD + k:
            self.put(b" ")
        views = self._views
        record = views.get(k)
        if record is None:  # the first record of this length: its views, kept
            record = views[k] = self.mv[: HEAD + k]
            views[-k] = self.mv[HEAD : HEAD + k]
        # Its 4 bytes first: on a 32-bit port the CRC may be a heap int, whose every
        # shift would be another; its bytes are small ints.
        pack_into(">I", self._crc, 0, crc32(views[-k]))
        buf = self.buf
        for i in range(4):
            b = self._crc[i]
            buf[len(MAGIC) + 2 * i] = _HEX[b >> 4]
            buf[len(MAGIC) + 2 * i + 1] = _HEX[b & 15]
        self.num(gen, self.size - 1)
        return record

    def state(self, at_ms, channels, alarms):
        # core.record()'s call back: the rest of the core's member, read in place.
        self.put(b',"at_ms":')
        self.num(at_ms)
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
