# The three frames the benchmarks time, defined once for both interpreters (bench/*.py
# on CPython; tests/mp/bench_auth.py and tests/mp/report_protocol_memory.py on
# MicroPython, where tests/mp/run.mjs copies tests/ as source): the smallest, a
# typical command, and the largest payload.
TITRATE = {"ch": 1, "dose": 12000000, "unit": "mcg/min", "override": False}
# A full page of taper steps: MAX_PAYLOAD (240 bytes), nearly.
TAPER_R = {
    "ch": 1,
    "unit": "mcg/kg/min",
    "total": 50,
    "plan": [{"at_ms": 900000 * i, "dose": 1000000 - 20000 * i} for i in range(18)],
}
FRAMES = (
    ("HEARTBEAT", {}),
    ("TITRATE", TITRATE),
    ("TAPER_R", TAPER_R),
)
