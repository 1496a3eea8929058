# The state record read back at a boot (persist.Record.load(), boot_attempts()): the
# cases load() tells apart (first boot, damage, a rollback) and the boot marks
# (firmware/persist.py says what each file is). A boot's only: imported for the call
# and dropped after it (druglib.call), so a running pump holds none of this code.
import json
from binascii import crc32

from micropython import const

from firmware import jsontext, persist

# The deepest the record's JSON nests (body, core, channels, a channel): anything deeper
# is not a state record, and is refused before the parser recurses into it.
_DEPTH_MAX = const(4)


def _parse(body):
    """The JSON value of body, or None when it is none (or nests deeper than a record)."""
    if jsontext.depth(body) > _DEPTH_MAX:
        return None
    try:
        if body and max(body) < 0x80:  # ASCII, as every record this firmware writes
            try:
                return json.loads(body)  # MicroPython parses the view: no copy of it
            except TypeError:  # CPython's json takes no memoryview
                return json.loads(bytes(body))
        return json.loads(str(body, "utf-8"))  # past ASCII: its UTF-8 checked
    except ValueError:  # not JSON, or not UTF-8 (UnicodeError is a ValueError)
        return None


def load(rec):
    """(snapshot, uptime_ms) from the store, None on a first boot (no record ever).
    The snapshot is only known to be what a firmware wrote: firmware/resume.py checks it."""
    store = rec._store
    rec._held = True  # until the reads below return: an OSError leaves it held
    slot = rec._slot()
    rec.gen = slot or 0
    record = store.read(persist._NAME)
    used = store.read(persist._USED) is not None
    rec._held = False
    if not used:
        # Marked before the first record is written (the shell saves one as it begins),
        # so a store ever written to is never taken for a new one again.
        try:
            store.write(persist._USED, b"")
        except OSError as exc:  # a failing store: the record still loads (main alarms)
            rec.failed = exc
    if record is None:
        if slot is not None:
            raise persist.StoreError("state record %d missing from the store" % (slot,))
        if used:
            raise persist.StoreError("state record missing from a store that held one")
        return None
    head = len(persist._MAGIC)
    if record[:head] != persist._MAGIC or record[head + 8 : head + 9] != b"\n":
        raise persist.StoreError("state record has no valid header")
    body = memoryview(record)[head + 9 :]  # a view: the record is not copied
    try:
        crc = int(record[head : head + 8], 16)
    except ValueError:
        raise persist.StoreError("state record header is damaged") from None
    if crc32(body) != crc:
        raise persist.StoreError(
            "state record fails its CRC (%08x, expected %08x)" % (crc32(body), crc)
        )
    data = _parse(body)
    if type(data) is dict and len(data) == 2:
        data["gen"] = 0  # written before the counter existed: the oldest there is
    if not (
        type(data) is dict
        and len(data) == 3
        and type(data.get("core")) is dict
        and persist.is_count(data.get("uptime_ms"))
        and persist.is_count(data.get("gen"))
    ):
        raise persist.StoreError("state record passes its CRC but is not a state record")
    gen = data["gen"]
    if slot is None and gen > 1:
        # The counter is written after every record, so a record past the first
        # (gen 1: a reset may fall between it and its counter) always has one; gen 0
        # is a record from before the counter existed. Without it, this may be an
        # old copy put back with the counter removed: nothing is resumed from it.
        raise persist.RolledBack("state record %d has no store counter beside it" % (gen,))
    if slot is not None and gen < slot:
        raise persist.RolledBack(
            "state record %d is older than the store's counter %d" % (gen, slot)
        )
    rec.gen = gen
    return data["core"], data["uptime_ms"]


def boot_attempts(rec):
    """How many boots before this one failed while restoring the record (each was
    counted in state.boot before it restored anything); this one is counted now,
    until booted(). Any record written since such a boot came from the record it
    restored, so they count against the same record, whatever its counter says.
    Raises OSError when the store cannot be read or written."""
    store = rec._store
    raw = store.read(persist._BOOT)
    tried = 0
    if raw:
        parts = raw.split()
        try:
            tried = int(parts[1]) if len(parts) == 2 else 0
        except ValueError:
            tried = 0
    tried = tried if persist.is_count(tried) else 0
    store.write(persist._BOOT, ("%d %d" % (rec._slot() or 0, tried + 1)).encode())
    rec._marked = True
    return tried
