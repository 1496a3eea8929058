"""The emulated board's ports, both runtimes', against the board contract
(boards/__init__.py): the hardware models the cpython runtime hands the firmware
(boards/emulator/hardware.py), and the relay the micropython runtime boots on
(boards/emulator/relay.py), here with a dummy in place of the WebAssembly port's
``js`` bridge, as the board tests put dummy pins in place of machine.Pin."""

import importlib
import io
import json
import sys
import types

import pytest
from pumpguard._board.boards.emulator import hardware  # the models server.py builds on
from pumpguard.emulator import server

from boards import contract, emulator


def _holds_the_contract(ports, channels):
    assert sorted(ports) == sorted(port for port, _ in contract.PORTS)
    assert len(ports["motors"]) == channels
    for port, methods in contract.PORTS:
        for obj in ports[port] if port == "motors" else (ports[port],):
            for method in methods:
                assert callable(getattr(obj, method, None)), (port, method)


def test_the_cpython_runtime_ports_hold_the_contract(tmp_path):
    board = server._Board(emulator, 1, None, str(tmp_path), run=None, out=io.StringIO())
    try:
        board.watchdog = hardware.Watchdog(board.clock, emulator.WATCHDOG_MS)  # as boot()
        ports = board._ports()
        _holds_the_contract(ports, emulator.CHANNELS)
        assert ports["link"].url.startswith("/dev/")  # a PTY the host opens
    finally:
        board.link.close()


class _Bridge:
    """The JavaScript side of mp_emulator.mjs: answers each call with the next turn."""

    def __init__(self, channels):
        self.sent = []
        self.turns = [[100, "0102", [5] * channels, [None] * channels, [9] * channels]]
        self.channels = channels
        self.store_answer = None

    def send(self, line):
        self.sent.append(json.loads(line))

    def call(self, line):
        self.sent.append(json.loads(line))
        if self.sent[-1][0] in ("read", "write", "append", "rename", "remove"):
            return json.dumps(self.store_answer)  # no file / done (or [errno, text])
        if self.sent[-1][0] == "syringe":
            return json.dumps(20_000000)
        answer = (
            self.turns.pop(0)
            if self.turns
            else [200, "", [0] * self.channels, [None] * self.channels, [None] * self.channels]
        )
        return json.dumps(answer)


def test_the_micropython_runtime_ports_relay_every_call_to_the_host(monkeypatch):
    bridge = _Bridge(emulator.CHANNELS)
    monkeypatch.setitem(sys.modules, "js", types.SimpleNamespace(bridge=bridge))
    monkeypatch.delitem(sys.modules, "boards.emulator.relay", raising=False)
    importlib.import_module("boards.emulator.relay")  # with the dummy js bridge
    ports = emulator.make_ports()  # what firmware.main.boot("emulator") binds
    _holds_the_contract(ports, emulator.CHANNELS)
    assert bridge.sent == [["turn", False, 0]]  # the first turn's inputs, fetched once
    buf = bytearray(8)
    assert ports["link"].readinto(buf) == 2 and buf[:2] == b"\x01\x02"
    assert ports["link"].readinto(buf) is None  # as machine.UART says "nothing"
    assert ports["clock"].ticks_ms() == 100
    assert [m.delivered() for m in ports["motors"]] == [5, 5]
    assert [m.delivered() for m in ports["motors"]] == [0, 0]  # reported once
    assert [m.left() for m in ports["motors"]] == [9, 9]  # the plunger's, as the host said
    assert ports["motors"][0].syringe() == 20_000000
    ports["motors"][0].load(15_000000)
    ports["motors"][1].set_rate(7)
    ports["alarm"].set(3)
    ports["store"].write("state.tmp", b"ab")
    ports["store"].rename("state.tmp", "state.json")
    assert ports["store"].read("state.json") is None  # as the host answered
    ports["watchdog"].feed()
    ports["clock"].sleep_ms(1)  # the end of the turn: the host hears the watchdog fed
    assert bridge.sent[1:] == [
        ["syringe", 0],
        ["load", 0, 15_000000],
        ["rate", 1, 7],
        ["alarm", 3],
        ["write", "state.tmp", "6162"],
        ["rename", "state.tmp", "state.json"],
        ["read", "state.json"],
        ["turn", True, 1],
    ]
    # A store change the host failed is the firmware's OSError, as a board's flash
    # would raise it: the firmware runs on degraded (shell.py) instead of dying.
    bridge.store_answer = [28, "No space left on device"]
    with pytest.raises(OSError) as failed:
        ports["store"].write("state.tmp", b"ab")
    assert failed.value.errno == 28


def test_whatever_the_firmware_raises_in_process_is_its_death_not_the_emulator_s():
    # As on a board (and on the micropython runtime, where node exits): the watchdog
    # resets the board, which restores from its store. A reset, a quit and an error of
    # the emulator's own pass through: they are not the firmware's.
    from pumpguard.errors import FirmwareDied

    def raises(exc):
        def run(board, ports, boot_id):
            raise exc

        return run

    with pytest.raises(FirmwareDied, match="AttributeError"):
        server.in_process(raises(AttributeError("'NoneType' object")))(emulator, {}, 1)
    for signal in (hardware.WatchdogReset("starved"), server._Quit(), server._EmulatorFault(1)):
        with pytest.raises(type(signal)):
            server.in_process(raises(signal))(emulator, {}, 1)


def test_an_error_of_the_emulator_s_own_ends_its_run_never_resets_the_board(tmp_path):
    board = server._Board(emulator, 1, None, str(tmp_path), run=None, out=io.StringIO())
    try:

        def broken():
            raise OverflowError("a control command the emulator got wrong")

        board.control.poll = broken
        with pytest.raises(server._EmulatorFault) as fault:
            board.idle(0)  # what the firmware's sleep_ms() calls, inside its loop
        assert isinstance(fault.value.error, OverflowError)
    finally:
        board.link.close()


def test_bad_control_commands_are_answered_and_change_nothing(tmp_path):
    out = io.StringIO()
    board = server._Board(emulator, 1, None, str(tmp_path), run=None, out=out)
    try:
        control = board.control
        for line in ("advance inf", "advance nan", "advance -5", "occlusion 0", "air 3"):
            assert control._apply(line.split()).startswith("error "), line
        assert not board.clock.fast_forwarding()
        assert [p.fault_kind for p in board.pumps] == [None, None]  # "0" is not the last
        assert control._apply(["advance", "1.5"]) == "ok advance 1.5"
    finally:
        board.link.close()
