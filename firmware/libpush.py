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
from protocol.text import TEXT_MAX, listing, words

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
_CRC_BUF = const(256)


# The answers (ERROR internal) to a commit after which the core runs no library: the
# store failed renaming and then reading back both files, so it may boot either; or the
# rename was done and the switch in RAM failed after it (out of memory).
UNSURE = (
    "the store failed during the switch: it may hold the new library; nothing will start "
    "until the board reboots"
)
FAULT = (
    "the store holds the new library but switching to it failed: nothing will start "
    "until the board reboots"
)
_REFUSED = (
    "a library switch failed: nothing starts until a reboot loads the library the store holds"
)


class Unsure(Exception):
    """A commit after which the core runs no library until a reboot (its message: UNSURE
    or FAULT)."""


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

    def commit(self, core, sid, now, applied):
        """The commit's answer fields, or its refusal; raises OSError when the store
        failed and nothing switched, Unsure when the core runs no library after it.
        applied() is called just before the rename: from there on the request is not
        undone (the shell's net), and nothing else is raised."""
        refusal = self._none(sid)  # a session without the push leaves it to its owner
        if refusal:
            return refusal
        # Over whatever comes of the commit, a fault too (a MemoryError parsing): a
        # LIB_COMMIT again would only parse the same file on the same heap, and a push
        # left under way would hold the session's next LIB_DATA to a file that is done.
        self.end()
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
        answer = {
            "library": library.name,
            "library_version": library.version,
            "library_crc": library.crc,
        }
        old = core.library
        if old.ok and (old.name, old.version, old.crc) == (
            library.name,
            library.version,
            library.crc,
        ):
            # The library already active, again (a tool that retries or loops): no
            # switch and no log entry, or pushes repeated push the infusions' entries
            # out of the persistent log.
            self._drop()
            return answer
        # Everything the switch makes is made now, while the old library still runs:
        # the heap holds both libraries, and an allocation that fails after the rename
        # would leave RAM on a library the store no longer holds (a start then is lost
        # at the next reset). After the rename: assignments, and the log's two entries.
        pushed = "pushed %s, %d bytes" % (library.identity(), self.size)
        if old.ok:
            switched = resume.switched_from(library, old.name, old.version, old.crc)
        else:
            switched = "now %s, was an invalid one" % (library.identity(),)
        channels = resume.switched(core, library)
        none = druglib.Library()
        none.problems.append("a library switch failed: reboot to load the library the store holds")
        nothing = resume.switched(core, none)
        applied()
        try:
            renamed = self._renamed(core, now)
        except OSError:
            raise  # the store holds the old library: nothing switched
        except Exception:  # out of memory reading the store back: it cannot say
            renamed = False
        why = UNSURE
        if renamed:
            try:
                core.log.add(now, 0, "input", "library_pushed", pushed)
                core.log.add(now, 0, "input", "library_switched", switched)
                resume.switch(core, library, channels)
                return answer
            except Exception:  # a MemoryError: the heap holds both libraries
                why = FAULT
        # The store may hold the pushed library and RAM not run it: an infusion started
        # now would be refused at the next boot (store_lost). No library runs until a
        # reboot reads the one the store holds. Nothing delivers during a push.
        resume.switch(core, none, nothing)
        try:  # noqa: SIM105 (MicroPython has no contextlib)
            core.device_alarm("library_refused", _REFUSED, now, True)
        except Exception:  # out of memory still: every start is refused all the same
            pass
        raise Unsure(why)

    def _renamed(self, core, now):
        """Whether the store holds the pushed library after its rename over the active
        one; False when it cannot say; OSError when it holds the old one."""
        try:
            self._store.rename(NEW, ACTIVE)
            return True
        except OSError as exc:
            # The store may have replaced druglib.json and failed after (a directory
            # sync): what it holds now is what the next boot runs, so RAM follows it.
            # Its rename replaces in one step, so druglib.json holding other bytes, or
            # druglib.new still holding the pushed ones, is the old library kept.
            pushed = (self.size, self.crc)
            held = self._held(ACTIVE)
            if held != pushed:
                if held is not None or self._held(NEW) == pushed:
                    raise exc
                return False
            core.device_alarm(
                "store_failed",
                "the store failed renaming the pushed library (%s) but holds it: switched"
                % (str(exc)[:40],),
                now,
            )
            return True

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
