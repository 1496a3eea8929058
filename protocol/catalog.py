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
SCHEMA_HASH = 0x0296D1EE

# The compact catalog (schema.compact() makes it; never edit it by hand). Message k
# (schema.MESSAGES' order) has id _IDS[k] and name name(id), the k-th of _MN (names
# between "|", each starting at the u16 LE _MNO[2k]); _AT[id] is k + 1 (0: no such
# message). Its fields start at _LAY[_OFF[2k] | _OFF[2k + 1] << 8]: a count, then
# per field three bytes, its name (field_name(), _FN and _FNO as _MN and _MNO), its
# type (TYPES index) and its
# size (RAW), longest (STR, TEXT) or most records (LIST, whose record's fields follow
# as a count and triples of their own). _LO[k] and _HI[k]: the smallest and largest
# payload the decoder takes; _MAY[k]: bit r set when role r may send it.
_IDS = bytes.fromhex(
    "0181028203830484058506860787088809890a8a0b8b0c8c0d8d0e8e0f8f109011911292139314944041feff"
)

_FN = (
    "protocol|schema|host|supervise_s|wall_ms|role|nonce|firmware|board|channels|"
    "library|library_version|library_crc|boot_id|replay_window|max_payload|bundle|"
    "board_id|auth|uptime_ms|rx_frames|rx_bad_crc|rx_oversize|rx_bad_cobs|rx_unknown|"
    "rx_bad_length|auth_refused|bad_tag|stale_ctr|forbidden|library_problems|ch|"
    "state|drug|dose|dose_unit|rate|volume_infused|volume_left|time_to_empty_s|"
    "alarms|id|taper_next_ms|taper_next_dose|override|conc|conc_unit|weight|volume|"
    "patient_weight|unit|total|plan|at_ms|reason|first|code|priority|acked|message|"
    "alarm_id|oldest|next|entries|seq|kind|text|active_alarms|interval_s|proof|key|"
    "check|size|crc|offset|n|data|to|lo|hi|next_at_ms|"
)

_FNO = (
    b"\x00\x00\x09\x00\x10\x00\x15\x00\x21\x00\x29\x00\x2e\x00\x34\x00\x3d\x00\x43\x00"
    b"\x4c\x00\x54\x00\x64\x00\x70\x00\x78\x00\x86\x00\x92\x00\x99\x00\xa2\x00\xa7\x00"
    b"\xb1\x00\xbb\x00\xc6\x00\xd2\x00\xde\x00\xe9\x00\xf7\x00\x04\x01\x0c\x01\x16\x01"
    b"\x20\x01\x31\x01\x34\x01\x3a\x01\x3f\x01\x44\x01\x4e\x01\x53\x01\x62\x01\x6e\x01"
    b"\x7e\x01\x85\x01\x88\x01\x96\x01\xa6\x01\xaf\x01\xb4\x01\xbe\x01\xc5\x01\xcc\x01"
    b"\xdb\x01\xe0\x01\xe6\x01\xeb\x01\xf1\x01\xf8\x01\xfe\x01\x03\x02\x0c\x02\x12\x02"
    b"\x1a\x02\x23\x02\x2a\x02\x2f\x02\x37\x02\x3b\x02\x40\x02\x45\x02\x53\x02\x5e\x02"
    b"\x64\x02\x68\x02\x6e\x02\x73\x02\x77\x02\x7e\x02\x80\x02\x85\x02\x88\x02\x8b\x02"
    b"\x8e\x02\x99\x02"
)

_MN = (
    "HELLO|HELLO_R|INFO|INFO_R|STATUS|STATUS_R|START|START_R|TITRATE|TITRATE_R|STOP|"
    "STOP_R|ESTOP|ESTOP_R|ALARMS|ALARMS_R|ACK|ACK_R|LOG|LOG_R|HEARTBEAT|HEARTBEAT_R|"
    "TAPER|TAPER_R|SUPERVISE|SUPERVISE_R|AUTH|AUTH_R|KEY|KEY_R|LIB_BEGIN|LIB_BEGIN_R|"
    "LIB_DATA|LIB_DATA_R|LIB_COMMIT|LIB_COMMIT_R|HANDOVER|HANDOVER_R|PATIENT|"
    "PATIENT_R|EV_ALARM|EV_STATE|REFUSED|ERROR|"
)

_MNO = (
    b"\x00\x00\x06\x00\x0e\x00\x13\x00\x1a\x00\x21\x00\x2a\x00\x30\x00\x38\x00\x40\x00"
    b"\x4a\x00\x4f\x00\x56\x00\x5c\x00\x64\x00\x6b\x00\x74\x00\x78\x00\x7e\x00\x82\x00"
    b"\x88\x00\x92\x00\x9e\x00\xa4\x00\xac\x00\xb6\x00\xc2\x00\xc7\x00\xce\x00\xd2\x00"
    b"\xd8\x00\xe2\x00\xee\x00\xf7\x00\x02\x01\x0d\x01\x1a\x01\x23\x01\x2e\x01\x36\x01"
    b"\x40\x01\x49\x01\x52\x01\x5a\x01\x60\x01"
)

_AT = (
    b"\x00\x01\x03\x05\x07\x09\x0b\x0d\x0f\x11\x13\x15\x17\x19\x1b\x1d\x1f\x21\x23\x25"
    b"\x27\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    b"\x00\x00\x00\x00\x29\x2a\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x04\x06\x08\x0a\x0c\x0e\x10\x12\x14\x16"
    b"\x18\x1a\x1c\x1e\x20\x22\x24\x26\x28\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x2b\x2c"
)

_LAY = (
    b"\x07\x00\x00\x00\x01\x02\x00\x02\x0b\x18\x03\x01\x00\x04\x03\x00\x05\x00\x00\x06"
    b"\x0a\x10\x10\x00\x00\x00\x01\x02\x00\x07\x0b\x18\x08\x0b\x18\x09\x00\x00\x0a\x0b"
    b"\x20\x0b\x0b\x10\x0c\x02\x00\x0d\x02\x00\x0e\x00\x00\x0f\x01\x00\x10\x0b\x40\x11"
    b"\x0b\x10\x12\x00\x00\x05\x00\x00\x06\x0a\x10\x00\x10\x13\x07\x00\x0d\x02\x00\x14"
    b"\x02\x00\x15\x02\x00\x16\x02\x00\x17\x02\x00\x18\x02\x00\x19\x02\x00\x1a\x02\x00"
    b"\x1b\x02\x00\x1c\x02\x00\x1d\x02\x00\x1e\x01\x00\x0a\x0b\x20\x0b\x0b\x10\x0c\x02"
    b"\x00\x01\x1f\x00\x00\x12\x1f\x00\x00\x20\x0b\x10\x21\x0b\x18\x22\x05\x00\x23\x0b"
    b"\x10\x24\x05\x00\x25\x05\x00\x26\x06\x00\x27\x09\x00\x28\x0d\x10\x01\x29\x01\x00"
    b"\x2a\x08\x00\x2b\x06\x00\x2c\x04\x00\x2d\x06\x00\x2e\x0b\x10\x2f\x06\x00\x30\x06"
    b"\x00\x31\x06\x00\x09\x1f\x00\x00\x21\x0b\x18\x22\x05\x00\x32\x0b\x10\x2f\x06\x00"
    b"\x2d\x06\x00\x2e\x0b\x10\x30\x06\x00\x2c\x04\x00\x04\x1f\x00\x00\x22\x05\x00\x32"
    b"\x0b\x10\x24\x05\x00\x04\x1f\x00\x00\x22\x05\x00\x32\x0b\x10\x2c\x04\x00\x04\x1f"
    b"\x00\x00\x22\x05\x00\x32\x0b\x10\x24\x05\x00\x01\x1f\x00\x00\x04\x1f\x00\x00\x32"
    b"\x0b\x10\x33\x01\x00\x34\x0d\x12\x02\x35\x07\x00\x22\x05\x00\x02\x1f\x00\x00\x36"
    b"\x0b\x10\x01\x1f\x00\x00\x01\x37\x00\x00\x02\x33\x00\x00\x28\x0d\x01\x07\x29\x01"
    b"\x00\x1f\x00\x00\x38\x00\x00\x39\x00\x00\x3a\x04\x00\x35\x07\x00\x3b\x0c\x78\x01"
    b"\x3c\x01\x00\x01\x3c\x01\x00\x01\x37\x02\x00\x03\x3d\x02\x00\x3e\x02\x00\x3f\x0d"
    b"\x08\x08\x40\x02\x00\x0d\x02\x00\x35\x07\x00\x04\x08\x00\x1f\x00\x00\x41\x0b\x10"
    b"\x38\x00\x00\x42\x0c\x78\x00\x03\x13\x07\x00\x0d\x02\x00\x43\x00\x00\x02\x1f\x00"
    b"\x00\x37\x01\x00\x04\x1f\x00\x00\x32\x0b\x10\x33\x01\x00\x34\x0d\x12\x02\x35\x07"
    b"\x00\x22\x05\x00\x01\x44\x01\x00\x01\x44\x01\x00\x01\x45\x0a\x10\x01\x45\x0a\x10"
    b"\x02\x05\x00\x00\x46\x0a\x20\x02\x05\x00\x00\x47\x0a\x08\x02\x48\x02\x00\x49\x02"
    b"\x00\x00\x03\x4a\x02\x00\x4b\x00\x00\x4c\x0a\xc0\x01\x3e\x02\x00\x00\x03\x0a\x0b"
    b"\x20\x0b\x0b\x10\x0c\x02\x00\x06\x1f\x00\x00\x4d\x00\x00\x21\x0b\x18\x2d\x06\x00"
    b"\x2e\x0b\x10\x30\x06\x00\x06\x1f\x00\x00\x4d\x00\x00\x20\x0b\x10\x22\x05\x00\x32"
    b"\x0b\x10\x24\x05\x00\x01\x2f\x06\x00\x01\x2f\x06\x00\x07\x29\x01\x00\x1f\x00\x00"
    b"\x38\x00\x00\x39\x00\x00\x3a\x04\x00\x35\x07\x00\x3b\x0c\x78\x07\x1f\x00\x00\x20"
    b"\x0b\x10\x21\x0b\x18\x22\x05\x00\x32\x0b\x10\x24\x05\x00\x35\x07\x00\x07\x38\x00"
    b"\x00\x3b\x0c\x78\x4e\x06\x00\x4f\x06\x00\x32\x0b\x10\x50\x08\x00\x13\x07\x00\x02"
    b"\x38\x00\x00\x3b\x0c\x78"
)

_OFF = (
    b"\x00\x00\x16\x00\x47\x00\x48\x00\x79\x00\x7d\x00\xb8\x00\xd4\x00\xe1\x00\xee\x00"
    b"\xfb\x00\xff\x00\x13\x01\x1a\x01\x1e\x01\x22\x01\x3f\x01\x43\x01\x47\x01\x4b\x01"
    b"\x6e\x01\x6f\x01\x79\x01\x80\x01\x94\x01\x98\x01\x9c\x01\xa0\x01\xa4\x01\xab\x01"
    b"\xb2\x01\xb9\x01\xba\x01\xc4\x01\xc8\x01\xc9\x01\xd3\x01\xe6\x01\xf9\x01\xfd\x01"
    b"\x01\x02\x17\x02\x2d\x02\x43\x02"
)

_LO = (
    b"\x05\x29\x00\x3c\x01\x37\x15\x0a\x07\x0a\x01\x05\x02\x01\x01\x02\x02\x02\x04\x09"
    b"\x00\x0d\x03\x05\x02\x02\x10\x10\x21\x09\x08\x00\xc5\x04\x00\x06\x0c\x0c\x04\x04"
    b"\x0f\x14\x1b\x02"
)

_HI = (
    b"\xf0\xd9\x00\x6c\x01\x9f\x4d\x1a\x17\x1a\x01\xed\x12\x01\x01\x89\x02\x02\x04\xf0"
    b"\x00\x0d\x03\xed\x02\x02\x10\x10\x21\x09\x08\x00\xc5\x04\x00\x36\x34\x2c\x04\x04"
    b"\x87\x4c\xa3\x7a"
)

_MAY = (
    b"\x00\x00\x0e\x00\x0e\x00\x04\x00\x04\x00\x04\x00\x04\x00\x0e\x00\x04\x00\x0e\x00"
    b"\x0e\x00\x0e\x00\x04\x00\x00\x00\x08\x00\x08\x00\x08\x00\x08\x00\x04\x00\x04\x00"
    b"\x00\x00\x00\x00"
)


def is_request(msg_id):
    return 0 < msg_id < 0x40


def is_event(msg_id):
    return 0x40 <= msg_id < 0x80


def index(msg_id):
    """k of message msg_id in the compact tables, -1 when the catalog has no such id."""
    return _AT[msg_id] - 1 if 0 <= msg_id <= 0xFF else -1


def find(name):
    """k of the message called name, -1 when there is none (allocates nothing)."""
    return _find(_MN, _MNO, name)


def msg_id(name):
    """The id of the message called name (KeyError when there is none)."""
    k = _find(_MN, _MNO, name)
    if k < 0:
        raise KeyError(name)
    return _IDS[k]


def name(msg_id):
    """The name of message msg_id (a new str: for texts and the host)."""
    return _name(_MN, _MNO, _AT[msg_id] - 1)


def field_name(i):
    """The name of field name number i (_LAY's first byte of a field)."""
    return _name(_FN, _FNO, i)


def field_is(i, key):
    """Whether key is the name of field name number i (allocates nothing)."""
    a = _FNO[2 * i] | _FNO[2 * i + 1] << 8
    b = _FNO[2 * i + 2] | _FNO[2 * i + 3] << 8
    return len(key) == b - 1 - a and _FN.startswith(key, a)


def _name(names, offs, i):
    if i < 0:
        raise KeyError(i)
    return names[offs[2 * i] | offs[2 * i + 1] << 8 : (offs[2 * i + 2] | offs[2 * i + 3] << 8) - 1]


def _find(names, offs, key):
    n = len(key)
    for i in range(len(offs) // 2 - 1):
        a = offs[2 * i] | offs[2 * i + 1] << 8
        if (offs[2 * i + 2] | offs[2 * i + 3] << 8) - 1 - a == n and names.startswith(key, a):
            return i
    return -1


def may(msg_id, role):
    """Whether a session of role may send request msg_id (SPEC §12 step f)."""
    k = _AT[msg_id] - 1
    return k >= 0 and 0 < role < 8 and _MAY[k] >> role & 1 == 1


def roles_may(msg_id):
    """The roles that may send request msg_id, in their numbers' order (a refusal's text)."""
    k = _AT[msg_id] - 1
    return [r for r in sorted(ROLE_NAMES) if k >= 0 and _MAY[k] >> r & 1]


# The host's rich tables: declared here, made by __getattr__ when read (schema.py).
MESSAGES: "tuple"
ID: "dict[str, int]"
NAME: "dict[int, str]"
FIELDS: "dict[int, tuple]"
BOUNDS: "dict[int, tuple[int, int]]"
ROOM: "dict[int, int]"
MAY: "dict[int, tuple[int, ...]]"
PACKED: "tuple[int, ...]"
ERROR_NAMES: "dict[int, str]"


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
