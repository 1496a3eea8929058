"""Exactly once: the device's cache of its last responses, by request.

The shell asks the cache before executing a request and stores the response after::

    wire = cache.lookup(frame.seq, frame.crc)
    if wire is None:
        wire = execute(frame)              # encoded response frame, wire bytes
        cache.store(frame.seq, frame.crc, wire)
    port.write(wire)

A retry is byte-identical to the first attempt, so it has the same seq and the same
CRC; a new request that happens to reuse a seq (a restarted host, seq wrap) has a
different CRC and executes. The window is the last `size` requests. The cache lives
in RAM and starts empty at boot; HELLO clears it, and every request other than HELLO
is refused with ERR_HELLO_REQUIRED until a HELLO matched, so a retry that crosses a
device reset is answered "hello required", never executed a second time. HELLO itself
is neither looked up nor stored: every session opens with the same HELLO frame, whose
cached answer would carry the session before into the new one (protocol/SPEC.md §3).
"""

from protocol.frame import MAX_WIRE


class ReplayCache:
    def __init__(self, size=4):
        self.size = size
        self._seq = [-1] * size  # -1: empty slot
        self._crc = [0] * size
        self._len = [0] * size
        self._wire = [bytearray(MAX_WIRE) for _ in range(size)]
        self._next = 0  # slot the next new request overwrites (oldest first)

    def lookup(self, seq, crc):
        """The cached response wire bytes to a retry of this request, or None."""
        for i in range(self.size):
            if self._seq[i] == seq and self._crc[i] == crc:
                return memoryview(self._wire[i])[: self._len[i]]
        return None

    def store(self, seq, crc, wire):
        """Keep the response `wire` (at most MAX_WIRE bytes) to request (seq, crc)."""
        if len(wire) > MAX_WIRE:
            raise ValueError("response of %d bytes exceeds %d" % (len(wire), MAX_WIRE))
        i = self._next
        for j in range(self.size):
            if self._seq[j] == seq:
                i = j  # a reused seq replaces its stale entry instead of another one
                break
        else:
            self._next = (i + 1) % self.size
        self._seq[i] = seq
        self._crc[i] = crc
        self._len[i] = len(wire)
        self._wire[i][: len(wire)] = wire

    def clear(self):
        for i in range(self.size):
            self._seq[i] = -1
