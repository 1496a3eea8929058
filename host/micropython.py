"""CPython's stand-in for MicroPython's built-in ``micropython`` module.

The firmware, protocol and board modules run on the device and, unchanged, in the
emulator and the tests on CPython. They write ``from micropython import const`` as any
MicroPython code does; on a board that is the built-in module (which ``const()``
turns into compile-time constants), on CPython it is this one, installed into the
virtual environment with the host tool. Only what those modules use is here.

So on CPython, with pumpguard installed, `import micropython` succeeds: code that must
tell the two apart asks ``sys.implementation.name`` instead.
"""


def const(expr, /):
    """The value itself: on CPython a constant is just a module global."""
    return expr
