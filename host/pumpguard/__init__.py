"""pumpguard host tool: Python API, CLI and emulator for the pumpguard firmware.

Five lines to script a pump (the emulator stands in for a board here)::

    import pumpguard

    with pumpguard.Emulator() as emu, pumpguard.connect(emu.port, key=emu.key) as pump:
        pump.start(1, "norepinephrine", "0.1", "mcg/kg/min",
                   weight_kg="70", concentration="16 mcg/mL", volume_ml="50")
        print(pump.status(1))                  # running at 26.25 mL/h
"""

import importlib
from typing import TYPE_CHECKING, Any

from .api.answers import (
    Alarm,
    Decision,
    Event,
    HandedOver,
    Heartbeat,
    Info,
    LibraryId,
    LogEntry,
    Patient,
    StateChange,
    Status,
    Stopped,
    TaperStep,
)
from .api.client import Pump, Quantity, connect
from .api.keys import KeyFile
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

# The pharmacist's and the report's APIs (as documented) and the emulator are imported
# when first used: every `pumpguard` command (and every emulator) starts a Python, and
# most never touch them (rich, the report's model: about half of the start-up).
if TYPE_CHECKING:
    from . import library, report
    from .emulator import Emulator

_LAZY = {"library": ".library", "report": ".report", "Emulator": ".emulator"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'pumpguard' has no attribute {name!r}")
    module = importlib.import_module(_LAZY[name], __name__)
    value = getattr(module, name) if name == "Emulator" else module
    globals()[name] = value
    return value


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
    "HandedOver",
    "Heartbeat",
    "Info",
    "KeyFile",
    "KeyFileError",
    "LibraryId",
    "LinkError",
    "LogEntry",
    "Patient",
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
