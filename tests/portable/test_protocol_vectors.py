# Golden vectors on both interpreters: the device's codec (binascii.crc32, the
# streaming COBS decoder) must produce and accept exactly the bytes in
# protocol/vectors.json, which the host wrote with crcmod's 'crc-32'; and the two
# handshakes' transcripts, session keys, proofs, tags and wrapped key, which the host
# computed with CPython's hmac, must come out of protocol/auth.py the same.
import binascii
import json

import protocol
from protocol import auth, catalog, frame, messages
from protocol.decoder import Decoder


def _load():
    # Beside protocol/__init__ on both: /protocol on the board, the source tree here.
    path = protocol.__file__.replace("\\", "/").rsplit("/", 1)[0] + "/vectors.json"
    with open(path) as f:
        return json.load(f)


VECTORS = _load()


def _hex(text):
    # binascii, not bytes.fromhex: the one both interpreters are sure to have
    return binascii.unhexlify(text)


def _wire(v):
    return _hex(v["wire"])


def _fields(v):
    """A vector's fields as the codec takes them: RAW fields are hex in the file."""
    raw = [f[0] for f in catalog.FIELDS[v["msg_id"]] if f[1] == catalog.RAW]
    out = dict(v["fields"])
    for name in raw:
        out[name] = _hex(out[name])
    return out


def _session_keys():
    """Per tagged vector's name, the session key of its session (the file's Ks)."""
    out = {}
    for sess in VECTORS["sessions"]:
        for name in sess["frames"]:
            out[name] = _hex(sess["ks"])
    return out


KS = _session_keys()


def _to_wire(v):
    if "ctr" not in v:
        return messages.to_wire(v["message"], v["seq"], _fields(v), sid=v["sid"])
    sender = v["sender"].encode()
    key = KS[v["name"]]
    return messages.to_wire(
        v["message"], v["seq"], _fields(v), None, v["sid"], key, v["ctr"], sender
    )


def test_file_names_crc_and_matches_catalog():
    assert VECTORS["crc"] == "crc-32"
    assert VECTORS["protocol_version"] == catalog.PROTOCOL_VERSION
    assert VECTORS["schema_hash"] == catalog.SCHEMA_HASH
    assert VECTORS["max_payload"] == frame.MAX_PAYLOAD


def test_every_vector_encodes_to_its_wire_bytes():
    for v in VECTORS["vectors"]:
        assert _to_wire(v) == _wire(v), v["name"]


def test_every_vector_decodes_to_its_fields():
    dec = Decoder()
    for v in VECTORS["vectors"]:
        frames = dec.decode(_wire(v))
        assert len(frames) == 1, v["name"]
        f = frames[0]
        assert f.msg_id == v["msg_id"] and catalog.NAME[f.msg_id] == v["message"], v["name"]
        assert f.seq == v["seq"] and f.sid == v["sid"], v["name"]
        assert f.ctr == v.get("ctr", 0), v["name"]
        assert (f.tag is None) == ("ctr" not in v), v["name"]
        assert messages.decode(f.msg_id, f.payload) == _fields(v), v["name"]
    assert dec.frames == len(VECTORS["vectors"])
    assert dec.bad_crc + dec.oversize + dec.bad_cobs + dec.unknown + dec.bad_length == 0


def test_byte_by_byte_and_back_to_back():
    stream = b"".join(_wire(v) for v in VECTORS["vectors"])
    dec = Decoder()
    got = []
    for i in range(len(stream)):
        pos = dec.feed(stream, i, i + 1)
        assert pos == i + 1
        if dec.ready:
            got.append(dec.take().seq)
    assert got == [v["seq"] for v in VECTORS["vectors"]]


def test_every_single_bit_flip_is_rejected():
    dec = Decoder()
    for v in VECTORS["vectors"]:
        wire = bytearray(_wire(v))
        for bit in range(len(wire) * 8):
            wire[bit >> 3] ^= 1 << (bit & 7)
            assert dec.decode(wire) == [], (v["name"], bit)
            wire[bit >> 3] ^= 1 << (bit & 7)
        # The decoder is not wedged by any of it: the intact frame still decodes.
        assert len(dec.decode(wire)) == 1


def _by_name():
    return dict((v["name"], v) for v in VECTORS["vectors"])


def _frame(v):
    frames = Decoder().decode(_wire(v))
    assert len(frames) == 1, v["name"]
    return frames[0]


def test_each_session_s_key_and_proofs_recomputed_from_its_hello_and_hello_r():
    # What a host written from SPEC §12 does: th from the two payloads as they came on
    # the wire and the sid of HELLO_R's frame, Ks from the role key, both proofs.
    vectors = _by_name()
    assert [s["name"] for s in VECTORS["sessions"]] == ["clinician", "service"]
    for sess in VECTORS["sessions"]:
        hello = _frame(vectors[sess["frames"][0]])
        hello_r = _frame(vectors[sess["frames"][1]])
        assert hello.msg_id == catalog.ID["HELLO"] and hello.sid == 0 and hello.tag is None
        assert hello_r.msg_id == catalog.ID["HELLO_R"] and hello_r.tag is None
        assert hello_r.sid == sess["sid"]
        th = auth.transcript(hello.payload, hello_r.sid, hello_r.payload)
        assert th == _hex(sess["th"]), sess["name"]
        ks = auth.session_key(_hex(sess["role_key"]), th)
        assert ks == _hex(sess["ks"]), sess["name"]
        role = catalog.ROLES[sess["role"]]
        h = messages.decode(hello.msg_id, hello.payload)
        r = messages.decode(hello_r.msg_id, hello_r.payload)
        assert h["role"] == r["role"] == role and r["auth"] == 1
        assert len(h["nonce"]) == len(r["nonce"]) == auth.NONCE and h["nonce"] != r["nonce"]
        proof = auth.proof(ks, th, auth.HOST)
        assert proof == _hex(sess["host_proof"])
        assert auth.proof(ks, th, auth.DEVICE) == _hex(sess["device_proof"])
        auth_f = _frame(vectors[sess["frames"][2]])
        auth_r = _frame(vectors[sess["frames"][3]])
        # AUTH: in the session, untagged; AUTH_R: tagged, the device's counter 1.
        assert auth_f.msg_id == catalog.ID["AUTH"] and auth_f.sid == sess["sid"]
        assert auth_f.tag is None and auth_f.payload == proof
        assert auth_r.msg_id == catalog.ID["AUTH_R"] and auth_r.ctr == 1
        assert auth_r.payload == auth.proof(ks, th, auth.DEVICE)


def test_every_tagged_frame_s_tag_and_counter_recomputed():
    vectors = _by_name()
    tagged = 0
    for sess in VECTORS["sessions"]:
        ks = _hex(sess["ks"])
        last = {"H": 0, "D": 0}
        for name in sess["frames"][2:]:
            v = vectors[name]
            f = _frame(v)
            assert f.sid == sess["sid"], name
            if "ctr" not in v:
                assert f.tag is None and name.startswith("auth"), name
                continue
            sender = v["sender"]
            assert auth.equal(f.tag, auth.tag(ks, sender.encode(), f.signed)), name
            # The other direction's tag, or another session's key, does not verify.
            other = auth.DEVICE if sender == "H" else auth.HOST
            assert not auth.equal(f.tag, auth.tag(ks, other, f.signed)), name
            assert not auth.equal(f.tag, auth.tag(bytes(32), sender.encode(), f.signed)), name
            # Each side's counter starts at 1 in the session and only grows.
            assert f.ctr == last[sender] + 1, name
            last[sender] = f.ctr
            # signed is the frame up to its tag: header, sid, payload, ctr.
            assert len(f.signed) == 7 + len(f.payload) + 4 and f.signed[0] == 0x13, name
            tagged += 1
        # Every answer of the device is tagged, requests after AUTH too.
        assert last["D"] >= 2 and last["H"] >= 1
    assert tagged == 8


def test_key_wraps_the_new_key_under_the_session_key_and_its_counter():
    vectors = _by_name()
    sess = VECTORS["sessions"][1]
    assert sess["role"] == "service" and sess["new_role"] == "clinician"
    ks = _hex(sess["ks"])
    key = _frame(vectors["key"])
    key_r = _frame(vectors["key_r"])
    fields = messages.decode(key.msg_id, key.payload)
    assert fields["role"] == catalog.ROLES["clinician"]
    assert fields["key"] == _hex(sess["wrapped"])
    new = auth.wrap(ks, key.ctr, fields["key"])
    assert new == _hex(sess["new_key"])
    assert auth.wrap(ks, key.ctr, new) == fields["key"]
    check = messages.decode(key_r.msg_id, key_r.payload)
    assert check == {"role": fields["role"], "check": auth.key_check(new)}
    assert check["check"] == _hex(sess["check"])
    # The wrapped key is no use under another counter (a replayed KEY in a new session
    # gets another Ks anyway).
    assert auth.wrap(ks, key.ctr + 1, fields["key"]) != new
