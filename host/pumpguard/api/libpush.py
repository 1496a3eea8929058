"""``Pump.push_library(path)``: a drug library file checked on the host with the
firmware's own loader, then pushed over the link and switched to on the device
(LIB_BEGIN, LIB_DATA in chunks, LIB_COMMIT; protocol/SPEC.md §6, firmware/libpush.py)."""

import binascii
from typing import TYPE_CHECKING

from pumpguard._board.firmware import druglib, libpush
from pumpguard._board.protocol import catalog

from ..errors import PumpguardError, UsageError
from .answers import LibraryId

if TYPE_CHECKING:  # client.py imports this module: the name only, for the hints
    from .client import Pump


def checked(path: str) -> tuple[bytes, druglib.Library]:
    """The bytes of the library file at path and its ``Library``, once it loads valid
    and sealed as the board will load it; else a ``UsageError`` listing every problem,
    one per line (nothing was sent)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise UsageError(f"cannot read drug library {path}: {exc.strerror or exc}") from None
    library = druglib.load(data)
    if not library.ok:
        n = len(library.problems)
        raise UsageError(
            f"drug library {path} is invalid ({n} problem{'s' if n > 1 else ''}):\n"
            + "\n".join(library.problems)
        )
    if len(data) > libpush.MAX_SIZE:
        raise UsageError(
            f"drug library {path} is {len(data)} bytes: a board takes at most "
            f"{libpush.MAX_SIZE} (shorten its texts)"
        )
    return data, library


def push(pump: "Pump", path: str) -> LibraryId:
    """Push the library at path to the device behind pump; its identity once active."""
    data, library = checked(path)
    pump._call("LIB_BEGIN", {"size": len(data), "crc": binascii.crc32(data)})
    chunk = catalog.LIB_CHUNK
    for offset in range(0, len(data), chunk):
        piece = data[offset : offset + chunk]
        fields = {"offset": offset, "n": len(piece), "data": piece.ljust(chunk, b"\0")}
        if pump._call("LIB_DATA", fields)["next"] != offset + len(piece):
            raise PumpguardError(
                f"the device holds another part of the library than was sent (after offset "
                f"{offset}): nothing was switched; push it again"
            )
    r = pump._call("LIB_COMMIT", {})
    pushed = LibraryId(r["library"], r["library_version"], r["library_crc"])
    if (pushed.name, pushed.version, pushed.crc) != (library.name, library.version, library.crc):
        raise PumpguardError(
            f"the device switched to {pushed.name} {pushed.version} (crc {pushed.crc:08x}), "
            f"not the file's {library.name} {library.version} (crc {library.crc:08x})"
        )
    # What HELLO_R said of the library is what info() reports: the device's now.
    pump.device = dict(
        pump.device, library=pushed.name, library_version=pushed.version, library_crc=pushed.crc
    )
    return pushed
