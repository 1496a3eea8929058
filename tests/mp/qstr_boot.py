# The interned strings (qstrs) of the firmware's life on the MicroPython unix port, with
# the test harness the bounded-heap runner loads: its import, a boot on a fresh store and
# a boot that restores the record the first wrote (tests/test_qstr_budget.py runs it:
# micropython -X heapsize=600k tests/mp/qstr_boot.py ROOT DIR). MicroPython never frees
# a qstr and grows its pools by doubling: on this build the 6th pool fills at about
# 1,260 and the next name costs a 7th of ~14 KB at once. Prints qstr_info()'s line after
# each phase, headed by the phase's name.
import os
import sys

import micropython

ROOT = sys.argv[1]
DIR = sys.argv[2]
sys.path[:] = [ROOT + "/build/bundle/emulator", ROOT]

print("phase start")
micropython.qstr_info()

import tests.mp.firmware_memory as m  # noqa: E402  (the harness, and the firmware it imports)
from boards.drivers.filestore import FileStore  # noqa: E402
from firmware import main  # noqa: E402

print("phase imported")
micropython.qstr_info()
store = FileStore(DIR)
store.write("keys", m._ports["store"].read("keys"))
m._ports["store"] = store
for boot in (1, 2):
    sh = main.start(m.board, m._ports, boot_id=boot, bundle="")
    for _ in range(3):
        m._clock.advance(1)
        sh.step()
    sh = None
    print("phase " + ("fresh" if boot == 1 else "restoring"))
    micropython.qstr_info()
for name in os.listdir(DIR):
    os.remove(DIR + "/" + name)
