"""Exactly once: the device's cache of the answer to each session's last request.

The shell asks the cache before executing a request and stores the response after::

    wire = cache.lookup(frame.sid, frame.seq, frame.crc)
    if wire is None:
        ... refuse it as stale if its seq is not newer than the session's last one ...
        wire = execute(frame)              # encoded response frame, wire bytes
        cache.store(frame.sid, frame.seq, frame.crc, wire)
    port.write(wire)

A retry is byte-identical to the first attempt: same sid, seq and CRC. The cache keeps
one answer per session, the answer to the last request that session ran: a host has
one request outstanding, so that is the only one it can still be retrying. With as
many slots as the device has sessions (firmware/sessions.py), no host's requests can
push another host's answer out. Any older request of the session is not in the cache
and is refused as stale by the session table, never run again (protocol/SPEC.md §3).
The cache lives in RAM and starts empty at boot; an evicted session's entry is
forgotten with it. HELLO is neither looked up nor stored: it opens a new session.
"""

from protocol.frame import MAX_WIRE


class ReplayCache:
    def __init__(self, size=4):
        self.size = size
        self._sid = [0] * size  # 0: empty slot (no session has sid 0)
        self._seq = [0] * size
        self._crc = [0] * size
        self._len = [0] * size
        self._wire = [bytearray(MAX_WIRE) for _ in range(size)]
        self._next = 0  # the slot taken when every slot holds another session's answer

    def lookup(self, sid, seq, crc):
        """The cached response wire bytes to a retry of this request, or None."""
        for i in range(self.size):
            if self._sid[i] == sid and sid and self._seq[i] == seq and self._crc[i] == crc:
                return memoryview(self._wire[i])[: self._len[i]]
        return None

    def store(self, sid, seq, crc, wire):
        """Keep the response `wire` (at most MAX_WIRE bytes) to session sid's request
        (seq, crc), in place of that session's previous one."""
        if len(wire) > MAX_WIRE:
            raise ValueError("response of %d bytes exceeds %d" % (len(wire), MAX_WIRE))
        if not 0 < sid <= 0xFFFF:
            raise ValueError("sid %d is not a session" % sid)
        i = self._slot(sid)
        self._sid[i] = sid
        self._seq[i] = seq
        self._crc[i] = crc
        self._len[i] = len(wire)
        self._wire[i][: len(wire)] = wire

    def _slot(self, sid):
        free = -1
        for i in range(self.size):
            if self._sid[i] == sid:
                return i
            if free < 0 and not self._sid[i]:
                free = i
        if free >= 0:
            return free
        # More sessions than slots (a cache built smaller than the session table):
        # round robin; a retry whose answer went is then refused as stale, not run.
        i = self._next
        self._next = (i + 1) % self.size
        return i

    def forget(self, sid):
        """Drop session sid's answer (the session was closed)."""
        for i in range(self.size):
            if self._sid[i] == sid:
                self._sid[i] = 0
