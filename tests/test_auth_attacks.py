"""Attacks on the authenticated link from a party holding no key (issue 11's security
review): forged untagged errors, the device made to answer a stranger's frame, an
impersonator claiming the insecure mode, a keyless HELLO flood, and the modes of the
files an emulator writes. Each runs through the real API against both emulator
runtimes; those that take only the port and the key (pump_port, pump_key) are written to
run on a board too (--pump-port), after whatever the last test left there."""

import os
import pathlib
import shutil
import stat
import time

import pumpguard
import pytest
import serial
from pumpguard.api import link as api_link

from protocol import auth, catalog, messages
from protocol.decoder import Decoder
from tests.systemkit import ANSWER_TIMEOUT_S, RawPort, hello_fields, start_norepinephrine

pytestmark = pytest.mark.system
T = ANSWER_TIMEOUT_S


class _Tap:
    """The host's serial port with a stranger on the line: whatever the stranger says
    (`forge(frame)` -> bytes or None, for every frame the host sends) reaches the host
    before the device's own answer. With `suppress`, the stranger also swallows what
    the device sends back to the frame it answered, until the host writes again. The
    stranger holds no key."""

    def __init__(self, real, forge, suppress=False):
        self._real = real
        self._forge = forge
        self._suppress = suppress
        self._swallowing = False
        self._decoder = Decoder()
        self._queued = b""

    def write(self, data):
        self._swallowing = False
        for frame in self._decoder.decode(bytes(data)):
            forged = self._forge(frame)
            if forged:
                self._queued += forged
                self._swallowing = self._suppress
        return self._real.write(data)

    def read(self, n=1):
        if self._queued:
            if not self._suppress:
                # Ahead of the device's answer, which follows at once: the forgery is
                # given once that answer is here (a loaded machine's device may take
                # longer than link.GRACE_S, which is not what these tests are about).
                deadline = time.monotonic() + 3 * T
                while not self._real.in_waiting and time.monotonic() < deadline:
                    time.sleep(0.01)
            out, self._queued = self._queued, b""
            return out
        data = self._real.read(n)
        return b"" if self._swallowing else data

    @property
    def in_waiting(self):
        return len(self._queued) or self._real.in_waiting

    @property
    def timeout(self):
        return self._real.timeout

    @timeout.setter
    def timeout(self, value):
        self._real.timeout = value

    def __getattr__(self, name):
        return getattr(self._real, name)


def _tapped(monkeypatch, forge, suppress=False):
    real = serial.serial_for_url
    monkeypatch.setattr(
        serial, "serial_for_url", lambda url, **kw: _Tap(real(url, **kw), forge, suppress)
    )


def _forged_error(code, msg_id, times=1):
    left = [times]

    def forge(frame):
        if frame.msg_id == catalog.ID[msg_id] and left[0]:
            left[0] -= 1
            fields = {"code": code, "message": "the board refused the key for role clinician"}
            return messages.to_wire("ERROR", frame.seq, fields, sid=frame.sid)  # untagged
        return None

    return forge


def _try_start(pump):
    """start_norepinephrine's PumpguardError, or None if it started."""
    try:
        start_norepinephrine(pump)
    except pumpguard.PumpguardError as exc:
        return exc
    return None


def test_a_forged_untagged_error_auth_never_says_a_start_that_ran_did_not_run(
    pump_port, pump_key, monkeypatch
):
    # A stranger answers the clinician's START first with an untagged ERROR auth: the
    # device's tagged answer that follows is the answer (the START ran, and says so).
    _tapped(monkeypatch, _forged_error(catalog.ERR_AUTH, "START"))
    with pumpguard.connect(pump_port, key=pump_key, timeout=T) as pump:
        exc = _try_start(pump)
        if exc is not None:
            # running, not "not idle": on a board an earlier test may have left it stopped
            ran = pump.status(1).state == "running"
            assert not ran or exc.may_have_run, f"the START ran but the host said: {exc}"
        assert pump.status(1).state == "running"
        assert pump.dropped >= 1  # the forgery, dropped once the tagged answer came


def test_a_forged_untagged_hello_required_never_sends_a_start_twice(emulator, monkeypatch):
    # The same with ERROR hello_required, which on a first attempt says "did not run"
    # (Pump._call then says HELLO and sends the START once more, in a new session).
    # Kept as a fallback, it loses to the device's tagged START_R: one START, started.
    _tapped(monkeypatch, _forged_error(catalog.ERR_HELLO_REQUIRED, "START"))
    with pumpguard.connect(emulator.port, key=emulator.key, timeout=T) as pump:
        exc = _try_start(pump)
        outcome = "started" if exc is None else f"{type(exc).__name__}: {exc}"
        monkeypatch.undo()
    with pumpguard.connect(emulator.port, key=emulator.key, timeout=T) as pump:
        second = [e for e in pump.log() if "cannot start" in e.text]  # the START sent again
        assert pump.status(1).state == "running"
    assert not second and outcome == "started", (outcome, second)


class _DeviceSideWriter(_Tap):
    """A stranger who can only write to the device (a second host on the line): just
    before the host's START, an untagged frame of its own with the host's sid and the
    seq the host's START has."""

    def __init__(self, real):
        super().__init__(real, lambda frame: None)

    def write(self, data):
        for frame in self._decoder.decode(bytes(data)):
            if frame.msg_id == catalog.ID["START"]:
                self._real.write(messages.to_wire("HEARTBEAT", frame.seq, {}, sid=frame.sid))
        return self._real.write(data)


def test_the_devices_answer_to_a_strangers_frame_is_not_taken_for_the_hosts(
    pump_port, pump_key, monkeypatch
):
    # The device's own untagged ERROR auth to the stranger's frame carries the host's
    # sid and seq and comes first; the START's tagged answer after it is the answer.
    real = serial.serial_for_url
    monkeypatch.setattr(
        serial, "serial_for_url", lambda url, **kw: _DeviceSideWriter(real(url, **kw))
    )
    # The device answers the stranger's frame at once and the START after running it:
    # on a loaded machine later than link.GRACE_S (0.25 s) after. Held as long as any
    # answer may take, the untagged ERROR must still lose to the tagged START_R.
    monkeypatch.setattr(api_link, "GRACE_S", T)
    with pumpguard.connect(pump_port, key=pump_key, timeout=T) as pump:
        decision = start_norepinephrine(pump)
        assert decision.rate_ml_h > 0 and pump.status(1).state == "running"


@pytest.mark.needs_emulator  # its own emulator
def test_a_forged_error_auth_that_hides_the_rotations_answer_keeps_the_new_key(
    tmp_path, pump_target, monkeypatch
):
    # A stranger answers KEY with an untagged ERROR auth and swallows the board's KEY_R:
    # the board rotated, the host cannot know. The new key stays in <file>.new (said
    # so), and it is the one that opens a clinician session now.
    with pumpguard.Emulator(state_dir=tmp_path / "state", runtime=pump_target) as emu:
        _tapped(monkeypatch, _forged_error(catalog.ERR_AUTH, "KEY"), suppress=True)
        with (
            pumpguard.connect(emu.port, key=emu.key, role="service", timeout=T) as pump,
            pytest.raises(pumpguard.AuthError, match=r"MAY HAVE RUN.*it is in .*key\.json\.new"),
        ):
            pump.rotate_key("clinician")
        monkeypatch.undo()
        with pumpguard.connect(emu.port, key=f"{emu.key}.new", role="clinician", timeout=T):
            pass
        with pytest.raises(pumpguard.AuthError, match="refused the key"):
            pumpguard.connect(emu.port, key=emu.key, role="clinician", timeout=T)


@pytest.mark.needs_emulator  # its own emulator
def test_a_rotation_never_overwrites_the_new_key_an_unknown_one_kept(
    tmp_path, pump_target, monkeypatch
):
    # Rotation 1 (clinician) ends unknown: the board rotated, key.json.new holds its new
    # clinician key. A second rotation (monitor) with the key file as it is must not
    # write key.json.new over it (the board's clinician key would be in no file): it is
    # refused before anything is sent, naming the file and how to settle it.
    with pumpguard.Emulator(state_dir=tmp_path / "state", runtime=pump_target) as emu:
        new = f"{emu.key}.new"
        _tapped(monkeypatch, _forged_error(catalog.ERR_AUTH, "KEY"), suppress=True)
        with (
            pumpguard.connect(emu.port, key=emu.key, role="service", timeout=T) as pump,
            pytest.raises(pumpguard.AuthError, match="MAY HAVE RUN"),
        ):
            pump.rotate_key("clinician")
        monkeypatch.undo()
        kept = pathlib.Path(new).read_bytes()
        with (
            pumpguard.connect(emu.port, key=emu.key, role="service", timeout=T) as pump,
            pytest.raises(pumpguard.UsageError) as info,
        ):
            pump.rotate_key("monitor")
        said = str(info.value)
        assert new in said and "new clinician key" in said and "--role clinician" in said
        assert f"mv {new} {emu.key}" in said and f"delete {new}" in said
        assert "nothing was sent" in said
        assert pathlib.Path(new).read_bytes() == kept
        with pumpguard.connect(emu.port, key=new, role="clinician", timeout=T):
            pass  # the board's clinician key: still in a file
        with pumpguard.connect(emu.port, key=emu.key, role="monitor", timeout=T):
            pass  # the monitor key was not rotated
        os.replace(new, emu.key)  # settled as the message says: a rotation starts again
        with pumpguard.connect(emu.port, key=emu.key, role="service", timeout=T) as pump:
            assert pump.rotate_key("monitor") == emu.key
        assert not os.path.exists(new)


@pytest.mark.needs_emulator  # its own emulator
def test_a_rotation_leaves_the_emulators_keys_private(tmp_path, pump_target):
    # The board's store "keys" is rewritten through the store port (keys.new, then a
    # rename): under the usual umask 022 that made it 0644, every role's key readable
    # by every local user. The emulator runs with umask 077.
    old_umask = os.umask(0o022)
    try:
        with pumpguard.Emulator(state_dir=tmp_path / "state", runtime=pump_target) as emu:
            with pumpguard.connect(emu.port, key=emu.key, role="service", timeout=T) as pump:
                pump.rotate_key("clinician")
            for path in (emu.state_dir, os.path.join(emu.state_dir, "keys"), emu.key):
                mode = stat.S_IMODE(os.stat(path).st_mode)
                assert mode & 0o077 == 0, f"{path} is {stat.filemode(mode)}"
    finally:
        os.umask(old_umask)


def _impersonator(board_id, board):
    """A stranger who answers first, as a board in the insecure mode (auth 0, every
    key 32 zero bytes): HELLO_R, AUTH_R and STATUS_R, tagged under the zero key."""
    state = {}

    def forge(frame):
        name = catalog.NAME[frame.msg_id]
        if name == "HELLO":
            hello = messages.decode(frame.msg_id, frame.payload)
            fields = {
                "protocol": catalog.PROTOCOL_VERSION,
                "schema": catalog.SCHEMA_HASH,
                "firmware": "pumpguard 0.1.0",
                "board": board,
                "channels": 2,
                "library": "pumpguard-adult-icu-vasoactive",
                "library_version": "0.1.0",
                "library_crc": 0,
                "boot_id": 1,
                "replay_window": 1,
                "max_payload": 240,
                "bundle": "",
                "board_id": board_id,
                "auth": 0,
                "role": hello["role"],
                "nonce": bytes(16),
            }
            payload = messages.encode("HELLO_R", fields)
            th = auth.transcript(frame.payload, 0x7777, payload)
            state.update(th=th, ks=auth.session_key(bytes(32), th), ctr=0)
            return messages.to_wire("HELLO_R", frame.seq, fields, sid=0x7777)
        if frame.sid != 0x7777:
            return None
        state["ctr"] += 1
        kw = {"sid": 0x7777, "key": state["ks"], "ctr": state["ctr"], "sender": auth.DEVICE}
        if name == "AUTH":
            proof = auth.proof(state["ks"], state["th"], auth.DEVICE)
            return messages.to_wire("AUTH_R", frame.seq, {"proof": proof}, **kw)
        if name == "STATUS":
            fields = {
                "ch": 1,
                "state": "stopped",
                "drug": "",
                "dose": 0,
                "dose_unit": "",
                "rate": 0,
                "volume_infused": 0,
                "volume_left": 0,
                "time_to_empty_s": None,
                "alarms": [],
                "taper_next_ms": None,
            }
            return messages.to_wire("STATUS_R", frame.seq, fields, **kw)
        return None

    return forge


@pytest.mark.parametrize(
    ("board", "given", "said"),
    [
        ("pico", True, "says it is board 'pico': only the emulator has that mode"),
        ("emulator", True, "has keys .key file"),  # the key file given names the board
        ("emulator", False, "has keys .key file"),  # the key store's does
    ],
)
@pytest.mark.one_runtime("the host judges the impersonator's HELLO_R; the device never sees it")
def test_insecure_never_takes_a_keyless_answer_for_a_board_with_keys(
    pump_port, pump_key, monkeypatch, tmp_path, board, given, said
):
    # A stranger answering HELLO first with auth 0 would become the pump as far as the
    # host can tell (a running channel reads "stopped"): --insecure takes auth 0 only
    # from a device that says it is the emulator, for a board id no key file names.
    # Board-style: the device holds the handshakes of the HELLOs the stranger answered
    # for HOLD_MS (2 s), which the plugin's clean-up after this test waits out
    # (board.CLEAN_BUSY_S).
    from pumpguard.api import keys

    with pumpguard.connect(pump_port, key=pump_key, timeout=T) as pump:
        start_norepinephrine(pump)
        key = pump.key_path  # the board's key file, wherever the run found it
    board_id = keys.KeyFile.load(key).board_id
    # "the key store's": a store holding the board's key file (a board run's store may
    # have none), and no PUMPGUARD_KEY (a board run's --pump-key) to stand for it
    store = tmp_path / "keys"
    store.mkdir()
    shutil.copy(key, store / f"{board_id}.json")  # its 0600 mode too
    monkeypatch.setenv("PUMPGUARD_KEYS", str(store))
    monkeypatch.delenv("PUMPGUARD_KEY", raising=False)
    _tapped(monkeypatch, _impersonator(board_id, board))
    with pytest.raises(pumpguard.AuthError, match=f"the device says it runs without keys.*{said}"):
        pumpguard.connect(
            pump_port,
            key=key if given else None,
            insecure=True,
            timeout=T,
            boot_wait=0,
        )
    with pytest.raises(pumpguard.AuthError, match="pass --insecure"):
        pumpguard.connect(pump_port, timeout=T, boot_wait=0)  # not even asked for


def test_a_keyless_hello_flood_is_no_sign_of_life_of_the_supervisor(emulator):
    # The supervising clinician host goes silent (its port closed without a goodbye),
    # the emulator raises link_lost; a stranger with no key says HELLO five times
    # (never AUTH): no link_back until a host with a key speaks (decision (a):
    # supervision and its sign of life are the clinician's).
    pump = pumpguard.connect(emulator.port, key=emulator.key, timeout=T, supervise=1)
    start_norepinephrine(pump)
    pump._link.close()  # the host dies: no SUPERVISE 0
    emulator.advance(15)
    raw = RawPort(emulator.port)
    try:
        for n in range(5):
            raw.send("HELLO", 100 + n, hello_fields(host=f"x{n}", supervise_s=1))
            raw.answer(100 + n)
    finally:
        raw.close()
    emulator.advance(5)  # below the 10 s timeout: nothing else raises or clears it
    with pumpguard.connect(emulator.port, key=emulator.key, timeout=T) as check:
        now = check.info().uptime_ms
        log = check.log()
    assert [e for e in log if e.code == "link_lost"], log[-5:]
    early = [e for e in log if e.code == "link_back" and e.at_ms < now - 3000]
    assert not early, f"link_back at {early[0].at_ms} ms, before any host with a key spoke ({now})"


def test_a_forged_refusal_of_auth_loses_to_the_devices_auth_r(emulator, monkeypatch):
    # A stranger answers each AUTH of a supervising connect(supervise=2) with an untagged
    # ERROR auth ahead of the device's AUTH_R. Before AUTH_R too it is only a fallback:
    # the device's tagged AUTH_R that follows wins, and the session is the host's (no
    # authenticated session left on the device that no host speaks in).
    _tapped(monkeypatch, _forged_error(catalog.ERR_AUTH, "AUTH", times=4))
    for _ in range(4):
        with pumpguard.connect(emulator.port, key=emulator.key, supervise=2, timeout=T) as pump:
            assert pump.role == "clinician" and pump.dropped == 1
            assert pump.status(1).state == "idle"
    monkeypatch.undo()
    with pumpguard.connect(emulator.port, key=emulator.key, timeout=T) as pump:
        pump.emergency_stop(1, "clinician")


def test_a_handshake_a_stranger_ends_leaves_no_supervisor_behind(emulator, monkeypatch):
    # The stranger also swallows the device's AUTH_R: connect() gives up (AuthError),
    # though the device authenticated the session. Supervision is declared only after
    # AUTH_R (HELLO's supervise_s is 0, SUPERVISE is the first tagged request), so that
    # session supervises nothing: four such handshakes never fill the device with
    # supervisors a HELLO cannot close, and the bedside host still gets in.
    _tapped(monkeypatch, _forged_error(catalog.ERR_AUTH, "AUTH", times=4), suppress=True)
    for _ in range(4):
        with pytest.raises(pumpguard.AuthError):
            pumpguard.connect(emulator.port, key=emulator.key, supervise=2, timeout=T)
    monkeypatch.undo()
    emulator.advance(60)  # a supervisor left behind would have raised link_lost by now
    with pumpguard.connect(emulator.port, key=emulator.key, timeout=T) as pump:
        pump.emergency_stop(1, "clinician")
        assert "link_lost" not in [a.code for a in pump.alarms()]


def test_an_emergency_stop_after_a_device_reset_goes_out_again_in_a_new_session(emulator):
    # The device's own untagged hello_required after a reset is held only a short grace
    # for a tagged answer (test_host_keys checks the waits), then the ESTOP goes out
    # again in a new session: it runs, once.
    with pumpguard.connect(emulator.port, key=emulator.key, timeout=T) as pump:
        start_norepinephrine(pump)
        emulator.factory_reset()
        pump.emergency_stop(1, "clinician")
        assert pump._link.resets == 1
        estops = [e for e in pump.log() if e.kind == "emergency_stop" and e.code == "received"]
        assert len(estops) == 1


@pytest.mark.system
def test_a_forged_untagged_hello_required_never_reruns_or_misreports_a_start_that_ran(
    pump_port, pump_key, monkeypatch
):
    # A stranger answers the clinician's START with an untagged ERROR hello_required and
    # swallows the device's tagged START_R (or the device's answer is slower than
    # link.GRACE_S, 0.25 s). Untagged, it proves nothing in an authenticated session: the
    # START ran, and the host must say it MAY HAVE RUN, never send it again (the device
    # did not reset: the new HELLO_R's boot_id says so).
    _tapped(monkeypatch, _forged_error(catalog.ERR_HELLO_REQUIRED, "START"), suppress=True)
    with pumpguard.connect(pump_port, key=pump_key, timeout=T) as pump:
        try:
            start_norepinephrine(pump)
            exc = None
        except pumpguard.PumpguardError as e:
            exc = e
        monkeypatch.undo()
        # running, not "not idle": on a board an earlier test may have left it stopped
        assert pump.status(1).state == "running"  # the device ran the first START
        assert exc is not None and getattr(exc, "may_have_run", False), (
            f"the START ran, but the host reported {type(exc).__name__ if exc else 'success'}: "
            f"{exc}"
        )


@pytest.mark.system
def test_a_forged_untagged_hello_required_never_runs_a_titration_twice(emulator, monkeypatch):
    # The same forgery on a TITRATE: it must run once (one "received" titration in the
    # device's own log), never again in a new session behind the caller's back.
    with pumpguard.connect(emulator.port, key=emulator.key, timeout=T) as pump:
        start_norepinephrine(pump)
    emulator.advance(600)
    _tapped(monkeypatch, _forged_error(catalog.ERR_HELLO_REQUIRED, "TITRATE"), suppress=True)
    with pumpguard.connect(emulator.port, key=emulator.key, timeout=T) as pump:
        try:
            said = pump.titrate(1, "0.12", "mcg/kg/min")
        except pumpguard.PumpguardError as e:
            said = e
        monkeypatch.undo()
        runs = [e for e in pump.log() if e.kind == "titrate" and e.code == "received"]
        assert len(runs) == 1, (
            f"one TITRATE sent by the caller ran {len(runs)} times (caller told: {said!r})"
        )
