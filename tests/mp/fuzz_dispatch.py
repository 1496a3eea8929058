# The dispatch fuzz (tests/portable/dispatchfuzz.py) as an entry for the real
# MicroPython interpreter:
#
#   node tests/mp/run.mjs tests/mp/fuzz_dispatch.py SEED COUNT EVERY RECORDS [DUMP_FROM DUMP_TO]
#
# RECORDS 1: the store fuzz too (records edited and sealed again), 0: messages only.
#
# prints the fuzz's lines; tests/test_soak_fuzz.py runs it and compares them with
# CPython's, `make fuzz` runs it long. Exit code 1 when anything escaped.
import sys

from tests.portable import dispatchfuzz

_args = [int(a) for a in sys.argv[1:]]
_dump = (_args[4], _args[5]) if len(_args) == 6 else None
_fz = dispatchfuzz.run(_args[0], _args[1], _args[2], print, _dump, _args[3] == 1)
EXIT_CODE = 1 if _fz.escapes or _fz.boot_escapes else 0
