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
from micropython import const

import boards
from firmware import druglib, persist

# What the running pump holds, imported before the boot's module: the boot's code,
# dropped after it, then leaves one free stretch, not holes between them (imported
# after the library's parse instead, the pump's modules and its log ring found no
# 5 KB stretch left at 232k: measured, issue 14).
from firmware.core import SafetyCore
from firmware.shell import Shell

# The boot's modules (druglib.call: imported for the call, dropped after it): startup.py
# and the restore's re-verification it runs (resume.py, SafetyCore.restore()'s import).
_BOOT = const(("startup", "resume"))
_SAFE_BOOT = const("safeboot")
_SAFE_BOOT_USED = const("safeboot.used")


# The stretch kept through the boot for the shell: its dict, and its requests' modules
# (gate.py and handlers.py, 12 KB of the 64-bit unix port's heap), imported as the first
# shell is made: after the boot, not beside a restoring boot's peak (the boot's code and
# the record's parse, which found no stretch at 184-187k with them: measured). The
# boot's code, dropped by then, leaves holes too small for their dicts' 752 B (a
# restoring boot failed there at 180-184k without this; with 2-3 KB kept, both boots
# in every size of 181-190k).
_SHELL_ROOM = const(2560)

# The stretch kept for the core's log ring through the library's load: the ring and the
# few small objects the core makes before it.
_RING_ROOM = const(6144)


def _first(board, store):
    """(record, library, [core]): the state record (its buffer, 512 B, held for the pump's
    life, made first), the active library (druglib.active(), its text never read whole)
    and a core for them, not yet restored, made before the boot's module is imported:
    its log ring (64 entries of 10 references: 5,120 B on the 64-bit unix port) lands
    in the stretch kept for it from before the library's load, which, like the boot's
    code, leaves no such stretch (measured, issue 14: at 192-200k a boot failed there,
    the ring made after startup.py's imports; at 190k a restoring boot, the ring made
    after the library's load)."""
    room = bytearray(_RING_ROOM)  # the ring's stretch, kept through the library's load
    record = persist.Record(store)
    lib = druglib.active(store, room)  # (room its buffer for each drug's bytes meanwhile)
    room = None  # noqa: F841  (free for the ring: the core is the next made)
    core = SafetyCore(
        lib,
        channels=board.CHANNELS,
        max_rate=board.MAX_RATE,
        link_timeout_ms=board.LINK_TIMEOUT_MS,
        near_empty_s=board.NEAR_EMPTY_S,
    )
    return record, lib, [core]  # a list: startup.restore() restores into its core or pops it


def build(board, ports, boot_id, bundle=""):
    """The shell for this board and ports, with the active library, every channel
    restored from the store and the board's keys loaded from it (firmware/startup.py)."""
    record, lib, fresh = _first(board, ports["store"])
    core, args = druglib.call(_BOOT, "prepared", board, ports, boot_id, bundle, record, lib, fresh)
    return Shell(core, board, **args)  # made with the boot's code collected


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
    record, lib, fresh = _first(board, store)
    room = bytearray(_SHELL_ROOM)  # the shell's stretch, kept through the boot
    core, args = druglib.call(_BOOT, "start", board, ports, boot_id, bundle, record, lib, fresh)
    room = None  # noqa: F841  (free for the shell's and its modules' dicts, made next)
    # made and begun with the boot's code collected: its buffers need none of that heap
    shell = Shell(core, board, **args)
    shell.begin()
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
        import os  # here: a board's main.py names its board, and this dict holds one entry less

        name = boards.detect(os.uname().machine)
        if name is None:
            print("pumpguard: no board definition matches %r" % os.uname().machine)
            return
    _loop(boot(name))


def _loop(shell):
    if shell is not None:  # None: a safe boot, the REPL is left to the engineer
        while True:
            shell.turn()
