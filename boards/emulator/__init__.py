# The emulated board: two channels of virtual hardware, run by `pumpguard emulate`.
#
# The hardware is modelled on the host, in boards/emulator/hardware.py (CPython only:
# PTY or TCP link, virtual clock, syringe models; the store is a directory). The
# emulator's cpython runtime hands those ports to the firmware in its own process; on
# its micropython runtime the firmware boots through make_ports() below, whose ports
# (boards/emulator/relay.py) relay every call to the same models on the host.
from micropython import const

NAME = "emulator"
MACHINE = None  # never auto-detected: the emulator names its board explicitly
USB_IDS = None  # no USB: the link is a PTY or a TCP socket, and there is no REPL to flash
MPY_ARCH = None  # mpy-cross emits portable bytecode: the WebAssembly MicroPython runs it
CHANNELS = const(2)
MAX_RATE = const(1000_000000)  # 1000 mL/h
# The syringes it takes (10, 20 and 50 mL); a full 50 mL one is loaded at power-on.
SYRINGES_ML = (10_000000, 20_000000, 50_000000)
LINK_TIMEOUT_MS = const(10_000)
NEAR_EMPTY_S = const(900)  # 15 min
WATCHDOG_MS = const(8_000)
LINK_UART = None  # the link is a PTY or a TCP socket on the host
STATE_DIR = None  # the store is the host's --state-dir, reached through the host
INSECURE_OK = True  # `pumpguard emulate --insecure`: a development mode, never a board's


def make_ports():
    """The micropython runtime's ports, relayed to the host (WebAssembly port only)."""
    from boards.emulator import relay

    return relay.make_ports(CHANNELS)


def safe_boot():
    """No safe-boot pin: the emulator asks for a safe boot with the store's file."""
    return False
