# The dispatch fuzz (tests/portable/dispatchfuzz.py) as an entry for the real
# MicroPython interpreter:
#
#   node tests/mp/run.mjs tests/mp/fuzz_dispatch.py SEED COUNT EVERY RECORDS [DUMP_FROM DUMP_TO]
#
# RECORDS 1: the store fuzz too (records edited and sealed again), 0: messages only.
#
# prints the fuzz's lines; tests/test_soak_fuzz.py runs it and compares them with
# CPython's, `make fuzz` runs it long. Exit code 1 when anything escaped or anything
# unauthenticated ran.
import sys

from tests.portable import dispatchfuzz

_args = [int(a) for a in sys.argv[1:]]
_dump = (_args[4], _args[5]) if len(_args) == 6 else None
# Chunks of at most 1000 inputs: run.mjs collects garbage between them.
_every = _args[2]
_chunk = min(_every, 1000) if _every % min(_every, 1000) == 0 else _every


def _phases():
    global EXIT_CODE
    for fz in dispatchfuzz.phases(_args[0], _args[1], _chunk, _shown, _dump, _args[3] == 1):
        EXIT_CODE = 1 if fz.escapes or fz.boot_escapes or fz.unauthenticated else 0
        yield


def _shown(line):
    # Only every `EVERY`-th digest line is printed (the chunks are for the collector).
    if line.startswith("fuzz ") and line.split()[1].isdigit():
        done = int(line.split()[1])
        if done % _every and done != _args[1]:
            return
    print(line)


PHASES = _phases()
