# Bounded ring of events: every command, decision, rate change and alarm, with its time.
#
# The ring is allocated once; when full, the oldest entry is overwritten. seq numbers
# keep counting, so a reader (the shell streaming events to the host) asks for entries
# since the last seq it saw and can tell from a gap that some were overwritten.
#
# An entry is a fixed slot of _W references: its channel, kind, code, then a text or a
# wording form with its arguments (small ints, the library's Drug, strings the command
# or the library already holds), and its time. Adding one allocates nothing; its text
# is worded (wording.render) only when it is read or written to the journal.
#
# Its size (the core's log_size, 64): the journal (journal.py) drains the ring on every
# change, so with a working store the ring holds only one turn's entries: a command's
# three (received, decision, rate) and per channel a taper step, a rate and an alarm or
# two, about 12 on two channels. While the store fails, though, the ring is all that
# holds what the core logs until an append succeeds again: 64 entries keep every entry
# of an outage of 20 commands (tests/portable/test_journal.py); past that the oldest not
# yet kept are overwritten, as past 40 with 128 (link noise coalesces only once kept).
# (the save fails on the same store: store_failed). Each entry is _W references, 80 B on a
# 64-bit port and 40 on a Pico: 5 KB, 2.5 KB (128 cost 10 KB for turns that use 12).
from micropython import const

from firmware import wording

_W = const(10)  # ch, at_ms, form (or text, its kind, its code), 7 arguments


class EventLog:
    """Entries read by seq, field by field: at_ms, ch, kind, code, text (the tests read
    them as tuples (seq, at_ms, ch, kind, code, text): tests/portable/coreview.py).

    kind: the command's name (start, titrate, stop, emergency_stop, ack: as received,
    code "received"), "decision" (its Result), "rate" (motor rate change), "alarm"
    (raised), "input" (library, link, restore). code is always a reason name
    (protocol/reasons.py lists them). ch 0 means the whole device.
    """

    def __init__(self, size):
        if size < 1:
            raise ValueError("log size must be at least 1, not %r" % (size,))
        self._r = [None] * (_W * size)  # type: list
        # an entry's text worded when read (text()), and by the journal as it writes
        # one (journal.py): copied out at once, never held across another's wording
        self.words = bytearray(wording.BUF)
        self._next = 0  # seq of the next entry; its slot is _next % size
        self.size = size

    def add(self, at_ms, ch, kind, code, text):
        """An entry whose text is made already."""
        return self.put(at_ms, ch, text, kind, code)

    def put(self, at_ms, ch, form, a=None, b=None, c=None, d=None, e=None, f=None, g=None):
        """An entry worded when read: wording's form (which says its kind and code too)
        and its arguments a..g."""
        seq = self._next
        r = self._r
        o = seq % self.size * _W
        r[o] = ch
        r[o + 1] = at_ms  # a reference: an array('q') makes an int when read
        r[o + 2] = form
        r[o + 3] = a  # a text's: its kind
        r[o + 4] = b  # and its code
        r[o + 5] = c
        r[o + 6] = d
        r[o + 7] = e
        r[o + 8] = f
        r[o + 9] = g
        self._next = seq + 1
        return seq

    def __len__(self):
        return min(self._next, self.size)

    @property
    def next_seq(self):
        return self._next

    def held(self, seq):
        """seq is still in the ring."""
        return self._next - self.size <= seq < self._next and seq >= 0

    def kind(self, seq):
        o = seq % self.size * _W
        form = self._r[o + 2]
        return self._r[o + 3] if isinstance(form, str) else wording.KINDS[form]

    def code(self, seq):
        o = seq % self.size * _W
        r = self._r
        form = r[o + 2]
        return (
            r[o + 4] if isinstance(form, str) else wording.code(form, r[o + 6], r[o + 7], r[o + 8])
        )

    def at_ms(self, seq):
        return self._r[seq % self.size * _W + 1]

    def ch(self, seq):
        return self._r[seq % self.size * _W]

    def render(self, seq, buf):
        """Entry seq's text worded into buf (wording.BUF bytes) as UTF-8: its length, or
        -1 for an entry whose text was made already (text() is that str)."""
        o = seq % self.size * _W
        r = self._r
        form = r[o + 2]
        if isinstance(form, str):
            return -1
        return wording.render(buf, form, r[o + 3], r[o + 4], r[o + 5], r[o + 6], r[o + 7],
                              r[o + 8], r[o + 9])  # fmt: skip

    def freeze(self, seq):
        """Entry seq (the last) worded now: its arguments may change later (a list)."""
        o = seq % self.size * _W
        r = self._r
        kind = self.kind(seq)
        code = self.code(seq)
        r[o + 2] = self.text(seq)
        r[o + 3] = kind
        r[o + 4] = code
        for i in range(o + 5, o + 10):
            r[i] = None

    def text(self, seq):
        """Entry seq's text, worded now."""
        n = self.render(seq, self.words)
        if n < 0:
            return self._r[seq % self.size * _W + 2]
        return str(memoryview(self.words)[:n], "utf-8")

    def worded(self, form, a, b, c, d, e):
        """A text of wording's form made now, from the words (an alarm's message, which
        the alarm keeps): the one str, no piece of it made."""
        n = wording.render(self.words, form, a, b, c, d, e, None, None)
        return str(memoryview(self.words)[:n], "utf-8")

    def first(self, seq):
        """The oldest seq >= seq still held (next_seq when none)."""
        return max(seq, self._next - self.size, 0) if seq < self._next else self._next
