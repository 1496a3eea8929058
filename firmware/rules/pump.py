# The pump's limits: its mechanical maximum rate. (Conventions: firmware/rules/__init__.py.)
from firmware import units
from firmware.result import refuse


def check_rate(drug, weight, conc, dose, max_rate):
    """The pump's mechanical maximum, as a refusal naming the dose it allows."""
    rate = units.rate_for(dose, drug.dose_unit, weight, conc, drug.conc_unit)
    if rate > max_rate:
        top = units.dose_for(max_rate, drug.dose_unit, weight, conc, drug.conc_unit)
        return refuse(
            "above_max_rate",
            "%s %s needs %s mL/h, above this pump's max %s mL/h (%s at most)"
            % (
                units.fmt(dose),
                drug.dose_unit,
                units.fmt(rate),
                units.fmt(max_rate),
                units.fmt(min(top, drug.hard_max)),
            ),
            (drug.hard_min, min(top, drug.hard_max), drug.dose_unit),
        )
    return None
