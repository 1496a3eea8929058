# The board contract (boards/__init__.py) held by every registered board, and the Pico's
# real ports built with dummy pins, UART and clock passed in, the way micropython-lib's
# lora driver is built as SX1262(spi=DummySPI(), cs=DummyPin(), busy=DummyPin()).
# Portable: the same tests run on MicroPython (tests/mp/runner.py).
import os

import boards
from boards import contract, pico
from firmware import main as firmware_main
from protocol import catalog, messages
from protocol.decoder import Decoder
from tests.portable.shellkit import keys_file

_KINDS = {"int": (int,), "str": (str,), "bool": (bool,), "tuple": (tuple,)}
# The FileStore's directory while a test runs, one per test: pytest -n runs them in
# parallel, in the same working directory.
_PORTS_STATE = "pico-ports-test-state"
_RUN_STATE = "pico-run-test-state"


class DummyPin:
    IN = 0
    OUT = 1
    PULL_UP = 1
    PULL_DOWN = 2
    made = {}  # GPIO number -> the pin made for it

    def __init__(self, gpio, mode=-1, pull=-1, value=None):
        self.gpio = gpio
        self.mode = mode
        self.pull = pull
        self.v = 0 if value is None else value
        DummyPin.made[gpio] = self

    def value(self, v=None):
        if v is None:
            return self.v
        self.v = v
        return None


class DummyUART:
    def __init__(self, uart_id, baudrate, tx=None, rx=None, rxbuf=0):
        self.uart_id = uart_id
        self.baudrate = baudrate
        self.tx = tx
        self.rx = rx
        self.rxbuf = rxbuf
        self.written = b""

    def readinto(self, buf):
        return None  # nothing arrived, as machine.UART says it

    def write(self, data):
        self.written += data
        return len(data)


class DummyClock:
    # the time module: ms and us ticks over one counter, wrapping at 2**30 as on a board
    def __init__(self):
        self.us = 0

    def ticks_us(self):
        return self.us & 0x3FFFFFFF

    def ticks_ms(self):
        return (self.us // 1000) & 0x3FFFFFFF

    def ticks_add(self, a, b):
        return (a + b) & 0x3FFFFFFF

    def ticks_diff(self, a, b):
        d = (a - b) & 0x3FFFFFFF
        return d - 0x40000000 if d >= 0x20000000 else d

    def sleep_ms(self, ms):
        self.us += ms * 1000


class DummyWatchdog:
    def __init__(self):
        self.fed = 0

    def feed(self):
        self.fed += 1


def _pico_ports(state):
    DummyPin.made = {}
    return pico.make_ports(pin=DummyPin, uart=DummyUART, clock=DummyClock(), state_dir=state)


def _remove(state):
    try:
        names = os.listdir(state)
    except OSError:  # never made: the test failed before it, and says why itself
        return
    for name in names:
        os.remove(state + "/" + name)
    os.rmdir(state)


def test_every_registered_board_holds_the_contract():
    for name in boards.names():
        board = boards.get(name)
        assert name == board.NAME, name
        for field, kind in contract.FIELDS:
            assert hasattr(board, field), (name, field)
            value = getattr(board, field)
            if kind.endswith("?") and value is None:
                continue
            assert isinstance(value, _KINDS[kind.rstrip("?")]), (name, field, value)
        for function in contract.FUNCTIONS:
            assert callable(getattr(board, function, None)), (name, function)
        assert (
            board.CHANNELS >= 1
            and board.MAX_RATE > 0
            and board.SYRINGES_ML
            and min(board.SYRINGES_ML) > 0
        ), name
    # the insecure development mode is the emulator's alone
    assert [name for name in boards.names() if boards.get(name).INSECURE_OK] == ["emulator"]


def test_the_pico_ports_are_built_with_dummy_pins_and_uart():
    try:
        ports = _pico_ports(_PORTS_STATE)
        assert sorted(ports) == sorted(port for port, _ in contract.PORTS)
        for port, methods in contract.PORTS:
            for obj in ports[port] if port == "motors" else (ports[port],):
                for method in methods:
                    assert callable(getattr(obj, method, None)), (port, method)
        assert len(ports["motors"]) == pico.CHANNELS
        link = ports["link"]
        assert (link.uart_id, link.baudrate) == (pico.LINK_UART, pico.LINK_BAUD)
        assert (link.tx.gpio, link.rx.gpio) == (pico.LINK_TX, pico.LINK_RX)
        # channel 1 as wired in boards/pico.py: STEP GP2, DIR GP3, EN GP4 (active low),
        # occlusion GP10, air-in-line GP11, end of travel GP12
        pins = DummyPin.made
        motor = ports["motors"][0]
        assert pins[4].v == 1  # driver off until a rate is set
        motor.set_rate(26_250000)
        assert pins[4].v == 0 and pins[3].v == 1  # enabled, plunger forward
        assert motor.fault() is None
        pins[11].v = 1
        assert motor.fault() == "air_in_line"
        assert ports["motors"][1].fault() is None  # channel 2's sensors are its own
        alarm = ports["alarm"]  # LED GP25 for any alarm, buzzer GP16 for high priority
        alarm.set(2)
        assert (pins[25].v, pins[16].v) == (1, 0)
        alarm.set(3)
        assert (pins[25].v, pins[16].v) == (1, 1)
        alarm.set(0)
        assert (pins[25].v, pins[16].v) == (0, 0)
        # the RNG: os.urandom, which the rp2 port has (the WebAssembly port has none)
        if hasattr(os, "urandom"):
            nonces = [ports["entropy"].random(16) for _ in range(2)]
            assert [len(n) for n in nonces] == [16, 16] and nonces[0] != nonces[1]
    finally:
        _remove(_PORTS_STATE)


def test_the_firmware_runs_on_the_pico_ports():
    # The composition root on the board's own ports (its watchdog needs machine.WDT,
    # which only a board has: a dummy stands in for that one).
    try:
        ports = _pico_ports(_RUN_STATE)
        ports["watchdog"] = DummyWatchdog()
        ports["store"].write("keys", keys_file())  # as pumpguard flash provisions it
        shell = firmware_main.start(pico, ports, boot_id=7, bundle="")
        for _ in range(3):
            shell.turn()
        assert ports["watchdog"].fed == 3
        assert "state.json" in os.listdir(_RUN_STATE)  # the store on the board's directory
        # no host has spoken: the UART carries only the events of the boot, a state
        # event per channel, each idle
        frames = Decoder().decode(ports["link"].written)
        states = [messages.decode(f.msg_id, f.payload) for f in frames]
        assert [f.msg_id for f in frames] == [catalog.ID["EV_STATE"]] * pico.CHANNELS
        assert [(st["ch"], st["state"]) for st in states] == [(1, "idle"), (2, "idle")]
    finally:
        _remove(_RUN_STATE)
