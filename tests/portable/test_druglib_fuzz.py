# The drug library's loader fuzzed on both interpreters: a library now reaches a board
# over the link (LIB_COMMIT, firmware/libpush.py), and MicroPython's json, ints and
# recursion differ from CPython's. Mutations of the shipped file (bytes flipped, cut,
# repeated, structural characters and members put in): druglib.load never raises, and
# whatever it accepts as valid is one a board can identify (a crc that is an int).
import json

from firmware import druglib, jsonparts
from tests.budgets import budget
from tests.portable import censusref
from tests.portable.corekit import library_text
from tests.portable.dispatchfuzz import Rng

# Each case a whole 16 KB library parsed (30-40 ms on MicroPython): make test's 42 give
# each mutation kind 7 first mutations (_mutated), each of _VALUES 3 first edits.
CASES = budget(42, 1500)
_STRUCTURE = (b"{", b"}", b"[", b"]", b",", b":", b'"', b"\\", b"0", b"-1e400", b"null")
_KINDS = 6  # the kinds of mutation _mutate makes (its k)


def _mutate(rng, data, k):
    at = rng.below(len(data))
    if k == 0:  # a byte flipped
        return data[:at] + bytes((data[at] ^ (1 << rng.below(8)),)) + data[at + 1 :]
    if k == 1:  # a stretch cut out
        return data[:at] + data[at + 1 + rng.below(64) :]
    if k == 2:  # a stretch repeated (a member given twice, most often)
        end = min(len(data), at + 1 + rng.below(200))
        return data[:end] + data[at:end] + data[end:]
    if k == 3:  # a structural character or odd token put in
        return data[:at] + rng.pick(_STRUCTURE) + data[at:]
    if k == 4:  # random bytes in (UTF-8 broken, NULs)
        return data[:at] + rng.bytes(1 + rng.below(8)) + data[at:]
    return data[:at]  # a file cut short


def _mutated(rng, data, i):
    """data with 1 to 3 mutations, the first of kind i % _KINDS (so that any _KINDS cases
    in a row reach every kind, a short budget too), the others of kinds drawn."""
    data = _mutate(rng, data, i % _KINDS)
    for _ in range(rng.below(3)):
        data = _mutate(rng, data, rng.below(_KINDS))
    return data


def test_no_mutation_of_the_library_makes_the_loader_raise():
    shipped = library_text().encode()
    rng = Rng(13)
    valid = 0
    for i in range(CASES):
        data = _mutated(rng, shipped, i)
        lib = druglib.load(data)  # raises nothing, whatever the bytes
        assert type(lib.crc) is int
        assert lib.ok == (not lib.problems)
        if lib.ok:  # a layout change only: the same content, the same crc
            valid += 1
            assert json.loads(data) == json.loads(shipped)
    assert valid < CASES  # the mutations do reach past the layout


# Each a 16 KB text scanned six times, two of them through a file (180 ms on
# MicroPython): make test's 6 one of each mutation kind first (_mutated).
CENSUS_CASES = budget(_KINDS, 150)
_FILE = "pumpguard-test-census.json"


def test_one_scan_tells_what_a_scan_each_told_of_any_mutation():
    # census() (one pass, through a file's window too, a key or an escape cut by its
    # edge) against the scans it replaced (tests/portable/censusref.py), and Parts split
    # with its ends as with none, on the shipped library and its mutations.
    import os

    shipped = library_text().encode()
    rng = Rng(29)
    texts = [shipped]
    for at in (254, 255, 256):  # an escaped quote, brackets in a string, at a window's edge
        head = b'{"about": "'
        texts.append(head + b"x" * (at - len(head)) + b'\\"{[\\\\", ' + shipped[1:])
    for i in range(CENSUS_CASES):
        texts.append(_mutated(rng, shipped, i))
    for data in texts:
        with open(_FILE, "wb") as f:
            f.write(data)
        try:
            with open(_FILE, "rb") as f:
                assert censusref.differences(data, jsonparts.Source(f)) == []
        finally:
            os.remove(_FILE)


class _Shrunk:
    # A file that says it holds n bytes and reads none (cut short by a write meanwhile)
    def __init__(self, n):
        self.n = n
        self.reads = 0

    def seek(self, at, whence=0):
        self.at = self.n if whence == 2 else at

    def tell(self):
        return self.at

    def readinto(self, buf):
        self.reads += 1
        assert self.reads < 100, "read for ever"
        return 0


def test_a_file_that_ends_before_its_length_ends_the_scan():
    # found in review: census() read a window of none again and again
    assert jsonparts.census(jsonparts.Source(_Shrunk(4096)))[:3] == (0, 0, [])


_VALUES = (None, True, False, 0, -1, 1 << 31, 1 << 62, "", "0.04", "x" * 300, [], {}, [[]], {"": 1})


def _paths(value, path, out):
    # every place in the document a value can be put: (container, key)
    if isinstance(value, dict):
        for key in value:
            out.append((value, key))
            _paths(value[key], path + (key,), out)
    elif isinstance(value, list):
        for i in range(len(value)):
            out.append((value, i))
            _paths(value[i], path + (i,), out)
    return out


def test_any_value_put_anywhere_and_resealed_is_listed_never_raised():
    # past the CRC (the file resealed after the edit, as a tool would): the checks of
    # every figure, unit, name and advisory meet values of every JSON type.
    # The first edit of each case at a place taken evenly through the document, its
    # value the next of _VALUES, so that make test's few cases too put every type of
    # value in, and into every drug's entry (6 to 8 edits each); the other edits of a
    # case (0 to 2) are drawn.
    rng = Rng(29)
    for i in range(CASES):
        doc = json.loads(library_text())
        places = _paths(doc, (), [])
        container, key = places[i * len(places) // CASES]
        container[key] = _VALUES[i % len(_VALUES)]
        for _ in range(rng.below(3)):
            places = _paths(doc, (), [])
            container, key = rng.pick(places)
            container[key] = rng.pick(_VALUES)
        doc["crc32"] = "0x%08x" % druglib.crc_of(doc)
        lib = druglib.load(json.dumps(doc))
        assert type(lib.crc) is int
        assert lib.ok == (not lib.problems)
