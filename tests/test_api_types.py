"""The Python API is typed (PEP 561) and gives quantities as Decimals in named units.

No device here: the package's annotations, its py.typed marker, and the conversions of
the wire's records (events, status) into the API's answers.
"""

import dataclasses
import importlib.resources
import inspect
import re
import tomllib
import types
import typing
from decimal import Decimal
from pathlib import Path

import pumpguard
import pytest
from pumpguard.api import answers
from pumpguard.api.answers import Alarm, StateChange

from protocol import catalog, messages
from protocol.reasons import NUMBER

ROOT = Path(__file__).resolve().parent.parent
# The dunder methods of the API a caller uses.
_DUNDERS = ("__init__", "__enter__", "__exit__")


def _public_callables():
    """(where, function) of every public function and method pumpguard exports, as far
    as its __all__ (and its library's and report's) names them."""
    out = []
    for module in (pumpguard, pumpguard.library, pumpguard.report):
        for name in module.__all__:
            obj = getattr(module, name)
            where = f"{module.__name__}.{name}"
            if isinstance(obj, types.ModuleType):
                continue  # library and report: their own __all__ is walked
            if inspect.isfunction(obj):
                out.append((where, obj))
            elif inspect.isclass(obj) and obj.__module__.startswith("pumpguard"):
                for attr, member in vars(obj).items():
                    if attr.startswith("_") and attr not in _DUNDERS:
                        continue
                    if isinstance(member, property):
                        member = member.fget
                    elif isinstance(member, (classmethod, staticmethod)):
                        member = member.__func__
                    # the methods dataclass() writes (__init__ from annotated fields) count
                    # with their fields, checked below
                    if inspect.isfunction(member) and member.__qualname__.startswith(
                        obj.__qualname__ + "."
                    ):
                        out.append((f"{where}.{attr}", member))
    return out


def test_every_public_function_and_method_is_annotated():
    missing = []
    for where, fn in _public_callables():
        params = list(inspect.signature(fn).parameters.values())
        if params and params[0].name in ("self", "cls"):
            params = params[1:]
        missing += [f"{where}({p.name})" for p in params if p.annotation is inspect.Parameter.empty]
        if inspect.signature(fn).return_annotation is inspect.Signature.empty:
            missing.append(f"{where} -> ?")
    assert not missing, missing
    assert len(_public_callables()) > 80  # the walk found the API, not nothing


def test_every_answer_field_is_annotated_and_no_quantity_is_a_raw_int():
    # An int field of an answer is a count, an id, a time in ms or s: named so. A dose,
    # rate, volume, weight or concentration is a Decimal in a unit its name or a field
    # beside it names: never the wire's millionths.
    whole = re.compile(
        r"^((from_)?channels?|id|seq|boot_id|active_alarms|library_problems)$|_ms$|_s$|crc$"
    )
    classes = _answer_classes()
    assert StateChange in classes and answers.Status in classes
    for cls in classes:
        for field in dataclasses.fields(cls):
            hint = typing.get_type_hints(cls)[field.name]
            optional = typing.get_origin(hint) in (typing.Union, types.UnionType)
            if hint is int or (optional and int in typing.get_args(hint)):
                assert whole.search(field.name), f"{cls.__name__}.{field.name}: an int quantity?"


def _answer_classes():
    return [
        obj
        for obj in vars(answers).values()
        if inspect.isclass(obj)
        and dataclasses.is_dataclass(obj)
        and obj.__module__ == answers.__name__
    ]


def test_the_package_says_it_is_typed_and_ships_the_marker():
    assert importlib.resources.files("pumpguard").joinpath("py.typed").is_file()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "py.typed" in pyproject["tool"]["setuptools"]["package-data"]["pumpguard"]


def test_every_event_of_the_catalog_has_its_typed_answer():
    events = {name for name, msg_id in catalog.ID.items() if catalog.is_event(msg_id)}
    assert set(answers.EVENTS) == events


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"ch": 1, "state": "running", "drug": "norepinephrine", "dose": 100000,
             "unit": "mcg/kg/min", "rate": 26_250000, "at_ms": 5000},
            StateChange(1, "running", "norepinephrine", Decimal("0.1"), "mcg/kg/min",
                        Decimal("26.25"), 5000),
        ),
        (
            {"ch": 2, "state": "stopped", "drug": "", "dose": 0, "unit": "", "rate": 0,
             "at_ms": 0},
            StateChange(2, "stopped", None, None, None, Decimal(0), 0),
        ),
    ],
)  # fmt: skip
def test_a_state_event_gives_its_dose_and_rate_as_decimals(fields, expected):
    payload = messages.encode("EV_STATE", fields)
    got = answers._event("EV_STATE", messages.decode(catalog.ID["EV_STATE"], payload))
    assert got == expected and isinstance(got.dose or Decimal(0), Decimal)
    assert isinstance(got.rate_ml_h, Decimal)


def test_an_alarm_event_is_an_alarm_with_its_names():
    fields = {"id": 3, "ch": 1, "code": NUMBER["occlusion"], "priority": 3, "acked": False,
              "at_ms": 7, "message": "occlusion on channel 1: flow stopped"}  # fmt: skip
    got = answers._event("EV_ALARM", fields)
    assert isinstance(got, Alarm)
    assert (got.id, got.channel, got.code, got.priority) == (3, 1, "occlusion", "high")


def test_status_reads_the_order_and_says_it_in_a_line():
    s = answers.Status(
        1, "running", "norepinephrine", Decimal("0.1"), "mcg/kg/min", Decimal("26.25"),
        Decimal("1.5"), Decimal("48.5"), 6651, (), None, None, False,
        Decimal("16"), "mcg/mL", Decimal("70"), Decimal("50"),
    )  # fmt: skip
    assert s.order == "16 mcg/mL, 70 kg, 50 mL programmed"
    assert s.as_json()["concentration"] == 16 and s.as_json()["volume_ml"] == 50
    idle = dataclasses.replace(s, concentration=None, concentration_unit=None, weight_kg=None,
                               volume_ml=None)  # fmt: skip
    assert idle.order == ""
