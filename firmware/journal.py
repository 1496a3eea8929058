# The persistent event log: every entry of the core's RAM log (eventlog.py), kept on
# the board's store across resets and power cuts, bounded, read back by LOG.
#
# Two segment files, journal.0 and journal.1, each at most _SEGMENT_BYTES (16 KB: 8 of
# a Pico's 4 KB littlefs blocks for both). Records are appended to the current one; when
# the next would not fit, the older is removed and becomes the new current one, so the
# log holds one to two segments of the newest entries. A record is 34 bytes + its kind
# + its text (42 to 170, 84 on average): 96 to 480 records per segment, 190 typically.
#
# A record, all integers little-endian:
#   0xA5  len  seq:u32 boot_id:u32 at_ms:u64 wall_ms:u64 ch:u8 code:u8
#   kind_len:u8 kind  text_len:u8 text  crc32:u32
# len counts the bytes from seq to the end of text; the CRC-32 covers every byte before
# it. wall_ms is 2**64-1 when no host had given the wall clock yet (HELLO); code is
# the reason's wire number (protocol/reasons.py: append-only, so stable in a log).
#
# Damage: a record whose header, length or CRC is wrong is not trusted; the reader
# looks for the next 0xA5 that starts a valid record (resync), so a torn last record
# (a power cut during an append) is dropped and nothing else, and damage in the middle
# costs only the records it hit: each damaged stretch followed by a good record is
# counted (damaged). New records go after a torn tail; it then is such a stretch.
#
# seq counts across boots (the boot reads the last valid seq back), a u32 that never
# wraps: the entry that would pass 2**32-1 (a century at one a second: in practice only
# after a hand-made record) starts the journal over, both segments removed, seq 0 next:
# seqs only ever grow in what the journal holds (and both interpreters write the same).
#
# Kind and text are cut to their bounds at a character, never inside one. A record
# whose CRC is right but whose kind_len and text_len do not make its len, or whose
# strings are not UTF-8, is damage like a wrong CRC: skipped and counted. Reading goes
# record by record into one preallocated buffer, making nothing (a segment is never read
# whole); a page at or past where the last one ended resumes there, and LOG's page is
# written from the records straight into the wire (page_into).
#
# Link noise: a run of link_lost/link_back entries is kept as its first link_lost and
# first link_back and, once another entry comes, the run's last saying how many were
# left out: a host that comes and goes never pushes the decisions out of the log.
import struct
import sys
from binascii import crc32

from micropython import const

from protocol import reasons
from protocol.text import TEXT_MAX, is_utf8

_SEGMENT_BYTES = const(16_384)
SEGMENTS = ("journal.0", "journal.1")
NO_WALL = 0xFFFFFFFFFFFFFFFF  # wall_ms of an entry made before any host gave the time

_MAGIC = const(0xA5)
_FIXED = const("<IIQQBBB")  # seq, boot_id, at_ms, wall_ms, ch, code, kind_len
_FIXED_SIZE = const(27)
_KIND_MAX = const(16)  # the catalog's STR 16 of LOG_R's kind
_MAX_LEN = const(_FIXED_SIZE + _KIND_MAX + 1 + 120)  # TEXT_MAX 120: 164 fits the u8 len
_MIN_LEN = const(_FIXED_SIZE + 1)
_MP = sys.implementation.name == "micropython"
_KIND_PACK = const("17s")  # _KIND_MAX + 1: the byte after says whether a cut splits a character
_TEXT_PACK = const("121s")  # TEXT_MAX + 1
_MAX_RECORD = const(2 + _MAX_LEN + 4)  # magic and len before, CRC after
# A LOG_R entry's wire size but its strings: 25 bytes as a record's (seq, boot_id, at_ms,
# wall_ms, ch), code and the strings' lengths
_WIRE_FIXED = const(25)
_ENTRY_WIRE = const(_WIRE_FIXED + 3)

# reasons.number("link_lost"), ("link_back"): append-only numbers, as literals (no
# names interned; tests/test_qstr_budget.py checks them)
_LINK_LOST = const(40)
_LINK_BACK = const(61)
# Records of one drain() go to the store in one append: one commit of the medium, not
# one per entry (and, empty outside drain(), the window reads go through).
_BATCH = const(512)
# The writer's state a failed append puts back (Journal._writer, _rewind).
_WRITER = const(("_taken", "next_seq", "_size", "_cur_first", "_run", "_held", "_last_held",
                 "_cur", "_old", "oldest"))  # fmt: skip
# The CRC-32 of any bytes followed by their own CRC-32 (little-endian): one crc32() over
# a record whole checks it, a small int even on a 32-bit board
_RESIDUE = const(0x2144DF1C)
_SEQ = const(0)  # Journal._at: where the last page ended (_SEQ asked next, _NAME, _POS)
_NAME = const(1)
_POS = const(2)
_NXT = const(3)  # and the last page's next seq, and where its entries ended
_END = const(4)
_LOG_PAGE = const(8)  # catalog.LOG_PAGE: the most entries a page holds
_LOST_KEPT = const(1)
_BACK_KEPT = const(2)


def _cut_at(b, o, n, most):
    # n bytes of UTF-8 at b[o] cut to most at a character: the length (b[o + most] read)
    if n <= most:
        return n
    while most and b[o + most] & 0xC0 == 0x80:  # a continuation byte: inside a character
        most -= 1
    return most


def _string(buf, o, s, most):
    # s written at o as UTF-8, cut to most bytes at a character; returns its length.
    # MicroPython packs the str's own bytes (nothing made; zeros pad it to most + 1).
    if _MP and "\x00" not in s:
        struct.pack_into(_KIND_PACK if most == _KIND_MAX else _TEXT_PACK, buf, o, s)
        n = 0
        while n <= most and buf[o + n]:
            n += 1
        return _cut_at(buf, o, n, most)
    b = s.encode()
    n = _cut_at(b, 0, len(b), most)
    buf[o : o + n] = b[:n]
    return n


class Journal:
    def __init__(self, store, boot_id, segment_bytes=_SEGMENT_BYTES):
        self._store = store
        self.boot_id = boot_id
        self._limit = segment_bytes
        self._buf = bytearray(_MAX_RECORD)
        self._mv = memoryview(self._buf)
        self._batch = bytearray(_BATCH)  # records packed, not yet appended
        self._bmv = memoryview(self._batch)
        self._batched = 0
        self._wall = None  # wall_ms - uptime: set_wall()
        self._taken = 0  # seq of the core's RAM log entry to take next
        self.damaged = 0  # damaged stretches (each followed by a good record) at boot
        self._skipped = False  # the last _find() passed over damage
        self.write_errors = 0  # appends the store failed (the entries stay in RAM)
        # the current link run: which of its first lost/back were kept, how many
        # entries were left out, and the last of them (at_ms, ch, kind, code)
        self._run = 0
        self._held = 0
        self._last_held = (0, 0, "", 0)
        # where the last page ended (_SEQ asked next there, _NAME: None for no page to
        # resume, _POS of its next record), its next seq and end (_walk): one list
        self._at = [0, None, 0, 0, 0]
        self.asked = 0  # LOG's first, for put()
        # Reading goes through the batch (empty but in drain()): a window of the segment
        # read last (name, offset, bytes), one store read for several records
        self._win = [None, 0, 0]
        a, b = [self._scan(name) for name in SEGMENTS]  # (first, last, size) each
        if b[1] is not None and (a[1] is None or b[1] > a[1]):
            a, b = b, a
            self._cur, self._old = SEGMENTS[1], SEGMENTS[0]
        else:
            self._cur, self._old = SEGMENTS
        self._size = a[2]  # torn bytes included: they count against the bound
        self._cur_first = a[0]
        self.next_seq = 0 if a[1] is None else a[1] + 1
        self.oldest = self._first_of(b[0], a[0])
        self._kept = [None] * len(_WRITER)
        self._writer()

    def _writer(self):
        # What writing changes, as of the last append the store took: a failed one
        # puts it back (_rewind), so the entries it held are written again next time.
        # Kept in place: nothing made per drain.
        kept = self._kept
        for i in range(len(_WRITER)):
            kept[i] = getattr(self, _WRITER[i])

    def _rewind(self):
        for i in range(len(_WRITER)):  # MicroPython's zip() takes no strict=
            setattr(self, _WRITER[i], self._kept[i])

    def _first_of(self, first, seq):
        return first if first is not None else self.next_seq if seq is None else seq

    def set_wall(self, offset):
        """The wall clock from now on: wall_ms = uptime + offset (a HELLO's wall_ms
        minus the uptime it came at); None: unknown again."""
        self._wall = offset

    # -- writing ---------------------------------------------------------------------

    def drain(self, log):
        """Keep the core log's entries not yet kept (link noise coalesced), in one
        append (or a few, when they fill the batch or a segment). A store that fails
        leaves the entries it did not take in RAM, to try again on the next change."""
        try:
            # entry by entry, through the log's accessors: no list or tuple of them
            seq = log.first(self._taken)
            end = log.next_seq
            while seq < end:
                code = reasons.number(log.code(seq))
                self._take(log.at_ms(seq), log.ch(seq), log.kind(seq), code, log, seq)
                seq += 1
                self._taken = seq
            self._flush()
        except OSError:
            self.write_errors += 1
            self._rewind()
            self._batched = 0
            self._at[_NAME] = None

    def _flush(self):
        if self._batched:
            self._store.append(self._cur, self._bmv[: self._batched])
            self._batched = 0
        self._writer()

    def _take(self, at_ms, ch, kind, code, log, seq):
        # entry seq of log (its text worded only when it is written)
        if code == _LINK_LOST or code == _LINK_BACK:  # noqa: SIM109 (no tuple made)
            kept = _LOST_KEPT if code == _LINK_LOST else _BACK_KEPT
            if not self._run & kept:
                self._append(at_ms, ch, kind, code, None, log, seq)
                self._run |= kept
            else:
                self._held += 1
                self._last_held = (at_ms, ch, kind, code)
            return
        if self._held:
            at, c, k, lc = self._last_held
            held = self._held
            self._run = self._held = 0  # before: a failed append must not write it twice
            # the run's last entry says what state the link was left in
            self._append(at, c, k, lc, "link: %d more lost/back left out" % held)
        self._run = self._held = 0
        self._append(at_ms, ch, kind, code, None, log, seq)

    def _append(self, at_ms, ch, kind, code, text, log=None, seq=0):
        # text, or entry seq of log: its text worded straight into the record. Kind and
        # text are written into the buffer first (nothing else uses it while appending).
        buf = self._buf
        o = 2 + _FIXED_SIZE
        klen = _string(buf, o, kind, _KIND_MAX)
        o += klen
        n = log.render(seq, log.words) if log is not None else -1  # the log's buffer
        if log is None or n < 0:  # a text made already
            tlen = _string(buf, o + 1, text if log is None else log.text(seq), TEXT_MAX)
        else:
            t = log.words
            tlen = _cut_at(t, 0, n, TEXT_MAX)
            for i in range(tlen):
                buf[o + 1 + i] = t[i]
        buf[o] = tlen
        n = _FIXED_SIZE + klen + 1 + tlen
        total = n + 6
        if self.next_seq > 0xFFFFFFFF:  # seq is a u32 (a large int on a board)
            self._flush()  # what is batched is of the numbering that ends
            self._restart()
        if self._size + total > self._limit:
            self._flush()  # what is batched belongs to the segment being closed
            self._rotate()
        wall = NO_WALL
        if self._wall is not None:
            wall = at_ms + self._wall
            if not 0 <= wall < NO_WALL:
                wall = NO_WALL
        buf[0] = _MAGIC
        buf[1] = n
        seq = self.next_seq
        struct.pack_into(_FIXED, buf, 2, seq, self.boot_id, at_ms, wall, ch, code, klen)
        o = 2 + n
        struct.pack_into("<I", buf, o, self._crc(o))
        if self._batched + total > _BATCH:
            self._flush()
        batch = self._batch
        at = self._batched
        for i in range(total):  # byte by byte: a slice would be made
            batch[at + i] = buf[i]
        self._batched += total
        self._size += total
        if self._cur_first is None:
            self._cur_first = seq
        self.next_seq = seq + 1

    def _rotate(self):
        # The older segment goes; the log still holds the whole current one.
        self._store.remove(self._old)
        self._cur, self._old = self._old, self._cur
        self.oldest = self._first_of(self._cur_first, None)
        self._cur_first = None
        self._size = 0
        self._at[_NAME] = None

    def _restart(self):
        # Past the last u32 seq: the journal starts over, empty, at seq 0.
        for name in SEGMENTS:
            self._store.remove(name)
        self._cur, self._old = SEGMENTS
        self.next_seq = self.oldest = 0
        self._cur_first = None
        self._size = 0
        self._at[_NAME] = None

    # -- reading: nothing made per record (a rescan costs time, never memory) --------

    def _crc(self, n):
        # crc32 of the buffer's first n bytes; MicroPython: cut to n in place and grown
        # back into the room it keeps, no view made (the bytes past n are zeros after)
        buf = self._buf
        if not _MP:
            return crc32(self._mv[:n])
        k = len(buf) - n
        buf[n:] = b""
        c = crc32(buf)
        for _ in range(k):
            buf.append(0)
        return c

    def _find(self, name, pos, size):
        """The offset of the first valid record at or after pos (it is in the buffer),
        else -1."""
        buf = self._buf
        self._skipped = False
        while pos < size:
            n = self._read(name, pos)
            if not n:
                return -1
            if buf[0] == _MAGIC and n >= 2:
                length = buf[1]
                total = length + 6
                if _MIN_LEN <= length <= _MAX_LEN and total <= n:
                    if self._crc(total) == _RESIDUE and self._strings(length):
                        return pos
                    n = total  # the bytes past it were cleared (_crc)
            self._skipped = True
            step = n  # resync: on at the next byte that may start a record
            for i in range(1, n):
                if buf[i] == _MAGIC:
                    step = i
                    break
            pos += step
        return -1

    def _read(self, name, pos):
        # the segment's bytes from pos into the buffer, as many as it holds (0 past the
        # end, None: no file), through the window (valid for one walk or scan: nothing
        # is appended during one)
        w = self._batch
        at = self._win[1]
        n = self._win[2]
        if self._win[0] != name or pos < at or pos + _MAX_RECORD > at + n == at + _BATCH:
            n = self._store.readinto(name, pos, w)
            self._win[0] = name if n else None
            if not n:
                return n
            self._win[1] = at = pos
            self._win[2] = n
        n = min(at + n - pos, _MAX_RECORD)
        buf = self._buf
        o = pos - at
        for i in range(n):
            buf[i] = w[o + i]
        return max(n, 0)

    def _seq_at(self):
        return self._buf[2] | self._buf[3] << 8 | self._buf[4] << 16 | self._buf[5] << 24

    def _scan(self, name):
        # (first seq, last seq, size) of a segment: None, None for one without records
        size = self._store.size(name) or 0
        first = last = None
        pos = 0
        self._win[0] = None
        while True:
            pos = self._find(name, pos, size)
            if pos < 0:
                return first, last, size
            pos += self._buf[1] + 6
            if self._skipped:
                self.damaged += 1
            last = self._seq_at()
            if first is None:
                first = last

    def _strings(self, n):
        # the record of len n in the buffer: its kind_len and text_len make that len,
        # and its strings are UTF-8
        buf = self._buf
        o = 2 + _FIXED_SIZE
        klen = buf[o - 1]
        if klen > _KIND_MAX or _FIXED_SIZE + klen + 1 > n:
            return False
        tlen = buf[o + klen]
        if _FIXED_SIZE + klen + 1 + tlen != n:
            return False
        return is_utf8(buf, o, o + klen) and is_utf8(buf, o + klen + 1, o + klen + 1 + tlen)

    def _text_len(self):
        # the record's text's bytes on the wire: one longer than TEXT_MAX (only ever
        # made by hand) cut with "..." as the encoder cuts it
        b = self._buf
        t = 2 + _FIXED_SIZE + b[2 + _FIXED_SIZE - 1] + 1
        n = b[t - 1]
        if n <= TEXT_MAX:
            return n
        n = TEXT_MAX - 3
        while b[t + n] & 0xC0 == 0x80:
            n -= 1
        return n + 3

    def _put(self, buf, o):
        # the record in the buffer as LOG_R's entry, written into buf at o; its end
        r = self._buf
        for i in range(10, 18):  # at_ms: an MS is never NONE_MS (the encoder's check)
            if r[i] != 0xFF:
                break
        else:
            raise ValueError("LOG_R.entries.at_ms: %d out of MS range" % NO_WALL)
        for i in range(_WIRE_FIXED):
            buf[o + i] = r[2 + i]
        o += _WIRE_FIXED
        k = 2 + _FIXED_SIZE
        klen = r[k - 1]
        buf[o] = klen
        for i in range(klen):
            buf[o + 1 + i] = r[k + i]
        o += 1 + klen
        buf[o] = r[k - 2]  # code
        t = k + klen + 1
        n = self._text_len()
        buf[o + 1] = n
        o += 2
        cut = n != r[t - 1]
        for i in range(n - 3 if cut else n):
            buf[o + i] = r[t + i]
        o += n
        if cut:
            buf[o - 3] = buf[o - 2] = buf[o - 1] = 46  # "..."
        return o

    def _walk(self, first, room, most, buf, o):
        # page_into()'s entries written into buf from o, each costing its wire size:
        # their count (_at: see __init__)
        count = 0
        nxt = max(first, self.oldest)
        name = self._at[_NAME]
        if name is not None and first >= self._at[_SEQ]:
            pos = self._at[_POS]  # nothing at or past first before it
        elif self._cur_first is not None and first >= self._cur_first:
            name = self._cur  # nothing older than first in the older segment
            pos = 0
        else:
            name = self._old
            pos = 0
        self._at[_NAME] = self._win[0] = None
        while True:
            size = self._store.size(name) or 0
            while True:
                pos = self._find(name, pos, size)
                if pos < 0:
                    break
                seq = self._seq_at()
                if seq >= first:
                    cost = _ENTRY_WIRE + self._buf[2 + _FIXED_SIZE - 1] + self._text_len()
                    if count and (count >= most or cost > room):
                        self._at[_SEQ] = nxt
                        self._at[_NAME] = name
                        self._at[_POS] = pos
                        break
                    o = self._put(buf, o)
                    count += 1
                    room -= cost
                    nxt = seq + 1
                pos += self._buf[1] + 6
            if self._at[_NAME] is not None or name == self._cur:
                break
            name = self._cur
            pos = 0
        self._at[_NXT] = nxt
        self._at[_END] = o
        return count

    def page_into(self, first, room, most, buf, o):
        """LOG_R's payload written into buf at o straight from the records: oldest,
        next (the seq to ask for next), the count of the entries with seq >= first,
        oldest first, at most most of them and, past the first, only while their wire
        size fits room, and the entries. Its end (tests/portable/coreview.py's page()
        reads them back as LOG_R's fields)."""
        n = self._walk(first, room, most, buf, o + 9)
        if self._at[_NXT] > 0xFFFFFFFF:  # after a record of seq 2**32-1 (made by hand)
            raise ValueError("LOG_R.next: %d out of U32 range" % self._at[_NXT])
        struct.pack_into("<II", buf, o, self.oldest, self._at[_NXT])
        buf[o + 8] = n
        return self._at[_END]

    def put(self, buf, o, lim):
        """LOG_R's payload for LOG's first (asked) as messages.wire() takes a payload
        that writes itself: page_into() with the room lim leaves for the entries."""
        return self.page_into(self.asked, lim - o - 9, _LOG_PAGE, buf, o)
