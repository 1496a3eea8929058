# Channel state across resets: one record in the store, replaced atomically.
#
#   state.json:  b"pumpguard-state 1 <crc32 as 8 hex digits>\n" + JSON body
#   body:        {"uptime_ms": <uptime when saved>, "core": <SafetyCore.snapshot()>}
#
# save() writes state.tmp and renames it over state.json, so a reset in the middle
# leaves the previous record whole; the CRC-32 (over the body bytes) catches a record
# damaged anyway (flash wear, a hand edit). load() tells three cases apart: no record
# (first boot: nothing to restore), a good record, and a bad one (StoreError: the shell
# starts with every channel idle and raises an alarm; it never guesses an infusion).
#
#   state.used:  empty; written at the first boot, before the first record. Without it
#                a missing record looks like a first boot: a record deleted while a
#                vasopressor ran would bring the pump back idle and silent. With it, a
#                missing record in a store that once held one is a StoreError too.
import json
from binascii import crc32

_NAME = "state.json"
_TMP = "state.tmp"
_USED = "state.used"
_MAGIC = b"pumpguard-state 1 "


class StoreError(Exception):
    """The state record exists but cannot be trusted; the message says why."""


def save(store, snapshot, uptime_ms):
    body = json.dumps({"uptime_ms": uptime_ms, "core": snapshot}).encode()
    store.write(_TMP, _MAGIC + ("%08x\n" % crc32(body)).encode() + body)
    store.rename(_TMP, _NAME)


def load(store):
    """(snapshot, uptime_ms) from the store, None on a first boot (no record ever)."""
    record = store.read(_NAME)
    used = store.read(_USED) is not None
    if not used:
        # Marked before the first record is written (the shell saves one as it begins),
        # so a store ever written to is never taken for a new one again.
        store.write(_USED, b"")
    if record is None:
        if used:
            raise StoreError("state record missing from a store that held one")
        return None
    head = len(_MAGIC)
    if record[:head] != _MAGIC or record[head + 8 : head + 9] != b"\n":
        raise StoreError("state record has no valid header")
    body = record[head + 9 :]
    try:
        crc = int(record[head : head + 8], 16)
    except ValueError:
        raise StoreError("state record header is damaged") from None
    if crc32(body) != crc:
        raise StoreError("state record fails its CRC (%08x, expected %08x)" % (crc32(body), crc))
    try:
        data = json.loads(body.decode())
        return data["core"], data["uptime_ms"]
    except (ValueError, KeyError, TypeError):
        raise StoreError("state record passes its CRC but is not a state record") from None
