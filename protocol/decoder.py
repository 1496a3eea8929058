"""Sans-IO frame decoder: fed bytes in any chunking, it hands out whole verified frames.

It never reads a port; each side's loop feeds it what arrived::

    pos = 0
    while pos < n:
        pos = dec.feed(chunk, pos, n)
        if dec.ready:
            handle(dec.take())

COBS is undone byte by byte into one preallocated buffer of MAX_FRAME bytes, so the
per-byte loop allocates nothing and a frame longer than the limit is dropped before
any byte beyond it is stored (counted `oversize` when the limit is hit). At each 0x00
the buffered frame is checked in this order and counted under the first check it fails:

    bad_cobs    the last COBS block was cut short
    bad_length  shorter than header + CRC
    bad_crc     CRC-32 over frame + CRC is not the residue
    bad_length  len disagrees with the bytes received (the layout the flags give: the
                header is 7 bytes with S, ctr and tag add 12 with A)
    unknown     version/flags byte not 0x10, 0x11 or 0x13, sid 0 with S, or message id
                not in the catalog
    bad_length  len is outside the bounds of that message's fields

A frame that passes is counted in `frames`; take() copies it out before the next feed.
The decoder holds no key: a frame with flag A comes out with its ctr, tag and the
bytes the tag covers (`signed`), and whoever holds the session key checks the tag.

Two delimiters in a row are idle fill and count as nothing.
"""

from protocol import catalog
from protocol.auth import TAG
from protocol.crc import RESIDUE, crc32
from protocol.frame import (
    AUTH_BYTES,
    CTR_BYTES,
    FLAG_AUTH,
    FLAG_SID,
    HEADER,
    MAX_FRAME,
    SID_BYTES,
    TRAILER,
    VERSION_FLAGS,
)

_TAGGED = VERSION_FLAGS | FLAG_SID | FLAG_AUTH
# The version/flags bytes there are: no flag, S, S and A (A alone: a tag needs a session).
_VERFL = (VERSION_FLAGS, VERSION_FLAGS | FLAG_SID, _TAGGED)


class Frame:
    """A verified frame; `crc` identifies a byte-identical retry (see replay.py), `sid`
    the session it belongs to (0: the frame carried none). With flag A: `ctr` the
    sender's counter, `tag` its 8 bytes and `signed` the bytes the tag covers (header,
    sid, payload, ctr); without: ctr 0, tag and signed None."""

    def __init__(self, msg_id, seq, payload, crc, sid=0, ctr=0, tag=None, signed=None):
        self.msg_id = msg_id
        self.seq = seq
        self.payload = payload  # type: bytes | memoryview
        self.crc = crc
        self.sid = sid
        self.ctr = ctr
        self.tag = tag  # type: bytes | bytearray | memoryview | None
        self.signed = signed  # type: bytes | memoryview | None

    def __repr__(self):
        return "Frame(0x%02x, seq=%d, sid=%d, %d bytes%s)" % (
            self.msg_id,
            self.seq,
            self.sid,
            len(self.payload),
            ", ctr=%d" % self.ctr if self.tag is not None else "",
        )


class Decoder:
    def __init__(self, crc=crc32, bounds=None):
        # bounds: {msg_id: (lo, hi)} in place of the catalog's (catalog._LO, _HI)
        self._crc = crc
        self._bounds = bounds
        self._buf = bytearray(MAX_FRAME)
        self._mv = memoryview(self._buf)
        self._n = 0  # unstuffed bytes buffered for the current frame
        self._left = 0  # data bytes still due in this COBS block; 0: next is a code byte
        self._zero = False  # this block stands for its bytes plus a 0x00
        self._empty = True  # nothing since the last delimiter
        self._skip = False  # frame over MAX_FRAME: drop bytes until the next delimiter
        self.ready = False  # a verified frame waits in the buffer for take()
        self._end = 0  # its length, CRC included
        self._head = HEADER  # its header's length: HEADER, or HEADER + SID_BYTES with S
        self._frame = None  # the Frame view() fills in, made at its first call
        self._tag = None  # and the tag's bytes it holds (bytearray(TAG))
        self.frames = 0
        self.bad_crc = 0
        self.oversize = 0
        self.bad_cobs = 0
        self.unknown = 0
        self.bad_length = 0

    def feed(self, data, start=0, end=-1):
        """Consume data[start:end] up to and including the delimiter that completes a
        verified frame (then `ready` is true). Returns the index to continue from."""
        if end < 0:
            end = len(data)
        self.ready = False
        buf = self._buf
        n = self._n
        left = self._left
        zero = self._zero
        empty = self._empty
        skip = self._skip
        limit = MAX_FRAME  # a local: a module global is a dict lookup per byte
        i = start
        while i < end:
            b = data[i]
            i += 1
            if b == 0:
                if not empty and not skip:
                    self.ready = self._check(n, left)
                n = 0
                left = 0
                zero = False
                empty = True
                skip = False
                if self.ready:
                    break
                continue
            empty = False
            if skip:
                continue
            if left:
                left -= 1
            else:
                # A code byte: the previous block's implied 0x00 is data after all.
                if zero:
                    if n == limit:
                        skip = True
                        self.oversize += 1
                        continue
                    buf[n] = 0
                    n += 1
                left = b - 1
                zero = b != 0xFF
                continue
            if n == limit:
                skip = True
                self.oversize += 1
                continue
            buf[n] = b
            n += 1
        self._n = n
        self._left = left
        self._zero = zero
        self._empty = empty
        self._skip = skip
        return i

    def _check(self, n, left):
        buf = self._buf
        if left:
            self.bad_cobs += 1
        elif n < HEADER + TRAILER:
            self.bad_length += 1
        elif self._crc(self._mv[:n]) != RESIDUE:
            self.bad_crc += 1
        else:
            return self._check_header(buf, n)
        return False

    def _check_header(self, buf, n):
        # The layout the flag bits give, so the length is checked before the flags
        # are judged (an unknown combination with a consistent length is `unknown`).
        verfl = buf[0]
        sid = verfl & FLAG_SID
        head = HEADER + SID_BYTES if sid else HEADER
        tail = TRAILER + AUTH_BYTES if verfl & FLAG_AUTH else TRAILER
        if n < head + tail or buf[4] != n - head - tail:
            self.bad_length += 1
        elif verfl not in _VERFL or not self._known(buf[1]):
            self.unknown += 1
        elif sid and buf[HEADER] == 0 and buf[HEADER + 1] == 0:
            self.unknown += 1  # S promises a session id, and 0 is none
        elif not self._fits(buf[1], buf[4]):
            self.bad_length += 1
        else:
            self._end = n
            self._head = head
            self.frames += 1
            return True
        return False

    def _known(self, msg_id):
        if self._bounds is None:
            return catalog._AT[msg_id] != 0
        return msg_id in self._bounds

    def _fits(self, msg_id, n):
        if self._bounds is None:
            k = catalog._AT[msg_id] - 1
            return catalog._LO[k] <= n <= catalog._HI[k]
        return self._bounds[msg_id][0] <= n <= self._bounds[msg_id][1]

    def take(self):
        """The frame `feed` just completed (a copy: the buffer is reused)."""
        buf = self._buf
        mv = self._mv
        n = self._end
        head = self._head
        crc = buf[n - 4] | buf[n - 3] << 8 | buf[n - 2] << 16 | buf[n - 1] << 24
        sid = buf[HEADER] | buf[HEADER + 1] << 8 if head != HEADER else 0
        if buf[0] != _TAGGED:
            payload = bytes(mv[head : n - TRAILER])
            return Frame(buf[1], buf[2] | buf[3] << 8, payload, crc, sid)
        c = n - TRAILER - AUTH_BYTES  # the payload's end, the ctr's start
        ctr = buf[c] | buf[c + 1] << 8 | buf[c + 2] << 16 | buf[c + 3] << 24
        c += CTR_BYTES  # the tag's start: the signed bytes end here
        tag = bytes(mv[c : n - TRAILER])
        payload = bytes(mv[head : c - CTR_BYTES])
        return Frame(buf[1], buf[2] | buf[3] << 8, payload, crc, sid, ctr, tag, bytes(mv[:c]))

    def view(self):
        """take() for the device: the same Frame object each time, its payload and signed
        bytes memoryviews of the buffer, its tag copied into the decoder's own bytearray,
        valid until the next feed (the shell answers a frame before it feeds the next
        bytes)."""
        buf = self._buf
        mv = self._mv
        n = self._end
        head = self._head
        f = self._frame
        if f is None:
            f = self._frame = Frame(0, 0, b"", 0)
        f.msg_id = buf[1]
        f.seq = buf[2] | buf[3] << 8
        f.crc = buf[n - 4] | buf[n - 3] << 8 | buf[n - 2] << 16 | buf[n - 1] << 24
        f.sid = buf[HEADER] | buf[HEADER + 1] << 8 if head != HEADER else 0
        if buf[0] != _TAGGED:
            f.payload = mv[head : n - TRAILER]
            f.ctr = 0
            f.tag = None
            f.signed = None
            return f
        c = n - TRAILER - AUTH_BYTES  # the payload's end, the ctr's start
        f.ctr = buf[c] | buf[c + 1] << 8 | buf[c + 2] << 16 | buf[c + 3] << 24
        f.payload = mv[head:c]
        c += CTR_BYTES
        tag = self._tag  # its 8 bytes copied into the decoder's own: no view made
        if tag is None:
            tag = self._tag = bytearray(TAG)
        for i in range(TAG):
            tag[i] = buf[c + i]
        f.tag = tag
        f.signed = mv[:c]
        return f

    def decode(self, data):
        """Every verified frame in `data` (allocates a list: host side convenience)."""
        out = []
        pos = 0
        while pos < len(data):
            pos = self.feed(data, pos)
            if self.ready:
                out.append(self.take())
        return out

    def counters(self):
        return {
            "frames": self.frames,
            "bad_crc": self.bad_crc,
            "oversize": self.oversize,
            "bad_cobs": self.bad_cobs,
            "unknown": self.unknown,
            "bad_length": self.bad_length,
        }
