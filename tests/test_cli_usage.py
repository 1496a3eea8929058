"""Wrong invocations of ``pumpguard``, as people type them: each is ONE line on stderr,
``pumpguard: <what was wrong and what is allowed>``, nothing on stdout, no traceback,
and the exit code README's "Command line" documents (2 usage, 4 link, 1 anything
else). argparse's own errors are those one-liners too (options.Parser), pointing at
the command's --help instead of printing a usage block.

Run in-process through ``main(argv)`` (no pump: the port is absent, silent, or no
path at all); a few as real subprocesses, the console script's own way.
"""

import functools
import os
import pty
import socket
import subprocess
import sys

import pytest
from pumpguard.api import client, discover
from pumpguard.cli import session
from pumpguard.cli.main import _COMMANDS, main

from protocol import catalog, messages

NOREPI = ["start", "norepinephrine"]


@pytest.fixture
def silent_port():
    """A PTY nothing answers on (what a board's REPL port or a dead emulator looks like
    to the protocol)."""
    controller, terminal = pty.openpty()
    yield os.ttyname(terminal)
    os.close(terminal)
    os.close(controller)


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in ("PUMPGUARD_PORT", "PUMPGUARD_KEY", "PUMPGUARD_ROLE", "PUMPGUARD_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PUMPGUARD_KEYS", str(tmp_path / "keys"))
    # A silent port is given up at once rather than after connect()'s 10 s boot wait.
    monkeypatch.setattr(session, "connect", functools.partial(client.connect, boot_wait=0))
    # No probe of this machine's real serial ports: the tests say which there are.
    monkeypatch.setattr(discover, "serial_ports", list)


def _key_file(tmp_path, text, mode):
    path = tmp_path / "key.json"
    path.write_text(text)
    path.chmod(mode)
    return str(path)


# (argv, exit code, a piece of the message); "{silent}", "{tmp}": filled in by the test
WRONG = [
    ([], 2, "the following arguments are required: COMMAND"),
    (["frobnicate"], 2, "invalid choice: 'frobnicate' (choose from 'info', 'status'"),
    (["-p"], 2, "argument -p/--port: expected one argument"),
    (["status", "--port"], 2, "status: argument -p/--port: expected one argument"),
    (["--json", "status"], 2, "--json: not a global option; a command's options go after it"),
    (["status", "--jsonn"], 2, "status: unrecognized arguments: --jsonn"),
    (["emulate", "--json"], 2, "emulate: unrecognized arguments: --json"),
    (["status", "--js"], 2, "status: unrecognized arguments: --js"),  # no abbreviations
    (["--channel", "x", "status"], 2, "'x' is not a channel: give 1 to 255"),
    (["status", "--channel", "0"], 2, "status: argument --channel: '0' is not a channel"),
    (["stop", "--channel", "256"], 2, "'256' is not a channel: give 1 to 255"),
    ([*NOREPI, "abc", "mcg/kg/min"], 2, "argument dose: dose 'abc' is not a decimal number"),
    ([*NOREPI, "0.1234567", "mcg/kg/min"], 2, "dose 0.1234567 has more than 6 decimals"),
    (["titrate", "1e9", "mcg/kg/min"], 2, "dose 1e9 is out of range: allowed 0 to 2147.483647"),
    ([*NOREPI, "0.1", "mcg/kg/min", "--weight", "-70"], 2, "weight -70 is negative"),
    ([*NOREPI, "0.1", "mcg/kg/min", "--concentration", "x", "mcg/mL"], 2, "concentration 'x'"),
    ([*NOREPI, "0.1", "mcg/kg/min", "--volume", "nan"], 2, "volume 'nan' is not a finite"),
    ([*NOREPI, "0.1"], 2, "start: the following arguments are required: unit"),
    (["titrate"], 2, "titrate: the following arguments are required: dose, unit"),
    (["stop", "--emergency", "bored"], 2, "invalid choice: 'bored' (choose from 'occlusion'"),
    (["alarms", "--ack", "x"], 2, "'x' is not an alarm id: give 0 to 65535"),
    (["alarms", "--ack", "70000"], 2, "'70000' is not an alarm id"),
    (["log", "--since", "x"], 2, "log: argument --since: invalid int value: 'x'"),
    (["log", "--csv", "--jsonl"], 2, "argument --jsonl: not allowed with argument --csv"),
    (["--timeout", "0", "info"], 2, "'0' is not a timeout: give seconds above 0, at most 60"),
    (["info", "--timeout", "nan"], 2, "info: argument --timeout: 'nan' is not a timeout"),
    (["--role", "god", "info"], 2, "argument --role: invalid choice: 'god'"),
    (["info"], 2, "no port: give --port PORT (-p PORT), --port auto, or set PUMPGUARD_PORT"),
    (["monitor", "--once"], 2, "no port: give --port PORT (-p PORT)"),
    (["key"], 2, "key: the following arguments are required: ACTION"),
    (["key", "rotate", "root"], 2, "key rotate: argument ROLE: invalid choice: 'root'"),
    (["key", "export", "monitor"], 2, "key export: the following arguments are required: --out"),
    (["library", "check"], 2, "library check: the following arguments are required: FILE"),
    (["library", "check", "/nonexistent/lib.json"], 2, "/nonexistent/lib.json: cannot read it"),
    (["report", "--from", "/nonexistent/log.json", "--out", "{tmp}"], 2, "cannot read"),
    (["emulate", "--tcp", "70000"], 2, "'70000' is not a TCP port: give 0 to 65535"),
    (["emulate", "--board", "toaster"], 2, "unknown board 'toaster' (known: emulator, pico)"),
    (["emulate", "--time-scale", "0"], 2, "--time-scale must be at least 1"),
    (["--insecure", "flash", "--board", "pico"], 2, "--insecure is the emulator's development"),
    (["-p", "/dev/null", "monitor", "--interval", "0"], 2, "is not a refresh interval"),
    (["ports", "--timeout", "-1"], 2, "ports: argument --timeout: '-1' is not a timeout"),
    # link failures: what to check is said on the same line
    (["-p", "/nonexistent/ttyUSB9", "info"], 4, "cannot open /nonexistent/ttyUSB9"),
    (["--port", "/nonexistent/ttyUSB9", "info"], 4, "Check the port: `pumpguard ports` lists"),
    (["status", "-p", "{silent}", "--timeout", "0.1"], 4, "no answer after 3 attempts"),
    (["--port", "{silent}", "--timeout", "0.1", "info"], 4, "is the emulator running"),
    (["--port", "{silent}", "--timeout", "0.1", "info"], 4, "not its REPL port (mpremote's)"),
    (["--port", "{silent}", "--timeout", "0.1", "info"], 4, "`pumpguard ports` lists the serial"),
    (["--port", "auto", "status"], 4, "no pumpguard board answers on any serial port (tried:"),
    (["log", "--port", "auto"], 4, "(tried: pyserial lists no serial port)"),
]


@pytest.mark.parametrize(("argv", "code", "says"), WRONG, ids=lambda v: str(v)[:60])
def test_a_wrong_invocation_is_one_line_and_its_exit_code(
    clean_env, capsys, silent_port, tmp_path, argv, code, says
):
    argv = [a.format(silent=silent_port, tmp=tmp_path) for a in argv]
    assert main(argv) == code
    _one_line(capsys, says)


def _one_line(capsys, says):
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("pumpguard: ") and err.endswith("\n") and err.count("\n") == 1, err
    assert says in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"PUMPGUARD_TIMEOUT": "soon"}, "PUMPGUARD_TIMEOUT: 'soon' is not a timeout"),
        ({"PUMPGUARD_ROLE": "root"}, "PUMPGUARD_ROLE 'root' is not a role: give monitor"),
    ],
)
def test_a_wrong_environment_is_a_usage_error(clean_env, monkeypatch, capsys, env, says):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["-p", "/nonexistent/ttyUSB9", "info"]) == 2
    _one_line(capsys, says)


@pytest.mark.parametrize(
    ("text", "mode", "says"),
    [
        ("{not json", 0o600, "not JSON"),
        ("{}", 0o644, "let others read or change it; refused (run `chmod 600"),
    ],
)
def test_a_bad_key_file_is_a_usage_error_before_the_port_opens(
    clean_env, capsys, tmp_path, text, mode, says
):
    key = _key_file(tmp_path, text, mode)
    assert main(["status", "--key", key, "-p", "/nonexistent/ttyUSB9"]) == 2
    _one_line(capsys, f"key file {key}: ")
    assert main(["--key", str(tmp_path / "none.json"), "-p", "/nonexistent/x", "info"]) == 2
    _one_line(capsys, "cannot read it")


def test_port_auto_names_every_port_tried(clean_env, monkeypatch, capsys, silent_port):
    ports = [
        discover.SerialPort("/nonexistent/ttyUSB9", "0403:6001", "A10K", "FT232R", "FTDI"),
        discover.SerialPort(silent_port, None, None, "a PTY", None),
    ]
    monkeypatch.setattr(discover, "serial_ports", lambda: ports)
    assert main(["--port", "auto", "--timeout", "0.1", "alarms"]) == 4
    _one_line(capsys, "/nonexistent/ttyUSB9: cannot open")
    assert main(["alarms", "-p", "auto", "--timeout", "0.1"]) == 4
    _one_line(capsys, f"{silent_port}: no pumpguard answer within 0.1 s")


def test_port_auto_refuses_to_choose_between_two_boards(clean_env, monkeypatch, capsys):
    # Which pump a command reaches is never a guess.
    ports = [discover.SerialPort(f"/dev/ttyUSB{n}", None, None, "", None) for n in (0, 1)]
    monkeypatch.setattr(discover, "serial_ports", lambda: ports)
    monkeypatch.setattr(
        discover,
        "probe",
        lambda url, timeout, hello=True: discover.Probe(url, True, hello or None, f"board {url}"),
    )
    assert main(["--port", "auto", "start", "vasopressin", "0.03", "units/min"]) == 2
    _one_line(capsys, "--port auto: 2 pumpguard boards answer (/dev/ttyUSB0: board /dev/ttyUSB0")


def test_the_probe_never_sends_a_byte_a_micropython_repl_acts_on():
    # Ctrl-C in a Pico's USB REPL would stop its pump loop; HELLO cannot avoid one (the
    # protocol version), so it is sent only where the firmware answered the probe.
    assert not discover.REPL_ACTS_ON & set(discover._PROBE)
    hello = messages.encode("HELLO", {"protocol": catalog.PROTOCOL_VERSION, "schema": 0,
                                      "host": "", "supervise_s": 0, "wall_ms": 0, "role": 1,
                                      "nonce": bytes(16)})  # fmt: skip
    assert discover.REPL_ACTS_ON & set(hello)


def test_a_port_that_echoes_is_no_board():
    # a loopback plug (pyserial's loop://) hands back the probe's own frames
    probe = discover.probe("loop://", timeout=0.1)
    assert (probe.answers, probe.matches) == (False, False)
    assert probe.said == "no pumpguard answer within 0.1 s"


@pytest.mark.parametrize(
    ("argv", "code", "says"),
    [
        (["frobnicate"], 2, "invalid choice: 'frobnicate'"),
        (["status", "--channel", "0"], 2, "'0' is not a channel"),
        (["-p", "/nonexistent/ttyUSB9", "info"], 4, "Check the port"),
        # (not in-process: the emulator sets its process's umask)
        (["emulate", "--state-dir", "/proc/nope"], 1, "the emulator cannot use /proc/nope"),
    ],
)
def test_the_console_script_says_the_same_one_line(argv, code, says):
    r = _pumpguard(*argv)
    assert (r.returncode, r.stdout) == (code, "")
    assert r.stderr.startswith("pumpguard: ") and r.stderr.count("\n") == 1, r.stderr
    assert says in r.stderr


def test_emulate_on_a_busy_tcp_port_is_one_line_not_a_traceback():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        busy = taken.getsockname()[1]
        r = _pumpguard("emulate", "--tcp", busy)
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == (
        f"pumpguard: --tcp {busy}: cannot serve on 127.0.0.1:{busy} (Address already in use): "
        "give a free port, or 0 to pick one\n"
    )


def _pumpguard(*argv):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUMPGUARD_")}
    return subprocess.run(
        [sys.executable, "-m", "pumpguard", *map(str, argv)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_help_lists_every_command_with_its_summary_and_version_says_the_protocol(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for name, command in _COMMANDS.items():
        assert f"    {name:<20}{command.summary}" in text
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == (
        f"pumpguard {_version()} (protocol {catalog.PROTOCOL_VERSION}, "
        f"schema {catalog.SCHEMA_HASH:08x})\n"
    )


def _version():
    import importlib.metadata

    return importlib.metadata.version("pumpguard")
