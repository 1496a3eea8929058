# Board registry: name -> module holding that board's definition, the way esptool
# keeps CHIP_DEFS. A board module is data (channels, pins, calibration, limits) plus,
# for real hardware, a make_ports() that binds the pins when it is called: importing a
# board touches no hardware, so the registry can be listed and searched freely.
#
# Fields every board module defines:
#   NAME             registry name
#   MACHINE          text found in os.uname().machine on that board (None: emulator)
#   CHANNELS         pump channels (numbered from 1)
#   MAX_RATE         mechanical maximum rate, millionths of mL/h
#   SYRINGE_ML       syringe capacity, millionths of mL
#   LINK_TIMEOUT_MS  host silence before the link-loss alarm
#   NEAR_EMPTY_S     time-to-empty at which the near-empty alarm rises
#   WATCHDOG_MS      watchdog timeout (fed only while the loop is healthy)
#   MPY_ARCH         mpy-cross -march for its CPU, or None for portable bytecode
# and real boards also:
#   make_ports()     {"link", "motors", "clock", "store", "alarm", "watchdog"} (shell.py)
#   STATE_DIR        the store's directory (pumpguard flash --repl writes safeboot there)
#   safe_boot()      True when the board is held in safe boot (loop and watchdog off)

_BOARDS = {
    "emulator": "boards.emulator",
    "pico": "boards.pico",
}


def names():
    return sorted(_BOARDS)


def get(name):
    """The board module registered as name; ValueError names the known boards."""
    if name not in _BOARDS:
        raise ValueError("unknown board %r (known: %s)" % (name, ", ".join(names())))
    return __import__(_BOARDS[name], None, None, ("_",))


def detect(machine):
    """The name of the board whose MACHINE text appears in machine, else None."""
    for name in names():
        wanted = get(name).MACHINE
        if wanted and wanted in machine:
            return name
    return None
