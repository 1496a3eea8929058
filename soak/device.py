"""What the soak parts share: the device under test through the public API only.

The doses each part runs (the drug library's own limits, read from its file), a
connect that waits a bounded time for a booting device (a device that never answers
within it is in a boot loop), a power cut that takes the whole emulated board down
(the MicroPython runtime's interpreter process too), and the checks of a device just
booted: what it delivers against the library's hard limits, what its motors do
against what it says, and the resume alarm of each delivering channel.
"""

import contextlib
import os
import signal
import time
from decimal import Decimal
from pathlib import Path

import pumpguard
from pumpguard.api.quantity import micro_to_decimal

from boards import emulator as emulated_board
from firmware import druglib

_LIBRARY = druglib.load((Path(druglib.__file__).parent / "druglib.json").read_text())
# Each drug's hard maximum, in its dose unit (Decimal), as the library says.
HARD_MAX = {name: micro_to_decimal(d.hard_max) for name, d in _LIBRARY.drugs.items()}
BOARD_MAX_RATE = micro_to_decimal(emulated_board.MAX_RATE)  # mL/h

NOREPI = {"weight_kg": "70", "concentration": "16 mcg/mL", "volume_ml": "50"}
DOBUTAMINE = {"weight_kg": "70", "concentration": "4 mg/mL", "volume_ml": "50"}
# Dose ranges the soak titrates within (below the soft maxima, above the soft minima).
NOREPI_RANGE = (Decimal("0.05"), Decimal("0.5"))
DOBUTAMINE_RANGE = (Decimal("2.5"), Decimal("10"))
_SETTLE_READS = 3
BOOT_BOUND_S = 30.0  # a device that answers no HELLO this long after power-on: boot loop

# What the API raises on purpose for a command that did not go through.
EXPECTED = (pumpguard.RefusedError, pumpguard.LinkError, pumpguard.DeviceReset)


def start_norepinephrine(pump, dose="0.1"):
    return pump.start(1, "norepinephrine", dose, "mcg/kg/min", **NOREPI)


def start_dobutamine(pump, dose="2.5"):
    return pump.start(2, "dobutamine", dose, "mcg/kg/min", **DOBUTAMINE)


def connect_within(port, key, bound_s=BOOT_BOUND_S, timeout=1.0, attempts=3):
    """A connected Pump once the device answers HELLO (authenticated with the key file
    `key`, the emulator's), or None after bound_s."""
    deadline = time.monotonic() + bound_s
    while True:
        try:
            return pumpguard.connect(port, timeout=timeout, attempts=attempts, key=key)
        except (pumpguard.LinkError, pumpguard.DeviceReset, OSError):
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.2)


def _descendants(pid):
    out = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for task in tasks:
        try:
            children = Path(f"/proc/{pid}/task/{task}/children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            out += [child, *_descendants(child)]
    return out


def power_cut(emu):
    """Power lost at once: SIGKILL the emulator and every process under it (the
    MicroPython runtime's interpreter is the board's CPU: it loses power too)."""
    proc = emu._proc  # the emulator's own process: Emulator offers no pid
    below = _descendants(proc.pid) if proc is not None else []
    emu.power_off()
    for pid in below:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def close_quietly(pump):
    if pump is not None:
        with contextlib.suppress(OSError):
            pump.close()


def check_boot(pump, emu, channels=(1, 2)):
    """Each channel's status, the problems of a device just booted as (kind, text),
    and its alarms. The problems: "over limit" (a dose
    above its drug's hard maximum, a drug not in the library, a rate above the board's,
    a motor running at another rate than the device says) and "no resume alarm" (a
    channel delivering with no unacknowledged resumed_after_reset alarm)."""
    problems = []
    for _ in range(_SETTLE_READS):
        # What the device says and what its motors do, read one after the other: a
        # change in between (a fault stopping a channel) shows as a mismatch; it
        # settles by the next reading, a true mismatch never does.
        alarms = pump.alarms()
        statuses = {ch: pump.status(ch) for ch in channels}
        motors = emu.pumps()
        if all(_motor(motors, ch) == statuses[ch].rate_ml_h for ch in channels):
            break
        time.sleep(0.2)
    for ch, s in statuses.items():
        motor = _motor(motors, ch)
        if s.rate_ml_h > BOARD_MAX_RATE or motor != s.rate_ml_h:
            problems.append(("over limit", f"ch {ch}: says {s.rate_ml_h} mL/h, motor {motor}"))
        if motor and s.drug not in HARD_MAX:
            problems.append(("over limit", f"ch {ch}: delivers {s.drug!r}, not in the library"))
        elif motor and s.dose is not None and s.dose > HARD_MAX[s.drug]:
            problems.append(("over limit", f"ch {ch}: {s.drug} {s.dose} above its hard max"))
        resumed = [
            a for a in alarms if a.code == "resumed_after_reset" and a.channel == ch and not a.acked
        ]
        if motor and not resumed:
            problems.append(("no resume alarm", f"ch {ch}: delivers {motor} mL/h unannounced"))
    return statuses, problems, alarms


def _motor(motors, ch):
    return Decimal(motors[ch - 1]["rate"]) / 1_000_000


def emptied(alarms, ch):
    """Whether channel ch stopped because its syringe ran empty (time passed: a
    fast-forward, a long run): the device did right, no command was lost."""
    return any(a.code == "syringe_empty" and a.channel == ch for a in alarms)


def ack_all(pump):
    for alarm in pump.alarms():
        if not alarm.acked:
            with contextlib.suppress(pumpguard.RefusedError):
                pump.ack(alarm.id)
