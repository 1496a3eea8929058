# Dummy ports for the firmware shell, in the MicroPython subset: the shell is built
# with these passed in, exactly as a board passes its real ones.
from boards import emulator as board
from firmware import main as firmware_main
from protocol import catalog, messages
from protocol.decoder import Decoder

PERIOD = 1 << 30  # MicroPython's ticks_ms wraps here
_MASK = PERIOD - 1  # small ints, unlike PERIOD: the clock itself must not allocate
_HALF = PERIOD // 2
BOOT_ID = 0x1234


class Clock:
    # time.ticks_ms/ticks_diff as MicroPython defines them, over a settable tick count.
    def __init__(self, start):
        self.t = start & _MASK

    def advance(self, ms):
        self.t = (self.t + ms) & _MASK

    def ticks_ms(self):
        return self.t

    def ticks_diff(self, a, b):
        d = (a - b) & _MASK
        return d - _MASK - 1 if d >= _HALF else d

    def sleep_ms(self, ms):
        self.advance(ms)


class Link:
    def __init__(self):
        self.rx = bytearray()
        self.tx = bytearray()

    def readinto(self, buf):
        if not self.rx:
            return None  # as machine.UART does when nothing arrived
        n = min(len(buf), len(self.rx))
        buf[:n] = self.rx[:n]
        self.rx = self.rx[n:]
        return n

    def write(self, data):
        self.tx += data


class Motor:
    def __init__(self):
        self.rate = 0
        self.owed = 0
        self.fault_kind = None

    def set_rate(self, rate):
        self.rate = rate

    def delivered(self):
        v = self.owed
        self.owed = 0
        return v

    def fault(self):
        return self.fault_kind


class Store:
    def __init__(self):
        self.files = {}

    def read(self, name):
        return self.files.get(name)

    def readinto(self, name, offset, buf):
        data = self.files.get(name)
        if data is None:
            return None
        n = max(0, min(len(buf), len(data) - offset))
        buf[:n] = data[offset : offset + n]
        return n

    def size(self, name):
        data = self.files.get(name)
        return None if data is None else len(data)

    def write(self, name, data):
        self.files[name] = bytes(data)

    def append(self, name, data):
        self.files[name] = self.files.get(name, b"") + bytes(data)

    def rename(self, src, dst):
        self.files[dst] = self.files.pop(src)

    def remove(self, name):
        self.files.pop(name, None)


class Alarm:
    def __init__(self):
        self.level = 0

    def set(self, level):
        self.level = level


class Watchdog:
    def __init__(self):
        self.fed = 0

    def feed(self):
        self.fed += 1


def ports(store=None, start=0):
    return {
        "link": Link(),
        "motors": [Motor() for _ in range(board.CHANNELS)],
        "clock": Clock(start),
        "store": store or Store(),
        "alarm": Alarm(),
        "watchdog": Watchdog(),
    }


def shell(p):
    return firmware_main.build(board, p, BOOT_ID)


class Host:
    """Frames in, answers out, through the shell's own loop."""

    def __init__(self, sh, p):
        self.sh = sh
        self.p = p
        self.seq = 0
        self.sid = 0  # the session HELLO_R's frame named
        self.decoder = Decoder()

    def send_wire(self, wire):
        self.p["link"].rx += wire
        for _ in range(1 + len(wire) // 64):
            self.sh.step()

    def frames(self, sids=None):
        out = self.decoder.decode(bytes(self.p["link"].tx))
        self.p["link"].tx = bytearray()
        if sids is not None:
            sids.extend(f.sid for f in out)
        return [(catalog.NAME[f.msg_id], f.seq, messages.decode(f.msg_id, f.payload)) for f in out]

    def request(self, name, fields):
        self.seq += 1
        sid = 0 if name == "HELLO" else self.sid
        self.send_wire(messages.to_wire(name, self.seq, fields, sid=sid))
        sids = []
        frames = self.frames(sids)
        answers = [
            k
            for k in range(len(frames))
            if frames[k][1] == self.seq and not catalog.is_event(catalog.ID[frames[k][0]])
        ]
        name, _seq, fields = frames[answers[-1]]
        if name == "HELLO_R":
            self.sid = sids[answers[-1]]
        return name, fields

    def hello(self, supervise_s=0):
        return self.request("HELLO", hello_fields(supervise_s))


def hello_fields(supervise_s=0, host="t"):
    return {
        "protocol": catalog.PROTOCOL_VERSION,
        "schema": catalog.SCHEMA_HASH,
        "host": host,
        "supervise_s": supervise_s,
        "wall_ms": 0,
    }


NOREPI = {
    "ch": 1,
    "drug": "norepinephrine",
    "dose": 100000,
    "unit": "mcg/kg/min",
    "weight": 70000000,
    "conc": 16000000,
    "conc_unit": "mcg/mL",
    "volume": 50000000,
    "override": False,
}
