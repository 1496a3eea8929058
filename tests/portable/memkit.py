# What a call allocates, measured the one way each interpreter allows, for the portable
# tests' bounds on it.
import sys


def allocating(run):
    """(bytes run() allocated: in all on WebAssembly, which collects no garbage inside a
    call; its peak on CPython; live after it on the unix port, which collects as it
    goes), run()'s result."""
    if sys.implementation.name != "micropython":
        import tracemalloc

        tracemalloc.start()
        try:
            result = run()
            return tracemalloc.get_traced_memory()[1], result
        finally:
            tracemalloc.stop()
    import gc

    gc.collect()
    before = gc.mem_alloc()
    result = run()
    return gc.mem_alloc() - before, result
