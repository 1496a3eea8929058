# Memory report for the safety core, on MicroPython (printed by `make test`).
#
#   heap held by the full library and by a core running 2 channels, also with its
#     event-log ring full (budget 32 KB for library + core; EXIT_CODE = 1 when over)
#   what loading the library allocates in all, and what it holds after
#   bytes allocated per steady-state loop: tick(), delivered() and host_seen(), proven
#     0 by running them under micropython.heap_lock() (an allocation raises MemoryError)
#   bytes allocated per command (start, titrate, refusal), for information
#
# How "held" is measured: this WebAssembly build only collects once control is back in
# JavaScript, so the report is a generator (PHASES, see tests/mp/run.mjs): the loader runs
# a real gc.collect() at each `yield`. Held bytes are differences of gc.mem_alloc() after
# such collections, with the measured object kept alive and its garbage gone, as on a
# board. "Allocated" figures are mem_alloc() differences within one step, garbage
# included: on this build nothing is freed inside a step, so they are the upper bound
# of what a step needs at once.
import gc

import micropython

from firmware import druglib
from firmware.core import SafetyCore

_BUDGET = 32 * 1024
_M = 1000000
_LOOPS = 1000
_PATH = "firmware/druglib.json"


def _alloc(fn):
    before = gc.mem_alloc()
    fn()
    return gc.mem_alloc() - before


def _read():
    with open(_PATH) as f:
        return f.read()


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


def _phases():
    global EXIT_CODE
    # -- loading the library: what each step allocates, and what it leaves held --------
    base = gc.mem_alloc()
    text = _read()
    yield
    text_held = gc.mem_alloc() - base
    kept = []
    whole = _alloc(lambda: kept.append(druglib.load(text)))
    lib = kept[0]
    assert lib.ok, lib.problems
    text = kept = None
    yield
    lib_held = gc.mem_alloc() - base
    # The loader (firmware/libload.py) parses one drug at a time and is dropped after the
    # load: what the largest free stretch must be for it is tests/portable/
    # test_druglib_memory.py's, on the bounded heap of the unix port.
    print(
        "core memory: library %s %s: %d bytes held; loading it allocates %d bytes in all "
        "(the %d-byte text held meanwhile)" % (lib.name, lib.version, lib_held, whole, text_held)
    )
    # -- the core -----------------------------------------------------------------------
    base = gc.mem_alloc()
    core = _running_core(lib)
    yield
    core_held = gc.mem_alloc() - base
    print("core memory: core with 2 channels running: %d bytes held" % core_held)
    _fill_log(core)
    yield
    full = gc.mem_alloc() - base
    total = lib_held + full
    print(
        "core memory: live heap (library + core) %d bytes; with its %d-entry event log full "
        "%d bytes (core %d); budget %d bytes: %s"
        % (
            lib_held + core_held,
            core.log.size,
            total,
            full,
            _BUDGET,
            "OK" if total <= _BUDGET else "OVER BUDGET",
        )
    )
    # -- steady state: everything due has happened; times made before the heap is locked
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
    if total > _BUDGET or failure is not None or failure_big is not None:
        EXIT_CODE = 1


PHASES = _phases()
