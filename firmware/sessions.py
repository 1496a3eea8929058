# The device's sessions: one per host that said a matching HELLO (protocol/SPEC.md §3).
#
# A session holds what exactly-once needs per host: its sid (the id its requests carry),
# the seq of the last request it ran (any request not newer is refused as stale, never
# run again: a copy arriving late, after any number of newer requests, still finds it),
# the heartbeat interval it declared (0: not supervising, a one-shot CLI) and when it
# was last heard. At most SESSIONS at once, _AUTHED of them authenticated: a HELLO takes
# a free slot or a handshake's that waited HOLD_MS in vain (_victim()), and an AUTH that
# passes closes an authenticated one when _AUTHED others are (make_room()).
# Everything is preallocated at boot; the per-frame calls compare and store small ints.
#
# A session supervises from its first request on, not from its HELLO: a HELLO whose
# answer was lost is sent again (byte for byte: the same seq and CRC), and the copy is
# given the session the first copy opened while that has run nothing (one session, not
# a ghost per copy); a session that never ran a request (its host gave up) neither
# supervises (no link alarm for a host that never got its answer) nor outranks one-shot
# sessions when a slot is needed.
#
# sids count up from a value drawn from the boot id, skipping 0 (no session): a request
# that crosses a reset carries a sid the new boot does not know, and gets
# hello_required instead of running.
#
# Each session also holds its authentication (protocol/SPEC.md, the handshake;
# firmware/gate.py checks it): the role its HELLO named, the device's nonce (kept so a
# retried HELLO gets the same HELLO_R), the transcript hash th and the session key Ks
# derived from the role's key, whether AUTH proved the host holds that key, the last
# host counter it accepted and the device's own counter for its answers.
from micropython import const

# Slots: at most _AUTHED sessions authenticated at once, and always one slot more, so a
# handshake finds room without closing the session of a host that proved its key.
SESSIONS = const(5)
_AUTHED = const(4)
HOLD_MS = const(2_000)  # a handshake's time to AUTH before another HELLO may take its slot
CLINICIAN = const(2)  # catalog.ROLES["clinician"]: the role that supervises
_SEQ_MASK = const(0xFFFF)
_NEWER = const(0x8000)  # (seq - last) & 0xFFFF below this (and not 0): seq is newer
_HEARD_MAX = const(1 << 29)  # the recency counter is renumbered before it grows big


class Sessions:
    def __init__(self, boot_id, size=SESSIONS, link_timeout_ms=10_000):
        self.size = size
        self._link_timeout_ms = link_timeout_ms  # the board's: a supervisor's least silence
        self.sid = [0] * size  # 0: a free slot
        self.last = [0] * size  # seq of the last request the session ran
        self.interval_s = [0] * size  # declared heartbeat interval, 0: not supervising
        # SHA-256 of the HELLO that opened it (seq and payload): its retries match. Not
        # its CRC, which anyone can forge for a HELLO of their own (another role).
        self.hello_id = [None] * size  # type: list[bytes | None]
        self.confirmed = [False] * size  # it ran a request since its HELLO
        self.role = [0] * size  # catalog.ROLES number its HELLO named
        # the device's nonce Nd, the transcript hash th, the session key Ks (None: the
        # board has no key for the role)
        self.nonce = [None] * size  # type: list[bytes | None]
        self.th = [None] * size  # type: list[bytes | None]
        self.ks = [None] * size  # type: list[bytes | None]
        # the offset of the host's wall clock its HELLO gave, applied once AUTH passed
        self.wall = [None] * size  # type: list[int | None]
        self.authed = [False] * size  # AUTH proved the key: requests may run
        self.host_ctr = [0] * size  # the last host counter accepted
        self.device_ctr = [0] * size  # the counter of the device's last tagged answer
        self._heard = [0] * size  # recency: the value of _clock when last heard
        self.heard_at = [0] * size  # uptime (ms) it was opened or last ran a request
        self._clock = 0
        self._next = boot_id & _SEQ_MASK or 1

    def find(self, sid):
        """The slot of session sid, or -1 (unknown: never opened, evicted, or from
        before a reset)."""
        if sid:
            for i in range(self.size):
                if self.sid[i] == sid:
                    return i
        return -1

    def open(self, seq, hello_id, interval_s, now=0):
        """A new session at uptime now, opened by a HELLO with this seq and digest (so
        nothing at or before it runs in the session); a retry of the HELLO that opened
        one that has run nothing yet gets that one. Returns (slot, the sid of the
        pending session it closed or 0); slot -1: no room (_victim())."""
        seq &= _SEQ_MASK
        for j in range(self.size):
            if (
                self.sid[j]
                and not self.confirmed[j]
                and self.last[j] == seq
                and self.hello_id[j] == hello_id
            ):
                self.heard(j)
                return j, 0
        i = self._victim(now)
        if i < 0:
            return -1, 0
        evicted = self.sid[i]
        # The next sid no slot holds (the one closed here included): sids count round
        # mod 2**16, and a host without a key can open and close sessions until the
        # count comes round to a sid still open; find() must never give that host's
        # pending session the requests of the one that proved its key.
        sid = self._next
        while sid in self.sid:
            sid = (sid + 1) & _SEQ_MASK or 1
        self._next = (sid + 1) & _SEQ_MASK or 1
        self.sid[i] = sid
        self.last[i] = seq
        self.interval_s[i] = interval_s
        self.hello_id[i] = hello_id
        self.confirmed[i] = False
        self._forget(i)
        self.heard(i)
        self.heard_at[i] = now
        return i, evicted

    def close(self, i):
        """End session i (its AUTH was refused): its sid is unknown from now on."""
        self.sid[i] = 0
        self.interval_s[i] = 0
        self.confirmed[i] = False
        self._forget(i)

    def _forget(self, i):
        self.role[i] = 0
        self.nonce[i] = None
        self.th[i] = None
        self.ks[i] = None
        self.wall[i] = None
        self.authed[i] = False
        self.host_ctr[i] = 0
        self.device_ctr[i] = 0

    def _victim(self, now):
        # The slot a HELLO takes: a free one, else the pending session (no AUTH passed)
        # that has waited longest, once it has waited HOLD_MS; else -1, no room (busy).
        # A HELLO never closes an authenticated session (only a host that proved its key
        # does, at its AUTH: make_room()), and a handshake in progress keeps its slot
        # for HOLD_MS whatever anyone else says HELLO.
        best = -1
        for j in range(self.size):
            if not self.sid[j]:
                return j
            if self.authed[j] or now - self.heard_at[j] < HOLD_MS:
                continue
            if best < 0 or self._heard[j] < self._heard[best]:
                best = j
        return best

    def make_room(self, i, now):
        """Session i just proved its key: the slot of the authenticated session it
        closes to stay within _AUTHED (-1: none needed), or -2: no room. The least
        recently heard of: a one-shot session, a supervisor silent past its window, and,
        for a clinician only, a supervisor still heard (a host holding the key that
        changes delivery always gets in: the one it displaces says HELLO again and comes
        back; a display or service tool never displaces a supervisor)."""
        best = -1
        best_rank = 3
        count = 0
        for j in range(self.size):
            if j == i or not self.sid[j] or not self.authed[j]:
                continue
            count += 1
            if not self._supervising(j):
                rank = 0
            elif now - self.heard_at[j] >= self.silence_ms(j):
                rank = 1
            elif self.role[i] == CLINICIAN:
                rank = 2
            else:
                continue
            if rank < best_rank or (rank == best_rank and self._heard[j] < self._heard[best]):
                best = j
                best_rank = rank
        if count < _AUTHED:
            return -1
        return best if best >= 0 else -2

    def silence_ms(self, i):
        """How long supervising session i may be silent before link_lost (the
        core's rule: max(the board's link timeout, 3 x its interval))."""
        return max(self._link_timeout_ms, 3000 * self.interval_s[i])

    def _supervising(self, i):
        # Only a clinician's session supervises: link_lost watches the host that changes
        # delivery, whose silence no display or service tool may stand in for.
        return self.confirmed[i] and self.interval_s[i] > 0 and self.role[i] == CLINICIAN

    def heard(self, i):
        """A frame of session i arrived: it is the most recently heard."""
        self._clock += 1
        if self._clock >= _HEARD_MAX:
            self._renumber()
        self._heard[i] = self._clock

    def _renumber(self):
        # Keep the order, restart the count: 0..size-1 by recency (ties by slot, as a
        # stable sort ranks them; no key function: a lambda's names are interned)
        heard = self._heard
        old = list(heard)
        for i in range(self.size):
            rank = 0
            for j in range(self.size):
                if old[j] < old[i] or (old[j] == old[i] and j < i):
                    rank += 1
            heard[i] = rank
        self._clock = self.size

    def newer(self, i, seq):
        """Whether seq is newer than the last one session i ran (16-bit serial numbers:
        the next 32767 seqs are newer, the 32768 up to and including it are not)."""
        d = (seq - self.last[i]) & _SEQ_MASK
        return 0 < d < _NEWER

    def ran(self, i, seq, ctr=0):
        """Session i runs its request seq, which carried host counter ctr (0: AUTH,
        untagged)."""
        self.last[i] = seq
        self.host_ctr[i] = ctr
        self.confirmed[i] = True

    def supervision_s(self):
        """The largest heartbeat interval any session declared and confirmed by a
        request (0: nobody supervises)."""
        largest = 0
        for i in range(self.size):
            if self.sid[i] and self._supervising(i) and self.interval_s[i] > largest:
                largest = self.interval_s[i]
        return largest
