"""Part a: commands through the public API over a noisy link (soak/relay.py).

The host runs norepinephrine on channel 1 and dobutamine on channel 2 and sends a
stream of commands: titrations up and down within the library's steps (override for
the soft interval of a rise), status reads, and stop/start cycles of the dobutamine.
After each command it records its belief (what an accepted command set; an expected
refusal changes nothing; a LinkError or DeviceReset saying may_have_run makes the
channel uncertain). At every checkpoint it reads each channel's status and the log:

- a silent divergence: a channel whose status differs from the host's belief while
  nothing told the host a command may have run (the belief is then resynchronised);
- applied twice: the device's log holds more "received" entries of a command kind on
  a channel than the host ever issued (a retry or a late duplicate ran again);
- an unexpected exception: anything the API raised other than RefusedError,
  LinkError, DeviceReset.
"""

import random
import time
from collections import Counter
from decimal import Decimal

import pumpguard

from . import device
from .relay import Faults, Relay

COMMANDS = ("start", "titrate", "stop", "emergency_stop")
_STEP = (Decimal("0.01"), Decimal("0.02"), Decimal("0.05"))
# Per attempt: the device answers in milliseconds; 5% of frames are held up to 0.3 s and
# are then answered from the replay cache on the retry (the exactly-once path).
ANSWER_TIMEOUT_S = 0.3
ATTEMPTS = 5
_SETTLE_S = 2.0  # after the last command: every delayed duplicate (1.5 s) has landed


class _Channel:
    def __init__(self, ch, state="idle", dose=None):
        self.ch = ch
        self.state = state
        self.dose = dose
        self.uncertain = False


class NoisySoak:
    pump: pumpguard.Pump  # set by run(), through the relay
    relay: Relay
    emu: pumpguard.Emulator

    def __init__(self, runtime, seed=1, faults=None, checkpoint=10, log_every=40, out=print):
        self.runtime = runtime
        self.rng = random.Random(seed)
        self.seed = seed
        self.faults = faults or Faults()
        self.checkpoint = checkpoint
        # The log is read every log_every commands: a LOG page per entry on protocol 1,
        # so reading it is most of the traffic; the ring (128 entries) must not wrap.
        self.log_every = log_every
        self.out = out
        self.commands = 0
        self.accepted_titrations = 0
        self.issued = Counter()  # (kind, ch) -> commands the host sent
        self.ran = Counter()  # (kind, ch) -> "received" entries in the device's log
        self.divergences = 0
        self.unexpected = 0
        self.link_errors = Counter()  # "may have run" / "did not run"
        self.resets = 0
        self.refills = 0  # syringes emptied by a long run, refilled
        self.log_gaps = 0
        self.notes = []
        self._since = 0
        self._boot_id = None
        self._seen = set()  # (boot id, seq) of the log entries counted
        self.channels = {1: _Channel(1), 2: _Channel(2)}

    # -- a command, and what the host believes after it -----------------------------

    def _do(self, kind, ch, call, belief):
        """Run call(); on success apply belief(result) to channel ch."""
        c = self.channels[ch]
        self.commands += 1
        if kind in COMMANDS:
            self.issued[kind, ch] += 1
        try:
            result = call()
        except pumpguard.RefusedError:
            return None
        except (pumpguard.LinkError, pumpguard.DeviceReset) as exc:
            if isinstance(exc, pumpguard.DeviceReset):
                self.resets += 1
            ran = bool(getattr(exc, "may_have_run", True))
            self.link_errors["may have run" if ran else "did not run"] += 1
            if ran and kind in COMMANDS:
                c.uncertain = True
            return None
        except Exception as exc:  # what the API must never raise: counted, named
            self.unexpected += 1
            self._note(f"unexpected {type(exc).__name__} in {kind} ch {ch}: {exc}")
            c.uncertain = True
            return None
        belief(c, result)
        return result

    def _note(self, text):
        if len(self.notes) < 10:
            self.notes.append(text)

    def _titrate(self, ch):
        c = self.channels[ch]
        if c.dose is None:
            return self._status(ch)
        lo, hi = device.NOREPI_RANGE if ch == 1 else device.DOBUTAMINE_RANGE
        step = self.rng.choice(_STEP) * (1 if ch == 1 else 10)
        up = self.rng.random() < 0.5
        target = min(hi, c.dose + step) if up else max(lo, c.dose - step)

        def belief(c, r):
            c.state, c.dose = "running", r.dose
            self.accepted_titrations += 1

        self._do(
            "titrate",
            ch,
            lambda: self.pump.titrate(ch, str(target), "mcg/kg/min", override=up),
            belief,
        )

    def _start(self, ch):
        def belief(c, r):
            c.state, c.dose = "running", r.dose

        call = (lambda: device.start_norepinephrine(self.pump)) if ch == 1 else None
        call = call or (lambda: device.start_dobutamine(self.pump))
        self._do("start", ch, call, belief)

    def _stop(self, ch):
        def belief(c, r):
            c.state = "tapering" if r.plan else "stopped"

        self._do("stop", ch, lambda: self.pump.stop(ch), belief)

    def _status(self, ch):
        self._do("status", ch, lambda: self.pump.status(ch), lambda c, r: None)

    def _one(self):
        ch = 1 if self.rng.random() < 0.5 else 2
        c = self.channels[ch]
        if c.state in ("idle", "stopped"):
            self._start(ch)
        elif c.state != "running":
            self._status(ch)
        else:
            k = self.rng.random()
            if k < 0.75:
                self._titrate(ch)
            elif k < 0.9 or ch == 1:
                self._status(ch)
            else:
                self._stop(ch)

    # -- checkpoints --------------------------------------------------------------------

    def _read(self, what, attempts=8):
        for _ in range(attempts):
            try:
                return what()
            except (pumpguard.LinkError, pumpguard.DeviceReset):
                continue
        return None

    def _sync(self, log=True):
        """Compare every channel with the host's belief, and count the log's runs: the
        harness's reads go through a clean link (they measure, they are not tested)."""
        with self.relay.clean():
            return self._compare(log)

    def _compare(self, log):
        for ch, c in self.channels.items():
            s = self._read(lambda ch=ch: self.pump.status(ch))
            if s is None:
                return False
            same = s.state == c.state and (c.state != "running" or s.dose == c.dose)
            if not same and s.state == "stopped" and self._emptied(ch):
                same = True  # a long run emptied the syringe: the device did right
            if not same and not c.uncertain:
                self.divergences += 1
                self._note(
                    f"silent divergence ch {ch}: host believed {c.state} {c.dose}, "
                    f"device {s.state} {s.dose}"
                )
            c.state, c.dose, c.uncertain = s.state, s.dose, False
        return self._read_log() if log else True

    def _emptied(self, ch):
        alarms = self._read(self.pump.alarms)
        if alarms is None or not device.emptied(alarms, ch):
            return False
        self.emu.command(f"refill {ch}")
        self.refills += 1
        return True

    def _read_log(self):
        boot_id = self.pump.device["boot_id"]
        if boot_id != self._boot_id:
            # A new boot: a RAM log starts again at seq 0, a persistent one goes on;
            # reading from 0 serves both, and an entry seen before is not counted twice
            # (entries that carry their boot's id are told apart by it).
            self._boot_id = boot_id
            self._since = 0
        entries = self._read(lambda: self.pump.log(self._since))
        if entries is None:
            return False
        if entries and entries[0].seq > self._since:
            self.log_gaps += 1  # overwritten before it was read: runs undercounted
        for e in entries:
            key = (getattr(e, "boot_id", boot_id), e.seq)
            if key in self._seen:
                continue
            self._seen.add(key)
            if e.kind in COMMANDS and e.code == "received":
                self.ran[e.kind, e.channel] += 1
        if entries:
            self._since = entries[-1].seq + 1
        return True

    # -- the run ------------------------------------------------------------------------

    def run(self, commands):
        t0 = time.monotonic()
        with pumpguard.Emulator(runtime=self.runtime) as emu:
            self.emu = emu
            ready = device.connect_within(emu.port, emu.key)
            if ready is None:
                raise pumpguard.EmulatorError("the emulator never answered HELLO")
            ready.close()
            with Relay(emu.port, self.faults, self.seed) as relay:
                self.relay = relay
                pump = device.connect_within(
                    relay.port, emu.key, timeout=ANSWER_TIMEOUT_S, attempts=ATTEMPTS
                )
                if pump is None:
                    raise pumpguard.EmulatorError("no HELLO through the relay")
                self.pump = pump
                try:
                    self._sync()
                    while self.commands < commands:
                        self._one()
                        if self.commands % self.checkpoint == 0 or any(
                            c.uncertain for c in self.channels.values()
                        ):
                            self._sync(self.commands % self.log_every == 0)
                    time.sleep(_SETTLE_S)
                    self._sync()
                finally:
                    device.close_quietly(self.pump)
        self.wall_s = time.monotonic() - t0
        return self

    @property
    def applied_twice(self):
        return sum(max(0, self.ran[k] - self.issued[k]) for k in self.ran)

    def figures(self):
        relay = getattr(self, "relay", None)
        counts = dict(relay.counts) if relay else {}
        lines = [
            f"noisy link [{self.runtime}]: {self.commands} commands "
            f"({self.accepted_titrations} accepted titrations) in {self.wall_s:.0f} s",
            f"  faults: {', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}",
            f"  {self.applied_twice} applied twice, {self.divergences} silent divergences, "
            f"{self.unexpected} unexpected exceptions; link errors "
            f"{dict(self.link_errors)}, {self.resets} resets seen, {self.log_gaps} log gaps, "
            f"{self.refills} syringes refilled",
        ]
        lines += ["  " + n for n in self.notes]
        return lines
