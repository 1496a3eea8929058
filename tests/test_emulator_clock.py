"""The emulator's clock and watchdog under a scaled clock and a stalled host process.

Real time is a fake one here, moved by the test: a stall is a jump of it, exactly where
the test puts it (while the board idles between turns, as a descheduled process would),
so nothing depends on how fast this machine runs.
"""

import io

import pytest

# The emulator's own view of the board (pumpguard._board): the clock and the wait patched
# here must be the ones server.py's board runs on, not the checkout's second copy.
from pumpguard._board.boards import emulator
from pumpguard._board.boards.emulator import hardware
from pumpguard._board.firmware import main as firmware_main
from pumpguard.emulator import server

from tests.portable.corekit import start_norepinephrine
from tests.portable.coreview import status_of

STALL_S = 0.027  # the scheduling stall seen on a loaded machine
TURN_S = 0.0002  # a loop turn's real time at --time-scale 1000
MS_PER_HOUR = 3_600_000


class _Time:
    """time.monotonic and time.sleep over a clock the test moves."""

    def __init__(self):
        self.t = 1000.0

    def monotonic(self):
        return self.t

    def sleep(self, seconds):
        self.t += seconds


@pytest.fixture
def fake_time(monkeypatch):
    fake = _Time()
    monkeypatch.setattr(hardware, "time", fake)
    return fake


def _real_time_of_turn(turn):
    return STALL_S if turn % 10 == 0 else TURN_S


def test_a_stall_at_1000x_moves_the_clock_a_second_at_most_and_never_starves_the_watchdog(
    fake_time,
):
    clock = hardware.VirtualClock(1000)
    watchdog = hardware.Watchdog(clock, emulator.WATCHDOG_MS)
    pump = hardware.SyringePump(clock, emulator.SYRINGES_ML)
    rate = 26_250000  # 26.25 mL/h
    pump.set_rate(rate)
    start = clock.now()
    last = clock.ticks_ms()
    given = delivered = 0
    for turn in range(1, 1001):
        fake_time.t += _real_time_of_turn(turn)  # the board idles: here the host stalls
        watchdog.check()  # 27 ms of real time unfed: far from the board's 8 s
        ticks = clock.ticks_ms()
        step = clock.ticks_diff(ticks, last)
        last = ticks
        assert 0 <= step <= 1000  # a 27 s jump at 1000x is given as one second
        given += step
        delivered += pump.delivered()
        watchdog.feed()
    assert clock.now() - start == given
    # 100 stalls of 27 ms are 2,700 s at 1000x: each was given as one second, no more.
    assert given <= 100 * 1000 + 900 * 201
    # Every millilitre the syringe pushed is the rate over the virtual time given, exactly.
    assert delivered == pump.pumped == rate * given // MS_PER_HOUR


def test_the_watchdog_starves_on_real_time_and_on_fast_forwarded_time(fake_time):
    clock = hardware.VirtualClock(1000)
    watchdog = hardware.Watchdog(clock, emulator.WATCHDOG_MS)
    fake_time.t += 7.9  # 7.9 s of real time unfed: 2 hours of virtual time at 1000x
    clock.ticks_ms()
    watchdog.check()
    fake_time.t += 0.2
    with pytest.raises(hardware.WatchdogReset):
        watchdog.check()
    # `advance` is time passing for the watchdog too: a dead firmware resets within it.
    watchdog.feed()
    clock.advance(10_000)
    for _ in range(8):
        clock.ticks_ms()
    watchdog.check()  # 8 s fast-forwarded: not over the 8 s yet
    clock.ticks_ms()
    with pytest.raises(hardware.WatchdogReset):
        watchdog.check()


def test_a_scaled_run_of_the_firmware_under_stalls_never_resets_and_counts_every_microlitre(
    fake_time, monkeypatch, tmp_path
):
    # The whole cpython runtime's board at --time-scale 1000: the firmware's loop turns
    # on the emulator's clock, idling in the emulator's wait, where every tenth wait
    # the host process stalls for 27 ms (27 virtual seconds at 1000x).
    turns = [0]

    def stalled_wait(fds, timeout):
        turns[0] += 1
        fake_time.t += _real_time_of_turn(turns[0])
        return []

    monkeypatch.setattr(hardware, "wait_readable", stalled_wait)
    board = server._Board(emulator, 1000, None, str(tmp_path), run=None, out=io.StringIO())
    board.control.fd = None  # no control input here
    try:
        board.watchdog = hardware.Watchdog(board.clock, emulator.WATCHDOG_MS)  # as boot()
        shell = firmware_main.start(emulator, board._ports(), boot_id=1, bundle="")
        assert start_norepinephrine(shell.core, now=shell.uptime_ms()).code == "ok"
        shell.turn()  # the motor is set to the rate in this turn
        began = board.clock.now()
        for _ in range(2000):
            shell.turn()  # raised WatchdogReset on the first stall while it was virtual
        given = board.clock.now() - began
    finally:
        board.link.close()
    assert given > 60_000  # scaled: minutes of virtual time in seconds of real time
    pump = board.pumps[0]
    assert pump.pumped == pump.rate * given // MS_PER_HOUR
    assert status_of(shell.core, 1).volume_infused == pump.pumped


@pytest.mark.parametrize("scale", [1, 60])
def test_quiet_turns_back_off_and_anything_heard_wakes_the_next_turn_at_once(scale):
    # An idle emulator's loop (the firmware sleeps 1 ms a turn) must not burn a core:
    # quiet turns wait longer, up to IDLE_MAX_MS (virtual, and never more real ms); a
    # turn that heard the link or a command, and a fast-forward, wait 1 ms again.
    clock = hardware.VirtualClock(scale)
    waits = []
    heard = []
    clock.idle = lambda s: waits.append(s) or (heard.pop() if heard else False)
    for _ in range(10):
        clock.sleep_ms(1)
    longest = min(hardware.IDLE_MAX_MS / scale, hardware.IDLE_MAX_MS) / 1000
    assert waits[0] == pytest.approx(0.001 / scale)
    assert waits[-1] == pytest.approx(longest) and max(waits) == pytest.approx(longest)
    assert waits == sorted(waits)
    heard.append(True)
    clock.sleep_ms(1)  # hears something
    clock.sleep_ms(1)
    assert waits[-1] == pytest.approx(0.001 / scale)
    for _ in range(10):
        clock.sleep_ms(1)
    clock.advance(5000)
    clock.sleep_ms(1)  # fast-forwarding: no wait at all
    while clock.fast_forwarding():
        clock.ticks_ms()
    n = len(waits)
    clock.sleep_ms(1)
    assert len(waits) == n + 1 and waits[-1] == pytest.approx(0.001 / scale)
