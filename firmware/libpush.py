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
import binascii

from micropython import const

from firmware import druglib, resume
from firmware.channel import IDLE, STOPPED
from firmware.result import refuse
from protocol.text import TEXT_MAX, clip, listing, words

ACTIVE = "druglib.json"  # the store's file of the library pushed last: the active one
NEW = "druglib.new"  # the push under way
# The built-in library is 16 KB; LIB_COMMIT parses the whole file at once (its text,
# the JSON and the library), so a file this size still leaves a Pico's heap room.
MAX_SIZE = const(32768)
_CRC_BUF = const(256)


# The answer (ERROR internal) to a commit whose store failed renaming and then reading
# back both files: it may boot either library.
UNSURE = (
    "the store failed during the switch: it may hold the new library; nothing will start "
    "until the board reboots"
)


class Unsure(Exception):
    """A commit after which the store cannot say which library it holds (UNSURE)."""


def _unsure(core, now):
    # An infusion started now, under either library, is refused at the next boot if
    # the store holds the other (store_lost): the core runs no library until a reboot
    # reads the one the store holds. Nothing delivers during a push, so nothing stops.
    none = druglib.Library()
    none.problems.append("the store failed while switching: reboot the board to load one")
    resume.switch(core, none)
    core.device_alarm(
        "library_refused",
        "the store failed while switching libraries: nothing starts until a reboot loads "
        "the library it holds",
        now,
        True,
    )


def _busy(core):
    """library_busy naming every channel that is not idle or stopped, or None."""
    states = []
    for ch in range(1, core.channels + 1):
        state = core.status(ch).state
        if state != IDLE and state != STOPPED:
            states.append("channel %d %s" % (ch, state))
    if not states:
        return None
    return refuse(
        "library_busy",
        "%s: a library is switched only while every channel is idle or stopped"
        % (listing(states, 50),),
    )


class Push:
    """The push under way (one at a time, by the session that began it)."""

    def __init__(self, store):
        self._store = store
        self.sid = None  # the session pushing; None: no push under way
        self.size = 0  # LIB_BEGIN's
        self.crc = 0
        self.held = 0  # bytes of it in the store

    def end(self):
        self.sid = None

    def _none(self, sid):
        if self.sid == sid:
            return None
        return refuse("invalid_state", "no library push under way in this session: LIB_BEGIN first")

    def begin(self, core, sid, now, size, crc):
        refusal = _busy(core)
        if refusal:
            return refusal
        if not 0 < size <= MAX_SIZE:
            return refuse(
                "bad_value",
                "a library file is 1-%d bytes, not %d: nothing changed" % (MAX_SIZE, size),
            )
        self.end()  # a push begun before, by any session, is over
        self._store.write(NEW, b"")
        self.sid, self.size, self.crc, self.held = sid, size, crc, 0
        return {}

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

    def _drop(self):
        # The push is over, refused. A druglib.new the store fails to remove is harmless
        # (never read; the next LIB_BEGIN empties it): the answer is the refusal's reason.
        self.end()
        try:
            self._store.remove(NEW)
        except OSError as exc:  # for the engineer at the console, as main.library()'s
            print("pumpguard: drug library: %s left in the store (%s)" % (NEW, exc))

    def commit(self, core, sid, now):
        refusal = self._none(sid)  # a session without the push leaves it to its owner
        if refusal:
            return refusal
        refusal = _busy(core) or self._check()
        if refusal:
            self._drop()
            return refusal
        text = self._store.read(NEW)
        library = druglib.load(text)
        text = None  # the one copy of the text, gone before anything else is made
        if not library.ok:
            self._drop()
            n = len(library.problems)
            head = "pushed library not switched: %d problem%s; first: " % (n, "s" if n > 1 else "")
            return refuse(
                "library_invalid", head + words(library.problems[0], TEXT_MAX - len(head))
            )
        old = core.library
        was = "%s %s" % (clip(old.name, 24), clip(old.version, 16)) if old.ok else "an invalid one"
        self.end()
        try:
            self._store.rename(NEW, ACTIVE)
        except OSError as exc:
            # The store may have replaced druglib.json and failed after (a directory
            # sync): what it holds now is what the next boot runs, so RAM follows it.
            # Its rename replaces in one step, so druglib.json holding other bytes, or
            # druglib.new still holding the pushed ones, is the old library kept: the
            # caller answers that nothing switched.
            pushed = (self.size, self.crc)
            held = self._held(ACTIVE)
            if held != pushed:
                if held is not None or self._held(NEW) == pushed:
                    raise exc
                _unsure(core, now)
                raise Unsure() from exc
            core.device_alarm(
                "store_failed",
                "the store failed renaming the pushed library (%s) but holds it: switched"
                % (str(exc)[:40],),
                now,
            )
        core.log.add(
            now,
            0,
            "input",
            "library_pushed",
            "pushed %s, %d bytes" % (library.identity(), self.size),
        )
        resume.switch(core, library)
        core.log.add(
            now,
            0,
            "input",
            "library_switched",
            "now %s, was %s" % (library.identity(), was),
        )
        return {
            "library": library.name,
            "library_version": library.version,
            "library_crc": library.crc,
        }

    def _check(self):
        # The whole file, and the bytes LIB_BEGIN said: its size, the CRC-32 of the bytes.
        size, crc = self._crc(NEW)
        if size != self.size:
            return refuse(
                "bad_value",
                "library holds %s of the %d bytes LIB_BEGIN announced: not switched"
                % (size, self.size),
            )
        if crc != self.crc:
            return refuse(
                "bad_value",
                "CRC-32 of the bytes held is 0x%08x, not LIB_BEGIN's 0x%08x: not switched"
                % (crc, self.crc),
            )
        return None

    def _held(self, name):
        """(size, CRC-32) of the store's file name, or None when absent or unreadable."""
        try:
            return self._crc(name)
        except OSError:
            return None

    def _crc(self, name):
        """(size, CRC-32) of the store's file name, read a small buffer at a time; an
        OSError when it is absent or the store cannot read it (size() and readinto()
        answer None for both): for druglib.new, which LIB_BEGIN made, the store's
        failure, never a CRC that does not match."""
        size = self._store.size(name)
        if size is None:
            raise OSError("the store cannot read %s" % (name,))
        buf = bytearray(_CRC_BUF)
        view = memoryview(buf)
        crc = 0
        offset = 0
        while offset < size:
            n = self._store.readinto(name, offset, buf)
            if n is None:
                raise OSError("the store cannot read %s" % (name,))
            if not n:
                break  # shorter than its size said: the size compared is what was read
            crc = binascii.crc32(view[:n], crc)
            offset += n
        return offset, crc & 0xFFFFFFFF
