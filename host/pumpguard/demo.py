"""``make run``: the seed scenario, played on the emulated board through the real API.

A patient at 60/40 mmHg on norepinephrine (seed 002_2e899deec2a64180.txt): the
firmware runs in the emulator, this script talks to it over the emulator's PTY exactly
as it would to a board, and prints a timeline of each command, the safety layer's
decision and the rates the motors run at. The emulator's clock is fast-forwarded
between steps, with the host polling the pump meanwhile as a central station would.
"""

import sys

import pumpguard
from pumpguard import Alarm, Decision, StateChange, Stopped
from pumpguard._board.protocol.text import duration
from pumpguard.errors import EXIT_OK

NOREPINEPHRINE = {"weight_kg": "70", "concentration": "16 mcg/mL", "volume_ml": "50"}
VASOPRESSIN = {"concentration": "1 units/mL", "volume_ml": "20"}


class Timeline:
    """Prints each step at the device's virtual time since the scenario began."""

    def __init__(self, emu, pump):
        self.emu = emu
        self.pump = pump
        self.t0 = pump.uptime_ms()

    def clock(self):
        return "t+" + duration(self.pump.uptime_ms() - self.t0)

    def say(self, text):
        print(f"{self.clock():<13} {text}")

    def note(self, text):
        print(f"{'':13} {text}")

    def wait(self, minutes, why):
        print(f"{'':13} ... {minutes} min: {why}")
        self.emu.advance(minutes * 60, keepalive=self.pump.uptime_ms)
        self.events()

    def command(self, text, action):
        """Run one API call; print the decision (accepted, or refused and why)."""
        self.say(f"> {text}")
        try:
            result = action()
        except pumpguard.RefusedError as exc:
            self.note(f"REFUSED: {exc.message}{exc.when()}")
            if exc.allowed:
                lo, hi, unit = exc.allowed
                self.note(f"allowed range: {_q(lo)} to {_q(hi)} {unit}")
            return None
        if isinstance(result, Decision):
            self.note(f"accepted: {result.dose} {result.dose_unit}, motor {result.rate_ml_h} mL/h")
        elif isinstance(result, Stopped):
            self.note(f"accepted: tapering in {len(result.plan)} steps, never an abrupt stop")
        return result

    def rates(self):
        for ch in (1, 2):
            s = self.pump.status(ch)
            if s.drug:
                empty = ""
                if s.time_to_empty_s:
                    empty = f", empty in {duration(s.time_to_empty_s * 1000)}"
                self.note(
                    f"channel {ch}: {s.state} {s.drug} {s.dose} {s.dose_unit} at "
                    f"{s.rate_ml_h} mL/h, {s.volume_infused_ml} mL infused{empty}"
                )
            else:
                self.note(f"channel {ch}: {s.state}")

    def events(self):
        for event in self.pump.events():
            if isinstance(event, Alarm):
                self.note(f"ALARM ({event.priority}): {event.message}")
            elif isinstance(event, StateChange) and event.drug:
                self.note(
                    f"channel {event.channel}: {event.state}, {event.drug} {event.dose} "
                    f"{event.dose_unit} = {event.rate_ml_h} mL/h"
                )


def _q(value):
    return "-" if value is None else str(value)


def play(emu, pump):
    t = Timeline(emu, pump)
    info = pump.info()
    print(
        f"pumpguard demo on {emu.port}: board {info.board}, {info.channels} channels, "
        f"library {info.library} {info.library_version}"
    )
    print("seed 002: a patient at 60/40 mmHg on norepinephrine, 70 kg\n")

    t.command(
        "start channel 1: norepinephrine 0.05 mcg/kg/min (16 mcg/mL, 50 mL syringe)",
        lambda: pump.start(1, "norepinephrine", "0.05", "mcg/kg/min", **NOREPINEPHRINE),
    )
    t.wait(2, "still 60/40 mmHg")
    t.command(
        "titrate channel 1 to 0.15 mcg/kg/min",
        lambda: pump.titrate(1, "0.15", "mcg/kg/min"),
    )
    t.command(
        "titrate channel 1 to 0.2 mcg/kg/min straight away",
        lambda: pump.titrate(1, "0.2", "mcg/kg/min"),
    )
    t.wait(2, "MAP 55 mmHg: seed 002 adds vasopressin to the catecholamine")
    t.command(
        "start channel 2: vasopressin 0.03 units/min (1 units/mL, 20 mL)",
        lambda: pump.start(2, "vasopressin", "0.03", "units/min", **VASOPRESSIN),
    )
    t.command(
        "titrate channel 2 to vasopressin 0.05 units/min",
        lambda: pump.titrate(2, "0.05", "units/min"),
    )
    t.command(
        'titrate channel 1 to "0.02 mg/kg/min" (seed 004 writes the dose that way)',
        lambda: pump.titrate(1, "0.02", "mg/kg/min"),
    )
    t.wait(20, "MAP 68 mmHg, target reached")
    t.rates()
    t.say("weaning: MAP stable above 65 mmHg")
    t.command(
        "titrate channel 1 down to 0.1 mcg/kg/min",
        lambda: pump.titrate(1, "0.1", "mcg/kg/min"),
    )
    t.wait(5, "stable")
    stopped = t.command("stop channel 1 (norepinephrine)", lambda: pump.stop(1))
    if not isinstance(stopped, Stopped) or not stopped.plan:
        # Refused (printed above) or stopped at once: no taper to wait for.
        t.say("norepinephrine did not taper; scenario ends here")
        return
    for step in stopped.plan:
        when = duration(int(step.in_s * 1000))
        t.note(f"taper step in {when:<11} {step.dose} {stopped.dose_unit}")
    last = stopped.plan[-1]
    t.wait(round(last.in_s) // 60 + 1, "the pump tapers on its own")
    t.rates()
    alarms = pump.alarms()
    t.say(f"{len(alarms)} alarm(s) listed")
    for a in alarms:
        t.note(f"alarm {a.id} ({a.priority}, {a.code}): {a.message}")
        pump.ack(a.id)
    t.say("all alarms acknowledged; scenario done")


def main():
    # A generous answer timeout: the demo runs on whatever machine, busy or not.
    with (
        pumpguard.Emulator(time_scale=10) as emu,
        pumpguard.connect(emu.port, key=emu.key, timeout=2) as pump,
    ):
        play(emu, pump)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
