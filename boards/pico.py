# Raspberry Pi Pico (RP2040) driving two syringe pumps through step/dir drivers.
#
# The protocol runs on hardware UART0 (GP0 TX, GP1 RX, 115200 8N1, through a USB-serial
# adapter or the host's own UART), so the Pico's USB stays the MicroPython REPL:
# mpremote can always reach it to reflash, even while the pump loop runs.
#
#   channel  STEP  DIR  EN(low)  occlusion  air-in-line  end-of-travel (empty)
#      1     GP2   GP3  GP4      GP10       GP11         GP12
#      2     GP6   GP7  GP8      GP13       GP14         GP15
#   alarm buzzer GP16, status LED GP25 (on-board)
#
# Safe boot: GP22 held to GND at power-on skips the pump loop and its watchdog, so a
# firmware that resets in a loop can still be reached and reflashed over USB. Without
# touching the board, `pumpguard flash --repl` does the same for one boot (the
# "safeboot" file in STATE_DIR, firmware/main.py).
import os

from micropython import const

from boards.drivers.filestore import FileStore
from boards.drivers.stepper import StepDirMotor

NAME = "pico"
MACHINE = "Raspberry Pi Pico"  # os.uname().machine: "Raspberry Pi Pico with RP2040"
USB_IDS = ("2e8a:0005",)  # Raspberry Pi's USB id of MicroPython on the rp2 port
CHANNELS = const(2)
MPY_ARCH = "armv6m"  # mpy-cross -march: the RP2040's Cortex-M0+
LINK_UART = const(0)
LINK_TX = const(0)
LINK_RX = const(1)
LINK_BAUD = const(115200)
LINK_TIMEOUT_MS = const(10_000)
NEAR_EMPTY_S = const(900)
WATCHDOG_MS = const(8_000)  # RP2040 watchdog maximum is 8388 ms
STATE_DIR = "/state"  # the store (boards/drivers/filestore.py); also holds the safeboot file
INSECURE_OK = False  # a Pico always needs its keys file (firmware/keys.py)

# Calibration: 200 full steps/rev x 16 microsteps over an 8 mm lead screw (T8) = 400
# steps per mm of plunger travel; a BD Plastipak 50 mL syringe (bore 26.6 mm, 555.7 mm2)
# moves 1.7995 mm per mL: 400 x 1.7995 = 719.8, truncated to whole steps per mL.
STEPS_PER_REV = const(200)
MICROSTEPS = const(16)
LEAD_UM = const(8000)
SYRINGE_AREA_MM2_X10 = const(5557)
STEPS_PER_ML = const(
    STEPS_PER_REV * MICROSTEPS * 1000 * 1000 * 10 // (LEAD_UM * SYRINGE_AREA_MM2_X10)
)
SYRINGE_ML = const(50_000000)  # the BD Plastipak 50 mL: the one its steps per mL are for
SYRINGES_ML = (SYRINGE_ML,)
# Lead-screw limit of about 1.5 rev/s (200 steps/s here): 1000 mL/h is ~200 steps/s.
MAX_RATE = const(1000_000000)

# (STEP, DIR, EN, occlusion, air-in-line, end-of-travel) per channel.
_PINS = ((2, 3, 4, 10, 11, 12), (6, 7, 8, 13, 14, 15))
_BUZZER = const(16)
_LED = const(25)
_SAFE_BOOT = const(22)


class _Alarm:
    # Alarm output: LED on for any alarm, buzzer for high priority (level 3).
    def __init__(self, led, buzzer):
        self._led = led
        self._buzzer = buzzer

    def set(self, level):
        self._led.value(1 if level else 0)
        self._buzzer.value(1 if level >= 3 else 0)


class _Watchdog:
    # Started by the first feed(), not by make_ports(): the RP2040 watchdog cannot be
    # stopped once running, and a safe boot (firmware/main.py) must leave none behind.
    def __init__(self, timeout_ms):
        self._timeout = timeout_ms
        self._wdt = None

    def feed(self):
        if self._wdt is None:
            from machine import WDT

            self._wdt = WDT(timeout=self._timeout)
        self._wdt.feed()


class _Entropy:
    # os.urandom on the rp2 port reads the RP2040's ring oscillator (ROSC) random bit
    # generator: hardware noise, not a seeded PRNG.
    def random(self, n):
        return os.urandom(n)


def safe_boot():
    """True when GP22 is held low: firmware/main.py then leaves the REPL alone."""
    from machine import Pin

    return Pin(_SAFE_BOOT, Pin.IN, Pin.PULL_UP).value() == 0


def make_ports(pin=None, uart=None, clock=None, state_dir=STATE_DIR):
    """Bind the pins and peripherals; called by firmware/main.py, never at import.

    pin, uart, clock: machine.Pin, machine.UART and the time module unless given, so a
    test builds the real ports of this board with dummies in their place (and its
    store in a directory of its own, state_dir)."""
    if pin is None or uart is None:
        from machine import UART, Pin

        pin = pin or Pin
        uart = uart or UART
    if clock is None:
        import time as clock

    motors = []
    for step, dirn, en, occl, air, end in _PINS:
        sensors = (
            ("occlusion", pin(occl, pin.IN, pin.PULL_DOWN)),
            ("air_in_line", pin(air, pin.IN, pin.PULL_DOWN)),
            ("syringe_empty", pin(end, pin.IN, pin.PULL_DOWN)),
        )
        motors.append(
            StepDirMotor(
                pin(step, pin.OUT, value=0),
                pin(dirn, pin.OUT),
                pin(en, pin.OUT, value=1),
                STEPS_PER_ML,
                clock,
                sensors,
                SYRINGE_ML,
            )
        )
    return {
        "link": uart(LINK_UART, LINK_BAUD, tx=pin(LINK_TX), rx=pin(LINK_RX), rxbuf=1024),
        "motors": motors,
        "clock": clock,
        "store": FileStore(state_dir),
        "alarm": _Alarm(pin(_LED, pin.OUT), pin(_BUZZER, pin.OUT)),
        "watchdog": _Watchdog(WATCHDOG_MS),
        "entropy": _Entropy(),
    }
