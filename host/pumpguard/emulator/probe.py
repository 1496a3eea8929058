"""Whether the firmware answers on the emulator's link yet: the emulator reports its
port (``serve()``), or a factory reset done, only once this probe saw an answer.

A thread of the emulator opens the port as a host does and asks until the firmware
answers or the probe is stopped. What it asks opens no session and runs nothing: an
INFO frame without a session (no HELLO before it), which the firmware's loop answers
with ERROR hello_required, in protocol 1 as in protocol 2. A HELLO would open one: in
protocol 1 the device's only session, so a host's retry sent before a power cycle would
run again after it, without the HELLO the firmware demands of it. The answer comes from
the same loop turn, decoder and dispatch that answer a HELLO (every handler is there
once the loop runs), so a host that opens the port next gets its HELLO answered.
"""

import threading

import serial

from pumpguard._board.protocol import catalog, messages
from pumpguard._board.protocol.decoder import Decoder

_ASK_EVERY_S = 0.5  # a frame lost while the firmware boots is asked again this soon
_SEQ = 0xFFFF  # any seq: the answer is matched by it


class Probe:
    """Asks the firmware on ``url`` in a thread until it answers (``answered`` set) or
    ``stop()``. Link errors while the emulator's port comes up are asked through; one
    that outlasts the emulator's deadline is the deadline's error (server.py)."""

    def __init__(self, url):
        self.url = url
        self.answered = threading.Event()
        self.last_error = None  # the last link error met, for the deadline's message
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ready-probe", daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join()

    def _run(self):
        wire = messages.to_wire("INFO", _SEQ, {})
        while not self._stop.is_set():
            try:
                port = serial.serial_for_url(self.url, timeout=_ASK_EVERY_S)
            except (serial.SerialException, OSError) as exc:
                self.last_error = exc
                self._stop.wait(_ASK_EVERY_S)
                continue
            try:
                while not self._stop.is_set():
                    port.write(wire)
                    if _answered(port, Decoder()):
                        self.answered.set()
                        return
            except (serial.SerialException, OSError) as exc:
                self.last_error = exc
            finally:
                port.close()


def _answered(port, decoder):
    """Whether an answer to the probe's frame arrives within the port's timeout."""
    data = port.read(1)
    while data:
        for frame in decoder.decode(data):
            if frame.seq == _SEQ and not catalog.is_event(frame.msg_id):
                return True
        data = port.read(port.in_waiting or 1)
    return False
