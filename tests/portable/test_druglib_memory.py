# The drug library's load on a bounded heap (issue 14), and what the loader reads the
# same on both interpreters. The memory checks run on the MicroPython unix port only
# (its heap is bounded, -X heapsize=, as a board's; WebAssembly's grows, CPython's is
# no board's): they fill the heap but for one free stretch and load the library in it.
import json
import sys

from firmware import druglib
from tests.portable.corekit import library_text
from tests.portable.memkit import allocating

_BOUNDED = sys.implementation.name == "micropython" and sys.platform != "webassembly"
# One contiguous stretch of free heap the parse of the shipped library (16 KB) runs in,
# its text held and its loader imported (64-bit unix port). Measured: 22.4 KB, one drug
# parsed at a time; the whole document parsed at once needed 41.4 KB.
PARSE_MAX = 26000
# What a loaded library holds (its Library and Drugs): measured 4.8 KB
HELD_MAX = 6000


# What the loader's scan of a text nested past the bound may allocate in all: the key
# sets of 16 open objects (measured: 3.7 KB at its peak on CPython, 480 B on WebAssembly;
# with a set per bracket, as before review, 7.4 MB on CPython)
NESTED_MAX = 8192


def test_a_text_nested_past_the_bound_is_refused_in_little_memory():
    # a push's largest text of "{" (MAX_SIZE): refused for its depth, as before the scan
    # was one pass, which then kept a key set per bracket (found in review: 161 KB for
    # 4000 of them, and a MemoryError at 190k where the problem is listed)
    from firmware import jsonparts

    text = b"{" * 32768
    assert druglib.load(text).problems == ["library: nested 32768 deep: a library nests at most 16"]
    used, got = allocating(lambda: jsonparts.census(text))
    assert got[0] == 32768
    assert used < NESTED_MAX, used


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


# Every byte a load of the shipped library allocates, garbage included (a commit's and a
# boot's, beside what it keeps: HELD_MAX): measured 185.5 KB (64-bit unix port), 108.7 KB
# (WebAssembly); 276.5 and 154.6 KB before a plain key was read as its bytes (no quoted
# copy parsed), a text's strings counted by loops and the canonical form's ints written
# as bytes at once, with no enumerate(). An upper bound: a collection inside the load
# (the unix port's, on a full heap) only lowers it.
LOAD_MAX = 224000 if sys.maxsize > 2**32 else 128000


def test_a_load_allocates_little_beyond_what_it_parses():
    if sys.implementation.name != "micropython":
        return
    import gc

    text = library_text().encode()
    loader = _loader()
    loader.load(text)  # its code and names loaded once
    gc.collect()
    before = gc.mem_alloc()
    lib = loader.load(text)
    used = gc.mem_alloc() - before
    assert lib.ok and used <= LOAD_MAX, used


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


# -- the boot's load (druglib.active): the bundle's file read through a window ------------

# One stretch of free heap druglib.active() loads the shipped library from its file in,
# its loader's two halves imported one after the other, each drug's bytes read into the
# boot's buffer (64-bit unix port): never its text whole (16 KB) beside the loader.
# Measured, in 2-4 KB steps, on a 400k heap: 32 KB (34 KB on a 190k one, this module's
# first test); the text read whole and loaded (druglib.load(), as main at f6eec9f booted)
# 48 KB.
ACTIVE_MAX = 34000
_FILE = "pumpguard-test-library.json"


class _NoPush:
    # a store that holds no pushed library: druglib.active() loads the bundle's
    def read(self, name):
        return None


def test_a_boot_loads_the_active_library_in_a_stretch_smaller_than_its_text_and_loader():
    if not _BOUNDED:
        return
    druglib.active(_NoPush())  # its names interned once, as at any boot before
    libs = []
    room = bytearray(6144)  # main.start()'s stretch kept for the ring, outside this one
    assert _in_free(ACTIVE_MAX, lambda: libs.append(druglib.active(_NoPush(), room)))
    assert libs[0].ok, libs[0].problems


def _through_file(text):
    import os

    with open(_FILE, "wb") as f:
        f.write(text.encode())
    try:
        return druglib._load_file(_FILE)
    finally:
        os.remove(_FILE)


def _same(a, b):
    assert a.problems == b.problems, (a.problems, b.problems)
    assert (a.name, a.version, a.crc) == (b.name, b.version, b.crc)
    assert sorted(a.drugs) == sorted(b.drugs)
    for name in a.drugs:
        assert a.drugs[name].__dict__ == b.drugs[name].__dict__, name


def test_a_library_read_through_its_file_is_the_one_its_bytes_give():
    # the boot's load (a window over the file, each drug's bytes read again) finds what
    # the load of the whole text (a push, `pumpguard library check`) finds, problems too.
    # On CPython and WebAssembly: a few copies of the 16 KB text at once are more than
    # the bounded port's heap (make heap: 190k) leaves the tests; it runs the check above.
    if _BOUNDED:
        return
    text = library_text()
    at = text.index('"hard_max"', text.index('"dobutamine"'))
    variants = (
        lambda: text,
        lambda: text.replace('"0.04"', '"0.05"', 1),  # another figure: a bad CRC
        lambda: text[:at] + '"hard_max": {"value": "1", "source": "x"},' + text[at:],  # twice
        lambda: text[: len(text) // 2],  # cut short: no JSON
        lambda: "\ufeff" + text,  # a byte order mark
        lambda: text.replace('"units/min"', '"units/min\\ud835"', 1),  # half a surrogate
        lambda: json.dumps(json.loads(text)).replace(', "vasopressin"', ' "vasopressin"', 1),
        lambda: text.replace('"drugs"', '"drugz"', 1),  # no drugs, an unknown field
        lambda: "[1, 2]",  # not an object
    )
    for make in variants:  # one text at a time (a bounded heap holds few)
        variant = make()
        _same(_through_file(variant), druglib.load(variant))
