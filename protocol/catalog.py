"""The message catalog: the one source of every message id, field, type and unit.

Both sides import this table; SPEC.md renders it and the schema hash is computed from
it, so a field added here changes the hash and a host built against the old table
gets a clear HELLO mismatch instead of payloads it would misread.

A field is a tuple, by type:
    (name, U8 | U16 | U32 | U64 | BOOL)           unsigned little-endian integer
    (name, Q, unit)    i32 count of millionths of `unit`; "@f" means "of the unit
                       named by field f" (so 0.04 units/min is 40000 with "units/min")
    (name, OQ, unit)   as Q, but absent is allowed: -2**31 on the wire, None in Python
    (name, MS)         u64 milliseconds of device uptime (never wraps)
    (name, OMS)        as MS, absent is 2**64-1 on the wire, None in Python
    (name, OS)         u32 whole seconds, absent is 2**32-1 on the wire, None in Python
    (name, RAW, n)     exactly n bytes (nonces, proofs, keys), Python bytes of length n
    (name, STR, max)   identifier: u8 byte count + UTF-8; longer is an encode error
    (name, TEXT, max)  human text: u8 byte count + UTF-8; longer is cut at a character
                       and ends in "..." (never cut silently)
    (name, LIST, max, fields)  u8 count + that many records of `fields`

The rich form of this table (each message's fields by name, type and unit) is
schema.py's: the schema hash, SPEC.md and the host's tables (MESSAGES, FIELDS, ID,
NAME, BOUNDS, ROOM, MAY, PACKED, schema_text: read them here, made when first read)
come from it. A board holds only the compact form below, made from it
(schema.compact(); tests/test_protocol_spec.py keeps the two equal).
"""

from micropython import const

from protocol.frame import MAX_PAYLOAD  # noqa: F401  (catalog.MAX_PAYLOAD, read by the host)
from protocol.text import TEXT_MAX  # noqa: F401  (catalog.TEXT_MAX)

PROTOCOL_VERSION = const(3)

# Records per page of the paged answers: as many as fit MAX_PAYLOAD (240 bytes) with
# every text field at TEXT_MAX (test_protocol_roundtrip.py checks that one more would not).
ALARMS_PAGE = const(1)
TAPER_PAGE = const(18)
# LOG_R is packed instead: log texts are mostly short, so the device puts in as many
# records as fit MAX_PAYLOAD (at least one), up to LOG_PAGE. Its upper bound in BOUNDS
# is MAX_PAYLOAD, not the size of LOG_PAGE records at their longest (PACKED below).
LOG_PAGE = const(8)
# Bytes of a library file per LIB_DATA (its data field; the last chunk's n may be less).
LIB_CHUNK = const(192)

U8 = "u8"
U16 = "u16"
U32 = "u32"
U64 = "u64"
BOOL = "bool"
Q = "q"
OQ = "q?"
MS = "ms"
OMS = "ms?"
OS = "s?"
RAW = "raw"
STR = "str"
TEXT = "text"
LIST = "list"

# Wire sizes of the fixed-size types.
SIZE = {U8: 1, U16: 2, U32: 4, U64: 8, BOOL: 1, Q: 4, OQ: 4, MS: 8, OMS: 8, OS: 4}
# The types in the order of their numbers in the compact layouts below.
TYPES = (U8, U16, U32, U64, BOOL, Q, OQ, MS, OMS, OS, RAW, STR, TEXT, LIST)

# Message id ranges: requests 0x01-0x3F (host -> device), their responses at
# request | 0x80, unsolicited events 0x40-0x7F (device -> host), and the two
# responses any request may get instead of its own: REFUSED and ERROR.
RESPONSE_BIT = const(0x80)
REFUSED = const(0xFE)
ERROR = const(0xFF)

# ERROR codes: the request never reached the safety core.
ERR_UNKNOWN_MESSAGE = const(1)  # a valid frame whose request this device does not serve
ERR_BAD_PAYLOAD = const(2)  # the payload does not decode as its message's fields
ERR_HELLO_REQUIRED = const(3)  # no matching HELLO since this boot (or since a mismatch)
ERR_MISMATCH = const(4)  # HELLO protocol version or schema hash differ
ERR_INTERNAL = const(5)  # the device failed to serve it; nothing was changed
ERR_STALE = const(6)  # seq not newer than the last this session ran: not run (SPEC §3)
ERR_AUTH = const(7)  # not authenticated: no AUTH, a wrong proof, a missing or wrong tag
ERR_FORBIDDEN = const(8)  # the session's role may not send this request (MAY)
# A HELLO that only closing an authenticated supervising session could make room for:
# no session opened, none closed (a stranger's HELLO never ends a bedside host's watch)
ERR_BUSY = const(9)
# The ERROR codes' names, for the host (ERROR_NAMES, made when read): code n is the
# n-th name of this str.
_ERROR_NAMES = (
    "|unknown_message|bad_payload|hello_required|mismatch|internal|stale|auth|forbidden|busy|"
)

# The roles a key is for (SPEC §12): each board holds one key per role, and a session
# is the role whose key proved it at AUTH. ROLE_NAMES: the wire's numbers to names.
ROLES = {"monitor": 1, "clinician": 2, "service": 3}
ROLE_NAMES = dict((number, name) for name, number in ROLES.items())

# Alarm priorities (IEC 60601-1-8 levels): the core's names, the wire's numbers. The
# device's alarm output is set to the highest level unacknowledged (0: no alarm).
PRIORITY = {"low": 1, "medium": 2, "high": 3}
PRIORITY_NAMES = dict((level, name) for name, level in PRIORITY.items())


# Records per page of the paged answers and the like are above; HELLO of any length:
# protocol and schema (5 bytes) are all a device needs to answer a host of another
# version with a mismatch instead of a bad length (SPEC §3).
HELLO_PREFIX = const(5)

# CRC-32 of schema.schema_text(): HELLO compares it, so two builds agree on every
# layout (tests/test_protocol_spec.py checks this number is that CRC).
SCHEMA_HASH = 0x9D028CA6

# The compact catalog (schema.compact() makes it; never edit it by hand). Message k
# (schema.MESSAGES' order) has id _IDS[k] and name NAMES[k]; _AT[id] is k + 1 (0: no
# such message). Its fields start at _LAY[_OFF[2k] | _OFF[2k + 1] << 8]: a count, then
# per field three bytes, its name (FIELD_NAMES index), its type (TYPES index) and its
# size (RAW), longest (STR, TEXT) or most records (LIST, whose record's fields follow
# as a count and triples of their own). _LO[k] and _HI[k]: the smallest and largest
# payload the decoder takes; _MAY[k]: bit r set when role r may send it.
_IDS = bytes.fromhex(
    "0181028203830484058506860787088809890a8a0b8b0c8c0d8d0e8e0f8f1090119112924041feff"
)

_AT = bytes.fromhex(
    "0001030507090b0d0f11131517191b1d1f212300000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000252600000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000020406080a0c0e10121416181a1c1e2022240000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000"
    "00000000000000000000000000000000000000000000000000002728"
)

_LAY = bytes.fromhex(
    "07000000010200020b18030100040300050000060a1010000000010200070b18080b18090000"
    "0a0b200b0b100c02000d02000e00000f0100100b40110b10120000050000060a100010130700"
    "0d02001402001502001602001702001802001902001a02001b02001c02001d02001e01000a0b"
    "200b0b100c0200011f0000111f0000200b10210b18220500230b102405002505002606002709"
    "00280d10012901002a08002b06002c04002d06002e0b102f0600300600091f0000210b182205"
    "00310b102f06002d06002e0b103006002c0400041f0000220500310b10240500041f00002205"
    "00310b102c0400041f0000220500310b10240500011f0000041f0000310b10320100330d1202"
    "340700220500021f0000350b10011f00000136000002320000280d01072901001f0000370000"
    "3800003904003407003a0c78013b0100013b010001360200033c02003d02003e0d08083f0200"
    "0d02003407000408001f0000400b10370000410c7800031307000d0200420000021f00003601"
    "00041f0000310b10320100330d1202340700220500014301000143010001440a1001440a1002"
    "050000450a2002050000460a080247020048020000034902004a00004b0ac0013d020000030a"
    "0b200b0b100c0200072901001f00003700003800003904003407003a0c78071f0000200b1021"
    "0b18220500310b10240500340700073700003a0c784c06004d0600310b104e08001307000237"
    "00003a0c78"
)

_OFF = bytes.fromhex(
    "000016004700480079007d00b500d100de00eb00f800fc00100117011b011f013c0140014401"
    "48016b016c0176017d019101950199019d01a101a801af01b601b701c101c501c601d001e601"
    "fc011202"
)

_LO = bytes.fromhex(
    "0529003c0133150a070a01050201010202020409000d03050202101021090800c50400060f141b02"
)

_HI = bytes.fromhex(
    "f0d9006c019b4d1a171a01ed12010189020204f0000d03ed0202101021090800c5040036874ca37a"
)

_MAY = bytes.fromhex(
    "00000e000e0004000400040004000e0004000e000e000e0004000000080008000800080000000000"
)

NAMES = (
    "HELLO",
    "HELLO_R",
    "INFO",
    "INFO_R",
    "STATUS",
    "STATUS_R",
    "START",
    "START_R",
    "TITRATE",
    "TITRATE_R",
    "STOP",
    "STOP_R",
    "ESTOP",
    "ESTOP_R",
    "ALARMS",
    "ALARMS_R",
    "ACK",
    "ACK_R",
    "LOG",
    "LOG_R",
    "HEARTBEAT",
    "HEARTBEAT_R",
    "TAPER",
    "TAPER_R",
    "SUPERVISE",
    "SUPERVISE_R",
    "AUTH",
    "AUTH_R",
    "KEY",
    "KEY_R",
    "LIB_BEGIN",
    "LIB_BEGIN_R",
    "LIB_DATA",
    "LIB_DATA_R",
    "LIB_COMMIT",
    "LIB_COMMIT_R",
    "EV_ALARM",
    "EV_STATE",
    "REFUSED",
    "ERROR",
)

FIELD_NAMES = (
    "protocol",
    "schema",
    "host",
    "supervise_s",
    "wall_ms",
    "role",
    "nonce",
    "firmware",
    "board",
    "channels",
    "library",
    "library_version",
    "library_crc",
    "boot_id",
    "replay_window",
    "max_payload",
    "bundle",
    "board_id",
    "auth",
    "uptime_ms",
    "rx_frames",
    "rx_bad_crc",
    "rx_oversize",
    "rx_bad_cobs",
    "rx_unknown",
    "rx_bad_length",
    "auth_refused",
    "bad_tag",
    "stale_ctr",
    "forbidden",
    "library_problems",
    "ch",
    "state",
    "drug",
    "dose",
    "dose_unit",
    "rate",
    "volume_infused",
    "volume_left",
    "time_to_empty_s",
    "alarms",
    "id",
    "taper_next_ms",
    "taper_next_dose",
    "override",
    "conc",
    "conc_unit",
    "weight",
    "volume",
    "unit",
    "total",
    "plan",
    "at_ms",
    "reason",
    "first",
    "code",
    "priority",
    "acked",
    "message",
    "alarm_id",
    "oldest",
    "next",
    "entries",
    "seq",
    "kind",
    "text",
    "active_alarms",
    "interval_s",
    "proof",
    "key",
    "check",
    "size",
    "crc",
    "offset",
    "n",
    "data",
    "lo",
    "hi",
    "next_at_ms",
)


def is_request(msg_id):
    return 0 < msg_id < 0x40


def is_event(msg_id):
    return 0x40 <= msg_id < 0x80


def index(msg_id):
    """k of message msg_id in the compact tables, -1 when the catalog has no such id."""
    return _AT[msg_id] - 1 if 0 <= msg_id <= 0xFF else -1


def msg_id(name):
    """The id of the message called name (ValueError when there is none)."""
    return _IDS[NAMES.index(name)]


def name(msg_id):
    """The name of message msg_id."""
    return NAMES[_AT[msg_id] - 1]


def may(msg_id, role):
    """Whether a session of role may send request msg_id (SPEC §12 step f)."""
    k = _AT[msg_id] - 1
    return k >= 0 and 0 < role < 8 and _MAY[k] >> role & 1 == 1


def roles_may(msg_id):
    """The roles that may send request msg_id, in their numbers' order (a refusal's text)."""
    k = _AT[msg_id] - 1
    return [r for r in sorted(ROLE_NAMES) if k >= 0 and _MAY[k] >> r & 1]


def __getattr__(attr):
    # The host's rich tables, from schema.py (a board reads none of them).
    if attr == "ERROR_NAMES":
        return dict((i, n) for i, n in enumerate(_ERROR_NAMES[1:-1].split("|"), 1))
    from protocol import schema

    if attr in ("MESSAGES", "ID", "NAME", "FIELDS", "BOUNDS", "ROOM", "MAY", "PACKED"):
        return getattr(schema, attr)
    if attr in ("schema_text", "_bounds", "_describe"):
        return getattr(schema, attr)
    raise AttributeError(attr)
