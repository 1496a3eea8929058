"""Which of the portable test modules one MicroPython process runs, when `make test-mp`
runs them in several side by side (one WebAssembly interpreter is one core):

    python3 tests/mp/shards.py SHARDS K MODULE...

prints the modules of shard K (1 to SHARDS) of the MODULEs named (dotted, as
tests/mp/runner.py takes them), in their order. Every module is in exactly one shard;
each module goes to the shard with the least work so far, largest first, by the seconds
of CPU it took on MicroPython (WebAssembly, Node; measured on 947bd69 once the portable
fuzz loops had make test's budgets, tests/budgets.py: the runner's own imports included,
each module under 0.5 s counted as 0.4); a module not listed counts as DEFAULT_S. The figures
only balance the shards: a stale one makes a shard end later, never a module skipped.
Run by CPython (the Makefile); in tests/mp/, so in the MicroPython subset mpy-cross
compiles (tests/heap/tree.py compiles the directory).
"""

import sys

DEFAULT_S = 2.0
SECONDS = {
    "test_store_restore": 9.3,
    "test_library_push": 5.6,
    "test_druglib_fuzz": 5.1,
    "test_protocol_vectors": 4.9,
    "test_store_boot": 4.1,
    "test_shell_auth": 3.9,
    "test_store_shell": 3.5,
    "test_protocol_decoder_fuzz": 2.8,
    "test_auth_attacks": 2.7,
    "test_shell": 2.6,
    "test_firmware_sessions": 2.3,
    "test_store_chunks": 2.0,
    "test_journal": 1.8,
    "test_druglib": 1.7,
    "test_net_review": 1.7,
    "test_auth_sessions": 1.5,
    "test_druglib_memory": 1.5,
    "test_log_memory": 0.9,
    "test_boot_memory": 0.8,
    "test_core_logtext": 0.7,
    "test_core_persist": 0.5,
    "test_core_start": 0.5,
    "test_core_titrate": 0.5,
    "test_protocol_memory": 0.5,
}
for _name in (
    "test_auth",
    "test_boards",
    "test_core_alarms",
    "test_core_attacks",
    "test_core_memory",
    "test_core_stop",
    "test_core_taper_gap",
    "test_harness",
    "test_protocol_decoder",
    "test_protocol_replay",
    "test_protocol_text",
    "test_seed_scenarios",
    "test_stepper",
    "test_units",
):
    SECONDS[_name] = 0.4


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
