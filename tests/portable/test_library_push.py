# A drug library pushed over the authenticated link (LIB_BEGIN / LIB_DATA / LIB_COMMIT,
# firmware/libpush.py), the library a boot makes active, and an invalid one at boot: on
# the shell served with dummy ports (shellkit), on both interpreters.
import json
from binascii import crc32

from firmware import druglib, gate, libpush, libsteps, resume
from protocol import catalog, messages, reasons
from protocol.text import TEXT_MAX, words
from tests.portable.corekit import library_text
from tests.portable.coreview import entries, status_of
from tests.portable.shellkit import NOREPI, VASO, Host, Store, ports, shell

_DOC = []


def _doc():
    """The shipped library's document with one drug only: a push of a few chunks (a
    new copy each time: the tests edit it)."""
    if not _DOC:
        _DOC.append(library_text())
    doc = json.loads(_DOC[0])
    doc["drugs"] = {"dobutamine": doc["drugs"]["dobutamine"]}
    return doc


def _file(version="push-1", reseal=True, edit=None):
    doc = _doc()
    doc["version"] = version
    if edit is not None:
        edit(doc)
    if reseal:
        doc["crc32"] = "0x%08x" % druglib.crc_of(doc)
    return json.dumps(doc).encode()


def _service(sh, p):
    host = Host(sh, p, role="service")
    host.hello()
    return host


def _clinician(sh, p):
    host = Host(sh, p)
    host.hello()
    return host


def _chunk(data, offset):
    piece = data[offset : offset + catalog.LIB_CHUNK]
    return {
        "offset": offset,
        "n": len(piece),
        "data": piece + bytes(catalog.LIB_CHUNK - len(piece)),
    }


def _send(host, data, crc=None, size=None):
    """LIB_BEGIN, every LIB_DATA, LIB_COMMIT: the commit's answer."""
    _stage(host, data, crc, size)
    return host.request("LIB_COMMIT", {})


def _stage(host, data, crc=None, size=None):
    """LIB_BEGIN and every LIB_DATA of data."""
    if crc is None:
        crc = crc32(data) & 0xFFFFFFFF
    begun = host.request("LIB_BEGIN", {"size": len(data) if size is None else size, "crc": crc})
    assert begun[0] == "LIB_BEGIN_R", begun
    _rest(host, data, 0)


def _rest(host, data, offset):
    """Every LIB_DATA of data from offset on."""
    while offset < len(data):
        name, f = host.request("LIB_DATA", _chunk(data, offset))
        assert name == "LIB_DATA_R", (name, f)
        offset = f["next"]


def _identity(lib):
    return (lib.name, lib.version, lib.crc)


def _refused(answer, code, text):
    name, f = answer
    assert name == "REFUSED" and f["code"] == reasons.NUMBER[code], answer
    assert text in f["message"], f["message"]
    assert len(f["message"]) <= TEXT_MAX


def _high(sh):
    return [a.code for a in sh.core.alarms() if a.priority == "high"]


def _log(sh, code):
    return [e[5] for e in entries(sh.core.log) if e[4] == code]


def test_a_whole_push_switches_the_library_and_a_boot_keeps_it():
    p = ports()
    sh = shell(p)
    builtin = _identity(sh.core.library)
    data = _file()
    name, f = _send(_service(sh, p), data)
    new = druglib.load(data)
    assert name == "LIB_COMMIT_R", f
    assert (f["library"], f["library_version"], f["library_crc"]) == _identity(new)
    assert _identity(sh.core.library) == _identity(new) != builtin
    store = p["store"]
    assert store.files[libpush.ACTIVE] == data and libpush.NEW not in store.files
    hello = Host(sh, p).hello()  # a new session's HELLO_R says it
    assert hello[1]["library_version"] == "push-1", hello
    (pushed,) = _log(sh, "library_pushed")
    (switched,) = _log(sh, "library_switched")
    assert new.identity() in pushed and "%d bytes" % len(data) in pushed
    # the library before named whole: the same name, so by its version and CRC
    assert switched == "now %s, was %s (crc32 0x%08x)" % (new.identity(), builtin[1], builtin[2])
    # the new library runs: its one drug starts, another of the built-in is unknown
    host = _clinician(sh, p)
    _refused(host.request("START", NOREPI), "unknown_drug", "norepinephrine")
    after = shell(ports(store))  # a boot: the store's library, no alarm
    assert _identity(after.core.library) == _identity(new)
    assert _high(after) == []


def _unchanged(sh, p, before):
    assert _identity(sh.core.library) == before
    assert libpush.ACTIVE not in p["store"].files and libpush.NEW not in p["store"].files


def test_a_bad_crc_a_short_file_and_a_bad_library_are_refused_changing_nothing():
    p = ports()
    sh = shell(p)
    before = _identity(sh.core.library)
    host = _service(sh, p)
    data = _file()
    _refused(_send(host, data, crc=crc32(data) ^ 1), "bad_value", "CRC-32 of the bytes")
    _unchanged(sh, p, before)
    _refused(_send(host, data, size=len(data) + 10), "bad_value", "holds %d of the" % len(data))
    _unchanged(sh, p, before)

    def no_hard_max(doc):
        del doc["drugs"]["dobutamine"]["limits"]["hard_max"]

    answer = _send(host, _file(edit=no_hard_max))
    _refused(answer, "library_invalid", "1 problem; first: dobutamine.limits.hard_max")
    _unchanged(sh, p, before)
    _refused(_send(host, _file(reseal=False)), "library_invalid", "library.crc32: bad CRC")
    _unchanged(sh, p, before)
    assert _log(sh, "library_pushed") == [] and _log(sh, "library_switched") == []


def _begun():
    """(ports, service host, data): LIB_BEGIN of data answered."""
    p = ports()
    host = _service(shell(p), p)
    data = _file()
    assert host.request("LIB_BEGIN", {"size": len(data), "crc": crc32(data) & 0xFFFFFFFF})[0] == (
        "LIB_BEGIN_R"
    )
    return p, host, data


def test_a_wrong_offset_is_refused_with_the_offset_expected():
    p, host, data = _begun()
    assert host.request("LIB_DATA", _chunk(data, 0)) == ("LIB_DATA_R", {"next": 192})
    _refused(host.request("LIB_DATA", _chunk(data, 384)), "bad_value", "send from offset 192")
    _refused(host.request("LIB_DATA", _chunk(data, 0)), "bad_value", "send from offset 192")
    assert p["store"].files[libpush.NEW] == data[:192]
    # a retry of the last LIB_DATA (same seq, same bytes) gets its answer again
    host.send_wire(host.wire("LIB_DATA", _chunk(data, 192), seq=40))
    first = host.answer(40)
    host.send_wire(host.session.wire("LIB_DATA", 40, _chunk(data, 192), ctr=host.session.ctr))
    (again,) = host.raw()  # the same answer, byte for byte (its counter not newer)
    assert messages.decode(again.msg_id, again.payload) == {"next": 384}
    assert first == ("LIB_DATA_R", {"next": 384})
    assert p["store"].files[libpush.NEW] == data[:384]


def test_only_the_service_role_may_push():
    p = ports()
    sh = shell(p)
    data = _file()
    for host in (_clinician(sh, p), Host(sh, p, role="monitor")):
        if not host.session.authed:
            host.hello()
        name, f = host.request("LIB_BEGIN", {"size": len(data), "crc": 0})
        assert (name, f["code"]) == ("ERROR", catalog.ERR_FORBIDDEN), (name, f)
    assert libpush.NEW not in p["store"].files


def test_a_library_is_not_switched_while_a_channel_delivers():
    p = ports()
    sh = shell(p)
    before = _identity(sh.core.library)
    clinician = _clinician(sh, p)
    service = _service(sh, p)
    assert clinician.request("START", NOREPI)[0] == "START_R"
    data = _file()
    begin = {"size": len(data), "crc": crc32(data) & 0xFFFFFFFF}
    _refused(service.request("LIB_BEGIN", begin), "library_busy", "channel 1 running")
    assert clinician.request("STOP", {"ch": 1})[0] == "STOP_R"  # norepinephrine tapers
    _refused(service.request("LIB_BEGIN", begin), "library_busy", "channel 1 tapering")
    assert clinician.request("ESTOP", {"ch": 1, "reason": "clinician"})[0] == "ESTOP_R"
    assert service.request("LIB_BEGIN", begin)[0] == "LIB_BEGIN_R"  # stopped: free
    for offset in range(0, len(data), catalog.LIB_CHUNK):
        assert service.request("LIB_DATA", _chunk(data, offset))[0] == "LIB_DATA_R"
    assert clinician.request("START", VASO)[0] == "START_R"
    _refused(service.request("LIB_COMMIT", {}), "library_busy", "channel 2 running")
    _unchanged(sh, p, before)
    assert status_of(sh.core, 2).state == "running"


# The heap's soak (tests/heap) imports shellkit: kept out of it, since any bytes more of
# the harness's code move where the bounded heap's blocks fall.
class PowerCut(BaseException):
    """The board loses power: raised out of the shell's loop, as nothing catches it."""


class CutStore(Store):
    """A store that loses power at its cut-th change (write, append, rename, remove; 0:
    never), before it (after=False) or once it is done (after=True). part: None, or how
    many of a write's or an append's n bytes a cut inside it keeps, part(n): a write
    truncates first (open("wb") then write, as a POSIX file does), so it leaves only
    those; a rename is done or not."""

    def __init__(self, files, cut, after=False, part=None):
        Store.__init__(self)
        self.files = dict(files)
        self.cut = cut
        self.after = after
        self.part = part
        self.changes = 0

    def _change(self, op, *args):
        self.changes += 1
        if self.changes == self.cut and not self.after:
            raise PowerCut()
        op(self, *args)
        if self.changes == self.cut:
            raise PowerCut()

    def _torn(self, op, name, data):
        if self.part is not None and self.changes + 1 == self.cut:
            self.changes += 1
            op(self, name, data[: self.part(len(data))])
            raise PowerCut()
        self._change(op, name, data)

    def write(self, name, data):
        self._torn(Store.write, name, data)

    def append(self, name, data):
        self._torn(Store.append, name, data)

    def rename(self, src, dst):
        self._change(Store.rename, src, dst)

    def remove(self, name):
        self._change(Store.remove, name)


def test_a_power_cut_at_any_store_change_of_a_push_boots_the_old_or_the_new_library():
    old, new = _file("push-0"), _file("push-1")
    base = Store()
    base.files[libpush.ACTIVE] = old
    identities = (_identity(druglib.load(old)), _identity(druglib.load(new)))
    cut = 1
    seen = []
    while True:
        ran = None
        for after in (False, True):
            store = CutStore(base.files, 0, after)
            p = ports(store)
            sh = shell(p)
            sh.begin()  # as a board boots: the record saved once
            host = _service(sh, p)
            store.cut = store.changes + cut  # counted from the push on
            try:
                answer = _send(host, new)
            except PowerCut:
                answer = None
            ran = answer
            store.cut = 0  # power back: the boot's own changes go through
            booted = shell(ports(store))
            booted.begin()
            booted.step()
            lib = booted.core.library
            assert lib.ok and _identity(lib) in identities, (cut, after, _identity(lib))
            assert _high(booted) == [], (cut, after, booted.core.alarms())
            seen.append(identities.index(_identity(lib)))
        if ran is not None:  # the push completed before the cut-th change: all were cut
            break
        cut += 1
    assert cut > 10  # each LIB_DATA's append, the rename, the saves were cut
    # every cut before the rename boots the old library, every one after it the new
    assert seen == sorted(seen) and seen[0] == 0 and seen[-1] == 1, seen


def _stopped(sh, p):
    """Channel 1 started with norepinephrine, then stopped (an emergency stop keeps its
    drug shown)."""
    host = _clinician(sh, p)
    assert host.request("START", NOREPI)[0] == "START_R"
    assert host.request("ESTOP", {"ch": 1, "reason": "clinician"})[0] == "ESTOP_R"


def test_a_record_where_nothing_delivers_resumes_under_another_library():
    # What a power cut after the switch and before the next save leaves: the record
    # names the old library; nothing delivered (a push is refused otherwise).
    p = ports()
    _stopped(shell(p), p)
    store = p["store"]
    store.files[libpush.ACTIVE] = _file()
    booted = shell(ports(store))
    assert "store_lost" not in [a.code for a in booted.core.alarms()]
    assert status_of(booted.core, 1).state == "stopped" and status_of(booted.core, 1).drug is None
    assert "clinician" in [a.code for a in booted.core.alarms()]  # the record's alarms kept
    (switched,) = _log(booted, "library_switched")
    now = druglib.load(store.files[libpush.ACTIVE]).identity()
    was = json.loads(library_text())["version"]  # the shipped library's
    assert switched.startswith("at boot: now %s, was %s (crc32 0x" % (now, was)), switched


def test_a_record_where_a_channel_delivers_never_resumes_under_another_library():
    p = ports()
    sh = shell(p)
    assert _clinician(sh, p).request("START", NOREPI)[0] == "START_R"
    store = p["store"]
    store.files[libpush.ACTIVE] = _file()
    booted = shell(ports(store))
    assert "store_lost" in _high(booted)
    assert status_of(booted.core, 1).state == "idle"


def test_an_invalid_library_at_boot_alarms_counts_its_problems_and_refuses_every_start():
    def bad(doc):
        limits = doc["drugs"]["dobutamine"]["limits"]
        del limits["hard_max"]
        limits["soft_max"]["source"] = ""

    store = Store()
    store.files[libpush.ACTIVE] = _file(edit=bad, reseal=False)
    problems = druglib.load(store.files[libpush.ACTIVE]).problems
    assert len(problems) == 3, problems
    p = ports(store)
    sh = shell(p)
    alarm = [a for a in sh.core.alarms() if a.code == "library_refused"]
    assert len(alarm) == 1 and alarm[0].priority == "high" and alarm[0].active
    # the first problem whole in the alarm's text too (the CRC's, the most common one)
    assert alarm[0].message == "library invalid, 3 problems: " + problems[0], alarm[0].message
    host = _clinician(sh, p)
    assert host.request("INFO", {})[1]["library_problems"] == 3
    start = dict(NOREPI, drug="dobutamine", unit="mcg/kg/min", dose=5000000)
    name, f = host.request("START", start)
    assert (name, f["code"]) == ("REFUSED", reasons.NUMBER["library_invalid"])
    head = "library invalid, 3 problems: "
    assert f["message"].startswith(head) and len(f["message"]) <= TEXT_MAX, f["message"]
    first = f["message"][len(head) :]
    assert first == problems[0] or (
        first.endswith("...") and (problems[0] + " ").startswith(first[:-3].rstrip() + " ")
    ), (first, problems[0])
    # valid again (the store's file removed: the built-in), the alarm's condition ends
    del store.files[libpush.ACTIVE]
    again = shell(ports(store))
    assert [a.active for a in again.core.alarms() if a.code == "library_refused"] == [False]


class RenameFailsAfter(Store):
    """A store whose rename of the pushed file replaces it, then raises (a directory
    sync that fails after os.rename); with before, one that raises replacing nothing."""

    def __init__(self, before=False):
        Store.__init__(self)
        self.armed = False
        self.before = before

    def rename(self, src, dst):
        if self.armed and dst == libpush.ACTIVE:
            self.armed = False
            if not self.before:
                Store.rename(self, src, dst)
            raise OSError(5, "EIO")
        Store.rename(self, src, dst)


def _all_drugs(doc):
    doc["drugs"] = json.loads(library_text())["drugs"]


def _armed(store):
    """A shell begun on store, its rename's fault armed for the next commit."""
    p = ports(store)
    sh = shell(p)
    sh.begin()
    store.armed = True
    return sh, p


def test_a_rename_that_failed_after_replacing_the_file_switches_as_a_boot_would():
    store = RenameFailsAfter()
    sh, p = _armed(store)
    data = _file("push-late", edit=_all_drugs)
    name, f = _send(_service(sh, p), data)
    new = _identity(druglib.load(data))
    # the store holds the new file: RAM runs it and the answer says so
    assert name == "LIB_COMMIT_R", (name, f)
    assert _identity(sh.core.library) == new == _identity(shell(ports(store)).core.library)
    assert "store_failed" in _high(sh)
    assert len(_log(sh, "library_pushed")) == 1
    # an infusion started now is one of the library a reset boots: it resumes
    assert _clinician(sh, p).request("START", NOREPI)[0] == "START_R"
    sh.step()
    after = shell(ports(store))
    assert status_of(after.core, 1).state == "running", after.core.alarms()


def test_a_rename_that_failed_replacing_nothing_keeps_the_old_library_and_logs_no_push():
    store = RenameFailsAfter(before=True)
    p = ports(store)
    sh = shell(p)
    before = _identity(sh.core.library)
    store.armed = True
    name, f = _send(_service(sh, p), _file())
    assert name == "ERROR" and "nothing switched" in f["message"], (name, f)
    assert _identity(sh.core.library) == before == _identity(shell(ports(store)).core.library)
    assert _log(sh, "library_pushed") == [] and _log(sh, "library_switched") == []


def test_a_valid_push_ends_the_library_refused_condition():
    store = Store()
    store.files[libpush.ACTIVE] = _file(reseal=False)  # invalid: bad CRC
    p = ports(store)
    sh = shell(p)
    assert [a.active for a in sh.core.alarms() if a.code == "library_refused"] == [True]
    name, f = _send(_service(sh, p), _file("push-fix"))
    assert name == "LIB_COMMIT_R", f
    assert [a.active for a in sh.core.alarms() if a.code == "library_refused"] == [False]


def test_a_commit_from_a_session_without_the_push_leaves_the_push_to_its_owner():
    p = ports()
    sh = shell(p)
    stray = _service(sh, p)
    owner = _service(sh, p)
    data = _file()
    begin = {"size": len(data), "crc": crc32(data) & 0xFFFFFFFF}
    assert owner.request("LIB_BEGIN", begin)[0] == "LIB_BEGIN_R"
    assert owner.request("LIB_DATA", _chunk(data, 0))[0] == "LIB_DATA_R"
    _refused(stray.request("LIB_COMMIT", {}), "invalid_state", "in this session")
    assert libpush.NEW in p["store"].files
    _rest(owner, data, catalog.LIB_CHUNK)
    assert owner.request("LIB_COMMIT", {})[0] == "LIB_COMMIT_R"


def test_lib_data_with_n_outside_1_to_the_chunk_is_refused_saying_what_n_may_be():
    _p, host, data = _begun()
    for n in (0, catalog.LIB_CHUNK + 1, 255):
        fields = _chunk(data, 0)
        fields["n"] = n
        _refused(host.request("LIB_DATA", fields), "bad_value", "n is 1-%d" % catalog.LIB_CHUNK)


class NewUnreadable(Store):
    """A store that fails to read the pushed file back (its readinto's None: EIO)."""

    def readinto(self, name, offset, buf):
        if name == libpush.NEW:
            return None
        return Store.readinto(self, name, offset, buf)


def test_a_store_that_cannot_read_the_pushed_file_back_is_reported_not_a_crc_mismatch():
    p = ports(NewUnreadable())
    sh = shell(p)
    before = _identity(sh.core.library)
    name, f = _send(_service(sh, p), _file())
    assert name == "ERROR" and "the store failed" in f["message"], (name, f)
    assert "CRC" not in f["message"] and "cannot read %s" % libpush.NEW in f["message"]
    assert _identity(sh.core.library) == before


class RemoveFails(Store):
    def remove(self, name):
        raise OSError(5, "EIO")


def test_a_refused_commit_whose_file_cannot_be_removed_answers_why_it_was_refused():
    p = ports(RemoveFails())
    sh = shell(p)
    before = _identity(sh.core.library)
    data = _file()
    answer = _send(_service(sh, p), data, crc=(crc32(data) + 1) & 0xFFFFFFFF)
    _refused(answer, "bad_value", "CRC-32 of the bytes held")
    assert _identity(sh.core.library) == before


def test_a_switch_that_drops_a_stopped_channels_drug_sends_its_state():
    p = ports()
    sh = shell(p)
    _stopped(sh, p)
    assert status_of(sh.core, 1).drug == "norepinephrine"
    service = _service(sh, p)
    _stage(service, _file())  # dobutamine only
    service.send_wire(service.wire("LIB_COMMIT", {}))
    sent = service.frames()  # the link's: every session's events are on it
    assert "LIB_COMMIT_R" in [name for name, _, _ in sent], sent
    states = [f for name, _, f in sent if name == "EV_STATE" and f["ch"] == 1]
    assert [(f["state"], f["drug"]) for f in states] == [("stopped", "")], states


class ActiveUnreadable(Store):
    """A store whose pushed library fails to read (EIO)."""

    def read(self, name):
        if name == libpush.ACTIVE:
            raise OSError(5, "EIO")
        return Store.read(self, name)


def _hello(sh, p):
    """HELLO_R's fields, and the internal faults raised."""
    name, f = Host(sh, p).hello(authenticate=False)
    return name, f, [a.message for a in sh.core.alarms() if a.code == "internal_fault"]


def test_a_board_whose_store_library_cannot_be_read_answers_hello_with_crc_0():
    p = ports(ActiveUnreadable())
    sh = shell(p)
    assert "library_refused" in _high(sh)
    name, f, faults = _hello(sh, p)
    assert (name, f["library"], f["library_crc"], faults) == ("HELLO_R", "invalid", 0, [])


def test_a_board_whose_store_library_is_not_json_answers_hello_with_crc_0():
    store = Store()
    rotten = b'{"name": "x", "drugs": '  # a torn or rotten file
    store.files[libpush.ACTIVE] = rotten
    p = ports(store)
    sh = shell(p)
    assert "library_refused" in _high(sh)
    name, f, faults = _hello(sh, p)
    assert (name, f["library_crc"], faults) == ("HELLO_R", 0, [])


def test_words_cuts_only_between_words():
    text = "library.crc32: bad CRC: file says '0x00000000', content is 0x1234abcd"
    assert words(text, 200) == text
    assert words(text, 31) == "library.crc32: bad CRC: file..."
    assert words(text, 30) == "library.crc32: bad CRC..."
    assert words(text, 26) == "library.crc32: bad CRC..."
    assert words("abcdefghijklmnopqrstuvwxyz", 10) == "abcdefg..."


class RenameThenBlink(RenameFailsAfter):
    """RenameFailsAfter's store, whose next look at druglib.json after that rename fails
    once too: two faults of one failing moment, gone by the next boot (review 2)."""

    blink = False

    def rename(self, src, dst):
        self.blink = self.armed and dst == libpush.ACTIVE
        RenameFailsAfter.rename(self, src, dst)

    def size(self, name):
        if self.blink and name == libpush.ACTIVE:
            self.blink = False
            return None
        return Store.size(self, name)


def test_a_switch_the_store_cannot_confirm_starts_nothing_until_a_reboot():
    # Neither druglib.json nor druglib.new reads back the pushed bytes: the store may
    # hold either library, so nothing may start under one a reset could change.
    store = RenameThenBlink()
    sh, p = _armed(store)
    name, f = _send(_service(sh, p), _file("push-blink"))
    assert (name, f["code"], f["message"]) == (
        "ERROR",
        catalog.ERR_INTERNAL,
        "the store failed during the switch: it may hold the new library; nothing will "
        "start until the board reboots",
    ), (name, f)
    _no_library_until_a_reboot(sh, p, "push-blink")


def _no_library_until_a_reboot(sh, p, version):
    """After a commit whose switch failed: no library runs (a HIGH library_refused,
    every start refused) until a reboot runs the one the store holds, version."""
    (alarm,) = [a for a in sh.core.alarms() if a.code == "library_refused"]
    assert alarm.priority == "high" and alarm.active, alarm.message
    assert "switch failed" in alarm.message and "reboot" in alarm.message, alarm.message
    _refused(
        _clinician(sh, p).request("START", NOREPI),
        "library_invalid",
        "drug library invalid: a library switch failed: reboot to load the library the store",
    )
    sh.step()
    after = shell(ports(p["store"]))
    assert after.core.library.ok and after.core.library.version == version
    assert "store_lost" not in _high(after), [(a.code, a.message) for a in after.core.alarms()]
    assert [a.active for a in after.core.alarms() if a.code == "library_refused"] == [False]


def _rebooted(store):
    sh = shell(ports(store))
    sh.begin()
    sh.step()  # the record saved
    return sh


def test_a_reset_under_a_library_that_is_not_json_keeps_the_saved_state():
    store = Store()
    store.files[libpush.ACTIVE] = b'{"name": "x", "drugs": '  # a torn or rotten file
    assert "library_refused" in _high(_rebooted(store))
    again = _rebooted(store)
    assert "store_lost" not in _high(again), [(a.code, a.message) for a in again.core.alarms()]
    assert [a.code for a in again.core.alarms()] == ["library_refused"]  # the record's


class ReadFails(Store):
    """A store whose read of druglib.json fails (EIO) while fail is set."""

    fail = False

    def read(self, name):
        if name == libpush.ACTIVE and self.fail:
            raise OSError(5, "EIO")
        return Store.read(self, name)


def test_a_transient_read_failure_of_the_library_at_boot_does_not_lose_the_next_record():
    store = ReadFails()
    store.files[libpush.ACTIVE] = _file()
    store.fail = True
    _rebooted(store)
    store.fail = False
    again = _rebooted(store)
    assert again.core.library.ok
    assert "store_lost" not in _high(again), [(a.code, a.message) for a in again.core.alarms()]
    assert [a.active for a in again.core.alarms() if a.code == "library_refused"] == [False]
    assert _log(again, "library_switched") == []  # from no library: no switch either


def test_a_boot_whose_library_cannot_be_read_logs_no_switch_to_none():
    store = ReadFails()
    _rebooted(store)  # a record of the built-in library
    store.fail = True
    sh = _rebooted(store)
    assert "library_refused" in _high(sh)
    assert _log(sh, "library_switched") == []


class Renames(Store):
    """A store that counts its renames over the active library (each a rewrite)."""

    renames = 0

    def rename(self, src, dst):
        self.renames += dst == libpush.ACTIVE
        Store.rename(self, src, dst)


def test_a_push_of_the_library_already_active_changes_nothing_and_logs_nothing():
    # A tool re-pushing the active library in a loop would otherwise push the
    # infusions' entries out of the persistent log (review 3).
    store = Renames()
    p = ports(store)
    sh = shell(p)
    host = _service(sh, p)
    data = _file()
    assert _send(host, data)[0] == "LIB_COMMIT_R"
    logged = sh.core.log.next_seq
    name, f = _send(host, data)
    assert name == "LIB_COMMIT_R", f
    assert (f["library"], f["library_version"], f["library_crc"]) == _identity(sh.core.library)
    assert sh.core.log.next_seq == logged, entries(sh.core.log)[-3:]
    assert store.renames == 1 and libpush.NEW not in store.files
    assert store.files[libpush.ACTIVE] == data


def _out_of_memory(module, attr, when=None):
    """module.attr raising MemoryError once (when when(*args) holds), then as before."""
    orig = getattr(module, attr)

    def failing(*args):
        if when is None or when(*args):
            setattr(module, attr, orig)
            raise MemoryError("memory allocation failed")
        return orig(*args)

    setattr(module, attr, failing)


def test_a_fault_after_the_rename_runs_no_library_until_a_reboot_loads_the_stored_one():
    # Out of memory after the rename (the heap holds both libraries): RAM must never
    # run the old library while the store holds the new one, or a start accepted now
    # is lost at the next reset (review 3).
    p = ports()
    sh = shell(p)
    sh.begin()
    _out_of_memory(sh.core.log, "add", lambda at, ch, kind, code, text: code == "library_pushed")
    name, f = _send(_service(sh, p), _file("push-oom"))
    assert (name, f["code"], f["message"]) == ("ERROR", catalog.ERR_INTERNAL, libsteps.FAULT)
    assert not sh.core.library.ok
    _no_library_until_a_reboot(sh, p, "push-oom")


def test_a_fault_making_the_switch_is_refused_changing_nothing_and_ends_the_push():
    # Channel 1 shows norepinephrine, which the pushed library lacks: a fault rebuilding
    # the channels once made core.rollback() look that drug up in the new library, and
    # the KeyError left the loop (review 3). Made before the rename, nothing switched.
    p = ports()
    sh = shell(p)
    sh.begin()
    _stopped(sh, p)
    before = _identity(sh.core.library)
    service = _service(sh, p)
    _out_of_memory(resume, "shown")
    name, f = _send(service, _file("push-oom2"))
    assert name == "ERROR" and "internal fault, not run" in f["message"], (name, f)
    assert _identity(sh.core.library) == before and status_of(sh.core, 1).drug == NOREPI["drug"]
    assert libpush.ACTIVE not in p["store"].files
    _refused(service.request("LIB_COMMIT", {}), "invalid_state", "no library push under way")


def test_a_commit_out_of_memory_parsing_ends_the_push():
    p = ports()
    sh = shell(p)
    service = _service(sh, p)
    _stage(service, _file())
    _out_of_memory(druglib, "load")
    name, f = service.request("LIB_COMMIT", {})
    assert name == "ERROR" and "internal fault, not run" in f["message"], (name, f)
    _refused(service.request("LIB_COMMIT", {}), "invalid_state", "no library push under way")


def test_a_fault_answering_a_commit_that_switched_undoes_nothing():
    # The store holds the new library once the commit ran: the net must not roll the
    # channels back to the old library's (a drug the new one lacks: KeyError out of the
    # loop), and its answer says the request ran.
    p = ports()
    sh = shell(p)
    sh.begin()
    _stopped(sh, p)
    service = _service(sh, p)
    _out_of_memory(gate, "answer", lambda shell, frame, i, name, fields: name == "LIB_COMMIT_R")
    name, f = _send(service, _file("push-answer"))
    assert name == "ERROR" and "internal fault, after it ran" in f["message"], (name, f)
    assert sh.core.library.version == "push-answer" and status_of(sh.core, 1).drug is None
