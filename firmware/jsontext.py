# How deep a JSON text nests, from its bytes: the state record (persist.py) and a drug
# library (libload.py) are refused past their depth before a parser recurses into them
# (MicroPython's stack ends far sooner than CPython's). A scan of the bytes, never a
# copy of them. What else a text says that json.loads() does not tell is jsonparts.py's
# (the library's loader only: dropped after it).
from micropython import const

_QUOTE = const(0x22)
_BACKSLASH = const(0x5C)
_OPEN_OBJECT = const(0x7B)
_CLOSE_OBJECT = const(0x7D)
_OPEN_ARRAY = const(0x5B)
_CLOSE_ARRAY = const(0x5D)


def _string_end(data, i):
    """The index of the quote closing the string whose opening quote is at i."""
    n = len(data)
    i += 1
    while i < n and data[i] != _QUOTE:
        i += 2 if data[i] == _BACKSLASH else 1
    return i


def depth(data):
    """How deep the JSON bytes data nests its arrays and objects (strings skipped)."""
    state = [0, 0, 0]
    scan(data, state)
    return state[1]


def scan(data, state):
    """depth()'s scan of data, a part of a longer text (the state record, read back a
    window at a time: firmware/recordload.py): state is [level, deepest, in a string:
    0 no, 1 yes, 2 just past its backslash], [0, 0, 0] at the text's start, carried
    from one part to the next; deepest is the text's depth once every part is scanned."""
    level, deepest, within = state
    for b in data:
        if within:
            if within == 2:
                within = 1
            elif b == _BACKSLASH:
                within = 2
            elif b == _QUOTE:
                within = 0
        elif b == _QUOTE:
            within = 1
        elif b in (_OPEN_ARRAY, _OPEN_OBJECT):
            level += 1
            if level > deepest:
                deepest = level
        elif b in (_CLOSE_ARRAY, _CLOSE_OBJECT):
            level -= 1
    state[0] = level
    state[1] = deepest
    state[2] = within
