# A boot's work: the active library loaded, the core restored from the store's record,
# the board's keys loaded, their standing alarms raised, the shell built. Imported by
# firmware/main.py for the boot only (druglib.call) and dropped after it: a running
# pump never calls this code again, so its bytecode is collected, not held for good.
# The same code as on every boot, on the board, in the emulator and in the tests.
import json
from binascii import unhexlify

from micropython import const

from firmware import druglib, keys, persist, rules
from firmware.alarms import LOW, MESSAGE_MAX
from firmware.core import SafetyCore
from firmware.shell import Shell
from protocol import auth, catalog
from protocol.text import clip

# Written by pumpguard flash at the filesystem root: the bundle this firmware came from.
_MANIFEST = const("/manifest.json")
_HEX = const("0123456789abcdef")


def _core_options(board):
    return {
        "channels": board.CHANNELS,
        "max_rate": board.MAX_RATE,
        "link_timeout_ms": board.LINK_TIMEOUT_MS,
        "near_empty_s": board.NEAR_EMPTY_S,
    }


def build(board, ports, boot_id, bundle="", record=None, lib=None, fresh=None):
    """The shell for this board and ports (see prepared())."""
    core, args = prepared(board, ports, boot_id, bundle, record, lib, fresh)
    return Shell(core, board, **args)


def prepared(board, ports, boot_id, bundle="", record=None, lib=None, fresh=None):
    """(core, the keyword arguments of its Shell(core, board, ...)), with the active
    library (see library(); lib, when main.start() loaded it before this module), every
    channel restored from the store (see restore(), fresh its) and the board's keys
    loaded from it (see keys_alarms()). main.start() makes the shell once this module
    and the restore's are dropped: its buffers never need the heap their code holds."""
    store = ports["store"]
    # The state record first (its buffer, 512 B, is held for the pump's life).
    if record is None:
        record = persist.Record(store)
    if lib is None:
        lib = library(store)
    core, record, uptime = restore(lib, board, store, record, fresh)
    library_alarm(core, lib, uptime)
    board_keys = load_keys(store, board.INSECURE_OK)
    keys_alarms(core, board_keys, uptime)
    args = dict(ports)
    args["keys"] = board_keys
    args["boot_id"] = boot_id
    args["uptime_ms"] = uptime
    args["bundle"] = bundle
    args["record"] = record
    return core, args


def store_lost(core, message, now_ms):
    """The saved state was missing or corrupt (message says which) and core was built
    afresh: a high alarm says that what ran before runs no more."""
    return core.device_alarm(
        "store_lost",
        "saved state lost (%s): every channel started idle" % (clip(message, 50),),
        now_ms,
    )


def library(store):
    """The active drug library (firmware/libload.py active(): the one pushed last, else
    the bundle's), its problems printed."""
    return druglib.active(store)


def library_alarm(core, lib, uptime):
    """An invalid library runs nothing (the core refuses every start): a standing HIGH
    library_refused alarm says so at once, not only at the first start refused. Raised
    at a boot before and valid now, its condition ends."""
    if lib.ok:
        core.condition_over("library_refused")
    else:
        core.device_alarm("library_refused", rules.library_problem(lib, MESSAGE_MAX), uptime, True)


def keys_alarms(core, keys, uptime):
    """The standing alarms of the board's keys, raised after the channels are restored:
    a board without valid keys runs its infusions on (HIGH keys_missing: every AUTH is
    refused, nobody can command it until reflashed); the emulator's insecure mode is
    a LOW insecure_link. Each condition raised at a boot before and over now ends."""
    if keys.problem is not None:
        core.device_alarm(
            "keys_missing",
            "no valid keys, every AUTH refused (reflash with pumpguard flash): %s"
            % (keys.problem,),
            uptime,
            True,
        )
    else:
        core.condition_over("keys_missing")
    if keys.insecure:
        core.device_alarm(
            "insecure_link",
            "insecure development mode: any host may command this emulator",
            uptime,
            True,
            LOW,
        )
    else:
        core.condition_over("insecure_link")


def load_keys(store, insecure):
    """The board's keys.Keys from the store's keys file (firmware/keys.py); one without
    keys (and its problem) for a file that is missing, unreadable or invalid, or
    insecure on a board not INSECURE_OK."""
    try:
        data = store.read(keys.FILE)
    except OSError as exc:  # the store's own failure: no keys this boot, alarmed
        return keys.Keys(store, problem="the keys file cannot be read (%s)" % (exc,))
    if data is None:
        return keys.Keys(store, problem="no keys file")
    try:
        return _parse(store, json.loads(data.decode()), insecure)
    except ValueError as exc:  # JSON, text or a field: the message names the field only
        return keys.Keys(store, problem="the keys file is invalid (%s)" % (exc,))


def _parse(store, doc, insecure):
    if type(doc) is not dict:
        raise ValueError("not an object")
    board_id = _hex_text(doc, "board_id", 16)
    if "insecure" in doc:
        if doc["insecure"] is not True:
            raise ValueError("insecure is not true")
        if not insecure:
            raise ValueError("insecure mode is refused on this board")
        return keys.Keys(store, board_id, insecure=True)
    found = {}
    for name in catalog.ROLES:
        found[catalog.ROLES[name]] = unhexlify(_hex_text(doc, name, 2 * auth.KEY))
    keys.check_keys(found)
    return keys.Keys(store, board_id, found)


def _hex_text(doc, name, n):
    # The field's text when it is n lowercase hex digits; the error names the field only.
    text = doc.get(name)
    if type(text) is not str or len(text) != n or not all(c in _HEX for c in text):
        raise ValueError("%s is not %d lowercase hex digits" % (name, n))
    return text


def restore(library, board, store, record=None, fresh=None):
    """(core, record, uptime): the core of this board restored from the store's record.

    A good record: each channel that passes re-verification (firmware/resume.py)
    resumes at its last verified rate and the core raises its reset alarm; one that
    fails stays stopped with restore_refused. No record: a first boot, every channel
    idle, no alarm. A bad record (damaged, not resumable, older than the store's record
    counter) or one the store cannot read (OSError: not a first boot): every channel
    idle and a high-priority alarm saying why; never an infusion guessed from damaged
    data. A record that two boots failed on while restoring it (they raised something
    no check expected, or lost power in that step) is set aside on the third.

    Never raises OSError: a store that fails its boot writes (a full or failing flash)
    boots degraded, store_failed, serving the link; a reset would only fail the same
    way again, boot after boot.

    fresh: a list of one core for this library and board made before and never used
    (main.start(): its log ring made before the boot's code is imported): the core the
    record is restored into, or the idle core when none is.
    """
    options = _core_options(board)
    record = persist.Record(store) if record is None else record
    uptime = 0
    core = None
    problem = None
    code = "store_lost"
    aside = None
    failed = None  # the OSError of a boot write the store failed
    tried = 0
    try:
        tried = record.boot_attempts()  # counted before anything is restored
        if tried >= persist.BOOTS_TRIED:
            aside = record.set_aside()
    except OSError as exc:
        failed = exc
        if tried >= persist.BOOTS_TRIED:  # not set aside: never tried a third time
            problem = "state record failed %d boots and could not be set aside" % (tried,)
    try:
        # resume's code (SafetyCore.restore()'s) before the record is read, when the
        # store counts records (boot_attempts() read its counter): its 8 KB and its
        # globals' dict, grown a step at a time (blocks of 464, 592, 752 B), in a heap
        # the record's parse has not cut up (after it, with a 36 h record's three
        # alarms parsed, 190k's restoring boot found no 592 B stretch: measured). A
        # first boot imports none of it (imported, its qstrs stay: a running pump's).
        if record.gen:
            from firmware import resume  # noqa: F401

        saved = None if aside or problem else record.load()
        failed = failed or record.failed
        if saved is not None:
            snapshot, uptime = saved
            # restored into the core made already (a record that fails its checks
            # changes nothing of it: the idle core then), not into a second one made
            # beside the parse: 7,328 B less allocated (a core on the 64-bit unix port,
            # its ring's 5,120 B among them: measured) in the heap the shell is made in
            # next, its objects cut up by none of the second core's
            into = fresh[0] if fresh else None
            core = SafetyCore.restore(library, snapshot, uptime, into, **options)
    except OSError as exc:
        # The store cannot read the record (EIO): not a first boot. The record holds
        # saving off (persist.Record.save()) so nothing is written over it unread.
        problem = "state record unreadable (%s)" % (exc,)
    except persist.RolledBack as exc:  # a whole record, but an old copy put back
        problem = str(exc)
        code = "record_rolled_back"
    except persist.StoreError as exc:  # the record is damaged
        problem = str(exc)
    except ValueError as exc:
        # A record that passes its CRC but that the core will not resume (another
        # library, another board, a field out of its type or range).
        problem = "not resumable: %s" % (exc,)
    try:
        # Restored (or refused): from here on a power cut is no failure of the record.
        record.booted()
    except OSError as exc:  # the shell's first turn tries again
        failed = failed or exc
    if core is None:
        core = fresh.pop() if fresh else SafetyCore(library, **options)
        if aside:
            store_lost(core, "record set aside", uptime)
            core.device_alarm(
                "record_set_aside",
                "state record failed %d boots: kept as %s, every channel started idle"
                % (tried, aside),
                uptime,
            )
        elif code == "record_rolled_back":
            core.device_alarm(code, "%s: every channel started idle" % (problem,), uptime)
        elif problem:
            store_lost(core, problem, uptime)
    if failed is not None:
        # As the shell's failed save (shell._save_failed), but not a lasting condition
        # it clears: the shell's own saves raise and clear theirs.
        core.device_alarm(
            "store_failed",
            "writing the store at boot failed (%s): running on as it is" % (str(failed)[:40],),
            uptime,
        )
    return core, record, uptime


def bundle_hash(path=_MANIFEST):
    """The SHA-256 (hex) of the bundle this firmware was flashed from; "" when run from
    source (the CPython emulator, the host tests)."""
    try:
        with open(path) as f:
            return json.load(f)["bundle"]
    except (OSError, ValueError, KeyError):
        return ""


def start(board, ports, boot_id=None, bundle=None, record=None, lib=None, fresh=None):
    """main.start()'s work once no safe boot was requested: prepared()'s (core, shell
    arguments), with the record, library and core main.start() made before this
    module."""
    if boot_id is None:
        boot_id = int.from_bytes(ports["entropy"].random(4), "little")
    if bundle is None:
        bundle = bundle_hash()
    return prepared(board, ports, boot_id, bundle, record, lib, fresh)
