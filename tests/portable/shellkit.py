# Dummy ports for the firmware shell, in the MicroPython subset: the shell is built
# with these passed in, exactly as a board passes its real ones.
import json
from binascii import crc32, hexlify

from boards import emulator as board
from firmware import main as firmware_main
from protocol import auth, catalog, cobs, messages
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
        self.loaded = None  # the volume the last start loaded (load())

    def set_rate(self, rate):
        self.rate = rate

    def delivered(self):
        v = self.owed
        self.owed = 0
        return v

    def fault(self):
        return self.fault_kind

    # The syringe: a 50 mL one, loaded with what each start programs; no measure of
    # its own (left() None: the firmware's count from the volume programmed is all).
    def syringe(self):
        return 50_000000

    def load(self, volume):
        self.loaded = volume

    def left(self):
        return None


# The board's keys in every store these tests make (firmware/keys.py's file), and the
# host's copy of them: fixed, so a failing test can be replayed.
BOARD_ID = "00c0ffee00c0ffee"
KEYS = {
    "monitor": bytes(range(1, 33)),
    "clinician": bytes(range(33, 65)),
    "service": bytes(range(65, 97)),
}


def keys_file(keys=None, board_id=BOARD_ID, insecure=False):
    """The bytes of a keys file holding keys (role name -> 32 bytes; KEYS by default)."""
    if insecure:
        return json.dumps({"board_id": board_id, "insecure": True}).encode()
    doc = {"board_id": board_id}
    keys = KEYS if keys is None else keys
    for role in keys:
        doc[role] = hexlify(keys[role]).decode()
    return json.dumps(doc).encode()


class Store:
    def __init__(self, keys=True):
        # keys False: a board never provisioned
        self.files = {"keys": keys_file()} if keys else {}

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


_DRAWN = [0x9E37, 0x79B9]  # the state of every Entropy made without a seed of its own


class Entropy:
    # Deterministic bytes (xorshift32) that never repeat within a test run: one state for
    # every instance, so two boots on the same store draw different nonces, as a board's
    # RNG would; a fuzz passes a seed of its own, so both interpreters draw alike. The
    # state is kept as its two 16-bit halves, shifted as such: a 32-bit MicroPython's
    # small ints end at 2**30, and the whole state made a heap int per step (4.5 KB a
    # nonce on WebAssembly, charged to the firmware's HELLO by the memory harnesses,
    # whose ports allocate nothing but what a board's would: the nonce's bytes).
    def __init__(self, seed=None):
        if seed is None:
            self._state = _DRAWN
        else:
            x = (seed * 2654435761 + 1) & 0xFFFFFFFF or 1
            self._state = [x >> 16, x & 0xFFFF]

    def random(self, n):
        out = bytearray(n)
        state = self._state
        hi = state[0]
        lo = state[1]
        for i in range(n):
            # x ^= x << 13; x ^= x >> 17; x ^= x << 5 (mod 2**32), a half at a time
            hi ^= ((hi << 13) | (lo >> 3)) & 0xFFFF
            lo ^= (lo << 13) & 0xFFFF
            lo ^= hi >> 1
            hi ^= ((hi << 5) | (lo >> 11)) & 0xFFFF
            lo ^= (lo << 5) & 0xFFFF
            out[i] = lo & 0xFF
        state[0] = hi
        state[1] = lo
        return bytes(out)


def ports(store=None, start=0, entropy=None):
    return {
        "link": Link(),
        "motors": [Motor() for _ in range(board.CHANNELS)],
        "clock": Clock(start),
        "store": store or Store(),
        "alarm": Alarm(),
        "watchdog": Watchdog(),
        "entropy": entropy or Entropy(),
    }


def shell(p):
    return firmware_main.build(board, p, BOOT_ID)


class Session:
    """A host's side of one authenticated session (protocol/SPEC.md, the handshake): its
    role and key, the session key HELLO_R gives, its counter, and the checks of every
    answer (tag, counter) a host makes."""

    def __init__(self, role="clinician", key=None):
        self.role = role
        self.key = KEYS[role] if key is None else key
        self.sid = 0
        self.ks = None  # the session key, once HELLO_R arrived
        self.th = None
        self.ctr = 0  # the counter of the last tagged request
        self.device_ctr = 0  # the last device counter accepted
        self.hello_payload = b""
        self.authed = False

    def hello(self, seq, fields=None):
        """The wire of a HELLO (fields: hello_fields() of this session's role unless
        given)."""
        if fields is None:
            fields = hello_fields(role=self.role)
        self.hello_payload = messages.encode("HELLO", fields)
        return messages.to_wire("HELLO", seq, fields)

    def opened(self, f):
        """HELLO_R arrived in frame f: the session it opened, and its key."""
        self.sid = f.sid
        self.th = auth.transcript(self.hello_payload, f.sid, f.payload)
        self.ks = auth.session_key(self.key, self.th)
        self.ctr = 0
        self.device_ctr = 0
        self.authed = False

    def auth_wire(self, seq, proof=None):
        if proof is None:
            proof = auth.proof(self.ks, self.th, b"H")
        return messages.to_wire("AUTH", seq, {"proof": proof}, sid=self.sid)

    def wire(self, name, seq, fields, ctr=None):
        """A tagged request (the next counter unless ctr says another)."""
        if ctr is None:
            self.ctr += 1
            ctr = self.ctr
        return messages.to_wire(name, seq, fields, sid=self.sid, key=self.ks, ctr=ctr)

    def genuine(self, f):
        """Whether the device's frame f is tagged by this session with a newer counter
        (then accepted: the counter moves on)."""
        if f.tag is None or self.ks is None:
            return False
        if not auth.equal(f.tag, auth.tag(self.ks, b"D", f.signed)):
            return False
        if f.ctr <= self.device_ctr:
            return False
        self.device_ctr = f.ctr
        return True


# Untagged answers a host takes in an authenticated session (the others it drops).
_UNTAGGED = (catalog.ERR_HELLO_REQUIRED, catalog.ERR_AUTH)


class Host:
    """Frames in, answers out, through the shell's own loop: HELLO then AUTH, every
    request tagged, every answer verified as a host verifies it."""

    def __init__(self, sh, p, role="clinician", key=None):
        self.sh = sh
        self.p = p
        self.seq = 0
        self.session = Session(role, key)
        self.decoder = Decoder()

    @property
    def sid(self):  # the session HELLO_R's frame named
        return self.session.sid

    def send_wire(self, wire):
        self.p["link"].rx += wire
        for _ in range(1 + len(wire) // 64):
            self.sh.step()

    def raw(self):
        """Every frame the device sent since the last call (Frame objects)."""
        out = self.decoder.decode(bytes(self.p["link"].tx))
        self.p["link"].tx = bytearray()
        return out

    def frames(self, sids=None):
        out = self.raw()
        if sids is not None:
            sids.extend(f.sid for f in out)
        return [(catalog.name(f.msg_id), f.seq, messages.decode(f.msg_id, f.payload)) for f in out]

    def wire(self, name, fields, seq=None):
        """The wire of a request of this session, tagged (seq: the next unless given)."""
        if seq is None:
            self.seq += 1
            seq = self.seq
        if name == "HELLO":
            return self.session.hello(seq, fields)
        if name == "AUTH":
            return self.session.auth_wire(seq, fields.get("proof"))
        if not self.session.authed:
            return messages.to_wire(name, seq, fields, sid=self.sid)
        return self.session.wire(name, seq, fields)

    def request(self, name, fields):
        """(name, fields) of the answer, verified: tagged by the session with a newer
        counter, or one of the untagged answers a host may take."""
        self.send_wire(self.wire(name, fields))
        return self.answer(self.seq, name == "HELLO")

    def answer(self, seq, hello=False):
        frames = [f for f in self.raw() if f.seq == seq and not catalog.is_event(f.msg_id)]
        f = frames[-1]
        name = catalog.name(f.msg_id)
        fields = messages.decode(f.msg_id, f.payload)
        if name == "HELLO_R":
            self.session.opened(f)
        elif f.tag is not None:
            assert self.session.genuine(f), ("answer failed its check", name, fields)
        elif self.session.authed and not hello:
            assert name == "ERROR" and fields["code"] in _UNTAGGED, (name, fields)
        if name == "AUTH_R":
            assert auth.equal(fields["proof"], auth.proof(self.session.ks, self.session.th, b"D"))
            self.session.authed = True
        return name, fields

    def hello(self, supervise_s=0, authenticate=True):
        """HELLO, then AUTH (unless authenticate is False): HELLO_R's (name, fields)."""
        answer = self.request("HELLO", hello_fields(supervise_s, role=self.session.role))
        if authenticate and answer[0] == "HELLO_R":
            name, fields = self.request("AUTH", {})
            assert name == "AUTH_R", fields
        return answer


def hello_fields(supervise_s=0, host="t", role="clinician", nonce=b"\x5a" * 16):
    return {
        "protocol": catalog.PROTOCOL_VERSION,
        "schema": catalog.SCHEMA_HASH,
        "host": host,
        "supervise_s": supervise_s,
        "wall_ms": 0,
        "role": catalog.ROLES[role],
        "nonce": nonce,
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


VASO = {
    "ch": 2,
    "drug": "vasopressin",
    "dose": 30000,
    "unit": "units/min",
    "weight": None,
    "conc": 1000000,
    "conc_unit": "units/mL",
    "volume": 20000000,
    "override": False,
}


def flip_tag(wire, bit, bounds=None):
    """The frame with one bit of its tag flipped and its CRC made valid again: only the
    tag can refuse it (bounds: the decoder's, for a frame outside the catalog's)."""
    f = Decoder(bounds=bounds).decode(wire)[0]
    tag = bytearray(f.tag)
    tag[bit // 8] ^= 1 << (bit % 8)
    body = bytes(f.signed) + bytes(tag)
    crc = crc32(body)
    body += bytes([crc & 0xFF, (crc >> 8) & 0xFF, (crc >> 16) & 0xFF, crc >> 24])
    return b"\x00" + cobs.encode(body) + b"\x00"


def device(store=None):
    """A shell on fresh dummy ports: (shell, ports)."""
    p = ports(store)
    return shell(p), p


def active(sh):
    """The codes of the alarms whose condition is active."""
    return [a.code for a in sh.core.alarms() if a.active]


def silent(sh, p, seconds):
    """seconds of virtual time in which no host says anything, a turn per second."""
    for _ in range(seconds):
        p["clock"].advance(1000)
        sh.step()
