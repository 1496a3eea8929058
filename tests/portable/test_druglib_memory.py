# The drug library's load on a bounded heap (issue 14), and what the loader reads the
# same on both interpreters. The memory checks run on the MicroPython unix port only
# (its heap is bounded, -X heapsize=, as a board's; WebAssembly's grows, CPython's is
# no board's): they fill the heap but for one free stretch and load the library in it.
import json
import sys

from firmware import druglib
from tests.portable.corekit import library_text

_BOUNDED = sys.implementation.name == "micropython" and sys.platform != "webassembly"
# One contiguous stretch of free heap the parse of the shipped library (16 KB) runs in,
# its text held and its loader imported (64-bit unix port). Measured: 22.4 KB, one drug
# parsed at a time; the whole document parsed at once needed 41.4 KB.
PARSE_MAX = 26000
# What a loaded library holds (its Library and Drugs): measured 4.8 KB
HELD_MAX = 6000


def _in_free(n, run):
    """run() with n bytes of the heap free, in one stretch (everything else filled):
    True when it ran, False on a MemoryError."""
    import gc

    gc.collect()
    stretch = bytearray(n - 64)  # kept free for run(): the fill goes around it
    fill = None
    for size in (4096, 1024, 256, 64, 16, 1):
        try:
            while True:
                fill = (fill, bytearray(size))
        except MemoryError:
            pass
    try:
        while True:
            fill = (fill,)
    except MemoryError:
        pass
    del stretch
    gc.collect()
    try:
        run()
        ok = True
    except MemoryError:
        ok = False
    fill = None
    gc.collect()
    return ok


def _loader():
    # imported beforehand, as a second LIB_COMMIT finds it (a boot imports it in the
    # stretch too: that is the loader's own size, mods.py's figure, not the parse's)
    try:
        from firmware import canonical, jsonparts, libload  # noqa: F401
    except ImportError:  # the loader before it was split out of druglib
        return None
    return libload


def test_the_library_parses_in_a_bounded_stretch_of_heap():
    if not _BOUNDED:
        return
    text = library_text().encode()
    libs = []
    loader = _loader()
    load = loader.load if loader is not None else druglib.load
    assert _in_free(PARSE_MAX, lambda: libs.append(load(text)))
    assert libs[0].ok, libs[0].problems


def test_a_loaded_library_holds_little():
    if not _BOUNDED:
        return
    import gc

    text = library_text().encode()
    loader = _loader()
    load = loader.load if loader is not None else druglib.load
    load(text)  # interned once: its qstrs stay, whatever holds the library
    gc.collect()
    before = gc.mem_alloc()
    lib = load(text)
    gc.collect()
    held = gc.mem_alloc() - before
    assert lib.ok and held <= HELD_MAX, held


def test_a_member_without_a_comma_before_it_is_refused_on_both_interpreters():
    # MicroPython's json takes a missing comma, CPython's refuses it: a board ran a
    # sealed library the host's check (pumpguard library check) refused
    doc = json.loads(library_text())
    text = json.dumps(doc)
    for key in ('"drugs"', '"vasopressin"'):
        at = text.index(", " + key)
        lib = druglib.load(text[:at] + " " + text[at + 1 :])
        assert not lib.ok
        assert lib.problems[0].startswith("library: not valid JSON ("), lib.problems


def test_a_value_that_is_no_json_is_named_by_where_it_begins():
    text = library_text()
    at = text.index('"hard_max"', text.index('"dobutamine"'))
    line = text[: text.index('"dobutamine"')].count("\n") + 1  # the drug's value, parsed alone
    lib = druglib.load(text[:at] + '"hard_max": {"value": "1" "source": "x"},' + text[at:])
    assert not lib.ok  # MicroPython's json takes that member: hard_max is given twice
    if sys.implementation.name != "micropython":
        assert lib.problems[0].startswith("library: not valid JSON ("), lib.problems
        assert "in the value from line %d" % (line,) in lib.problems[0], lib.problems


def test_the_loader_is_not_held_after_a_load():
    # boot and push only: its code is collected after (druglib imports it for the call)
    names = ("libload", "jsonparts", "canonical")
    held = [n for n in names if "firmware." + n in sys.modules]
    druglib.load(library_text())
    assert [n for n in names if "firmware." + n in sys.modules] == held
    for name in names:
        if name not in held:
            assert name not in dir(sys.modules["firmware"]), name
