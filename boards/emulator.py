# The emulated board: two channels of virtual hardware. Its ports (PTY or TCP link,
# virtual clock, syringe model, directory store) are built on the host by
# pumpguard.emuports; this module is only the data they are built from.
from micropython import const

NAME = "emulator"
MACHINE = None  # never auto-detected: the emulator names its board explicitly
MPY_ARCH = None  # mpy-cross emits portable bytecode: the WebAssembly MicroPython runs it
CHANNELS = const(2)
MAX_RATE = const(1000_000000)  # 1000 mL/h
SYRINGE_ML = const(50_000000)  # 50 mL syringe, full at power-on
LINK_TIMEOUT_MS = const(10_000)
NEAR_EMPTY_S = const(900)  # 15 min
WATCHDOG_MS = const(8_000)
