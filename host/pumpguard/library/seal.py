"""``seal(path)``: write the content's CRC into the library file's "crc32", in place.

The pharmacist's text is kept byte for byte but for that one value: the new text is
the old one with the value of the top-level "crc32" member replaced (every such member,
should the file repeat it), or, when there is none, a member inserted after "version"
written as "version" is (its indentation, its separator). The file is replaced
atomically (a temporary file beside it, then a rename): a crash leaves the old file or
the new one, never half of either.

A symbolic link is followed: the file it names is sealed (beside it, in its folder) and
the link stays a link. A file with other hard links is refused: the rename would give
the sealed text to this name only, leaving the other names the unsealed one, silently.
A read-only file is refused too: its mode says nobody means to rewrite it.
"""

import json
import os
import stat
import tempfile
from dataclasses import dataclass

from ..errors import UsageError
from .document import FilePath, LibraryProblems, count, read

_WS = " \t\n\r"  # JSON's whitespace
_DECODER = json.JSONDecoder()


@dataclass(frozen=True)
class Sealed:
    """``old`` the "crc32" the file said (None: none, or not a text), ``new`` the one it
    says now ("0x%08x"); ``changed``: the file was rewritten (False: already sealed)."""

    file: str
    old: str | None
    new: str
    changed: bool


def seal(path: FilePath) -> Sealed:
    """Seal the library file at path; LibraryProblems (nothing written) when anything
    but its CRC is wrong, UsageError when it is not a JSON object."""
    doc = read(path)
    if doc.content_problems:
        raise LibraryProblems(
            f"{path}: not sealed, {count(len(doc.content_problems), 'problem')} to fix first:",
            doc.content_problems,
        )
    old = doc.doc.get("crc32")
    old = old if isinstance(old, str) else None
    new = f"0x{doc.library.crc:08x}"
    if doc.identity.sealed:
        return Sealed(str(path), old, new, False)
    _replace(path, _sealed_text(doc.text, json.dumps(new)))
    return Sealed(str(path), old, new, True)


def _members(text):
    """(key, key start, key end, value start, value end) of each top-level member of
    the JSON object that text is (read() has parsed it: it is one)."""
    at = _skip(text, 0) + 1  # past "{"
    while True:
        at = _skip(text, at)
        if text[at] == "}":
            return
        key, key_end = _DECODER.raw_decode(text, at)
        start = _skip(text, _skip(text, key_end) + 1)  # past ":"
        _, end = _DECODER.raw_decode(text, start)
        yield key, at, key_end, start, end
        at = _skip(text, end)
        at += text[at] == ","


def _skip(text, at):
    while text[at] in _WS:
        at += 1
    return at


def _sealed_text(text, crc):
    members = list(_members(text))
    stored = [(start, end) for key, _, _, start, end in members if key == "crc32"]
    if not stored:
        # load() found a valid "version", so there is one to write the new member after
        _, key_at, key_end, start, end = next(m for m in members if m[0] == "version")
        indent_at = key_at
        while text[indent_at - 1] in _WS:
            indent_at -= 1
        indent, separator = text[indent_at:key_at], text[key_end:start]
        return text[:end] + "," + indent + '"crc32"' + separator + crc + text[end:]
    for start, end in reversed(stored):
        text = text[:start] + crc + text[end:]
    return text


def _replace(path, text):
    target = os.path.realpath(path)
    info = os.stat(target)
    mode = stat.S_IMODE(info.st_mode)
    # the mode, not os.access(): root may write anything, yet 0444 still says "keep"
    if not mode & stat.S_IWUSR:
        raise UsageError(
            f"{path}: read-only (mode {mode:04o}): not sealed; make it writable "
            "(chmod u+w) to seal it"
        )
    if info.st_nlink > 1:
        raise UsageError(
            f"{path}: has {info.st_nlink} hard links: sealing replaces the file, which would "
            "leave the other names unsealed; seal one name, then link the others to it again"
        )
    folder = os.path.dirname(target)
    fd, temp = tempfile.mkstemp(dir=folder, prefix=".seal-", suffix=".json")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temp, mode)
        os.replace(temp, target)
    except BaseException:
        os.unlink(temp)
        raise
