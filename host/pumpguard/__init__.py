"""pumpguard host tool: Python API, CLI and emulator for the pumpguard firmware.

Five lines to script a pump (the emulator stands in for a board here)::

    import pumpguard

    with pumpguard.Emulator(time_scale=60) as emu, pumpguard.connect(emu.port) as pump:
        pump.start(1, "norepinephrine", "8", "mcg/min", concentration="16 mcg/mL")
        print(pump.status(1))
"""

from .client import Pump, connect
from .emulator import Emulator, EmulatorError
from .errors import (
    DeviceAlarm,
    DeviceError,
    DeviceReset,
    LinkError,
    ProtocolMismatch,
    PumpguardError,
    RefusedError,
)

__all__ = [
    "DeviceAlarm",
    "DeviceError",
    "DeviceReset",
    "Emulator",
    "EmulatorError",
    "LinkError",
    "ProtocolMismatch",
    "Pump",
    "PumpguardError",
    "RefusedError",
    "connect",
]
