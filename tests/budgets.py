"""make test's budget of a property or fuzz test against make fuzz's: make fuzz sets
HYPOTHESIS_PROFILE=long, and each test draws its long figure then (the Makefile's fuzz
comment lists both figures of every such test). In the MicroPython subset, as the
portable tests read it on both interpreters: MicroPython's unix port reads the variable
as CPython does (os.getenv), its WebAssembly port has no environment, and there
tests/mp/runner.py --long sets LONG (make fuzz runs the portable tests so)."""

import os

LONG = hasattr(os, "getenv") and os.getenv("HYPOTHESIS_PROFILE") == "long"


def budget(short, long):
    """short in make test, long in make fuzz."""
    return long if LONG else short
