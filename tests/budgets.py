"""make test's budget of a property test against make fuzz's: make fuzz sets
HYPOTHESIS_PROFILE=long, and each test draws its long figure then (the Makefile's fuzz
comment lists both figures of every such test)."""

import os

LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long"


def budget(short, long):
    """short in make test, long in make fuzz."""
    return long if LONG else short
