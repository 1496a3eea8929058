"""The command line's conventions, as esptool and mpremote users expect them: global
options before or after the command (``-p`` for ``--port``), ``--port auto``, ``--json``
on every command that prints data (the API's answers, generically), ``ports`` with
VID:PID and serial number and whether a board answers; against the emulator where a
pump is needed."""

import dataclasses
import io
import json
import pathlib
import re
from decimal import Decimal

import pytest
from pumpguard.api import discover
from pumpguard.api.answers import Decision
from pumpguard.cli import jsonout
from pumpguard.cli import main as cli_main

from tests.systemkit import ANSWER_TIMEOUT_S

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOREPI = ["--weight", "70", "--concentration", "16", "mcg/mL", "--volume", "50"]
T = ["--timeout", str(ANSWER_TIMEOUT_S)]

# the fewest arguments each command parses with
_MINIMAL = {
    "start": ["norepinephrine", "0.1", "mcg/kg/min"],
    "titrate": ["0.1", "mcg/kg/min"],
    "handover": ["1", "2", "--drug", "d", "--concentration", "16", "mcg/mL", "--volume", "50"],
    "report": ["--out", "dir"],
    "library": ["check", "lib.json"],
    "key": ["rotate", "monitor"],
    "flash": ["--board", "pico"],
}


class _Pump:
    channels = 2

    def close(self):
        pass


@pytest.fixture
def seen(monkeypatch):
    """Each command's parsed args, the handler and the connection replaced."""
    got = []
    for name, command in cli_main._COMMANDS.items():
        recorder = dataclasses.replace(command, run=lambda pump, args, out: got.append(args))
        monkeypatch.setitem(cli_main._COMMANDS, name, recorder)
    monkeypatch.setattr(cli_main, "open_pump", lambda args, **kw: _Pump())
    monkeypatch.setenv("PUMPGUARD_PORT", "/dev/from-env")
    return got


@pytest.mark.parametrize("name", list(cli_main._COMMANDS))
def test_port_given_and_global_port_for_every_command(seen, name):
    argv = [name, *_MINIMAL.get(name, [])]
    assert cli_main.main(argv, out=io.StringIO()) == 0
    assert (seen[-1].port_given, seen[-1].global_port) == (None, "/dev/from-env")
    assert cli_main.main(["-p", "/dev/before", *argv], out=io.StringIO()) == 0
    assert (seen[-1].port_given, seen[-1].global_port) == ("/dev/before", "/dev/before")
    if name == "flash":  # its own --port, the REPL's; never the global one
        assert cli_main.main([*argv, "--port", "/dev/repl"], out=io.StringIO()) == 0
        assert (seen[-1].port, seen[-1].port_given) == ("/dev/repl", None)
        return
    after = [*argv, "--port", "/dev/after", "--channel", "2", "--role", "monitor", "--insecure"]
    assert cli_main.main(after, out=io.StringIO()) == 0
    args = seen[-1]
    assert (args.port_given, args.global_port, args.channel) == ("/dev/after", "/dev/after", 2)
    # emulate's own --insecure is `--insecure emulate`'s (main() makes them one)
    insecure = args.insecure if name == "emulate" else args.global_insecure
    assert (args.role, insecure) == ("monitor", True)


def test_an_option_after_the_command_wins_and_one_not_given_keeps_the_first(seen):
    argv = ["-p", "/dev/a", "--channel", "2", "key", "rotate", "clinician", "--timeout", "3"]
    assert cli_main.main(argv, out=io.StringIO()) == 0
    args = seen[-1]
    # an action's parser takes them too (`key rotate ROLE --timeout 3`)
    assert (args.port_given, args.channel, args.global_timeout) == ("/dev/a", 2, 3.0)
    assert args.role == "service"  # rotate's own default role, no --role given
    assert cli_main.main(["-p", "/dev/a", "status", "-p", "/dev/b"], out=io.StringIO()) == 0
    assert seen[-1].port_given == "/dev/b"


def test_json_is_every_field_of_the_answer_decimals_as_exact_strings():
    @dataclasses.dataclass(frozen=True)
    class Later(Decision):  # a field the API adds later flows through
        conc: Decimal | None = None

    answer = Later(1, Decimal("0.1"), "mcg/kg/min", Decimal("26.25"), Decimal("16"))
    assert jsonout.jsonable(answer) == {
        "channel": 1,
        "dose": "0.1",
        "dose_unit": "mcg/kg/min",
        "rate_ml_h": "26.25",
        "conc": "16",
    }
    assert jsonout.jsonable({"plan": (answer,)})["plan"][0]["dose"] == "0.1"


def _run(*argv):
    out = io.StringIO()
    code = cli_main.main([str(a) for a in argv], out=out)
    return code, out.getvalue()


def _json(*argv):
    code, text = _run(*argv)
    assert code == 0
    return [json.loads(line) for line in text.splitlines()] if "\n{" in text else json.loads(text)


@pytest.mark.system
@pytest.mark.needs_emulator  # a fresh board: idle channels, no other session
def test_json_on_every_command_that_prints_data(pump_port, monkeypatch, capsys):
    info = _json("info", "-p", pump_port, *T, "--json")
    assert info["channels"] == 2 and info["library_problems"] == 0 and "counters" in info
    d = _json(
        "start", "norepinephrine", "0.1", "mcg/kg/min", *NOREPI, "-p", pump_port, *T, "--json"
    )
    assert d == {"channel": 1, "dose": "0.1", "dose_unit": "mcg/kg/min", "rate_ml_h": "26.25"}
    s = _json("status", "--json", "-p", pump_port, *T)
    assert (s["state"], s["dose"], s["rate_ml_h"], s["alarms"]) == ("running", "0.1", "26.25", [])
    assert [one["channel"] for one in _json("status", "--all", "--json", "-p", pump_port, *T)] == [
        1,
        2,
    ]
    stopped = _json("stop", "-p", pump_port, *T, "--json")
    assert (stopped["channel"], stopped["dose_unit"]) == (1, "mcg/kg/min")
    assert [step["dose"] for step in stopped["plan"]] == ["0.08", "0.06", "0.04", "0.02", "0"]
    estop = ["--channel", "1", "stop", "--emergency", "clinician", "--json", "-p", pump_port, *T]
    assert _json(*estop) == {"channel": 1, "emergency": "clinician"}
    alarms = _json("alarms", "--json", "-p", pump_port, *T)
    assert [a["code"] for a in alarms] == ["clinician"] and alarms[0]["acked"] is False
    acked = _json("alarms", "--ack", alarms[0]["id"], "--json", "-p", pump_port, *T)
    assert acked == {"acknowledged": alarms[0]["id"]}
    log = _json("log", "--json", "-p", pump_port, *T)  # the shape `report --from` reads
    assert set(log) == {"device", "entries"} and log["device"]["board_id"]
    # ports: the emulator's PTY is not a serial port pyserial lists; given as one, a
    # board answers there, named as INFO names it
    pty_port = discover.SerialPort(pump_port, None, None, "the emulator's PTY", None)
    monkeypatch.setattr(discover, "serial_ports", lambda: [pty_port])
    (found,) = _json("ports", "--json", *T)
    assert (found["device"], found["vid_pid"], found["serial_number"]) == (pump_port, None, None)
    assert found["pumpguard"]["matches"] and found["pumpguard"]["board"] == info["board"]
    assert found["pumpguard"]["board_id"] == log["device"]["board_id"]
    assert capsys.readouterr().err == ""


@pytest.mark.system
@pytest.mark.needs_emulator  # a fresh board: idle channels, no other session
@pytest.mark.one_runtime("the host's port listing; the device only answers its probe")
def test_ports_lists_each_port_and_whether_a_board_answers(pump_port, monkeypatch):
    listed = [
        discover.SerialPort("/nonexistent/ttyUSB9", "0403:6001", "A10KZ3QX", "FT232R", "FTDI"),
        discover.SerialPort(pump_port, None, None, "the emulator's PTY", None),
    ]
    monkeypatch.setattr(discover, "serial_ports", lambda: listed)
    code, text = _run("ports", *T)
    assert code == 0
    header, usb, pty_line = text.splitlines()
    assert header.split() == ["DEVICE", "VID:PID", "SERIAL", "DESCRIPTION", "PUMPGUARD"]
    assert usb.split()[:4] == ["/nonexistent/ttyUSB9", "0403:6001", "A10KZ3QX", "FT232R"]
    assert "no: cannot open" in usb
    assert f"yes: board emulator {_board_id(pump_port)}, pumpguard " in pty_line
    code, text = _run("ports", "--no-probe")
    assert code == 0 and "PUMPGUARD" not in text and "yes" not in text


def _board_id(port):
    (probe,) = discover.probe_all([port], ANSWER_TIMEOUT_S)
    return probe.board_id


@pytest.mark.system
@pytest.mark.needs_emulator  # a fresh board: idle channels, no other session
@pytest.mark.one_runtime("the host's choice of port; the device only answers its probe")
def test_port_auto_takes_the_one_port_a_board_answers_on(pump_port, monkeypatch):
    listed = [
        discover.SerialPort("/nonexistent/ttyUSB9", None, None, "n/a", None),
        discover.SerialPort(pump_port, None, None, "the emulator's PTY", None),
    ]
    monkeypatch.setattr(discover, "serial_ports", lambda: listed)
    code, text = _run("status", "--port", "auto", *T)
    assert code == 0 and text.startswith("channel 1: idle"), text
    assert discover.find(ANSWER_TIMEOUT_S) == pump_port


@pytest.mark.system
@pytest.mark.needs_emulator  # a fresh board: idle channels, no other session
@pytest.mark.one_runtime("the CLI refuses the channel from HELLO's count before it sends")
def test_a_channel_the_pump_lacks_is_a_usage_error_before_the_command(pump_port, pump, capsys):
    def frames():
        return pump.info().counters["frames"]

    before = frames()
    one_info = frames() - before  # what asking costs: the INFO request itself
    assert cli_main.main(["--channel", "3", "stop", "-p", pump_port, *T]) == 2
    assert capsys.readouterr().err == "pumpguard: --channel 3: this pump has channels 1 to 2\n"
    # HELLO and AUTH, then nothing: no STOP reached the device
    assert frames() - before == 2 * one_info + 2
    assert pump.status(1).state == "idle"


@pytest.mark.system
@pytest.mark.one_runtime("the CLI's parsing of its options; the device answers one STATUS")
def test_the_console_script_with_p_and_options_after_the_command(pump_cli, pump_port):
    # pump_cli() gives `--port PORT --channel 1` before the command: those after it win
    r = pump_cli("status", "--json", "--channel", "2", "-p", pump_port)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["channel"] == 2
    r = pump_cli("--version")
    assert (r.returncode, r.stdout.split()[:2]) == (0, ["pumpguard", _version()]), r.stderr


def _version():
    import importlib.metadata

    return importlib.metadata.version("pumpguard")


def test_the_readme_shows_the_help_as_it_is(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "92")  # the width the README's copy was taken at
    assert cli_main.main(["--help"]) == 0
    shown = capsys.readouterr().out.splitlines()
    section = (ROOT / "README.md").read_text().split("## Command line", 1)[1]
    block = re.search(r"```text\n(.*?)```", section, re.S).group(1)
    assert [line for line in block.splitlines() if line not in shown] == []
