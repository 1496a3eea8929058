"""Part c: the store fails or lies, and the device must neither loop nor undo a stop.

Each scenario runs an emulator on a state directory of its own, with norepinephrine
running on channel 1 and dobutamine on channel 2, then:

    write once   the save of an extravasation emergency stop fails; the store works
                 again, and the power is cut
    lasting      every save fails from an emergency stop on (no power cut: the device
                 must run on, degraded, answering, the stop held)
    torn         the record cut short at a random length (power lost mid-write)
    rollback     an older genuine record (channel 1 still running) put back after the
                 emergency stop
    field        one value of the record replaced (every value in turn, by one of
                 another type or range; and each channel's dose and rate scaled
                 together) and the record sealed again with a valid CRC

and counts: a boot loop (no HELLO within device.BOOT_BOUND_S of power-on), an undone
stop (a channel emergency-stopped before, delivering after), the boot checks of
device.check_boot (over a limit, no resume alarm), and a channel delivering other than
it did before a torn or edited record ("not commanded": a restore must re-verify).

A save is made to fail without a hook in the firmware: a directory stands where the
store's temporary record goes (persist._TMP), so opening it for writing fails with
IsADirectoryError on the CPython and MicroPython runtimes alike (both write through
FileStore on the host), even as root. The record is read, edited and sealed again by
persist.Record (load, save: the next counter) over the FileStore the emulator uses, so its
format is persist.py's own, whatever it is.
"""

import os
import random
import shutil
import tempfile
import time
from collections import Counter

import pumpguard

from boards.drivers.filestore import FileStore
from firmware import persist

from . import device

SCENARIOS = ("write once", "lasting", "torn", "rollback", "field")
_RECORD = persist._NAME
_TMP = persist._TMP
# Replacement values for a field, by the kind of value it held (ints also get 10 and
# 25 times their value: a plausible number past a limit, the record otherwise sound).
_VALUES = {
    int: (-1, 0, 2**31, 2**64, 1.5, "1", None, True),
    float: (0, -1.0, 1e308, "x", None),
    str: ("", "running", "vasopressin", "mcg/min", "x" * 300, 7, None),
    bool: (2, "true", None, 1),
    list: ([], [[[[[]]]]], {}, "x", None),
    dict: ({}, [], 0, None),
    type(None): (0, "x", [], -1),
}


class StoreSoak:
    def __init__(self, runtime, seed=1, out=print):
        self.runtime = runtime
        self.rng = random.Random(seed)
        self.out = out
        self.runs = Counter()
        self.boot_loops = Counter()
        self.undone = Counter()
        self.problems = Counter()
        self.unexpected = 0
        self.notes = []

    def _note(self, text):
        if len(self.notes) < 60:
            self.notes.append(text)

    # -- one emulator, one scenario ---------------------------------------------------

    def _running(self, emu):
        pump = device.connect_within(emu.port, emu.key)
        if pump is None:
            raise pumpguard.EmulatorError("a fresh emulator never answered HELLO")
        device.start_norepinephrine(pump)
        device.start_dobutamine(pump)
        return pump

    def _estop(self, pump, ch=1):
        try:
            pump.emergency_stop(ch, "extravasation")
        except (pumpguard.LinkError, pumpguard.DeviceReset):
            pass  # the save failed under it: the device may reset before it answers
        except Exception as exc:
            self.unexpected += 1
            self._note(f"unexpected {type(exc).__name__} at the e-stop: {exc}")

    def _judge(self, scenario, emu, stopped, running=None, booted=True):
        """Power on (already done), then: boot loop? stop undone? boot checks? And
        `running`, a Status from before: that channel delivers as it did, or not at all
        (a restore refused); delivering anything else is "not commanded". booted False:
        the device ran on without a reset, so no channel owes a resume alarm."""
        pump = device.connect_within(emu.port, emu.key)
        if pump is None:
            self.boot_loops[scenario] += 1
            self._note(f"{scenario}: boot loop (no HELLO in {device.BOOT_BOUND_S:.0f} s)")
            return
        try:
            statuses, problems, _alarms = device.check_boot(pump, emu)
            for kind, text in problems:
                if kind == "no resume alarm" and not booted:
                    continue
                self.problems[kind] += 1
                self._note(f"{scenario}: {kind}: {text}")
            for ch in stopped:
                if statuses[ch].rate_ml_h:
                    self.undone[scenario] += 1
                    s = statuses[ch]
                    self._note(f"{scenario}: stop undone on ch {ch}: {s.drug} {s.dose} again")
            s = running and statuses[running.channel]
            if s and s.rate_ml_h and _delivery(s) != _delivery(running):
                self.problems["not commanded"] += 1
                self._note(f"{scenario}: ch {s.channel} delivers {_delivery(s)}, not commanded")
        except (pumpguard.LinkError, pumpguard.DeviceReset) as exc:
            # It answered HELLO and then fell silent or reset: it dies in its loop on
            # this record, boot after boot.
            self.boot_loops[scenario] += 1
            self._note(f"{scenario}: boot loop (answered HELLO, then: {exc})")
        except Exception as exc:  # the API must map every failure: counted, named
            self.unexpected += 1
            self._note(f"{scenario}: unexpected {type(exc).__name__} reading it: {exc}")
        finally:
            device.close_quietly(pump)

    def _scenario(self, scenario, field=None):
        state = tempfile.mkdtemp(prefix="soak-store-")
        emu = pumpguard.Emulator(runtime=self.runtime, state_dir=state)
        blocker = os.path.join(state, _TMP)
        try:
            emu.start()
            pump = self._running(emu)
            self.runs[scenario] += 1
            if scenario in ("write once", "lasting"):
                os.mkdir(blocker)
                self._estop(pump)
                device.close_quietly(pump)
                if scenario == "lasting":
                    # Saves fail for good: the device runs on degraded, never resets
                    # (a reset would restore the record from before the stop).
                    emu.advance(30)
                    self._judge(scenario, emu, stopped=(1,), booted=False)
                    return
                os.rmdir(blocker)
                emu.advance(5)  # the store works again: the next retry saves the stop
                device.power_cut(emu)
                emu.start()
                self._judge(scenario, emu, stopped=(1,))
                return
            if scenario == "rollback":
                older = FileStore(state).read(_RECORD)
                self._estop(pump)
                device.close_quietly(pump)
                device.power_cut(emu)
                FileStore(state).write(_RECORD, older)
                emu.start()
                self._judge(scenario, emu, stopped=(1,))
                return
            self._estop(pump, 2)  # channel 2 stopped: a record edit must not undo it
            before = pump.status(1)  # channel 1 running: as commanded, or not at all
            device.close_quietly(pump)
            device.power_cut(emu)
            store = FileStore(state)
            if scenario == "torn":
                record = store.read(_RECORD) or b""
                store.write(_RECORD, record[: self.rng.randrange(max(1, len(record)))])
            else:
                self._edit(store, field)
            emu.start()
            label = scenario if field is None else f"field {field[0]} = {field[1]!r:.24}"
            self._judge(label, emu, stopped=(2,), running=before)
        finally:
            if os.path.isdir(blocker):
                os.rmdir(blocker)
            emu.close()
            shutil.rmtree(state, ignore_errors=True)

    # -- record edits -----------------------------------------------------------------

    def _edit(self, store, field):
        path, value = field
        record, snapshot, uptime = _record(store)
        holder = snapshot
        for key in path[:-1]:
            holder = holder[key]
        if isinstance(path[-1], tuple):  # several values scaled alike: value is the factor
            for key in path[-1]:
                holder[key] *= value
        else:
            holder[path[-1]] = value
        record.save(snapshot, uptime)  # the next counter: an edit, not a rollback

    def fields(self):
        """Every (path, replacement) of a typical record: one per value in it."""
        state = tempfile.mkdtemp(prefix="soak-store-")
        emu = pumpguard.Emulator(runtime="cpython", state_dir=state)
        try:
            emu.start()
            pump = self._running(emu)
            self._estop(pump, 2)
            device.close_quietly(pump)
            device.power_cut(emu)
            _rec, snapshot, _uptime = _record(FileStore(state))
        finally:
            emu.close()
            shutil.rmtree(state, ignore_errors=True)
        out = []
        _paths(snapshot, (), out)
        edits = [(path, self._replacement(v)) for path, v in out]
        # A dose and its rate scaled together: a record consistent in itself, past the
        # drug's limits (the edit a CRC and a rate check both let through).
        for path, v in out:
            if isinstance(v, dict) and "dose" in v and "rate" in v and v["dose"]:
                edits.append((path + (("dose", "rate"),), self.rng.choice((10, 25, 40))))
        return edits

    def _replacement(self, v):
        if type(v) is int and v and self.rng.random() < 0.5:
            return v * self.rng.choice((10, 25))
        return self.rng.choice(_VALUES[type(v)])

    def run(self, repeats=1, fields=None, scenarios=SCENARIOS[:-1]):
        """`scenarios` `repeats` times each, and `fields` record edits (all when None)."""
        t0 = time.monotonic()
        for _ in range(repeats):
            for scenario in scenarios:
                self._scenario(scenario)
            edits = self.fields()  # every field, each repeat with other values
            if fields is not None:
                edits = self.rng.sample(edits, min(fields, len(edits)))
            for edit in edits:
                self._scenario("field", edit)
        self.wall_s = time.monotonic() - t0
        return self

    @property
    def total_boot_loops(self):
        return sum(self.boot_loops.values())

    @property
    def total_undone(self):
        return sum(self.undone.values())

    def figures(self):
        fields = sum(v for k, v in self.runs.items() if k == "field")
        lines = [
            f"store faults [{self.runtime}]: {sum(self.runs.values())} boots "
            f"({', '.join(f'{k} {v}' for k, v in sorted(self.runs.items()))}; "
            f"{fields} field edits) in {self.wall_s:.0f} s",
            f"  {self.total_boot_loops} boot loops, {self.total_undone} undone stops, "
            f"{self.problems['over limit']} over a limit, "
            f"{self.problems['no resume alarm']} without a resume alarm, "
            f"{self.problems['not commanded']} delivering what was not commanded, "
            f"{self.unexpected} unexpected exceptions",
        ]
        return lines + ["  " + n for n in self.notes]


def _delivery(s):
    return (s.drug, s.dose, s.dose_unit, s.rate_ml_h)


def _record(store):
    """(persist.Record, snapshot, uptime) of the record the emulator saved."""
    record = persist.Record(store)
    saved = record.load()
    if saved is None:
        raise pumpguard.EmulatorError("the emulator saved no record to edit")
    return (record,) + tuple(saved)


def _paths(node, path, out):
    if isinstance(node, dict):
        for key in sorted(node):
            out.append((path + (key,), node[key]))
            _paths(node[key], path + (key,), out)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.append((path + (i,), v))
            _paths(v, path + (i,), out)
