# Attacks on the authenticated link at the device (issue 11), from its adversarial
# review: each test failed on the first build of the link (6a8b98f) and names the way
# in it closes. Through the shell's own loop, on CPython and on MicroPython alike.
from protocol import auth, catalog, messages
from tests.portable.coreview import page as log_page
from tests.portable.coreview import status_of
from tests.portable.shellkit import NOREPI, Host, active, device, hello_fields, silent


def _supervised_start():
    # The clinician's host, supervising at 1 s, has started norepinephrine.
    sh, p = device()
    host = Host(sh, p)
    host.hello(supervise_s=1)
    host.request("START", NOREPI)
    return sh, p


def _keyless_hello(sh, p, name, nonce):
    # A stranger's HELLO (host `name`, its nonce 16 bytes `nonce`), and the answer: the
    # stranger's key is 32 zero bytes, none of the board's, so no AUTH of its can pass.
    fields = hello_fields(host=name, nonce=bytes([nonce]) * 16)
    return Host(sh, p, key=bytes(32)).request("HELLO", fields)


def test_a_keyless_hello_flood_never_clears_link_lost_nor_restarts_its_timer():
    # The supervising clinician host dies: link_lost is raised. A stranger without
    # any key sends HELLOs only: once the 4 slots are full each HELLO evicts a pending
    # session, and the shell re-declares supervision (shell.open_session ->
    # _supervision -> core.supervise -> Watchers.host_seen), which clears link_lost
    # and restarts the silence timer. Unauthenticated frames must never do that.
    sh, p = _supervised_start()
    silent(sh, p, 12)  # past the 10 s link timeout
    assert "link_lost" in active(sh)
    for n in range(5):
        _keyless_hello(sh, p, "x%d" % n, n)
        sh.step()
    assert "link_lost" in active(sh), "a keyless HELLO flood cleared link_lost"


def test_a_keyless_hello_flood_never_keeps_link_lost_from_being_raised():
    # The same, before the alarm: one keyless HELLO every 9 s (a full device) keeps
    # pushing the silence deadline out, so a supervising host that died is never
    # alarmed while the infusion runs unsupervised.
    sh, p = _supervised_start()
    for n in range(3):  # fill the free slots
        _keyless_hello(sh, p, "f%d" % n, n)
    for n in range(6):  # 54 s of silence from the supervising host
        silent(sh, p, 9)
        _keyless_hello(sh, p, "g%d" % n, 9 + n)
    assert "link_lost" in active(sh), "54 s of silence from the supervisor, no link_lost"


def test_a_monitor_session_never_clears_the_clinicians_link_lost():
    # The clinician's supervising host dies mid-infusion: link_lost. A read-only
    # monitor (a dashboard with the lowest key) polls STATUS: any authenticated frame
    # of any session is host_seen (shell._respond), so the alarm for the clinician's
    # host clears and never comes back while the dashboard polls.
    sh, p = _supervised_start()
    silent(sh, p, 12)
    assert "link_lost" in active(sh)
    monitor = Host(sh, p, role="monitor")
    monitor.hello()
    for _ in range(4):
        assert monitor.request("STATUS", {"ch": 1})[0] == "STATUS_R"
        silent(sh, p, 5)
    assert "link_lost" in active(sh), "a monitor's polling cleared the clinician's link_lost"


def test_a_monitor_may_not_stretch_link_supervision():
    # The device supervises with the largest interval a session declared: a monitor
    # that could declare 65535 s would make the clinician's 1 s supervisor silent for
    # 3 x 65535 s before link_lost. SUPERVISE is the clinician's alone.
    sh, p = _supervised_start()
    monitor = Host(sh, p, role="monitor")
    monitor.hello(supervise_s=65535)  # ignored: a monitor's HELLO supervises nothing
    name, fields = monitor.request("SUPERVISE", {"interval_s": 65535})
    assert (name, fields["code"]) == ("ERROR", catalog.ERR_FORBIDDEN), fields
    silent(sh, p, 60)  # neither host says anything for a minute
    assert "link_lost" in active(sh), "a monitor suppressed link_lost"


def test_keyless_hellos_evict_their_own_pending_sessions_first():
    # Four sessions: the clinician's, authenticated, heard last of all, and three
    # strangers' pending HELLOs. Each further keyless HELLO should take a pending
    # (never authenticated) slot; eviction is by recency alone (sessions._before), so
    # a few keyless HELLOs close the clinician's session between its commands.
    sh, p = device()
    host = Host(sh, p)
    host.hello()
    assert host.request("STATUS", {"ch": 1})[0] == "STATUS_R"
    for n in range(4):
        _keyless_hello(sh, p, "s%d" % n, n + 1)
    assert host.sid in sh.sessions.sid, "keyless HELLOs closed an authenticated session"


def test_a_keyless_hello_never_closes_an_authenticated_supervisor():
    # Four clinicians' hosts supervise: a HELLO from anyone finds the slot kept for a
    # handshake and ends no watch (nor does any HELLO: it takes a free slot or one whose
    # handshake waited in vain). Only a host that proves the clinician's key takes a
    # live supervisor's place (the least recently heard, which says HELLO again); a
    # display's key never does: its AUTH is refused busy.
    sh, p = device()
    hosts = [Host(sh, p) for _ in range(4)]
    for host in hosts:
        host.hello(supervise_s=2)
    name, fields = _keyless_hello(sh, p, "x", 1)
    assert name == "HELLO_R", fields
    assert [h.sid in sh.sessions.sid for h in hosts] == [True] * 4
    assert hosts[0].request("HEARTBEAT", {})[0] == "HEARTBEAT_R"
    # Another HELLO within the stranger's HOLD_MS finds no room at all: busy.
    assert _keyless_hello(sh, p, "y", 2)[1]["code"] == catalog.ERR_BUSY
    silent(sh, p, 3)  # the stranger's handshake waited in vain: its slot is free again
    display = Host(sh, p, role="monitor")
    display.hello(authenticate=False)
    name, fields = display.request("AUTH", {})
    assert (name, fields["code"]) == ("ERROR", catalog.ERR_BUSY), fields
    assert [h.sid in sh.sessions.sid for h in hosts] == [True] * 4
    bedside = Host(sh, p)
    bedside.hello()
    assert bedside.request("HEARTBEAT", {})[0] == "HEARTBEAT_R"
    # hosts[1]: the least recently heard (hosts[0] sent a HEARTBEAT since)
    assert [h.sid in sh.sessions.sid for h in hosts] == [True, False, True, True]
    assert sh.sessions.supervision_s() == 2


def test_a_device_counter_at_its_end_ends_the_session_before_anything_runs():
    # SPEC §12: a sender whose counter would pass 2^32 - 1 opens a new session. The
    # device never checks its own: gate.tagged() encodes ctr 2^32 after the handler
    # ran, encode() raises ValueError, the safety net rolls the START back and raises
    # HIGH internal_fault, and the host gets no answer at all (it must say "may have
    # run"). The device should end the session (hello_required) before it runs.
    sh, p = device()
    host = Host(sh, p)
    host.hello()
    i = sh.sessions.find(host.sid)
    sh.sessions.device_ctr[i] = 0xFFFFFFFF
    host.send_wire(host.wire("START", NOREPI))
    (answer,) = [f for f in host.raw() if not catalog.is_event(f.msg_id)]
    fields = messages.decode(answer.msg_id, answer.payload)
    assert answer.tag is None and fields["code"] == catalog.ERR_HELLO_REQUIRED, fields
    assert "internal_fault" not in [a.code for a in sh.core.alarms()]
    assert status_of(sh.core, 1).state == "idle"
    host.send_wire(host.wire("STATUS", {"ch": 1}))  # and so is everything after it
    (answer,) = [f for f in host.raw() if not catalog.is_event(f.msg_id)]
    assert messages.decode(answer.msg_id, answer.payload)["code"] == catalog.ERR_HELLO_REQUIRED


def test_keyless_auth_attempts_never_push_the_audit_trail_out_of_the_journal():
    # Every refused AUTH adds a log entry (handlers.authenticate: core.log.add
    # "auth_refused"), which the shell persists (_changed: a state save and a journal
    # append). A stranger with no key repeats HELLO + a wrong AUTH: about 400 of them
    # (3 s of serial traffic) rotate the whole 2 x 16 KB journal, and the record of the
    # START the clinician gave is gone. Each also costs a write of the state record to
    # flash. Refusals of keyless frames should be counted (and perhaps logged once per
    # run, as journal.py does for link noise), not logged one by one.
    sh, p = device()
    host = Host(sh, p)
    host.hello()
    host.request("START", NOREPI)
    store = p["store"]
    writes = [0]
    write = store.write

    def counting_write(name, data):
        writes[0] += 1
        write(name, data)

    store.write = counting_write
    for n in range(500):
        stranger = Host(sh, p, key=bytes(32))
        stranger.seq = n * 2
        stranger.request("HELLO", hello_fields(host="z", nonce=bytes([n & 0xFF]) * 16))
        stranger.request("AUTH", {})
    kept = []
    first = sh.journal.oldest
    while True:
        page, nxt = log_page(sh.journal, first, 230, 8)
        kept += [e["text"] for e in page]
        if not page or nxt == first:
            break
        first = nxt
    assert any("started norepinephrine" in t for t in kept), (
        "%d keyless AUTH attempts erased the START from the log (%d state writes)"
        % (500, writes[0])
    )


def test_an_auth_frame_with_flag_a_is_refused_and_sets_no_counter():
    # AUTH is untagged: its proof binds th, not the frame. The device still takes its
    # ctr (shell._respond -> sessions.ran(i, seq, frame.ctr)) when it carries flag A
    # with any tag. A stranger who swallows the host's AUTH on the line and sends its
    # proof again with flag A and ctr 2^32 - 1 authenticates the session with a host
    # counter nothing can pass: every genuine request of the host is then "stale".
    sh, p = device()
    host = Host(sh, p)
    host.request("HELLO", hello_fields())
    host.seq += 1
    proof = auth.proof(host.session.ks, host.session.th, b"H")
    forged = messages.to_wire(
        "AUTH", host.seq, {"proof": proof}, sid=host.sid, key=bytes(32), ctr=0xFFFFFFFF
    )
    host.send_wire(forged)
    (answer,) = [f for f in host.raw() if not catalog.is_event(f.msg_id)]
    fields = messages.decode(answer.msg_id, answer.payload)
    assert (answer.tag, fields["code"]) == (None, catalog.ERR_AUTH), fields
    host.seq -= 1  # the host's own AUTH, untagged, after the forgery: the session is its
    name, fields = host.request("AUTH", {})
    assert name == "AUTH_R", fields
    name, fields = host.request("STATUS", {"ch": 1})
    assert name == "STATUS_R", (name, fields)


def _crc_forge(data, target):
    # The last 4 bytes of data changed so that crc32(data) == target: CRC-32 is affine
    # over GF(2), so the 32 bits there solve a 32 x 32 linear system.
    from binascii import crc32

    base = bytearray(data)
    base[-4:] = b"\x00\x00\x00\x00"
    c0 = crc32(bytes(base))
    cols = []
    for bit in range(32):
        b = bytearray(base)
        b[-4 + bit // 8] ^= 1 << (bit % 8)
        cols.append(crc32(bytes(b)) ^ c0)
    want = c0 ^ target
    # Gaussian elimination over GF(2): rows are (column value, which bits make it).
    rows = [(cols[i], 1 << i) for i in range(32)]
    basis = {}
    for v, m in rows:
        for hb in sorted(basis, reverse=True):
            if v >> hb & 1:
                v ^= basis[hb][0]
                m ^= basis[hb][1]
        if v:
            hb = 31
            while not v >> hb & 1:
                hb -= 1
            basis[hb] = (v, m)
    chosen = 0
    v = want
    for hb in sorted(basis, reverse=True):
        if v >> hb & 1:
            v ^= basis[hb][0]
            chosen ^= basis[hb][1]
    assert v == 0
    for bit in range(32):
        if chosen >> bit & 1:
            base[-4 + bit // 8] ^= 1 << (bit % 8)
    return bytes(base)


def test_a_hello_forged_to_the_pending_hellos_crc_does_not_take_over_its_session():
    # A HELLO "retry" is matched by seq and CRC-32 alone (sessions.open), and CRC-32 is
    # no checksum against intent: a stranger's HELLO naming role monitor, its nonce's
    # last 4 bytes chosen so the CRC is the clinician's pending HELLO's, is taken as a
    # retry. handlers.hello then overwrites the pending session's role and gate.hello
    # its th and Ks: the clinician's own AUTH is refused ("... for role monitor") and
    # its session closed. A retry must be the byte-identical HELLO (compare payloads).
    import struct
    from binascii import crc32

    from protocol import cobs, frame
    from protocol.decoder import Decoder

    sh, p = device()
    host = Host(sh, p)
    wire = host.wire("HELLO", hello_fields(host="bedside"))
    host.send_wire(wire)
    host.answer(host.seq, True)
    target = Decoder().decode(wire)[0].crc
    fields = hello_fields(host="bedside", role="monitor", nonce=b"\x77" * 16)
    payload = messages.encode("HELLO", fields)  # the frame before its CRC: no sid, no tag
    head = struct.pack("<BBHB", frame.VERSION_FLAGS, catalog.ID["HELLO"], host.seq, len(payload))
    body = _crc_forge(head + payload, target)
    assert crc32(body) == target
    forged = b"\x00" + cobs.encode(body + struct.pack("<I", target)) + b"\x00"
    host.send_wire(forged)
    host.raw()
    assert host.request("AUTH", {})[0] == "AUTH_R", "a stranger's HELLO took over the session"
