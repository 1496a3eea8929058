# The board contract: what every board module defines (FIELDS, FUNCTIONS) and the ports
# its make_ports() returns with the methods the firmware calls on each (PORTS).
# tests/portable/test_boards.py and tests/test_emulator_ports.py check every registered
# board (boards/__init__.py) against it. Not imported by the firmware: a board holds
# none of it.

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
    ("SYRINGES_ML", "tuple"),  # the syringe sizes it takes, millionths of mL, smallest first
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
    # "occlusion" | "air_in_line" | "syringe_empty" | "motor"; syringe() -> the loaded
    # syringe's capacity (one of SYRINGES_ML); load(volume): a start programmed volume
    # (the syringe the clinician loaded holds it: travel is counted from it); left() ->
    # the volume the pump measures left in the syringe (plunger travel against the
    # volume loaded), or None where it measures nothing of its own
    ("motors", ("set_rate", "delivered", "fault", "syringe", "load", "left")),
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
