"""Bad arguments to the Python API: only PumpguardError subclasses, saying what was wrong
and what is allowed, and nothing changed on the pump.

Two halves: every public method of ``Pump`` and ``connect()`` fed wrong types and values
against the emulator (the message of each, and the pump's frame counter and state
unchanged), and
Hypothesis feeding arbitrary values to every parameter of a pump with no device behind
it (either a PumpguardError, or fields the catalog encodes: never a TypeError,
ValueError, AttributeError or KeyError from inside).
"""

import re
import threading
from decimal import Decimal

import pumpguard
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pumpguard.api.client import Pump
from pumpguard.errors import BadValue, RefusedError, UsageError, WrongType

from protocol import messages
from tests.systemkit import ANSWER_TIMEOUT_S, NOREPI, start_norepinephrine

# Every message of a bad argument says what is allowed, in one of these words.
ALLOWED = re.compile(r"allowed|must be|give|one of|at most")
NAN = float("nan")
HUGE = 10**30

# (call on a pump whose channel 1 runs norepinephrine and channel 2 is idle, the error
# class, what the message says). None of them sends a frame.
LOCAL = [
    (lambda p: p.status(0), BadValue, r"channel 0 is out of range: allowed 1 to \d"),
    (lambda p: p.status(99), BadValue, r"channel 99 is out of range: allowed 1 to \d"),
    (lambda p: p.status(-1), BadValue, r"channel -1 is out of range"),
    (lambda p: p.status(HUGE), BadValue, r"channel 1000000000000000000000000000000 is out"),
    (lambda p: p.status(10**5000), BadValue, r"channel <an int of 16610 bits> is out"),
    (lambda p: p.status("1"), WrongType, r"channel must be a whole number .* not '1' \(a str\)"),
    (lambda p: p.status(1.0), WrongType, r"channel must be a whole number .* \(a float\)"),
    (lambda p: p.status(True), WrongType, r"channel must be .* not True \(a bool\)"),
    (lambda p: p.status(None), WrongType, r"channel must be .* not None"),
    (lambda p: p.status(b"\x01"), WrongType, r"channel must be .* \(a bytes\)"),
    (lambda p: p.start(0, "norepinephrine", "0.1", "mcg/kg/min", **NOREPI), BadValue, "channel"),
    (lambda p: p.start("2", "vasopressin", "0.03", "units/min"), WrongType, "channel must be"),
    (lambda p: p.start(2, None, "0.03", "units/min"), WrongType, r"drug must be text \(a str\)"),
    (lambda p: p.start(2, 5, "0.03", "units/min"), WrongType, r"drug must be text"),
    (lambda p: p.start(2, b"vasopressin", "0.03", "units/min"), WrongType, r"drug must be"),
    (lambda p: p.start(2, "v" * 25, "0.03", "units/min"), BadValue, r"25 bytes long: allowed at"),
    (lambda p: p.start(2, "\ud800", "0.03", "units/min"), BadValue, r"not valid text: give UTF-8"),
    (lambda p: _vaso(p, dose=None), WrongType, r"dose must be a number as a str, Decimal or int"),
    (lambda p: _vaso(p, dose=0.03), WrongType, r"dose must be given exactly .* not the float"),
    (lambda p: _vaso(p, dose=NAN), WrongType, r"not the float nan"),
    (lambda p: _vaso(p, dose=True), WrongType, r"dose must be a number .* not True"),
    (lambda p: _vaso(p, dose=b"0.03"), WrongType, r"dose must be a number .* not a bytes"),
    (lambda p: _vaso(p, dose=["0.03"]), WrongType, r"not a list"),
    (lambda p: _vaso(p, dose="-0.03"), BadValue, r"dose -0.03 is negative: allowed 0 to 2147"),
    (lambda p: _vaso(p, dose=-1), BadValue, r"dose -1 is negative"),
    (lambda p: _vaso(p, dose="nan"), BadValue, r"dose 'nan' is not a finite number: allowed"),
    (lambda p: _vaso(p, dose=Decimal("sNaN")), BadValue, r"not a finite number"),
    (lambda p: _vaso(p, dose="Infinity"), BadValue, r"not a finite number"),
    (lambda p: _vaso(p, dose="0.0300001"), BadValue, r"more than 6 decimals: allowed at most 6"),
    (lambda p: _vaso(p, dose="three"), BadValue, r"'three' is not a decimal number: give one"),
    (lambda p: _vaso(p, dose="1e9"), UsageError, r"dose 1e9 is out of range: allowed 0 to 2147"),
    (lambda p: _vaso(p, dose=10**5000), UsageError, r"dose 1000000000000\S*\.\.\. is out of r"),
    (lambda p: _vaso(p, unit=None), WrongType, r"unit must be text \(a str\) of at most 16"),
    (lambda p: _vaso(p, unit=b"units/min"), WrongType, r"unit must be text"),
    (lambda p: _vaso(p, unit="u" * 17), BadValue, r"unit 'uuuu.* 17 bytes long: allowed at most"),
    (lambda p: _vaso(p, weight_kg=70.0), WrongType, r"weight must be given exactly"),
    (lambda p: _vaso(p, weight_kg="-70"), BadValue, r"weight -70 is negative"),
    (lambda p: _vaso(p, weight_kg=False), WrongType, r"weight must be a number"),
    (lambda p: _vaso(p, volume_ml="5e10"), UsageError, r"volume 5e10 is out of range: allowed"),
    (lambda p: _vaso(p, volume_ml=20.5), WrongType, r"volume must be given exactly"),
    (lambda p: _vaso(p, concentration=1), WrongType, r"concentration must be 'VALUE UNIT'"),
    (lambda p: _vaso(p, concentration="1"), BadValue, r"concentration must be 'VALUE UNIT' or"),
    (lambda p: _vaso(p, concentration=("1",)), BadValue, r"concentration must be"),
    (lambda p: _vaso(p, concentration=("1", "units/mL", "x")), BadValue, r"concentration must"),
    (lambda p: _vaso(p, concentration=b"1 units/mL"), WrongType, r"concentration must be"),
    (lambda p: _vaso(p, concentration=(1.0, "units/mL")), WrongType, r"concentration must be gi"),
    (lambda p: _vaso(p, concentration=("1", 5)), WrongType, r"concentration unit must be text"),
    (lambda p: _vaso(p, concentration="x units/mL"), BadValue, r"concentration 'x' is not a d"),
    # A flag is a bool: override="no" would have been true (bool("no")), silently.
    (lambda p: _vaso(p, override="no"), WrongType, r"override must be True or False, not 'no'"),
    (lambda p: _vaso(p, override=1), WrongType, r"override must be True or False, not 1"),
    (lambda p: _vaso(p, override=None), WrongType, r"override must be True or False"),
    (lambda p: p.titrate(0, "0.1", "mcg/kg/min"), BadValue, r"channel 0 is out of range"),
    (lambda p: p.titrate(1, 0.12, "mcg/kg/min"), WrongType, r"dose must be given exactly"),
    (lambda p: p.titrate(1, "0.1.2", "mcg/kg/min"), BadValue, r"is not a decimal number"),
    (lambda p: p.titrate(1, "0.12", 5), WrongType, r"unit must be text"),
    (lambda p: p.titrate(1, "0.12", "mcg/kg/min", "yes"), WrongType, r"override must be True"),
    (lambda p: p.stop(0), BadValue, r"channel 0 is out of range"),
    (lambda p: p.stop("1"), WrongType, r"channel must be"),
    (lambda p: p.stop(None), WrongType, r"channel must be"),
    (lambda p: p.emergency_stop(0, "clinician"), BadValue, r"channel 0 is out of range"),
    (lambda p: _handover(p, to_ch=3), BadValue, r"channel 3 is out of range: allowed 1 to 2"),
    (lambda p: _handover(p, drug=None), WrongType, r"drug must be text"),
    (lambda p: _handover(p, concentration="16"), BadValue, r"concentration"),
    (lambda p: _handover(p, volume_ml=50.0), WrongType, r"volume"),
    (lambda p: p.patient(70.5), WrongType, r"weight must be given exactly"),
    (lambda p: p.patient("70kg"), BadValue, r"weight '70kg' is not a decimal number"),
    (lambda p: p.patient("-1"), BadValue, r"weight"),
    (lambda p: p.patient("70", clear=True), BadValue, r"weight_kg or clear=True, not both"),
    (lambda p: p.patient(clear="yes"), WrongType, r"clear must be True or False, not 'yes'"),
    (lambda p: p.emergency_stop(1, None), WrongType, r"reason must be text"),
    (lambda p: p.emergency_stop(1, 5), WrongType, r"reason must be text"),
    (lambda p: p.emergency_stop(1, "x" * 17), BadValue, r"reason .* allowed at most 16"),
    (lambda p: p.ack(None), WrongType, r"alarm_id must be a whole number .* from 1 to 65535"),
    (lambda p: p.ack("1"), WrongType, r"alarm_id must be a whole number"),
    (lambda p: p.ack(1.0), WrongType, r"alarm_id must be a whole number"),
    (lambda p: p.ack(True), WrongType, r"alarm_id must be a whole number"),
    (lambda p: p.ack(0), BadValue, r"alarm_id 0 is out of range: allowed 1 to 65535"),
    (lambda p: p.ack(-1), BadValue, r"alarm_id -1 is out of range"),
    (lambda p: p.ack(70000), BadValue, r"alarm_id 70000 is out of range"),
    (lambda p: p.log(-1), BadValue, r"since \(an entry seq\) -1 is out of range: allowed 0 to"),
    (lambda p: p.log(2**32), BadValue, r"since \(an entry seq\) 4294967296 is out of range"),
    (lambda p: p.log("0"), WrongType, r"since \(an entry seq\) must be a whole number"),
    (lambda p: p.log(None), WrongType, r"since .* must be a whole number"),
    (lambda p: p.log(0.0), WrongType, r"since .* must be a whole number"),
    (lambda p: p.supervise(None), WrongType, r"heartbeat interval \(s\) must be a whole number"),
    (lambda p: p.supervise("2"), WrongType, r"heartbeat interval \(s\) must be"),
    (lambda p: p.supervise(2.5), WrongType, r"heartbeat interval \(s\) must be"),
    (lambda p: p.supervise(-1), BadValue, r"heartbeat interval \(s\) -1 is out of range: all"),
    (lambda p: p.supervise(70000), BadValue, r"allowed 0 to 65535"),
    (lambda p: p.supervise(True), WrongType, r"heartbeat interval"),
    (lambda p: _enter(p.keepalive(0)), BadValue, r"heartbeat interval \(s\) 0 .* allowed 1 to"),
    (lambda p: _enter(p.keepalive("2")), WrongType, r"heartbeat interval"),
    (lambda p: _enter(p.keepalive(HUGE)), BadValue, r"heartbeat interval"),
    (lambda p: p.rotate_key("root"), BadValue, r"role 'root' is not one of monitor, clinician"),
    (lambda p: p.rotate_key(None), WrongType, r"role must be one of monitor, clinician, service"),
    (lambda p: p.rotate_key(["service"]), WrongType, r"role must be one of"),
    (lambda p: p.rotate_key("service"), UsageError, r"needs the service key"),
    (lambda p: p.push_library(None), WrongType, r"library path must be a file path"),
    (lambda p: p.push_library(0), WrongType, r"library path must be a file path \(a str or"),
    (lambda p: p.push_library(b"lib.json"), WrongType, r"library path must be a file path"),
    (lambda p: p.push_library("/nonexistent/lib.json"), UsageError, r"cannot read drug library"),
    (lambda p: p.events(-1), BadValue, r"timeout -1 s is out of range: allowed from 0 to 86400"),
    (lambda p: p.events(NAN), BadValue, r"timeout nan s is out of range"),
    (lambda p: p.events(Decimal("sNaN")), BadValue, r"timeout Decimal\('sNaN'\) s is out of"),
    (lambda p: p.events(HUGE), BadValue, r"timeout 1000000000000000000000000000000 s is out"),
    (lambda p: p.events("1"), WrongType, r"timeout must be a number of seconds from 0 to"),
    (lambda p: p.events(None), WrongType, r"timeout must be a number of seconds"),
    (lambda p: p.events(True), WrongType, r"timeout must be a number of seconds"),
]
# What the device alone knows: sent, refused (each refusal names what it allows).
DEVICE = [
    (lambda p: p.start(2, "adrenaline", "0.03", "units/min"), "unknown_drug", "known:"),
    (lambda p: _vaso(p, unit="units/minute"), "unknown_unit", "in: milliunits/min, units/min"),
    (lambda p: _vaso(p, unit="mcg/min"), "wrong_unit_family", "in: milliunits/min, units/min"),
    (lambda p: _vaso(p, unit="units/h"), "per_hour_unit", "dosed per minute"),
    (lambda p: _vaso(p, unit="mL/h"), "rate_not_dose", "give a dose in"),
    (lambda p: _vaso(p, concentration="1 units/litre"), "unknown_unit", "allowed: "),
    (lambda p: p.titrate(1, "0.1", "mcg/kg/minute"), "unknown_unit", "dosed in: .*mcg/kg/min"),
    (lambda p: p.emergency_stop(1, "stop"), "unknown_reason", "one of: occlusion"),
    (lambda p: p.ack(9999), "unknown_alarm", "listed"),
    (lambda p: _handover(p, to_ch=1), "invalid_state", "channel 1 to itself"),
    (lambda p: p.patient("1000"), "weight_out_of_range", "outside"),
]

# connect()'s options, each bad in its way (the rest good): refused before the port opens.
CONNECT = [
    ({"port": None}, WrongType, r"port must be a file path \(a str or os.PathLike\)"),
    ({"port": 5}, WrongType, r"port must be a file path"),
    ({"port": b"/dev/ttyUSB0"}, WrongType, r"port must be a file path"),
    ({"timeout": "1"}, WrongType, r"timeout must be a number of seconds above 0 to 86400"),
    ({"timeout": 0}, BadValue, r"timeout 0 s is out of range: allowed above 0 to 86400"),
    ({"timeout": -1}, BadValue, r"timeout -1 s is out of range"),
    ({"timeout": NAN}, BadValue, r"timeout nan s is out of range"),
    ({"timeout": True}, WrongType, r"timeout must be a number"),
    ({"timeout": 1e300}, BadValue, r"timeout 1e\+300 s is out of range"),
    ({"attempts": 0}, BadValue, r"attempts 0 is out of range: allowed 1 to 100"),
    ({"attempts": 10**6}, BadValue, r"attempts 1000000 is out of range"),
    ({"attempts": 1.5}, WrongType, r"attempts must be a whole number"),
    ({"attempts": "3"}, WrongType, r"attempts must be a whole number"),
    ({"boot_wait": -1}, BadValue, r"boot_wait -1 s is out of range: allowed from 0"),
    ({"boot_wait": "10"}, WrongType, r"boot_wait must be a number of seconds"),
    ({"supervise": 1.5}, WrongType, r"heartbeat interval \(s\) must be a whole number"),
    ({"supervise": -2}, BadValue, r"heartbeat interval \(s\) -2 is out of range"),
    ({"key": 5}, WrongType, r"key must be a file path"),
    ({"key": b"key.json"}, WrongType, r"key must be a file path"),
    ({"key": True}, WrongType, r"key must be a file path"),
    ({"role": "doctor"}, BadValue, r"role 'doctor' is not one of monitor, clinician, serv"),
    ({"role": 2}, WrongType, r"role must be one of"),
    ({"role": ["clinician"]}, WrongType, r"role must be one of"),
    ({"insecure": "yes"}, WrongType, r"insecure must be True or False, not 'yes'"),
    ({"insecure": 1}, WrongType, r"insecure must be True or False"),
    ({"insecure": None}, WrongType, r"insecure must be True or False"),
]


def _vaso(pump, dose="0.03", unit="units/min", **extra):
    order = {"concentration": "1 units/mL", "volume_ml": "20", **extra}
    return pump.start(2, "vasopressin", dose, unit, **order)


def _handover(pump, to_ch=2, **label):
    label = {"drug": "norepinephrine", "concentration": "16 mcg/mL", "volume_ml": "50", **label}
    return pump.handover(1, to_ch, **label)


def _enter(manager):
    with manager:
        pass


def _order(pump):
    """What the pump runs: every channel's order and state, and its alarms."""
    channels = [
        (
            s.state,
            s.drug,
            s.dose,
            s.dose_unit,
            s.rate_ml_h,
            s.override,
            s.concentration,
            s.volume_ml,
        )
        for s in (pump.status(ch) for ch in range(1, pump.channels + 1))
    ]
    return channels, [(a.id, a.code, a.acked) for a in pump.alarms()]


def _frames(pump):
    return pump.info().counters["frames"]


def _raises(call, pump, cls, said):
    with pytest.raises(pumpguard.PumpguardError) as info:
        call(pump)
    assert type(info.value) is cls, (type(info.value), info.value)
    assert re.search(said, str(info.value)), str(info.value)
    return info.value


@pytest.mark.system
def test_every_method_refuses_bad_arguments_with_what_is_allowed_and_sends_nothing(pump, pump_port):
    start_norepinephrine(pump)
    before = _order(pump)
    frames = _frames(pump)
    one_info = _frames(pump) - frames  # what asking costs: the INFO request itself
    frames += one_info
    for call, cls, said in LOCAL:
        error = _raises(call, pump, cls, said)
        if isinstance(error, (WrongType, BadValue)):
            assert ALLOWED.search(str(error)), str(error)
    for options, cls, said in CONNECT:
        options = {"port": pump_port, "timeout": ANSWER_TIMEOUT_S, **options}
        with pytest.raises(pumpguard.PumpguardError) as info:
            pumpguard.connect(**options)
        assert type(info.value) is cls and re.search(said, str(info.value)), info.value
        assert ALLOWED.search(str(info.value)), str(info.value)
    assert _frames(pump) - frames == one_info  # not one frame of theirs reached the pump
    for call, code, said in DEVICE:
        error = _raises(call, pump, RefusedError, said)
        assert error.code == code, error
    assert _order(pump) == before


# --- any value at all, to every parameter, with no device behind the pump ------------


class _Sent(Exception):
    """The request a call would send: its fields fit the catalog."""


class _Link:
    session_role = "clinician"
    session_keyfile = None
    supervise_s = 0

    def poll(self, timeout):
        return []


def _offline_pump():
    pump = Pump.__new__(Pump)  # no port, no HELLO: the checks before anything is sent
    pump.device = {"channels": 2}
    pump._lock = threading.RLock()
    pump._link = _Link()

    def call(name, fields, rerun=False, wrap=None):
        messages.encode(name, fields)  # raises unless the fields fit the catalog
        raise _Sent(name)

    pump._call = call
    return pump


ANY = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-2, max_value=3),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["0.1", "16 mcg/mL", "mcg/kg/min", "clinician", "-1", "1e9", "nan"]),
    st.binary(max_size=8),
    st.tuples(st.text(max_size=5), st.text(max_size=5)),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.builds(object),
)
# Per method, its parameters: each gets a good value or anything (ANY).
METHODS = {
    "status": {"channel": 1},
    "start": {
        "channel": 1,
        "drug": "norepinephrine",
        "dose": "0.1",
        "unit": "mcg/kg/min",
        "weight_kg": "70",
        "concentration": "16 mcg/mL",
        "volume_ml": "50",
        "override": False,
    },
    "titrate": {"channel": 1, "dose": "0.12", "unit": "mcg/kg/min", "override": False},
    "stop": {"channel": 1},
    "emergency_stop": {"channel": 1, "reason": "clinician"},
    "handover": {
        "from_ch": 1,
        "to_ch": 2,
        "drug": "norepinephrine",
        "concentration": "16 mcg/mL",
        "volume_ml": "50",
    },
    "patient": {"weight_kg": "70", "clear": False},
    "ack": {"alarm_id": 1},
    "log": {"since": 0},
    "supervise": {"interval_s": 2},
    "keepalive": {"interval_s": 2},
    "rotate_key": {"role": "service"},
    "events": {"timeout": 0},
}


@st.composite
def _calls(draw):
    name = draw(st.sampled_from(sorted(METHODS)))
    kwargs = {k: draw(st.one_of(st.just(v), ANY)) for k, v in METHODS[name].items()}
    return name, kwargs


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(_calls())
def test_any_value_to_any_parameter_is_a_pumpguard_error_or_a_frame_that_fits(call):
    name, kwargs = call
    try:
        if name == "keepalive":
            _enter(_offline_pump().keepalive(**kwargs))
        else:
            getattr(_offline_pump(), name)(**kwargs)
    except _Sent:
        return
    except pumpguard.PumpguardError as exc:
        assert str(exc)
        if isinstance(exc, (WrongType, BadValue)):
            assert ALLOWED.search(str(exc)), str(exc)
    # events() with a good timeout returns (nothing polled); anything else is a failure
