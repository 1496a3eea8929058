# The patient's limits across channels: a drug's hard max holds for the patient, not
# for one channel. (Conventions: firmware/rules/__init__.py.)
from firmware import units
from firmware.result import refuse


def check_combined(c, drug, dose, channels):
    """The hard max is the patient's, not a channel's: the same drug delivering on
    other channels counts too, so two channels at 0.03 units/min of vasopressin are
    refused (0.06 > 0.04). Clinical judgement, the safe side: a syringe changeover
    that runs old and new together must fit under the hard max (else let the old one
    run out: near empty warns well before). Doses add in the drug's dose_unit. A
    titration that does not rise never needs it: it only lowers the patient's total."""
    if c.delivering and dose <= c.dose:
        return None
    others = 0
    for o in channels:
        if o is not c and o.delivering and o.started_drug().name == drug.name:
            others += o.dose
    if not others or dose + others <= drug.hard_max:
        return None
    room = drug.hard_max - others
    return refuse(
        "above_hard_max",
        "%s + %s on other channels is above the hard max %s %s for %s"
        % (
            units.fmt(dose),
            units.fmt(others),
            units.fmt(drug.hard_max),
            drug.dose_unit,
            drug.name,
        ),
        (drug.hard_min, room, drug.dose_unit) if room >= drug.hard_min else None,
    )
