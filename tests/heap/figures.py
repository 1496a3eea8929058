"""What the unix port's runs print, read back (tests/heap/run.py): the soak's lines
(tests/heap/soak.py) and the portable tests' (tests/mp/runner.py), made figures, and
the one line a script reads. Pure functions over text: tests/test_heap.py feeds them
output of its own."""

import re
from dataclasses import dataclass, field

_MAX_FREE = re.compile(r"max free sz: (\d+)")
_GC = re.compile(r"GC: total: (\d+), used: (\d+), free: (\d+)")


def heap_bytes(text):
    """MicroPython's -X heapsize spelling (190k, 2m, 400000) in bytes (k = 1024)."""
    m = re.fullmatch(r"(\d+)([kKmM]?)", text.strip())
    if not m:
        raise ValueError(f"not a heap size: {text!r} (e.g. 190k, 2m, 400000)")
    scale = {"": 1, "k": 1024, "m": 1024 * 1024}[m.group(2).lower()]
    return int(m.group(1)) * scale


def heap_name(n):
    """190k for 194560: the spelling the summary line uses."""
    return f"{n // 1024}k" if n % 1024 == 0 else str(n)


@dataclass
class MemoryErrorSeen:
    kind: str  # import, boot, firmware (the shell's net caught it), loop, harness
    where: str  # the command (or idle turn) it happened in
    at_s: int  # simulated seconds
    trace: list = field(default_factory=list)  # the traceback's lines

    def line(self):
        last = self.trace[-1] if self.trace else "MemoryError"
        frames = [t.strip() for t in self.trace if t.strip().startswith("File ")]
        inner = frames[-1] if frames else "no traceback"
        return f"{self.kind} in {self.where} at {_hms(self.at_s)}: {last} ({inner})"


@dataclass
class Soak:
    block: int = 0  # bytes per GC block (from the empty heap's mem_info)
    alloc: dict = field(default_factory=dict)  # ALLOC name -> gc.mem_alloc()
    samples: list = field(default_factory=list)  # (at_s, mem_free, mem_alloc, largest free)
    errors: list = field(default_factory=list)  # MemoryErrorSeen
    commands: dict = field(default_factory=dict)  # name -> (count, bytes, blocks, refused)
    answers: list = field(default_factory=list)  # the ANSWER lines: refusals, errors
    end_s: int | None = None  # None: the run died before its END line
    boots: int = 0
    status: int = 0  # the process's exit status
    free0: int = 0  # free bytes of the empty heap (with its max free sz: the block size)

    @property
    def finished(self):
        return self.end_s is not None

    def worst(self):
        """(bytes, name) of the command that allocated most: the larger of its two
        figures (net bytes of every command, the block figure of the sampled ones)."""
        best = (0, "none")
        for name, (count, used, blocks, _) in self.commands.items():
            if name != "idle" and count and max(used, blocks) > best[0]:
                best = (max(used, blocks), name)
        return best

    def largest_free(self):
        """The smallest of the largest free blocks sampled (bytes), None without one."""
        return min((s[3] for s in self.samples), default=None)


def parse_soak(text, status=0):
    soak = Soak(status=status)
    lines = text.splitlines()
    pending_sample = None
    error = None
    for line in lines:
        if error is not None:
            if line.startswith(("Traceback", "  ")) or line.startswith("MemoryError"):
                error.trace.append(line)
                if line.startswith("MemoryError"):
                    error = None
                continue
            error = None
        m = _GC.search(line)
        if m and not soak.block and pending_sample is None:
            soak.free0 = int(m.group(3))
        m = _MAX_FREE.search(line)
        if m:
            blocks = int(m.group(1))
            if not soak.block and soak.free0 and blocks:
                soak.block = _power_of_two(soak.free0 / blocks)
            if pending_sample is not None:
                at, free, used = pending_sample
                soak.samples.append((at, free, used, blocks * (soak.block or 16)))
                pending_sample = None
            continue
        words = line.split()
        if not words:
            continue
        head = words[0]
        if head == "ALLOC" and len(words) == 3:
            soak.alloc[words[1]] = int(words[2])
        elif head == "SAMPLE" and len(words) == 4:
            pending_sample = tuple(int(w) for w in words[1:])
        elif head == "MEMERR" and len(words) == 4:
            error = MemoryErrorSeen(words[1], words[2], int(words[3]))
            soak.errors.append(error)
        elif head == "CMD" and len(words) == 6:
            soak.commands[words[1]] = tuple(int(w) for w in words[2:])
        elif head == "ANSWER":
            soak.answers.append(line[len("ANSWER ") :])
        elif head == "END":
            soak.end_s = int(words[1]) if words[1].isdigit() else 0
            if len(words) == 4:
                soak.boots = int(words[3])
    return soak


def merge(a, b):
    """One run of two processes (before and after a power cut): b's figures added."""
    out = Soak(block=a.block, alloc=dict(a.alloc), status=b.status, free0=a.free0)
    out.samples = a.samples + b.samples
    out.errors = a.errors + b.errors
    out.answers = a.answers + b.answers
    out.end_s = b.end_s
    out.boots = a.boots + b.boots
    for name in list(a.commands) + [n for n in b.commands if n not in a.commands]:
        x = a.commands.get(name, (0, 0, 0, 0))
        y = b.commands.get(name, (0, 0, 0, 0))
        out.commands[name] = (x[0] + y[0], max(x[1], y[1]), max(x[2], y[2]), x[3] + y[3])
    return out


def _power_of_two(x):
    n = 1
    while n * 2 <= x * 1.5:
        n *= 2
    return n


def _hms(s):
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def summary_line(heap, hours, soak):
    """The one line a script reads (the last `make heap` prints)."""
    worst, name = soak.worst()
    free = soak.largest_free()
    free_text = "unknown" if free is None else str(free)
    if not soak.finished and not soak.errors:  # never a silent 0: it died otherwise
        return f"heap {heap_name(heap)}: died (exit status {soak.status}) before its end"
    reached = soak.end_s if soak.finished else max((x[0] for x in soak.samples), default=0)
    if reached < hours * 3600:
        hours = reached // 3600  # stopped early (import, boot, died): the hours it ran
    return (
        f"heap {heap_name(heap)}: {len(soak.errors)} MemoryError over {hours} h, "
        f"largest free block {free_text} bytes, worst command {worst} bytes ({name})"
    )


def report(soak, heap, hours, credit, every_h=6):
    """The figures, as lines (the summary line not among them)."""
    out = []
    a = soak.alloc
    if "firmware" in a and "start" in a:
        out.append(f"  modules imported: {a['firmware'] - a['start']} bytes (gc.mem_alloc)")
    if "booted" in a and "harness" in a:
        out.append(f"  booted, full library: {a['booted'] - a['harness']} bytes more")
    out.append(
        f"  heap: -X heapsize={heap + credit} = {heap_name(heap)} for the firmware + "
        f"{credit} bytes the harness holds (its bytecode and objects, measured)"
    )
    out.append(f"  GC block: {soak.block or 'unknown'} bytes")
    if soak.samples:
        out.append("  over time (after gc.collect(), every 10 simulated min; worst per span):")
        span = every_h * 3600
        groups = {}
        for at, free, _used, largest in soak.samples:
            groups.setdefault(at // span, []).append((free, largest))
        for k in sorted(groups):
            frees = [f for f, _ in groups[k]]
            largest = [b for _, b in groups[k]]
            out.append(
                f"    {k * every_h:3d}-{(k + 1) * every_h:3d} h: mem_free min {min(frees)}, "
                f"largest free block min {min(largest)} max {max(largest)} bytes"
            )
    if soak.commands:
        out.append("  per command (count; bytes net, every one; blocks, sampled hourly; refused):")
        for name, (count, used, blocks, refused) in soak.commands.items():
            if count:
                shown = "-" if blocks <= 0 else str(blocks)
                out.append(f"    {name:10s} {count:7d}  {used:6d}  {shown:>6s}  {refused}")
    out.append(f"  boots: {soak.boots}; answers not *_R: {len(soak.answers)}")
    for e in soak.errors[:20]:
        out.append("  MemoryError " + e.line())
    if len(soak.errors) > 20:
        out.append(f"  ... and {len(soak.errors) - 20} more MemoryErrors")
    if not soak.finished:
        out.append("  the run ended before its END line (see its output above)")
    return out


@dataclass
class Portable:
    module: str
    passed: int = 0
    failed: int = 0
    memory_errors: list = field(default_factory=list)  # the tests (or "import")
    finished: bool = False
    status: int = 0


def parse_portable(module, status, text):
    """One module's run of tests/mp/runner.py on the unix port (stdout and stderr)."""
    res = Portable(module, status=status)
    current = "import"
    for line in text.splitlines():
        if line.startswith("FAILED "):
            current = line.split()[1]
        elif line.startswith("MemoryError"):
            res.memory_errors.append(current)
            current = "import"
        m = re.match(r"micropython: (\d+) passed, (\d+) failed", line)
        if m:
            res.passed, res.failed = int(m.group(1)), int(m.group(2))
            res.finished = True
    return res


def portable_line(res):
    mem = len(res.memory_errors)
    if not res.finished:
        where = ", ".join(res.memory_errors) or f"exit status {res.status}"
        return f"  {res.module}: did not finish ({where})"
    tail = f", MemoryError in {', '.join(res.memory_errors)}" if mem else ""
    return f"  {res.module}: {res.passed} passed, {res.failed} failed{tail}"
