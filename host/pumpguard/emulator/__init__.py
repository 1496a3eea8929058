"""The emulator: the unchanged firmware shell on emulated hardware, in its own process.

``pumpguard emulate`` (or ``pumpguard.Emulator`` from Python) runs ``firmware/main.py``
with the ports of ``boards/emulator/hardware.py``: a PTY (or a TCP server) for the protocol link,
a virtual clock running ``--time-scale`` times real time (at most one virtual second per
loop turn: a stall of the host never jumps the firmware's clock further), one syringe
model per channel and a directory as the store. The first line on stdout is the port to
open, printed once the firmware answers on it (``probe.py``): a PTY path such as
``/dev/pts/5``, or ``socket://127.0.0.1:PORT`` with ``--tcp``.

Fault injection, while it runs: one command per line on the emulator's stdin (type it
in the terminal running ``pumpguard emulate``, or call ``Emulator.command()``); each
gets one line back on stdout, ``ok ...`` or ``error ...``. ``CONTROL_HELP`` lists them.
Run as a background job (``pumpguard emulate &``), it leaves the terminal to the
shell: it reads the terminal only while in the foreground (``fg``) and never stops
for it (SIGTTIN ignored), so it goes on serving the link. Its owner: a stdin that is a
pipe (``Emulator``'s) and ends means the process that started it died, and it quits.

The emulated syringe: each channel's takes the board's ``SYRINGES_ML`` (10, 20 and
50 mL on ``emulator``); a full 50 mL one is loaded at power-on and after ``refill CH``.
A start fills it with the volume it programs (``load()``, at most the syringe's size),
unless ``load CH ML`` loaded another since, which that start keeps: the firmware reads
the plunger's place (``left()``), so a syringe holding less than was typed alarms near
empty before it runs dry. ``pumps`` shows the emulated ones.

Power loss: kill the process with SIGKILL and start it again with the same
``--state-dir``; the firmware restores its channels from the store
(``Emulator.power_cycle()`` does both). A watchdog the firmware stops feeding resets
the emulated board the same way, without killing the process (the watchdog counts real
time and fast-forwarded time, never the scaled time); firmware that dies (a
store it cannot write) leaves it unfed, so it resets the board too. One emulator per
state directory: a second one on it refuses to start (``emulator.lock``). SIGTERM
stops it as ``quit`` does; either removes the state directory it made itself (never one given
with ``--state-dir``).

Runtimes: ``cpython`` (default) imports the firmware's sources into this process;
``micropython`` runs the board's compiled bundle on the real MicroPython interpreter
(``micropython.py``). The ports, and so everything the host sees, are the same. A
runtime that cannot start (no ``node`` on PATH) is an error before any port is printed.

Modules: ``server.py`` (the board's life: boot, watchdog reset, safe boot, factory
reset), ``probe.py`` (whether the firmware answers yet), ``control.py`` (the stdin
commands), ``micropython.py`` and ``mp_emulator.mjs`` (the MicroPython runtime),
``process.py`` (``Emulator``, the subprocess for scripts and tests).

Safe boot: a file named ``safeboot`` in the state directory makes the next boot leave
the pump loop unstarted, as on a board (``firmware/main.py``): the emulated board then
sits at its REPL, answering nothing on the link, until quit or power loss.
"""

from ..errors import EmulatorError, FirmwareDied
from .control import CONTROL_HELP
from .process import Emulator
from .server import RUNTIMES, serve, syringe_help

__all__ = [
    "CONTROL_HELP",
    "RUNTIMES",
    "Emulator",
    "EmulatorError",
    "FirmwareDied",
    "serve",
    "syringe_help",
]
