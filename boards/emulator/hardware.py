"""The emulated board's hardware, modelled on the host (CPython only: never in a bundle).

Each class offers exactly the primitives the shell uses on a real board (the board
contract, ``boards/__init__.py``): a link with ``readinto``/``write``, a clock with
MicroPython's ``ticks_ms``/``ticks_diff``/``sleep_ms``, one motor per channel with
``set_rate``/``delivered``/``fault``, an alarm output, a watchdog and ``Entropy``
(``random(n)``: the host's ``os.urandom``). The store is the
``FileStore`` over the state directory (``boards/drivers/filestore.py``), as on a Pico.
"""

import errno
import os
import select
import socket
import sys
import time

from protocol.catalog import PRIORITY_NAMES

_PERIOD = 1 << 30  # MicroPython's ticks wrap here (about 12.4 days of milliseconds)
# The most one reading of ticks_ms() moves virtual time, fast-forwarding or not: the
# shell steps through any skipped time (tapers, delivered volume) a second at a time,
# and a scheduling stall of the host never jumps the firmware's clock further per turn.
_STEP_MS = 1000
# The longest a quiet loop turn waits (virtual ms, and never more real ms): sleep_ms()
# waits for the link or a control command, so a frame or a command wakes the firmware at
# once whatever the wait; only what the firmware times itself (a due tick, a save) may
# come this much later. The firmware asks for 1 ms per turn: waited so, an idle emulator
# turns its loop about 1000 times a second (measured: 18% of a core for a WebAssembly
# one, 6% for CPython); backing off to 50 ms after quiet turns, 1.5% and 0.55%; to
# 200 ms, 0.35% and 0.15% (a test run keeps two idle emulators per pytest worker).
IDLE_MAX_MS = 200
_MS_PER_HOUR = 3_600_000


def _sleep(timeout) -> bool:
    time.sleep(timeout)
    return False  # nothing heard: there is nothing to hear


class VirtualClock:
    """Virtual milliseconds running ``scale`` times real time, wrapping like a board's.

    ``start`` is the first tick value: start it a little before the 2**30 wrap and the
    firmware's non-wrapping uptime is exercised on every run. Virtual time moves only
    when the firmware reads ``ticks_ms()`` (once per loop turn), by the scaled real time
    since the last reading, plus what ``advance(ms)`` asked to fast-forward, but never
    by more than ``_STEP_MS`` per reading: real time beyond that (a stall of this
    process at a high scale) is never given to the firmware, so the clock then runs
    slower than ``scale``, and everything here (the syringes' volume, ``now()``) counts
    the virtual time the firmware was given, exactly.
    """

    def __init__(self, scale=1, start=0):
        self._scale = scale
        self.restart(start)
        # What sleep_ms() waits with (seconds): the emulator sets one that serves the
        # link and its control commands meanwhile, and returns true when either came.
        self.idle = _sleep

    def restart(self, start):
        """Virtual time from ``start`` again, nothing pending (a new board)."""
        self._virtual = start
        self._real = time.monotonic()  # real time given to virtual time up to here
        self._pending = 0
        self._skipped = 0  # virtual ms given by fast-forwarding, for board_ms()
        self._quiet_ms = 0  # the next quiet turn's wait (virtual ms), backing off

    def now(self):
        """Non-wrapping virtual milliseconds, as of the firmware's last ticks_ms()."""
        return self._virtual

    def board_ms(self):
        """Real milliseconds plus those fast-forwarded: what the board's own timers
        (its watchdog) count, whatever the scale. A stall is as long here as it really
        was; ``advance`` is time passing, for the watchdog too."""
        return int(time.monotonic() * 1000) + self._skipped

    def advance(self, ms):
        self._pending += ms

    def fast_forwarding(self):
        return self._pending > 0

    def ticks_ms(self):
        real = time.monotonic()
        scaled = int((real - self._real) * 1000 * self._scale)
        skip = min(self._pending, _STEP_MS)
        given = min(scaled, _STEP_MS - skip)
        if given < scaled:
            self._real = real  # the rest of this real time is never given
        else:
            self._real += given / 1000 / self._scale  # keeps the fraction of a ms
        self._pending -= skip
        self._skipped += skip
        self._virtual += skip + given
        return self._virtual % _PERIOD

    @staticmethod
    def ticks_diff(a, b):
        return (a - b + _PERIOD // 2) % _PERIOD - _PERIOD // 2

    def sleep_ms(self, ms):
        # The shell idles here between loop turns: wait for the link or a control
        # command instead of sleeping blindly, unless time is being fast-forwarded.
        # After a turn that heard nothing the next waits twice as long, up to
        # IDLE_MAX_MS; anything heard (or a fast-forward) turns it back to ms.
        if self._pending:
            self._quiet_ms = 0
            return
        if self._quiet_ms <= ms:
            heard = self.idle(min(ms / 1000 / self._scale, 0.005))
        else:
            heard = self.idle(min(self._quiet_ms / 1000 / self._scale, IDLE_MAX_MS / 1000))
        self._quiet_ms = 0 if heard else min(2 * max(ms, self._quiet_ms, 1), IDLE_MAX_MS)


class SyringePump:
    """One channel's syringe driver: integrates delivered volume from the motor rate.

    Volumes in millionths of mL, rates in millionths of mL/h, like the firmware.
    ``sizes``: the syringes the board takes; the largest, full, is loaded at power-on.
    A start loads the syringe with the volume it programmed (``load()``, the
    firmware's), unless ``fill()`` (the control's ``load CH ML``) loaded another since:
    that one is kept, so a syringe holding less than was typed can be modelled. What
    the firmware reads as measured (``left()``) is the plunger's place: ``held``. An
    occlusion or air in line stops the flow until cleared; a syringe pushed to its end
    reports ``syringe_empty``.
    """

    def __init__(self, clock, sizes):
        self._clock = clock
        self.sizes = sizes
        self.capacity = sizes[-1]
        self.held = self.capacity
        self._filled = False  # fill() since the last start: the next start keeps it
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
        volume = min(self._carry // _MS_PER_HOUR, self.held)
        self._carry -= volume * _MS_PER_HOUR
        self.held -= volume
        self.pumped += volume
        self._owed += volume
        if not self.held:
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

    def syringe(self):
        return self.capacity

    def load(self, volume):
        self._integrate()
        if not self._filled:
            self.held = volume
        self._filled = False

    def left(self):
        self._integrate()
        return self.held

    def fill(self, volume):
        """A syringe of the smallest size that holds volume, loaded with it (the
        control's ``load CH ML``): kept by the next start, whatever it programs."""
        fits = [size for size in self.sizes if size >= volume]
        if volume <= 0 or not fits:
            raise ValueError(
                f"load: no syringe the board takes holds {volume / 1_000_000:g} mL: more "
                f"than 0 and at most {self.sizes[-1] / 1_000_000:g} mL"
            )
        self._integrate()
        self.capacity = fits[0]
        self.held = volume
        self._filled = True
        if self.fault_kind == "syringe_empty":
            self.fault_kind = None

    def inject(self, kind):
        self._integrate()
        if kind == "syringe_empty":
            self.held = 0
        self.fault_kind = kind

    def clear(self):
        """Clear an occlusion or air in line; an empty syringe needs refill()."""
        if self.fault_kind != "syringe_empty":
            self.fault_kind = None

    def refill(self):
        self._integrate()
        self.held = self.capacity
        self.fault_kind = None


class PtyLink:
    """The protocol link as a pseudo-terminal: the host opens ``path`` like a serial port.

    The master side is non-blocking; bytes written while nobody reads are dropped once
    the PTY buffer is full, as a UART with nobody listening drops them. The slave stays
    open here too, so the master never sees a hang-up between host sessions.
    """

    def __init__(self):
        import tty  # POSIX only, as PTYs are: importing the models (pumpguard) needs none

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

    def drain(self):
        """Drop what the host sent and the firmware has not read (a new board)."""
        while True:
            try:
                if not os.read(self._master, 4096):
                    return
            except BlockingIOError:
                return

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

    def drain(self):
        """Drop the host's connection and what it sent (a new board)."""
        if self._client:
            self._client.close()
            self._client = None

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
    """Starves after ``timeout_ms`` of the board's time (``VirtualClock.board_ms()``:
    real time and fast-forwards, never the scaled time) without feed(): the emulator
    then resets the board. A board's watchdog is its own timer; counting the scaled
    clock instead, a 27 ms stall of this process at --time-scale 1000 was 27 s unfed."""

    def __init__(self, clock, timeout_ms):
        self._clock = clock
        self._timeout = timeout_ms
        self._fed = clock.board_ms()

    def feed(self):
        self._fed = self._clock.board_ms()

    def check(self):
        if self._clock.board_ms() - self._fed > self._timeout:
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


class Entropy:
    """The board's random numbers: the host's os.urandom."""

    def random(self, n):
        return os.urandom(n)


def wait_readable(fds, timeout):
    """select() on the given file descriptors; the ready ones."""
    ready, _, _ = select.select(fds, (), (), timeout)
    return ready
