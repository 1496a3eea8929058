# Minimal test runner for the real MicroPython interpreter (no pytest there).
#
# Imports every module named on the command line (dotted, e.g.
# tests.portable.test_units), calls each of its top-level test_* functions,
# prints each failure with its traceback and closes with the line
# "N passed, N failed" that the CPython run's pytest line stands beside.
# The same modules are collected by pytest on CPython: one set of rule tests,
# two interpreters.
#
#   --long (first): make fuzz's budgets of the sampled fuzz loops (tests/budgets.py), as
#   HYPOTHESIS_PROFILE=long gives them under pytest; set before any module is imported,
#   as the modules draw their figures at import.
import sys

from tests import budgets


def _run(names):
    passed = 0
    failed = 0
    for name in names:
        mod = __import__(name, None, None, ("_",))
        for attr in sorted(dir(mod)):
            if not attr.startswith("test_"):
                continue
            fn = getattr(mod, attr)
            if not callable(fn):
                continue
            try:
                fn()
            except Exception as exc:  # a failing test must not stop the others
                failed += 1
                print("FAILED", name + "." + attr)
                sys.print_exception(exc)
            else:
                passed += 1
    return passed, failed


_names = sys.argv[1:]
if _names[:1] == ["--long"]:
    budgets.LONG = True
    _names = _names[1:]
passed, failed = _run(_names)
print("micropython: %d passed, %d failed" % (passed, failed))
EXIT_CODE = 1 if failed or not passed else 0
