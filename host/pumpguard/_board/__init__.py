"""The board's sources inside the host package: ``pumpguard._board.<name>``.

A board's filesystem holds the top-level packages ``firmware``, ``protocol`` and
``boards`` (and MicroPython has ``micropython`` built in); their modules import one
another by those absolute names (``from protocol import catalog``). Installed as such on
CPython they would be generic top-level names in site-packages, clashing with anyone's
``protocol``. So the host package carries them as its subpackages ``firmware``,
``protocol``, ``boards`` and ``micropython`` here (in the checkout: links to the
checkout's ``firmware/``, ``protocol/``, ``boards/`` and ``host/micropython.py``; in a
wheel: copies), and the finder below loads every module under this package with its own
builtins, whose ``__import__`` reads those four absolute names as this package's. The
board's code runs unchanged, on the board and inside pumpguard, and host code imports it
as ``from pumpguard._board.protocol import catalog``.

The checkout's tests import the same sources by their board names (``import protocol``,
from the checkout's root): a second copy of each module, its own classes and globals.
Nothing crosses between the two views: host code takes and gives this package's
objects only.

``cache_dir()`` is where pumpguard writes at run time (bundles): never into the package.
"""

import builtins
import os
import sys
from importlib.machinery import PathFinder, SourceFileLoader

# The board's absolute names, and what they are here.
NAMES = frozenset(("boards", "firmware", "micropython", "protocol"))
_PREFIX = __name__ + "."
_HERE = os.path.dirname(os.path.abspath(__file__))


def _board_import(name, globals=None, locals=None, fromlist=(), level=0):
    """``__import__`` of the board's modules: ``protocol.x`` is ``pumpguard._board.protocol.x``."""
    top = name.partition(".")[0]
    if level or top not in NAMES:
        return builtins.__import__(name, globals, locals, fromlist, level)
    module = builtins.__import__(_PREFIX + name, globals, locals, fromlist, 0)
    # `import protocol.catalog` binds `protocol`: the leaf's top package here, not `pumpguard`
    return module if fromlist else sys.modules[_PREFIX + top]


_BUILTINS = {**vars(builtins), "__import__": _board_import}


class _BoardLoader(SourceFileLoader):
    """A source module of the board's, run with the builtins above."""

    def exec_module(self, module):
        vars(module)["__builtins__"] = _BUILTINS  # exec() takes them from the module's globals
        super().exec_module(module)


class _BoardFinder:
    """The finder of every ``pumpguard._board.`` module: the path's own, with the loader above."""

    @staticmethod
    def find_spec(fullname, path=None, target=None):
        if not fullname.startswith(_PREFIX):
            return None
        spec = PathFinder.find_spec(fullname, path, target)
        if spec is not None and type(spec.loader) is SourceFileLoader:
            spec.loader = _BoardLoader(spec.loader.name, spec.loader.path)
        return spec


sys.meta_path.insert(0, _BoardFinder())


def checkout():
    """The root of the checkout these sources are links into, or None when installed."""
    protocol = os.path.join(_HERE, "protocol")
    return os.path.dirname(os.path.realpath(protocol)) if os.path.islink(protocol) else None


def cache_dir():
    """Where pumpguard writes what it makes at run time (bundles): ``build/`` of the
    checkout, else ``$XDG_CACHE_HOME/pumpguard`` (``~/.cache/pumpguard``); never inside
    the installed package. Not created here: the writer makes what it needs."""
    root = checkout()
    if root is not None:
        return os.path.join(root, "build")
    cache = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(cache):  # the XDG spec: a relative path is to be ignored
        cache = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "pumpguard")
