# The answers of the requests served most, written in place (issue 14): each handler
# fills its answer's fields in a list made once (shell.py encodes an answer before the
# next is made), so answering makes no tuple; what the answer says is checked by
# the handlers' and the system tests, its bytes by tests/portable/test_protocol_memory.py.
# Asserted on MicroPython only (gc.mem_alloc deltas).
import gc
import sys

from firmware import handlers
from protocol import messages
from tests.portable.shellkit import NOREPI, Host, ports, shell

_MP = sys.implementation.name == "micropython"
_W64 = sys.maxsize > 1 << 32
# The tuple of fields each made: 16 fields 160 B (64-bit), STATUS_R's 17 fields 160 B,
# HEARTBEAT_R's 3 48 B; on a 32-bit port the uptime and rates are long ints as they go.
HEARTBEAT_MAX = 0
INFO_MAX = 0 if _W64 else 64
STATUS_MAX = 0 if _W64 else 128


def _alloc(fn):
    fn()
    gc.collect()
    before = gc.mem_alloc()
    fn()
    return gc.mem_alloc() - before


def _running():
    p = ports()
    sh = shell(p)
    sh.begin()
    host = Host(sh, p)
    host.hello()
    name, fields = host.request("START", NOREPI)
    assert name == "START_R", fields
    sh.core.device_alarm("internal_fault", "drill", sh.uptime_ms())
    return sh


def test_answers_are_the_fields_they_were():
    sh = _running()
    now = sh.uptime_ms()
    name, r = handlers.heartbeat(sh, None, now)
    assert (name, list(r)) == ("HEARTBEAT_R", [now, sh.boot_id, 1])
    name, r = handlers.status(sh, [1], now)
    assert name == "STATUS_R" and r[0] == 1 and r[2] == "norepinephrine", r
    assert messages.encode(name, r) == messages.encode(name, tuple(r))
    name, r = handlers.info(sh, None, now)
    assert name == "INFO_R" and r[0] == now and len(r) == 16, r


def test_heartbeat_status_and_info_make_no_tuple():
    if not _MP:
        return
    sh = _running()
    now = sh.uptime_ms()
    f = [1]
    used = _alloc(lambda: handlers.heartbeat(sh, f, now))
    assert used <= HEARTBEAT_MAX, used
    used = _alloc(lambda: handlers.info(sh, f, now))
    assert used <= INFO_MAX, used
    used = _alloc(lambda: handlers.status(sh, f, now))
    assert used <= STATUS_MAX, used
