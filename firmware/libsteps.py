# A library push's LIB_BEGIN and LIB_COMMIT (firmware/libpush.py says what each does):
# run by the resident Push for the request and dropped after it (druglib.call), so a
# pump that is not being pushed a library holds none of this code. LIB_DATA, a push's
# every chunk, is the resident Push's own. resume.py (the channels made again for the
# new library) is imported by the commit once the library is parsed.
import binascii

from micropython import const

from firmware import druglib
from firmware.channel import IDLE, STOPPED
from firmware.libpush import ACTIVE, MAX_SIZE, NEW, Unsure
from firmware.result import refuse
from protocol.text import TEXT_MAX, listing, words

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
_REFUSED = const(
    ("a library switch failed: nothing starts until a reboot loads the library the store holds")
)


def switched(core, library):
    """The channels the core runs under library once switch()ed to it (a push,
    firmware/libpush.py; no channel delivers: the caller made sure): each made again
    from its snapshot against it, so none holds a drug of the old library. Made before
    the store's rename, so that the switch after it only assigns."""
    from firmware import resume  # the commit's, imported once the library is parsed

    return [
        resume.channel(
            i + 1, resume.shown(library, resume.record_of(c)), library.drugs, 0, core.near_empty_s
        )
        for i, c in enumerate(core._channels)
    ]


def switch(core, library, channels):
    """The core runs library from now on, with channels (switched()): assignments only,
    nothing allocated. A valid library ends the library_refused condition an invalid one
    raised at boot (main.library_alarm())."""
    core.library = library
    if library.ok:
        core.condition_over("library_refused")
    held = core._channels  # in place: the watchers hold this very list
    for i in range(len(held)):
        channels[i].fault = held[i].fault  # the sensors' word, which no record keeps
        held[i] = channels[i]


def _busy(core):
    """library_busy naming every channel that is not idle or stopped, or None."""
    states = []
    for ch in range(1, core.channels + 1):
        state = core.channel(ch).state  # read at once: no status made
        if state != IDLE and state != STOPPED:
            states.append("channel %d %s" % (ch, state))
    if not states:
        return None
    return refuse(
        "library_busy",
        "%s: a library is switched only while every channel is idle or stopped"
        % (listing(states, 50),),
    )


def begin(push, core, sid, now, size, crc):
    push.ran = True  # imported: from here on a MemoryError is the step's (libpush _step())
    refusal = _busy(core)
    if refusal:
        return refusal
    if not 0 < size <= MAX_SIZE:
        return refuse(
            "bad_value",
            "a library file is 1-%d bytes, not %d: nothing changed" % (MAX_SIZE, size),
        )
    push.end()  # a push begun before, by any session, is over
    push._store.write(NEW, b"")
    push.sid, push.size, push.crc, push.held = sid, size, crc, 0
    return {}


def _drop(push):
    # The push is over, refused. A druglib.new the store fails to remove is harmless
    # (never read; the next LIB_BEGIN empties it): the answer is the refusal's reason.
    push.end()
    try:
        push._store.remove(NEW)
    except OSError as exc:  # for the engineer at the console, as main.library()'s
        print("pumpguard: drug library: %s left in the store (%s)" % (NEW, exc))


def commit(push, core, sid, now, applied):
    """The commit's answer fields, or its refusal; raises OSError when the store
    failed and nothing switched, Unsure when the core runs no library after it.
    applied() is called just before the rename: from there on the request is not
    undone (the shell's net), and nothing else is raised."""
    push.ran = True
    refusal = push._none(sid)  # a session without the push leaves it to its owner
    if refusal:
        return refusal
    # Over whatever comes of the commit, a fault too (a MemoryError parsing): a
    # LIB_COMMIT again would only parse the same file on the same heap, and a push
    # left under way would hold the session's next LIB_DATA to a file that is done.
    push.end()
    refusal = _busy(core) or _check(push)
    if refusal:
        _drop(push)
        return refusal
    text = push._store.read(NEW)
    library = druglib.load(text)
    text = None  # the one copy of the text, gone before anything else is made
    if not library.ok:
        _drop(push)
        n = len(library.problems)
        head = "pushed library not switched: %d problem%s; first: " % (n, "s" if n > 1 else "")
        return refuse("library_invalid", head + words(library.problems[0], TEXT_MAX - len(head)))
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
        _drop(push)
        return answer
    # Everything the switch makes is made now, while the old library still runs:
    # the heap holds both libraries, and an allocation that fails after the rename
    # would leave RAM on a library the store no longer holds (a start then is lost
    # at the next reset). After the rename: assignments, and the log's two entries.
    # resume (8 KB of code) only now, after the parse: not in its peak, nor LIB_BEGIN's.
    from firmware import resume

    pushed = "pushed %s, %d bytes" % (library.identity(), push.size)
    if old.ok:
        said = resume.switched_from(library, old.name, old.version, old.crc)
    else:
        said = "now %s, was an invalid one" % (library.identity(),)
    channels = switched(core, library)
    none = druglib.Library()
    none.problems.append("a library switch failed: reboot to load the library the store holds")
    nothing = switched(core, none)
    applied()
    try:
        renamed = _renamed(push, core, now)
    except OSError:
        raise  # the store holds the old library: nothing switched
    except Exception:  # out of memory reading the store back: it cannot say
        renamed = False
    why = UNSURE
    if renamed:
        try:
            core.log.add(now, 0, "input", "library_pushed", pushed)
            core.log.add(now, 0, "input", "library_switched", said)
            switch(core, library, channels)
            return answer
        except Exception:  # a MemoryError: the heap holds both libraries
            why = FAULT
    # The store may hold the pushed library and RAM not run it: an infusion started
    # now would be refused at the next boot (store_lost). No library runs until a
    # reboot reads the one the store holds. Nothing delivers during a push.
    switch(core, none, nothing)
    try:  # noqa: SIM105 (MicroPython has no contextlib)
        core.device_alarm("library_refused", _REFUSED, now, True)
    except Exception:  # out of memory still: every start is refused all the same
        pass
    raise Unsure(why)


def _renamed(push, core, now):
    """Whether the store holds the pushed library after its rename over the active
    one; False when it cannot say; OSError when it holds the old one."""
    try:
        push._store.rename(NEW, ACTIVE)
        return True
    except OSError as exc:
        # The store may have replaced druglib.json and failed after (a directory
        # sync): what it holds now is what the next boot runs, so RAM follows it.
        # Its rename replaces in one step, so druglib.json holding other bytes, or
        # druglib.new still holding the pushed ones, is the old library kept.
        pushed = (push.size, push.crc)
        held = _held(push, ACTIVE)
        if held != pushed:
            if held is not None or _held(push, NEW) == pushed:
                raise exc
            return False
        core.device_alarm(
            "store_failed",
            "the store failed renaming the pushed library (%s) but holds it: switched"
            % (str(exc)[:40],),
            now,
        )
        return True


def _check(push):
    # The whole file, and the bytes LIB_BEGIN said: its size, the CRC-32 of the bytes.
    size, crc = _crc(push, NEW)
    if size != push.size:
        return refuse(
            "bad_value",
            "library holds %s of the %d bytes LIB_BEGIN announced: not switched"
            % (size, push.size),
        )
    if crc != push.crc:
        return refuse(
            "bad_value",
            "CRC-32 of the bytes held is 0x%08x, not LIB_BEGIN's 0x%08x: not switched"
            % (crc, push.crc),
        )
    return None


def _held(push, name):
    """(size, CRC-32) of the store's file name, or None when absent or unreadable."""
    try:
        return _crc(push, name)
    except OSError:
        return None


def _crc(push, name):
    """(size, CRC-32) of the store's file name, read a small buffer at a time; an
    OSError when it is absent or the store cannot read it (size() and readinto()
    answer None for both): for druglib.new, which LIB_BEGIN made, the store's
    failure, never a CRC that does not match."""
    size = push._store.size(name)
    if size is None:
        raise OSError("the store cannot read %s" % (name,))
    buf = bytearray(_CRC_BUF)
    view = memoryview(buf)
    crc = 0
    offset = 0
    while offset < size:
        n = push._store.readinto(name, offset, buf)
        if n is None:
            raise OSError("the store cannot read %s" % (name,))
        if not n:
            break  # shorter than its size said: the size compared is what was read
        crc = binascii.crc32(view[:n], crc)
        offset += n
    return offset, crc & 0xFFFFFFFF
