# tests/mp/firmware_memory.py on the native unix port (64-bit), the figures
# tests/mp/firmware_memory.mjs prints for the WebAssembly one (32-bit): the live heap
# with the firmware running, bytes per idle turn and per command (gc.mem_alloc()
# deltas after a gc.collect(), which this port runs at once, mid-code).
#
#   python -m tests.heap.memory [HEAP]    (CPython: builds tests/heap/tree.py's tree
#                                          and runs this module there, HEAP 1m unless given)
#
# On MicroPython (`micropython -m tests.heap.memory` in that tree) it is the driver.
import gc
import sys

COMMANDS = ("HEARTBEAT", "STATUS", "START", "TITRATE", "STOP", "LOG")


def measure():
    gc.collect()
    bare = gc.mem_alloc()
    import tests.mp.firmware_memory as m

    gc.collect()
    modules = gc.mem_alloc()
    m.boot()
    hello = m.hello()
    start = m.request("START", m.NOREPI)
    if hello != "HELLO_R" or start != "START_R":
        print("setup:", hello, start)
        return 1
    m.prepare()
    for _ in range(3):  # settle: first saves, events
        m.idle_turns()
    gc.collect()
    live = gc.mem_alloc()
    gc.collect()
    idle = m.idle_turns()
    per = []
    for name in COMMANDS:
        gc.collect()
        used, answer = m.command(name)
        tail = "" if answer == name + "_R" else " (" + str(answer) + ")"
        per.append(name + " " + str(used) + tail)
    print("firmware memory (MicroPython unix port, 64-bit):")
    print(
        f"  live heap after gc.collect(): {live} bytes, firmware running with the full library"
        f" loaded and a channel infusing (bare interpreter: {bare} bytes; with every module"
        f" imported, before boot: {modules} bytes)"
    )
    print(f"  idle loop turn: {idle} bytes allocated per turn (goal 0)")
    print("  per command, bytes allocated: " + ", ".join(per))
    return 0 if idle == 0 else 1


def host(argv):
    import subprocess
    from pathlib import Path

    from tests.heap import tree

    where = tree.build()
    heap = argv[0] if argv else "1m"
    exe = Path(sys.executable).parent / "micropython"
    cmd = [str(exe), "-X", "heapsize=" + heap, "-m", "tests.heap.memory"]
    env = {"MICROPYPATH": ".", "PATH": "/usr/bin:/bin"}
    return subprocess.run(cmd, cwd=where, env=env).returncode


if sys.implementation.name == "micropython":
    sys.exit(measure())
elif __name__ == "__main__":
    sys.exit(host(sys.argv[1:]))
