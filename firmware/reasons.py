# Stable reason codes and the Result every safety decision returns.
#
# A reason is a lower_snake name with a fixed wire number. The table is APPEND-ONLY: a
# number is never reused or renumbered, since hosts, logs and stored snapshots keep it.
# Ranges: 0-9 accepted, 10-39 refused, 40-59 alarms and advisories, 60-79 log entries
# that record an input rather than decide anything.
#
# Every human text built here or in the core (Result.message, Alarm.message, log text)
# is printable ASCII of at most TEXT_MAX bytes, so the wire carries it whole
# (protocol/catalog.py's TEXT_MAX; tests/test_core_messages.py holds the two equal).

_CODES = (
    # accepted
    ("ok", 0),
    ("ok_override", 1),  # accepted past a soft limit because the command carried override
    ("ok_advisory", 2),  # accepted, with an advisory alarm (e.g. vasopressin alone)
    ("taper_started", 3),  # stop of a taper drug: the library's taper now runs
    ("stopped", 4),
    ("emergency_stopped", 5),
    ("acked", 6),
    ("taper_step", 7),  # one step of a running taper (log only)
    ("rate_changed", 8),  # the motor's rate changed (log only)
    ("restored", 9),  # the core was restored from a snapshot after a reset (log only)
    # refused
    ("library_invalid", 10),
    ("unknown_drug", 11),
    ("unknown_channel", 12),
    ("invalid_state", 13),
    ("unknown_unit", 14),
    ("wrong_unit_family", 15),
    ("per_hour_unit", 16),
    ("rate_not_dose", 17),
    ("weight_required", 18),
    ("weight_out_of_range", 19),
    ("conc_required", 20),
    ("conc_not_allowed", 21),
    ("volume_required", 22),
    ("volume_out_of_range", 23),
    ("above_hard_max", 24),
    ("below_hard_min", 25),
    ("above_soft_max", 26),
    ("below_soft_min", 27),
    ("likely_unit_slip", 28),
    ("step_up_too_large", 29),
    ("step_down_too_large", 30),
    ("too_soon", 31),
    ("above_max_rate", 32),
    ("unknown_alarm", 33),
    ("unknown_reason", 34),
    ("bad_value", 35),
    ("above_start_max", 36),
    # alarms and advisories (Alarm.code)
    ("link_lost", 40),
    ("near_empty", 41),
    ("syringe_empty", 42),
    ("occlusion", 43),
    ("air_in_line", 44),
    ("motor_fault", 45),
    ("extravasation", 46),
    ("clinician", 47),  # emergency stop by the clinician
    ("second_line_alone", 48),  # a second-line drug runs with none of its partners
    ("resumed_after_reset", 49),  # a channel delivers again after a reset, from a snapshot
    ("store_lost", 50),  # the saved state was missing or corrupt: every channel starts idle
    # log entries of inputs (EventLog.code)
    ("received", 60),  # a command as received (kind: its name); its decision follows
    ("link_back", 61),  # the host is heard again after link_lost
)

TEXT_MAX = 120  # bytes of any human text (protocol/catalog.py TEXT_MAX)

NUMBER = dict(_CODES)
NAME = dict((number, name) for name, number in _CODES)


class Result:
    """The outcome of one decision.

    ok          True when the command was applied
    code        stable reason name (NUMBER[code] is its wire number)
    message     for a human: what was decided and why
    allowed     refusals: (lo, hi, unit) the command could have used, else None
    next_at_ms  interval refusals: the earliest time the step is allowed, else None
    plan        taper: [(at_ms, dose), ...] down to 0, else None
    dose        the dose now set, micro-scaled in unit (after any exact conversion)
    rate        the motor rate now set, micro-scaled mL/h
    unit        the dose unit of dose (the drug's library unit)
    """

    def __init__(
        self,
        ok,
        code,
        message,
        allowed=None,
        next_at_ms=None,
        plan=None,
        dose=None,
        rate=None,
        unit=None,
    ):
        self.ok = ok
        self.code = code
        self.message = message
        self.allowed = allowed
        self.next_at_ms = next_at_ms
        self.plan = plan
        self.dose = dose
        self.rate = rate
        self.unit = unit

    @property
    def number(self):
        return NUMBER[self.code]

    def as_dict(self):
        return {
            "ok": self.ok,
            "code": self.code,
            "number": NUMBER[self.code],
            "message": self.message,
            "allowed": list(self.allowed) if self.allowed else None,
            "next_at_ms": self.next_at_ms,
            "plan": [list(step) for step in self.plan] if self.plan else None,
            "dose": self.dose,
            "rate": self.rate,
            "unit": self.unit,
        }

    def __repr__(self):
        return "Result(%s, %s: %s)" % ("ok" if self.ok else "refused", self.code, self.message)


def refuse(code, message, allowed=None, next_at_ms=None):
    return Result(False, code, message, allowed, next_at_ms)


def clip(text, room):
    """text in printable ASCII (others as ?), shortened to room characters with "...",
    so that no input or library text can push a message past TEXT_MAX."""
    text = "".join(ch if " " <= ch <= "~" else "?" for ch in text)
    return text if len(text) <= room else text[: room - 3] + "..."


def shown(value, room=16):
    """A value taken from a command, for a message: its repr, clipped to room."""
    return clip(repr(value), room)


def listing(items, room):
    """items joined by ", " in at most room characters, the rest counted ("+3 more")."""
    out = ""
    for i, item in enumerate(items):
        more = "+%d more" % (len(items) - i)
        part = (", " if out else "") + item
        # keep room for the "+N more" that may still have to follow
        if len(out) + len(part) > room - (len(more) + 2 if i < len(items) - 1 else 0):
            return out + (", " if out else "") + more
        out += part
    return out
