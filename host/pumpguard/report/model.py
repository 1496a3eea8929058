"""``build(entries, device)``: the log read into a ``Report``: each channel's dose, rate and
volume over time with what happened on it marked, the decisions, the alarms and the boots.

Times: an entry's own wall clock (UTC) where it has one, else its boot and uptime. The
plots need one axis across boots: the wall clock when every boot has one (each boot
placed by its first wall offset plus uptime, so it never runs backwards inside a boot),
else hours with the boots laid end to end (the time between them unknown). A boot whose
clock puts it before the previous boot's end (a host with a wrong clock) is placed at
that end instead, and said to be behind: the axis follows boot order.

Volume infused is computed from the log's rates (mL/h held until the next rate entry),
boot by boot: nothing is counted between a boot's last entry and the next boot (the pump
was off for part of it, and the log cannot say which part): a channel delivering when a
boot ended has its volume said to be "at least" that. A channel's first rate
entry says the rate before it ("26.25 mL/h -> 52.5 mL/h"): when the log's oldest
entries rotated out, that rate is counted from the first entry kept. What one start
delivers never exceeds the syringe volume its command gave, and a syringe_empty fault
means at most all of it was (the fault is logged after the pump ran dry; the volume
typed is not measured, the syringe may have held less): an upper bound, said so. From a
live pump (``now``) each channel's timeline is closed at the pump's uptime now, at the
rate it runs then, and its last start never counted past the volume the pump itself
counts (a syringe_empty included).

The same entry exported twice (overlapping ``log --jsonl --since N`` appends) is read
once, the repeats counted; two different entries with one (boot, seq) are both kept and
the export said to be inconsistent.
"""

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ..api.answers import LogEntry
from .parse import ACCEPTED_DOSE, HANDED_OVER, STARTED, Event, by_pump, read
from .records import (
    MS_PER_H,
    AlarmRow,
    Boot,
    ChannelReport,
    DecisionRow,
    LibraryPeriod,
    LibrarySwitch,
    Mark,
    Now,
    Report,
    Segment,
)


def _boots(entries):
    boots = []
    for e in entries:
        if boots and boots[-1][0] == e.boot_id:
            boots[-1][1].append(e)
        else:
            boots.append((e.boot_id, [e]))
    return boots


class _Axis:
    """Each entry's position on the plots' one time axis."""

    def __init__(self, boots):
        self.offsets = {}
        for boot_id, run in boots:
            walls = [e.wall_ms - e.at_ms for e in run if e.wall_ms is not None]
            if walls and boot_id not in self.offsets:
                self.offsets[boot_id] = walls[0]
        self.wall = bool(boots) and all(b in self.offsets for b, _ in boots)
        self.base = {}  # run index -> ms added to its uptime (wall: its offset and shift)
        self.behind = {}  # run index -> ms its clock put it before the previous run's end
        end = None
        for i, (boot_id, run) in enumerate(boots):
            if self.wall:
                start = self.offsets[boot_id] + run[0].at_ms
                self.behind[i] = 0 if end is None else max(0, end - start)
                self.base[i] = self.offsets[boot_id] + self.behind[i]
            else:
                self.base[i] = 0 if end is None else end  # its uptime 0 at the last end
            end = self.base[i] + run[-1].at_ms

    def at(self, run, e):
        ms = self.base[run] + e.at_ms
        if self.wall:
            return datetime.fromtimestamp(ms / 1000, UTC)
        return ms / MS_PER_H


class _Channel:
    """One channel's state while the log is read."""

    def __init__(self, ch, count=None, last_start=None):
        self.out = ChannelReport(ch)
        # a live pump's own count of the channel's last start (seq ``last_start``; None:
        # no start in the log, the count then bounds all the log says): what that start
        # delivered never exceeds it
        self.pump_count, self.last_start = count, last_start
        self.count = count if last_start is None else None
        self.drug = None
        self.unit = None
        self.dose = None
        self.rate = Decimal(0)
        self.volume = Decimal(0)
        self.last_ms = None  # uptime of the last point of this boot
        self.segment = None
        # what the syringe loaded at the last start still holds (None: the log gives no
        # volume); a new boot keeps it, as the pump does for a channel it resumes
        self.left = None
        self.given = Decimal(0)  # mL counted since the last start (the pump counts so too)

    def boot(self, pos, at_ms, rate=Decimal(0)):
        # a new boot: nothing runs until the log says it resumed (power was lost); only
        # the log's first boot may say what ran before its first entry kept (``rate``)
        if self.rate:
            self.out.at_least = True  # it ran until the pump went off: when, is unknown
        self.rate = rate
        self.dose = None
        self.segment = None
        self.last_ms = at_ms
        self.out.rates.append([(pos, self.rate)])
        self.out.volumes.append([(pos, float(self.volume))])

    def advance(self, pos, at_ms):
        """Count the rate held since the last point."""
        if self.last_ms is not None and at_ms > self.last_ms:
            self._deliver(self.rate * (at_ms - self.last_ms) / MS_PER_H)
            self.out.volumes[-1].append((pos, float(self.volume)))
        self.last_ms = at_ms

    def _room(self):
        # what this start may still deliver: what the syringe holds, what the pump counts
        room = [self.left, None if self.count is None else self.count - self.given]
        room = [r for r in room if r is not None]
        return max(Decimal(0), min(room)) if room else None

    def _deliver(self, ml):
        # each rate is held until the next entry, which the pump may log after it ran
        # dry: never more than the syringe holds, nor than the pump itself counts
        room = self._room()
        if room is not None and ml > room:
            self.out.not_counted += ml - room
            ml = room
        if self.left is not None:
            self.left -= ml
        self.given += ml
        self.volume += ml
        if self.drug is not None and ml:
            by = self.out.by_drug
            by[self.drug] = by.get(self.drug, Decimal(0)) + ml

    def load(self, volume, seq):
        self.left, self.given = volume, Decimal(0)
        self.count = self.pump_count if seq == self.last_start else None

    def emptied(self, pos):
        # syringe_empty: at most everything loaded went in, whatever the rates held say
        # (the volume typed is not measured): the pump's count bounds it when known
        ml = self._room() if self.left else None  # no volume typed: nothing to add
        if ml:
            self.out.upper_bound = self.out.upper_bound or self.count is None
            self._deliver(ml)
            self.out.volumes[-1].append((pos, float(self.volume)))
        self.left = None if self.left is None else Decimal(0)

    def set_rate(self, pos, rate):
        self.rate = rate
        self.out.rates[-1].append((pos, self.rate))

    def set_dose(self, pos, ev: Event):
        if ev.drug is not None and ev.unit is not None:
            self.drug, self.unit = ev.drug, ev.unit
        self.dose = ev.dose
        if self.drug is None or self.unit is None:
            return  # a stop with nothing known before it: no curve to draw
        s = self.segment
        if s is None or (s.drug, s.unit) != (self.drug, self.unit):
            s = self.segment = Segment(self.drug, self.unit)
            self.out.doses.append(s)
        s.points.append((pos, ev.dose))

    def mark(self, kind, pos, entry):
        self.out.marks.append(Mark(kind, pos, self.dose, entry))

    def close(self, pos):
        # every curve held to the boot's last entry
        self.out.rates[-1].append((pos, self.rate))
        if self.segment is not None:
            self.segment.points.append((pos, self.dose))
        self.segment = None


def _open(chans, ch, counts, starts, first, at_ms, rate=Decimal(0)):
    """Channel ch's timeline, begun at this boot's first entry the first time the log
    names it (rate: what it ran then)."""
    c = chans.get(ch)
    if c is None:
        c = chans[ch] = _Channel(ch, counts.get(ch), starts.get(ch))
        c.boot(first, at_ms, rate)
    return c


def _dose_mark(ev: Event, command):
    """The mark of a dose set: by the code of its decision, else by its command."""
    code = ev.entry.code
    if code == "ok_override":
        return "override"
    if code == "taper_step":
        return "taper_step"
    if ev.drug is None:  # a stop, a taper's end, an emergency stop, a fault: dose 0
        return "stopped"
    kind = command.kind if command is not None else ""
    return {"start": "start", "bolus": "bolus"}.get(kind, "titration")


def _running_before(run):
    """channel -> the rate its first rate entry of ``run`` says ran before it: what ran
    before the first entry kept when the oldest entries rotated out (or --since)."""
    out = {}
    for e in run:
        if e.kind == "rate" and e.channel not in out:
            ev = read(e)
            if ev.was is not None:
                out[e.channel] = ev.was
    return out


def build(
    entries: Iterable[LogEntry],
    device: dict[str, Any] | None = None,
    channels: int | None = None,
    source: str = "",
    now: Now | None = None,
) -> Report:
    """The report of ``entries`` (``LogEntry``, oldest first, as ``Pump.log()``) of the
    device ``device`` (``identity()``'s dict, None when unknown). ``channels``: the
    device's channel count when known (a live pump), so a channel the log never names
    is said to be unused. ``now``: a live pump's ``Now``, to close each channel's
    timeline at the pump's uptime now rather than at the log's last entry."""
    entries, repeats, clashes = _unique(sorted(entries, key=lambda e: e.seq))
    runs = _boots(entries)
    axis = _Axis(runs)
    if now is not None and (not runs or runs[-1][0] != now.boot_id):
        now = None  # rebooted since the last entry: what runs now is not on this timeline
    before = _running_before(runs[0][1]) if runs else {}
    counts = _counts(now)
    starts = _last_starts(entries)
    chans: dict[int, _Channel] = {}
    decisions, alarms, odd, unknown, inputs, switches = [], [], [], [], [], []
    by_id: dict[int, AlarmRow] = {}
    pending: dict[int, LogEntry] = {}  # channel -> its command awaiting a decision
    boots = []
    for i, (boot_id, run) in enumerate(runs):
        first = axis.at(i, run[0])
        boots.append(Boot(boot_id, run[0], run[-1], len(run), first, axis.behind.get(i, 0)))
        for c in chans.values():
            c.boot(first, run[0].at_ms)
        pending.clear()
        for e in run:
            pos = axis.at(i, e)
            if e.channel and e.channel not in chans:
                rate = before.get(e.channel, Decimal(0)) if i == 0 else Decimal(0)
                _open(chans, e.channel, counts, starts, first, run[0].at_ms, rate)
            c = chans.get(e.channel)
            if c is not None:
                c.advance(pos, e.at_ms)
                if e.code == "syringe_empty":
                    c.emptied(pos)
            ev = read(e)
            if not ev.understood:
                odd.append(e)
            if ev.what == "unknown":
                unknown.append(e)
            elif ev.what == "command":
                pending[e.channel] = e
                if e.kind == "bolus" and c is not None:
                    c.mark("bolus", pos, e)
            elif ev.what == "handover":
                decisions.append(DecisionRow(e, pending.pop(e.channel, None), False, e.channel))
                if ev.understood and c is not None and ev.channel is not None:
                    # both channels in one decision: this one stops, the other runs on
                    c.set_dose(pos, Event(e, "dose", dose=Decimal(0)))
                    c.mark("handover", pos, e)
                    # a channel the log names first here ran nothing before it
                    to = _open(chans, ev.channel, counts, starts, first, run[0].at_ms)
                    to.advance(pos, e.at_ms)
                    to.set_dose(pos, ev)
                    to.load(ev.volume, e.seq)
                    to.mark("handover", pos, e)
            elif ev.what in ("refused", "dose", "taper_started", "acked", "decision"):
                # the pump's own decisions (a taper's step, even the first, made at the
                # stop; a fault) answer no command
                command = None if by_pump(e.code) else pending.pop(e.channel, None)
                channel = ev.channel if ev.channel is not None else e.channel
                decisions.append(DecisionRow(e, command, ev.what == "refused", channel))
                if c is not None and ev.what == "refused":
                    c.mark("refused", pos, e)
                elif c is not None and ev.what == "taper_started":
                    c.mark("taper_started", pos, e)
                elif c is not None and ev.what == "dose" and ev.understood:
                    c.set_dose(pos, ev)
                    kind = _dose_mark(ev, command)
                    if kind == "start" and command is not None:  # a start has its command
                        c.load(read(command).volume, e.seq)
                    c.mark(kind, pos, e)
                if ev.what == "acked" and ev.alarm_id in by_id:
                    by_id[ev.alarm_id].acked = e
            elif ev.what == "rate" and c is not None and ev.rate is not None:
                c.set_rate(pos, ev.rate)
            elif ev.what == "alarm":
                row = AlarmRow(e, ev.alarm_id, ev.priority or "", ev.message)
                alarms.append(row)
                if ev.alarm_id is not None:
                    by_id[ev.alarm_id] = row
                if c is not None:
                    if ev.resumed:
                        c.set_dose(pos, ev)
                        c.set_rate(pos, _rate_before(c))
                    c.mark("alarm", pos, e)
            elif ev.what == "input":
                inputs.append(e)
                if ev.library is not None:
                    switches.append((LibrarySwitch(pos, ev.library[1], e), ev))
        live = now if i == len(runs) - 1 else None
        end = run[-1]
        if live is not None:
            end = replace(end, at_ms=max(end.at_ms, live.uptime_ms), wall_ms=None)
        last = axis.at(i, end)
        for n, c in chans.items():
            status = live.statuses.get(n) if live is not None else None
            c.advance(last, end.at_ms)
            if status is not None:
                c.out.now = status
                c.rate = status.rate_ml_h  # the curve ends at the rate the motor runs now
            c.close(last)
    for c in chans.values():
        c.out.volume_ml = c.volume
    used = sorted(chans)
    unused = [n for n in range(1, (channels or 0) + 1) if n not in chans]
    return Report(
        device=device,
        source=source,
        entries=entries,
        wall_axis=axis.wall,
        boots=boots,
        channels=[chans[n].out for n in used],
        unused=unused,
        decisions=decisions,
        alarms=alarms,
        not_understood=odd,
        unknown=unknown,
        first_seq=entries[0].seq if entries else 0,
        now=now,
        inputs=inputs,
        switches=[s for s, _ in switches],
        libraries=_libraries(switches),
        repeats=repeats,
        clashes=clashes,
    )


def _unique(entries):
    """(entries, repeats, clashes): each entry once though an export repeats it (appended
    ``--since`` exports that overlap); two different entries of one (boot, seq) are both
    kept, their key in ``clashes``: which one the pump wrote, the export cannot say."""
    seen: dict[tuple, list] = {}
    kept, repeats = [], 0
    for e in entries:
        same = seen.setdefault((e.boot_id, e.seq), [])
        if e in same:
            repeats += 1
            continue
        same.append(e)
        kept.append(e)
    return kept, repeats, sorted(key for key, got in seen.items() if len(got) > 1)


def _counts(now):
    """channel -> a live pump's own count of its infusion (an idle channel's count is of
    no infusion: no bound on what the log says)."""
    if now is None:
        return {}
    return {n: s.volume_infused_ml for n, s in now.statuses.items() if s.drug}


def _last_starts(entries):
    """channel -> the seq of its last accepted start, or handover to it: what the pump's
    count is of."""
    out = {}
    for e in entries:
        if e.kind != "decision":
            continue
        if e.code in ACCEPTED_DOSE and STARTED.match(e.text):
            out[e.channel] = e.seq
        elif e.code == "handed_over" and (m := HANDED_OVER.match(e.text)):
            out[int(m["to"])] = e.seq
    return out


def _libraries(switches):
    """The parts of the session each library ran, when the log says (its switches)."""
    periods, since = [], None
    for switch, ev in switches:
        periods.append(LibraryPeriod(ev.was_library, since, switch.entry))
        since = switch.entry
    if since is not None:
        _, ev = switches[-1]
        name, version, crc = ev.library
        periods.append(LibraryPeriod(f"{name} {version} (crc32 0x{crc})", since, None))
    return periods


def _rate_before(c: _Channel):
    # the rate the channel ran at before this boot: a restored channel runs at it again
    for run in reversed(c.out.rates[:-1]):
        if run:
            return run[-1][1]
    return Decimal(0)
