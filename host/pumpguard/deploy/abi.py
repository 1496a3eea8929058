"""The board's MicroPython against the one a bundle is compiled for: what ``pumpguard
flash`` asks the board at step 2, before the safe boot, so a board that could not import
the bundle, or runs a release it was never tested on, is refused with nothing written.

A bundle records what its mpy-cross emits (manifest ``micropython``: the release, e.g.
"1.29.0"; ``mpy``: the .mpy version, e.g. 6). The board says ``sys.implementation``'s
name, version and ``_mpy`` (MicroPython's "MicroPython .mpy files")::

    bits 0-7    the .mpy version it loads: a module of another is "incompatible .mpy file"
    bits 8-9    the sub-version (checked by the loader only for native code)
    bits 10-13  the arch of its native emitter, an index into ARCHS

Refused: another implementation, another .mpy version, another release (major.minor: a
patch release is bug fixes), a native arch other than the bundle's ``-march``, or a
machine other than the board definition's.
"""

import ast
import re

ARCHS = (
    None,
    "x86",
    "x64",
    "armv6",
    "armv6m",
    "armv7m",
    "armv7em",
    "armv7emsp",
    "armv7emdp",
    "xtensa",
    "xtensawin",
    "rv32imc",
    "rv64imc",
)

# Runs on the board (mpremote exec), printing one tuple: implementation name, version,
# _mpy, machine. _machine is MicroPython's since 1.21 (and the only one the WebAssembly
# port has); os.uname() before.
QUERY = (
    "import sys\n"
    "i = sys.implementation\n"
    "m = getattr(i, '_machine', None)\n"
    "if m is None:\n"
    "    import os\n"
    "    m = os.uname().machine\n"
    "print(repr((i.name, tuple(i.version[:3]), getattr(i, '_mpy', 0), m)))\n"
)

_MPY_CROSS = re.compile(r"MicroPython v(\d+\.\d+\.\d+).*mpy v(\d+)\.\d+")


def compiled_for(mpy_cross_version):
    """The manifest's record of mpy-cross's ``--version`` line ("MicroPython v1.29.0 on
    ...; mpy-cross emitting mpy v6.3"): {"micropython": "1.29.0", "mpy": 6}."""
    found = _MPY_CROSS.search(mpy_cross_version)
    if found is None:
        raise ValueError(f"mpy-cross --version says {mpy_cross_version!r}: no release in it")
    return {"micropython": found.group(1), "mpy": int(found.group(2))}


def parse(printed):
    """What QUERY printed, as (name, (major, minor, micro), _mpy, machine); ValueError
    when it is not that (not a MicroPython board, or another program on the port)."""
    lines = printed.strip().splitlines()
    try:
        said = ast.literal_eval(lines[-1]) if lines else None
    except (ValueError, SyntaxError):
        said = None
    if not (
        isinstance(said, tuple)
        and len(said) == 4
        and isinstance(said[0], str)
        and isinstance(said[1], tuple)
        and len(said[1]) == 3
        and all(isinstance(n, int) for n in said[1])
        and isinstance(said[2], int)
        and isinstance(said[3], str)
    ):
        raise ValueError(f"it printed {printed.strip()[-80:]!r}")
    return said


def release(version):
    return "v" + ".".join(str(n) for n in version)


def describe(said):
    name, version, mpy, machine = said
    if name != "micropython":
        return f"{name} {release(version)} on {machine!r}"
    return f"MicroPython {release(version)} (.mpy v{mpy & 0xFF}) on {machine!r}"


def problems(said, manifest, board):
    """Why the board that said ``said`` (parse's tuple) must not get the bundle of
    ``manifest`` for ``board`` (a board module), as two lists, both empty when it may:
    what makes it another board (machine, native arch), and what makes its MicroPython
    another than the bundle's (implementation, .mpy version, release)."""
    name, version, mpy, machine = said
    board_wrong, micropython_wrong = [], []
    if board.MACHINE and board.MACHINE not in machine:
        board_wrong.append(f"it is no {board.MACHINE} (board {board.NAME})")
    if name != "micropython":
        return board_wrong, ["it does not run MicroPython"]
    index = mpy >> 10 & 0xF
    arch = ARCHS[index] if index < len(ARCHS) else f"arch {index}"
    if manifest.get("arch") and arch != manifest["arch"]:
        board_wrong.append(
            f"its MicroPython is built for {arch or 'no native code'}, the bundle for "
            f"{manifest['arch']}"
        )
    if mpy & 0xFF != manifest["mpy"]:
        micropython_wrong.append(
            f"it loads .mpy v{mpy & 0xFF}, the bundle's modules are .mpy v{manifest['mpy']} "
            "(every import would fail: incompatible .mpy file)"
        )
    wanted = tuple(int(n) for n in manifest["micropython"].split("."))
    if version[:2] != wanted[:2]:
        micropython_wrong.append(
            f"the bundle is compiled for and tested on MicroPython "
            f"{release(wanted[:2])}, not {release(version)}"
        )
    return board_wrong, micropython_wrong
