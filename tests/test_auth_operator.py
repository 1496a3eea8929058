"""The authenticated link as its operators meet it (issue 11's QA review): key
rotation that never loses a key, key files the board would refuse, flash checking
with the keys the board holds, supervision as the clinician's, the emulator's key line
and --insecure, messages that name the API as well as the CLI, and hardware-in-the-loop
runs given their key."""

import json
import os
import pathlib
import select
import shutil
import subprocess
import sys
import time

import pumpguard
import pytest
import serial
from pumpguard.api import keys
from pumpguard.api.client import Pump
from pumpguard.deploy.flash import Flasher
from pumpguard.errors import AuthError, DeviceReset, LinkError, NoAnswer, ProtocolMismatch

from protocol import catalog, messages
from tests.systemkit import ANSWER_TIMEOUT_S, RawPort, hello_fields, start_norepinephrine
from tests.test_flash import FakeMpremote, FakePump
from tests.test_protocol_link import FakeDevice

T = ANSWER_TIMEOUT_S
ROOT = pathlib.Path(__file__).parent.parent


def _copy_key(emu, path):
    shutil.copyfile(emu.key, path)
    os.chmod(path, 0o600)
    return path


def _opens(emu, candidates, role):
    works = []
    for candidate in candidates:
        if os.path.exists(candidate):
            try:
                with pumpguard.connect(emu.port, key=candidate, role=role, timeout=T):
                    works.append(candidate)
            except pumpguard.AuthError:
                pass
    return works


# -- rotation ---------------------------------------------------------------------------


def _await_answer(port, within_s=60):
    """Return once the device's answer is waiting on ``port``, unread (it has run the
    request): readiness, never a fixed sleep that a loaded machine outlasts."""
    deadline = time.monotonic() + within_s
    while not port.in_waiting:
        assert time.monotonic() < deadline, "the device never answered"
        time.sleep(0.01)


class _InterruptAfterWrite:
    """The link's port, but once armed the first read after a write waits for the
    device to act on what was written, then raises KeyboardInterrupt (Ctrl-C while the
    answer is awaited)."""

    def __init__(self, port):
        object.__setattr__(self, "_port", port)
        object.__setattr__(self, "armed", False)
        object.__setattr__(self, "written", False)

    def write(self, data):
        if self.armed:
            object.__setattr__(self, "written", True)
        return self._port.write(data)

    def read(self, size=1):
        if self.written:
            _await_answer(self._port)  # the device has run the request by now
            raise KeyboardInterrupt
        return self._port.read(size)

    def __getattr__(self, name):
        return getattr(self._port, name)

    def __setattr__(self, name, value):
        setattr(self._port, name, value)


@pytest.mark.system
@pytest.mark.needs_emulator  # its own emulator
def test_ctrl_c_while_a_rotation_is_answered_keeps_the_new_key(tmp_path, pump_target, capsys):
    # Ctrl-C (or any error but the board's tagged answer) while KEY's answer is awaited
    # must not delete <key>.new, the only copy of a key the board may hold already:
    # for the service key that would leave a board nobody can rotate or flash.
    with pumpguard.Emulator(state_dir=tmp_path / "s", runtime=pump_target) as emu:
        key = _copy_key(emu, tmp_path / "key.json")
        with pumpguard.connect(emu.port, key=key, role="service", timeout=T) as pump:
            wrapper = _InterruptAfterWrite(pump._link._port)
            pump._link._port = wrapper
            object.__setattr__(wrapper, "armed", True)
            with pytest.raises(KeyboardInterrupt):
                pump.rotate_key("service")
        assert f"it is in {key}.new" in capsys.readouterr().err
        assert _opens(emu, [key, f"{key}.new"], "service") == [f"{key}.new"]


@pytest.mark.system
@pytest.mark.needs_emulator  # its own emulator
@pytest.mark.one_runtime("the host refuses the rotation before KEY is sent")
def test_rotating_with_a_keyfile_without_a_path_is_refused_before_sending(
    tmp_path, monkeypatch, pump_target
):
    # connect(key=KeyFile) is documented; such a KeyFile has no path, so the new key
    # would be in no file: refused before KEY is sent, the old key still good.
    monkeypatch.chdir(tmp_path)
    with pumpguard.Emulator(state_dir=tmp_path / "s", runtime=pump_target) as emu:
        loaded = keys.KeyFile.load(emu.key)
        in_memory = keys.KeyFile(loaded.board_id, loaded.keys)  # path None
        with (
            pumpguard.connect(emu.port, key=in_memory, role="service", timeout=T) as pump,
            pytest.raises(pumpguard.UsageError, match="no path.*nothing was sent"),
        ):
            pump.rotate_key("clinician")
        assert os.listdir(tmp_path) == ["s"]  # no ./None.new
        assert _opens(emu, [emu.key], "clinician") == [emu.key]


def test_saving_a_copy_elsewhere_leaves_a_key_file_its_path(tmp_path):
    made = keys.KeyFile.generate()
    home = made.save(tmp_path / "k.json")
    assert made.path == home
    assert made.save(tmp_path / "k.json.new") == str(tmp_path / "k.json.new")
    assert made.path == home  # rotate_key's pending copy never becomes the file


@pytest.fixture
def device(monkeypatch):
    # The fake device's key file is the key store's (FakeDevice saves it there), never
    # a board run's PUMPGUARD_KEY (--pump-key), which is another board's.
    monkeypatch.delenv("PUMPGUARD_KEY", raising=False)
    dev = FakeDevice()
    yield dev
    dev.server.close()


def _answer_key_with(device, make):
    answer = device._answer

    def lie(f):
        wire = answer(f)
        return make(f) if catalog.NAME[f.msg_id] == "KEY" else wire

    device._answer = lie


def test_only_a_tagged_refusal_of_key_removes_dot_new(device, tmp_path):
    path = keys.KeyFile(device.keyfile.board_id, device.keyfile.keys).save(tmp_path / "k.json")
    with Pump(device.url, key=path, role="service", timeout=T) as pump:
        # A tagged ERROR: the board certainly kept the old key, .new goes.
        _answer_key_with(
            device,
            lambda f: device.wire("ERROR", f.seq, {"code": catalog.ERR_INTERNAL, "message": "x"}),
        )
        with pytest.raises(pumpguard.DeviceError):
            pump.rotate_key("monitor")
        assert not os.path.exists(f"{path}.new")
        # An untagged ERROR auth: anyone's, and KEY may have run: .new stays, said so.
        device._answer = FakeDevice._answer.__get__(device)
        _answer_key_with(
            device,
            lambda f: messages.to_wire(
                "ERROR", f.seq, {"code": catalog.ERR_AUTH, "message": "x"}, sid=f.sid
            ),
        )
        with pytest.raises(pumpguard.AuthError, match=f"MAY HAVE RUN.*it is in {path}.new"):
            pump.rotate_key("monitor")
    assert keys.KeyFile.load(f"{path}.new").keys["monitor"] == device.rotated[-1]
    assert keys.KeyFile.load(path).keys == device.keyfile.keys


# -- key files the board would refuse; flash -------------------------------------------


_REHELLO_FAILS = {
    "busy": LinkError("the device has no session free: busy; the command did NOT run", False),
    "no answer": NoAnswer("HELLO seq 9: no answer; the command did NOT run", False),
    "refused key": AuthError("the board refused the key; nothing ran", False),
    "mismatch": ProtocolMismatch([("schema hash", "0x1", "0x2")]),
}


@pytest.mark.parametrize("how", sorted(_REHELLO_FAILS))
def test_a_failed_rehello_never_says_a_command_that_may_have_run_did_not(device, how):
    # Pump._call: a retry met hello_required (DeviceReset, may_have_run: the first
    # attempt may have run before the session was lost), then the HELLO that follows
    # fails. Its error (busy: "did NOT run") must not stand for the ESTOP's: the error
    # raised keeps may_have_run and says both.
    again = _REHELLO_FAILS[how]
    with Pump(device.url, timeout=T) as pump:

        def lost(name, fields=None, wrap=None):
            raise DeviceReset(f"{name}: session gone; the command MAY HAVE RUN", True)

        def fails(library=None):
            raise again

        pump._link.request, pump._link.hello = lost, fails
        with pytest.raises(pumpguard.PumpguardError) as info:
            pump.emergency_stop(1, "clinician")
        del pump._link.request, pump._link.hello
    assert info.value.may_have_run is True
    assert isinstance(info.value, type(again) if hasattr(again, "may_have_run") else DeviceReset)
    said = str(info.value)
    assert "session gone" in said and str(again) in said and said.endswith("ESTOP MAY HAVE RUN)")


@pytest.mark.parametrize("flaw", ["shared", "zeros"])
def test_flash_keys_refuses_a_key_file_the_board_would_refuse(tmp_path, flaw):
    # The board refuses a keys file with two roles sharing a key or a key of zeros at
    # boot (keys_missing, every AUTH refused): `flash --keys` refuses it up front.
    kf = keys.KeyFile.generate()
    if flaw == "shared":
        kf.keys["clinician"] = kf.keys["monitor"]
    else:
        kf.keys["service"] = bytes(32)
    with pytest.raises(pumpguard.KeyFileError, match="same|all zeros"):
        kf.board_json()
    path = tmp_path / "k.json"
    path.write_text(json.dumps(kf.to_json()))
    os.chmod(path, 0o600)
    with pytest.raises(pumpguard.KeyFileError, match="same|all zeros"):
        keys.KeyFile.load(path)
    with pytest.raises(pumpguard.UsageError):
        Flasher("pico", "/dev/ttyACM0", link="/dev/ttyUSB0", run=FakeMpremote(), keys=str(path))


@pytest.mark.parametrize("given", [None, "key"])
def test_flash_keys_onto_a_provisioned_board_checks_with_the_keys_it_holds(tmp_path, given):
    # The check before the safe boot speaks with the keys the board holds (the key
    # store's, or --key), never --keys FILE (the keys about to be written): those the
    # board does not hold, and the refusal would ask for --force, which skips the one
    # check that no channel infuses.
    board = keys.KeyFile.generate()
    held_path = board.save(
        keys.store_path(board.board_id) if given is None else tmp_path / "b.json"
    )
    new = keys.KeyFile.generate(board.board_id).save(tmp_path / "new.json")
    seen = []

    def connect(port, key=None, role=None, **kw):
        seen.append(key)
        held = keys.KeyFile.load(keys.store_path(board.board_id) if key is None else key)
        if held.keys != board.keys:
            raise pumpguard.AuthError("the board refused the key for role service")
        return FakePump({"board_id": board.board_id})

    f = Flasher(
        "pico",
        "/dev/ttyACM0",
        link="/dev/ttyUSB0",
        run=FakeMpremote(),
        connect=connect,
        keys=str(new),
        key=None if given is None else held_path,
    )
    f.check_idle()
    assert seen == [None if given is None else held_path]


def test_a_flash_says_the_previous_keys_no_longer_work():
    from tests.test_flash import _device, _flasher

    f, _seen = _flasher(FakeMpremote(), device=_device)
    f.flash()
    assert (
        "previous keys, and any key file exported from them, no longer work"
        in (f._out.getvalue().splitlines()[-1])
    )


def test_insecure_is_refused_for_a_flash():
    r = subprocess.run(
        [sys.executable, "-m", "pumpguard", "--insecure", "flash", "--board", "pico"]
        + ["--port", "/dev/nonexistent"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "the emulator's development mode" in r.stderr, r.stderr


# -- supervision is the clinician's -----------------------------------------------------


class _Writes:
    def __init__(self, real, log):
        self._real, self._log = real, log

    def write(self, data):
        self._log.append(bytes(data))
        return self._real.write(data)

    def __getattr__(self, name):
        return getattr(self._real, name)


@pytest.mark.system
@pytest.mark.one_runtime("the host refuses supervision before anything is sent")
def test_supervision_by_a_monitor_or_service_session_is_refused_before_sending(
    emulator, tmp_path, monkeypatch
):
    # The device ignores a non-clinician's supervise_s and answers its SUPERVISE
    # forbidden (decision (a)): the host says so before anything is sent.
    monitor = keys.KeyFile.load(emulator.key).only(["monitor"]).save(tmp_path / "m.json")
    written = []
    real = serial.serial_for_url
    monkeypatch.setattr(
        serial, "serial_for_url", lambda url, **kw: _Writes(real(url, **kw), written)
    )
    for kw in ({"key": monitor}, {"key": emulator.key, "role": "service"}):
        with pytest.raises(pumpguard.UsageError, match="supervision is the clinician's role"):
            pumpguard.connect(emulator.port, timeout=T, supervise=5, **kw)
    assert written == []  # not even HELLO
    with pumpguard.connect(emulator.port, key=monitor, timeout=T) as pump:
        before = len(written)
        with (
            pytest.raises(pumpguard.UsageError, match="supervision is the clinician's role"),
            pump.keepalive(2),
        ):
            pass
        with pytest.raises(pumpguard.UsageError, match="supervision is the clinician's role"):
            pump.supervise(5)
        assert len(written) == before
        assert pump.info().counters["forbidden"] == 0
    with pumpguard.connect(emulator.port, key=emulator.key, timeout=T) as pump, pump.keepalive(2):
        assert pump.role == "clinician" and pump.supervise_s == 2


@pytest.mark.system
def test_a_monitor_keys_polling_never_hides_the_silence_of_a_clinician_supervisor(
    emulator, tmp_path
):
    # A bedside display holding only the monitor key, polling STATUS, must not keep the
    # device from raising link_lost while the supervising clinician host is silent
    # (decision (a): the sign of life is the clinician's).
    monitor = keys.KeyFile.load(emulator.key).only(["monitor"]).save(tmp_path / "m.json")
    with (
        pumpguard.connect(emulator.port, key=emulator.key, timeout=T, supervise=2) as clinician,
        pumpguard.connect(emulator.port, key=monitor, timeout=T) as display,
    ):
        start_norepinephrine(clinician)
        emulator.advance(15, keepalive=lambda: display.status(1), step=1)  # clinician silent
        codes = [a.code for a in display.alarms()]
    assert "link_lost" in codes


@pytest.mark.system
def test_a_host_without_the_key_cannot_evict_authenticated_supervisors(emulator, tmp_path):
    # Four authenticated supervising sessions fill the device's authenticated slots: a
    # HELLO without a key finds the slot kept for a handshake and closes none of them;
    # a display's key is refused busy at AUTH (a link error that ran nothing); a
    # clinician's key gets in, in the place of the least recently heard supervisor.
    pumps = [
        pumpguard.connect(emulator.port, key=emulator.key, timeout=T, supervise=60)
        for _ in range(4)
    ]
    raw = RawPort(emulator.port)
    try:
        for p in pumps:
            p._link.request("HEARTBEAT")  # each a confirmed supervisor
        raw.send("HELLO", 1, hello_fields())  # no key: it could never AUTH
        name, reply = raw.answer(1)
        assert name == "HELLO_R", reply
        for p in pumps:
            p._link.request("HEARTBEAT")  # not DeviceReset: the session is still known
        monitor = _copy_key(emulator, tmp_path / "key.json")
        keys.KeyFile.load(monitor).only(["monitor"]).save(str(tmp_path / "monitor.json"))
        with pytest.raises(pumpguard.LinkError, match="no session free: busy") as exc:
            pumpguard.connect(emulator.port, key=str(tmp_path / "monitor.json"), timeout=T)
        assert exc.value.exit_code == 4 and not exc.value.may_have_run
        with pumpguard.connect(emulator.port, key=emulator.key, timeout=T) as bedside:
            assert bedside.status(1).state
        with pytest.raises(pumpguard.DeviceReset):
            pumps[0]._link.request("HEARTBEAT")  # the least recently heard: displaced
    finally:
        raw.close()
        for p in pumps:
            p._link.supervise_s = 0
            p.close()


@pytest.mark.system
def test_four_usb_glitches_of_a_supervising_bedside_app_never_lock_it_out(emulator):
    # A bedside app supervises; its USB port glitches: the port fails, close()'s
    # SUPERVISE 0 goodbye cannot go out, the app reconnects in a new session. The old
    # sessions stay on the device as live supervisors nobody can end. After four of
    # them the clinician's next connection still gets in (in the place of the least
    # recently heard) and its emergency stop runs.
    for _ in range(4):
        pump = pumpguard.connect(emulator.port, key=emulator.key, supervise=2, timeout=T)
        pump._link._port.close()  # the glitch: the port is gone under the app
        pump.close()  # goodbye attempted, failed, suppressed
    with pumpguard.connect(emulator.port, key=emulator.key, timeout=T) as pump:
        start_norepinephrine(pump)
        pump.emergency_stop(1, "clinician")
        assert pump.status(1).state == "stopped"


# -- forged untagged errors, the operator's view ---------------------------------------


class _ForgeAhead:
    """A man in the middle without any key: once armed, it answers the next request the
    host writes with an untagged ERROR of the same seq and sid (the project's own
    codec), ahead of the device's genuine answer, which it lets through."""

    def __init__(self, link, code):
        object.__setattr__(self, "_code", code)
        object.__setattr__(self, "_link", link)
        object.__setattr__(self, "_port", link._port)
        object.__setattr__(self, "armed", False)
        object.__setattr__(self, "forged", b"")

    def write(self, data):
        if self.armed:
            object.__setattr__(self, "armed", False)
            link = self._link
            fields = {"code": self._code, "message": "forged"}
            object.__setattr__(
                self, "forged", messages.to_wire("ERROR", link._seq, fields, sid=link.sid)
            )
        return self._port.write(data)

    def read(self, size=1):
        if self.forged:
            wire = self.forged
            object.__setattr__(self, "forged", b"")
            _await_answer(self._port)  # the genuine request has run on the device meanwhile
            return wire
        return self._port.read(size)

    @property
    def in_waiting(self):
        return len(self.forged) or self._port.in_waiting

    def __getattr__(self, name):
        return getattr(self._port, name)

    def __setattr__(self, name, value):
        if name == "armed":
            object.__setattr__(self, name, value)
        else:
            setattr(self._port, name, value)


@pytest.mark.system
@pytest.mark.parametrize("code", [catalog.ERR_HELLO_REQUIRED, catalog.ERR_AUTH])
def test_an_untagged_error_forged_ahead_of_the_answer_neither_reruns_nor_misleads(emulator, code):
    # hello_required taken at once made Pump._call send the START again in a new
    # session (run twice, the caller told "already running"); auth taken at once said
    # "did NOT run". The device's tagged answer behind the forgery is the answer.
    with pumpguard.connect(emulator.port, key=emulator.key, timeout=T) as pump:
        forger = _ForgeAhead(pump._link, code)
        pump._link._port = forger
        forger.armed = True
        start_norepinephrine(pump)
        starts = [e for e in pump.log() if e.kind == "decision" and "start" in e.text.lower()]
        assert pump.status(1).state == "running"
    assert len(starts) == 1


@pytest.mark.system
def test_a_host_without_the_key_cannot_push_decisions_out_of_the_event_log(emulator):
    # Every refused AUTH is counted; only a few are logged (e9570d3), so a flood of
    # wrong proofs never rotates the clinical decisions out of the log.
    with pumpguard.connect(emulator.port, key=emulator.key, timeout=T) as pump:
        start_norepinephrine(pump)
        kept = [e.seq for e in pump.log() if e.code != "auth_refused"]
    raw = RawPort(emulator.port)
    try:
        seq = 1
        for _ in range(800):
            raw.send("HELLO", seq, hello_fields())
            assert raw.answer(seq)[0] == "HELLO_R"
            raw.send("AUTH", seq + 1, {"proof": os.urandom(16)}, sid=raw.answer_sid)
            assert raw.answer(seq + 1)[0] == "ERROR"
            seq += 2
    finally:
        raw.close()
    with pumpguard.connect(emulator.port, key=emulator.key, timeout=T) as pump:
        left = {e.seq for e in pump.log()}
        assert pump.info().counters["auth_refused"] == 800
    assert set(kept) <= left, f"{len(set(kept) - left)} of {len(kept)} entries pushed out"


# -- messages, the emulator's key line, --insecure emulate ------------------------------


@pytest.mark.system
@pytest.mark.one_runtime("the host's message for a key it lacks; the device answers HELLO")
def test_a_keyfile_error_from_the_api_names_the_api_argument(pump_port, monkeypatch, tmp_path):
    # Board-style: the HELLO left without its AUTH holds a slot HOLD_MS (2 s) on the
    # device, which the plugin's clean-up after this test waits out (board.CLEAN_BUSY_S).
    monkeypatch.setenv("PUMPGUARD_KEYS", str(tmp_path / "empty"))
    monkeypatch.delenv("PUMPGUARD_KEY", raising=False)  # a board run's key file
    with pytest.raises(pumpguard.KeyFileError) as exc:
        pumpguard.connect(pump_port, timeout=T)
    said = str(exc.value)
    assert "connect(port, key=PATH)" in said and "Emulator.key" in said and "--key" in said


def _emulate(*argv, cwd):
    """`pumpguard ...emulate...` until its port line: (its key line, port line)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pumpguard", *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=cwd,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 120)
        assert ready, "the emulator printed nothing"
        return proc.stdout.readline().strip(), proc.stdout.readline().strip()
    finally:
        proc.stdin.write("quit\n")
        proc.stdin.flush()
        proc.wait(timeout=30)


def test_emulate_prints_the_key_path_absolute_and_only_when_the_file_exists(tmp_path):
    key, port = _emulate("emulate", "--state-dir", "rel", cwd=tmp_path)
    assert key == f"key: {tmp_path / 'rel' / 'key.json'}" and port
    os.remove(tmp_path / "rel" / "key.json")
    key, port = _emulate("emulate", "--state-dir", "rel", cwd=tmp_path)
    assert key == f"key: none (state dir {tmp_path / 'rel'} has no host key file key.json)"
    assert port


def test_global_insecure_before_emulate_starts_an_insecure_emulator(tmp_path):
    key, port = _emulate("--insecure", "emulate", "--state-dir", "s", cwd=tmp_path)
    assert key == "key: none (insecure)" and port
    assert not os.path.exists(tmp_path / "s" / "key.json")


def test_the_readme_documents_exit_code_5_key_rotation_and_the_key_line():
    readme = (ROOT / "README.md").read_text()
    assert "| 5 |" in readme and "key rotate" in readme
    assert "Its first line is the port" not in readme  # it is `key: PATH` now
    section = readme.split("## Command line", 1)[1].split("\n## ", 1)[0]
    assert "PUMPGUARD_KEY" in section or "--key" in section  # the walkthrough has a key


# -- hardware in the loop ---------------------------------------------------------------


@pytest.mark.system
@pytest.mark.parametrize("how", ["--pump-key", "PUMPGUARD_KEY"])
def test_hardware_in_the_loop_takes_the_boards_key(emulator, tmp_path, how):
    # The emulator stands in for a board given with --pump-port, with an empty key
    # store: the run finds the key by --pump-key FILE, or PUMPGUARD_KEY.
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"]
    argv += ["tests/test_system_cli.py::test_port_from_the_environment"]
    argv += ["--pump-port", emulator.port]
    env = {**os.environ, "PUMPGUARD_KEYS": str(tmp_path / "empty"), "PUMPGUARD_KEY": ""}
    if how == "--pump-key":
        argv += ["--pump-key", emulator.key]
    else:
        env["PUMPGUARD_KEY"] = emulator.key
    r = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "1 passed" in r.stdout


def test_pump_key_with_several_boards_says_to_use_the_key_store(tmp_path):
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"]
    argv += ["tests/test_layout.py", "--pump-port", "/dev/a", "--pump-port", "/dev/b"]
    argv += ["--pump-key", str(tmp_path / "k.json")]
    r = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode != 0 and "key store" in r.stderr, r.stdout + r.stderr
