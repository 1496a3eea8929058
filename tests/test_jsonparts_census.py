"""jsonparts.census(), the library loader's one scan, tells what the scans it replaced
told (tests/portable/censusref.py), for any text of JSON's structural bytes: nested,
unbalanced, strings left open, escapes and keys cut by a Source's window edge. The
shipped library and its mutations are checked on MicroPython too
(tests/portable/test_druglib_fuzz.py)."""

import io

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware import jsonparts
from tests.portable import censusref

# JSON's structure, a key's letters, a byte past ASCII: what the scans branch on
_BYTES = st.sampled_from(
    [b"{", b"}", b"[", b"]", b'"', b"\\", b",", b":", b"\n", b" ", b"k", b"1", b"\xc3\xa9"]
)
_TEXTS = st.lists(_BYTES, max_size=400).map(b"".join)


@settings(max_examples=400)
@given(_TEXTS)
def test_census_tells_what_each_scan_told(data):
    assert censusref.differences(data, jsonparts.Source(io.BytesIO(data))) == []


@settings(max_examples=100)
@given(st.integers(0, 300), _TEXTS)
def test_census_of_an_object_past_a_window_edge_splits_it_as_the_scan_did(pad, data):
    # an object whose members lie past the first window: Parts reads them through ends
    text = b'{"a": "' + b"x" * pad + b'", "drugs": {"k": ' + data + b"}}"
    assert censusref.differences(text, jsonparts.Source(io.BytesIO(text))) == []
