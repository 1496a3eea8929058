# Board registry and the board contract.
#
# The registry maps a board name to the module holding that board's definition, the way
# esptool keeps CHIP_DEFS. A board module is data (channels, pins, calibration, limits)
# and two functions; importing it touches no hardware, so the registry can be listed
# and searched freely, and only make_ports() binds pins, on the board, when called.
#
# The contract: every board module defines each of FIELDS (None where the board has no
# such thing) and returns from make_ports() a dict with each of PORTS, each object
# offering the methods listed (firmware/shell.py is what calls them).
# tests/portable/test_boards.py checks every registered board against it.
#
# Drivers that more than one board may use live in boards/drivers/ (a step/dir syringe
# driver, a store over a filesystem); a board's own models live with it
# (boards/emulator/: the emulated hardware and the MicroPython-side relay to it).

# (name, what it is): "int", "str", "bool", "tuple", or "int?"/"str?"/"tuple?" where None
# is allowed
FIELDS = (
    ("NAME", "str"),  # registry name
    ("MACHINE", "str?"),  # text in os.uname().machine on that board; None: emulated
    # the USB "vid:pid" (hex) its MicroPython's REPL enumerates with: how `flash --port
    # auto` tells the board's USB port from a USB-serial adapter's; None: no USB REPL
    ("USB_IDS", "tuple?"),
    ("MPY_ARCH", "str?"),  # mpy-cross -march for its CPU; None: portable bytecode
    ("CHANNELS", "int"),  # pump channels, numbered from 1
    ("MAX_RATE", "int"),  # mechanical maximum rate, millionths of mL/h
    ("SYRINGE_ML", "int"),  # syringe capacity, millionths of mL
    ("LINK_UART", "int?"),  # hardware UART carrying the protocol; None: not a UART
    ("LINK_TIMEOUT_MS", "int"),  # host silence before the link-loss alarm
    ("NEAR_EMPTY_S", "int"),  # time-to-empty at which the near-empty alarm rises
    ("WATCHDOG_MS", "int"),  # watchdog timeout (fed only while the loop is healthy)
    ("STATE_DIR", "str?"),  # the store's directory (flash --repl writes safeboot there)
    # whether a keys file saying "insecure" is honoured (firmware/keys.py): the
    # emulator's --insecure development mode only; a real board always needs keys
    ("INSECURE_OK", "bool"),
)
# Functions every board module defines:
#   make_ports()  the ports below, pins bound now (firmware/main.py calls it at boot)
#   safe_boot()   True when the board is held in safe boot: pump loop and watchdog off
FUNCTIONS = ("make_ports", "safe_boot")

# port -> the methods the firmware calls on it (firmware/shell.py, handlers.py; "motors":
# one object per channel)
PORTS = (
    ("link", ("readinto", "write")),  # readinto(buf) -> count or None; write(bytes)
    ("clock", ("ticks_ms", "ticks_diff", "sleep_ms")),  # MicroPython's time module
    # set_rate(rate); delivered() -> volume since last call; fault() -> None |
    # "occlusion" | "air_in_line" | "syringe_empty" | "motor"
    ("motors", ("set_rate", "delivered", "fault")),
    # read(name) -> bytes | None; readinto(name, offset, buf) -> count | None;
    # size(name) -> bytes | None; write(name, data), append(name, data): durable when
    # they return; rename(src, dst): replaces dst in one step; remove(name): a missing
    # file is fine (boards/drivers/filestore.py; firmware/persist.py, firmware/journal.py)
    ("store", ("read", "readinto", "size", "write", "append", "rename", "remove")),
    ("alarm", ("set",)),  # set(level): 0 none, 1 low, 2 medium, 3 high priority
    ("watchdog", ("feed",)),
    # random(n) -> n bytes from the board's hardware RNG where it has one (the nonces of
    # the authenticated link, boot ids)
    ("entropy", ("random",)),
)

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
