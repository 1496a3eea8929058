"""The monitor's loop: refresh the screen every interval from the device, read keys
without blocking, hold a supervising session, and connect again after a link failure.

A clinician's session supervises the link (``Pump.keepalive()``): the device raises
link_lost if the monitor falls silent, so a bedside watch that dies is itself an
alarm, and the CLI's one-shot commands in between never are. Another role's session
(a bedside display's monitor key) polls without supervising: the device lets only a
clinician supervise, and the screen says so. Leaving (``q``, Ctrl-C) says goodbye
(SUPERVISE 0): no alarm follows a monitor closed on purpose.
"""

import contextlib
import math
import os
import select
import sys
import time
from dataclasses import dataclass

from rich.live import Live

from ..errors import AuthError, DeviceError, Forbidden, LinkError, ProtocolMismatch, RefusedError
from . import view
from .snapshot import gather

KEY_HELP = "keys: 1-9 acknowledge the alarm of that number, q quits (Ctrl-C too)"
NO_KEYS = "keys off (stdin is not a POSIX terminal): Ctrl-C quits"
_QUIT = ("q", "Q")
_ACK_KEYS = "123456789"
# What a session may die of and come back from: the link (a cable pulled, a device
# rebooting), the device's keys or firmware changed under it (a reflash: it may come
# back as it was). Before the first session only a link failure is waited out; a key
# or a firmware that does not fit is said at once (the CLI exits with its code).
_RETRIED = (LinkError, AuthError, ProtocolMismatch)


def supervise_interval(interval_s):
    """The heartbeat interval to declare for a refresh every interval_s: whole seconds,
    at least 2, so the keepalive thread never talks more than the refresh does."""
    return min(0xFFFF, max(2, math.ceil(interval_s)))


class Keys:
    """Single key presses from ``stream`` when it is a terminal (cbreak mode while the
    ``with`` block runs: no Enter needed, Ctrl-C still interrupts); off otherwise, and on
    Windows, whose console has no termios and no select() (the view runs all the same)."""

    def __init__(self, stream=None):
        stream = sys.stdin if stream is None else stream
        self.fd = None
        if stream is not None and stream.isatty() and os.name == "posix":
            self.fd = stream.fileno()
        self._saved = None

    @property
    def enabled(self):
        return self.fd is not None

    def __enter__(self):
        if self.fd is not None:
            import termios  # POSIX only (fd is None elsewhere): `import pumpguard` needs none
            import tty

            self._saved = (self.fd, termios.tcgetattr(self.fd))
            tty.setcbreak(self.fd)
        return self

    def __exit__(self, *exc):
        if self._saved is not None:
            import termios

            # The terminal's fd, even once get() stopped reading it (a hang-up).
            fd, attrs = self._saved
            self._saved = None
            with contextlib.suppress(termios.error):  # a terminal gone has no mode to restore
                termios.tcsetattr(fd, termios.TCSADRAIN, attrs)

    def get(self, timeout):
        """The next key pressed within ``timeout`` seconds, or None once they passed."""
        if self.fd is None:
            time.sleep(timeout)
            return None
        if not select.select([self.fd], [], [], timeout)[0]:
            return None
        data = os.read(self.fd, 1)
        if not data:
            self.fd = None  # the terminal hung up: no keys from now on
            return None
        return data.decode(errors="replace")


@dataclass
class _Screen:
    keys: str
    snapshot: object = None
    device: object = None
    role: object = None
    problem: object = None
    note: object = None

    def show(self, live):
        live.update(
            view.render(self.snapshot, self.device, self.role, self.problem, self.note, self.keys),
            refresh=True,
        )


@contextlib.contextmanager
def _session(connect, supervise_s):
    # A clinician's session supervises (keepalive: SUPERVISE, heartbeats, goodbye on
    # the way out, whatever ends the block); another role's only polls.
    with connect() as pump:
        if pump.role != "clinician":
            yield pump, 0
            return
        with pump.keepalive(supervise_s):
            yield pump, supervise_s


class _Frames:
    """Off a terminal (a pipe, a log file) rich's Live draws once, when it stops: a
    script reading the monitor would see nothing until it quits. There each refresh is
    printed as a frame of its own instead, one after the other."""

    def __init__(self, console):
        self._console = console

    def update(self, renderable, refresh=False):
        self._console.print(renderable)


def run(connect, console, interval_s, keys):
    """Watch the pump ``connect()`` opens until ``q`` or Ctrl-C, on ``console``.

    ``connect``: no arguments, returns a ``Pump`` (called again after a link failure);
    ``keys``: a ``Keys`` (``get(timeout)``), which also paces the refresh."""
    screen = _Screen(KEY_HELP if keys.enabled else NO_KEYS)
    # Ctrl-C ends the watch: the session has closed (its goodbye said) on the way out.
    with (
        keys,
        (
            Live(console=console, auto_refresh=False)
            if console.is_terminal
            else contextlib.nullcontext(_Frames(console))
        ) as live,
        contextlib.suppress(KeyboardInterrupt),
    ):
        _watch(connect, live, keys, interval_s, screen)


def _watch(connect, live, keys, interval_s, screen):
    linked = False
    while True:
        try:
            with _session(connect, supervise_interval(interval_s)) as (pump, supervise_s):
                linked = True
                screen.problem = None
                while True:
                    screen.snapshot = gather(pump, supervise_s)
                    screen.device, screen.role = pump.device, pump.role
                    screen.show(live)
                    if _keys(keys, interval_s, screen, pump):
                        return
        except _RETRIED as exc:
            if isinstance(exc, Forbidden) or not (linked or isinstance(exc, LinkError)):
                raise
            # No figure stays on screen that the device did not say just now.
            screen.snapshot = None
            screen.problem = f"link lost: {exc}; connecting again every {interval_s:g} s"
            screen.show(live)
            if _keys(keys, interval_s, screen, None):
                return


def _keys(keys, interval_s, screen, pump):
    """Handle the keys pressed until the next refresh is due; True: quit."""
    deadline = time.monotonic() + interval_s
    while True:
        key = keys.get(max(0.0, deadline - time.monotonic()))
        if key is None:
            return False
        if key in _QUIT:
            return True
        if pump is not None and len(key) == 1 and key in _ACK_KEYS:
            screen.note = _ack(pump, screen.snapshot, int(key))
            return False  # refresh now: the alarm shows acknowledged


def _ack(pump, snapshot, n):
    listed = snapshot.listed
    if n > len(listed):
        return f"no alarm {n} listed: nothing acknowledged"
    alarm = listed[n - 1]
    what = f"alarm {alarm.id} ({alarm.code})"
    try:
        pump.ack(alarm.id)
    except (Forbidden, RefusedError, DeviceError) as exc:
        return f"acknowledging {what} refused: {exc}"
    return f"{what} acknowledged"
