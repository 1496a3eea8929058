# Proves the two-interpreter harness itself: this module runs under pytest on CPython
# and under tests/mp/runner.py on MicroPython.
import sys


def test_interpreter_is_known():
    assert sys.implementation.name in ("cpython", "micropython")


def test_the_entropy_port_allocates_a_nonce_s_bytes_only():
    # before: its xorshift32 state was a heap int on a 32-bit MicroPython at each step,
    # 4.5 KB a nonce on WebAssembly that the memory harnesses charged to HELLO
    if sys.implementation.name != "micropython":
        return
    import gc

    from tests.portable.shellkit import Entropy

    entropy = Entropy(7)
    entropy.random(16)
    gc.collect()
    before = gc.mem_alloc()
    nonce = entropy.random(16)
    used = gc.mem_alloc() - before
    assert len(nonce) == 16 and used <= 128, used
