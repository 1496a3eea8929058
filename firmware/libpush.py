# A new drug library pushed over the link (service role, protocol/SPEC.md §6): written
# to the store beside the active one, checked on the board, then switched to at once.
#
#   LIB_BEGIN size crc   no channel delivers; druglib.new emptied
#   LIB_DATA offset n    n bytes appended to druglib.new; offset must be the bytes held
#   LIB_COMMIT           no channel delivers; size, CRC-32 of the bytes (streamed from
#                        the store), druglib.load() valid and sealed; then druglib.new
#                        renamed over druglib.json and the core switched to it
#
# The active library is the store's druglib.json when present, else the bundle's
# firmware/druglib.json (firmware/main.py). A power cut anywhere in a push boots one of
# the two: before the rename druglib.json is the old file (or absent: the built-in),
# after it the new one; the store's rename replaces in one step (boards/__init__.py).
# A druglib.new left behind is never read, and the next LIB_BEGIN empties it. The
# record saved before the switch names the old library, which restore accepts since
# nothing delivers (firmware/resume.py check()).
#
# RAM: the bytes never sit in RAM whole until LIB_COMMIT reads them once for
# druglib.load(), as a boot reads the library; the CRC before it reads the store a
# small buffer at a time.
#
# Resident: the push's state and LIB_DATA (every chunk of a push). LIB_BEGIN and
# LIB_COMMIT are firmware/libsteps.py, imported for the request and dropped after it:
# a request that cannot import it (no stretch of free heap large enough) is answered
# ERROR internal (NOT_RUN) with nothing changed, the push under way (if any) going on.
from micropython import const

from firmware import druglib
from firmware.result import refuse

ACTIVE = "druglib.json"  # the store's file of the library pushed last: the active one
NEW = "druglib.new"  # the push under way
# LIB_COMMIT parses the whole file at once (its text, the JSON and the library) while
# the old library is held: measured on the 64-bit unix MicroPython, a commit of 32 KB
# needs ~300 KB of transient heap (of 22.8 KB ~250 KB; a boot of 32 KB ~160 KB). A
# Pico's (32-bit objects, smaller) was not measured: a file this size is not known to
# fit there. A commit that runs out of memory is refused safely: before the rename the
# shell's net answers "internal fault, not run", nothing switched; after it (commit())
# the core runs no library until a reboot loads the one the store holds.
MAX_SIZE = const(32768)


NOT_RUN = "not run: no memory free for a library push now; nothing changed"
_STEPS = const(("libsteps", "resume"))  # and what it imports that nothing resident holds


class Unsure(Exception):
    """A step answered ERROR internal with this message (firmware/handlers.py): a commit
    after which the core runs no library until a reboot (libsteps.UNSURE, FAULT), or a
    step its code could not be imported for (NOT_RUN: nothing changed)."""


class Push:
    """The push under way (one at a time, by the session that began it)."""

    def __init__(self, store):
        self._store = store
        self.sid = None  # the session pushing; None: no push under way
        self.size = 0  # LIB_BEGIN's
        self.crc = 0
        self.held = 0  # bytes of it in the store
        self.ran = False  # the step begun was imported (_step())

    def end(self):
        self.sid = None

    def _none(self, sid):
        if self.sid == sid:
            return None
        return refuse("invalid_state", "no library push under way in this session: LIB_BEGIN first")

    def begin(self, core, sid, now, size, crc):
        """LIB_BEGIN's answer fields, or its refusal (firmware/libsteps.py begin())."""
        return self._step("begin", core, sid, now, size, crc)

    def data(self, core, sid, now, offset, n, data):
        refusal = self._none(sid)
        if refusal:
            return refusal
        if offset != self.held:
            return refuse(
                "bad_value",
                "offset %d is not the next byte: %d held, send from offset %d"
                % (offset, self.held, self.held),
            )
        if not 0 < n <= len(data):
            return refuse(
                "bad_value", "n is 1-%d (the bytes of data to take), not %d" % (len(data), n)
            )
        if self.held + n > self.size:
            return refuse(
                "bad_value",
                "%d bytes at offset %d do not fit the %d LIB_BEGIN announced"
                % (n, offset, self.size),
            )
        self._store.append(NEW, memoryview(data)[:n])
        self.held += n
        return {"next": self.held}

    def commit(self, core, sid, now, applied):
        """The commit's answer fields, or its refusal (firmware/libsteps.py commit())."""
        return self._step("commit", core, sid, now, applied)

    def _step(self, name, *args):
        self.ran = False  # the step sets it first thing: its code was imported
        try:
            return druglib.call(_STEPS, name, self, *args)
        except MemoryError:
            if self.ran:
                raise  # out of memory running the step: the shell's net answers it
            raise Unsure(NOT_RUN) from None  # not imported: nothing ran, nothing changed
