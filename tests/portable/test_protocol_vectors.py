# Golden vectors on both interpreters: the device's codec (binascii.crc32, the
# streaming COBS decoder) must produce and accept exactly the bytes in
# protocol/vectors.json, which the host wrote with crcmod's 'crc-32'.
import binascii
import json

import protocol
from protocol import catalog, frame, messages
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
