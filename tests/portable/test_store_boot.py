# Boots on a store that fails or is tampered with (issue 10: no boot loop from any
# record, a store failure never undoes a stop): power cuts while booting, reads that
# fail, writes that fail at boot, a record put back with its counter removed.
from firmware import persist
from tests.portable.shellkit import NOREPI, Host, Store, ports, shell
from tests.portable.test_library_push import CutStore, PowerCut


def _running():
    """A store whose record has norepinephrine running on channel 1."""
    p = ports()
    sh = shell(p)
    host = Host(sh, p)
    host.hello()
    assert host.request("START", NOREPI)[0] == "START_R"
    return p["store"]


def _codes(core):
    return [a.code for a in core.alarms()]


class FailingStore(Store):
    """A store whose reads (reads=True) or writes (writes=True) raise EIO / ENOSPC."""

    reads = False
    writes = False

    def read(self, name):
        if self.reads:
            raise OSError(5, "EIO")
        return Store.read(self, name)

    def readinto(self, name, offset, buf):
        # FileStore's: None for a file it cannot read, as for a missing one
        return None if self.reads else Store.readinto(self, name, offset, buf)

    def size(self, name):
        return None if self.reads else Store.size(self, name)

    def write(self, name, data):
        if self.writes:
            raise OSError(28, "no space left on device")
        Store.write(self, name, data)

    def rename(self, src, dst):
        if self.writes:
            raise OSError(28, "no space left on device")
        Store.rename(self, src, dst)


def test_power_cuts_after_restore_never_set_a_record_aside():
    store = _running()
    for _ in range(4):  # cut each time after restore, before the first turn completed
        shell(ports(store)).begin()
    p = ports(store)
    sh = shell(p)
    sh.begin()
    sh.step()
    assert p["motors"][0].rate > 0
    assert "record_set_aside" not in _codes(sh.core)
    assert not [n for n in store.files if n.startswith("state.bad.")]


def test_a_read_error_at_boot_is_no_first_boot_and_saves_nothing_over_it():
    source = _running()
    store = FailingStore()
    store.files = dict(source.files)
    good = store.files["state.json"]
    store.reads = True
    p = ports(store)
    sh = shell(p)  # boots: no exception
    sh.begin()
    sh.step()
    alarm = [a for a in sh.core.alarms() if a.code == "store_lost"]
    assert alarm and alarm[0].priority == "high", _codes(sh.core)
    assert store.files["state.json"] == good  # nothing saved over the unread record
    # the store heals: the unread record is kept aside, the next record is newer
    store.reads = False
    for _ in range(70):
        p["clock"].advance(1000)
        sh.step()
    kept = [n for n in store.files if n.startswith("state.bad.")]
    assert kept and store.files[kept[0]] == good, sorted(store.files)
    assert persist.Record(store).load() is not None


class CutReadStore(Store):
    """A store that reads the record's header back but fails past it (EIO: readinto()'s
    None, as FileStore's): the record is read a window at a time (recordload.py)."""

    def readinto(self, name, offset, buf):
        if name == "state.json" and offset > 0:
            return None
        return Store.readinto(self, name, offset, buf)


def test_a_record_that_fails_to_read_past_its_header_is_unreadable_not_damaged():
    store = CutReadStore()
    store.files = dict(_running().files)
    good = store.files["state.json"]
    assert len(good) > 512  # past the record's buffer: read in more than one window
    sh = shell(ports(store))
    sh.begin()
    sh.step()
    alarm = [a for a in sh.core.alarms() if a.code == "store_lost"]
    assert alarm and "unreadable" in alarm[0].message, _codes(sh.core)
    # held: saved over never, set aside whole by the first save (its read() reads it)
    (kept,) = [n for n in store.files if n.startswith("state.bad.")]
    assert store.files[kept] == good


def test_a_lasting_write_failure_at_boot_boots_degraded():
    source = _running()
    store = FailingStore()
    store.files = dict(source.files)
    del store.files["state.used"]  # load() writes it too
    store.writes = True
    p = ports(store)
    sh = shell(p)  # no OSError out of the boot
    sh.begin()
    sh.step()
    alarm = [a for a in sh.core.alarms() if a.code == "store_failed"]
    assert alarm and alarm[0].priority == "high", _codes(sh.core)
    assert p["motors"][0].rate > 0  # the record was still restored
    host = Host(sh, p)
    host.hello()  # and the link is served
    assert host.request("STATUS", {"ch": 1})[0] == "STATUS_R"


def test_a_record_put_back_without_its_counter_is_rolled_back():
    p = ports()
    sh = shell(p)
    sh.begin()  # its first record (gen 1): the copy put back is a later one
    host = Host(sh, p)
    host.hello()
    assert host.request("START", NOREPI)[0] == "START_R"
    store = p["store"]
    old = store.files["state.json"]
    assert host.request("ESTOP", {"ch": 1, "reason": "extravasation"})[0] == "ESTOP_R"
    store.files["state.json"] = old  # a genuine old copy put back
    del store.files["state.gen"]  # and the counter removed
    p2 = ports(store)
    sh2 = shell(p2)
    sh2.begin()
    sh2.step()
    assert p2["motors"][0].rate == 0
    assert "record_rolled_back" in _codes(sh2.core)


def test_a_record_from_before_the_counter_still_loads():
    store = _running()
    record = persist.Record(store)
    snapshot, uptime = record.load()
    del store.files["state.gen"]
    record.gen = 0  # the next save writes gen 1: a reset before its counter
    record.save(snapshot, uptime)
    del store.files["state.gen"]
    assert persist.Record(store).load() is not None


_STATE = "store-boot-test-state"  # the FileStore's directory while the test runs


def test_a_filestore_read_error_raises_and_only_a_missing_file_is_none():
    import os

    from boards.drivers.filestore import FileStore

    store = FileStore(_STATE)
    os.mkdir(_STATE + "/state.json")  # opening it fails, and not as a missing file
    try:
        assert store.read("state.gen") is None
        try:
            store.read("state.json")
        except OSError:
            pass
        else:
            raise AssertionError("a read that failed was taken for a missing file")
    finally:
        os.rmdir(_STATE + "/state.json")
        os.rmdir(_STATE)


def test_a_filestore_makes_each_file_s_path_once():
    # before: every call made the path anew (two strings), half a dozen calls a save:
    # the bounded-heap soak's worst command, an ACK, made 1.7-2.9 KB of paths
    import os

    from boards.drivers.filestore import FileStore

    store = FileStore(_STATE)
    try:
        store.write("state.tmp", b"1")
        assert store._path("state.tmp") is store._path("state.tmp")
        for gen in range(40):  # records set aside: a new name each, the paths bounded
            assert store._path("state.bad.%d" % gen) == _STATE + "/state.bad.%d" % gen
        assert len(store._paths) <= 16
        store.rename("state.tmp", "state.json")
        assert store.read("state.json") == b"1" and store.read("state.tmp") is None
    finally:
        store.remove("state.tmp")
        store.remove("state.json")
        os.rmdir(_STATE)


_TITRATE_AFTER_MS = 16 * 60_000  # past norepinephrine's titration interval


def test_a_power_cut_at_any_byte_of_a_save_never_loses_the_record():
    # before: a cut while state.gen was rewritten left it empty beside a record past the
    # first, which then read as a copy put back without its counter: every channel idle
    # (a running norepinephrine stopped at once), seen in the power-cut soak under load
    source = _running()
    halves = (lambda n: 0, lambda n: n // 2, lambda n: n - 1 if n else 0)
    for part in halves:
        cut = 1
        while True:
            store = CutStore(source.files, 0, part=part)
            p = ports(store)
            sh = shell(p)
            sh.begin()
            host = Host(sh, p)
            host.hello()
            p["clock"].advance(_TITRATE_AFTER_MS)
            store.cut = store.changes + cut  # the cut falls in the titration's save
            try:
                answer = host.request(
                    "TITRATE", {"ch": 1, "dose": 110000, "unit": "mcg/kg/min", "override": False}
                )
            except PowerCut:
                pass
            else:
                assert answer[0] == "TITRATE_R", answer
                break  # the titration and its save came through before the cut
            store.cut = 0  # the power back: a new boot on what the store holds
            p2 = ports(store)
            sh2 = shell(p2)
            sh2.begin()
            sh2.step()
            codes = _codes(sh2.core)
            assert p2["motors"][0].rate > 0, (cut, sorted(store.files), codes)
            assert "record_rolled_back" not in codes and "store_lost" not in codes, (cut, codes)
            cut += 1
        assert cut > 3  # the save's changes were cut, one after the other
