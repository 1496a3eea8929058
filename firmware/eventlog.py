# Bounded ring of events: every command, decision, rate change and alarm, with its time.
#
# The ring is allocated once; when full, the oldest entry is overwritten. seq numbers
# keep counting, so a reader (the shell streaming events to the host) asks for entries
# since the last seq it saw and can tell from a gap that some were overwritten.


class EventLog:
    """Entries are tuples (seq, at_ms, ch, kind, code, text).

    kind: the command's name (start, titrate, stop, emergency_stop, ack: as received,
    code "received"), "decision" (its Result), "rate" (motor rate change), "alarm"
    (raised), "input" (library, link, restore). code is always a reason name
    (protocol/reasons.py lists them). ch 0 means the whole device.
    """

    def __init__(self, size):
        if size < 1:
            raise ValueError("log size must be at least 1, not %r" % (size,))
        self._ring = [None] * size  # type: list[tuple | None]
        self._next = 0  # seq of the next entry; its slot is _next % size
        self.size = size

    def add(self, at_ms, ch, kind, code, text):
        seq = self._next
        self._ring[seq % self.size] = (seq, at_ms, ch, kind, code, text)
        self._next = seq + 1
        return seq

    def __len__(self):
        return min(self._next, self.size)

    @property
    def next_seq(self):
        return self._next

    def since(self, seq):
        """Entries with seq >= seq still held, oldest first (none for any seq from the
        future: a host may ask for any u32, and a range() past 2**30 would overflow a
        small int on MicroPython)."""
        if seq >= self._next:
            return []
        first = max(seq, self._next - self.size, 0)
        return [self._ring[s % self.size] for s in range(first, self._next)]

    def entries(self):
        return self.since(0)

    def last(self):
        return self._ring[(self._next - 1) % self.size] if self._next else None
