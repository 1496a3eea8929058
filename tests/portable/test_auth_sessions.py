# The authenticated link's sessions over time (issue 11's second review): a silent
# supervisor makes room once link_lost has named it, a stray HELLO never ends a
# handshake, a session whose counters are spent keeps its watch, replays spend no
# counter, a goodbye is still a goodbye. Each failed on the fixes of the first review
# (6c440ec). Through the shell's own loop, on CPython and on MicroPython alike.
from protocol import catalog
from tests.portable.shellkit import NOREPI, Host, active, device, hello_fields, silent


def _four_dead_supervisors():
    # Four clinicians' hosts supervised (the first started norepinephrine) and fell
    # silent 30 s ago: link_lost is raised.
    sh, p = device()
    for n in range(4):
        dead = Host(sh, p)
        dead.hello(supervise_s=1)
        if n == 0:
            assert dead.request("START", NOREPI)[0] == "START_R"
    silent(sh, p, 30)
    assert "link_lost" in active(sh)
    return sh, p


def test_four_dead_supervisors_make_room_for_the_bedside_host_once_alarmed():
    # The bedside app (a clinician supervisor, pump.keepalive) crashes or loses its USB
    # port four times without its SUPERVISE 0 goodbye: four authenticated supervising
    # sessions whose hosts are gone, link_lost raised. The clinician's host, holding the
    # right key, must still get in to STOP or ESTOP the running vasopressor (the first
    # review's fix refused it busy until the pump was reset).
    sh, p = _four_dead_supervisors()
    silent(sh, p, 3600)  # an hour later: still nobody can get in
    bedside = Host(sh, p)
    name, fields = bedside.request("HELLO", hello_fields(host="bedside"))
    assert name == "HELLO_R", (
        "a clinician's host with the right key is locked out an hour after four "
        "supervisors died: %r" % (fields,)
    )
    # Closing a silent supervisor's session is no host heard: the alarm stays.
    assert "link_lost" in active(sh)
    assert bedside.request("AUTH", {})[0] == "AUTH_R"


def test_a_supervisor_whose_counters_are_spent_keeps_its_watch_and_no_monitor_ends_it():
    # gate.check closes a session whose device counter is spent (shell.close_session)
    # without re-declaring supervision (shell._supervision): the shell's _supervised_s
    # still says 1 s while sessions.supervision_s() is 0. The next first request of ANY
    # authenticated session re-declares: a monitor's AUTH (a display) then calls
    # core.supervise(0), which ends supervision AND clears link_lost (Watchers.supervise
    # -> host_seen). A display ends the clinician's link-loss alarm for good.
    sh, p = device()
    host = Host(sh, p)
    host.hello(supervise_s=1)
    assert host.request("START", NOREPI)[0] == "START_R"
    i = sh.sessions.find(host.sid)
    sh.sessions.device_ctr[i] = 0xFFFFFFFF  # reached by 2^32 answers (or replays)
    name, fields = host.request("HEARTBEAT", {})
    assert (name, fields["code"]) == ("ERROR", catalog.ERR_HELLO_REQUIRED), fields
    silent(sh, p, 15)  # the clinician's host does not come back
    assert "link_lost" in active(sh)
    monitor = Host(sh, p, role="monitor")
    monitor.hello()
    assert "link_lost" in active(sh), "a monitor's AUTH cleared the clinician's link_lost"
    silent(sh, p, 60)
    assert "link_lost" in active(sh), "a monitor's AUTH ended link supervision"


def test_the_shells_supervision_matches_its_sessions_after_a_counter_end():
    # The same defect stated directly: after any session closes, the interval the core
    # was last told equals what the sessions declare.
    sh, p = device()
    host = Host(sh, p)
    host.hello(supervise_s=5)
    i = sh.sessions.find(host.sid)
    sh.sessions.device_ctr[i] = 0xFFFFFFFF
    host.request("STATUS", {"ch": 1})
    assert sh._supervised_s == sh.sessions.supervision_s(), (
        sh._supervised_s,
        sh.sessions.supervision_s(),
    )


def test_stale_replays_of_a_recorded_frame_spend_no_device_counter():
    # Anyone who recorded one frame of a session (not its last) can replay it: each copy
    # passes the tag check and is answered ERROR stale, TAGGED (gate.check step d), so
    # each one spends a device counter. 2^32 of them end the session (hello_required)
    # with no key at all. Quantified here: every replay costs exactly one counter.
    sh, p = device()
    host = Host(sh, p)
    host.hello()
    old = host.wire("STATUS", {"ch": 1})
    host.send_wire(old)
    host.raw()
    host.request("STATUS", {"ch": 1})  # the cache now holds this one, not `old`
    i = sh.sessions.find(host.sid)
    before = sh.sessions.device_ctr[i]
    for _ in range(100):
        host.send_wire(old)
    host.raw()
    spent = sh.sessions.device_ctr[i] - before
    assert spent == 0, "100 keyless replays spent %d device counters" % spent


def test_one_keyless_hello_per_handshake_never_keeps_the_bedside_host_out():
    # Three displays (monitor sessions, authenticated, polling) share the pump. The
    # bedside clinician says HELLO: it takes the least recently heard display's slot,
    # pending. One keyless HELLO from a stranger, sent between HELLO_R and AUTH, then
    # closes the bedside host's pending session (42144ce: pending before authenticated,
    # so the bedside's is the only candidate), and its AUTH meets hello_required. Every
    # reconnect fails the same way for one stranger frame each: the fix that protects
    # authenticated sessions made the handshake of a new one the cheapest thing to kill.
    sh, p = device()
    displays = [Host(sh, p, role="monitor") for _ in range(3)]
    for d in displays:
        d.hello()
    bedside = Host(sh, p)
    for attempt in range(3):
        silent(sh, p, 3)  # a host's retry, after the stranger's handshake waited in vain
        for d in displays:
            d.request("STATUS", {"ch": 1})
        name, _ = bedside.request(
            "HELLO", hello_fields(host="bedside", nonce=bytes([attempt]) * 16)
        )
        assert name == "HELLO_R"
        Host(sh, p, key=bytes(32)).request(
            "HELLO", hello_fields(host="x", nonce=bytes([0x40 + attempt]) * 16)
        )
        name, fields = bedside.request("AUTH", {})
        assert name == "AUTH_R", "attempt %d: one keyless HELLO killed the handshake: %r" % (
            attempt,
            fields,
        )


def test_the_last_clinicians_goodbye_clears_link_lost_and_raises_nothing_after():
    # Held (a probe): SUPERVISE 0 from the only supervisor clears link_lost for good;
    # with a second, silent supervisor left, link_lost comes back for that one.
    sh, p = device()
    host = Host(sh, p)
    host.hello(supervise_s=1)
    host.request("START", NOREPI)
    silent(sh, p, 12)
    assert "link_lost" in active(sh)
    assert host.request("SUPERVISE", {"interval_s": 0})[0] == "SUPERVISE_R"
    assert "link_lost" not in active(sh)
    silent(sh, p, 120)
    assert "link_lost" not in active(sh)
    sh, p = device()
    dead, alive = Host(sh, p), Host(sh, p)
    dead.hello(supervise_s=1)
    alive.hello(supervise_s=1)
    alive.request("START", NOREPI)
    assert alive.request("SUPERVISE", {"interval_s": 0})[0] == "SUPERVISE_R"
    silent(sh, p, 12)
    assert "link_lost" in active(sh)


def _stranger_hello(sh, p, n):
    # A host with no key at all: it can only say HELLO (any role: nothing checks a key
    # before AUTH). It never sends AUTH.
    stranger = Host(sh, p, role="clinician", key=b"\x00" * 32)
    for _ in range(n):
        stranger.request("HELLO", hello_fields(host="x", nonce=b"\x33" * 16))


def test_a_keyless_hello_between_hello_r_and_auth_never_keeps_the_bedside_out():
    # Four dead supervisors (USB glitches), link_lost raised. The bedside clinician holds
    # the key and its AUTH displaces one (make_room). A keyless HELLO landing between its
    # HELLO_R and its AUTH must not take its handshake's slot (HOLD_MS), so it gets in
    # at once (the third review found a stranger keeping it out for a minute).
    sh, p = _four_dead_supervisors()
    got_in = 0
    tries = 0
    for _ in range(60):
        bedside = Host(sh, p)
        name, _ = bedside.request("HELLO", hello_fields(host="bedside"))
        assert name == "HELLO_R"
        _stranger_hello(sh, p, 1)
        name, fields = bedside.request("AUTH", {})
        tries += 1
        if name == "AUTH_R":
            got_in += 1
            break
        assert fields["code"] == catalog.ERR_HELLO_REQUIRED, fields
        silent(sh, p, 1)
    assert got_in, (
        "a keyless stranger kept the clinician's host out for %d handshakes (%d s), "
        "four dead supervisors holding the authenticated slots" % (tries, tries)
    )


def test_two_keyless_hellos_never_end_a_pending_handshake():
    # One live supervisor and three one-shot CLI sessions; two stray HELLOs during each
    # of the bedside's handshakes (the third review: they ended every one of them).
    sh, p = device()
    sup = Host(sh, p)
    sup.hello(supervise_s=1)
    for _ in range(3):
        Host(sh, p).hello()  # one-shot clinician CLI calls, authenticated, never closed
    for _ in range(20):
        sup.request("HEARTBEAT", {})
        bedside = Host(sh, p)
        name, _ = bedside.request("HELLO", hello_fields(host="bedside"))
        assert name == "HELLO_R"
        _stranger_hello(sh, p, 2)
        name, fields = bedside.request("AUTH", {})
        if name == "AUTH_R":
            return
        assert fields["code"] == catalog.ERR_HELLO_REQUIRED, fields
        silent(sh, p, 1)
    raise AssertionError("two keyless HELLOs per handshake kept a clinician out 20 times in 20")


def test_a_displaced_live_supervisor_that_then_dies_still_raises_link_lost():
    # The bedside app L heartbeats; three glitch sessions of another
    # clinician app are heard after L's last heartbeat, so L is the least recently heard
    # of four live supervisors, and a one-shot clinician CLI's AUTH displaces it
    # (make_room rank 2). L dies before it says HELLO again. Its interval leaves
    # supervision_s, but three supervising sessions remain: the device-wide watch goes on
    # and link_lost comes one silence window after the last clinician frame (the CLI's).
    sh, p = device()
    bedside = Host(sh, p)
    bedside.hello(supervise_s=1)
    p["clock"].advance(500)
    sh.step()
    for _ in range(3):
        Host(sh, p).hello(supervise_s=1)  # glitch sessions: heard once, then gone
    cli = Host(sh, p)
    cli.hello()  # make_room closes the bedside's session
    assert bedside.request("HEARTBEAT", {})[1].get("code") == catalog.ERR_HELLO_REQUIRED
    assert sh.sessions.supervision_s() == 1
    silent(sh, p, 9)
    assert "link_lost" not in active(sh)
    silent(sh, p, 2)
    assert "link_lost" in active(sh)


def test_a_new_session_never_takes_the_sid_of_a_session_still_open():
    # sids count round mod 2**16: a host with no key can open and close sessions (HELLO,
    # then a wrong AUTH) until the count comes round to the sid of a session that proved
    # its key. Its pending session, in a lower slot, would then be the one find() gives
    # for that sid, and the bedside host's requests would be refused "not authenticated".
    sh, p = device()
    stranger = Host(sh, p, key=bytes(32))
    stranger.hello(authenticate=False)  # slot 0
    bedside = Host(sh, p)
    bedside.hello(supervise_s=1)  # slot 1, authenticated and supervising
    assert stranger.request("AUTH", {})[0] == "ERROR"  # the wrong key: slot 0 closed
    sh.sessions._next = bedside.sid  # stands for the 65535 HELLO + AUTH cycles more
    again = Host(sh, p, key=bytes(32))
    assert again.hello(authenticate=False)[0] == "HELLO_R"
    assert again.sid != bedside.sid
    assert bedside.request("HEARTBEAT", {})[0] == "HEARTBEAT_R"
