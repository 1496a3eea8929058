"""``pumpguard monitor``: a live terminal view of a pump, for the bedside and the QA lab.

Two parts: a pure one, ``snapshot.py`` (``gather()``: what the pump says now, as a
``Snapshot``) and ``view.py`` (``render()``: a snapshot to a rich renderable), testable
with no device; and the loop, ``live.py`` (refresh every interval, keys to acknowledge
an alarm, a supervising clinician session, reconnect after a link failure).
"""

from .live import Keys, run
from .snapshot import Snapshot, gather
from .view import render

__all__ = ["Keys", "Snapshot", "gather", "render", "run"]
