# Board registry (the board contract: boards/contract.py).
#
# The registry maps a board name to the module holding that board's definition, the way
# esptool keeps CHIP_DEFS. A board module is data (channels, pins, calibration, limits)
# and two functions; importing it touches no hardware, so the registry can be listed
# and searched freely, and only make_ports() binds pins, on the board, when called.
#
# The contract (boards/contract.py): every board module defines each of its FIELDS (None
# where the board has no such thing) and returns from make_ports() a dict with each of
# its PORTS, each object offering the methods listed (firmware/shell.py is what calls
# them). tests/portable/test_boards.py checks every registered board against it; the
# board never reads it (its tables would be held in its heap, their names interned).
#
# Drivers that more than one board may use live in boards/drivers/ (a step/dir syringe
# driver, a store over a filesystem); a board's own models live with it
# (boards/emulator/: the emulated hardware and the MicroPython-side relay to it).

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
