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

    # Left out, a field is the class's None: an instance holds only what it was given
    # (each attribute of an instance is a slot of its dict, allocated per decision).
    allowed = next_at_ms = plan = dose = rate = unit = None
    _log = None  # an accepted decision's message is its log entry's, worded when read
    _seq = 0

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
        self._message = message
        if allowed is not None:
            self.allowed = allowed
        if next_at_ms is not None:
            self.next_at_ms = next_at_ms
        if plan is not None:
            self.plan = plan
        if dose is not None:
            self.dose = dose
        if rate is not None:
            self.rate = rate
        if unit is not None:
            self.unit = unit

    @property
    def message(self) -> str:
        log = self._log
        if self._message is None and log is not None:
            # worded now, from the entry the core logged the decision as (kept once
            # read: the ring may overwrite the entry later)
            self._message = log.text(self._seq) if log.held(self._seq) else ""
        return self._message or ""

    @message.setter
    def message(self, value):
        self._message = value

    def logged(self, log, seq):
        """The decision is entry seq of log, which words its message when read."""
        self._log = log
        self._seq = seq


def refuse(code, message, allowed=None, next_at_ms=None):
    return Result(False, code, message, allowed, next_at_ms)
