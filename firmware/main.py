# Board entry point: pick the board, build its ports, restore the core, run the shell.
#
# On a board, the root /main.py that MicroPython runs at boot is two lines:
#     import firmware.main
#     firmware.main.main()
# The emulator calls run() with its own ports: from here on the code is the same.
import os

import boards
from firmware import druglib, persist
from firmware.core import SafetyCore
from firmware.shell import Shell

# The library sits beside this module, on the board as on the host.
_LIBRARY = __file__.rsplit("/", 1)[0] + "/druglib.json"


def _core_options(board):
    return {
        "channels": board.CHANNELS,
        "max_rate": board.MAX_RATE,
        "link_timeout_ms": board.LINK_TIMEOUT_MS,
        "near_empty_s": board.NEAR_EMPTY_S,
    }


def build(board, ports, boot_id):
    """The shell for this board and ports, with every channel restored from the store.

    A good record: each channel resumes at its last verified rate and the core raises
    its reset alarm. No record: a first boot, every channel idle. A bad record: every
    channel idle and an alarm saying why; never an infusion guessed from damaged data.
    """
    with open(_LIBRARY) as f:
        library = druglib.load(f.read())
    options = _core_options(board)
    uptime = 0
    core = None
    problem = None
    try:
        saved = persist.load(ports["store"])
        if saved is not None:
            snapshot, uptime = saved
            # The snapshot names its channels itself; the rest comes from the board.
            del options["channels"]
            core = SafetyCore.restore(library, snapshot, uptime, **options)
    except (persist.StoreError, ValueError, KeyError, TypeError) as exc:
        # StoreError: the record is damaged. The others: a record that passes its CRC
        # but that the core will not resume (another library, an older format).
        problem = "state not restored, every channel idle: %r" % (exc,)
    if core is None:
        core = SafetyCore(library, **_core_options(board))
        if problem:
            core.log.add(uptime, 0, "input", "store", problem)
    return Shell(core, board, boot_id=boot_id, uptime_ms=uptime, **ports)


def run(board, ports):
    boot_id = int.from_bytes(os.urandom(4), "little")
    build(board, ports, boot_id).run()


def main(name=None):
    """Run the board named name, or the one os.uname() identifies."""
    if name is None:
        name = boards.detect(os.uname().machine)
        if name is None:
            print("pumpguard: no board definition matches %r" % os.uname().machine)
            return
    board = boards.get(name)
    if board.safe_boot():
        print("pumpguard: safe boot, pump loop not started")
        return
    run(board, board.make_ports())
