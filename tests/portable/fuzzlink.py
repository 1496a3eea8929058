# The dispatch fuzz's side of the authenticated link (issue 11), in the MicroPython
# subset: tests/portable/dispatchfuzz.py holds one AuthLink and asks it for the frames
# of the session it holds and for the verdict on what ran.
#
# The fuzz holds the board's keys (shellkit.KEYS, and any key a genuine KEY replaced),
# so after a HELLO_R of a role it knows it mostly sends the genuine AUTH; once
# authenticated, some requests go out genuine (tagged under the session key with the
# next counter) and most mutated: untagged, a tag bit flipped, a wrong key, a counter
# that may be stale. The oracle after every input (judge()): no session of the shell
# ran anything (its last seq, host counter or authentication moved) unless the input
# was the genuine frame of that session, never with a counter not newer than the last;
# and the core logged no command otherwise.
from protocol import auth, catalog, frame, messages
from protocol.decoder import Decoder
from tests.portable import shellkit
from tests.portable.coreview import since

_ANY_LENGTH = dict([(i, (0, frame.MAX_PAYLOAD)) for i in range(256)])  # any id, any payload
_AUTH = catalog.ID["AUTH"]
_KEY = catalog.ID["KEY"]


class AuthLink:
    def __init__(self):
        self.keys = dict(shellkit.KEYS)  # the board's keys as the fuzz knows them
        self.session = None  # the shellkit.Session the fuzz holds
        self.said = None  # (role, payload) of the HELLO sent last
        self.auth_due = False  # HELLO_R arrived: AUTH comes next (mostly)
        self.genuine = 0  # sid of the genuine frame this input sends, or 0
        self.rotating = None  # (role, new key) of a genuine KEY sent
        self.genuine_run = 0  # genuine frames that ran

    def next_input(self):
        self.genuine = 0
        self.rotating = None

    def hello(self, payload):
        """A HELLO with this payload goes out: its role is the session's to be."""
        try:
            self.said = (messages.decode(catalog.ID["HELLO"], payload)["role"], payload)
        except ValueError:  # a HELLO the device refuses as well
            self.said = None

    def auth(self, seq):
        """The genuine AUTH of the session HELLO_R opened (the fuzz holds its key)."""
        self.genuine = self.session.sid
        return self.session.auth_wire(seq)

    def tagged(self, rng, msg_id, seq, payload, sid):
        """The frame in session sid: mostly mutated, some genuine (self.genuine)."""
        session = self.session
        if session is None or session.sid != sid or msg_id == _AUTH:
            return frame.encode(msg_id, seq, payload, sid=sid)
        k = rng.below(8)
        if k < 3 and session.authed:
            session.ctr += 1
            self.genuine = sid
            if msg_id == _KEY and len(payload) == 33:
                self.rotating = (payload[0], auth.wrap(session.ks, session.ctr, payload[1:]))
            return frame.encode(msg_id, seq, payload, sid=sid, key=session.ks, ctr=session.ctr)
        if k == 3:
            return frame.encode(msg_id, seq, payload, sid=sid)  # no tag
        if k == 4:
            session.ctr += 1
            wire = frame.encode(msg_id, seq, payload, sid=sid, key=session.ks, ctr=session.ctr)
            return shellkit.flip_tag(wire, rng.below(8 * auth.TAG), _ANY_LENGTH)
        if k == 5:  # a counter maybe not newer than the last: genuine, its run judged
            ctr = rng.pick((0, 1, session.ctr))
            self.genuine = sid
            return frame.encode(msg_id, seq, payload, sid=sid, key=session.ks, ctr=ctr)
        key = rng.pick((rng.bytes(auth.KEY), self.keys["clinician"], self.keys["service"]))
        session.ctr += 1
        return frame.encode(msg_id, seq, payload, sid=sid, key=key, ctr=session.ctr)

    def judge(self, sh, before, logged):
        """What ran in this input that must not have (a list of texts, empty: none)."""
        after = state(sh)
        found = []
        ran = False
        for i in range(len(before)):
            sid = before[i][0]
            if sid and after[i][0] == sid and after[i] != before[i]:
                ran = True
                if sid != self.genuine:
                    found.append("session %d ran %r" % (sid, after[i]))
                elif before[i][3] and after[i][2] <= before[i][2]:
                    found.append("session %d ran a stale counter" % (sid,))
                else:
                    self.genuine_run += 1
        if not ran:
            for e in since(sh.core.log, logged):
                if e[3] not in ("input", "alarm", "decision", "rate") and e[4] == "received":
                    found.append("the core ran %s" % (e[3],))
        return found

    def answered(self, answer, hello):
        """The device's frames of this input: the sid a HELLO_R opened (or None), and
        the session's AUTH_R or KEY_R taken in."""
        opened = None
        for f in Decoder().decode(answer):
            name = catalog.NAME.get(f.msg_id)
            if name == "HELLO_R" and hello:
                opened = f.sid
                self.session = None
                if self.said is not None and self.said[0] in catalog.ROLE_NAMES:
                    role = catalog.ROLE_NAMES[self.said[0]]
                    session = shellkit.Session(role, self.keys[role])
                    session.hello_payload = self.said[1]
                    session.opened(f)
                    self.session = session
                    self.auth_due = True
            elif name == "AUTH_R" and self.session is not None and f.sid == self.session.sid:
                self.session.authed = True
            elif name == "KEY_R" and self.rotating is not None and f.sid == self.genuine:
                role, new = self.rotating
                if role in catalog.ROLE_NAMES:
                    self.keys[catalog.ROLE_NAMES[role]] = new
        return opened


def state(sh):
    """Each session slot's (sid, last seq, host counter, authenticated)."""
    s = sh.sessions
    return [(s.sid[i], s.last[i], s.host_ctr[i], s.authed[i]) for i in range(s.size)]
