"""Part b: power cuts at random points, and what every boot after one must show.

One emulator on a kept state directory runs norepinephrine (channel 1) and dobutamine
(channel 2). Each round cuts the power (device.power_cut: SIGKILL of the emulator and
its interpreter) at one of these points, chosen at random:

    command   while a titration is on the wire (its answer may or may not have come)
    save      right after a command was acknowledged (its record being written)
    taper     during a fast-forward of a norepinephrine taper (steps being applied)
    idle      at any moment of a quiet link

then powers on again and checks, through the API: the device answers HELLO within
device.BOOT_BOUND_S (else a boot loop: counted, and the store emptied to go on);
every acknowledged command is reflected in the channel's state and dose (else an
acknowledged command lost; a command unacknowledged at the cut may have run or not:
either is accepted); nothing delivers above a limit; every delivering channel has a
resume alarm (device.check_boot). Alarms are acknowledged after each check.
"""

import contextlib
import random
import shutil
import tempfile
import threading
import time
from collections import Counter
from decimal import Decimal
from typing import Any

import pumpguard

from . import device

POINTS = ("command", "save", "taper", "idle")
_TIMEOUT_S = 1.0


def _advance(emu, seconds):
    # The power is cut under it (what the cut is for): its control pipe breaks.
    with contextlib.suppress(pumpguard.EmulatorError, OSError, ValueError):
        emu.advance(seconds)


class _Belief:
    """What the host may find on a channel after the cut: states with their doses."""

    def __init__(self, state, dose):
        self.options = {(state, dose)}

    def set(self, state, dose):
        self.options = {(state, dose)}

    def allows(self, s):
        for state, dose in self.options:
            if state == "tapering":
                if s.state in ("tapering", "stopped") and (s.dose is None or s.dose <= dose):
                    return True
            elif state in ("stopped", "idle"):
                if s.state == state:
                    return True
            elif s.state == state and s.dose == dose:
                return True
        return False


class PowerSoak:
    pump: pumpguard.Pump  # the connection to the device since its last boot

    def __init__(self, runtime, seed=1, out=print):
        self.runtime = runtime
        self.rng = random.Random(seed)
        self.out = out
        self.cuts = 0
        self.commands = 0
        self.lost = 0
        self.boot_loops = 0
        self.problems = Counter()
        self.points = Counter()
        self.unexpected = 0
        self.notes = []
        self.boot_s = []  # power-on to a HELLO answered, per boot
        self.beliefs = {}

    def _note(self, text):
        if len(self.notes) < 10:
            self.notes.append(text)

    def _call(self, what) -> tuple[bool | None, Any]:
        """A command: (True, result), (False, None) refused, (None, exc) unknown."""
        self.commands += 1
        try:
            return True, what()
        except pumpguard.RefusedError:
            return False, None
        except (pumpguard.LinkError, pumpguard.DeviceReset) as exc:
            return None, exc
        except Exception as exc:  # the API must map every failure: counted, named
            self.unexpected += 1
            self._note(f"unexpected {type(exc).__name__}: {exc}")
            return None, exc

    def _setup(self):
        pump = self.pump
        for ch, start in ((1, device.start_norepinephrine), (2, device.start_dobutamine)):
            s = pump.status(ch)
            if s.state in ("idle", "stopped"):
                self._call(lambda start=start: start(pump))
                s = pump.status(ch)
            self.beliefs[ch] = _Belief(s.state, s.dose)

    def _titration(self):
        ch = 1 + self.rng.randrange(2)
        b = self.beliefs[ch]
        if len(b.options) != 1:
            return None  # unknown since the last cut: resynchronised at the next boot
        ((state, dose),) = b.options
        if state != "running":
            return None
        lo, hi = device.NOREPI_RANGE if ch == 1 else device.DOBUTAMINE_RANGE
        step = Decimal("0.01") * (1 if ch == 1 else 10) * (1 + self.rng.randrange(3))
        target = min(hi, dose + step)
        return ch, target

    def _titrate(self, ch, target):
        ok, r = self._call(lambda: self.pump.titrate(ch, str(target), "mcg/kg/min", override=True))
        b = self.beliefs[ch]
        if ok:
            b.set("running", r.dose)
        elif ok is None:  # unknown: either outcome is right
            b.options = b.options | {("running", target)}

    def _cut_at(self, point, emu):
        pump = self.pump
        if point == "command" and (t := self._titration()):
            worker = threading.Thread(target=self._titrate, args=t)
            worker.start()
            time.sleep(self.rng.uniform(0, 0.05))
            device.power_cut(emu)
            worker.join()
        elif point == "save" and (t := self._titration()):
            self._titrate(*t)
            device.power_cut(emu)
        elif point == "taper":
            b = self.beliefs[1]
            ((state, dose),) = b.options if len(b.options) == 1 else ((None, None),)
            if state == "running":
                ok, _r = self._call(lambda: pump.stop(1))
                if ok:
                    b.set("tapering", dose)
                elif ok is None:
                    b.options = b.options | {("tapering", dose)}
            worker = threading.Thread(target=_advance, args=(emu, self.rng.uniform(0, 2000)))
            worker.daemon = True
            worker.start()
            time.sleep(self.rng.uniform(0, 0.3))
            device.power_cut(emu)
        else:
            time.sleep(self.rng.uniform(0, 0.2))
            device.power_cut(emu)

    def _boot(self, emu):
        t0 = time.monotonic()
        emu.start()
        pump = device.connect_within(emu.port, emu.key, timeout=_TIMEOUT_S)
        if pump is None:
            self.boot_loops += 1
            self._note(f"boot loop after cut {self.cuts}: no HELLO in {device.BOOT_BOUND_S} s")
            return False
        self.pump = pump
        self.boot_s.append(time.monotonic() - t0)
        return True

    def _check(self, emu):
        statuses, problems, alarms = device.check_boot(self.pump, emu)
        for kind, text in problems:
            self.problems[kind] += 1
            self._note(f"cut {self.cuts}: {kind}: {text}")
        for ch, s in statuses.items():
            if s.state == "stopped" and device.emptied(alarms, ch):
                emu.command(f"refill {ch}")  # the taper's fast-forwards emptied it
            elif not self.beliefs[ch].allows(s):
                self.lost += 1
                self._note(
                    f"cut {self.cuts}: acknowledged lost on ch {ch}: host knew "
                    f"{sorted(self.beliefs[ch].options, key=str)}, device {s.state} {s.dose}"
                )
            self.beliefs[ch].set(s.state, s.dose)
        device.ack_all(self.pump)

    def run(self, cuts):
        t0 = time.monotonic()
        state = tempfile.mkdtemp(prefix="soak-power-")
        emu = pumpguard.Emulator(runtime=self.runtime, state_dir=state)
        try:
            if not self._boot(emu):
                raise pumpguard.EmulatorError("the emulator never answered HELLO")
            self._setup()
            while self.cuts < cuts:
                point = self.rng.choice(POINTS)
                self.points[point] += 1
                self._cut_at(point, emu)
                self.cuts += 1
                device.close_quietly(self.pump)
                if not self._boot(emu):
                    device.power_cut(emu)
                    kept = shutil.copytree(state, f"{state}-boot-loop-{self.cuts}")
                    self._note(f"  its store and emulator.log are kept in {kept}")
                    shutil.rmtree(state)
                    if not self._boot(emu):
                        break
                    self._setup()
                    continue
                self._check(emu)
                self._setup()
        finally:
            device.close_quietly(getattr(self, "pump", None))
            emu.close()
            shutil.rmtree(state, ignore_errors=True)
        self.wall_s = time.monotonic() - t0
        return self

    def figures(self):
        boots = sorted(self.boot_s)
        median = boots[len(boots) // 2] if boots else 0
        lines = [
            f"power cuts [{self.runtime}]: {self.cuts} cuts "
            f"({', '.join(f'{k} {v}' for k, v in sorted(self.points.items()))}), "
            f"{self.commands} commands, in {self.wall_s:.0f} s",
            f"  {self.lost} acknowledged lost, {self.boot_loops} boot loops, "
            f"{self.problems['over limit']} over a limit, "
            f"{self.problems['no resume alarm']} without a resume alarm, "
            f"{self.unexpected} unexpected exceptions; boot to HELLO median {median:.2f} s, "
            f"max {boots[-1] if boots else 0:.2f} s",
        ]
        return lines + ["  " + n for n in self.notes]
