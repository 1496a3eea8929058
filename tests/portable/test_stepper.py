# The step/dir motor port with dummy pins and a dummy microsecond clock.
from boards.drivers.stepper import StepDirMotor

_US_MASK = (1 << 30) - 1


class Pin:
    def __init__(self):
        self.v = 0
        self.rises = 0

    def value(self, v=None):
        if v is None:
            return self.v
        if v and not self.v:
            self.rises += 1
        self.v = v


class Clock:
    def __init__(self):
        self.us = _US_MASK - 1000  # about to wrap

    def ticks_us(self):
        return self.us

    def ticks_add(self, a, b):
        return (a + b) & _US_MASK

    def ticks_diff(self, a, b):
        d = (a - b) & _US_MASK
        return d - _US_MASK - 1 if d >= (1 << 29) else d


def _motor(sensors=()):
    step, direction, enable, clock = Pin(), Pin(), Pin(), Clock()
    return StepDirMotor(step, direction, enable, 720, clock, sensors), step, enable, clock


def test_rate_becomes_steps_and_steps_become_volume():
    motor, step, enable, clock = _motor()
    assert enable.value() == 1  # driver off until a rate is set
    motor.set_rate(36_000000)  # 36 mL/h = 7.2 steps/s at 720 steps/mL: one per 138888 us
    assert enable.value() == 0
    total = 0
    for _ in range(1000):  # 10 s in 10 ms turns, across the us wrap
        clock.us = clock.ticks_add(clock.us, 10000)
        total += motor.delivered()
    assert step.rises == 72
    assert total == 72 * 1000000 // 720  # 0.1 mL, exactly what the steps pushed


def test_zero_rate_stops_and_releases_the_driver():
    motor, step, enable, clock = _motor()
    motor.set_rate(36_000000)
    motor.set_rate(0)
    clock.us = clock.ticks_add(clock.us, 1000000)
    assert motor.delivered() == 0 and step.rises == 0
    assert enable.value() == 1


def test_sensors_report_their_fault():
    occlusion = Pin()
    motor = _motor((("occlusion", occlusion),))[0]
    assert motor.fault() is None
    occlusion.value(1)
    assert motor.fault() == "occlusion"


def test_the_syringe_left_is_the_volume_loaded_less_the_steps_taken():
    step, direction, enable, clock = Pin(), Pin(), Pin(), Clock()
    motor = StepDirMotor(step, direction, enable, 720, clock, (), 50_000000)
    assert motor.syringe() == 50_000000
    motor.load(1_000000)  # a start programmed 1 mL
    motor.set_rate(36_000000)
    total = 0
    for _ in range(1000):  # 10 s: 72 steps, 0.1 mL
        clock.us = clock.ticks_add(clock.us, 10000)
        total += motor.delivered()
    assert motor.left() == 1_000000 - total == 900000
    motor.load(0)
    clock.us = clock.ticks_add(clock.us, 1000000)
    motor.delivered()
    assert motor.left() == 0  # never below empty


def test_before_a_start_loads_it_the_driver_measures_nothing():
    # After a reset the driver has counted nothing: a 0 here made a restored infusion
    # "empty" in the first turn (the review of issue 9, finding 1); None leaves the
    # firmware's restored count in charge. No capacity given: none known, not 0 mL.
    motor, step, enable, clock = _motor()
    assert motor.left() is None and motor.syringe() is None
    motor.set_rate(36_000000)
    clock.us = clock.ticks_add(clock.us, 1000000)
    assert motor.delivered() > 0 and motor.left() is None
