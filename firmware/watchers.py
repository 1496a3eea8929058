# The alarms the safety core raises on its own, from what it watches rather than from a
# command: a syringe near empty, the host link silent, a second-line drug delivering
# without any of its partners. alarm() is the one way the core raises any alarm (these,
# and those of an emergency stop, a fault or a reset), so every alarm is logged.
#
# The link-loss alarm is for a host that declared itself supervising (HELLO or
# SUPERVISE, with its heartbeat interval): while one does, silence beyond
# max(link timeout, 3 x the largest interval) raises link_lost; while none does (a
# clinician's one-shot CLI commands, minutes apart), silence is no alarm.
#
# near_empty(), link() and host_seen() are on the shell's hot path (tick, delivered,
# host_seen): in the steady state they compare and add small integers and allocate
# nothing, every threshold having been computed when a rate or the link last changed.
from firmware import units, wording
from firmware.alarms import HIGH, MEDIUM
from firmware.channel import describe
from protocol.text import duration, listing


class Watchers:
    def __init__(self, alarms, log, channels, link_timeout_ms):
        self._alarms = alarms
        self._log = log
        self._channels = channels  # the core's own list of channels
        self._link_timeout_ms = link_timeout_ms
        self._silence_ms = link_timeout_ms  # silence allowed while supervised
        self._supervised = False  # after boot nothing supervises
        self._link_deadline = link_timeout_ms  # the host has until then to be heard
        self._link_alarmed = False

    def alarm(self, ch, code, priority, message, now_ms, active):
        alarm = self._alarms.raise_(ch, code, priority, message, now_ms, active)
        if alarm is not None:  # "<priority> #<id>: <message>", worded when read
            self._log.put(now_ms, ch, wording.ALARM, priority, alarm.id, message, code)
        return alarm

    # -- a syringe near empty -------------------------------------------------------------

    def near_empty(self, c, now_ms):
        # hot path: two compares, and the alarm only once per start (one function, not
        # a second for the alarm: each costs a board's heap)
        if not c.rate or c.near_empty_raised or c.volume_left > c.near_empty_volume:
            return
        c.near_empty_raised = True
        self.alarm(
            c.ch,
            "near_empty",
            HIGH if c.drug.taper else MEDIUM,
            "channel %d (%s) near empty: %s mL left, empty in about %s"
            % (
                c.ch,
                c.drug.name,
                units.fmt(c.volume_left),
                duration(c.time_to_empty_s() * 1000),
            ),
            now_ms,
            True,
        )

    # -- the host link --------------------------------------------------------------------

    def expect_host(self, now_ms):
        """The host has the allowed silence from now_ms to be heard."""
        self._link_deadline = now_ms + self._silence_ms

    def supervise(self, interval_ms, now_ms, heard=True):
        self._supervised = interval_ms > 0
        self._silence_ms = max(self._link_timeout_ms, 3 * interval_ms)
        # A declaration is the host heard; the last one to stop supervising says
        # goodbye, which clears link_lost rather than leaving an alarm behind it. A
        # supervisor's session closed under it (silent past its window) is neither: its
        # link_lost, raised already, stays until a host is heard.
        if heard:
            self.host_seen(now_ms)

    def host_seen(self, now_ms):
        self.expect_host(now_ms)
        # Cleared even when this core did not raise it: one restored from a snapshot
        # taken while the link was silent lists it active, and the host is back now.
        self._alarms.clear(0, "link_lost")
        if self._link_alarmed:
            self._link_alarmed = False
            self._log.add(now_ms, 0, "input", "link_back", "host link back")

    def link_due(self):
        """When link() will raise link_lost unless the host is heard; None once raised,
        or while no host supervises (a silent link is then no alarm: nothing is due)."""
        return None if self._link_alarmed or not self._supervised else self._link_deadline

    def link(self, now_ms):
        if not self._supervised or self._link_alarmed or now_ms < self._link_deadline:
            return
        self._link_alarmed = True
        held = [describe(c) for c in self._channels if c.delivering]
        self.alarm(
            0,
            "link_lost",
            HIGH if held else MEDIUM,
            "host link silent for over %d s; rates held: %s"
            % (self._silence_ms // 1000, listing(held, 60) if held else "nothing running"),
            now_ms,
            True,
        )

    # -- drugs that need a partner ------------------------------------------------------

    def advisories(self, now_ms, ch=0):
        """Cross-channel: a second-line drug (vasopressin, phenylephrine, dopamine) with
        none of its partners delivering, alarmed on every channel it applies to now
        (raised now or already listed). Returns the advisory text of channel ch when it
        applies there, else None. Loops only: nothing is made for a start or a stop."""
        said = None
        for c in self._channels:
            drug = c.started_drug() if c.delivering else None
            alone = drug is not None and bool(drug.needs_any)
            if drug is not None and alone:
                # one of drug's partners delivering on some channel (a loop: any() of
                # a generator would make one for every start)
                for o in self._channels:
                    if o.delivering and o.started_drug().name in drug.needs_any:
                        alone = False
                        break
            if drug is not None and alone:
                # the library's advisory text (druglib keeps it short enough to send)
                text = drug.advisory or ""
                self.alarm(c.ch, "second_line_alone", MEDIUM, text, now_ms, True)
                if c.ch == ch:
                    said = text
            else:
                self._alarms.clear(c.ch, "second_line_alone")
        return said
