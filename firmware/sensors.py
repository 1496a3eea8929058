# What the core hears of each motor's fault sensors (firmware/shell.py, every turn): a
# fault from the turn its sensor reports it, one that turns into another at once too,
# and its end only once the sensor has read clear for CLEAR_MS. So a sensor that
# chatters is one fault, not an alarm, a log entry and a store write for every edge.
# Times are the clock's ticks_ms, compared by ticks_diff: small ints, nothing allocated.
# One fault per channel: a motor reports the first of its sensors that reads one
# (boards/drivers/stepper.py), so air that begins during an occlusion is heard when the
# occlusion ends (the channel is stopped either way).
from micropython import const

CLEAR_MS = const(1_000)


class Sensors:
    def __init__(self, channels, clock):
        self._clock = clock
        self.heard = [None] * channels  # per channel: the fault the core was last told
        self._clear_from = [None] * channels  # ticks_ms its sensor first read clear

    def changed(self, i, fault, t):
        """Whether motor i's sensor, reading fault (a kind or None) at ticks_ms t, is
        news for the core (core.fault()); heard[i] is then what it is to hear."""
        held = self.heard[i]
        if fault is not None or held is None:
            self._clear_from[i] = None
        elif self._clear_from[i] is None:
            self._clear_from[i] = t
            return False
        elif self._clock.ticks_diff(t, self._clear_from[i]) < CLEAR_MS:
            return False
        if fault == held:
            return False
        self.heard[i] = fault
        return True
