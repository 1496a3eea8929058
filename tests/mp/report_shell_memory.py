# Memory report for the firmware shell's main loop, on MicroPython (printed by
# `make test`): bytes allocated by an idle loop turn (nothing on the link, motors at
# their rates, the core ticking), with one channel running. The goal is 0, proven by
# running the turns under micropython.heap_lock() (an allocation raises MemoryError).
# EXIT_CODE = 1 if an idle turn allocates.
import gc

import micropython

from tests.portable.shellkit import NOREPI, Host, ports, shell

_TURNS = 500


def _idle_turns(sh, clock):
    for _ in range(_TURNS):
        clock.advance(1)
        sh.step()


p = ports()
sh = shell(p)
host = Host(sh, p)
host.hello()
host.request("START", NOREPI)
for _ in range(3):  # let the first saves and events settle
    sh.step()
gc.collect()
micropython.heap_lock()
try:
    _idle_turns(sh, p["clock"])
    failure = None
except MemoryError as exc:
    failure = exc
finally:
    micropython.heap_unlock()
if failure is None:
    print(
        "shell memory: idle loop turn, 1 channel running: 0 bytes in %d turns (heap_lock)" % _TURNS
    )
else:
    print("shell memory: idle loop turn ALLOCATES: %r" % (failure,))
    EXIT_CODE = 1
