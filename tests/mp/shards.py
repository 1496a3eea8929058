"""Which of the portable test modules one MicroPython process runs, when `make test-mp`
runs them in several side by side (one WebAssembly interpreter is one core):

    python3 tests/mp/shards.py SHARDS K MODULE...

prints the modules of shard K (1 to SHARDS) of the MODULEs named (dotted, as
tests/mp/runner.py takes them), in their order. Every module is in exactly one shard;
each module goes to the shard with the least work so far, largest first, by the seconds
it took on MicroPython (WebAssembly, Node; measured on a 2-core machine at e8b2b18, the
runner's own imports included); a module not listed counts as DEFAULT_S. The figures
only balance the shards: a stale one makes a shard end later, never a module skipped.
Run by CPython (the Makefile); in tests/mp/, so in the MicroPython subset mpy-cross
compiles (tests/heap/tree.py compiles the directory).
"""

import sys

DEFAULT_S = 2.0
SECONDS = {
    "test_store_restore": 19.8,
    "test_druglib_fuzz": 18.8,
    "test_store_boot": 17.8,
    "test_shell_auth": 13.0,
    "test_library_push": 10.4,
    "test_store_shell": 9.0,
    "test_protocol_decoder_fuzz": 7.7,
    "test_shell": 6.1,
    "test_net_review": 5.4,
    "test_protocol_vectors": 4.4,
    "test_auth_attacks": 4.0,
    "test_firmware_sessions": 3.5,
    "test_protocol_memory": 3.4,
    "test_store_chunks": 3.3,
    "test_auth_sessions": 3.2,
    "test_journal": 2.1,
    "test_druglib": 1.8,
    "test_druglib_memory": 1.7,
    "test_boot_memory": 1.2,
    "test_log_memory": 0.9,
    "test_core_memory": 0.5,
    "test_boards": 0.3,
    "test_core_logtext": 0.2,
}
# each of the other modules of e8b2b18 took 0.1 s or less
for _name in (
    "test_auth",
    "test_core_alarms",
    "test_core_attacks",
    "test_core_persist",
    "test_core_start",
    "test_core_stop",
    "test_core_taper_gap",
    "test_core_titrate",
    "test_harness",
    "test_protocol_decoder",
    "test_protocol_replay",
    "test_protocol_text",
    "test_seed_scenarios",
    "test_stepper",
    "test_units",
):
    SECONDS[_name] = 0.1


def shards(count, modules):
    """The modules split into count lists, each in the order given."""
    load = [0.0] * count
    where = {}
    by_size = sorted(modules, key=lambda m: -SECONDS.get(m.rpartition(".")[2], DEFAULT_S))
    for module in by_size:
        k = load.index(min(load))
        where[module] = k
        load[k] += SECONDS.get(module.rpartition(".")[2], DEFAULT_S)
    return [[m for m in modules if where[m] == k] for k in range(count)]


def main(argv):
    count, k, modules = int(argv[0]), int(argv[1]), argv[2:]
    if not 1 <= k <= count:
        raise SystemExit(f"shards.py: shard {k} of {count}: give 1 to {count}")
    print(" ".join(shards(count, modules)[k - 1]))


if __name__ == "__main__":
    main(sys.argv[1:])
