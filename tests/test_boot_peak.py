"""The heap a boot needs (issue 14): a board boots into an empty heap, so what the boot
holds at its peak (the library's text and parse, the boot's own code, the buffers the
running pump keeps) and how it cuts the heap up decide the smallest heap that boots.
Measured with the bounded-heap runner (tests/heap/run.py: the whole firmware, the
harness's own bytes credited), on the 64-bit MicroPython unix port: the smallest heap
that imports and boots was 314k at int 9ea4a36 (283k with the state record's buffer made
first, 258k with the boot's code dropped after the boot too); at int f251b33 287k, 260k
with this branch merged; at int e4e84c0 260k, 247k with the state record written in
chunks through 512 B instead of its 9 KB buffer (`sh /work/wt/tools/bootpeak.sh`
bisects it; it counts a run that dies after the boot, in the harness's first command,
as no boot: not monotonic, 256k fails). The firmware's own import and boot (no
MemoryError there, what this test checks): int e4e84c0 from 240k (236k once, 237-239k
not), the record in chunks from 226k. At heap190 71d70cd (the library loaded before
the boot's module, by a loader whose two passes' code is held one at a time) from 195k;
with a stretch kept for the core's log ring (fdade8f) both boots, the first and the
restoring one, in every size of 196-206k in 2 KB steps (204k's restoring boot failed
before it, on the ring's 5,120 B); 190-192k still failed in the loader's first pass. At
heap190 8851faa (the bundle's library read through a window, never whole; the core made
before the boot's module, its ring's stretch kept through the library's load; the shell
made once the boot's code is dropped) both boots in every size of 188-200k in 2 KB steps,
and 72 h clean at 190k; at heap190 d94af01 (jsonparts.Source's slices read by one method)
in 190-198k, 188k's restoring boot not (fragmentation: 752 B found no stretch). At heapfree
(the requests' modules, gate.py and handlers.py, imported as the shell is made, a stretch
kept for them through the boot; the shell's 46 attributes; no module binding const) both
boots in every size of 182-198k in 2 KB steps, 180k's restoring boot not (752 B again)."""

import subprocess
import sys

from firmware import persist
from tests.heap import run, tree
from tests.portable.shellkit import Store
from tests.test_heap import needs_port

# Where it boots, the first boot and the restoring one (the 1 h run's power cut): main at
# f6eec9f booted in none of them (the smallest heap it booted in was ~224k). Three sizes,
# not one: the smallest heap that boots is not monotonic (fragmentation: at heap190
# 71d70cd 196k and 204k booted first but not from the record, whose log ring found no
# 5 KB stretch), so one size would say more about where the blocks fell than about the
# boot. 190k is issue 14's goal.
BOOTS_IN = ("190k", "192k", "196k")


def _boot_failures(heap):
    out = subprocess.run(
        [sys.executable, "-m", "tests.heap.run", "--heap", heap, "--hours", "1"]
        + ["--no-portable", "--verbose"],
        cwd=tree.ROOT,
        capture_output=True,
        text=True,
        timeout=run.TIMEOUT_S,
    ).stdout
    lines = out.splitlines()
    failed = [line for line in lines if line.split()[:3] in (["MEMERR", "boot", "boot"],)]
    failed += [line for line in lines if line.startswith("MEMERR import")]
    boots = [line.split()[1] for line in lines if line.strip().startswith("boots: ")]
    assert boots, out[-2000:]
    return failed, boots[0].rstrip(";"), out


@needs_port
def test_the_firmware_imports_boots_and_restores_in_heaps_of_190k_192k_196k():
    for heap in BOOTS_IN:
        failed, boots, out = _boot_failures(heap)
        assert not failed, out[-3000:]
        assert boots == "2", out[-3000:]  # the boot from the state record too


def test_a_record_has_its_small_buffer_from_the_start():
    # made with the Record (firmware/startup.py build() makes it first), not at the first
    # save; 512 B whatever the board's channels (the record goes through it in chunks)
    record = persist.Record(Store())
    assert record._text is not None and len(record._text.buf) <= 512
