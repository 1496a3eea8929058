"""The labgrid board farm (host/pumpguard/testing/farm*.py): PumpguardDriver's port for
each kind of serial resource a place may hold, opened for real, and ``labgrid_ports``
through a real labgrid-coordinator and exporter with a place acquired and released
(`make farm` runs the whole system suite this way, with two places)."""

import os
import socket
import subprocess
import sys
import threading

import pumpguard
import pytest
import serial
import serial.rfc2217
from labgrid import Environment
from pumpguard.testing import farm_lab
from pumpguard.testing.farm import PumpguardDriver, env_ports

from tests.systemkit import ANSWER_TIMEOUT_S

# pyserial's own RFC 2217 client (pumpguard's link on an rfc2217:// port) still calls
# Thread.setDaemon()/setName()
pytestmark = pytest.mark.filterwarnings("ignore:set(Daemon|Name)\\(\\) is deprecated")


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    """One emulator serving raw TCP (``--tcp``), as `make farm`'s are."""
    with pumpguard.Emulator(tcp=0, state_dir=tmp_path_factory.mktemp("farm") / "state") as emu:
        yield emu


class _Connection:
    """The client's socket as PortManager writes to it: from two threads, whole."""

    def __init__(self, client):
        self._client = client
        self._lock = threading.Lock()

    def write(self, data):
        with self._lock:
            self._client.sendall(data)


class Rfc2217Server:
    """An RFC 2217 port in front of a board's link (pyserial's PortManager), as the
    ser2net of a labgrid exporter serves a board on USB serial: one client."""

    def __init__(self, url):
        self._url = url
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        client, _ = self._listener.accept()
        link = serial.serial_for_url(self._url, timeout=0.1)
        manager = serial.rfc2217.PortManager(link, _Connection(client))
        threading.Thread(target=self._to_client, args=(link, manager), daemon=True).start()
        while data := client.recv(4096):
            link.write(b"".join(manager.filter(data)))

    @staticmethod
    def _to_client(link, manager):
        while True:
            try:
                data = link.read(link.in_waiting or 1)  # up to its timeout: then the lines
            except serial.SerialException:
                return  # the board took another host (the next target's connect)
            if data:
                manager.connection.write(b"".join(manager.escape(data)))
            manager.check_modem_lines()


def _env(tmp_path, targets):
    path = tmp_path / "env.yaml"
    lines = ["imports:\n  - pumpguard.testing.farm\ntargets:\n"]
    for name, resource in targets.items():
        lines.append(f"  {name}:\n    resources:\n      {resource}\n")
        lines.append("    drivers:\n      PumpguardDriver: {}\n")
    path.write_text("".join(lines))
    return Environment(config_file=str(path))


def test_the_driver_opens_the_board_over_each_kind_of_serial_resource(board, tmp_path):
    host, port = board.port.removeprefix("socket://").split(":")
    rfc2217 = Rfc2217Server(board.port)
    env = _env(
        tmp_path,
        {
            "raw": f"NetworkSerialPort: {{host: {host}, port: {port}, protocol: raw}}",
            "ser2net": f"NetworkSerialPort: {{host: {host}, port: {rfc2217.port}}}",
            "local": f"RawSerialPort: {{port: '{board.port}'}}",
        },
    )
    try:
        assert env_ports(env) == [
            f"socket://{host}:{port}",
            f"rfc2217://{host}:{rfc2217.port}?ign_set_control",  # labgrid's default protocol
            board.port,
        ]
        for name in ("raw", "ser2net", "local"):
            target = env.get_target(name)
            assert target is not None
            driver = target.get_driver(PumpguardDriver)
            with driver.connect(key=board.key, timeout=ANSWER_TIMEOUT_S) as pump:
                assert pump.info().board == "emulator", name
    finally:
        env.cleanup()


@pytest.mark.parametrize(
    ("targets", "said"),
    [
        (
            {"telnet": "NetworkSerialPort: {host: 127.0.0.1, port: 9, protocol: telnet}"},
            "target telnet: NetworkSerialPort 127.0.0.1:9 has protocol 'telnet': "
            "a pumpguard link is 'raw' or 'rfc2217'",
        ),
        ({}, "no target has a PumpguardDriver"),
    ],
)
def test_a_target_the_driver_cannot_use_is_said(tmp_path, targets, said):
    env = _env(tmp_path, targets)
    with pytest.raises(pumpguard.UsageError) as raised:
        env_ports(env)
    assert str(raised.value).startswith(said)


# A project's own tests, run by pytest with --lg-env as a QA lab runs them: the ports
# come from labgrid_ports at configure (as the pumpguard plugin takes them), the board
# answers through labgrid's `env` fixture and the driver.
_CONFTEST = """
import pytest
from pumpguard.testing.farm import labgrid_ports

PORTS = pytest.StashKey[list]()

def pytest_configure(config):
    config.stash[PORTS] = labgrid_ports(config)

@pytest.fixture
def ports(pytestconfig):
    return pytestconfig.stash[PORTS]
"""
_TEST = """
from pumpguard.testing.farm import PumpguardDriver

def test_the_place_s_board_answers(ports, env):
    assert ports == [{port!r}]
    driver = env.get_target("pumpguard-1").get_driver(PumpguardDriver)
    with driver.connect(timeout=2) as pump:
        assert pump.info().board == "emulator"
"""


def _pytest_lg_env(project, env_yaml, key):
    # the child is a pytest of its own: not one of this run's xdist workers
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PUMPGUARD_"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--lg-env", env_yaml],
        cwd=project,
        env={**env, "PUMPGUARD_KEY": key},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_labgrid_ports_are_the_acquired_places_through_a_real_coordinator(board, tmp_path):
    logs = str(tmp_path)
    coordinator, address = farm_lab.start_coordinator(logs)
    exporter = None
    session = None
    try:
        session = farm_lab.Session(address)
        config = tmp_path / "exporter.yaml"
        config.write_text(farm_lab.exporter_config({"pumpguard-1": board.port}))
        exporter = farm_lab.start_exporter(address, "lab", str(config), logs)
        session.await_resources({"lab/pumpguard-1/NetworkSerialPort"}, 60)
        session.add_place("pumpguard-1", "lab/pumpguard-1/NetworkSerialPort")
        session.acquire("pumpguard-1")
        env_yaml = tmp_path / "env.yaml"
        env_yaml.write_text(farm_lab.env_config(address, ["pumpguard-1"]))
        project = tmp_path / "project"
        project.mkdir()
        (project / "conftest.py").write_text(_CONFTEST)
        (project / "test_place.py").write_text(_TEST.format(port=board.port))

        run = _pytest_lg_env(project, str(env_yaml), board.key)
        assert run.returncode == 0, run.stdout + run.stderr

        session.release("pumpguard-1")
        run = _pytest_lg_env(project, str(env_yaml), board.key)
        assert run.returncode == pytest.ExitCode.USAGE_ERROR, run.stdout + run.stderr
        said = (
            f"pumpguard: --lg-env {env_yaml}: target pumpguard-1: "
            f"place pumpguard-1 is not acquired (coordinator at {address})"
        )
        assert said in run.stderr
        assert "Traceback" not in run.stdout + run.stderr
    finally:
        if session is not None:
            session.close()
        if exporter is not None:
            exporter.stop()
        coordinator.stop()


def test_make_farm_s_runner_refuses_bad_input_in_one_line(tmp_path, capsys):
    from pumpguard.testing import farm_run

    with pytest.raises(SystemExit) as raised:
        farm_run.main(["--runtime", "java"])
    assert raised.value.code == pumpguard.UsageError.exit_code
    said = capsys.readouterr().err
    assert said.startswith("pumpguard: farm: argument --runtime: invalid choice: 'java'")
    assert said.count("\n") == 1

    (tmp_path / "notes.txt").write_text("a user's file, never removed")
    assert farm_run.main(["--log-dir", str(tmp_path)]) == pumpguard.UsageError.exit_code
    assert capsys.readouterr().err == (
        f"pumpguard: farm: --log-dir {tmp_path} holds files of something else: "
        "give a new or empty dir\n"
    )
    assert (tmp_path / "notes.txt").exists()
