# Memory report for the safety core, on MicroPython (printed by `make test`).
#
#   heap held by the full library and by a core running 2 channels (budget 32 KB for
#     both together; EXIT_CODE = 1 when over), also with the event-log ring full
#   bytes allocated per steady-state loop: tick(), delivered() and host_seen(), proven
#     0 by running them under micropython.heap_lock() (an allocation raises MemoryError)
#   bytes allocated per command (start, titrate, refusal), for information
#
# How "held" is measured: this WebAssembly build of MicroPython grows its heap instead
# of collecting, and defers gc.collect() to the top level (between two runPython calls),
# so inside one run nothing is ever freed and mem_alloc() deltas count garbage too. The
# report therefore rebuilds the object graph a loaded library / a core holds, field by
# field, and counts what that copy allocates: every object the original keeps alive, and
# none of the garbage made while parsing or deciding. (The copy's own scaffolding, dict
# growth and one-byte-shorter string copies, makes it a slight over-estimate.) Objects
# whose id() is not word-aligned are immediates (small ints, interned strings) that live
# in the object pointer itself or in ROM, and cost the heap nothing.
import gc

import micropython

from firmware import druglib
from firmware.core import SafetyCore

_BUDGET = 32 * 1024
_M = 1000000
_LOOPS = 1000


def _alloc(fn):
    gc.collect()
    before = gc.mem_alloc()
    fn()
    return gc.mem_alloc() - before


def _rebuild(obj, keep):
    """A structural copy of obj, sharing only the objects in keep (counted elsewhere)."""
    for kept in keep:
        if obj is kept:
            return obj
    if obj is None or obj is True or obj is False or id(obj) & 3:
        return obj  # static, or an immediate (small int, interned string): never allocated
    if isinstance(obj, int):
        return obj + 1  # a long int: a fresh one of the same size
    if isinstance(obj, str):
        return obj[1:]  # a fresh string one byte shorter: the same allocation, no garbage
    if isinstance(obj, tuple) and len(obj) <= 6:
        return _small_tuple(obj, keep)
    if isinstance(obj, (list, tuple)):
        items = [None] * len(obj)
        for i in range(len(obj)):
            items[i] = _rebuild(obj[i], keep)
        return items if isinstance(obj, list) else tuple(items)
    if isinstance(obj, dict):
        copy = {}
        for key in obj:
            copy[_rebuild(key, keep)] = _rebuild(obj[key], keep)
        return copy
    copy = object.__new__(type(obj))
    fields = obj.__dict__
    for name in fields:
        setattr(copy, name, _rebuild(fields[name], keep))
    return copy


def _small_tuple(obj, keep):
    # tuple displays allocate only the tuple (tuple(list) would add the list as garbage)
    n = len(obj)
    a = _rebuild(obj[0], keep) if n > 0 else None
    b = _rebuild(obj[1], keep) if n > 1 else None
    c = _rebuild(obj[2], keep) if n > 2 else None
    d = _rebuild(obj[3], keep) if n > 3 else None
    e = _rebuild(obj[4], keep) if n > 4 else None
    f = _rebuild(obj[5], keep) if n > 5 else None
    if n == 6:
        return (a, b, c, d, e, f)
    if n == 5:
        return (a, b, c, d, e)
    if n == 4:
        return (a, b, c, d)
    if n == 3:
        return (a, b, c)
    if n == 2:
        return (a, b)
    return (a,) if n else ()


def _held(obj, keep):
    return _alloc(lambda: _rebuild(obj, keep))


def _load():
    with open("firmware/druglib.json") as f:
        return druglib.load(f.read())


def _running_core(lib):
    core = SafetyCore(lib, channels=2)
    args = {"weight": 80 * _M, "conc": 16 * _M, "conc_unit": "mcg/mL", "volume": 50 * _M}
    assert core.start(1, "norepinephrine", 100000, "mcg/kg/min", 0, **args).ok
    args = {"conc": 100000, "conc_unit": "units/mL", "volume": 50 * _M}
    assert core.start(2, "vasopressin", 30000, "units/min", 0, **args).ok
    return core


def _fill_log(core):
    for i in range(core.log.size):
        core.titrate(1, 100000 + (i % 2) * 10000, "mcg/kg/min", (i + 1) * 600000)


def _locked(fn):
    """Run fn with the heap locked: None if it allocated nothing, else the MemoryError."""
    micropython.heap_lock()
    try:
        fn()
        return None
    except MemoryError as exc:
        return exc
    finally:
        micropython.heap_unlock()


def _loop(core, times):
    for t in times:
        core.host_seen(t)
        core.delivered(1, 83)
        core.delivered(2, 50)
        core.tick(t)


def _loop_no_host(core, times):
    for t in times:
        core.delivered(1, 83)
        core.delivered(2, 50)
        core.tick(t)


def _verdict(failure):
    return "no allocation in %d loops" % _LOOPS if failure is None else "ALLOCATED (%r)" % failure


lib_alloc = _alloc(_load)
lib = _load()
assert lib.ok, lib.problems
keep = [lib] + list(lib.drugs.values())
lib_held = _held(lib, ())
core = _running_core(lib)
core_held = _held(core, keep)
total = lib_held + core_held
print(
    "core memory: library %s %s: %d bytes held (%d allocated while parsing it)"
    % (lib.name, lib.version, lib_held, lib_alloc)
)
print("core memory: core with 2 channels running: %d bytes held" % core_held)
_fill_log(core)
full = lib_held + _held(core, keep)
print(
    "core memory: live heap (library + core) %d bytes; with its %d-entry event log full "
    "%d bytes; budget %d bytes: %s"
    % (total, core.log.size, full, _BUDGET, "OK" if full <= _BUDGET else "OVER BUDGET")
)

# Steady state: everything due has happened; times are made before the heap is locked.
t0 = 30 * 24 * 3600 * 1000 // 1000  # 43.2 min of uptime: small-int now_ms
core.host_seen(t0)
core.tick(t0)
times = [t0 + 10 * i for i in range(1, _LOOPS + 1)]
per_loop = _alloc(lambda: _loop(core, times)) // _LOOPS
times = [times[-1] + 10 * i for i in range(1, _LOOPS + 1)]
failure = _locked(lambda: _loop(core, times))
print(
    "core memory: steady-state loop (host_seen + 2 delivered + tick): %d bytes per loop; "
    "heap_lock: %s" % (per_loop, _verdict(failure))
)
# Past 2^30 ms (12.4 days) now_ms is a long int: tick and delivered still only compare.
big = (1 << 31) + 12345
core.host_seen(big)
core.tick(big)
times = [big + 5 * i for i in range(1, _LOOPS + 1)]  # within the link timeout
failure_big = _locked(lambda: _loop_no_host(core, times))
print(
    "core memory: tick + delivered past 2^30 ms of uptime (long-int now_ms): heap_lock: %s"
    % (_verdict(failure_big),)
)
print(
    "core memory: host_seen past 2^30 ms allocates its long-int deadline: %d bytes per call"
    % (_alloc(lambda: core.host_seen(big + 20000)),)
)

fresh = _running_core(lib)
print(
    "core memory: per command (log text and Result): start %d, titrate %d, refusal %d bytes"
    % (
        _alloc(lambda: _running_core(lib)) // 2,
        _alloc(lambda: fresh.titrate(1, 120000, "mcg/kg/min", 10 * 60000)),
        _alloc(lambda: fresh.titrate(2, 50000, "units/min", 20 * 60000)),
    )
)

if full > _BUDGET or failure is not None or failure_big is not None:
    EXIT_CODE = 1
