# Members given twice in one JSON object. json.loads keeps the last of the two, so a
# drug library whose text shows a figure twice would be reviewed by its first and run by
# its second: druglib.load() lists each as a problem. A scan of the bytes, never a copy
# of them (a Pico's heap holds the library once), the same on both interpreters (the
# json modules of CPython and MicroPython offer no hook to see duplicates).
from micropython import const

_QUOTE = const(0x22)
_BACKSLASH = const(0x5C)
_NEWLINE = const(0x0A)
_COMMA = const(0x2C)
_OPEN_OBJECT = const(0x7B)
_CLOSE_OBJECT = const(0x7D)
_OPEN_ARRAY = const(0x5B)
_CLOSE_ARRAY = const(0x5D)


def duplicates(data):
    """[(line, key)] of each member of the JSON bytes data whose object already had its
    key. json keeps the last of the two, so the text a pharmacist reviewed would not be
    what runs. A scan of the bytes, never a copy of them (a Pico's heap)."""
    found = []
    stack = []  # type: list[set | None]  # per open container: an object's keys so far, None for an array
    expect_key = False  # the next string is a member's key
    line = 1
    i = 0
    n = len(data)
    while i < n:
        b = data[i]
        if b == _QUOTE:
            start = i + 1
            i += 1
            while i < n and data[i] != _QUOTE:
                i += 2 if data[i] == _BACKSLASH else 1
            keys = stack[-1] if expect_key else None  # expect_key: inside an object
            if keys is not None:
                key = bytes(data[start:i])
                if key in keys:
                    found.append((line, str(key, "utf-8")))
                keys.add(key)
                expect_key = False
        elif b == _OPEN_OBJECT:
            stack.append(set())
            expect_key = True
        elif b == _OPEN_ARRAY:
            stack.append(None)
        elif b in (_CLOSE_OBJECT, _CLOSE_ARRAY):
            if stack:
                stack.pop()
            expect_key = False
        elif b == _COMMA:
            expect_key = bool(stack) and stack[-1] is not None
        elif b == _NEWLINE:
            line += 1
        i += 1
    return found
