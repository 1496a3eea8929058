"""The golden vectors: their definitions, and a check that protocol/vectors.json is
exactly what they encode to, with crcmod's predefined 'crc-32' as the frame CRC.

Two handshakes (SESSIONS: a clinician session that starts a channel, a service session
that rotates the clinician's key) have their transcript, session key, proofs, tags and
wrapped key computed here with CPython's own hmac and hashlib, not protocol/auth.py, so
the portable test recomputing them with protocol/auth.py on both interpreters checks
one implementation against another.

Regenerate the file after a catalog change (the schema hash changes with it):

    .venv/bin/python tests/test_protocol_vectors.py
"""

import hashlib
import hmac
import json
import pathlib
import struct

import crcmod.predefined

from protocol import catalog, frame, messages

PATH = pathlib.Path(__file__).resolve().parent.parent / "protocol" / "vectors.json"
CRC = "crc-32"

_ALARM = {
    "id": 3,
    "ch": 1,
    "code": 41,
    "priority": 2,
    "acked": False,
    "at_ms": 5_400_000,
    "message": "syringe near empty: 14 min left",
}

# The session id of the vectors' requests and answers (HELLO, events and an ERROR to a
# frame without one carry none).
SID = 0x5A3C

# (name, message, seq, fields[, sid])
VECTORS = [
    (
        "hello",
        "HELLO",
        1,
        {
            "protocol": 3,
            "schema": catalog.SCHEMA_HASH,
            "host": "pumpguard 0.1",
            "supervise_s": 0,
            "wall_ms": 0,
            "role": 2,
            "nonce": bytes(range(16)),
        },
    ),
    (
        "hello_supervising",
        "HELLO",
        1,
        {
            "protocol": 3,
            "schema": catalog.SCHEMA_HASH,
            "host": "monitor",
            "supervise_s": 2,
            "wall_ms": 1_796_112_000_000,
            "role": 1,
            "nonce": bytes(range(0xF0, 0x100)),
        },
    ),
    # A HELLO_R travels in the new session's frame: its sid is the session's id.
    (
        "hello_r",
        "HELLO_R",
        1,
        {
            "protocol": 3,
            "schema": catalog.SCHEMA_HASH,
            "firmware": "0.1.0",
            "board": "pico",
            "channels": 2,
            "library": "pumpguard-adult-icu-vasoactive",
            "library_version": "2026-11",
            "library_crc": 0xDEADBEEF,
            "boot_id": 0x12345678,
            "replay_window": 1,
            "max_payload": 240,
            "bundle": "5f0c" * 16,
            "board_id": "e6614103e7a3b02c",
            "auth": 1,
            "role": 2,
            "nonce": bytes(range(16, 32)),
        },
        SID,
    ),
    (
        "error_mismatch",
        "ERROR",
        1,
        {
            "code": 4,
            "message": f"device speaks protocol 3 schema {catalog.SCHEMA_HASH:08x}, "
            "host 2 schema a3ee1cb3",
        },
        0,  # the answer to a HELLO, which carries no sid
    ),
    ("info", "INFO", 2, {}),
    (
        "info_r",
        "INFO_R",
        2,
        {
            "uptime_ms": 1_234_567_890_123,
            "boot_id": 0x12345678,
            "rx_frames": 1000,
            "rx_bad_crc": 3,
            "rx_oversize": 0,
            "rx_bad_cobs": 1,
            "rx_unknown": 0,
            "rx_bad_length": 2,
            "auth_refused": 1,
            "bad_tag": 4,
            "stale_ctr": 2,
            "forbidden": 1,
            "library_problems": 0,
            "library": "pumpguard-adult-icu-vasoactive",
            "library_version": "2026-11",
            "library_crc": 0xDEADBEEF,
        },
    ),
    ("status", "STATUS", 3, {"ch": 1}),
    (
        "status_r_running",
        "STATUS_R",
        3,
        {
            "ch": 1,
            "state": "running",
            "drug": "norepinephrine",
            "dose": 8_000000,
            "dose_unit": "mcg/min",
            "rate": 30_000000,
            "volume_infused": 12_500000,
            "volume_left": 37_500000,
            "time_to_empty_s": 4500,
            "alarms": [{"id": 3}],
            "taper_next_ms": None,
            "taper_next_dose": None,
            "override": True,
            "conc": 16_000000,
            "conc_unit": "mcg/mL",
            "weight": 70_000000,
            "volume": 50_000000,
            "patient_weight": 70_000000,
        },
    ),
    (
        "status_r_tapering",
        "STATUS_R",
        5,
        {
            "ch": 1,
            "state": "tapering",
            "drug": "vasopressin",
            "dose": 25000,
            "dose_unit": "units/min",
            "rate": 1_500000,
            "volume_infused": 2_000000,
            "volume_left": 18_000000,
            "time_to_empty_s": 43200,
            "alarms": [],
            "taper_next_ms": 7_200_000,
            "taper_next_dose": 20000,
            "override": False,
            "conc": 1_000000,
            "conc_unit": "units/mL",
            "weight": None,
            "volume": 20_000000,
            "patient_weight": None,
        },
    ),
    (
        "status_r_idle",
        "STATUS_R",
        4,
        {
            "ch": 2,
            "state": "idle",
            "drug": "",
            "dose": 0,
            "dose_unit": "",
            "rate": 0,
            "volume_infused": 0,
            "volume_left": None,
            "time_to_empty_s": None,
            "alarms": [],
            "taper_next_ms": None,
            "taper_next_dose": None,
            "override": False,
            "conc": None,
            "conc_unit": "",
            "weight": None,
            "volume": None,
            "patient_weight": 82_500000,
        },
    ),
    (
        "start_norepinephrine",
        "START",
        5,
        {
            "ch": 1,
            "drug": "norepinephrine",
            "dose": 8_000000,
            "unit": "mcg/min",
            "weight": None,
            "conc": 16_000000,
            "conc_unit": "mcg/mL",
            "volume": 50_000000,
            "override": False,
        },
    ),
    (
        "start_weight_override",
        "START",
        6,
        {
            "ch": 2,
            "drug": "epinephrine",
            "dose": 100000,
            "unit": "mcg/kg/min",
            "weight": 70_000000,
            "conc": 20_000000,
            "conc_unit": "mcg/mL",
            "volume": None,
            "override": True,
        },
    ),
    ("start_r", "START_R", 5, {"ch": 1, "dose": 8_000000, "unit": "mcg/min", "rate": 30_000000}),
    ("titrate", "TITRATE", 7, {"ch": 1, "dose": 12_000000, "unit": "mcg/min", "override": False}),
    (
        "titrate_r",
        "TITRATE_R",
        7,
        {"ch": 1, "dose": 12_000000, "unit": "mcg/min", "rate": 45_000000},
    ),
    # A syringe change: norepinephrine's program moves from channel 1 to channel 2.
    (
        "handover",
        "HANDOVER",
        9,
        {
            "ch": 1,
            "to": 2,
            "drug": "norepinephrine",
            "conc": 16_000000,
            "conc_unit": "mcg/mL",
            "volume": 50_000000,
        },
    ),
    (
        "handover_r",
        "HANDOVER_R",
        9,
        {
            "ch": 1,
            "to": 2,
            "state": "running",
            "dose": 12_000000,
            "unit": "mcg/min",
            "rate": 45_000000,
        },
    ),
    # The patient's weight set, then no patient known (a new one's next start sets it).
    ("patient", "PATIENT", 10, {"weight": 82_500000}),
    ("patient_r", "PATIENT_R", 10, {"weight": 82_500000}),
    ("patient_cleared", "PATIENT", 11, {"weight": None}),
    ("stop", "STOP", 8, {"ch": 1}),
    (
        "stop_r_taper",
        "STOP_R",
        8,
        {
            "ch": 1,
            "unit": "units/min",
            "total": 6,
            "plan": [{"at_ms": 3_600_000 * k, "dose": 30000 - 5000 * k} for k in range(1, 7)],
        },
    ),
    # A taper longer than a page: the first TAPER_PAGE steps here, the rest from TAPER.
    (
        "stop_r_long_taper",
        "STOP_R",
        8,
        {
            "ch": 1,
            "unit": "mcg/kg/min",
            "total": 20,
            "plan": [{"at_ms": 900_000 * k, "dose": 1_000000 - 50000 * (k + 1)} for k in range(18)],
        },
    ),
    ("taper", "TAPER", 18, {"ch": 1, "first": 18}),
    (
        "taper_r",
        "TAPER_R",
        18,
        {
            "ch": 1,
            "unit": "mcg/kg/min",
            "total": 20,
            "plan": [{"at_ms": 16_200_000, "dose": 50000}, {"at_ms": 17_100_000, "dose": 0}],
        },
    ),
    ("stop_r_now", "STOP_R", 9, {"ch": 2, "unit": "mcg/kg/min", "total": 0, "plan": []}),
    ("estop", "ESTOP", 10, {"ch": 1, "reason": "occlusion"}),
    ("estop_r", "ESTOP_R", 10, {"ch": 1}),
    ("alarms", "ALARMS", 11, {"first": 0}),
    (
        "alarms_r",
        "ALARMS_R",
        11,
        {
            "total": 2,
            "alarms": [
                {
                    "id": 4,
                    "ch": 0,
                    "code": 40,
                    "priority": 3,
                    "acked": True,
                    "at_ms": 5_410_000,
                    "message": "host link lost: holding 8 mcg/min",
                },
            ],
        },
    ),
    ("ack", "ACK", 12, {"alarm_id": 3}),
    ("ack_r", "ACK_R", 12, {"alarm_id": 3}),
    ("log", "LOG", 13, {"first": 0}),
    (
        "log_r",
        "LOG_R",
        13,
        {
            "oldest": 0,
            "next": 2,
            "entries": [
                {
                    "seq": 1,
                    "boot_id": 0x12345678,
                    "at_ms": 2000,
                    "wall_ms": None,
                    "ch": 1,
                    "kind": "decision",
                    "code": 24,
                    "text": "vasopressin 0.05 units/min is above the hard maximum 0.04 units/min",
                },
            ],
        },
    ),
    # Packed: as many entries as fit MAX_PAYLOAD, across a reset (two boot ids).
    (
        "log_r_packed",
        "LOG_R",
        13,
        {
            "oldest": 3,
            "next": 12,
            "entries": [
                {
                    "seq": seq,
                    "boot_id": 0x12345678 if seq < 8 else 0x9ABCDEF0,
                    "at_ms": 1000 * seq,
                    "wall_ms": 1_796_112_000_000 + 1000 * seq if seq < 10 else None,
                    "ch": seq % 3,
                    "kind": kind,
                    "code": code,
                    "text": text,
                }
                for seq, kind, code, text in (
                    (8, "input", 9, "restored from snapshot"),
                    (9, "alarm", 49, "medium #3: channel 1 resumed"),
                    (10, "input", 61, "host link back"),
                    (11, "ack", 6, "ack alarm 3"),
                )
            ],
        },
    ),
    ("supervise", "SUPERVISE", 19, {"interval_s": 2}),
    ("supervise_r", "SUPERVISE_R", 19, {"interval_s": 2}),
    ("supervise_end", "SUPERVISE", 20, {"interval_s": 0}),
    (
        "error_stale",
        "ERROR",
        7,
        {"code": 6, "message": "seq 7 not newer than seq 12, the last this session ran: not run"},
    ),
    ("heartbeat", "HEARTBEAT", 14, {}),
    (
        "heartbeat_r",
        "HEARTBEAT_R",
        14,
        {"uptime_ms": 86_400_000, "boot_id": 0x12345678, "active_alarms": 1},
    ),
    ("ev_alarm", "EV_ALARM", 1, _ALARM),
    (
        "ev_state",
        "EV_STATE",
        2,
        {
            "ch": 1,
            "state": "tapering",
            "drug": "vasopressin",
            "dose": 25000,
            "unit": "units/min",
            "rate": 1_500000,
            "at_ms": 3_600_000,
        },
    ),
    (
        "refused_hard_max",
        "REFUSED",
        15,
        {
            "code": 24,
            "message": "vasopressin 0.05 units/min is above the hard maximum 0.04 units/min",
            "lo": 10000,
            "hi": 40000,
            "unit": "units/min",
            "next_at_ms": None,
            "uptime_ms": 600_000,
        },
    ),
    (
        "refused_too_soon",
        "REFUSED",
        16,
        {
            "code": 31,
            "message": "dobutamine may double at most every 15 min",
            "lo": None,
            "hi": None,
            "unit": "",
            "next_at_ms": 900_000,
            "uptime_ms": 782_000,
        },
    ),
    ("error_hello_required", "ERROR", 17, {"code": 3, "message": "send HELLO first"}),
    # A library push: 16045 bytes, the CRC-32 of those bytes, its last chunk (77 bytes
    # at offset 15968, the rest of the data field zeros), the identity now active.
    ("lib_begin", "LIB_BEGIN", 20, {"size": 16045, "crc": 0x1C291CA3}),
    ("lib_begin_r", "LIB_BEGIN_R", 20, {}),
    (
        "lib_data_last",
        "LIB_DATA",
        104,
        {"offset": 15968, "n": 77, "data": b"  }\n }\n}\n".ljust(77, b" ").ljust(192, b"\0")},
    ),
    ("lib_data_r_last", "LIB_DATA_R", 104, {"next": 16045}),
    ("lib_commit", "LIB_COMMIT", 105, {}),
    (
        "lib_commit_r",
        "LIB_COMMIT_R",
        105,
        {"library": "ICU adult", "library_version": "2026.12", "library_crc": 0x9A4F02D1},
    ),
    # Largest payload the catalog allows: a full page of taper steps.
    (
        "taper_r_max",
        "TAPER_R",
        0xFFFF,
        {
            "ch": 255,
            "unit": "u" * 16,
            "total": 0xFFFF,
            "plan": [{"at_ms": 0xFFFFFFFFFFFFFFFE, "dose": 0x7FFFFFFF}] * catalog.TAPER_PAGE,
        },
    ),
]


def sid_of(vector):
    """A vector's sid: given, or SID for requests but HELLO and for their answers."""
    if len(vector) == 5:
        return vector[4]
    msg = vector[1]
    return 0 if msg == "HELLO" or catalog.is_event(catalog.ID[msg]) else SID


# --- The handshakes -------------------------------------------------------------------
#
# Fixed role keys and nonces (a real board draws them at random; these are fixtures).
# The clinician session is the one of the vectors "hello" and "hello_r" (sid SID).
CLINICIAN_KEY = bytes(range(0xA0, 0xC0))
SERVICE_KEY = bytes(range(0xC0, 0xE0))
NEW_CLINICIAN_KEY = bytes(range(0x60, 0x80))
SERVICE_SID = SID + 1
NH_SERVICE = bytes(range(0x30, 0x40))
ND_SERVICE = bytes(range(0x40, 0x50))


def _fields_of(name):
    return next(v[3] for v in VECTORS if v[0] == name)


def _hmac(key, msg):
    return hmac.new(key, msg, hashlib.sha256).digest()


def _session(name, role, role_key, hello, hello_r, sid):
    """th, Ks and both proofs of a handshake (SPEC §12), by CPython's hmac/hashlib."""
    p_hello = messages.encode("HELLO", hello)
    p_hello_r = messages.encode("HELLO_R", hello_r)
    th = hashlib.sha256(p_hello + struct.pack("<H", sid) + p_hello_r).digest()
    ks = _hmac(role_key, b"pumpguard session" + th)
    return {
        "name": name,
        "role": role,
        "role_key": role_key,
        "sid": sid,
        "th": th,
        "ks": ks,
        "host_proof": _hmac(ks, b"host proof" + th)[:16],
        "device_proof": _hmac(ks, b"device proof" + th)[:16],
    }


def sessions():
    """The two sessions, each with its frames: (name, message, seq, fields, sid, tagged),
    tagged None (untagged) or (sender, ctr)."""
    clin = _session(
        "clinician", "clinician", CLINICIAN_KEY, _fields_of("hello"), _fields_of("hello_r"), SID
    )
    start = dict(_fields_of("start_norepinephrine"))
    clin["frames"] = [
        ("hello", "HELLO", 1, _fields_of("hello"), 0, None),
        ("hello_r", "HELLO_R", 1, _fields_of("hello_r"), SID, None),
        ("auth", "AUTH", 2, {"proof": clin["host_proof"]}, SID, None),
        ("auth_r", "AUTH_R", 2, {"proof": clin["device_proof"]}, SID, ("D", 1)),
        ("start_tagged", "START", 3, start, SID, ("H", 1)),
        ("start_r_tagged", "START_R", 3, _fields_of("start_r"), SID, ("D", 2)),
        ("taper_tagged", "TAPER", 4, {"ch": 1, "first": 0}, SID, ("H", 2)),
        # The largest frame there is: the largest payload, with a sid, ctr and tag.
        ("taper_r_max_tagged", "TAPER_R", 4, _fields_of("taper_r_max"), SID, ("D", 3)),
    ]
    hello = dict(_fields_of("hello"), role=catalog.ROLES["service"], nonce=NH_SERVICE)
    hello_r = dict(_fields_of("hello_r"), role=catalog.ROLES["service"], nonce=ND_SERVICE)
    serv = _session("service", "service", SERVICE_KEY, hello, hello_r, SERVICE_SID)
    # KEY travels in the service session's host frame ctr 1: the wrap mask is bound to it.
    mask = _hmac(serv["ks"], b"key wrap" + struct.pack("<I", 1))
    serv["new_role"] = "clinician"
    serv["new_key"] = NEW_CLINICIAN_KEY
    serv["wrapped"] = bytes(a ^ b for a, b in zip(NEW_CLINICIAN_KEY, mask, strict=True))
    serv["check"] = _hmac(NEW_CLINICIAN_KEY, b"key check")[:8]
    role = catalog.ROLES["clinician"]
    serv["frames"] = [
        ("hello_service", "HELLO", 1, hello, 0, None),
        ("hello_r_service", "HELLO_R", 1, hello_r, SERVICE_SID, None),
        ("auth_service", "AUTH", 2, {"proof": serv["host_proof"]}, SERVICE_SID, None),
        ("auth_r_service", "AUTH_R", 2, {"proof": serv["device_proof"]}, SERVICE_SID, ("D", 1)),
        ("key", "KEY", 3, {"role": role, "key": serv["wrapped"]}, SERVICE_SID, ("H", 1)),
        ("key_r", "KEY_R", 3, {"role": role, "check": serv["check"]}, SERVICE_SID, ("D", 2)),
    ]
    return [clin, serv]


def _json(fields):
    """Fields as JSON holds them: RAW bytes as lowercase hex, the rest as they are."""
    return {k: v.hex() if isinstance(v, bytes) else v for k, v in fields.items()}


def _entry(crc, name, msg, seq, fields, sid, tagged=None, ks=None):
    key, ctr, sender = None, 0, b"H"
    if tagged:
        key, ctr, sender = ks, tagged[1], tagged[0].encode()
    wire = messages.to_wire(msg, seq, fields, crc=crc, sid=sid, key=key, ctr=ctr, sender=sender)
    out = {
        "name": name,
        "message": msg,
        "msg_id": catalog.ID[msg],
        "seq": seq,
        "sid": sid,
        "fields": _json(fields),
        "wire": wire.hex(),
    }
    if tagged:
        out["sender"] = tagged[0]
        out["ctr"] = tagged[1]
    return out


def build():
    crc = crcmod.predefined.mkCrcFun(CRC)
    out = [_entry(crc, v[0], v[1], v[2], v[3], sid_of(v)) for v in VECTORS]
    done = {v[0] for v in VECTORS}
    table = []
    for sess in sessions():
        for name, msg, seq, fields, sid, tagged in sess["frames"]:
            if name not in done:  # "hello" and "hello_r" are already in the list
                out.append(_entry(crc, name, msg, seq, fields, sid, tagged, sess["ks"]))
        row = {k: v.hex() if isinstance(v, bytes) else v for k, v in sess.items()}
        row["frames"] = [f[0] for f in sess["frames"]]
        table.append(row)
    return {
        "crc": CRC,
        "protocol_version": catalog.PROTOCOL_VERSION,
        "schema_hash": catalog.SCHEMA_HASH,
        "max_payload": frame.MAX_PAYLOAD,
        "vectors": out,
        "sessions": table,
    }


def test_vectors_file_is_current():
    assert json.loads(PATH.read_text()) == build(), "run: python tests/test_protocol_vectors.py"


def test_vectors_cover_every_message():
    assert {v["message"] for v in build()["vectors"]} == set(catalog.ID)


def test_largest_vector_is_max_payload_and_max_wire():
    vectors = {v["name"]: v for v in build()["vectors"]}
    fields = _fields_of("taper_r_max")
    # The largest fixed layout (packed LOG_R and HELLO of any length reach MAX_PAYLOAD).
    largest = max(catalog.ROOM[i] for i in catalog.ROOM if catalog.ROOM[i] <= frame.MAX_PAYLOAD)
    n = len(messages.encode("TAPER_R", fields))
    assert n == catalog.BOUNDS[catalog.ID["TAPER_R"]][1] == largest
    assert len(bytes.fromhex(vectors["taper_r_max"]["wire"])) <= frame.MAX_WIRE
    # Tagged, the same payload is the longest wire frame of all; within MAX_WIRE.
    wire = bytes.fromhex(vectors["taper_r_max_tagged"]["wire"])
    assert len(wire) == max(len(bytes.fromhex(v["wire"])) for v in vectors.values())
    assert len(wire) <= frame.MAX_WIRE and n + 23 <= frame.MAX_FRAME


def test_the_stdlib_reference_agrees_with_rfc_4231_case_2():
    # The reference these vectors are computed with (hmac/hashlib), pinned to the RFC.
    tag = _hmac(b"Jefe", b"what do ya want for nothing?")
    assert tag.hex() == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


def test_session_tags_are_the_stdlib_hmac_of_sender_and_signed_bytes():
    # Independent of protocol/auth.py: each tagged vector's tag, recomputed here from its
    # unstuffed frame with hmac.new, and its ctr read at its fixed offset.
    by_name = {v["name"]: v for v in build()["vectors"]}
    tagged = 0
    for sess in sessions():
        for name, _msg, _seq, _fields, _sid, how in sess["frames"]:
            if how is None:
                continue
            body = unstuff(bytes.fromhex(by_name[name]["wire"]))
            assert body[0] == 0x13 and len(body) == body[4] + 23
            signed = body[:-12]
            assert struct.unpack_from("<I", signed, len(signed) - 4)[0] == how[1]
            assert body[-12:-4] == _hmac(sess["ks"], how[0].encode() + signed)[:8]
            tagged += 1
    assert tagged == 8


def unstuff(wire):
    """The frame inside one wire frame (the reference COBS decoding)."""
    data = wire[1:-1]
    out = bytearray()
    i = 0
    while i < len(data):
        code = data[i]
        out += data[i + 1 : i + code]
        i += code
        if code < 0xFF and i < len(data):
            out.append(0)
    return bytes(out)


def test_vectors_cover_frames_with_and_without_a_sid_and_a_packed_log_page():
    sids = {v["name"]: v["sid"] for v in build()["vectors"]}
    assert sids["hello"] == sids["ev_alarm"] == sids["error_mismatch"] == 0
    assert sids["hello_r"] == sids["status"] == sids["error_stale"] == SID
    packed = next(v for v in VECTORS if v[0] == "log_r_packed")
    assert 1 < len(packed[3]["entries"]) <= catalog.LOG_PAGE
    assert 200 < len(messages.encode("LOG_R", packed[3])) <= frame.MAX_PAYLOAD


if __name__ == "__main__":
    PATH.write_text(json.dumps(build(), indent=1) + "\n")
    print("wrote", PATH)
