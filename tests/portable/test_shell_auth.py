# The authenticated link on the device (issue 11; protocol/SPEC.md, the handshake):
# only a host that proved its role's key runs anything, every frame after AUTH carries
# a tag over a counter that only grows, and a role runs only what it may. Through the
# shell's own loop on dummy ports, on CPython and on MicroPython alike.
from binascii import hexlify

from boards import pico
from firmware import main as firmware_main
from protocol import auth, catalog, messages
from protocol.decoder import Decoder
from tests.portable.coreview import entries
from tests.portable.shellkit import (
    BOARD_ID,
    BOOT_ID,
    KEYS,
    NOREPI,
    Host,
    Store,
    flip_tag,
    hello_fields,
    keys_file,
    ports,
    shell,
)

_ERR_AUTH = catalog.ERR_AUTH
_NO_BOARD = "0000000000000000"


def _device(store=None):
    p = ports(store)
    return shell(p), p


def _starts(sh):
    """How many STARTs the core ran (its log's start entries)."""
    return len([e for e in entries(sh.core.log) if e[3] == "start"])


def _codes(sh):
    return [a.code for a in sh.core.alarms()]


def _counters(host):
    name, info = host.request("INFO", {})
    assert name == "INFO_R", info
    return (info["auth_refused"], info["bad_tag"], info["stale_ctr"], info["forbidden"])


def _untagged(host):
    """The last answer's frame: untagged, and its fields."""
    (f,) = [f for f in host.raw() if not catalog.is_event(f.msg_id)]
    return f.tag, catalog.NAME[f.msg_id], messages.decode(f.msg_id, f.payload)


def test_a_start_without_a_tag_is_refused_and_not_run():
    sh, p = _device()
    host = Host(sh, p)
    host.hello()
    host.seq += 1
    host.send_wire(messages.to_wire("START", host.seq, NOREPI, sid=host.sid))  # no A flag
    tag, name, fields = _untagged(host)
    assert (tag, name, fields["code"]) == (None, "ERROR", _ERR_AUTH), fields
    assert "without a tag" in fields["message"]
    assert _starts(sh) == 0 and p["motors"][0].rate == 0
    assert _counters(host) == (0, 1, 0, 0)


def test_before_auth_nothing_runs_tagged_or_not():
    sh, p = _device()
    host = Host(sh, p)
    host.hello(authenticate=False)
    host.seq += 1
    host.send_wire(host.session.wire("START", host.seq, NOREPI))  # tagged under Ks, no AUTH
    tag, name, fields = _untagged(host)
    assert (tag, name, fields["code"]) == (None, "ERROR", _ERR_AUTH), fields
    assert "not authenticated" in fields["message"]
    assert _starts(sh) == 0 and sh.bad_tag == 1


def test_every_single_bit_flip_of_a_tag_is_refused_and_not_run():
    sh, p = _device()
    host = Host(sh, p)
    host.hello()
    wire = host.wire("START", NOREPI)
    for bit in range(8 * auth.TAG):
        host.send_wire(flip_tag(wire, bit))
        tag, name, fields = _untagged(host)
        assert (tag, name, fields["code"]) == (None, "ERROR", _ERR_AUTH), (bit, fields)
    assert _starts(sh) == 0 and p["motors"][0].rate == 0
    assert sh.bad_tag == 8 * auth.TAG
    host.send_wire(wire)  # the frame itself still runs: nothing above moved its counter
    assert host.answer(host.seq)[0] == "START_R"
    assert _starts(sh) == 1
    assert _counters(host) == (0, 8 * auth.TAG, 0, 0)


def test_a_counter_not_newer_than_the_last_is_refused_untagged_and_not_run():
    # Untagged: a replay must not spend the device's own counters (no host waits on an
    # old request, and replays could otherwise drive the session to its end).
    sh, p = _device()
    host = Host(sh, p)
    host.hello()
    assert host.request("STATUS", {"ch": 1})[0] == "STATUS_R"  # counter 1
    spent = sh.sessions.device_ctr[sh.sessions.find(host.sid)]
    last = host.session.ctr
    host.seq += 1
    host.send_wire(host.session.wire("START", host.seq, NOREPI, ctr=last))  # a new seq
    tag, name, fields = _untagged(host)
    assert (tag, name, fields["code"]) == (None, "ERROR", catalog.ERR_STALE), fields
    assert "counter" in fields["message"]
    assert sh.sessions.device_ctr[sh.sessions.find(host.sid)] == spent
    assert _starts(sh) == 0
    assert _counters(host) == (0, 0, 1, 0)


def test_a_whole_recorded_session_replayed_into_a_new_session_runs_nothing():
    # A host's whole session recorded off the wire (HELLO, AUTH, START, TITRATE, STOP),
    # then played back after a reset: first on its own, then into a session a genuine
    # host opened with the same sid. Nothing of it runs.
    store = Store()
    sh, p = _device(store)
    host = Host(sh, p)
    recorded = []
    for name, fields in (
        ("HELLO", hello_fields()),
        ("AUTH", {}),
        ("START", NOREPI),
        ("STATUS", {"ch": 1}),
        ("STOP", {"ch": 1}),
    ):
        wire = host.wire(name, fields)
        recorded.append(wire)
        host.send_wire(wire)
        assert host.answer(host.seq, name == "HELLO")[0] == name + "_R"
    assert _starts(sh) == 1
    sh, p = _device(store)  # a power cycle: the same store, the same boot id
    victim = Host(sh, p)
    for wire in recorded:
        victim.send_wire(wire)
    answers = [f for f in victim.raw() if not catalog.is_event(f.msg_id)]
    assert len(answers) == len(recorded)  # answered, every one
    assert [f.tag for f in answers] == [None] * len(recorded)  # none under a key
    assert sh.auth_refused == 1  # the replayed AUTH: the device's nonce is new
    assert _commands(sh) == []
    sh, p = _device(store)  # again, now into a session a genuine host opened
    genuine = Host(sh, p)
    genuine.hello()
    assert genuine.sid == Decoder().decode(recorded[2])[0].sid  # the sid of the recording
    for wire in recorded[2:]:
        genuine.send_wire(wire)
        tag, name, fields = _untagged(genuine)
        assert (tag, name, fields["code"]) == (None, "ERROR", _ERR_AUTH), fields
    assert sh.bad_tag == 3 and _commands(sh) == []
    assert genuine.request("STATUS", {"ch": 1})[0] == "STATUS_R"  # the genuine one goes on


def _commands(sh):
    # The core's log entries of commands (a boot logs only inputs and alarms)
    return [e for e in entries(sh.core.log) if e[3] not in ("input", "alarm", "decision")]


def test_a_monitor_may_read_status_but_not_start():
    sh, p = _device()
    host = Host(sh, p, role="monitor")
    assert host.hello()[1]["role"] == catalog.ROLES["monitor"]
    assert host.request("STATUS", {"ch": 1})[0] == "STATUS_R"
    name, fields = host.request("START", NOREPI)
    assert (name, fields["code"]) == ("ERROR", catalog.ERR_FORBIDDEN), fields
    assert fields["message"] == "role monitor may not send START (clinician may)"
    name, fields = host.request("KEY", {"role": 2, "key": bytes(32)})
    assert (name, fields["code"]) == ("ERROR", catalog.ERR_FORBIDDEN), fields
    assert _starts(sh) == 0 and p["motors"][0].rate == 0
    assert _counters(host) == (0, 0, 0, 2)


def test_a_wrong_key_at_auth_is_refused_counted_logged_and_its_session_closed():
    sh, p = _device()
    host = Host(sh, p, role="clinician", key=KEYS["monitor"])
    host.hello(authenticate=False)
    name, fields = host.request("AUTH", {})
    assert (name, fields["code"]) == ("ERROR", _ERR_AUTH), fields
    assert fields["message"] == "the board refused the key for role clinician"
    assert sh.auth_refused == 1
    assert [e[5] for e in entries(sh.core.log) if e[4] == "auth_refused"] == [fields["message"]]
    assert host.request("STATUS", {"ch": 1})[1]["code"] == catalog.ERR_HELLO_REQUIRED
    assert [sid for sid in sh.sessions.sid if sid] == []
    good = Host(sh, p)
    good.hello()
    assert _counters(good) == (1, 0, 0, 0)


def test_a_flood_of_wrong_keys_is_counted_each_and_logged_at_powers_of_two():
    # Each log entry costs the flash an append and a state save: wrong keys sent as
    # fast as the line goes must not wear it out, nor push decisions out of the log.
    sh, p = _device()
    for _ in range(100):
        host = Host(sh, p, role="clinician", key=KEYS["monitor"])
        host.hello(authenticate=False)
        assert host.request("AUTH", {})[1]["code"] == _ERR_AUTH
    assert sh.auth_refused == 100
    logged = [e[5] for e in entries(sh.core.log) if e[4] == "auth_refused"]
    assert len(logged) == 7  # the 1st, 2nd, 4th, ... 64th
    assert logged[-1] == "the board refused the key for role clinician (64 refused since boot)"


def test_auth_is_sent_once_per_session():
    sh, p = _device()
    host = Host(sh, p)
    host.hello()
    name, fields = host.request("AUTH", {})
    assert (name, fields["code"]) == ("ERROR", _ERR_AUTH) and "already" in fields["message"]
    assert host.request("STATUS", {"ch": 1})[0] == "STATUS_R"  # the session goes on


def test_a_hello_naming_no_role_opens_no_session():
    sh, p = _device()
    host = Host(sh, p)
    fields = hello_fields()
    fields["role"] = 4
    name, fields = host.request("HELLO", fields)
    assert (name, fields["code"]) == ("ERROR", catalog.ERR_BAD_PAYLOAD), fields
    assert [sid for sid in sh.sessions.sid if sid] == []


def _running_then(store_keys):
    # A channel infusing, then a reset into a store whose keys file is store_keys
    # (None: removed).
    store = Store()
    sh, p = _device(store)
    host = Host(sh, p)
    host.hello()
    assert host.request("START", NOREPI)[0] == "START_R"
    if store_keys is None:
        store.remove("keys")
    else:
        store.files["keys"] = store_keys
    return _device(store)


def test_without_keys_the_board_alarms_refuses_every_auth_and_runs_on():
    sh, p = _running_then(None)
    sh.begin()
    assert p["motors"][0].rate == 26250000  # the restored infusion delivers
    (alarm,) = [a for a in sh.core.alarms() if a.code == "keys_missing"]
    assert alarm.priority == "high" and alarm.active and "no keys file" in alarm.message
    assert p["alarm"].level == 3
    host = Host(sh, p)
    assert host.hello(authenticate=False)[1]["board_id"] == _NO_BOARD
    name, fields = host.request("AUTH", {})
    assert (name, fields["code"]) == ("ERROR", _ERR_AUTH), fields
    assert fields["message"] == "the board has no keys provisioned: reflash it with pumpguard flash"
    assert sh.auth_refused == 1
    assert p["motors"][0].rate == 26250000


def test_a_keys_file_the_board_cannot_trust_is_no_keys():
    zero = dict(KEYS, monitor=bytes(32))
    shared = dict(KEYS, monitor=KEYS["service"])
    short = keys_file().replace(hexlify(KEYS["service"]), hexlify(KEYS["service"])[:-2])
    upper = keys_file().replace(hexlify(KEYS["service"]), hexlify(KEYS["service"]).upper())
    for bad in (b"{", b"[]", keys_file(zero), keys_file(shared), short, upper, b"\xff"):
        sh, p = _running_then(bad)
        assert "keys_missing" in _codes(sh), bad
        host = Host(sh, p)
        host.hello(authenticate=False)
        assert host.request("AUTH", {})[1]["code"] == _ERR_AUTH
        for text in [a.message for a in sh.core.alarms()] + [e[5] for e in entries(sh.core.log)]:
            for key in KEYS.values():
                assert hexlify(key).decode() not in text  # never a key in a text


def test_insecure_mode_only_where_the_board_allows_it():
    store = Store()
    store.files["keys"] = keys_file(insecure=True)
    p = ports(store)
    sh = shell(p)  # the emulator board: INSECURE_OK
    host = Host(sh, p, key=bytes(32))
    assert host.hello()[1]["auth"] == 0  # AUTH with the all-zero key proved
    (alarm,) = [a for a in sh.core.alarms() if a.code == "insecure_link"]
    assert alarm.priority == "low" and alarm.active
    assert host.request("START", NOREPI)[0] == "START_R"
    store = Store()
    store.files["keys"] = keys_file(insecure=True)
    p = ports(store)
    sh = firmware_main.build(pico, p, BOOT_ID)  # a Pico: never
    assert "keys_missing" in _codes(sh) and "insecure_link" not in _codes(sh)
    host = Host(sh, p, key=bytes(32))
    assert host.hello(authenticate=False)[1]["auth"] == 1
    assert host.request("AUTH", {})[1]["code"] == _ERR_AUTH


def test_the_board_id_and_auth_mode_are_in_hello_r():
    sh, p = _device()
    name, r = Host(sh, p).hello()
    assert (r["board_id"], r["auth"], r["role"]) == (BOARD_ID, 1, catalog.ROLES["clinician"])
    assert len(r["nonce"]) == auth.NONCE


def _rotate(sh, p, role, new):
    service = Host(sh, p, role="service")
    service.hello()
    ctr = service.session.ctr + 1  # the counter KEY goes out with
    wrapped = auth.wrap(service.session.ks, ctr, new)
    return service.request("KEY", {"role": catalog.ROLES[role], "key": wrapped})


def test_only_the_service_role_rotates_a_key_and_the_new_key_works():
    store = Store()
    sh, p = _device(store)
    clinician = Host(sh, p)
    clinician.hello()
    name, fields = clinician.request("KEY", {"role": 2, "key": bytes(range(100, 132))})
    assert (name, fields["code"]) == ("ERROR", catalog.ERR_FORBIDDEN), fields
    assert store.files["keys"] == keys_file()
    new = bytes(range(200, 232))
    name, fields = _rotate(sh, p, "clinician", new)
    assert name == "KEY_R", fields
    assert fields == {"role": 2, "check": auth.key_check(new)}
    assert "keys.new" not in store.files
    logged = [e[5] for e in entries(sh.core.log) if e[4] == "key_rotated"]
    assert logged == ["key for role clinician replaced"]
    assert clinician.request("STATUS", {"ch": 1})[0] == "STATUS_R"  # open sessions keep Ks
    old = Host(sh, p)
    old.hello(authenticate=False)
    assert old.request("AUTH", {})[1]["code"] == _ERR_AUTH  # the old key is refused
    for device, dports in ((sh, p), _device(store)):  # and the new one works, after a reset too
        host = Host(device, dports, key=new)
        host.hello()
        assert host.request("START", NOREPI)[0] in ("START_R", "REFUSED")


class _FailingStore(Store):
    failing = False

    def write(self, name, data):
        if self.failing and name == "keys.new":
            raise OSError(28, "no space left on device")
        Store.write(self, name, data)


def test_a_key_rotation_the_store_fails_keeps_the_old_key_and_the_loop():
    store = _FailingStore()
    sh, p = _device(store)
    store.failing = True
    name, fields = _rotate(sh, p, "clinician", bytes(range(200, 232)))
    assert (name, fields["code"]) == ("ERROR", catalog.ERR_INTERNAL), fields
    assert "not replaced" in fields["message"] and "internal_fault" not in _codes(sh)
    assert store.files["keys"] == keys_file()
    host = Host(sh, p)  # the old key
    host.hello()
    name, fields = _rotate(sh, p, "monitor", KEYS["service"])  # the next boot would refuse it
    assert (name, fields["code"]) == ("ERROR", catalog.ERR_BAD_PAYLOAD), fields
    assert store.files["keys"] == keys_file()


def test_the_device_nonce_is_new_at_every_hello_and_every_boot():
    store = Store()
    nonces = []
    for _boot in range(2):  # two boots on the same store, the same boot id
        sh, p = _device(store)
        for _hello in range(2):
            nonces.append(Host(sh, p).hello()[1]["nonce"])
    assert len(set(nonces)) == 4, nonces


def test_a_byte_identical_hello_retry_gets_the_same_hello_r():
    sh, p = _device()
    host = Host(sh, p)
    wire = host.wire("HELLO", hello_fields())
    host.send_wire(wire)
    first = bytes(p["link"].tx)
    p["link"].tx = bytearray()  # lost on the line
    host.send_wire(wire)
    assert bytes(p["link"].tx) == first
    assert host.answer(host.seq, True)[0] == "HELLO_R"
    assert host.request("AUTH", {})[0] == "AUTH_R"  # the one session, its one key
    assert [sid for sid in sh.sessions.sid if sid] == [host.sid]


def test_every_answer_of_an_authenticated_session_is_tagged_with_a_growing_counter():
    sh, p = _device()
    host = Host(sh, p)
    host.hello()
    for name, fields in (("STATUS", {"ch": 1}), ("START", NOREPI), ("STATUS", {"ch": 9})):
        host.request(name, fields)  # Host.answer checks tag and counter
    assert host.session.device_ctr == 4  # AUTH_R 1, then one per answer


def test_only_a_frame_the_host_tagged_anew_is_a_sign_of_life():
    # A supervising host falls silent: link_lost. Frames anyone on the wire can send
    # (untagged, a wrong tag, a replay of the host's last frame, a new HELLO) leave
    # the alarm standing; the host's own next frame is heard.
    sh, p = _device()
    host = Host(sh, p)
    host.hello(supervise_s=1)
    last = host.wire("HEARTBEAT", {})
    host.send_wire(last)
    for _ in range(12):  # 12 s of silence, past the 10 s link timeout
        p["clock"].advance(1000)
        sh.step()
    assert "link_lost" in [a.code for a in sh.core.alarms() if a.active]
    host.seq += 1
    other = Host(sh, p)
    for wire in (
        messages.to_wire("HEARTBEAT", host.seq, {}, sid=host.sid),
        flip_tag(host.wire("HEARTBEAT", {}), 0),
        last,
        other.wire("HELLO", hello_fields()),
    ):
        host.send_wire(wire)
        sh.step()
        assert "link_lost" in [a.code for a in sh.core.alarms() if a.active], wire
    assert host.request("HEARTBEAT", {})[0] == "HEARTBEAT_R"
    sh.step()
    assert "link_lost" not in [a.code for a in sh.core.alarms() if a.active]


def test_the_wall_clock_of_a_hello_counts_only_once_its_auth_passed():
    sh, p = _device()
    stranger = Host(sh, p, key=KEYS["monitor"])
    fields = hello_fields()
    fields["wall_ms"] = 1764580000000
    stranger.request("HELLO", fields)
    assert stranger.request("AUTH", {})[1]["code"] == _ERR_AUTH
    host = Host(sh, p)
    host.hello()
    name, page = host.request("LOG", {"first": 0})
    (refused,) = [e for e in page["entries"] if e["kind"] == "input" and "refused" in e["text"]]
    assert refused["wall_ms"] is None  # no wall clock: the stranger's was never taken
    clock = Host(sh, p)
    fields["wall_ms"] = 1764580000000
    assert clock.request("HELLO", fields)[0] == "HELLO_R"
    assert clock.request("AUTH", {})[0] == "AUTH_R"
    name, page = clock.request("LOG", {"first": 0})
    assert page["entries"][-1]["wall_ms"] is None  # an entry from before it
    clock.request("START", NOREPI)  # logged now: wall time
    name, page = clock.request("LOG", {"first": page["next"]})
    assert page["entries"] and page["entries"][0]["wall_ms"] >= 1764580000000


def test_a_refused_frame_does_not_keep_its_session_from_being_closed():
    # Four sessions; frames refused in the least recently heard one (untagged, in its
    # sid) do not make it recent: the fifth HELLO closes it, not a host that spoke.
    sh, p = _device()
    hosts = [Host(sh, p) for _ in range(4)]
    for host in hosts:
        host.hello()
    first = hosts[0]
    for _ in range(3):
        first.seq += 1
        first.send_wire(messages.to_wire("STATUS", first.seq, {"ch": 1}, sid=first.sid))
    Host(sh, p).hello()
    assert first.sid not in sh.sessions.sid
    assert [h.sid in sh.sessions.sid for h in hosts[1:]] == [True] * 3
