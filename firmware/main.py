# The composition root: pick the board, build its ports, restore the core, run the shell.
#
# The one module that puts the parts together, and so the one that imports both the
# firmware and boards/ (nothing else in either does: tests/test_layout.py checks).
#
# On a board, the root /main.py that MicroPython runs at boot is two lines (written by
# `pumpguard flash`, pumpguard/deploy/bundle.py):
#     import firmware.main
#     firmware.main.main("pico")
# The emulator's cpython runtime calls run() with the ports it models on the host; its
# micropython runtime calls boot("emulator", boot_id) and turns the loop itself. From
# here on the code is the same.
#
# The way back to the REPL: a file named "safeboot" in the board's store makes the next
# boot skip the pump loop (and never start the watchdog), once: start() renames it away
# as it reads it, so the boot after that runs the pump again. `pumpguard flash --repl`
# writes it over mpremote and resets the board; a board without USB access uses its
# safe-boot pin instead (boards/pico.py: GP22).
#
# What a boot does (the restored core, the keys, the shell built) is firmware/startup.py,
# imported for the boot and dropped after it: what stays resident while the pump runs is
# the shell and what it calls, not the boot's code. The library is loaded before it
# (druglib.active(): its loader, imported for the call and dropped too), so the boot's
# peak holds the loader or startup.py, never both beside the library's text (measured,
# issue 14: with both, 190k failed in the loader).
import os

from micropython import const

import boards
from firmware import druglib, persist

# What the running pump holds, imported before the boot's module: the boot's code,
# dropped after it, then leaves one free stretch, not holes between them (imported
# after the library's parse instead, the pump's modules and its log ring found no
# 5 KB stretch left at 232k: measured, issue 14).
from firmware.core import SafetyCore  # noqa: F401
from firmware.shell import Shell  # noqa: F401

# The boot's modules (druglib.call: imported for the call, dropped after it): startup.py
# and the restore's re-verification it runs (resume.py, SafetyCore.restore()'s import).
_BOOT = const(("startup", "resume"))
_SAFE_BOOT = const("safeboot")
_SAFE_BOOT_USED = const("safeboot.used")


# The stretch kept for the core's log ring (64 entries of 10 references: 5,120 B on the
# 64-bit unix port) from the library's parse to the core's making, with room for the
# few small objects made before the ring.
_RING_ROOM = const(6144)


def _first(store):
    """(record, library, room): the state record (its buffer, 512 B, held for the pump's
    life, made first) and the active library (firmware/libload.py active()), made before
    the boot's module is imported; then room, a list of one stretch of _RING_ROOM bytes
    that startup.restore() empties just before it makes the core: the boot's code and
    the restore's, imported in between, never leave the ring no stretch to land in
    (measured, issue 14: at 196k and 204k the restoring boot failed there, 5,120 B)."""
    record = persist.Record(store)
    lib = druglib.active(store)
    return record, lib, [bytearray(_RING_ROOM)]


def build(board, ports, boot_id, bundle=""):
    """The shell for this board and ports, with the active library, every channel
    restored from the store and the board's keys loaded from it (firmware/startup.py)."""
    record, lib, room = _first(ports["store"])
    return druglib.call(_BOOT, "build", board, ports, boot_id, bundle, record, lib, room)


def restore(library, board, store):
    """(core, record, uptime): the core of this board restored from the store's record
    (firmware/startup.py restore())."""
    return druglib.call(_BOOT, "restore", library, board, store)


def library_alarm(core, lib, uptime):
    """The standing library_refused alarm of an invalid library (firmware/startup.py)."""
    return druglib.call(_BOOT, "library_alarm", core, lib, uptime)


def start(board, ports, boot_id=None, bundle=None):
    """The shell, begun (motors at their restored rates), or None on a safe boot.

    boot_id: a random 32-bit number (drawn from the board's entropy port when None;
    the emulator's cpython runtime hands in one of its own). bundle: the bundle hash to report
    (read from the manifest when None).
    """
    store = ports["store"]
    if safe_boot_requested(store):
        print("pumpguard: safe boot requested, pump loop not started: the REPL is free")
        return None
    record, lib, room = _first(store)
    shell = druglib.call(_BOOT, "start", board, ports, boot_id, bundle, record, lib, room)
    shell.begin()  # begun with the boot's code collected: the heap it held is free
    return shell


def safe_boot_requested(store):
    """True once after the safeboot file was put in the store; consumes it."""
    if store.read(_SAFE_BOOT) is None:
        return False
    store.rename(_SAFE_BOOT, _SAFE_BOOT_USED)
    return True


def run(board, ports, boot_id=None, bundle=None):
    """Run the pump loop on these ports (see start()); returns only on a safe boot."""
    _loop(start(board, ports, boot_id, bundle))


def boot(name, boot_id=None):
    """The shell of board name on the ports its make_ports() binds, begun; None when the
    board is held in safe boot or a safe boot was requested (see start())."""
    board = boards.get(name)
    if board.safe_boot():
        print("pumpguard: safe boot, pump loop not started")
        return None
    return start(board, board.make_ports(), boot_id)


def main(name=None):
    """Run the board named name, or the one os.uname() identifies."""
    if name is None:
        name = boards.detect(os.uname().machine)
        if name is None:
            print("pumpguard: no board definition matches %r" % os.uname().machine)
            return
    _loop(boot(name))


def _loop(shell):
    if shell is not None:  # None: a safe boot, the REPL is left to the engineer
        while True:
            shell.turn()
