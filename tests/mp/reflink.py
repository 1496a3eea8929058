# The link port of the MicroPython memory harnesses (tests/mp/firmware_memory.py and
# tests/heap/soak.py): one request's bytes in a buffer made once, copied out byte by
# byte, and what the firmware writes kept by reference (read once the measured window
# is over), so every byte counted is the firmware's, none the link's.


class RefLink:
    def __init__(self, rx_size, max_frames):
        self.rx = bytearray(rx_size)
        self.rx_len = 0
        self.rx_pos = 0
        self.max_frames = max_frames
        self.frames = [None] * max_frames
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
        if self.sent < self.max_frames:
            self.frames[self.sent] = data
        self.sent += 1
