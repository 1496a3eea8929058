"""The message catalog's rich form: every message's fields by name, type and unit, the
source the schema hash, SPEC.md and the host's tables are made from.

A board never imports this module: it holds catalog.py's compact tables (made from
this one, tests/test_protocol_spec.py keeps them equal). The host reads these through
catalog's names (catalog.MESSAGES, FIELDS, ID, NAME, BOUNDS, ROOM, MAY, ...), made
here when first read. catalog.py's docstring says what each field type means.
"""

import binascii

from protocol.catalog import (
    ALARMS_PAGE,
    BOOL,
    ERROR,
    HELLO_PREFIX,
    LIB_CHUNK,
    LIST,
    LOG_PAGE,
    MS,
    OMS,
    OQ,
    OS,
    PROTOCOL_VERSION,
    RAW,
    REFUSED,
    ROLES,
    SIZE,
    STR,
    TAPER_PAGE,
    TEXT,
    TYPES,
    U8,
    U16,
    U32,
    U64,
    Q,
)
from protocol.frame import MAX_PAYLOAD
from protocol.text import TEXT_MAX

_ALARM = (
    ("id", U16),
    ("ch", U8),
    ("code", U8),  # wire number of the alarm's reason (protocol/reasons.py)
    ("priority", U8),  # PRIORITY_NAMES
    ("acked", BOOL),
    ("at_ms", MS),
    ("message", TEXT, TEXT_MAX),
)

# One step of a taper plan: at device uptime at_ms the dose becomes `dose`.
_STEP = (("at_ms", MS), ("dose", Q, "@unit"))

# (id, name, fields)
MESSAGES = (
    # HELLO's first two fields and HELLO_R's first twelve are frozen: every protocol
    # version keeps them (later versions append), so a device reads protocol and schema
    # at fixed offsets before it decodes the rest, and a mismatch can always be read and
    # reported.
    (
        0x01,
        "HELLO",
        (
            ("protocol", U8),
            ("schema", U32),
            ("host", STR, 24),
            ("supervise_s", U16),  # heartbeat interval the host promises; 0: one-shot
            ("wall_ms", U64),  # the host's Unix time in ms, 0: none
            ("role", U8),  # ROLES: the key this host will prove it holds at AUTH
            ("nonce", RAW, 16),  # the host's fresh random nonce (Nh)
        ),
    ),
    (
        0x81,
        "HELLO_R",
        (
            ("protocol", U8),
            ("schema", U32),
            ("firmware", STR, 24),
            ("board", STR, 24),
            ("channels", U8),
            ("library", STR, 32),
            ("library_version", STR, 16),
            ("library_crc", U32),
            ("boot_id", U32),  # random per boot: a new value means the device reset
            ("replay_window", U8),  # answers the device keeps for retries, per session
            ("max_payload", U16),
            # SHA-256 (64 hex digits) of the bundle the firmware was flashed from
            # (manifest.json); "" when it runs from source (the CPython emulator).
            ("bundle", STR, 64),
            # Added by protocol 3, after the frozen fields.
            ("board_id", STR, 16),  # 16 lowercase hex digits: the key file it needs
            ("auth", U8),  # 1: keyed; 0: the emulator's insecure mode (all-zero keys)
            ("role", U8),  # HELLO's, echoed
            ("nonce", RAW, 16),  # the device's fresh random nonce (Nd)
        ),
    ),
    (0x02, "INFO", ()),
    (
        0x82,
        "INFO_R",
        (
            ("uptime_ms", MS),
            ("boot_id", U32),
            ("rx_frames", U32),  # the device decoder's counters since boot
            ("rx_bad_crc", U32),
            ("rx_oversize", U32),
            ("rx_bad_cobs", U32),
            ("rx_unknown", U32),
            ("rx_bad_length", U32),
            ("auth_refused", U32),  # AUTH proofs refused since boot
            ("bad_tag", U32),  # frames refused for a missing or wrong tag
            ("stale_ctr", U32),  # tagged frames refused for a counter not newer
            ("forbidden", U32),  # requests refused for the session's role
            ("library_problems", U16),  # the active library's problems (0: valid)
            # The active library, as HELLO_R's: the one a push switched to since then.
            ("library", STR, 32),
            ("library_version", STR, 16),
            ("library_crc", U32),
        ),
    ),
    (0x03, "STATUS", (("ch", U8),)),
    (
        0x83,
        "STATUS_R",
        (
            ("ch", U8),
            ("state", STR, 16),
            ("drug", STR, 24),  # "" when idle
            ("dose", Q, "@dose_unit"),
            ("dose_unit", STR, 16),
            ("rate", Q, "mL/h"),
            ("volume_infused", Q, "mL"),
            ("volume_left", OQ, "mL"),  # None: no volume was given
            ("time_to_empty_s", OS),  # None: unknown (no volume, or not running)
            ("alarms", LIST, 16, (("id", U16),)),
            ("taper_next_ms", OMS),  # tapering: when the next step is due, else None
            ("taper_next_dose", OQ, "@dose_unit"),  # tapering: the dose it steps to
            ("override", BOOL),  # the dose was set past a soft limit by an override
            # The last start's order (None, and conc_unit "", before a first start): its
            # concentration, the patient's weight (None: none given), the volume programmed.
            ("conc", OQ, "@conc_unit"),
            ("conc_unit", STR, 16),
            ("weight", OQ, "kg"),
            ("volume", OQ, "mL"),
            # The patient's weight (firmware/rules/inputs.py, check_patient), whatever this
            # channel runs: the one every start's weight must be; None: none known yet.
            ("patient_weight", OQ, "kg"),
        ),
    ),
    (
        0x04,
        "START",
        (
            ("ch", U8),
            ("drug", STR, 24),
            ("dose", Q, "@unit"),
            ("unit", STR, 16),
            ("weight", OQ, "kg"),
            ("conc", OQ, "@conc_unit"),
            ("conc_unit", STR, 16),  # "" when conc is None
            ("volume", OQ, "mL"),
            ("override", BOOL),
        ),
    ),
    (0x84, "START_R", (("ch", U8), ("dose", Q, "@unit"), ("unit", STR, 16), ("rate", Q, "mL/h"))),
    (
        0x05,
        "TITRATE",
        (("ch", U8), ("dose", Q, "@unit"), ("unit", STR, 16), ("override", BOOL)),
    ),
    (0x85, "TITRATE_R", (("ch", U8), ("dose", Q, "@unit"), ("unit", STR, 16), ("rate", Q, "mL/h"))),
    (0x06, "STOP", (("ch", U8),)),
    (
        0x86,
        "STOP_R",
        (
            ("ch", U8),
            ("unit", STR, 16),
            # Empty for drugs stopped at once; for taper drugs the steps the device
            # will apply on its own, the last one with dose 0: `total` of them, the
            # first page here, the rest from TAPER.
            ("total", U16),
            ("plan", LIST, TAPER_PAGE, _STEP),
        ),
    ),
    # reason: occlusion | air_in_line | extravasation | clinician
    (0x07, "ESTOP", (("ch", U8), ("reason", STR, 16))),
    (0x87, "ESTOP_R", (("ch", U8),)),
    (0x08, "ALARMS", (("first", U8),)),
    # Active alarms from index `first` on; ask again from first + len(alarms) while
    # that is below total.
    (0x88, "ALARMS_R", (("total", U8), ("alarms", LIST, ALARMS_PAGE, _ALARM))),
    (0x09, "ACK", (("alarm_id", U16),)),
    (0x89, "ACK_R", (("alarm_id", U16),)),
    (0x0A, "LOG", (("first", U32),)),
    # Event log entries with seq >= first, oldest first, as many as fit MAX_PAYLOAD
    # (at least one, at most LOG_PAGE); `next` is the seq to ask for next (equal to
    # `first` when there is nothing newer), `oldest` the oldest seq the device's
    # persistent log still holds (older entries were rotated out). seq counts across
    # boots; wall_ms is absent for entries made before a host gave the time at HELLO.
    (
        0x8A,
        "LOG_R",
        (
            ("oldest", U32),
            ("next", U32),
            (
                "entries",
                LIST,
                LOG_PAGE,
                (
                    ("seq", U32),
                    ("boot_id", U32),  # the boot the entry was made in
                    ("at_ms", MS),  # device uptime in that boot
                    ("wall_ms", OMS),  # Unix time in ms, None: no host had given it
                    ("ch", U8),  # 0: not about one channel
                    ("kind", STR, 16),
                    ("code", U8),
                    ("text", TEXT, TEXT_MAX),
                ),
            ),
        ),
    ),
    (0x0B, "HEARTBEAT", ()),
    (0x8B, "HEARTBEAT_R", (("uptime_ms", MS), ("boot_id", U32), ("active_alarms", U8))),
    # The taper plan of the last STOP of channel `ch`, from step `first` on; ask again
    # from first + len(plan) while that is below total.
    (0x0C, "TAPER", (("ch", U8), ("first", U16))),
    (
        0x8C,
        "TAPER_R",
        (("ch", U8), ("unit", STR, 16), ("total", U16), ("plan", LIST, TAPER_PAGE, _STEP)),
    ),
    # This session's heartbeat interval (0: ends its supervision). While any session
    # supervises, a host silent for max(link timeout, 3 x the largest interval) is an
    # alarm (link_lost); nobody supervising, silence is no alarm (SPEC §3).
    (0x0D, "SUPERVISE", (("interval_s", U16),)),
    (0x8D, "SUPERVISE_R", (("interval_s", U16),)),
    # The host's proof that it holds the role's key (untagged: the session has no
    # proven key yet); AUTH_R, tagged with the device's counter 1, the device's (§12).
    (0x0E, "AUTH", (("proof", RAW, 16),)),
    (0x8E, "AUTH_R", (("proof", RAW, 16),)),
    # Service only: the new key of `role`, wrapped (auth.wrap under the session key and
    # this frame's ctr); KEY_R: auth.key_check of the key the device stored.
    (0x0F, "KEY", (("role", U8), ("key", RAW, 32))),
    (0x8F, "KEY_R", (("role", U8), ("check", RAW, 8))),
    # Service only: a new drug library, pushed whole then switched to (SPEC §6).
    # LIB_BEGIN: the file's size and the CRC-32 of its bytes; LIB_DATA: n bytes of it
    # at offset (the bytes the device holds), in data's first n; LIB_DATA_R: the offset
    # of the next; LIB_COMMIT_R: the identity of the library now active.
    (0x10, "LIB_BEGIN", (("size", U32), ("crc", U32))),
    (0x90, "LIB_BEGIN_R", ()),
    (0x11, "LIB_DATA", (("offset", U32), ("n", U8), ("data", RAW, LIB_CHUNK))),
    (0x91, "LIB_DATA_R", (("next", U32),)),
    (0x12, "LIB_COMMIT", ()),
    (
        0x92,
        "LIB_COMMIT_R",
        (("library", STR, 32), ("library_version", STR, 16), ("library_crc", U32)),
    ),
    # The program running on channel ch moved to the new syringe on channel `to`, in one
    # decision: `to` starts at ch's dose (and taper, if one runs), ch stops without a
    # taper. drug, conc and volume are the new syringe's label as read at the bedside:
    # refused unless they are ch's drug and concentration (SPEC §5).
    (
        0x13,
        "HANDOVER",
        (
            ("ch", U8),
            ("to", U8),
            ("drug", STR, 24),
            ("conc", OQ, "@conc_unit"),
            ("conc_unit", STR, 16),  # "" when conc is None
            ("volume", OQ, "mL"),
        ),
    ),
    (
        0x93,
        "HANDOVER_R",
        (
            ("ch", U8),
            ("to", U8),
            ("state", STR, 16),  # to's: running, or tapering (its taper goes on)
            ("dose", Q, "@unit"),
            ("unit", STR, 16),
            ("rate", Q, "mL/h"),
        ),
    ),
    # The patient's weight, one for every channel (SPEC §5): every start's weight must be
    # it, and a start without one runs at it. None: no patient known (the next start's
    # weight is the new patient's). Refused while a dose that went through the weight runs.
    (0x14, "PATIENT", (("weight", OQ, "kg"),)),
    (0x94, "PATIENT_R", (("weight", OQ, "kg"),)),
    # Unsolicited, device -> host; seq counts events (not requests) so a gap shows
    # a lost event. The host does not answer them.
    (0x40, "EV_ALARM", _ALARM),
    (
        0x41,
        "EV_STATE",
        (
            ("ch", U8),
            ("state", STR, 16),
            ("drug", STR, 24),
            ("dose", Q, "@unit"),
            ("unit", STR, 16),
            ("rate", Q, "mL/h"),
            ("at_ms", MS),
        ),
    ),
    # The safety core refused the request; nothing changed.
    (
        REFUSED,
        "REFUSED",
        (
            ("code", U8),  # wire number of the reason (protocol/reasons.py)
            ("message", TEXT, TEXT_MAX),
            ("lo", OQ, "@unit"),  # allowed range, None when the refusal has none
            ("hi", OQ, "@unit"),
            ("unit", STR, 16),
            ("next_at_ms", OMS),  # earliest time it would be allowed, or None
            ("uptime_ms", MS),  # the device's uptime when it refused: next_at_ms - uptime_ms
            # is the wait, which a host shows instead of a raw uptime
        ),
    ),
    # The request never reached the safety core (ERR_* codes above).
    (ERROR, "ERROR", (("code", U8), ("message", TEXT, TEXT_MAX))),
)

ID = {}
NAME = {}
FIELDS = {}
for _id, _name, _fields in MESSAGES:
    ID[_name] = _id
    NAME[_id] = _name
    FIELDS[_id] = _fields


_ALL = (ROLES["monitor"], ROLES["clinician"], ROLES["service"])
_CLINICIAN = (ROLES["clinician"],)
# Per request id, the roles that may send it (step f of SPEC §12's checks). HELLO and
# AUTH are absent: they come before a session has a proven role.
MAY = {}
for _name in ("INFO", "STATUS", "ALARMS", "LOG", "HEARTBEAT", "TAPER"):
    MAY[ID[_name]] = _ALL
# SUPERVISE too is the clinician's: link_lost watches the host that changes delivery,
# and a display's or a service tool's frames must not stand in for its silence.
for _name in ("START", "TITRATE", "STOP", "ESTOP", "ACK", "SUPERVISE", "HANDOVER", "PATIENT"):
    MAY[ID[_name]] = _CLINICIAN
for _name in ("KEY", "LIB_BEGIN", "LIB_DATA", "LIB_COMMIT"):
    MAY[ID[_name]] = (ROLES["service"],)


def _bounds(fields):
    # (smallest, largest) payload size of a record of these fields
    lo = hi = 0
    for f in fields:
        t = f[1]
        if t in SIZE:
            lo += SIZE[t]
            hi += SIZE[t]
        elif t == RAW:
            lo += f[2]
            hi += f[2]
        elif t == LIST:
            sub = _bounds(f[3])[1]
            lo += 1
            hi += 1 + f[2] * sub
        else:
            lo += 1
            hi += 1 + f[2]
    return lo, hi


# Per message id: smallest and largest payload; the decoder rejects other lengths.
# ROOM: the largest a record of its fields could be, the encoder's buffer.
BOUNDS = {}
ROOM = {}
for _id, _fields in FIELDS.items():
    BOUNDS[_id] = _bounds(_fields)
    ROOM[_id] = BOUNDS[_id][1]
# Packed answers hold as many records as fit MAX_PAYLOAD, never more.
PACKED = (ID["LOG_R"],)
for _id in PACKED:
    BOUNDS[_id] = (BOUNDS[_id][0], MAX_PAYLOAD)
# HELLO of any length: protocol and schema (5 bytes) are all a device needs to answer
# a host of another version with a mismatch instead of a bad length (SPEC §3).
BOUNDS[0x01] = (HELLO_PREFIX, MAX_PAYLOAD)


def _describe(fields):
    out = []
    for f in fields:
        if f[1] == LIST:
            out.append("%s:list%d[%s]" % (f[0], f[2], _describe(f[3])))
        elif len(f) > 2:
            out.append("%s:%s:%s" % (f[0], f[1], f[2]))
        else:
            out.append("%s:%s" % (f[0], f[1]))
    return ",".join(out)


def schema_text():
    """The canonical text the schema hash is the CRC-32 of (one line per message)."""
    lines = ["pumpguard %d" % PROTOCOL_VERSION]
    for msg_id, name, fields in MESSAGES:
        lines.append("%02x %s %s" % (msg_id, name, _describe(fields)))
    return "\n".join(lines)


# CRC-32 of schema_text(): HELLO compares it, so two builds agree on every layout
# (catalog.SCHEMA_HASH is this number, written out: tests/test_protocol_spec.py).
SCHEMA_HASH = binascii.crc32(schema_text().encode())


def compact():
    """catalog.py's compact tables, made from these (tests/test_protocol_compact.py
    compares them with catalog's), as catalog.py's comment describes them."""
    names = []

    def add(fields):
        for f in fields:
            if f[0] not in names:
                names.append(f[0])
            if f[1] == LIST:
                add(f[3])

    for _id, _name, fields in MESSAGES:
        add(fields)

    def layout(fields):
        out = [len(fields)]
        for f in fields:
            out += [names.index(f[0]), TYPES.index(f[1])]
            if f[1] == LIST:
                out.append(f[2])
                out += layout(f[3])
            else:
                out.append(f[2] if f[1] in (RAW, STR, TEXT) else 0)
        return out

    at = bytearray(256)
    lay = []
    off = []
    lo = []
    hi = []
    may = []
    for k, (msg_id, _name, fields) in enumerate(MESSAGES):
        at[msg_id] = k + 1
        off += [len(lay) & 0xFF, len(lay) >> 8]
        lay += layout(fields)
        lo.append(BOUNDS[msg_id][0])
        hi.append(BOUNDS[msg_id][1])
        may.append(sum(1 << r for r in MAY.get(msg_id, ())))
    return {
        "_FN": "|".join(names) + "|",
        "_FNO": _offsets(names),
        "_MN": "|".join(m[1] for m in MESSAGES) + "|",
        "_MNO": _offsets([m[1] for m in MESSAGES]),
        "_AT": bytes(at),
        "_LAY": bytes(lay),
        "_OFF": bytes(off),
        "_LO": bytes(lo),
        "_HI": bytes(hi),
        "_MAY": bytes(may),
    }


def _offsets(names):
    # u16 LE starts of each name in "|".join(names) + "|", then the end (one past it)
    out = []
    at = 0
    for n in list(names) + [""]:
        out += [at & 0xFF, at >> 8]
        at += len(n) + 1
    return bytes(out)


def literals():
    """catalog.py's compact tables as the Python source to paste there (between its
    comment and is_request) when a message changes."""
    out = []
    for name, value in compact().items():
        lines = []
        if isinstance(value, str):
            cur = ""
            for piece in value.split("|")[:-1]:
                if cur and len(cur) + len(piece) + 1 > 80:
                    lines.append('    "%s"' % cur)
                    cur = ""
                cur += piece + "|"
            lines.append('    "%s"' % cur)
        else:
            hexed = ["\\x%02x" % b for b in value]
            for i in range(0, len(hexed), 20):
                lines.append('    b"%s"' % "".join(hexed[i : i + 20]))
        out.append("%s = (\n%s\n)\n" % (name, "\n".join(lines)))
    return "\n".join(out)
