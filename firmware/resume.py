# Restore re-verifies: what the safety core calls (SafetyCore.restore(), snapshot()),
# resident. The re-verification itself, a record's format, types and ranges, then each
# channel against the rules before it delivers again, is firmware/reverify.py: run at a
# boot and a library push only, imported for the call and dropped after it.
from firmware import druglib
from firmware.recordtext import VERSION  # noqa: F401 (SafetyCore.snapshot()'s)

_REVERIFY = ("reverify",)


def restore(core, snapshot, now_ms):
    """Fill core (just built for this library and board, its channels idle) from
    snapshot; raises ValueError, changing nothing a caller keeps, when the record fails
    its checks (firmware/reverify.py restore())."""
    druglib.call(_REVERIFY, "restore", core, snapshot, now_ms)
