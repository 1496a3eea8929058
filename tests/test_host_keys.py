"""The host's keys (api/keys.py) and the link's checks of the device (api/link.py),
without an emulator: key files and their errors, the key store, export, rotation, and
answers that fail their tag or counter dropped, never taken for the answer."""

import json
import os
import stat
import subprocess
import sys

import pytest
from pumpguard.api import keys
from pumpguard.api.client import Pump
from pumpguard.api.link import GRACE_S, Link
from pumpguard.errors import AuthError, KeyFileError, LinkError, NoAnswer, UsageError
from pumpguard.testing import ANSWER_TIMEOUT_S as T

from protocol import auth, catalog, messages
from protocol.decoder import Decoder
from tests.test_protocol_link import FakeDevice


@pytest.fixture
def device():
    dev = FakeDevice()
    yield dev
    dev.server.close()


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def _write(path, data, mode=0o600):
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    os.chmod(path, mode)
    return path


def test_a_key_file_is_saved_0600_atomically_and_read_back(tmp_path):
    made = keys.KeyFile.generate()
    path = made.save(tmp_path / "sub" / "k.json")
    assert _mode(path) == 0o600
    assert os.listdir(tmp_path / "sub") == ["k.json"]  # no temporary file left
    back = keys.KeyFile.load(path)
    assert (back.board_id, back.keys, back.path) == (made.board_id, made.keys, path)
    assert back.roles == ("monitor", "clinician", "service")
    assert all(len(k) == auth.KEY for k in back.keys.values())
    assert len({k for k in back.keys.values()}) == 3  # one random key per role


def test_a_key_never_shows_in_a_repr(tmp_path):
    made = keys.KeyFile.generate()
    text = repr(made) + str(made)
    assert not any(k.hex() in text for k in made.keys.values())
    assert made.board_id in text


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_a_key_file_others_may_read_or_change_is_refused(tmp_path, mode):
    path = keys.KeyFile.generate().save(tmp_path / "k.json")
    os.chmod(path, mode)
    with pytest.raises(KeyFileError, match=rf"key file {path}: permissions .*chmod 600 {path}"):
        keys.KeyFile.load(path)


BOARD = "0123456789abcdef"
GOOD = "ab" * 32


@pytest.mark.parametrize(
    "data, said",
    [
        ("not json", "not JSON"),
        ([1, 2], 'exactly "board_id" and "keys", found a JSON list'),
        ({"keys": {"monitor": GOOD}}, "found keys 'keys'"),
        ({"board_id": "XYZ", "keys": {"monitor": GOOD}}, "board_id must be 16 lowercase hex"),
        ({"board_id": BOARD.upper(), "keys": {"monitor": GOOD}}, "board_id must be"),
        ({"board_id": BOARD, "keys": {}}, "must name at least one of monitor"),
        ({"board_id": BOARD, "keys": {"admin": GOOD}}, "unknown role 'admin'"),
        ({"board_id": BOARD, "keys": {"monitor": "ab" * 16}}, "monitor key must be 64"),
        ({"board_id": BOARD, "keys": {"clinician": 5}}, "clinician key must be 64"),
        ({"board_id": BOARD, "keys": {"monitor": GOOD}, "x": 1}, "found keys"),
    ],
)
def test_a_bad_key_file_says_which_file_and_what_is_wrong(tmp_path, data, said):
    path = _write(tmp_path / "k.json", data)
    with pytest.raises(KeyFileError, match="key file .*k.json") as exc:
        keys.KeyFile.load(path)
    assert said in str(exc.value)
    assert "abab" not in str(exc.value)  # never the key itself
    assert exc.value.exit_code == 2


def test_a_missing_key_file_is_named(tmp_path):
    with pytest.raises(KeyFileError, match=r"k.json: cannot read it \(No such file"):
        keys.KeyFile.load(tmp_path / "k.json")


def test_a_file_without_the_role_asked_for_says_what_it_holds(tmp_path):
    monitor = keys.KeyFile.generate().only(["monitor"])
    monitor.save(tmp_path / "m.json")
    with pytest.raises(KeyFileError, match="holds no clinician key .*holds: monitor"):
        monitor.key("clinician")
    with pytest.raises(KeyFileError, match="needs every role's key; it lacks clinician, service"):
        monitor.board_json()
    assert monitor.default_role() == "monitor"


def test_the_store_is_pumpguard_keys_else_xdg_config_home(tmp_path, monkeypatch):
    monkeypatch.setenv("PUMPGUARD_KEYS", str(tmp_path / "store"))
    assert keys.store_dir() == str(tmp_path / "store")
    monkeypatch.delenv("PUMPGUARD_KEYS")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert keys.store_dir() == str(tmp_path / "xdg" / "pumpguard" / "keys")
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert keys.store_dir() == str(tmp_path / "home" / ".config" / "pumpguard" / "keys")


def test_the_store_is_looked_up_by_board_id(tmp_path, monkeypatch):
    monkeypatch.setenv("PUMPGUARD_KEYS", str(tmp_path))
    made = keys.KeyFile.generate()
    made.save(keys.store_path(made.board_id))
    assert keys.lookup(made.board_id).keys == made.keys
    assert keys.lookup("fedcba9876543210") is None
    with pytest.raises(KeyFileError, match="not 16 lowercase hex"):
        keys.store_path("../../etc/passwd")  # a board id is never a path out of the store
    other = keys.KeyFile.generate()
    other.save(keys.store_path("fedcba9876543210"))  # filed under another board's id
    with pytest.raises(KeyFileError, match=f"is for board {other.board_id}, not fedcba"):
        keys.lookup("fedcba9876543210")


def test_pumpguard_key_names_the_key_file_when_none_is_given(tmp_path, monkeypatch):
    path = keys.KeyFile.generate().save(tmp_path / "k.json")
    monkeypatch.setenv("PUMPGUARD_KEY", str(path))
    assert keys.given(None).path == str(path)
    monkeypatch.setenv("PUMPGUARD_KEY", "")
    assert keys.given(None) is None


def _cli(*args, **env):
    return subprocess.run(
        [sys.executable, "-m", "pumpguard", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PUMPGUARD_KEY": "", **env},
        timeout=60,
    )


def test_export_writes_only_the_roles_asked_for_0600_and_never_over_a_file(tmp_path):
    made = keys.KeyFile.generate()
    path = made.save(tmp_path / "all.json")
    out = tmp_path / "monitor.json"
    r = _cli("--key", path, "key", "export", "monitor", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"wrote the monitor key of board {made.board_id} to {out}"
    assert not any(k.hex() in r.stdout + r.stderr for k in made.keys.values())
    exported = keys.KeyFile.load(out)
    assert (exported.board_id, exported.keys) == (made.board_id, {"monitor": made.keys["monitor"]})
    assert _mode(out) == 0o600
    before = out.read_bytes()
    r = _cli("--key", path, "key", "export", "monitor", "clinician", "--out", str(out))
    assert r.returncode == 2 and "exists" in r.stderr
    assert out.read_bytes() == before  # changed nothing
    r = _cli("--key", str(out), "key", "export", "service", "--out", str(tmp_path / "s.json"))
    assert r.returncode == 2 and "holds no service key" in r.stderr
    assert not (tmp_path / "s.json").exists()


def test_a_bad_key_file_on_the_command_line_is_a_usage_error_before_any_port(tmp_path):
    bad = _write(tmp_path / "k.json", "{}")
    r = _cli("--port", "/dev/nonexistent", "--key", str(bad), "status")
    assert r.returncode == 2
    assert r.stderr.startswith(f"pumpguard: key file {bad}: expected an object")


# -- rotation, against the scripted device --------------------------------------------


def test_rotation_writes_the_new_key_to_dot_new_first_then_the_file(device, tmp_path):
    path = keys.KeyFile(device.keyfile.board_id, device.keyfile.keys).save(tmp_path / "k.json")
    seen = {}
    answer = device._answer

    def check_new_file_first(f):
        if catalog.NAME[f.msg_id] == "KEY":  # the key file .new holds it before it is sent
            seen["new"] = keys.KeyFile.load(f"{path}.new").keys["clinician"]
            seen["file"] = keys.KeyFile.load(path).keys["clinician"]
        return answer(f)

    device._answer = check_new_file_first
    with Pump(device.url, key=path, role="service", timeout=T) as pump:
        assert pump.rotate_key("clinician") == path
    new = device.rotated[0]
    assert seen == {"new": new, "file": device.keyfile.keys["clinician"]}
    assert keys.KeyFile.load(path).keys == {**device.keyfile.keys, "clinician": new}
    assert not os.path.exists(f"{path}.new") and _mode(path) == 0o600


def test_a_rotation_whose_answer_is_lost_keeps_the_new_key_in_dot_new(device, tmp_path):
    path = keys.KeyFile(device.keyfile.board_id, device.keyfile.keys).save(tmp_path / "k.json")
    with Pump(device.url, key=path, role="service", timeout=T, attempts=2) as pump:
        pump._link.timeout = 0.2  # answered handshake above; only the lost answers wait
        device.drop = 2
        with pytest.raises(LinkError, match=rf"MAY HAVE RUN.*it is in {path}.new") as exc:
            pump.rotate_key("monitor")
    assert exc.value.may_have_run
    assert keys.KeyFile.load(path).keys == device.keyfile.keys  # the old key, unchanged
    assert keys.KeyFile.load(f"{path}.new").keys["monitor"] == device.rotated[0]


def test_rotation_needs_a_service_session(device):
    with (
        Pump(device.url, timeout=T) as pump,  # clinician, from the store
        pytest.raises(UsageError, match="needs the service key"),
    ):
        pump.rotate_key("monitor")
    assert "KEY" not in [name for name, _seq in device.runs]


# -- what the link believes -----------------------------------------------------------


def _lying(device, make):
    """Answer every request after AUTH with make(f) instead of the device's answer."""
    answer = device._answer

    def lie(f):
        if catalog.NAME[f.msg_id] in ("HELLO", "AUTH"):
            return answer(f)
        answer(f)  # it runs
        return make(f)

    device._answer = lie


HEARTBEAT_R = {"uptime_ms": 1, "boot_id": 1, "active_alarms": 0}


@pytest.mark.parametrize(
    "forge",
    [
        # untagged: not an ERROR the device may send without a tag
        lambda d, f: messages.to_wire("HEARTBEAT_R", f.seq, HEARTBEAT_R, sid=f.sid),
        # tagged under another key
        lambda d, f: messages.to_wire(
            "HEARTBEAT_R", f.seq, HEARTBEAT_R, sid=f.sid, key=bytes(32), ctr=99, sender=b"D"
        ),
        # tagged as the host would (the device's answer must say it is the device's)
        lambda d, f: messages.to_wire(
            "HEARTBEAT_R", f.seq, HEARTBEAT_R, sid=f.sid, key=d.ks, ctr=99, sender=b"H"
        ),
        # the right key and seq, a counter not newer than the last accepted (AUTH_R's
        # 1): an old answer of the session replayed under this request's seq
        lambda d, f: messages.to_wire(
            "HEARTBEAT_R", f.seq, HEARTBEAT_R, sid=f.sid, key=d.ks, ctr=1, sender=b"D"
        ),
        # an untagged ERROR other than hello_required and auth
        lambda d, f: messages.to_wire("ERROR", f.seq, {"code": 2, "message": "x"}, sid=f.sid),
    ],
    ids=["untagged", "other-key", "host-sender", "stale-ctr", "untagged-error"],
)
def test_an_answer_that_fails_its_tag_or_counter_is_dropped(device, forge):
    with Link(device.url, timeout=T, attempts=2) as link:
        link.hello()
        link.timeout = 0.2  # the handshake was answered; the dropped answers wait this
        _lying(device, lambda f: forge(device, f))
        with pytest.raises(NoAnswer, match="MAY HAVE RUN"):
            link.request("HEARTBEAT")
        assert link.dropped == 2  # each attempt's answer, never taken


def test_untagged_hello_required_and_auth_errors_are_believed(device):
    with Link(device.url, timeout=T) as link:
        link.hello()
        device.reboot()  # the device forgot the session: hello_required, untagged
        with pytest.raises(LinkError, match="does not know this session"):
            link.request("HEARTBEAT")
        link.hello()
        _lying(
            device,
            lambda f: messages.to_wire(
                "ERROR", f.seq, {"code": catalog.ERR_AUTH, "message": "wrong tag"}, sid=f.sid
            ),
        )
        with pytest.raises(AuthError, match="wrong tag; the command MAY HAVE RUN") as exc:
            link.request("HEARTBEAT")
        # Untagged, so anyone on the line could have sent it ahead of the device's own
        # answer: the request may have run all the same, and the host says so.
        assert exc.value.exit_code == 5 and exc.value.may_have_run
        assert link.dropped == 0


class _TimeoutSpy:
    """The link's port, recording every read timeout the link sets once a whole frame
    has come in (the untagged answer it then holds as a fallback)."""

    def __init__(self, port):
        object.__setattr__(self, "_port", port)
        object.__setattr__(self, "_decoder", Decoder())
        object.__setattr__(self, "framed", False)
        object.__setattr__(self, "after", [])

    def read(self, size=1):
        data = self._port.read(size)
        if self._decoder.decode(data):
            object.__setattr__(self, "framed", True)
        return data

    def __getattr__(self, name):
        return getattr(self._port, name)

    def __setattr__(self, name, value):
        if name == "timeout" and self.framed:
            self.after.append(value)
        setattr(self._port, name, value)


def test_an_untagged_answer_is_held_only_a_short_grace_not_the_attempts_timeout(device):
    # After a reset the device answers untagged hello_required: the link holds it for a
    # tagged answer only GRACE_S (never the attempt's whole 3 s), then believes it. The
    # reads it waits on say so, whatever the machine's speed.
    with Link(device.url, timeout=3.0) as link:
        link.hello()
        device.reboot()
        spy = link._port = _TimeoutSpy(link._port)
        with pytest.raises(LinkError, match="does not know this session"):
            link.request("HEARTBEAT")
    assert spy.framed
    assert all(t <= GRACE_S for t in spy.after), spy.after


def test_a_device_that_fails_its_proof_is_refused(device):
    answer = device._answer

    def wrong_proof(f):
        wire = answer(f)
        if catalog.NAME[f.msg_id] == "AUTH":
            device.ctr = 0
            return device.wire("AUTH_R", f.seq, {"proof": bytes(16)})
        return wire

    device._answer = wrong_proof
    with pytest.raises(AuthError, match="the device failed its proof for role clinician"):
        Pump(device.url, timeout=T)


def test_a_key_file_of_another_board_is_never_sent(device, tmp_path):
    other = keys.KeyFile.generate().save(tmp_path / "other.json")
    sent = []
    answer = device._answer
    device._answer = lambda f: (sent.append(catalog.NAME[f.msg_id]), answer(f))[1]
    board = device.keyfile.board_id
    with pytest.raises(AuthError, match=f"is for board .*but the device is board {board}"):
        Pump(device.url, key=other, timeout=T)
    assert sent == ["HELLO"]  # no AUTH: no proof made with the other board's key


def test_no_key_for_the_board_says_where_to_put_one(device, monkeypatch, tmp_path):
    monkeypatch.setenv("PUMPGUARD_KEYS", str(tmp_path))
    board = device.keyfile.board_id
    with pytest.raises(KeyFileError, match=f"no key for board {board}: give --key"):
        Pump(device.url, timeout=T)


def test_the_role_defaults_to_what_the_store_s_key_file_holds(device, tmp_path):
    monitor = device.keyfile.only(["monitor"])
    monitor.save(keys.store_path(device.keyfile.board_id))  # the store holds monitor only
    with Pump(device.url, timeout=T) as pump:
        assert pump.role == "monitor"
    # HELLO as clinician (the guess), then again as the role the file holds
    assert [h["role"] for h in device.hellos] == [2, 1]


def test_an_emulator_state_dir_gets_keys_once_and_is_of_one_kind(tmp_path):
    from pumpguard.emulator import server

    keyed = tmp_path / "keyed"
    keyed.mkdir()
    path = server.provision(str(keyed))
    made = keys.KeyFile.load(path)
    board = json.loads((keyed / "keys").read_text())
    assert board == {"board_id": made.board_id, **{r: made.keys[r].hex() for r in keys.ROLES}}
    assert _mode(keyed / "keys") == 0o600
    assert server.provision(str(keyed)) == path  # the next start: the same keys
    assert keys.KeyFile.load(path).keys == made.keys
    with pytest.raises(UsageError, match="holds a board with keys: --insecure needs"):
        server.provision(str(keyed), insecure=True)
    assert json.loads((keyed / "keys").read_text()) == board  # changed nothing
    (keyed / "keys").unlink()  # the board lost its keys file: it stays so (keys_missing)
    assert server.provision(str(keyed)) == path and not (keyed / "keys").exists()

    insecure = tmp_path / "insecure"
    insecure.mkdir()
    assert server.provision(str(insecure), insecure=True) is None
    assert json.loads((insecure / "keys").read_text())["insecure"] is True
    assert os.listdir(insecure) == ["keys"]
    with pytest.raises(UsageError, match="made with --insecure"):
        server.provision(str(insecure))
