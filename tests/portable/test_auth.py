# protocol/auth.py on both interpreters: HMAC-SHA256 against RFC 4231's test cases (the
# board has hashlib.sha256 and no hmac module, so this HMAC is the project's own),
# equal(), the handshake's derivations, the tag and key wrapping.
import binascii
import hashlib

from protocol import auth, frame, messages
from protocol.decoder import Decoder


def _hex(text):
    return binascii.unhexlify(text)


# RFC 4231 section 4: (key, data, HMAC-SHA-256). Case 5's output is truncated to 128
# bits, as the RFC gives it.
_LONG_KEY = b"\xaa" * 131
RFC_4231 = (
    (
        b"\x0b" * 20,
        b"Hi There",
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
    ),
    (
        b"Jefe",
        b"what do ya want for nothing?",
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    ),
    (
        b"\xaa" * 20,
        b"\xdd" * 50,
        "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
    ),
    (
        bytes(range(1, 26)),
        b"\xcd" * 50,
        "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
    ),
    (b"\x0c" * 20, b"Test With Truncation", "a3b6167473100ee06e0c796c2955552b"),
    (
        _LONG_KEY,
        b"Test Using Larger Than Block-Size Key - Hash Key First",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    ),
    (
        _LONG_KEY,
        b"This is a test using a larger than block-size key and a larger than block-size"
        b" data. The key needs to be hashed before being used by the HMAC algorithm.",
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
    ),
)


def _rfc_case(number):
    key, data, expected = RFC_4231[number - 1]
    want = _hex(expected)
    got = auth.hmac_sha256(key, data)
    assert len(got) == 32
    assert got[: len(want)] == want, (number, binascii.hexlify(got))


def test_rfc_4231_case_1():
    _rfc_case(1)


def test_rfc_4231_case_2_key_shorter_than_the_output():
    _rfc_case(2)


def test_rfc_4231_case_3_combined_length_over_a_block():
    _rfc_case(3)


def test_rfc_4231_case_4():
    _rfc_case(4)


def test_rfc_4231_case_5_truncated_to_128_bits():
    _rfc_case(5)
    assert len(_hex(RFC_4231[4][2])) == 16


def test_rfc_4231_case_6_key_over_a_block_is_hashed_first():
    _rfc_case(6)


def test_rfc_4231_case_7_key_and_data_over_a_block():
    _rfc_case(7)


def test_hmac_takes_any_bytes_like_and_keys_at_the_block_edge():
    # A key of exactly 64 bytes is padded, not hashed; 65 is hashed: the two paths meet
    # where RFC 2104 says they do (a hashed key is the 32-byte digest, zero-padded).
    msg = b"pumpguard"
    assert auth.hmac_sha256(memoryview(b"xx" + msg)[2:], msg) == auth.hmac_sha256(msg, msg)
    assert auth.hmac_sha256(b"k", bytearray(msg)) == auth.hmac_sha256(b"k", msg)
    k65 = bytes(range(65))
    assert auth.hmac_sha256(k65, msg) == auth.hmac_sha256(hashlib.sha256(k65).digest(), msg)
    k64 = bytes(range(64))
    assert auth.hmac_sha256(k64, msg) != auth.hmac_sha256(hashlib.sha256(k64).digest(), msg)
    # RFC 2104 pads a short key with zeros: trailing zero bytes make the same key.
    assert auth.hmac_sha256(b"", b"") == auth.hmac_sha256(b"\x00", b"")
    assert auth.hmac_sha256(b"", b"") == auth.hmac_sha256(b"", memoryview(b""))


def test_equal_is_true_only_for_the_same_bytes():
    a = bytes(range(8))
    assert auth.equal(a, bytes(range(8)))
    assert auth.equal(b"", b"")
    assert auth.equal(a, bytearray(a)) and auth.equal(memoryview(a), a)
    for i in range(len(a)):
        for bit in (0x01, 0x80):
            b = bytearray(a)
            b[i] ^= bit
            assert not auth.equal(a, b), (i, bit)
            assert not auth.equal(b, a), (i, bit)


def test_equal_with_unequal_lengths_is_false_even_for_a_prefix():
    a = bytes(range(16))
    assert not auth.equal(a, a[:8])
    assert not auth.equal(a[:8], a)
    assert not auth.equal(a, b"")
    assert not auth.equal(b"", a)
    assert not auth.equal(a, a + b"\x00")


def test_the_sizes():
    assert (auth.TAG, auth.NONCE, auth.KEY, auth.PROOF) == (8, 16, 32, 16)
    ks = bytes(32)
    th = bytes(32)
    assert len(auth.proof(ks, th, auth.HOST)) == auth.PROOF
    assert len(auth.tag(ks, auth.DEVICE, b"x")) == auth.TAG
    assert len(auth.session_key(ks, th)) == auth.KEY
    assert len(auth.key_check(ks)) == auth.TAG
    assert len(auth.transcript(b"", 1, b"")) == 32


def test_transcript_is_sha256_of_hello_sid_le_and_hello_r():
    hello = b"\x03hello"
    hello_r = b"\x03answer"
    want = hashlib.sha256(hello + b"\x3c\x5a" + hello_r).digest()
    assert auth.transcript(hello, 0x5A3C, hello_r) == want
    assert auth.transcript(hello, 0x3C5A, hello_r) != want
    for sid in (0, 0x10000, -1):
        try:
            auth.transcript(hello, sid, hello_r)
        except ValueError:
            pass
        else:
            raise AssertionError("sid %d accepted" % sid)


def test_session_key_and_proofs_follow_their_formulas():
    key = bytes(range(32))
    th = bytes(range(100, 132))
    ks = auth.session_key(key, th)
    assert ks == auth.hmac_sha256(key, b"pumpguard session" + th)
    assert auth.proof(ks, th, b"H") == auth.hmac_sha256(ks, b"host proof" + th)[:16]
    assert auth.proof(ks, th, b"D") == auth.hmac_sha256(ks, b"device proof" + th)[:16]
    # Each side's proof differs: a device cannot answer AUTH with the host's own proof.
    assert auth.proof(ks, th, b"H") != auth.proof(ks, th, b"D")
    assert auth.session_key(key, th[:-1] + b"\x00") != ks


def test_bad_arguments_are_refused():
    ks = bytes(32)
    calls = (
        (auth.proof, (ks, bytes(32), b"X")),
        (auth.tag, (ks, b"HD", b"")),
        (auth.tag, (ks, "H", b"")),
        (auth.session_key, (bytes(31), bytes(32))),
        (auth.session_key, (bytes(33), bytes(32))),
        (auth.wrap, (ks, 1, bytes(31))),
        (auth.wrap, (ks, -1, bytes(32))),
        (auth.wrap, (ks, 0x100000000, bytes(32))),
        (auth.key_check, (bytes(16),)),
    )
    for fn, args in calls:
        try:
            fn(*args)
        except ValueError:
            pass
        else:
            raise AssertionError("accepted: %s%r" % (fn.__name__, args[1:]))


def test_wrap_round_trips_and_depends_on_key_and_counter():
    ks = bytes(range(32))
    new = bytes(range(200, 232))
    wrapped = auth.wrap(ks, 7, new)
    assert len(wrapped) == auth.KEY and wrapped != new
    assert auth.wrap(ks, 7, wrapped) == new
    assert auth.wrap(ks, 8, wrapped) != new
    assert auth.wrap(bytes(32), 7, wrapped) != new
    mask = auth.hmac_sha256(ks, b"key wrap" + b"\x07\x00\x00\x00")
    assert wrapped == bytes([new[i] ^ mask[i] for i in range(32)])
    assert auth.key_check(new) == auth.hmac_sha256(new, b"key check")[:8]
    assert auth.key_check(new) != auth.key_check(wrapped)


def test_the_tag_covers_every_signed_byte_and_the_sender():
    ks = bytes(range(32, 64))
    signed = bytearray(frame.HEADER + frame.SID_BYTES + 40 + frame.CTR_BYTES)
    for i in range(len(signed)):
        signed[i] = (i * 37 + 11) & 0xFF
    tag = auth.tag(ks, auth.HOST, signed)
    assert tag == auth.hmac_sha256(ks, b"H" + bytes(signed))[:8]
    assert auth.tag(ks, auth.DEVICE, signed) != tag
    assert auth.tag(ks[:-1] + b"\x00", auth.HOST, signed) != tag
    assert auth.tag(ks, auth.HOST, signed[:-1]) != tag
    for i in range(len(signed)):
        for bit in (0x01, 0x80):
            signed[i] ^= bit
            assert auth.tag(ks, auth.HOST, signed) != tag, (i, bit)
            signed[i] ^= bit
    assert auth.tag(ks, auth.HOST, memoryview(signed)) == tag


def test_a_tagged_frame_verifies_with_its_session_key_and_sender_only():
    ks = bytes(range(64, 96))
    wire = messages.to_wire("STOP", 9, {"ch": 1}, sid=0x5A3C, key=ks, ctr=3, sender=auth.HOST)
    f = Decoder().decode(wire)[0]
    assert (f.ctr, f.sid, f.payload) == (3, 0x5A3C, b"\x01")
    assert f.signed == bytes((0x13, 0x06, 9, 0, 1, 0x3C, 0x5A, 1, 3, 0, 0, 0))
    assert auth.equal(f.tag, auth.tag(ks, auth.HOST, f.signed))
    assert not auth.equal(f.tag, auth.tag(ks, auth.DEVICE, f.signed))
    assert not auth.equal(f.tag, auth.tag(bytes(32), auth.HOST, f.signed))


def test_a_tagged_frame_needs_a_sid_and_a_u32_counter():
    for kwargs in (
        {"sid": 0, "key": bytes(32), "ctr": 1},
        {"sid": 1, "key": bytes(32), "ctr": -1},
        {"sid": 1, "key": bytes(32), "ctr": 0x100000000},
    ):
        try:
            frame.encode(0x0B, 1, b"", **kwargs)
        except ValueError:
            pass
        else:
            raise AssertionError("encoded: %r" % kwargs)
