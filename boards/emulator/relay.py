# The emulated board's ports inside the real MicroPython (WebAssembly, under Node): the
# emulator board's make_ports() on its micropython runtime. This file runs there only.
#
# The hardware stays on the host: pumpguard/emulator/micropython.py owns the PTY, the
# virtual clock, the syringe models and the state directory (boards/emulator/hardware.py),
# exactly the ports the CPython runtime hands the firmware. These ports relay to them,
# one JSON line per message over the Node process's stdout (mp_emulator.mjs's
# bridge.send/bridge.call):
#
#   ["turn", fed, ms]        end of a loop turn (the shell's sleep_ms): the watchdog was
#                            fed, the host may idle ms; the answer is the next turn's
#                            inputs: [ticks_ms, link bytes (hex), volumes, faults,
#                            each syringe's volume left as its plunger says]
#   ["tx", hex]              bytes the firmware wrote to the link
#   ["rate", i, rate]        motor i set to rate
#   ["syringe", i]           the capacity of motor i's syringe; the answer is an int
#   ["load", i, volume]      a start programmed volume on motor i
#   ["alarm", level]         alarm output level
#   ["read", name]           store read; the answer is hex, null for no file, or
#                            [errno, text] when the host's store failed to read it
#                            (raised here as that OSError: not taken for no file)
#   ["readinto", name, offset, n]  up to n bytes from offset; answer as for read
#   ["size", name]           store size; the answer is the size, or null for no file
#   ["write", name, hex]     store write
#   ["append", name, hex]    store append
#   ["rename", src, dst]     store rename
#   ["remove", name]         store remove (a missing file is fine)
#                            each of these four answers null, or [errno, text] when
#                            the host's store failed: raised here as that OSError, so
#                            the firmware sees a failing store as on a board (its
#                            degraded mode), not a board that died
#   ["random", n]            n random bytes (hex) from the host's os.urandom: the
#                            WebAssembly port has no entropy source of its own
#
# Lockstep: the firmware runs one turn on the inputs of the last answer, so time moves
# only when the host says so, and the host sees every effect in the order it happened.
# A store change is answered once the host has applied it (FileStore: fsync), so it is
# on the host's disk before the firmware goes on.
import json
import time
from binascii import hexlify, unhexlify

import js  # pyright: ignore[reportMissingImports]  (the WebAssembly port's JS bridge)


class _Bridge:
    def __init__(self, channels):
        self.ticks = 0
        self.rx = b""
        self.volumes = [0] * channels
        self.faults = [None] * channels
        self.lefts = [None] * channels
        self.fed = False

    def send(self, msg):
        js.bridge.send(json.dumps(msg))

    def call(self, msg):
        return json.loads(js.bridge.call(json.dumps(msg)))

    def turn(self, ms):
        self.ticks, rx, self.volumes, self.faults, self.lefts = self.call(["turn", self.fed, ms])
        self.fed = False
        self.rx = unhexlify(rx)


class _Clock:
    def __init__(self, bridge):
        self._bridge = bridge

    def ticks_ms(self):
        return self._bridge.ticks

    def ticks_diff(self, a, b):
        return time.ticks_diff(a, b)  # the port's own, as on a board

    def sleep_ms(self, ms):
        self._bridge.turn(ms)


class _Link:
    def __init__(self, bridge):
        self._bridge = bridge

    def readinto(self, buf):
        rx = self._bridge.rx
        if not rx:
            return None  # as machine.UART does when nothing arrived
        n = min(len(buf), len(rx))
        buf[:n] = rx[:n]
        self._bridge.rx = rx[n:]
        return n

    def write(self, data):
        self._bridge.send(["tx", hexlify(data).decode()])


class _Motor:
    def __init__(self, bridge, index):
        self._bridge = bridge
        self._i = index

    def set_rate(self, rate):
        self._bridge.send(["rate", self._i, rate])

    def delivered(self):
        volumes = self._bridge.volumes
        volume = volumes[self._i]
        volumes[self._i] = 0
        return volume

    def fault(self):
        return self._bridge.faults[self._i]

    def syringe(self):
        return self._bridge.call(["syringe", self._i])

    def load(self, volume):
        self._bridge.send(["load", self._i, volume])

    def left(self):
        return self._bridge.lefts[self._i]


class _Store:
    def __init__(self, bridge):
        self._bridge = bridge

    def read(self, name):
        data = self._bridge.call(["read", name])
        if type(data) is list:  # [errno, text]: the host's store failed to read it
            raise OSError(data[0], data[1])
        return None if data is None else unhexlify(data)

    def readinto(self, name, offset, buf):
        data = self._bridge.call(["readinto", name, offset, len(buf)])
        if data is None:
            return None
        data = unhexlify(data)
        buf[: len(data)] = data
        return len(data)

    def size(self, name):
        return self._bridge.call(["size", name])

    def write(self, name, data):
        self._change(["write", name, hexlify(data).decode()])

    def append(self, name, data):
        self._change(["append", name, hexlify(data).decode()])

    def rename(self, src, dst):
        self._change(["rename", src, dst])

    def remove(self, name):
        self._change(["remove", name])

    def _change(self, msg):
        failed = self._bridge.call(msg)
        if failed is not None:
            raise OSError(failed[0], failed[1])


class _Alarm:
    def __init__(self, bridge):
        self._bridge = bridge

    def set(self, level):
        self._bridge.send(["alarm", level])


class _Watchdog:
    def __init__(self, bridge):
        self._bridge = bridge

    def feed(self):
        self._bridge.fed = True


class _Entropy:
    def __init__(self, bridge):
        self._bridge = bridge

    def random(self, n):
        return unhexlify(self._bridge.call(["random", n]))


def make_ports(channels):
    """The ports of a board with this many channels, relayed to the host, with the
    inputs of the first turn already in (the clock has its first reading)."""
    bridge = _Bridge(channels)
    bridge.turn(0)
    return {
        "link": _Link(bridge),
        "motors": [_Motor(bridge, i) for i in range(channels)],
        "clock": _Clock(bridge),
        "store": _Store(bridge),
        "alarm": _Alarm(bridge),
        "watchdog": _Watchdog(bridge),
        "entropy": _Entropy(bridge),
    }
