# Proves the two-interpreter harness itself: this module runs under pytest on CPython
# and under tests/mp/runner.py on MicroPython.
import sys


def test_interpreter_is_known():
    assert sys.implementation.name in ("cpython", "micropython")
