# The state record read back at a boot (persist.Record.load(), boot_attempts()): the
# cases load() tells apart (first boot, damage, a rollback) and the boot marks
# (firmware/persist.py says what each file is). A boot's only: imported for the call
# and dropped after it (druglib.call), so a running pump holds none of this code.
import io
import json
from binascii import crc32

from micropython import const

from firmware import jsontext, persist
from firmware.recordtext import HEAD, MAGIC

# persist.py's files this module reads (its private const()s: no names there to import)
_NAME = const("state.json")
_USED = const("state.used")
_BOOT = const("state.boot")
# The deepest the record's JSON nests (body, core, channels, a channel): anything deeper
# is not a state record, and is refused before the parser recurses into it.
_DEPTH_MAX = const(4)
_EIO = const(5)


class _Body(io.IOBase):
    """The record's body (the file past its header) read back through window, the
    record's own buffer past the header the saves keep in it (recordtext.Text), a window
    at a time: checked (check()), then parsed from it (json.load(), readinto()), its CRC
    taken again as it is parsed (crc: a read that differs from the check's is caught).
    Each name it holds is MicroPython's for good (tests/test_qstr_budget.py): _read()
    reads its windows and CRC itself.
    A record of any length is never one block of the heap: read whole (f.read(), its
    buffer grown to 1.5 KB for a record of 1,371 B) it was the largest block of a
    restoring boot after 36 h, three alarms in the record, and 190k failed there or in
    resume.py's import beside the parse (measured, 72 h at 190k)."""

    def __init__(self, store, window):
        self._store = store
        self._window = window
        self._at = HEAD  # the file's offset of the next window
        self._pos = 0  # what readinto() handed over of the window read
        self._len = 0  # the bytes the window read holds
        self.crc = 0  # of the windows read since the pass began

    def _fill(self):
        """The next window read: its length, 0 past the end. The record was there: a
        store that cannot read it now (readinto()'s None) fails as its read() does."""
        n = self._store.readinto(_NAME, self._at, self._window)
        if n is None:
            raise OSError(_EIO, "the state record cannot be read")
        self._at += n
        self._pos = 0
        self._len = n
        if n:
            self.crc = crc32(self._window[:n], self.crc)
        return n

    def check(self):
        """(CRC-32, depth) of the body, a window at a time (jsontext.scan()); the parse
        then reads it from the start."""
        nested = [0, 0, 0]
        while self._fill():
            jsontext.scan(self._window[: self._len], nested)
        crc = self.crc
        self._at = HEAD
        self._len = 0
        self.crc = 0
        return crc, nested[1]

    def readinto(self, b):
        # MicroPython's json.load() reads through this, a byte at a time (io.IOBase):
        # copied by index, no slice made (a view per byte: 33 KB for a 1.9 KB record)
        if self._pos == self._len and not self._fill():
            return 0
        n = min(len(b), self._len - self._pos)
        window = self._window
        at = self._pos
        for i in range(n):
            b[i] = window[at + i]
        self._pos = at + n
        return n

    def read(self):
        # CPython's json.load() reads the text whole (a host's heap): as UTF-8 strictly,
        # as MicroPython's parser takes it (CPython's takes UTF-16 or a byte order mark
        # from bytes)
        text = b""
        while self._fill():
            text += self._window[: self._len]
        return str(text, "utf-8")


def _read(store, window):
    """The state record's body: None when there is no record, else its JSON value (()
    when it is none, nests deeper than a record or is null: no JSON value is a tuple) or
    the StoreError it deserves. OSError when the store cannot read it (readinto() says None
    for that as for a missing file; read() tells them apart)."""
    got = store.readinto(_NAME, 0, window)
    if got is None:
        if store.read(_NAME) is None:
            return None
        raise OSError(_EIO, "the state record cannot be read")
    head = len(MAGIC)
    if got < HEAD or window[:head] != MAGIC or window[HEAD - 1] != 0x0A:
        return persist.StoreError("state record has no valid header")
    try:
        crc = int(bytes(window[head : HEAD - 1]), 16)
    except ValueError:
        return persist.StoreError("state record header is damaged")
    body = _Body(store, window)
    got, nested = body.check()
    if got != crc:
        return persist.StoreError("state record fails its CRC (%08x, expected %08x)" % (got, crc))
    if nested > _DEPTH_MAX:
        return ()
    try:
        value = json.load(body)
    except ValueError:  # not JSON, or not UTF-8 (UnicodeError is a ValueError)
        value = ()
    while body._fill():  # the windows the parse left unread (past its value: spaces)
        pass
    if body.crc != crc:  # the store read back other bytes for the parse than the check
        return persist.StoreError(
            "state record read back unlike itself (%08x, expected %08x)" % (body.crc, crc)
        )
    # null: a record, but no state record (None says no record: a first boot)
    return () if value is None else value


def load(rec):
    """(snapshot, uptime_ms) from the store, None on a first boot (no record ever).
    The snapshot is only known to be what a firmware wrote: firmware/resume.py checks it."""
    store = rec._store
    rec._held = True  # until the reads below return: an OSError leaves it held
    slot = rec._slot()
    rec.gen = slot or 0
    data = _read(store, rec._text.mv[HEAD:])
    used = store.read(_USED) is not None
    rec._held = False
    if not used:
        # Marked before the first record is written (the shell saves one as it begins),
        # so a store ever written to is never taken for a new one again.
        try:
            store.write(_USED, b"")
        except OSError as exc:  # a failing store: the record still loads (main alarms)
            rec.failed = exc
    if data is None:
        if slot is not None:
            raise persist.StoreError("state record %d missing from the store" % (slot,))
        if used:
            raise persist.StoreError("state record missing from a store that held one")
        return None
    if isinstance(data, persist.StoreError):
        raise data
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
    raw = store.read(_BOOT)
    tried = 0
    if raw:
        parts = raw.split()
        try:
            tried = int(parts[1]) if len(parts) == 2 else 0
        except ValueError:
            tried = 0
    tried = tried if persist.is_count(tried) else 0
    rec.gen = rec._slot() or 0  # the store's counter (load() reads it again)
    store.write(_BOOT, ("%d %d" % (rec.gen, tried + 1)).encode())
    rec._marked = True
    return tried
