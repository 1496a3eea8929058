"""The port `pumpguard flash` hands mpremote as the board's REPL: flash's own --port, or a
--port given before the command, never PUMPGUARD_PORT (the protocol link), and with
--port auto the one MicroPython board by its USB id, never the --link adapter."""

import io

import pytest
from pumpguard.cli import flash as cli_flash
from pumpguard.cli.main import main
from pumpguard.deploy import flash
from pumpguard.errors import UsageError
from serial.tools import list_ports
from serial.tools.list_ports_common import ListPortInfo

from tests.test_flash import FakeMpremote, FakePump

LINK = "/dev/pumpguard-test-link"  # the protocol's adapter: PUMPGUARD_PORT in the README


@pytest.fixture
def recorded(monkeypatch):
    """Every Flasher do_flash makes runs the fake mpremote, on a link where nothing
    infuses; returns that mpremote."""
    run = FakeMpremote()

    class Recorded(flash.Flasher):
        def __init__(self, *args, **kw):
            super().__init__(*args, run=run, connect=_idle, out=io.StringIO(), **kw)

    monkeypatch.setattr(flash, "Flasher", Recorded)
    monkeypatch.setenv("PUMPGUARD_PORT", LINK)
    return run


def test_pumpguard_port_is_never_the_repl_port(recorded, capsys):
    # Before: mpremote got the link as the REPL port, and hung at step 2 for 90 s+.
    code = main(["flash", "--board", "pico", "--link", LINK, "--repl"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("pumpguard: no REPL port") and err.count("\n") == 1
    assert "--port PORT" in err and "--port auto" in err and "PUMPGUARD_PORT" in err
    assert recorded.calls == []


def _args(*argv, port_given=None):
    args = cli_flash.argparse_flash().parse_args(["--board", "pico", "--link", LINK, *argv])
    args.key, args.port_given, args.global_port = None, port_given, port_given or LINK
    return args


@pytest.mark.parametrize(
    "argv, port_given, repl",
    [
        ((), "/dev/ttyACM0", "/dev/ttyACM0"),  # pumpguard --port /dev/ttyACM0 flash ...
        (("--port", "/dev/ttyACM1"), "/dev/ttyACM0", "/dev/ttyACM1"),  # flash's own wins
    ],
)
def test_the_repl_port_is_flashs_port_else_the_one_given_before_it(
    recorded, argv, port_given, repl
):
    out = io.StringIO()
    cli_flash.do_flash(None, _args("--repl", *argv, port_given=port_given), out)
    assert {port for port, _args, _cwd in recorded.calls} == {repl}
    assert out.getvalue() == f"pico on {repl} is at its REPL: mpremote connect {repl} repl\n"


def test_the_link_given_as_the_repl_port_too_is_refused():
    run = FakeMpremote()
    with pytest.raises(UsageError, match="--port and --link are both .*USB \\(REPL\\)"):
        flash.Flasher("pico", LINK, link=LINK, run=run)
    assert run.calls == []


# -- --port auto: mpremote's own `auto` took the first port with any VID:PID ------------


def _port(device, usb_id=None, serial=None, description="n/a"):
    port = ListPortInfo(device, skip_link_detection=True)
    if usb_id:
        port.vid, port.pid = (int(part, 16) for part in usb_id.split(":"))
    port.serial_number, port.description = serial, description
    return port


# A Raspberry Pi Debug Probe (its own USB id) as the link adapter sorts first.
PROBE = _port("/dev/ttyACM0", "2e8a:000c", "E6614C", "Debugprobe on Pico (CMSIS-DAP)")
PICO = _port("/dev/ttyACM1", "2e8a:0005", "E66138", "Board in FS mode")
FTDI = _port("/dev/ttyUSB0", "0403:6001", "A10K", "FT232R USB UART")


def _attached(monkeypatch, *ports):
    monkeypatch.setattr(list_ports, "comports", lambda: list(ports))


def test_auto_takes_the_pico_by_its_usb_id_and_never_the_link(monkeypatch):
    _attached(monkeypatch, PROBE, PICO, _port("/dev/ttyS0"))
    run = FakeMpremote()
    f = flash.Flasher("pico", "auto", link=PROBE.device, run=run, connect=_idle, out=io.StringIO())
    f.enter_repl()
    assert f.port == PICO.device
    assert {port for port, _args, _cwd in run.calls} == {PICO.device}


def test_auto_never_takes_a_micropython_board_that_is_the_link(monkeypatch, tmp_path):
    # A second Pico (its USB id the same) as the link adapter, named by a stable
    # /dev/serial/by-id/ symbolic link: still the link.
    _attached(monkeypatch, PICO, _port("/dev/ttyACM2", "2e8a:0005", "OTHER"))
    by_id = tmp_path / "usb-MicroPython_Board_in_FS_mode_OTHER-if00"
    by_id.symlink_to("/dev/ttyACM2")
    assert flash.Flasher("pico", "auto", link=str(by_id), run=FakeMpremote()).port == PICO.device


@pytest.mark.parametrize(
    "ports, said",
    [
        ((), ["no pico running MicroPython (USB 2e8a:0005) other than --link", "ports: none"]),
        (
            (FTDI, PROBE),  # none of them a Pico: each listed, the link marked
            [
                "/dev/ttyACM0 2e8a:000c serial E6614C (Debugprobe on Pico (CMSIS-DAP)); "
                "/dev/ttyUSB0 0403:6001 serial A10K (FT232R USB UART) = --link.",
                "or give --port PORT",
            ],
        ),
        (
            (PICO, _port("/dev/ttyACM2", "2e8a:0005", "B")),
            [
                "2 pico boards (2e8a:0005): /dev/ttyACM1 2e8a:0005 serial E66138",
                "/dev/ttyACM2 2e8a:0005 serial B (n/a): give --port with the one to flash",
            ],
        ),
    ],
)
def test_auto_without_exactly_one_board_lists_every_port_seen(monkeypatch, ports, said):
    _attached(monkeypatch, *ports)
    run = FakeMpremote()
    with pytest.raises(UsageError) as refused:
        flash.Flasher("pico", "auto", link=FTDI.device, run=run)
    assert all(part in str(refused.value) for part in said), str(refused.value)
    assert run.calls == []


def test_auto_through_the_cli_is_one_line_and_touches_nothing(recorded, monkeypatch, capsys):
    _attached(monkeypatch, FTDI)
    code = main(["flash", "--board", "pico", "--port", "auto", "--link", FTDI.device])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("pumpguard: --port auto: no pico") and err.count("\n") == 1
    assert recorded.calls == []


def _idle(port, **kw):
    return FakePump({"board_id": "0123456789abcdef"})
