"""pumpguard host tool: Python API, CLI and emulator for the pumpguard firmware.

Five lines to script a pump (the emulator stands in for a board here)::

    import pumpguard

    with pumpguard.Emulator() as emu, pumpguard.connect(emu.port, key=emu.key) as pump:
        pump.start(1, "norepinephrine", "0.1", "mcg/kg/min",
                   weight_kg="70", concentration="16 mcg/mL", volume_ml="50")
        print(pump.status(1))                  # running at 26.25 mL/h
"""

from . import library, report  # the pharmacist's and the report's APIs, as documented
from .api.answers import (
    Alarm,
    Decision,
    Event,
    Heartbeat,
    Info,
    LibraryId,
    LogEntry,
    StateChange,
    Status,
    Stopped,
    TaperStep,
)
from .api.client import Pump, Quantity, connect
from .api.keys import KeyFile
from .emulator import Emulator
from .errors import (
    AuthError,
    BadValue,
    Busy,
    DeviceAlarm,
    DeviceError,
    DeviceReset,
    EmulatorError,
    Forbidden,
    KeyFileError,
    LinkError,
    ProtocolMismatch,
    PumpguardError,
    RefusedError,
    UsageError,
    WrongType,
)

__all__ = [
    "Alarm",
    "AuthError",
    "BadValue",
    "Busy",
    "Decision",
    "DeviceAlarm",
    "DeviceError",
    "DeviceReset",
    "Emulator",
    "EmulatorError",
    "Event",
    "Forbidden",
    "Heartbeat",
    "Info",
    "KeyFile",
    "KeyFileError",
    "LibraryId",
    "LinkError",
    "LogEntry",
    "ProtocolMismatch",
    "Pump",
    "PumpguardError",
    "Quantity",
    "RefusedError",
    "StateChange",
    "Status",
    "Stopped",
    "TaperStep",
    "UsageError",
    "WrongType",
    "connect",
    "library",
    "report",
]
