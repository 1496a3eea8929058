"""The link's cryptography, both sides: HMAC-SHA256 (RFC 2104) over hashlib.sha256 alone
(MicroPython has no hmac module, and its sha256 objects have no copy()), the handshake's
transcript, session key and proofs, the per-frame tag and the wrapping of a new key.
SPEC.md section 12 says what each is for and gives it byte by byte.

    th = transcript(hello_payload, sid, hello_r_payload)
    ks = session_key(role_key, th)
    proof(ks, th, b"H")        the host's AUTH proof; b"D": the device's AUTH_R proof
    tag(ks, b"H", signed)      a frame the host sends; b"D": one the device sends

Every value is bytes; every length is fixed (TAG, NONCE, KEY, PROOF bytes). No state is
kept between calls: an HMAC costs two sha256 objects and one 64-byte pad.
"""

import hashlib
import struct

from micropython import const

TAG = const(8)  # bytes of a frame's tag (HMAC-SHA256 truncated)
NONCE = const(16)  # bytes of HELLO's and HELLO_R's nonces
KEY = const(32)  # bytes of a role key and of a session key
PROOF = const(16)  # bytes of AUTH's and AUTH_R's proofs
_BLOCK = const(64)  # SHA-256's block: the HMAC key is padded (or hashed) to it
_IPAD = const(0x36)
_OPAD = const(0x5C)
# The two senders a tag or a proof names: a frame of one direction never verifies as
# one of the other, so a device's answer reflected back at it is refused.
HOST = b"H"
DEVICE = b"D"
_PROOF_LABEL = {HOST: b"host proof", DEVICE: b"device proof"}


# The HMAC's padded key, reused by every HMAC (none runs inside another).
_PAD = bytearray(_BLOCK)


def _hmac(key, a, b=b""):
    """HMAC-SHA256(key, a || b), the message in two parts so that no caller copies a
    frame to prefix it (RFC 2104: H(K ^ opad || H(K ^ ipad || m)))."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    pad = _PAD
    n = len(key)
    for i in range(_BLOCK):
        pad[i] = (key[i] if i < n else 0) ^ _IPAD
    inner = hashlib.sha256(pad)
    inner.update(a)
    inner.update(b)
    digest = inner.digest()
    for i in range(_BLOCK):
        pad[i] ^= _IPAD ^ _OPAD
    outer = hashlib.sha256(pad)
    outer.update(digest)
    return outer.digest()


def hmac_sha256(key, msg):
    """HMAC-SHA256 of msg under key (any length: keys over 64 bytes are hashed first)."""
    return _hmac(key, msg)


def equal(a, b):
    """a == b in time that depends on the length only, never on where they differ (a
    tag compared with == would tell an attacker how many of its bytes are right).
    Unequal lengths are False at once: lengths are public (TAG, PROOF)."""
    if len(a) != len(b):
        return False
    diff = 0
    for i in range(len(a)):
        diff |= a[i] ^ b[i]
    return diff == 0


def transcript(hello_payload, sid, hello_r_payload):
    """SHA-256(HELLO payload || sid u16 LE || HELLO_R payload): both nonces, the role,
    both sides' versions and the session, so a key derived from it is bound to all."""
    if not 0 < sid <= 0xFFFF:
        raise ValueError("sid %d is not a session id" % sid)
    h = hashlib.sha256(hello_payload)
    h.update(struct.pack("<H", sid))
    h.update(hello_r_payload)
    return h.digest()


def session_key(role_key, th):
    """Ks = HMAC(role key, "pumpguard session" || th)."""
    _check(role_key, KEY, "role key")
    return _hmac(role_key, b"pumpguard session", th)


def proof(ks, th, side):
    """The PROOF bytes that show `side` (HOST or DEVICE) holds ks for transcript th."""
    if side not in _PROOF_LABEL:
        raise ValueError("side %r is neither %r nor %r" % (side, HOST, DEVICE))
    return _hmac(ks, _PROOF_LABEL[side], th)[:PROOF]


def tag(ks, sender, signed):
    """A frame's tag: HMAC(ks, sender || signed)[:TAG], signed = the frame's bytes before
    the tag (header, sid, payload, ctr). Any bytes-like signed (a memoryview: no copy)."""
    if sender != HOST and sender != DEVICE:
        raise ValueError("sender %r is neither %r nor %r" % (sender, HOST, DEVICE))
    return _hmac(ks, sender, signed)[:TAG]


def tag_into(ks, sender, signed, buf, o):
    """tag()'s bytes written into buf at o (the device's answers: no bytes made for it)."""
    if sender != HOST and sender != DEVICE:
        raise ValueError("sender %r is neither %r nor %r" % (sender, HOST, DEVICE))
    d = _hmac(ks, sender, signed)
    for i in range(TAG):
        buf[o + i] = d[i]


def verify(ks, sender, signed, tag):
    """equal(tag, tag(ks, sender, signed)) without the tag's copy: a frame's tag checked."""
    if len(tag) != TAG:
        return False
    d = _hmac(ks, sender, signed)
    diff = 0
    for i in range(TAG):
        diff |= tag[i] ^ d[i]
    return diff == 0


def wrap(ks, ctr, key32):
    """key32 XOR HMAC(ks, "key wrap" || ctr u32 LE): a new key travels in KEY under the
    session key and the request's counter; the same call unwraps it."""
    _check(key32, KEY, "key")
    if not 0 <= ctr <= 0xFFFFFFFF:
        raise ValueError("ctr %d is not a u32" % ctr)
    mask = _hmac(ks, b"key wrap", struct.pack("<I", ctr))
    out = bytearray(KEY)
    for i in range(KEY):
        out[i] = key32[i] ^ mask[i]
    return bytes(out)


def key_check(key32):
    """HMAC(key, "key check")[:8]: KEY_R shows which key the device stored, not the key."""
    _check(key32, KEY, "key")
    return _hmac(key32, b"key check")[:TAG]


def _check(value, n, what):
    if len(value) != n:
        raise ValueError("%s of %d bytes, not %d" % (what, len(value), n))
