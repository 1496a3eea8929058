# Memory of the whole firmware on MicroPython, measured by firmware_memory.mjs (which
# see): the shell with the full library, a channel infusing, fed commands over a link.
#
# The ports here allocate nothing themselves (the link copies byte by byte and keeps
# only references, the store keeps the firmware's own bytes), so every byte counted
# is the firmware's. Each phase is a separate call from Node: this WebAssembly build
# collects garbage only between calls, never inside one.
import gc

from boards import emulator as board
from firmware import journal
from firmware import main as firmware_main
from protocol import catalog
from protocol.decoder import Decoder
from tests.mp.reflink import RefLink
from tests.portable.shellkit import NOREPI, Clock, Entropy, Motor, Session, hello_fields, keys_file

_TURNS = 1000
_MAX_FRAMES = 8


# Room for the journal entries the measured commands make (a few dozen), far less than
# a segment: the live heap reported is the firmware's, not this store's.
_SEGMENT_ROOM = 4096
# Room for a state record the measured commands make (1 KB or so): the firmware writes
# it in chunks (write, then append) through its own small buffer, copied here, and its
# counter through state.tmp too, renamed over state.gen (a buffer each: swapped).
_RECORD_ROOM = 2048
_RECORD = ("state.tmp", "state.json", "state.gen")


class _Store:
    # The journal's segments and the state record (state.tmp, renamed over state.json)
    # copied byte by byte into buffers made here once, so that appending, writing and
    # renaming them allocates nothing; the other files by reference.
    def __init__(self):
        self.files = {"keys": keys_file()}
        self.segments = {}
        self.sizes = {}
        for name in journal.SEGMENTS:
            self.segments[name] = bytearray(_SEGMENT_ROOM)
            self.sizes[name] = None
        for name in _RECORD:
            self.segments[name] = bytearray(_RECORD_ROOM)
            self.sizes[name] = None

    def read(self, name):
        if name in self.segments:  # a copy, as a board's read() makes
            size = self.sizes[name]
            return None if size is None else bytes(memoryview(self.segments[name])[:size])
        return self.files.get(name)

    def readinto(self, name, offset, buf):
        size = self.sizes[name]
        if size is None:
            return None
        n = min(len(buf), size - offset)
        if n <= 0:
            return 0
        segment = self.segments[name]
        for i in range(n):
            buf[i] = segment[offset + i]
        return n

    def size(self, name):
        return self.sizes[name]

    def write(self, name, data):
        if name in self.segments:
            self.sizes[name] = 0
            self.append(name, data)
        else:
            self.files[name] = data

    def append(self, name, data):
        size = self.sizes[name] or 0
        segment = self.segments[name]
        for i in range(len(data)):
            segment[size + i] = data[i]
        self.sizes[name] = size + len(data)

    def rename(self, src, dst):
        segments = self.segments
        if src in segments and dst in segments:  # the buffers swapped: nothing copied
            segments[src], segments[dst] = segments[dst], segments[src]
            self.sizes[dst] = self.sizes[src]
            self.sizes[src] = None
        elif src in segments:  # a record set aside (state.bad.<gen>)
            self.files[dst] = self.read(src)
            self.sizes[src] = None
        else:
            self.files[dst] = self.files[src]
            self.files[src] = None

    def remove(self, name):
        if name in self.sizes:
            self.sizes[name] = None
        else:
            self.files[name] = None


class _Null:
    def set(self, level):
        pass

    def feed(self):
        pass


_link = RefLink(512, _MAX_FRAMES)
_clock = Clock(0)
_ports = {
    "link": _link,
    "motors": [Motor() for _ in range(board.CHANNELS)],
    "clock": _clock,
    "store": _Store(),
    "alarm": _Null(),
    "watchdog": _Null(),
    "entropy": Entropy(),
}
_shell = None
_seq = 0
_session = Session()  # the host's side of the session the last HELLO_R opened
_wires = {}
_marks = {}


def boot():
    global _shell
    _shell = firmware_main.start(board, _ports, boot_id=1, bundle="")


def request(name, fields):
    """The name of the answer to one command, run through the shell's own loop."""
    global _seq
    _seq += 1
    if name == "HELLO":
        _feed(_session.hello(_seq, fields))
    elif name == "AUTH":
        _feed(_session.auth_wire(_seq))
    else:
        _feed(_session.wire(name, _seq, fields))
    return _answer_name()


def _feed(wire):
    _link.load(wire)
    _link.sent = 0
    while _link.rx_pos < _link.rx_len:
        _clock.advance(1)
        _shell.step()


def _answer_name():
    for i in range(min(_link.sent, _MAX_FRAMES)):
        for frame in Decoder().decode(bytes(_link.frames[i])):
            if not catalog.is_event(frame.msg_id):
                if catalog.name(frame.msg_id) == "HELLO_R":
                    _session.opened(frame)  # the session every later request carries
                return catalog.name(frame.msg_id)
    return None


def hello():
    """HELLO, then AUTH: "HELLO_R" once the session is authenticated."""
    name = request("HELLO", hello_fields(host="m"))
    if name == "HELLO_R" and request("AUTH", {}) != "AUTH_R":
        return "AUTH refused"
    return name


def prepare():
    """Wire frames of the commands measured, made before the measurement."""
    global _seq
    commands = (
        ("HEARTBEAT", {}),
        ("STATUS", {"ch": 1}),
        ("START", dict(NOREPI, ch=2)),
        ("TITRATE", {"ch": 2, "dose": 110000, "unit": "mcg/kg/min", "override": False}),
        ("STOP", {"ch": 2}),
        ("LOG", {"first": 0}),  # a packed page of the persistent log
    )
    for name, fields in commands:
        _seq += 1
        _wires[name] = _session.wire(name, _seq, fields)  # tagged, counters in order
    return [name for name, _ in commands]


def mark(key):
    _marks[key] = gc.mem_alloc()


def since(key):
    return gc.mem_alloc() - _marks[key]


def idle_turns():
    mark("idle")
    for _ in range(_TURNS):
        _clock.advance(1)
        _shell.step()
    return since("idle") // _TURNS


def command(name):
    """(bytes the firmware allocated serving the prepared command, name of its answer)."""
    if name == "TITRATE":
        _clock.advance(16 * 60 * 1000)  # past the titration interval
        _shell.step()
    mark("command")
    _feed(_wires[name])
    return since("command"), _answer_name()
