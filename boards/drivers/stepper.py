# The motor port for a syringe driver on step/dir pins (A4988/TMC2208 style driver,
# lead screw pushing the plunger). Rates are millionths of mL/h, as everywhere.
#
# Steps are timed from the main loop, not from an interrupt: the fastest rate of a
# typical board (about 200 steps/s) is far below the loop's rate, and every step the
# driver really took is counted, so delivered() reports what moved, never what was
# wished for. A loop that fell behind catches up a few steps at a time.
from micropython import const

_US_PER_HOUR_MICRO = const(3_600_000_000)  # us per hour; times 10^6 below for micro-mL
_CATCH_UP = const(4)  # most steps issued in one service call


class StepDirMotor:
    def __init__(self, step, direction, enable, steps_per_ml, clock, sensors=(), capacity=None):
        # step, direction, enable: machine.Pin outputs (enable active low, as on
        # A4988/TMC2208 boards). sensors: (kind, Pin) inputs that read 1 on a fault,
        # kind being occlusion | air_in_line | syringe_empty. clock: the time module
        # (ticks_us, ticks_add, ticks_diff), or a fake one in tests. capacity: the
        # syringe its steps per mL are for (millionths of mL; None: not known).
        self._clock = clock
        self._capacity = capacity
        # The volume loaded, less every step taken since (micro mL); None until a start
        # loads it: after a reset the firmware's restored count is all there is, and a
        # 0 here would stop a restored infusion as empty.
        self._held = None
        self._step = step
        self._enable = enable
        self._spm = steps_per_ml
        self._sensors = sensors
        self._period_us = 0  # 0: stopped
        self._next_us = 0
        self._steps = 0  # steps taken since the last delivered()
        self._carry = 0  # step fraction of a micro-mL not yet reported
        direction.value(1)  # plunger forward
        enable.value(1)  # driver off until a rate is set

    def set_rate(self, rate):
        """Run at rate (millionths of mL/h); 0 stops and releases the driver."""
        if rate <= 0:
            self._period_us = 0
            self._enable.value(1)
            return
        # Done once per rate change, so a long integer here costs nothing in the loop.
        self._period_us = max(1, _US_PER_HOUR_MICRO * 1_000_000 // (rate * self._spm))
        self._next_us = self._clock.ticks_add(self._clock.ticks_us(), self._period_us)
        self._enable.value(0)

    def delivered(self):
        """Volume pushed since the last call, in millionths of mL."""
        if self._period_us:
            now = self._clock.ticks_us()
            n = 0
            while n < _CATCH_UP and self._clock.ticks_diff(now, self._next_us) >= 0:
                self._step.value(1)
                self._step.value(0)
                self._next_us = self._clock.ticks_add(self._next_us, self._period_us)
                n += 1
            self._steps += n
        if not self._steps:
            return 0
        self._carry += self._steps * 1_000_000
        self._steps = 0
        volume = self._carry // self._spm
        self._carry -= volume * self._spm
        if self._held is not None:
            self._held = max(0, self._held - volume)
        return volume

    def syringe(self):
        """The syringe's capacity: the one this driver's steps per mL are for."""
        return self._capacity

    def load(self, volume):
        """A start programmed volume (millionths of mL): the travel counts from it."""
        self._held = volume

    def left(self):
        """The volume loaded less the steps taken since (no plunger sensor here, so the
        measure is the steps themselves), or None before a start loaded one."""
        return self._held

    def fault(self):
        """The first sensor reporting a fault (occlusion...), or None."""
        for kind, pin in self._sensors:
            if pin.value():
                return kind
        return None
