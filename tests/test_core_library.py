"""CPython-side checks of the drug library and the unit arithmetic (hypothesis)."""

import copy
import json
import zlib
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from firmware import druglib, units
from tests.librarykit import places

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = ROOT / "firmware" / "druglib.json"


def test_canonical_form_is_sorted_compact_json_and_crc_is_zlib_crc32():
    doc = json.loads(LIBRARY.read_text())
    body = {k: v for k, v in doc.items() if k != "crc32"}
    expected = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert druglib.canonical(body) == expected
    assert doc["crc32"] == f"0x{zlib.crc32(expected.encode()):08x}"


@given(st.text(alphabet='"\\\n\t abcé€', max_size=20))
def test_canonical_strings_round_trip_through_json(text):
    assert json.loads(druglib.canonical(text)) == text


@given(st.decimals(min_value=0, max_value=10**6, places=6, allow_nan=False))
def test_parse_decimal_and_fmt_are_exact_inverses(value):
    text = format(value, "f")
    micro = units.parse_decimal(text)
    assert micro == int(value * 10**6)
    assert Decimal(units.fmt(micro)) == value


dose_units = st.sampled_from(sorted(units.DOSE_UNITS))


@given(
    dose=st.integers(0, 10**9),
    unit_from=dose_units,
    unit_to=dose_units,
    weight=st.integers(20 * 10**6, 300 * 10**6),
)
def test_dose_conversion_is_exact(dose, unit_from, unit_to, weight):
    if units.DOSE_UNITS[unit_from][0] != units.DOSE_UNITS[unit_to][0]:
        return
    num, den = units.convert_dose(dose, unit_from, unit_to, weight)
    # back again, exactly, as fractions
    _, size_from, kg_from = units.DOSE_UNITS[unit_from]
    _, size_to, kg_to = units.DOSE_UNITS[unit_to]
    amount = Fraction(dose * size_from) * (Fraction(weight, 10**6) if kg_from else 1)
    back = Fraction(num, den) * size_to * (Fraction(weight, 10**6) if kg_to else 1)
    assert back == amount
    assert abs(units.round_div(num, den) - Fraction(num, den)) <= Fraction(1, 2)


@given(
    dose=st.integers(1, 10**8),
    weight=st.integers(20 * 10**6, 300 * 10**6),
    conc=st.integers(1, 10**8),
    conc_unit=st.sampled_from(["mcg/mL", "mg/mL"]),
)
def test_rate_is_the_exact_rate_rounded_down_and_dose_for_inverts_it(dose, weight, conc, conc_unit):
    rate = units.rate_for(dose, "mcg/kg/min", weight, conc, conc_unit)
    per_ml = Fraction(conc * units.CONC_UNITS[conc_unit][1], 10**6)  # ng per mL
    exact = Fraction(dose * 1000, 10**6) * Fraction(weight, 10**6) / per_ml * 60 * 10**6
    assert rate <= exact < rate + 1
    assert units.dose_for(rate, "mcg/kg/min", weight, conc, conc_unit) <= dose


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='"\\\n\t\x01 abcé€'),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=12,
)


@given(st.dictionaries(st.sampled_from(["crc32", "a", "b", "é"]), _JSON))
def test_incremental_crc_is_the_crc_of_the_whole_canonical_form(doc):
    body = {k: v for k, v in doc.items() if k != "crc32"}
    assert druglib.crc_of(doc) == zlib.crc32(druglib.canonical(body).encode())


def test_library_identity_bounds_are_the_hello_field_widths():
    # druglib refuses a name or version HELLO_R could not carry whole; the two
    # numbers live in different layers, so this pins them together.
    from firmware import libload
    from protocol import catalog

    widths = {f[0]: f[2] for f in catalog.FIELDS[catalog.ID["HELLO_R"]] if len(f) > 2}
    assert widths["library"] == libload._LIBRARY_NAME_MAX
    assert widths["library_version"] == libload._LIBRARY_VERSION_MAX


_SHIPPED = json.loads(LIBRARY.read_text())
# every place but the seal and "about" (free text the pump never reads)
_PLACES = [p for p in places(_SHIPPED) if p[0] not in ("crc32", "about")]
# the limits whose null means "no limit": null there, or a figure for a null, is valid
_OPTIONAL = {"start_max", "max_step_up", "max_step_down", "max_up_percent"}


def _json_type(value):
    return "bool" if isinstance(value, bool) else type(value).__name__


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(_PLACES),
    st.sampled_from(
        [None, True, False, 0, 1, -1, "", "4", "x", [], ["x"], [[]], {}, {"a": 1}, 1.5]
    ),
)
def test_any_value_of_another_type_anywhere_is_a_listed_problem_never_a_crash(place, value):
    doc = copy.deepcopy(_SHIPPED)
    node = doc
    for key in place[:-1]:
        node = node[key]
    was, node[place[-1]] = node[place[-1]], value
    assume(_json_type(was) != _json_type(value))
    if not isinstance(value, float):
        doc["crc32"] = f"0x{druglib.crc_of(doc):08x}"  # sealed: only the substitution is wrong
    lib = druglib.load(json.dumps(doc))  # never raises (it runs at every boot)
    no_limit = None in (was, value) and _OPTIONAL & set(map(str, place))
    assert no_limit or lib.problems, (place, value)
    assert isinstance(lib.crc, int)
