"""The authenticated link through the real CLI and API, on both emulator runtimes: no
key, a wrong key, a monitor's exported key, a key rotated, and the emulator's
--insecure mode. Every refusal is counted by the device (INFO) and changes nothing."""

import json
import os
import pathlib
import stat
import subprocess
import sys

import pumpguard
import pytest
from pumpguard.api import keys

from protocol import catalog
from tests.portable.shellkit import NOREPI as START_FIELDS  # the wire's START fields
from tests.systemkit import ANSWER_TIMEOUT_S, NOREPI, RawPort, alarm_codes

pytestmark = pytest.mark.system

START = ["start", "norepinephrine", "0.1", "mcg/kg/min", "--weight", "70"]
START += ["--concentration", "16", "mcg/mL", "--volume", "50"]


def _counters(emu):
    with pumpguard.connect(emu.port, key=emu.key, timeout=ANSWER_TIMEOUT_S) as pump:
        return pump.info().counters


def _wrong_key(emu, tmp_path):
    """The emulator's key file with another clinician key: the same board, a wrong key."""
    keyfile = keys.KeyFile.load(emu.key)
    return keyfile.replaced("clinician", os.urandom(32)).save(tmp_path / "wrong.json")


def test_the_emulator_prints_its_key_file_and_keeps_it_across_a_factory_reset(emulator):
    assert emulator.key == os.path.join(emulator.state_dir, "key.json")
    assert stat.S_IMODE(os.stat(emulator.key).st_mode) == 0o600
    before = pathlib.Path(emulator.key).read_text()
    with pumpguard.connect(emulator.port, key=emulator.key, timeout=ANSWER_TIMEOUT_S) as pump:
        board_id = pump.device["board_id"]
        assert pump.device["auth"] == 1
    assert keys.KeyFile.load(emulator.key).board_id == board_id
    emulator.factory_reset()
    assert pathlib.Path(emulator.key).read_text() == before
    with pumpguard.connect(emulator.port, key=emulator.key, timeout=ANSWER_TIMEOUT_S) as pump:
        assert pump.device["board_id"] == board_id


@pytest.mark.one_runtime("the host's message for a key it lacks; the device answers HELLO")
def test_no_key_is_refused_with_what_to_do(pump_port, pump_cli, tmp_path, monkeypatch):
    # Board-style: the HELLOs left without their AUTH hold their slots HOLD_MS (2 s) on
    # the device, which the plugin's clean-up after this test waits out
    # (board.CLEAN_BUSY_S).
    empty = tmp_path / "empty-store"
    r = pump_cli("status", env={"PUMPGUARD_KEY": "", "PUMPGUARD_KEYS": str(empty)})
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("pumpguard: no key for board ")
    assert "give --key FILE (or PUMPGUARD_KEY=FILE)" in r.stderr
    monkeypatch.setenv("PUMPGUARD_KEYS", str(empty))
    monkeypatch.delenv("PUMPGUARD_KEY", raising=False)  # a board run's key file
    with pytest.raises(pumpguard.KeyFileError, match="no key for board"):
        pumpguard.connect(pump_port, timeout=ANSWER_TIMEOUT_S)


def test_a_raw_start_without_a_tag_never_runs(emulator):
    raw = RawPort(emulator.port)
    try:
        raw.hello()
        raw.keys.clear()  # the project's own codec, no tag: as a host without the key
        raw.send("START", 2, START_FIELDS)
        name, answer = raw.answer(2)
        assert (name, catalog.ERROR_NAMES[answer["code"]]) == ("ERROR", "auth")
        assert raw.frame.tag is None  # the device had no key it could answer with
    finally:
        raw.close()
    with pumpguard.connect(emulator.port, key=emulator.key, timeout=ANSWER_TIMEOUT_S) as pump:
        assert pump.status(1).state == "idle"
        assert pump.info().counters["bad_tag"] == 1
    assert emulator.pumps()[0]["rate"] == 0


def test_a_wrong_key_is_refused_exit_5_and_counted(emulator, pump_cli, tmp_path):
    wrong = _wrong_key(emulator, tmp_path)
    before = _counters(emulator)["auth_refused"]
    r = pump_cli("--key", wrong, *START)
    assert r.returncode == 5, r.stderr
    assert "the board refused the key for role clinician" in r.stderr
    assert f"key file {wrong}" in r.stderr and "Traceback" not in r.stderr
    with pytest.raises(pumpguard.AuthError, match="refused the key for role clinician"):
        pumpguard.connect(emulator.port, key=wrong, timeout=ANSWER_TIMEOUT_S)
    counters = _counters(emulator)
    assert counters["auth_refused"] == before + 2
    with pumpguard.connect(emulator.port, key=emulator.key, timeout=ANSWER_TIMEOUT_S) as pump:
        assert pump.status(1).state == "idle"  # nothing ran
        assert "auth_refused" in [e.code for e in pump.log()]


def test_a_monitor_key_reads_status_and_may_not_start(emulator, pump_cli, tmp_path):
    monitor = tmp_path / "monitor.json"
    r = pump_cli("key", "export", "monitor", "--out", monitor)
    assert r.returncode == 0, r.stderr
    assert keys.KeyFile.load(monitor).roles == ("monitor",)
    assert stat.S_IMODE(os.stat(monitor).st_mode) == 0o600
    r = pump_cli("--key", monitor, "status")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("channel 1: idle")
    r = pump_cli("--key", monitor, *START)
    assert r.returncode == 5, r.stderr
    assert "role monitor may not send START (clinician may)" in r.stderr
    with pumpguard.connect(emulator.port, key=monitor, timeout=ANSWER_TIMEOUT_S) as pump:
        assert pump.role == "monitor"
        with pytest.raises(pumpguard.Forbidden, match="may not send START"):
            pump.start(1, "norepinephrine", "0.1", "mcg/kg/min", **NOREPI)
        assert pump.status(1).state == "idle"
        assert pump.info().counters["forbidden"] == 2
    assert emulator.pumps()[0]["rate"] == 0


@pytest.fixture
def own_emulator(tmp_path, pump_target):
    """An emulator of this test's own: its keys rotate, which the worker's shared
    emulator (and the key store's copy of its keys) must never see."""
    with pumpguard.Emulator(state_dir=tmp_path / "state", runtime=pump_target) as emu:
        yield emu


def _run(emu, key, *args):
    argv = [sys.executable, "-m", "pumpguard", "--port", emu.port, "--key", str(key), *args]
    env = dict(os.environ, PUMPGUARD_TIMEOUT=str(ANSWER_TIMEOUT_S), PUMPGUARD_KEY="")
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.needs_emulator  # its own emulator
def test_a_rotated_key_refuses_the_old_one_and_takes_the_new(own_emulator, tmp_path):
    emu = own_emulator
    old = tmp_path / "old.json"
    old.write_bytes(pathlib.Path(emu.key).read_bytes())
    os.chmod(old, 0o600)
    r = _run(emu, emu.key, "key", "rotate", "clinician")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith(f"the new one is in {emu.key}")
    rotated = keys.KeyFile.load(emu.key)
    assert rotated.keys["clinician"] != keys.KeyFile.load(old).keys["clinician"]
    assert rotated.keys["monitor"] == keys.KeyFile.load(old).keys["monitor"]
    assert rotated.keys["clinician"].hex() not in r.stdout + r.stderr
    assert not os.path.exists(f"{emu.key}.new")
    assert stat.S_IMODE(os.stat(emu.key).st_mode) == 0o600
    r = _run(emu, old, "status")
    assert r.returncode == 5 and "refused the key for role clinician" in r.stderr
    r = _run(emu, emu.key, *START)
    assert r.returncode == 0, r.stderr
    with pumpguard.connect(emu.port, key=emu.key, timeout=ANSWER_TIMEOUT_S) as pump:
        rotations = [e for e in pump.log() if e.code == "key_rotated"]
        assert [e.text for e in rotations] == ["key for role clinician replaced"]
    # the board kept it: a power cycle later the new key still works, the old never
    emu.power_cycle()
    with pumpguard.connect(emu.port, key=emu.key, timeout=ANSWER_TIMEOUT_S) as pump:
        assert pump.status(1).state == "running"
    with pytest.raises(pumpguard.AuthError):
        pumpguard.connect(emu.port, key=old, timeout=ANSWER_TIMEOUT_S)


@pytest.mark.one_runtime("the CLI refuses a rotation without the service key before it sends")
def test_rotating_needs_the_service_key(pump_cli):
    r = pump_cli("--role", "clinician", "key", "rotate", "monitor")
    assert r.returncode == 2
    assert "needs the service key" in r.stderr and "nothing was sent" in r.stderr


@pytest.mark.needs_emulator  # its own emulator
def test_an_insecure_emulator_says_so_and_needs_insecure_on_the_host(tmp_path, pump_target):
    with pumpguard.Emulator(state_dir=tmp_path / "s", runtime=pump_target, insecure=True) as emu:
        assert emu.key is None and not os.path.exists(tmp_path / "s" / "key.json")
        assert json.loads((tmp_path / "s" / "keys").read_text())["insecure"] is True
        with pytest.raises(pumpguard.AuthError, match="pass --insecure to talk to it"):
            pumpguard.connect(emu.port, timeout=ANSWER_TIMEOUT_S)
        argv = [sys.executable, "-m", "pumpguard", "--port", emu.port]
        env = dict(os.environ, PUMPGUARD_TIMEOUT=str(ANSWER_TIMEOUT_S), PUMPGUARD_KEY="")
        r = subprocess.run([*argv, "status"], capture_output=True, text=True, env=env)
        assert r.returncode == 5
        assert "runs without keys (the emulator's --insecure development mode)" in r.stderr
        r = subprocess.run([*argv, "--insecure", "alarms"], capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stderr
        assert "low    insecure_link" in r.stdout
        with pumpguard.connect(emu.port, insecure=True, timeout=ANSWER_TIMEOUT_S) as pump:
            assert pump.device["auth"] == 0
            assert alarm_codes(pump) == ["insecure_link"]
            assert [a.priority for a in pump.alarms()] == ["low"]
            assert pump.status(1).state == "idle"
    # a state dir is of one kind: keys, or --insecure
    r = subprocess.run(
        [sys.executable, "-m", "pumpguard", "emulate", "--state-dir", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 2 and "made with --insecure" in r.stderr


@pytest.mark.needs_emulator  # its own emulator
def test_an_emulator_that_lost_its_keys_says_how_to_get_keys_and_still_runs(own_emulator, tmp_path):
    emu = own_emulator
    key = tmp_path / "key.json"
    key.write_bytes(pathlib.Path(emu.key).read_bytes())
    os.chmod(key, 0o600)
    with pumpguard.connect(emu.port, key=key, timeout=ANSWER_TIMEOUT_S) as pump:
        pump.start(1, "norepinephrine", "0.1", "mcg/kg/min", **NOREPI)
    emu.power_off()
    os.remove(os.path.join(emu.state_dir, "keys"))  # a flash that lost the keys file
    emu.start()
    r = _run(emu, key, "status")
    assert r.returncode == 5, r.stderr
    assert "the device says it has no keys provisioned" in r.stderr
    # An emulator is no board to reflash: its keys come with a new state dir.
    assert "reflash" not in r.stderr and "on a new state dir" in r.stderr
    assert emu.pumps()[0]["rate"] > 0  # the pump restored its channel all the same
