# Every check the safety core makes of a command, as small pure functions.
#
# Each check returns a refusal (a Result from firmware.result.refuse: the reason, a
# message for a human, and where one exists the range the command could have used) or
# None when the command passes it. Two checks are also the lookup of what the command
# names, and return what they found instead of None: check_conc the library's
# concentration (an int) equal to the command's, check_alarm the listed Alarm. core.py
# only says, per command, which checks apply and in which order; the first refusal is
# the decision.
#
# Hard rules refuse whatever the command says. Soft rules refuse unless the command
# carries override; what an override passed is appended to notes, which the core names
# in the decision and the log. Doses arrive as the exact rational num/den of the
# drug's dose_unit (units.convert_dose), and are compared by cross-multiplying.
#
# The modules, and their checks in the order start applies them: inputs (what the
# command names and says), dose (the library's limits of one dose, then the same drug on
# other channels, then the pump's maximum rate); then what only the other commands
# check, steps (a titration's change of dose) among them.
# ruff: noqa: F401 - re-exported for the core; no __all__ (a list of 23 names in the heap)
from firmware.rules.dose import check_combined, check_dose, check_rate, check_start
from firmware.rules.inputs import (
    EMERGENCY_REASONS,
    check_alarm,
    check_channel,
    check_conc,
    check_drug,
    check_library,
    check_patient,
    check_reason,
    check_state,
    check_stop,
    check_unit,
    check_values,
    check_volume,
    check_weight,
    check_weight_known,
    is_quantity,
    library_problem,
)
from firmware.rules.steps import check_step
