# Code a running pump does not call, not held (issue 14): the boot's work (firmware/
# startup.py, resume.py, the library's loader) and a library push's LIB_BEGIN and
# LIB_COMMIT (firmware/libsteps.py) are imported for the call and dropped after it
# (druglib.call); a request whose code cannot be imported (out of memory on a
# fragmented heap) is refused with nothing changed. On both interpreters; the bytes
# each resident module holds on the MicroPython unix port only (its heap is bounded,
# as a board's: WebAssembly's grows, CPython's is no board's).
import json
import sys
from binascii import crc32

from firmware import druglib, libpush
from protocol import catalog
from tests.portable.corekit import library_text
from tests.portable.shellkit import Host, ports, shell

_BOUNDED = sys.implementation.name == "micropython" and sys.platform != "webassembly"
_PACKAGE = druglib.__name__.rpartition(".")[0]
_TRANSIENT = ("startup", "resume", "recordload", "libsteps", "libload", "jsonparts", "canonical")
# The bytes each module's own code and globals hold once imported (its imports already
# resident), on the 64-bit unix port. Measured: main 1.8 KB (8.4 KB with boards/ before
# the boot's work moved out: 5.0 KB without), libpush 2.7 KB (6.5 KB); resume (8.4 KB)
# is not held at all (_TRANSIENT).
_HELD_MAX = (("main", 2500), ("libpush", 3200))


def _file(version):
    # (test_library_push.py's, which imports the push's modules: not here)
    doc = json.loads(library_text())
    doc["drugs"] = {"dobutamine": doc["drugs"]["dobutamine"]}
    doc["version"] = version
    doc["crc32"] = "0x%08x" % druglib.crc_of(doc)
    return json.dumps(doc).encode()


def _service(sh, p):
    host = Host(sh, p, role="service")
    host.hello()
    return host


def _chunk(data, offset):
    piece = data[offset : offset + catalog.LIB_CHUNK]
    pad = bytes(catalog.LIB_CHUNK - len(piece))
    return {"offset": offset, "n": len(piece), "data": piece + pad}


def _rest(host, data, offset):
    while offset < len(data):
        name, f = host.request("LIB_DATA", _chunk(data, offset))
        assert name == "LIB_DATA_R", (name, f)
        offset = f["next"]


def _stage(host, data):
    crc = crc32(data) & 0xFFFFFFFF
    begun = host.request("LIB_BEGIN", {"size": len(data), "crc": crc})
    assert begun[0] == "LIB_BEGIN_R", begun
    _rest(host, data, 0)


def _loaded():
    return [m for m in _TRANSIENT if _PACKAGE + "." + m in sys.modules]


def _not_held(before):
    """None of the transient modules a test did not import itself is loaded, nor an
    attribute of the package."""
    assert _loaded() == before, (_loaded(), before)
    parent = sys.modules[_PACKAGE]
    for m in _TRANSIENT:
        if m not in before:
            assert m not in parent.__dict__, m


def test_the_boot_s_code_is_not_held_after_a_boot():
    before = _loaded()
    sh = shell(ports())
    sh.step()
    assert sh.core.library.ok
    _not_held(before)


def test_a_push_s_code_is_not_held_after_each_of_its_requests():
    p = ports()
    sh = shell(p)
    before = _loaded()
    service = _service(sh, p)
    data = _file("held")
    _stage(service, data)
    _not_held(before)
    name, f = service.request("LIB_COMMIT", {})
    assert name == "LIB_COMMIT_R", (name, f)
    assert sh.core.library.version == "held"
    _not_held(before)


def _cannot_import(name):
    """druglib.call's import of firmware.<name> runs out of memory (as on a fragmented
    heap: no stretch large enough for its code) until the returned undo() is called."""
    real = druglib._import

    def failing(full, *args):
        if full.rpartition(".")[2] == name:
            raise MemoryError("memory allocation failed")
        return real(full, *args)

    druglib._import = failing

    def undo():
        druglib._import = real

    return undo


def _state(sh, p):
    """What a refused request must leave as it was: the store, the push under way, the
    library, the alarms, the log."""
    push = sh.push
    return (
        sorted((k, bytes(v)) for k, v in p["store"].files.items()),
        (push.sid, push.size, push.crc, push.held),
        (sh.core.library.name, sh.core.library.version, sh.core.library.crc),
        [(a.code, a.message) for a in sh.core.alarms()],
        sh.core.log.next_seq,
    )


def _not_run(answer):
    name, f = answer
    assert (name, f["code"], f["message"]) == ("ERROR", catalog.ERR_INTERNAL, libpush.NOT_RUN)


def test_a_lib_begin_whose_code_cannot_be_imported_is_refused_changing_nothing():
    p = ports()
    sh = shell(p)
    sh.begin()
    service = _service(sh, p)
    data = _file("under-way")
    crc = crc32(data) & 0xFFFFFFFF
    assert service.request("LIB_BEGIN", {"size": len(data), "crc": crc})[0] == "LIB_BEGIN_R"
    assert service.request("LIB_DATA", _chunk(data, 0))[0] == "LIB_DATA_R"
    was = _state(sh, p)
    undo = _cannot_import("libsteps")
    try:
        _not_run(service.request("LIB_BEGIN", {"size": 10, "crc": 1}))
        sh.step()
        assert _state(sh, p) == was  # the push under way goes on, nothing alarmed
    finally:
        undo()
    _rest(service, data, catalog.LIB_CHUNK)
    name, f = service.request("LIB_COMMIT", {})
    assert name == "LIB_COMMIT_R" and sh.core.library.version == "under-way", (name, f)


def test_a_lib_commit_whose_code_cannot_be_imported_is_refused_changing_nothing():
    p = ports()
    sh = shell(p)
    sh.begin()
    service = _service(sh, p)
    _stage(service, _file("later"))
    was = _state(sh, p)
    undo = _cannot_import("libsteps")
    try:
        _not_run(service.request("LIB_COMMIT", {}))
        sh.step()
        assert _state(sh, p) == was  # not switched, the push still under way
    finally:
        undo()
    name, f = service.request("LIB_COMMIT", {})  # with memory for it: it runs
    assert name == "LIB_COMMIT_R" and sh.core.library.version == "later", (name, f)
    assert libpush.NEW not in p["store"].files


def _held(name):
    """The bytes firmware.<name> holds imported again (its imports resident already)."""
    import gc

    full = _PACKAGE + "." + name
    parent = sys.modules[_PACKAGE]
    module = sys.modules.pop(full)
    try:
        gc.collect()
        before = gc.mem_alloc()
        __import__(full)
        gc.collect()
        return gc.mem_alloc() - before
    finally:
        sys.modules[full] = module
        setattr(parent, name, module)


def test_the_modules_a_running_pump_holds_hold_no_boot_or_push_code():
    if not _BOUNDED:
        return
    __import__(_PACKAGE + ".main")
    held = [(name, _held(name), most) for name, most in _HELD_MAX]
    assert all(n <= most for _, n, most in held), held


def test_a_lib_begin_on_a_heap_too_full_for_its_code_is_all_or_nothing():
    # The unix port's bounded heap filled but for one stretch, of every size from too
    # small for anything to enough: each LIB_BEGIN either begins the push or changes
    # nothing (the store, the push, the library), whatever ran out of memory and where.
    if not _BOUNDED:
        return
    from tests.portable.test_druglib_memory import _in_free

    p = ports()
    sh = shell(p)
    sh.begin()
    host = _service(sh, p)
    seen = set()
    for n in range(2000, 14000, 1000):
        wire = host.wire("LIB_BEGIN", {"size": 100, "crc": 1})
        p["link"].rx += wire
        was = _state(sh, p)[:3]

        def turn(wire=wire):
            for _ in range(1 + len(wire) // 64):
                sh.step()

        _in_free(n, turn)
        frames = [f for f in host.raw() if f.seq == host.seq and not catalog.is_event(f.msg_id)]
        name = catalog.NAME[frames[-1].msg_id] if frames else None
        if name == "LIB_BEGIN_R":
            assert sh.push.sid is not None and p["store"].files[libpush.NEW] == b""
            sh.push.end()
            del p["store"].files[libpush.NEW]
        else:
            assert _state(sh, p)[:3] == was, (n, name)
        seen.add(name)
    assert "LIB_BEGIN_R" in seen and len(seen) > 1, seen  # the sweep met both
