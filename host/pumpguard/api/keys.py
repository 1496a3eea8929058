"""The host's keys: key files, the key store, new keys.

A key file is JSON, mode 0600, never printed or logged::

    {"board_id": "<16 hex digits>", "keys": {"monitor": "<64 hex>",
     "clinician": "<64 hex>", "service": "<64 hex>"}}

with any subset of the roles (``pumpguard key export`` writes one with fewer). The key
store is a directory, ``$PUMPGUARD_KEYS`` or ``$XDG_CONFIG_HOME/pumpguard/keys``
(``~/.config/pumpguard/keys`` by default), one ``<board_id>.json`` per board: where
``pumpguard flash`` puts the keys it provisions, and where ``connect()`` looks when it
is given no key. A key file readable or writable by anyone but its owner is refused,
as ssh refuses such a private key: the key may already be someone else's.

``for_board()`` picks the key file for the board a HELLO_R names; ``check_insecure()``
decides whether a HELLO_R saying auth 0 (the emulator's insecure mode) is believed;
``rotate()`` is ``Pump.rotate_key``, ``pending()`` and ``kept()`` its ``<file>.new``.
"""

import contextlib
import json
import os
import secrets
import stat
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pumpguard._board.protocol import auth, catalog

from ..errors import (
    AuthError,
    BadValue,
    DeviceError,
    Forbidden,
    KeyFileError,
    LinkError,
    PumpguardError,
    RefusedError,
    UsageError,
)
from . import args

if TYPE_CHECKING:  # client.py imports this module: the name only, for the hints
    from .client import Pump

# monitor, clinician, service
ROLES: tuple[str, ...] = tuple(sorted(catalog.ROLES, key=lambda r: catalog.ROLES[r]))
# connect() with no role: the first of these the key file holds (the CLI drives delivery).
DEFAULT_ROLES = ("clinician", "monitor", "service")
BOARD_ID_HEX = 16
_HEX = set("0123456789abcdef")
NO_KEYS_BOARD = "0" * BOARD_ID_HEX  # HELLO_R's board id of a board without a keys file
EMULATOR_BOARD = "emulator"  # HELLO_R's board name of the emulator (boards/emulator)
_MODE = 0o600


def _is_hex(text, n):
    return isinstance(text, str) and len(text) == n and set(text) <= _HEX


class KeyFile:
    """A board's id and the keys of some of its roles (32 bytes each); ``path`` is the
    file it was read from or last saved to (None: not on disk yet)."""

    def __init__(self, board_id: str, keys: Mapping[str, bytes], path: str | None = None) -> None:
        self.board_id = board_id
        self.keys: dict[str, bytes] = dict(keys)
        self.path = path

    def __repr__(self) -> str:  # never the keys: a repr ends up in tracebacks and logs
        return f"KeyFile(board {self.board_id}, roles {', '.join(self.roles)}, {self.path})"

    @property
    def roles(self) -> tuple[str, ...]:
        """The roles this file holds a key of, in ROLES' order."""
        return tuple(r for r in ROLES if r in self.keys)

    @classmethod
    def generate(cls, board_id: str | None = None) -> "KeyFile":
        """New random keys for every role (secrets: the OS's CSPRNG), and a new board id
        unless given."""
        if board_id is None:
            board_id = secrets.token_bytes(BOARD_ID_HEX // 2).hex()
        return cls(board_id, {role: secrets.token_bytes(auth.KEY) for role in ROLES})

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "KeyFile":
        """Read and check a key file; KeyFileError naming the file and what is wrong."""
        path = args.path(path, "key file")  # never an int: open() reads a descriptor
        try:
            with open(path, "rb") as f:
                mode = os.fstat(f.fileno()).st_mode
                if os.name == "posix" and mode & 0o077:
                    raise KeyFileError(
                        f"key file {path}: permissions {stat.filemode(mode)} let others "
                        f"read or change it; refused (run `chmod 600 {path}`, and rotate "
                        "the keys if someone else may have read it)"
                    )
                text = f.read()
        except OSError as exc:
            raise KeyFileError(f"key file {path}: cannot read it ({exc.strerror})") from None
        try:
            data = json.loads(text)
        except (UnicodeDecodeError, ValueError) as exc:
            raise KeyFileError(f"key file {path}: not JSON ({exc})") from None
        return cls.from_json(data, path)

    @classmethod
    def from_json(cls, data: object, path: str = "<key file>") -> "KeyFile":
        """A key file's JSON (``to_json()``'s shape) checked; KeyFileError naming ``path``
        and what is wrong."""
        where = f"key file {path}"
        if not isinstance(data, dict) or set(data) != {"board_id", "keys"}:
            raise KeyFileError(
                f'{where}: expected an object with exactly "board_id" and "keys", '
                f"found {_shape(data)}"
            )
        board_id, keys = data["board_id"], data["keys"]
        if not _is_hex(board_id, BOARD_ID_HEX):
            raise KeyFileError(
                f"{where}: board_id must be {BOARD_ID_HEX} lowercase hex digits, not {board_id!r}"
            )
        if not isinstance(keys, dict) or not keys:
            raise KeyFileError(f'{where}: "keys" must name at least one of {", ".join(ROLES)}')
        out = {}
        for role, value in keys.items():
            if role not in ROLES:
                raise KeyFileError(f"{where}: unknown role {role!r} (roles: {', '.join(ROLES)})")
            if not _is_hex(value, 2 * auth.KEY):  # the value itself is never quoted
                raise KeyFileError(
                    f"{where}: the {role} key must be {2 * auth.KEY} lowercase hex digits "
                    f"({auth.KEY} bytes)"
                )
            out[role] = bytes.fromhex(value)
        _check_keys(out, where)
        return cls(board_id, out, path)

    def to_json(self) -> dict[str, Any]:
        """The key file's JSON: its board id and its roles' keys in hex."""
        return {
            "board_id": self.board_id,
            "keys": {role: self.keys[role].hex() for role in self.roles},
        }

    def board_json(self) -> dict[str, str]:
        """The board's own "keys" file (firmware/): every role's key, flat."""
        missing = [r for r in ROLES if r not in self.keys]
        if missing:
            raise KeyFileError(
                f"key file {self.path}: a board needs every role's key; it lacks "
                + ", ".join(missing)
            )
        _check_keys(self.keys, f"key file {self.path}")
        return {"board_id": self.board_id, **{r: self.keys[r].hex() for r in ROLES}}

    def key(self, role: str) -> bytes:
        """The role's 32 bytes; KeyFileError when this file does not hold it."""
        if role not in self.keys:
            raise KeyFileError(
                f"key file {self.path} holds no {role} key (it holds: {', '.join(self.roles)})"
            )
        return self.keys[role]

    def default_role(self) -> str:
        """The role connect() speaks as without one given (DEFAULT_ROLES' first held)."""
        return next(r for r in DEFAULT_ROLES if r in self.keys)

    def only(self, roles: Iterable[str]) -> "KeyFile":
        """A copy holding only ``roles`` (``pumpguard key export``), not saved yet."""
        return KeyFile(self.board_id, {r: self.key(r) for r in roles})

    def replaced(self, role: str, key: bytes) -> "KeyFile":
        """A copy with ``role``'s key replaced, at the same path, not saved yet."""
        return KeyFile(self.board_id, {**self.keys, role: key}, self.path)

    def save(self, path: str | os.PathLike[str] | None = None) -> str:
        """Write the file atomically (a temporary file in its directory, 0600 from its
        creation, fsynced, renamed over): a crash leaves the old file or the new one,
        never half of one, and the key is never readable by others, even briefly.
        Returns the path written. ``path`` becomes this KeyFile's only when it had none:
        a copy saved elsewhere (``rotate_key``'s ``.new``) leaves it the file it is."""
        path = path or self.path
        if not path:
            raise KeyFileError("a key file needs a path to be saved to")
        path = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(path))
        tmp = os.path.join(folder, f".{os.path.basename(path)}.{secrets.token_hex(4)}.tmp")
        data = json.dumps(self.to_json(), indent=2).encode() + b"\n"
        try:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _MODE)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.remove(tmp)
            raise KeyFileError(f"key file {path}: cannot write it ({exc.strerror})") from None
        if self.path is None:
            self.path = path
        return path


def _check_keys(keys, where):
    # The board's rules (firmware/keys.py): it refuses a keys file with a key of zeros
    # (the insecure mode's key, which a keyed board never takes in disguise) or two
    # roles sharing a key (the lesser role could claim the other), and boots without
    # keys; the host refuses the same, so `pumpguard flash --keys` never writes one.
    seen = {}
    for role in ROLES:
        key = keys.get(role)
        if key is None:
            continue
        if key == bytes(auth.KEY):
            raise KeyFileError(f"{where}: the {role} key is all zeros (a board refuses it)")
        if key in seen:
            raise KeyFileError(
                f"{where}: the {seen[key]} and {role} keys are the same (a board refuses "
                "two roles sharing a key)"
            )
        seen[key] = role


def _shape(data):
    if isinstance(data, dict):
        return "keys " + (", ".join(repr(k) for k in sorted(data)) or "none")
    return f"a JSON {type(data).__name__}"


def store_dir() -> str:
    """The host key store: $PUMPGUARD_KEYS, else $XDG_CONFIG_HOME/pumpguard/keys."""
    if os.environ.get("PUMPGUARD_KEYS"):
        return os.environ["PUMPGUARD_KEYS"]
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(config, "pumpguard", "keys")


def store_path(board_id: str) -> str:
    if not _is_hex(board_id, BOARD_ID_HEX):  # never a path out of the store
        raise KeyFileError(f"board id {board_id!r} is not {BOARD_ID_HEX} lowercase hex digits")
    return os.path.join(store_dir(), f"{board_id}.json")


def lookup(board_id: str) -> KeyFile | None:
    """The store's key file for ``board_id``, or None when the store has none."""
    path = store_path(board_id)
    if not os.path.exists(path):
        return None
    found = KeyFile.load(path)
    if found.board_id != board_id:
        raise KeyFileError(f"key file {path} is for board {found.board_id}, not {board_id}")
    return found


def given(key: "str | os.PathLike[str] | KeyFile | None") -> KeyFile | None:
    """The key file a caller named: a KeyFile, a path, or None -> $PUMPGUARD_KEY (None
    when that is unset too: the store is asked once the board has named itself)."""
    if isinstance(key, KeyFile):
        return key
    if key is None:
        key = os.environ.get("PUMPGUARD_KEY") or None
        if key is None:
            return None
    return KeyFile.load(key)


def for_board(reply: Mapping[str, Any], given: KeyFile | None) -> KeyFile:
    """The key file for the board whose HELLO_R is `reply`: `given` (the caller's, or
    $PUMPGUARD_KEY's), else the store's; AuthError for a board that says it has no
    keys or a key file of another board, KeyFileError when none is at hand."""
    board_id = reply["board_id"]
    if board_id == NO_KEYS_BOARD:
        if reply["board"] == EMULATOR_BOARD:  # no board to reflash
            todo = (
                "an emulator's keys are made on its state dir's first start (a "
                "factory-reset keeps its keys file as it is): start `pumpguard "
                "emulate` on a new state dir"
            )
        else:
            todo = "reflash it with `pumpguard flash`"
        raise AuthError(
            "the device says it has no keys provisioned (its keys file is missing or "
            f"invalid, so it refuses every key): {todo}"
        )
    keyfile = given or lookup(board_id)
    if keyfile is None:
        raise KeyFileError(
            f"no key for board {board_id}: give --key FILE (or PUMPGUARD_KEY=FILE) "
            "on the command line, connect(port, key=PATH) from Python (an emulator's "
            "key file is its Emulator.key, the `key:` line of `pumpguard emulate`), or "
            f"put its key file in the key store as {store_path(board_id)}"
        )
    if keyfile.board_id != board_id:
        raise AuthError(
            f"key file {keyfile.path} is for board {keyfile.board_id}, but the device "
            f"is board {board_id}: refusing to send it any key"
        )
    return keyfile


def check_insecure(reply: Mapping[str, Any], given: KeyFile | None, insecure: bool) -> None:
    """HELLO_R `reply` says auth 0, which anyone answering first can say: believed only
    when asked for (`insecure`), from a device that says it is the emulator, for a
    board id no key file of this host names (`given`, or the store's): a board with
    keys does not lose them. AuthError otherwise."""
    board_id, board = reply["board_id"], reply["board"]
    claim = "the device says it runs without keys (the emulator's --insecure development mode)"
    if not insecure:
        raise AuthError(f"{claim}; pass --insecure to talk to it (connect(..., insecure=True))")
    if board != EMULATOR_BOARD:
        raise AuthError(
            f"{claim}, but it says it is board {board!r}: only the emulator has that "
            "mode, so this is not the board it says it is; refusing to talk to it"
        )
    known = given if given is not None and given.board_id == board_id else lookup(board_id)
    if known is not None:
        raise AuthError(
            f"{claim}, but board {board_id} has keys (key file {known.path}): a board "
            "with keys does not lose them, so something else answers in its name; "
            "refusing to talk to it"
        )


def pending(keyfile: KeyFile) -> str:
    """Where a rotation of `keyfile`'s keys keeps the new key file, ``<path>.new``,
    once no earlier rotation's is there: one whose end was unknown left it, and it may
    hold the only copy of a key the board has; a new rotation must not overwrite it, so
    a UsageError names it and what to do (nothing was sent)."""
    path = keyfile.path
    new = f"{path}.new"
    if not os.path.exists(new):
        return new
    what, role = "a new key", ""
    with contextlib.suppress(KeyFileError):  # which role's: said when it can be read
        changed = [r for r, k in KeyFile.load(new).keys.items() if keyfile.keys.get(r) != k]
        if len(changed) == 1:
            what, role = f"a new {changed[0]} key", f" --role {changed[0]}"
    raise UsageError(
        f"{new} exists: an earlier rotation whose end was unknown kept {what} there, which "
        f"the board may hold already. Try it first (`pumpguard --key {new}{role} status`): "
        f"if the board takes it, move it over the key file (`mv {new} {path}`); if it "
        f"refuses it, delete {new} (the key in {path} still works). Then rotate again; "
        "nothing was sent"
    )


def kept(exc: BaseException | None, role: str, new: str, path: str) -> str:
    """What a rotation whose end is unknown says: where the new key is kept."""
    head = "the rotation was interrupted" if exc is None else str(exc)
    return (
        f"{head}. The board may hold the new {role} key already: it is in {new}, kept "
        f"(try it with --key {new}; if the board refuses it, the old key in {path} "
        "still works)"
    )


def rotate(pump: "Pump", role: str) -> str:
    """``Pump.rotate_key(role)``: replace ``role``'s key on the board with a new random
    one (the pump's session must be a service one) and in the key file the session
    used; returns its path.

    The new key file is written to ``<path>.new`` first, and removed only once the
    board's tagged answer says how it ended: KEY_R with the new key's check (then
    the key file has the new key), or a tagged ERROR or REFUSED (the board kept the
    old key). Anything else (a lost answer, an untagged error anyone could have
    sent, Ctrl-C, a reset) may leave the board with the new key already: ``.new``
    is kept, and the error says so; no rotation starts while one is kept (a
    UsageError says how to settle it). Sessions open keep working; new ones need the
    new key. A session whose key file has no path (a ``KeyFile`` built in memory)
    is refused before anything is sent: the new key would be in no file."""
    with pump._lock:
        keyfile = pump._link.session_keyfile
        if keyfile is None:
            raise UsageError("the device runs without keys (--insecure): none to rotate")
        if pump.role != "service":
            raise UsageError(
                f"rotating a key needs the service key (connect with role='service', "
                f"or --role service); this session is {pump.role}: nothing was sent"
            )
        if not keyfile.path:
            raise UsageError(
                "rotating a key needs a key file on disk to write the new key to: "
                "this session's KeyFile has no path (save() it, then connect(port, "
                "key=PATH)); nothing was sent"
            )
        new = pending(keyfile)  # never over an earlier rotation's kept key
        new_key = secrets.token_bytes(auth.KEY)
        rotated = keyfile.replaced(role, new_key)
        path = keyfile.path
        kept_path = rotated.save(new)
        try:
            r = pump._call("KEY", {"role": catalog.ROLES[role]}, wrap=("key", new_key))
        except (RefusedError, DeviceError, Forbidden, BadValue):
            # A tagged answer of the board's (or nothing sent): it kept the old key.
            os.remove(kept_path)
            raise
        except (LinkError, AuthError) as exc:
            # No answer, an untagged one (anyone's), or a reset (its re-HELLO too):
            # whatever the error says of this attempt, KEY may have run on the board.
            raise type(exc)(kept(exc, role, kept_path, path), exc.may_have_run) from None
        except BaseException:  # Ctrl-C while the answer was awaited, and the like
            print(kept(None, role, kept_path, path), file=sys.stderr)
            raise
        if r["role"] != catalog.ROLES[role] or not auth.equal(r["check"], auth.key_check(new_key)):
            raise PumpguardError(
                f"the board answered the rotation of the {role} key with the check of "
                f"another key: the key it holds is unknown here; the new one is kept in "
                f"{kept_path}, the old in {path}"
            )
        rotated.save(path)
        os.remove(kept_path)
        if pump._link.keyfile is keyfile:
            pump._link.keyfile = rotated
        pump._link.session_keyfile = rotated
        return path
