# The Result every safety decision returns.
#
# A decision is named by its reason, a stable lower_snake name ("above_hard_max"); the
# wire's number for it is the protocol's business (protocol/reasons.py, where every
# name the core uses is listed: tests/test_core_messages.py checks). Every human text
# the core makes is printable ASCII within protocol/text.py's TEXT_MAX.


class Result:
    """The outcome of one decision.

    ok          True when the command was applied
    code        stable reason name (protocol/reasons.py gives its wire number)
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

    def as_dict(self):
        return {
            "ok": self.ok,
            "code": self.code,
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
