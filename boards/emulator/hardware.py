"""The emulated board's hardware, modelled on the host (CPython only: never in a bundle).

Each class offers exactly the primitives the shell uses on a real board (the board
contract, ``boards/__init__.py``): a link with ``readinto``/``write``, a clock with
MicroPython's ``ticks_ms``/``ticks_diff``/``sleep_ms``, one motor per channel with
``set_rate``/``delivered``/``fault``, an alarm output and a watchdog. The store is the
``FileStore`` over the state directory (``boards/drivers/filestore.py``), as on a Pico.
"""

import errno
import os
import select
import socket
import sys
import time
import tty

from protocol.catalog import PRIORITY_NAMES

_PERIOD = 1 << 30  # MicroPython's ticks wrap here (about 12.4 days of milliseconds)
_ADVANCE_STEP_MS = 1000  # how far one shell step may jump while fast-forwarding
_MS_PER_HOUR = 3_600_000


class VirtualClock:
    """Virtual milliseconds running ``scale`` times real time, wrapping like a board's.

    ``start`` is the first tick value: start it a little before the 2**30 wrap and the
    firmware's non-wrapping uptime is exercised on every run. ``advance(ms)``
    fast-forwards: the next ticks_ms() calls each jump at most one second, so the shell
    still steps through the skipped time (tapers, delivered volume) one second at a time.
    """

    def __init__(self, scale=1, start=0):
        self._scale = scale
        self._t0 = time.monotonic()
        self._offset = start
        self._pending = 0
        # What sleep_ms() waits with (seconds): the emulator sets one that serves the
        # link and its control commands meanwhile.
        self.idle = time.sleep

    def now(self):
        """Non-wrapping virtual milliseconds (the emulator's own view of time)."""
        return self._offset + int((time.monotonic() - self._t0) * 1000 * self._scale)

    def advance(self, ms):
        self._pending += ms

    def fast_forwarding(self):
        return self._pending > 0

    def ticks_ms(self):
        if self._pending:
            step = min(self._pending, _ADVANCE_STEP_MS)
            self._offset += step
            self._pending -= step
        return self.now() % _PERIOD

    @staticmethod
    def ticks_diff(a, b):
        return (a - b + _PERIOD // 2) % _PERIOD - _PERIOD // 2

    def sleep_ms(self, ms):
        # The shell idles here between loop turns: wait for the link or a control
        # command instead of sleeping blindly, unless time is being fast-forwarded.
        if self._pending:
            return
        self.idle(min(ms / 1000 / self._scale, 0.005))


class SyringePump:
    """One channel's syringe driver: integrates delivered volume from the motor rate.

    Volumes in millionths of mL, rates in millionths of mL/h, like the firmware. The
    syringe starts full (``capacity``). An occlusion or air in line stops the flow
    until cleared; a syringe pushed to its end reports ``syringe_empty``.
    """

    def __init__(self, clock, capacity):
        self._clock = clock
        self.capacity = capacity
        self.left = capacity
        self.rate = 0
        self.pumped = 0  # total since power-on, for the emulator's own status
        self.fault_kind = None
        self._last = clock.now()
        self._carry = 0  # rate x ms not yet a whole millionth of a mL
        self._owed = 0  # delivered but not yet reported to the firmware

    def _integrate(self):
        now = self._clock.now()
        elapsed = now - self._last
        self._last = now
        if not self.rate or self.fault_kind in ("occlusion", "air_in_line"):
            return
        self._carry += self.rate * elapsed
        volume = min(self._carry // _MS_PER_HOUR, self.left)
        self._carry -= volume * _MS_PER_HOUR
        self.left -= volume
        self.pumped += volume
        self._owed += volume
        if not self.left:
            self.fault_kind = "syringe_empty"

    def set_rate(self, rate):
        self._integrate()
        self.rate = rate

    def delivered(self):
        self._integrate()
        volume, self._owed = self._owed, 0
        return volume

    def fault(self):
        return self.fault_kind

    def inject(self, kind):
        self._integrate()
        if kind == "syringe_empty":
            self.left = 0
        self.fault_kind = kind

    def clear(self):
        """Clear an occlusion or air in line; an empty syringe needs refill()."""
        if self.fault_kind != "syringe_empty":
            self.fault_kind = None

    def refill(self):
        self._integrate()
        self.left = self.capacity
        self.fault_kind = None


class PtyLink:
    """The protocol link as a pseudo-terminal: the host opens ``path`` like a serial port.

    The master side is non-blocking; bytes written while nobody reads are dropped once
    the PTY buffer is full, as a UART with nobody listening drops them. The slave stays
    open here too, so the master never sees a hang-up between host sessions.
    """

    def __init__(self):
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        self.url = self.path
        self.silent = False  # fault injection: the line carries nothing either way

    def fileno(self):
        return self._master

    def readinto(self, buf):
        try:
            n = os.readv(self._master, [buf])
        except BlockingIOError:
            return 0
        return 0 if self.silent else n

    def write(self, data):
        if self.silent:
            return
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self._master, view) :]
            except BlockingIOError:
                return

    def close(self):
        os.close(self._master)
        os.close(self._slave)


class TcpLink:
    """The protocol link as a TCP server (``socket://127.0.0.1:PORT``), one host at a time."""

    def __init__(self, port, host="127.0.0.1"):
        self._server = socket.create_server((host, port))
        self._server.setblocking(False)
        self._client = None
        self.url = f"socket://{host}:{self._server.getsockname()[1]}"
        self.silent = False

    def fileno(self):
        return (self._client or self._server).fileno()

    def _accept(self):
        try:
            client, _ = self._server.accept()
        except BlockingIOError:
            return
        if self._client:
            self._client.close()  # a new session replaces a stale one
        client.setblocking(False)
        self._client = client

    def readinto(self, buf):
        self._accept()
        if not self._client:
            return 0
        try:
            n = self._client.recv_into(buf)
        except BlockingIOError:
            return 0
        except OSError:
            n = 0
        if not n:
            self._client.close()
            self._client = None
            return 0
        return 0 if self.silent else n

    def write(self, data):
        if self.silent or not self._client:
            return
        try:
            self._client.sendall(data)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EPIPE, errno.ECONNRESET):
                raise

    def close(self):
        if self._client:
            self._client.close()
        self._server.close()


class WatchdogReset(BaseException):
    """Raised out of the shell's loop when the virtual watchdog was not fed in time.

    Not an error but the board's reset, unwinding the firmware's call stack: so, as
    SystemExit, not an Exception, which no ``except Exception`` in the firmware could
    swallow (the emulator's server.py catches it by name)."""


class Watchdog:
    """Starves after ``timeout_ms`` virtual ms without feed(): the emulator then resets."""

    def __init__(self, clock, timeout_ms):
        self._clock = clock
        self._timeout = timeout_ms
        self._fed = clock.now()

    def feed(self):
        self._fed = self._clock.now()

    def check(self):
        if self._clock.now() - self._fed > self._timeout:
            raise WatchdogReset(f"watchdog not fed for {self._timeout} ms")


class AlarmOutput:
    """The buzzer and LED: reports each change of alarm level on stderr."""

    def __init__(self, log=sys.stderr):
        self.level = 0
        self._log = log

    def set(self, level):
        if level != self.level:
            self.level = level
            print(
                f"emulator: alarm output {PRIORITY_NAMES.get(level, 'off')}",
                file=self._log,
                flush=True,
            )


def wait_readable(fds, timeout):
    """select() on the given file descriptors; the ready ones."""
    ready, _, _ = select.select(fds, (), (), timeout)
    return ready
