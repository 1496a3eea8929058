# Channel state across resets: one record in the store, replaced atomically, and the
# few small files that say whether that record can be believed.
#
#   state.json:  b"pumpguard-state 1 <crc32 as 8 hex digits>\n" + JSON body
#   body:        {"uptime_ms": <uptime when saved>, "gen": <record counter>,
#                 "core": <SafetyCore.snapshot()>}, then spaces (JSON's whitespace)
#
# The shell's saves (save_core) write that text in place through one small buffer made
# with the Record (firmware/recordtext.py: 512 B, whatever the record's length), handed
# to the store in chunks (write, then append): no dict, no json, nothing allocated per
# save, and no block of the record's size held.
#
# save() writes state.tmp (in chunks: a store that fails at any of them fails the save
# as a failed write does, state.json untouched) and renames it over state.json, so a
# reset in the middle leaves the previous record whole; the CRC-32 (over the body
# bytes) catches a record damaged anyway (flash wear, a hand edit). load() tells three
# cases apart: no record (first boot: nothing to restore), a good record, and a bad one
# (StoreError: the shell starts with every channel idle and raises an alarm; it never
# guesses an infusion).
# A CRC detects damage, not intent or age: what the record says is re-verified by
# firmware/resume.py before any channel delivers again.
#
#   state.used:  empty; written at the first boot, before the first record. Without it
#                a missing record looks like a first boot: a record deleted while a
#                vasopressor ran would bring the pump back idle and silent. With it, a
#                missing record in a store that once held one is a StoreError too.
#   state.gen:   the record counter ("gen" of the newest record written), in decimal,
#                written after each record. A record older than it is a copy put back
#                (RolledBack): a genuine old record would restart an infusion stopped
#                since. It also makes a store that lost both state.json and state.used
#                a lost store, not a first boot. The emulator (through its relay) and a
#                Pico keep it in the same store, so a copy of the whole filesystem
#                still rolls back unseen; a board with memory of its own that survives
#                power loss (a battery-backed RTC's RAM; an ESP32's RTC memory only
#                survives resets) would keep the counter there instead. Replaced as the
#                record is (state.tmp renamed over it): on littlefs and POSIX, whose
#                rename replaces in one step, never found torn.
#   state.boot:  b"<gen> <attempts>" while a boot restores its record (boot_attempts()
#                before, booted() as soon as the core is restored); empty otherwise. A
#                record that made two boots fail while restoring it is set aside as
#                state.bad.<gen> (kept for investigation) instead of being tried
#                forever. Only that step is counted: a power cut anywhere else in a
#                boot (the ~1-2 s of begin() and the first turn) is no failure of the
#                record. A cut inside it cannot be told from a failure and counts, so
#                two failures are needed: one flicker in that short window is not one.
#
# Reads that fail (the store raises OSError: EIO, not a missing file) are not a first
# boot: load() lets the OSError out, and the record is held (save() writes nothing
# over the unread one until it can be read again and set aside, see save()).
import json
from binascii import crc32

from micropython import const

from firmware import druglib, recordtext

# The store's files, private const()s: no name of their own interned, no entry in this
# module's dict (firmware/recordload.py spells the three it reads the same:
# tests/test_qstr_budget.py).
_NAME = const("state.json")
_TMP = const("state.tmp")
_USED = const("state.used")
_GEN = const("state.gen")
_BOOT = const("state.boot")
_BAD = const("state.bad.")
# Times and counters are whole ms or counts: bounded so that no record makes the
# arithmetic on them grow without end (2**48 ms is over 8,000 years).
_COUNT_MAX = 1 << 48
# Boots that fail on a record before it is set aside: the third boot sets it aside.
BOOTS_TRIED = const(2)
# The record read back at a boot, and its JSON scanner (no resident module imports it):
# imported for it, dropped after (druglib.call)
_LOAD = const(("recordload", "jsontext"))


class StoreError(Exception):
    """The state record exists but cannot be trusted; the message says why."""


class RolledBack(StoreError):
    """The record is whole but older than the board's record counter."""


def is_count(value):
    """A whole number the record may hold as a time or a counter (not a bool)."""
    return type(value) is int and 0 <= value < _COUNT_MAX


class Record:
    """The state record of one store, with its counter (gen: of the newest record
    written or read; the next save writes gen + 1)."""

    def __init__(self, store):
        self._store = store
        self.gen = 0
        # True from a load() that could not read the store until save() reads it again:
        # an idle record must never be saved over one nobody could read.
        self._held = False
        self._marked = False  # state.boot holds this boot's mark (boot_attempts())
        self.failed = None  # the OSError of a boot write load() could not make, or None
        # The record's buffer (recordtext.Text, 512 B): made now, so that no save
        # allocates it.
        self._text = recordtext.Text()

    def _slot(self):
        """The counter state.gen holds, or None (never written, or unreadable)."""
        raw = self._store.read(_GEN)
        try:
            gen = int(raw) if raw else None
        except ValueError:
            return None
        return gen if is_count(gen) else None

    def save_core(self, core, uptime_ms):
        """Save core's state: the shell's save, written in place (recordtext.py) through
        the record's small buffer into state.tmp a chunk at a time, so that a save
        allocates nothing."""
        self._unhold()
        gen = self.gen + 1
        text = self._text
        text.write(self._store, _TMP, core, uptime_ms, gen)
        self._commit(text.counter, gen)

    def save(self, snapshot, uptime_ms):
        """Save the snapshot dict given (any JSON value: the tests' and tools' records;
        the shell saves with save_core)."""
        self._unhold()
        gen = self.gen + 1
        body = json.dumps({"uptime_ms": uptime_ms, "gen": gen, "core": snapshot}).encode()
        self._store.write(_TMP, recordtext.MAGIC + ("%08x\n" % crc32(body)).encode() + body)
        self._commit(str(gen).encode(), gen)

    def _unhold(self):
        if self._held:
            # The record load() could not read: kept as state.bad.<gen> once it reads
            # (set_aside() reads it; while the store still fails it raises OSError and
            # the shell retries, degraded, store_failed). The record written then says
            # what the pump does now, as after any lost store.
            self.set_aside()
            self._held = False

    def _commit(self, counter, gen):
        # state.tmp written whole: it becomes the record
        store = self._store
        store.rename(_TMP, _NAME)
        self.gen = gen
        # After the record: a reset between the two leaves the counter one behind a
        # newer record, which loads (only a record older than the counter is refused).
        # Written beside it and renamed over it, as the record is (state.tmp, free once
        # renamed): a write cut by the power leaves a POSIX file truncated, and a
        # record past the first with an empty counter reads as a copy put back (every
        # channel idle).
        store.write(_TMP, counter)
        store.rename(_TMP, _GEN)

    def load(self):
        """(snapshot, uptime_ms) from the store, None on a first boot (no record ever);
        StoreError (RolledBack) for a record that cannot be trusted. The snapshot is only
        known to be what a firmware wrote: resume.py checks it (firmware/recordload.py)."""
        return druglib.call(_LOAD, "load", self)

    # -- boots that fail on a record ---------------------------------------------------

    def boot_attempts(self):
        """How many boots before this one failed while restoring the record; this one is
        counted now, until booted(). Raises OSError when the store cannot be read or
        written (firmware/recordload.py)."""
        return druglib.call(_LOAD, "boot_attempts", self)

    def booted(self):
        """The record is restored: it is not what failed the boots before. Called by
        main.restore() as soon as the core is restored and by the shell after its first
        turn (then a write only if the first call failed)."""
        if self._marked:
            self._store.write(_BOOT, b"")
            self._marked = False

    def set_aside(self):
        """Move the record out of the way (state.bad.<gen>, kept for investigation);
        returns that name, or None when there was no record to move."""
        store = self._store
        self.gen = self._slot() or 0  # the next record is newer than the one set aside
        if store.read(_NAME) is None:
            return None
        name = _BAD + str(self.gen)
        store.rename(_NAME, name)
        return name
