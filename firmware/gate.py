# The authenticated link's gate: what the shell (shell.py) asks before a request of a
# session runs, and how its answer is tagged (protocol/SPEC.md, the handshake).
#
# HELLO opens a pending session: the role it names, the device's nonce, the transcript
# hash th and the session key Ks = HMAC(K_role, "pumpguard session" || th). AUTH proves
# the host holds K_role (handlers.auth); from then on every request must carry a tag
# over the frame, under Ks, and a host counter newer than the last, and its role must
# be one that may send it (catalog.MAY). The checks, in the order check() applies them
# after the replay cache (a byte-identical retry gets its cached answer):
#   b. no tag, or the session not authenticated     ERROR auth, untagged, bad_tag
#   c. the tag is wrong                             ERROR auth, untagged, bad_tag
#   d. the counter is not newer than the last       ERROR stale, untagged, stale_ctr
#   e. the seq is not newer (protocol/SPEC.md §3)   ERROR stale, tagged
#   f. the role may not send it                     ERROR forbidden, tagged, forbidden
# None of them changes anything but its counter. An answer to a frame the device could
# not authenticate is untagged (it has no key it may use for it); one to an
# authenticated frame is tagged with the session's next device counter. Tags are
# compared in constant time (auth.equal).
import hashlib

from micropython import const

from protocol import auth, catalog, messages

_AUTH = const(0x0E)  # catalog.ID["AUTH"]
_CTR_LAST = const(0xFFFFFFFF)  # a u32: the last counter a frame can carry


def hello(shell, frame, handler, now):
    """The answer to a HELLO: protocol and schema first, at their fixed offsets (a host
    of another version is told so whatever the rest of its HELLO looks like; a mismatch
    opens and closes nothing), then its role; HELLO_R in the new session."""
    version = messages.hello_version(frame.payload)  # None: this device's
    if version is not None:
        return shell.error(
            frame,
            catalog.ERR_MISMATCH,
            "device speaks protocol %d schema %08x, host %d schema %08x"
            % (catalog.PROTOCOL_VERSION, catalog.SCHEMA_HASH, version[0], version[1]),
        )
    fields = shell.fields  # HELLO's, in their order: supervise_s 3, role 5
    try:
        messages.decode_into(frame.msg_id, frame.payload, fields)
    except ValueError as exc:
        return shell.error(frame, catalog.ERR_BAD_PAYLOAD, str(exc))
    role = fields[5]
    if role not in catalog.ROLE_NAMES:
        message = "role %d unknown (%s)" % (role, _roles())
        return shell.error(frame, catalog.ERR_BAD_PAYLOAD, message)
    # A retry of a HELLO is the same bytes: its digest, not its CRC (which anyone can
    # forge for a HELLO of another role), finds the session the first copy opened.
    if not shell.open_session(fields[3], hashlib.sha256(frame.payload).digest(), now):
        message = "busy: no session free (handshakes in progress, hosts authenticated)"
        return shell.error(frame, catalog.ERR_BUSY, message)
    name, reply = handler(shell, fields, now)  # the session's nonce, HELLO_R
    sessions = shell.sessions
    i = shell.slot
    sid = sessions.sid[i]
    # Untagged, in the session; the transcript hashes its payload where wire() wrote it.
    wire = messages.wire(shell.out, name, frame.seq, reply, sid)
    th = auth.transcript(frame.payload, sid, messages.sent_payload())
    key = shell.keys.key(role)
    sessions.th[i] = th
    sessions.ks[i] = None if key is None else auth.session_key(key, th)
    return wire


def check(shell, frame, i):
    """The refusal of a request of session slot i that must not run (checks b to f
    above; AUTH's own: once per session, a newer seq), or None: it may run."""
    sessions = shell.sessions
    if frame.msg_id == _AUTH:
        if frame.tag is not None:  # its proof is its authentication; its ctr is nobody's
            shell.bad_tag += 1
            return shell.error(frame, catalog.ERR_AUTH, "AUTH is sent without a tag: not run")
        if sessions.authed[i]:
            return shell.error(frame, catalog.ERR_AUTH, "already authenticated: AUTH not run")
        return _stale_seq(shell, frame, i, False)
    if frame.tag is None or not sessions.authed[i]:
        shell.bad_tag += 1
        if frame.tag is None:
            return shell.error(frame, catalog.ERR_AUTH, "frame without a tag refused: AUTH first")
        return shell.error(frame, catalog.ERR_AUTH, "session not authenticated: AUTH first")
    if not auth.verify(sessions.ks[i], auth.HOST, frame.signed, frame.tag):
        shell.bad_tag += 1
        return shell.error(frame, catalog.ERR_AUTH, "wrong tag: not run")
    if sessions.device_ctr[i] >= _CTR_LAST:
        # No counter left for an answer: nothing runs in the session again. It stays
        # in its slot, silent from now on: a supervisor's watch goes on (link_lost if
        # its host does not come back in a new session) until it is closed as silent.
        message = "this session's counters are spent: say HELLO again; not run"
        return shell.error(frame, catalog.ERR_HELLO_REQUIRED, message)
    if frame.ctr <= sessions.host_ctr[i]:
        # A replay (or a late copy) of a frame the session sent before: untagged, so it
        # spends none of the device's counters (no host waits on an old request).
        shell.stale_ctr += 1
        message = "counter %d not newer than counter %d, the last this session sent: not run"
        return shell.error(frame, catalog.ERR_STALE, message % (frame.ctr, sessions.host_ctr[i]))
    stale = _stale_seq(shell, frame, i, True)
    if stale is not None:
        return stale
    role = sessions.role[i]
    if not catalog.may(frame.msg_id, role):
        shell.forbidden += 1
        message = "role %s may not send %s (%s may)" % (
            catalog.ROLE_NAMES[role],
            catalog.name(frame.msg_id),
            ", ".join([catalog.ROLE_NAMES[r] for r in catalog.roles_may(frame.msg_id)])
            or "no role",
        )
        return tagged(shell, frame, i, "ERROR", (catalog.ERR_FORBIDDEN, message))
    return None


def _stale_seq(shell, frame, i, tag):
    sessions = shell.sessions
    if sessions.newer(i, frame.seq):
        return None
    message = "seq %d not newer than seq %d, the last this session ran: not run" % (
        frame.seq,
        sessions.last[i],
    )
    if tag:
        return tagged(shell, frame, i, "ERROR", (catalog.ERR_STALE, message))
    return shell.error(frame, catalog.ERR_STALE, message)


def refuse(shell, frame, i, code, message):
    """An ERROR to a request that passed check(): tagged once the session is
    authenticated (AUTH's own errors are not: the host has not proved its key yet)."""
    if shell.sessions.authed[i]:
        return tagged(shell, frame, i, "ERROR", (code, message))
    return shell.error(frame, code, message)


def answer(shell, frame, i, name, fields):
    """The wire of the answer a handler gave to a request of session slot i (fields in
    their order, or by name), kept in the replay cache; an AUTH refused (ERROR: code,
    message) ends its pending session, untagged."""
    if not shell.sessions.authed[i]:
        shell.close_session(i, shell.uptime_ms())
        return shell.error(frame, fields[0], fields[1])
    wire = tagged(shell, frame, i, name, fields)
    shell.replay.store(frame.sid, frame.seq, frame.crc, wire)
    return wire


def tagged(shell, frame, i, name, fields):
    """name with fields in answer to frame, tagged with session i's next counter."""
    sessions = shell.sessions
    ctr = sessions.device_ctr[i] + 1
    sessions.device_ctr[i] = ctr
    return messages.wire(
        shell.out, name, frame.seq, fields, frame.sid, sessions.ks[i], ctr, auth.DEVICE
    )


def _roles():
    names = catalog.ROLE_NAMES
    return ", ".join(["%s %d" % (names[r], r) for r in sorted(names)])
