"""A fault-injecting relay between a host and a device link: the noisy wire of issue 10.

::

    with Relay(emu.port, Faults(ber=1e-3), seed=1) as relay:
        with pumpguard.connect(relay.port) as pump:   # a PTY of the relay's own
            ...
        relay.counts                                  # what it did, per fault

The relay opens the device's port (a PTY path, as the emulator prints it) and a new PTY
pair whose slave path is ``.port``. Bytes each way are cut into frames at the 0x00
delimiters (the only framing the relay knows: it never reads a header, so it follows
the wire whatever the frame carries) and each frame, independently and per direction:

    drop        lost whole                                   ``drop``
    BER         each bit flipped with probability ``ber``    ``ber``
    delay       held ``delay_s`` at most (others pass it)    ``delay``, ``delay_s``
    duplicate   a second copy delivered up to ``dup_s`` later ``dup``, ``dup_s``
    split       written in two parts ``split_s`` apart        ``split``

``clean()`` suspends the faults for the harness's own reads. Frames that are not
delayed wait behind none: a delayed frame is overtaken, so
reordering follows from delay. Frames due together are written in one go (joined).
"""

import contextlib
import heapq
import math
import os
import random
import select
import threading
import time
import tty
from dataclasses import dataclass


@dataclass(frozen=True)
class Faults:
    """Per-frame fault probabilities and their time bounds (seconds)."""

    ber: float = 1e-3
    drop: float = 0.01
    delay: float = 0.05
    delay_s: float = 0.3
    dup: float = 0.02
    dup_s: float = 1.5
    split: float = 0.05
    split_s: float = 0.02


_NEVER = 1 << 62  # bits to the next flip when nothing flips
_CLEAN = Faults(ber=0, drop=0, delay=0, dup=0, split=0)


class _Direction:
    """One direction's frames: cut at delimiters, faulted, scheduled."""

    def __init__(self, name, out_fd, faults, rng, counts):
        self.name = name
        self.out_fd = out_fd
        self.faults = faults
        self._rng = rng
        self._counts = counts
        self._partial = bytearray()
        self._next_bit = self._gap()

    def _gap(self):
        # Bits until the next flipped one: geometric, so BER costs nothing per byte.
        ber = self.faults.ber
        if ber <= 0:
            return _NEVER
        return int(math.log(1.0 - self._rng.random()) / math.log(1.0 - ber))

    def _flip(self, frame):
        bits = len(frame) * 8
        if self._next_bit >= bits:
            self._next_bit -= bits
            return frame
        out = bytearray(frame)
        pos = self._next_bit
        while pos < bits:
            out[pos // 8] ^= 1 << (pos % 8)
            self._counts["bit flips"] += 1
            pos += 1 + self._gap()
        self._next_bit = pos - bits
        return bytes(out)

    def feed(self, data, now, schedule):
        self._partial += data
        while True:
            end = self._partial.find(0, 1)
            if end < 0:
                return
            body = bytes(self._partial[: end + 1]).strip(b"\x00")
            del self._partial[:end]  # keep this delimiter: it opens the next frame
            if body:
                self._frame(b"\x00" + body + b"\x00", now, schedule)

    def _frame(self, frame, now, schedule):
        f, rng, counts = self.faults, self._rng, self._counts
        counts["frames " + self.name] += 1
        if rng.random() < f.drop:
            counts["dropped"] += 1
            return
        if f.ber > 0:
            frame = self._flip(frame)
        at = now
        if rng.random() < f.delay:
            counts["delayed"] += 1
            at += rng.uniform(0, f.delay_s)
        if rng.random() < f.split and len(frame) > 2:
            counts["split"] += 1
            cut = rng.randrange(1, len(frame))
            schedule(at, self.out_fd, frame[:cut])
            schedule(at + f.split_s, self.out_fd, frame[cut:])
        else:
            schedule(at, self.out_fd, frame)
        if rng.random() < f.dup:
            counts["duplicated"] += 1
            schedule(now + rng.uniform(0, f.dup_s), self.out_fd, frame)


class Relay:
    """The relay as a context manager; ``port`` is the path the host opens."""

    def __init__(self, device_port, faults=None, seed=0):
        self.faults = faults or Faults()
        self.counts = _Counts()
        self._rng = random.Random(seed)
        self._device = os.open(device_port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self._device)
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.port = os.ttyname(self._slave)
        self._up = _Direction("to device", self._device, self.faults, self._rng, self.counts)
        self._down = _Direction("to host", self._master, self.faults, self._rng, self.counts)
        self._queue = []  # (due, n, fd, bytes)
        self._n = 0
        self._lock = threading.Lock()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="soak-relay", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._stop = True
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        for fd in (self._device, self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    @contextlib.contextmanager
    def clean(self):
        """No new faults while inside (frames already scheduled still land late): for
        the harness's own checks, which measure the device and are not under test."""
        for d in (self._up, self._down):
            d.faults = _CLEAN
        try:
            yield self
        finally:
            for d in (self._up, self._down):
                d.faults = self.faults

    def _schedule(self, due, fd, data):
        self._n += 1
        heapq.heappush(self._queue, (due, self._n, fd, data))

    def _run(self):
        sources = {self._master: self._up, self._device: self._down}
        while not self._stop:
            now = time.monotonic()
            wait = 0.05
            if self._queue:
                wait = max(0.0, min(wait, self._queue[0][0] - now))
            try:
                ready, _, _ = select.select(list(sources), [], [], wait)
            except OSError:
                return  # a port closed under us: the device powered off
            now = time.monotonic()
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""  # EIO: the other end is closed (device off, host gone)
                if data:
                    sources[fd].feed(data, now, self._schedule)
            self._deliver(time.monotonic())

    def _deliver(self, now):
        due = {}
        while self._queue and self._queue[0][0] <= now:
            _at, _n, fd, data = heapq.heappop(self._queue)
            due.setdefault(fd, bytearray()).extend(data)
        for fd, data in due.items():  # frames due together go in one write: joined
            try:
                n = os.write(fd, data)
            except BlockingIOError:
                n = 0
            except OSError:
                self.counts["write failed"] += 1
                continue
            if n < len(data):  # the PTY's buffer is full: the rest goes next turn
                self._schedule(now + 0.001, fd, bytes(data[n:]))


class _Counts(dict):
    def __missing__(self, key):
        return 0
