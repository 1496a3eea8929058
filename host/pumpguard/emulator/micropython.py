"""The MicroPython runtime of the emulator: the whole firmware on the real interpreter.

``pumpguard emulate --runtime micropython`` runs the board's bundle (``deploy/bundle.py``:
every module compiled by mpy-cross, as flashed) in the WebAssembly MicroPython under
Node, one interpreter per process (``mp_emulator.mjs``). The ports stay here: the same
PTY or TCP link, virtual clock, syringe models, store and watchdog the CPython runtime
hands the firmware (``server.py``). ``run()`` relays between them and the interpreter
one loop turn at a time (the messages are listed in ``boards/emulator/relay.py``), so
the host sees the same bytes, at the same virtual times, from either runtime.
"""

import json
import os
import shutil
import subprocess

from pumpguard._board import checkout

from ..deploy import bundle
from ..errors import EmulatorError, FirmwareDied

_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mp_emulator.mjs")
_RX_CHUNK = 64  # link bytes handed over per turn: what the firmware reads per turn

# The interpreter, as package.json pins it (its .mpy ABI is the bundle's: mpy-cross 1.29).
PACKAGE = "@micropython/micropython-webassembly-pyscript"
PACKAGE_VERSION = "1.29.0-6"
# Where it is outside a checkout: the node_modules directory an `npm install` made.
NODE_MODULES_ENV = "PUMPGUARD_NODE_MODULES"


def _node():
    node = shutil.which("node")
    if node is None:
        raise EmulatorError(
            "the micropython runtime needs Node 20+ on PATH (and `npm ci` for its "
            "interpreter); or use --runtime cpython"
        )
    return node


def interpreter():
    """The npm package's entry module: in $PUMPGUARD_NODE_MODULES, else in the checkout's
    node_modules. Node is handed its path, so it never depends on where node would look
    from the script (site-packages, in an install). EmulatorError saying what to install."""
    given = os.environ.get(NODE_MODULES_ENV)
    root = checkout()
    if given:
        where = f"${NODE_MODULES_ENV} ({given})"
    elif root is not None:
        where = f"the checkout's node_modules ({root})"
    else:
        where = f"${NODE_MODULES_ENV} (not set)"
    node_modules = given or os.path.join(root or "", "node_modules")
    try:
        with open(os.path.join(node_modules, PACKAGE, "package.json")) as f:
            main = json.load(f).get("main", "index.js")
    except (OSError, ValueError):
        install = f"npm install --prefix DIR {PACKAGE}@{PACKAGE_VERSION}"
        todo = (
            "run `npm ci` in the checkout (make does it)"
            if root is not None and not given
            else f"`{install}` and set {NODE_MODULES_ENV}=DIR/node_modules"
        )
        raise EmulatorError(
            f"the micropython runtime needs the npm package {PACKAGE} {PACKAGE_VERSION} in "
            f"{where}: {todo}; or use --runtime cpython"
        ) from None
    return os.path.join(node_modules, PACKAGE, main)


def runner(board):
    """run(board, ports, boot_id) on MicroPython, once everything it needs is there:
    Node, the interpreter package and the board's bundle (built now, once per source
    state). Raises EmulatorError saying what is missing."""
    node = _node()
    entry = interpreter()
    try:
        bundle_dir = bundle.cached(board.NAME)
    except bundle.BundleError as exc:
        raise EmulatorError(f"the micropython runtime cannot build its bundle: {exc}") from None

    def run(board, ports, boot_id):
        """Run the firmware on MicroPython with ``ports``; blocks. Returns when the
        firmware returns (a safe boot); raises ``FirmwareDied`` when it dies. Whatever
        stops the relay (quit, a watchdog reset) stops the interpreter."""
        try:
            proc = subprocess.Popen(
                [node, _SCRIPT, entry, bundle_dir, board.NAME, str(boot_id)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        except OSError as exc:  # node was there at start: this host changed, not the board
            raise EmulatorError(f"cannot start {node}: {exc}") from None
        stdin, stdout = proc.stdin, proc.stdout
        if stdin is None or stdout is None:  # never: both are pipes (for the type checker)
            raise EmulatorError("node started without its pipes")
        heard = False
        try:
            heard = _relay(stdin, stdout, ports)
        except OSError as exc:  # a port on the host failed under the firmware (its store)
            raise FirmwareDied(f"{type(exc).__name__}: {exc}") from exc
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            stdin.close()
            stdout.close()
        if proc.returncode and not heard:
            # Not the firmware's death (a reset would only run it into the same wall at
            # every boot): node or its interpreter package failed before the firmware ran.
            raise EmulatorError(
                f"node exited with {proc.returncode} before the firmware ran (Node 20+ and "
                f"{PACKAGE} {PACKAGE_VERSION} at {entry}?): its error is in the emulator's log"
            )
        if proc.returncode:
            raise FirmwareDied(
                f"the firmware stopped on MicroPython (node exited with {proc.returncode}); "
                "its traceback is in the emulator's log"
            )

    return run


# The store changes the interpreter asks for (boards/emulator/relay.py): each answered.
_STORE_CHANGES = {
    "write": lambda store, name, data: store.write(name, bytes.fromhex(data)),
    "append": lambda store, name, data: store.append(name, bytes.fromhex(data)),
    "rename": lambda store, src, dst: store.rename(src, dst),
    "remove": lambda store, name: store.remove(name),
}


def _relay(stdin, stdout, ports):
    """Serve the interpreter's messages until it exits; whether it sent any."""
    link, motors, clock = ports["link"], ports["motors"], ports["clock"]
    store, alarm, watchdog = ports["store"], ports["alarm"], ports["watchdog"]
    rx = bytearray(_RX_CHUNK)
    first = True

    def answer(value):
        stdin.write(json.dumps(value) + "\n")
        stdin.flush()

    heard = False
    for line in stdout:
        heard = True
        msg = json.loads(line)
        kind = msg[0]
        if kind == "turn":
            if msg[1]:
                watchdog.feed()
            if not first:
                clock.sleep_ms(msg[2])
            first = False
            ticks = clock.ticks_ms()
            n = link.readinto(rx)
            answer(
                [
                    ticks,
                    bytes(rx[:n]).hex() if n else "",
                    [m.delivered() for m in motors],
                    [m.fault() for m in motors],
                    [m.left() for m in motors],
                ]
            )
        elif kind == "tx":
            link.write(bytes.fromhex(msg[1]))
        elif kind == "rate":
            motors[msg[1]].set_rate(msg[2])
        elif kind == "syringe":
            answer(motors[msg[1]].syringe())
        elif kind == "load":
            motors[msg[1]].load(msg[2])
        elif kind == "alarm":
            alarm.set(msg[1])
        elif kind == "read":
            try:  # a failed read goes back too: a missing record it is not
                data = store.read(msg[1])
            except OSError as exc:
                answer([exc.errno or 0, exc.strerror or str(exc)])
            else:
                answer(None if data is None else data.hex())
        elif kind == "readinto":
            buf = bytearray(msg[3])
            n = store.readinto(msg[1], msg[2], buf)
            answer(None if n is None else buf[:n].hex())
        elif kind == "size":
            answer(store.size(msg[1]))
        elif kind == "random":  # the board's entropy port: the host's os.urandom
            answer(os.urandom(msg[1]).hex())
        elif kind in _STORE_CHANGES:
            # The store's own failure goes back to the firmware, as on a board: it
            # runs on degraded (firmware/shell.py), it does not die of it.
            try:
                _STORE_CHANGES[kind](store, *msg[1:])
            except OSError as exc:
                answer([exc.errno or 0, exc.strerror or str(exc)])
            else:
                answer(None)
        else:
            raise EmulatorError(f"unknown message from the interpreter: {line.strip()!r}")
    return heard
