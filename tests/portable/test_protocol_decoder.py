# The sans-IO decoder on both interpreters: resync after garbage, limits, counters.
from protocol import cobs, frame, messages
from protocol.crc import crc32
from protocol.decoder import Decoder


def _hb(seq):
    return messages.to_wire("HEARTBEAT", seq, {})


def _stuffed(body):
    return b"\x00" + cobs.encode(body) + b"\x00"


def _with_crc(body):
    c = crc32(body)
    return bytes(body) + bytes((c & 0xFF, c >> 8 & 0xFF, c >> 16 & 0xFF, c >> 24 & 0xFF))


def _seqs(dec, data):
    return [f.seq for f in dec.decode(data)]


def test_garbage_and_abandoned_partial_frames_do_not_block_the_next():
    dec = Decoder()
    good = _hb(7)
    stream = b"\x13\x37\xff" + good[:6] + good[: len(good) - 3] + good + b"\x00\x00" + _hb(8)
    assert _seqs(dec, stream) == [7, 8]
    # Each partial frame was ended by the next frame's leading 0x00 and counted once.
    assert dec.frames == 2
    assert dec.bad_cobs + dec.bad_length + dec.bad_crc >= 2


def test_any_chunking_gives_the_same_frames():
    stream = _hb(1) + b"noise" + _hb(2) + _hb(3)
    for size in (1, 2, 3, 7, 64):
        dec = Decoder()
        got = []
        for i in range(0, len(stream), size):
            got += _seqs(dec, stream[i : i + size])
        assert got == [1, 2, 3], size


def test_feed_stops_after_each_frame_and_resumes_mid_buffer():
    stream = _hb(1) + _hb(2)
    dec = Decoder()
    pos = dec.feed(stream)
    assert dec.ready and pos == len(_hb(1))
    assert dec.take().seq == 1
    pos = dec.feed(stream, pos)
    assert dec.ready and pos == len(stream) and dec.take().seq == 2


def test_oversize_is_dropped_at_the_limit_and_counted_once():
    dec = Decoder()
    assert _seqs(dec, b"\x00" + b"\x01" * 1000 + b"\x00" + _hb(5)) == [5]
    assert dec.oversize == 1 and dec.frames == 1


def test_the_largest_frame_fits_and_one_more_byte_does_not():
    # The largest is tagged: 7 header + 240 payload + 4 ctr + 8 tag + 4 CRC = MAX_FRAME.
    body = bytearray(b"\xa5" * (frame.MAX_FRAME - frame.TRAILER))
    body[0:7] = bytes((0x13, 0x8A, 1, 1, frame.MAX_PAYLOAD, 0x3C, 0x5A))
    dec = Decoder(bounds={0x8A: (0, frame.MAX_PAYLOAD)})
    wire = _stuffed(_with_crc(body))
    # No 0x00 in it (nor in its CRC): two COBS code bytes, the longest wire frame.
    assert len(wire) == frame.MAX_WIRE
    assert _seqs(dec, wire) == [0x0101]
    body[4] = frame.MAX_PAYLOAD + 1
    assert _seqs(dec, _stuffed(_with_crc(body + b"\x00"))) == []
    assert dec.oversize == 1


def test_cut_cobs_block_is_bad_cobs():
    dec = Decoder()
    assert _seqs(dec, b"\x00\x05\x01\x02\x00") == []
    assert dec.bad_cobs == 1


def test_short_frame_is_bad_length():
    dec = Decoder()
    assert _seqs(dec, _stuffed(_with_crc(b"\x10\x0b"))) == []
    assert dec.bad_length == 1


def test_len_field_must_match_the_bytes_received():
    dec = Decoder()
    assert _seqs(dec, _stuffed(_with_crc(b"\x10\x03\x01\x00\x02\x01"))) == []
    assert dec.bad_length == 1


def test_payload_length_must_fit_the_message():
    # STATUS carries exactly one byte (ch): two bytes pass the CRC, not the bounds.
    dec = Decoder()
    assert _seqs(dec, _stuffed(_with_crc(b"\x10\x03\x01\x00\x02\x01\x01"))) == []
    assert dec.bad_length == 1


def test_unknown_message_id_and_version_are_counted():
    dec = Decoder()
    assert _seqs(dec, _stuffed(_with_crc(b"\x10\x3f\x01\x00\x00"))) == []
    assert _seqs(dec, _stuffed(_with_crc(b"\x20\x0b\x01\x00\x00"))) == []
    assert dec.unknown == 2


def test_bad_crc_is_counted():
    dec = Decoder()
    body = bytearray(_with_crc(b"\x10\x0b\x01\x00\x00"))
    body[-1] ^= 0x80
    assert _seqs(dec, _stuffed(body)) == []
    assert dec.bad_crc == 1


def test_idle_delimiters_count_as_nothing():
    dec = Decoder()
    assert _seqs(dec, b"\x00" * 50) == []
    c = dec.counters()
    assert c["frames"] + c["bad_crc"] + c["bad_cobs"] + c["bad_length"] == 0


def test_frame_crc_identifies_the_request():
    f = Decoder().decode(_hb(9))[0]
    wire = _hb(9)
    assert f.crc == crc32(bytes((0x10, 0x0B, 9, 0, 0)))
    assert f.payload == b"" and len(wire) == 12  # 9 bytes: 1 COBS + 2 delimiters


# --- Flag A: the tagged layout (verfl 0x13: sid, then ctr u32 and tag after the payload)


def _tagged_body(msg_id, payload, ctr=1, sid=0x5A3C, tag=b"\x07" * 8, verfl=0x13):
    head = bytes((verfl, msg_id, 2, 0, len(payload), sid & 0xFF, sid >> 8))
    c = bytes((ctr & 0xFF, ctr >> 8 & 0xFF, ctr >> 16 & 0xFF, ctr >> 24 & 0xFF))
    return head + payload + c + tag


def test_a_tagged_frame_hands_out_ctr_tag_and_the_signed_bytes():
    body = _tagged_body(0x03, b"\x01", ctr=0xFFFFFFFF, tag=bytes(range(1, 9)))
    (f,) = Decoder().decode(_stuffed(_with_crc(body)))
    assert (f.msg_id, f.seq, f.sid, f.payload) == (0x03, 2, 0x5A3C, b"\x01")
    assert f.ctr == 0xFFFFFFFF and f.tag == bytes(range(1, 9))
    assert f.signed == body[:-8] and len(f.signed) == 7 + 1 + 4
    assert f.crc == crc32(body)


def test_an_untagged_frame_has_no_ctr_tag_or_signed_bytes():
    for f in Decoder().decode(_hb(4) + messages.to_wire("STATUS", 5, {"ch": 1}, sid=9)):
        assert (f.ctr, f.tag, f.signed) == (0, None, None)


def test_a_tagged_frame_s_len_counts_the_payload_only():
    # len = n: frame length n + 23. A len that counts ctr and tag (or leaves out one
    # of them) is a bad length, however the CRC checks out.
    dec = Decoder()
    body = bytearray(_tagged_body(0x03, b"\x01"))
    for wrong in (0, 2, 5, 13, 17):
        body[4] = wrong
        assert _seqs(dec, _stuffed(_with_crc(body))) == [], wrong
    assert dec.bad_length == 5 and dec.frames == 0
    body[4] = 1
    assert _seqs(dec, _stuffed(_with_crc(body))) == [2]


def test_a_tagged_frame_shorter_than_its_layout_is_bad_length():
    # 0x13 promises 7 + 12 + 4 = 23 bytes at least: 9 to 22 bytes are all too short.
    dec = Decoder()
    full = _tagged_body(0x0B, b"")
    for n in range(5, len(full)):
        body = bytearray(full[:n])
        body[4] = 0
        assert _seqs(dec, _stuffed(_with_crc(body))) == [], n
    assert dec.bad_length == len(full) - 5
    assert _seqs(dec, _stuffed(_with_crc(full))) == [2]


def test_flag_a_without_s_is_unknown():
    # 0x12: ctr and tag but no sid; a tag belongs to a session, so no such frame exists.
    dec = Decoder()
    body = bytes((0x12, 0x0B, 2, 0, 0)) + b"\x01\x00\x00\x00" + b"\x07" * 8
    assert _seqs(dec, _stuffed(_with_crc(body))) == []
    assert dec.unknown == 1 and dec.bad_length == 0


def test_a_tagged_frame_with_sid_0_is_unknown():
    dec = Decoder()
    assert _seqs(dec, _stuffed(_with_crc(_tagged_body(0x0B, b"", sid=0)))) == []
    assert dec.unknown == 1


def test_other_flag_combinations_are_unknown():
    # Every verfl but 0x10, 0x11, 0x13, each with the length its S and A bits imply.
    dec = Decoder()
    refused = 0
    for verfl in range(256):
        if verfl in (0x10, 0x11, 0x13):
            continue
        if verfl & 0x02:
            body = _tagged_body(0x0B, b"", verfl=verfl)
            if not verfl & 0x01:
                body = body[:5] + body[7:]
        else:
            body = bytes((verfl, 0x0B, 2, 0, 0)) + (b"\x3c\x5a" if verfl & 0x01 else b"")
        assert _seqs(dec, _stuffed(_with_crc(body))) == [], verfl
        refused += 1
    assert dec.unknown == refused == 253 and dec.frames == 0


def test_a_tagged_frame_s_payload_must_fit_its_message():
    dec = Decoder()
    assert _seqs(dec, _stuffed(_with_crc(_tagged_body(0x03, b"\x01\x02")))) == []
    assert dec.bad_length == 1


def test_a_tagged_frame_of_max_frame_plus_one_is_oversize():
    body = bytearray(b"\xa5" * (frame.MAX_FRAME - frame.TRAILER + 1))
    body[0:7] = bytes((0x13, 0x8A, 1, 1, frame.MAX_PAYLOAD + 1, 0x3C, 0x5A))
    dec = Decoder(bounds={0x8A: (0, 255)})
    assert _seqs(dec, _stuffed(_with_crc(body))) == []
    assert dec.oversize == 1 and dec.bad_length == 0
