# The link port of the MicroPython memory harnesses (tests/mp/firmware_memory.py and
# tests/heap/soak.py): one request's bytes in a buffer made once, copied out byte by
# byte; what the firmware writes read once the measured window is over, every byte
# counted the firmware's, none the link's. Each frame is kept by reference (frames[i]),
# or with keep=True copied byte by byte into a buffer of its own made once (its first
# sizes[i] bytes): the firmware writes every event from one buffer (shell.py's _ev_out),
# so by reference two events in one window both read as the last (the soak's: it lost
# the syringe-empty events it restarts syringes on). firmware_memory.py reads only the
# answer (a buffer of its own), and its live heap holds no copies.
from protocol.frame import MAX_WIRE


class RefLink:
    def __init__(self, rx_size, max_frames, keep=False):
        self.rx = bytearray(rx_size)
        self.rx_len = 0
        self.rx_pos = 0
        self.max_frames = max_frames
        self.keep = keep
        self.frames = [bytearray(MAX_WIRE) if keep else None for _ in range(max_frames)]
        self.sizes = [0] * max_frames
        self.sent = 0

    def load(self, wire):
        self.rx[: len(wire)] = wire
        self.rx_len = len(wire)
        self.rx_pos = 0

    def readinto(self, buf):
        n = min(len(buf), self.rx_len - self.rx_pos)
        if n <= 0:
            return None
        rx = self.rx
        pos = self.rx_pos
        for i in range(n):
            buf[i] = rx[pos + i]
        self.rx_pos = pos + n
        return n

    def write(self, data):
        i = self.sent
        if i < self.max_frames:
            n = len(data)
            self.sizes[i] = n
            if self.keep:
                frame = self.frames[i]
                for k in range(n):
                    frame[k] = data[k]
            else:
                self.frames[i] = data
        self.sent = i + 1
