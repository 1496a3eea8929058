# What a command names and says, before any dose is weighed: the channel, the library
# and the drug it names, the channel's state, the quantities and units it gives, the
# patient's weight, the concentration and the volume; the reason of an emergency stop
# and the alarm an acknowledgement names. (Conventions: firmware/rules/__init__.py.)
from micropython import const

from firmware import units
from firmware.channel import START, STOP, TAPERING
from firmware.result import refuse
from protocol.text import TEXT_MAX, duration, listing, shown, words

EMERGENCY_REASONS = ("occlusion", "air_in_line", "extravasation", "clinician")
# The wire's largest quantity (protocol Q, i32): anything larger cannot come from the
# host, and bounding it keeps every message that echoes a quantity short.
_QUANTITY_MAX = const(0x7FFFFFFF)


def is_quantity(value):
    """A value the wire can carry: a whole number of millionths, 0 to _QUANTITY_MAX."""
    return type(value) is int and 0 <= value <= _QUANTITY_MAX


# -- what the command names: the channel, the library, the drug, the channel's state ---


def check_channel(ch, count):
    """A channel number of this pump (1 to count). Bools and other types are refused."""
    if type(ch) is int and 1 <= ch <= count:
        return None
    return refuse(
        "unknown_channel", "no channel %s: this pump has channels 1-%d" % (shown(ch), count)
    )


def library_problem(lib, room=TEXT_MAX):
    """Why an invalid library runs nothing, in room characters: the core logs it at
    power-on and refuses with it. The first problem is given whole when it fits, else
    cut after a whole word; of several, their count comes first."""
    n = len(lib.problems)
    # Short, so the first problem fits whole in an alarm's text (the board's console
    # and `pumpguard library check FILE` list every one)
    head = "drug library invalid: " if n == 1 else "library invalid, %d problems: " % (n,)
    return head + words(lib.problems[0], room - len(head))


def check_library(lib):
    return None if lib.ok else refuse("library_invalid", library_problem(lib))


def check_drug(lib, name):
    if name in lib.drugs:
        return None
    # Every name the library has, as far as the wire's text holds them: the one a
    # clinician meant is most often there (a typo); "+N more" only past TEXT_MAX.
    said = "unknown drug %s; known: " % (shown(name),)
    return refuse("unknown_drug", said + listing(sorted(lib.drugs), TEXT_MAX - len(said)))


def _not_now(c, what):
    return refuse("invalid_state", "cannot %s: channel %d is %s" % (what, c.ch, c.state))


def check_state(c, event, what):
    """The channel's transition table has event in its state (what: the command, said),
    and for a start its sensors report no fault: nothing starts into air, an occlusion,
    an empty syringe or a motor fault. Only a start: a stop is never refused for one."""
    if not c.allows(event):
        return _not_now(c, what)
    if c.fault is None or event != START:
        return None
    return refuse(
        "fault_active",
        "cannot %s: channel %d still reports %s; clear it first"
        % (what, c.ch, c.fault.replace("_", " ")),
    )


# -- what the command says: values, units, weight, concentration, volume ---------------


def _bad_value(what, value):
    return refuse(
        "bad_value",
        "%s must be a whole number of millionths, 0-%d, not %s"
        % (what, _QUANTITY_MAX, shown(value)),
    )


def check_values(dose, volume=None, conc=None, weight=None):
    """Every quantity the command carries is one the wire could carry. The dose is never
    optional (a missing one is a bad value, not an exception); the others may be left
    out, and each has its own refusal where it is needed."""
    if not is_quantity(dose):
        return _bad_value("dose", dose)
    # one by one: a tuple of them would be made for every command
    if volume is not None and not is_quantity(volume):
        return _bad_value("volume", volume)
    if conc is not None and not is_quantity(conc):
        return _bad_value("conc", conc)
    if weight is not None and not is_quantity(weight):
        return _bad_value("weight", weight)
    return None


def check_unit(unit, drug):
    """A per-minute dose unit of the drug's family (units.unit_problem says why not)."""
    if (
        type(unit) is str
        and unit != units.RATE
        and unit not in units.PER_HOUR_UNITS
        and unit in units.DOSE_UNITS
        and units.DOSE_UNITS[unit][0] == units.DOSE_UNITS[drug.dose_unit][0]
    ):
        return None  # what unit_problem passes, without the texts it makes first
    problem = units.unit_problem(unit, drug.dose_unit)
    return refuse(problem[0], problem[1]) if problem else None


def check_weight(lib, drug, unit, weight, patient=None):
    """Required by a weight-based drug or a per-kg dose; in the library's range if given;
    the patient's, when one is known (patient: its weight; None given: the patient's)."""
    if weight is not None and patient is not None and weight != patient:
        return refuse(
            "weight_mismatch",
            # (resume.py's text too: one string interned)
            "weight %s kg is not the patient's %s kg" % (units.fmt(weight), units.fmt(patient))
            + " (pumpguard patient changes it while none runs by weight)",
            (patient, patient, units.WEIGHT),
        )
    if weight is None:
        weight = patient
    if weight is None:
        if drug.weight_based or units.needs_weight(unit, drug.dose_unit):
            return refuse(
                "weight_required",
                "%s in %s needs the patient's weight (kg)" % (drug.name, unit),
                (lib.weight_min, lib.weight_max, units.WEIGHT),
            )
    elif not lib.weight_min <= weight <= lib.weight_max:
        return refuse(
            "weight_out_of_range",
            "weight %s kg is outside %s-%s kg"
            % (units.fmt(weight), units.fmt(lib.weight_min), units.fmt(lib.weight_max)),
            (lib.weight_min, lib.weight_max, units.WEIGHT),
        )
    return None


# -- the patient: one per pump module (issue 9, finding 7) ------------------------------
# Its weight is set by PATIENT (`pumpguard patient --weight KG`) or by the first start
# that gives one, and every later start's weight must be it (check_weight): 70 kg typed
# on one channel and 170 kg on another for one patient made the patient's total of a
# per-kg drug, and every limit read from it, wrong. A start that gives none runs at the
# patient's. Another patient (or weight) only while no channel delivers a dose that
# went through the weight (check_patient): vasopressin runs on, at the new one.
# So a delivering channel's weight is None or the patient's (the core's weight; the
# state record keeps it, resume.py checks it).


def check_patient(lib, weight, patient, channels):
    """PATIENT's weight: a quantity in the library's range, or None (no patient known);
    another than the patient's (patient: its weight now) only while no channel delivers
    a dose that went through the weight, or when none was known: a drug dosed per kg
    (its rate follows the weight), or one of the mass family that has a weight (a dose
    typed per kg was converted at it: phenylephrine's 0.3 mcg/kg/min at 100 kg is 30
    mcg/min, 0.6 mcg/kg/min at 50). Vasopressin's units have no per kg: it runs on."""
    if weight is not None:
        refusal = (
            check_values(0, weight=weight)
            or check_library(lib)
            or check_weight(lib, None, None, weight)
        )
        if refusal:
            return refusal
    if patient is None or weight == patient:
        return None
    for c in channels:
        drug = c.drug
        # MASS: the one family of units.DOSE_UNITS with per-kg units (a loop over the table
        # instead cost 128 B of a 190k heap that has few to spare; test_core_patient.py)
        if c.delivering and (drug.weight_based or (c.weight and drug.family == units.MASS)):
            return refuse(
                "invalid_state",
                "cannot change the patient: channel %d's %s is dosed at %s kg; end it first"
                " (stop or emergency stop)" % (c.ch, drug.name, units.fmt(patient)),
            )
    return None


def check_conc(drug, conc, conc_unit):
    """The library concentration (in drug.conc_unit) equal to conc conc_unit, exactly;
    a refusal when there is none (or none was given)."""
    if conc is None or conc_unit is None:
        return refuse("conc_required", "the concentration is required (%s)" % (_concs(drug),))
    if conc_unit not in units.CONC_UNITS:
        return refuse(
            "unknown_unit",
            "unknown concentration unit %s (%s)" % (shown(conc_unit), _concs(drug)),
        )
    exact = units.convert_conc(conc, conc_unit, drug.conc_unit)
    if exact is not None:
        for value in drug.concs:
            if exact[0] == value * exact[1]:
                return value
    return refuse(
        "conc_not_allowed",
        "%s %s is not a library concentration of %s (%s)"
        % (units.fmt(conc), conc_unit, drug.name, _concs(drug)),
    )


def _concs(drug):
    # what a concentration refusal says is allowed (made only for a refusal)
    return "allowed: %s %s" % (listing([units.fmt(a) for a in drug.concs], 40), drug.conc_unit)


def check_volume(lib, volume, syringe_ml=None):
    """The volume programmed: the library's range, and no more than the syringe loaded
    holds (syringe_ml, its capacity as the motor reports it): counted down from a figure
    larger than the syringe, near empty would come after it ran dry (issue 9, finding 1)."""
    most = lib.volume_max
    if syringe_ml is not None and syringe_ml < most:
        most = syringe_ml
    if volume is not None and lib.volume_min <= volume <= most:
        return None
    return refuse(
        "volume_required" if volume is None else "volume_out_of_range",
        "the syringe or bag volume must be %s-%s mL%s, not %s"
        % (
            units.fmt(lib.volume_min),
            units.fmt(most),
            " (the syringe loaded)" if most != lib.volume_max else "",
            "missing" if volume is None else units.fmt(volume) + " " + units.VOLUME,
        ),
        (lib.volume_min, most, units.VOLUME),
    )


# -- what only the other commands check: titrate, stop, emergency stop, ack -----------


def check_weight_known(c, unit):
    """A per-kg titration of a channel started without a weight cannot be converted."""
    drug = c.drug
    if c.weight is None and units.needs_weight(unit, drug.dose_unit):
        return refuse(
            "weight_required",
            "%s needs the patient's weight, which was not given at start: use %s"
            % (unit, drug.dose_unit),
        )
    return None


def check_stop(c, now_ms):
    """Stop where the table has it. A running taper is not stopped again: the refusal
    says when it steps next and carries its plan (only an emergency stop cuts it)."""
    if c.state == TAPERING:
        refusal = _not_now(c, "stop")
        refusal.message += " (taper running, next step in %s)" % (
            duration(c.taper_next_ms - now_ms),
        )
        refusal.plan = c.taper_plan(c.taper_next_ms)
        return refusal
    return check_state(c, STOP, "stop")


def check_reason(reason):
    if reason in EMERGENCY_REASONS:
        return None
    return refuse(
        "unknown_reason",
        "emergency stop needs a reason, one of: %s (not %s)"
        % (", ".join(EMERGENCY_REASONS), shown(reason)),
    )


def check_alarm(alarm_id, alarms):
    """The listed alarm (of alarms, the Alarm objects listed) an acknowledgement names,
    or a refusal naming those listed."""
    for a in alarms:
        if a.id == alarm_id:
            return a
    return refuse(
        "unknown_alarm",
        "no alarm %s is listed (listed: %s)"
        % (shown(alarm_id), listing([str(a.id) for a in alarms], 60) or "none"),
    )
