# Alarms: at most one per (channel, code), raised by the core, acknowledged by a clinician.
#
# An alarm is "active" while its condition lasts (link silent, syringe near empty) and
# stays listed until it is both acknowledged and no longer active: acknowledging silences
# it but never hides a condition that is still there, and a condition that ends by itself
# stays listed until someone has seen it. Advisories and stop events are raised inactive
# (nothing to clear), so acknowledging them removes them.
#
# Ids go on the wire as 16 bits (U16) and a pump raises alarms for weeks: they count
# 1..ID_MAX and wrap to 1, skipping ids still listed, so an id is never 0, never too
# large to send, and never names two listed alarms at once.
from micropython import const

ID_MAX = const(0xFFFF)
# The longest message an alarm raised from outside a command may have: the log's entry
# for it ("medium #65535: " + message) must fit protocol/text.py's TEXT_MAX (120).
MESSAGE_MAX = const(104)

HIGH = "high"
MEDIUM = "medium"
LOW = "low"


class Alarm:
    """id, ch (0: whole device), code (reason name), priority, message, at_ms, acked, active."""

    def __init__(self, id, ch, code, priority, message, at_ms, active):
        self.id = id
        self.ch = ch
        self.code = code
        self.priority = priority
        self.message = message
        self.at_ms = at_ms
        self.acked = False
        self.active = active


class Alarms:
    def __init__(self):
        self.items = []
        self.next_id = 1

    def find(self, ch, code):
        for alarm in self.items:
            if alarm.ch == ch and alarm.code == code:
                return alarm
        return None

    def raise_(self, ch, code, priority, message, at_ms, active=True):
        """Raise (or re-raise) the alarm (ch, code); returns it, or None when nothing is
        new: an unacked one is listed with this priority and message, and it is active
        or this raise is not (a lasting condition alarms once, not every tick).

        The one rule for every code. Anything else replaces the listed alarm with a new
        one (new id, so the shell sends it and the core logs it): an acked one raised
        again, a condition back after it ended, or another priority or message (what
        it is about changed, e.g. a link lost while idle, then lost again with a
        vasopressor running): a stale alarm must never mask the current one."""
        alarm = self.find(ch, code)
        if alarm is not None:
            if (
                not alarm.acked
                and (alarm.active or not active)
                and alarm.priority == priority
                and alarm.message == message
            ):
                return None
            self.items.remove(alarm)
        alarm = Alarm(self.new_id(), ch, code, priority, message, at_ms, active)
        self.items.append(alarm)
        return alarm

    def new_id(self):
        """The next free id (see the top of this module); next_id moves past it. A
        next_id out of 1..ID_MAX (a restored record's) starts again at 1."""
        given = self.next_id
        given = given if type(given) is int and 1 <= given <= ID_MAX else 1
        while self.listed(given):
            given = given % ID_MAX + 1
        self.next_id = given % ID_MAX + 1
        return given

    def listed(self, alarm_id):
        for alarm in self.items:  # noqa: SIM110 (any() of a generator makes one)
            if alarm.id == alarm_id:
                return True
        return False

    def clear(self, ch, code):
        """The condition behind (ch, code) is over."""
        alarm = self.find(ch, code)
        if alarm is not None:
            alarm.active = False
            if alarm.acked:
                self.items.remove(alarm)

    def ack(self, alarm):
        """Acknowledge a listed alarm (rules.check_alarm finds it by id): silenced, and
        gone unless its condition lasts."""
        alarm.acked = True
        if not alarm.active:
            self.items.remove(alarm)

    def keep(self, kept, o, back=False):
        """next_id and the alarms listed, each with its acked and active, copied into
        the list kept from o, in place (grown only past the most ever listed); or back:
        the same Alarm objects listed again as they were."""
        items = self.items
        if back:
            while items:
                items.pop()
            self.next_id = kept[o]
            for i in range(kept[o + 1]):
                alarm = kept[o + 2 + 3 * i]
                alarm.acked = kept[o + 3 + 3 * i]
                alarm.active = kept[o + 4 + 3 * i]
                items.append(alarm)
            return
        while len(kept) < o + 2 + 3 * len(items):
            kept.append(None)
        kept[o] = self.next_id
        kept[o + 1] = len(items)
        for alarm in items:
            kept[o + 2] = alarm
            kept[o + 3] = alarm.acked
            kept[o + 4] = alarm.active
            o += 3
