# The board's keys: one secret per role, in the store's "keys" file (JSON), written by
# `pumpguard flash` (or the emulator on the first start of its state dir):
#
#     {"board_id": "<16 hex>", "monitor": "<64 hex>", "clinician": "<64 hex>",
#      "service": "<64 hex>"}
#
# or {"board_id": "<16 hex>", "insecure": true}: the emulator's --insecure development
# mode, honoured only on a board whose INSECURE_OK is true (every role's key is then 32
# zero bytes, HELLO_R says auth 0 and a standing LOW insecure_link alarm says so).
#
# A file that is missing, unreadable or invalid in any part leaves the board without
# keys (board_id all zeros): every AUTH is refused and firmware/main.py raises the HIGH
# keys_missing alarm; the pump still restores and runs its channels (a bad keys file
# must not stop an infusion). Nothing here ever puts a key into a message: a problem
# names the field, never its value.
#
# KEY replaces one role's key: the whole file is written to "keys.new", then renamed
# over "keys" (one step on littlefs and POSIX), so a power cut leaves the old file or
# the new one, never half of one; the key in RAM changes only once the rename returned.
import json
from binascii import hexlify, unhexlify

from protocol import auth, catalog

FILE = "keys"
_NEW = "keys.new"
NO_BOARD = "0000000000000000"
_HEX = "0123456789abcdef"
INSECURE_KEY = bytes(auth.KEY)  # every role's key in insecure mode


class Keys:
    """board_id (16 hex digits), insecure, problem (why the board has no keys, or None)
    and key(role) -> the role's 32-byte key, or None when the board has none."""

    def __init__(self, store, board_id=NO_BOARD, keys=None, insecure=False, problem=None):
        self._store = store
        self.board_id = board_id
        self.insecure = insecure
        self.problem = problem
        self._keys = keys  # role number -> key (bytes); None: no keys

    def key(self, role):
        if self.insecure:
            return INSECURE_KEY
        if self._keys is None:
            return None
        return self._keys.get(role)

    def rotate(self, role, new):
        """Replace role's key with new (32 bytes) in the store, atomically; ValueError
        (nothing written) for a key the next boot would refuse, OSError (the old key
        stays) when the store fails."""
        if self._keys is None:
            raise ValueError("the board has no keys to replace")
        keys = dict(self._keys)
        keys[role] = new
        _check_keys(keys)
        doc = {"board_id": self.board_id}
        for name in catalog.ROLES:
            doc[name] = hexlify(keys[catalog.ROLES[name]]).decode()
        self._store.write(_NEW, json.dumps(doc).encode())
        self._store.rename(_NEW, FILE)
        self._keys = keys


def load(store, insecure_ok):
    """The board's Keys from the store; one without keys (and its problem) for a file
    that is missing, unreadable or invalid, or insecure on a board not INSECURE_OK."""
    try:
        data = store.read(FILE)
    except OSError as exc:  # the store's own failure: no keys this boot, alarmed
        return Keys(store, problem="the keys file cannot be read (%s)" % (exc,))
    if data is None:
        return Keys(store, problem="no keys file")
    try:
        return _parse(store, json.loads(data.decode()), insecure_ok)
    except ValueError as exc:  # JSON, text or a field: the message names the field only
        return Keys(store, problem="the keys file is invalid (%s)" % (exc,))


def _parse(store, doc, insecure_ok):
    if type(doc) is not dict:
        raise ValueError("not an object")
    board_id = _hex_text(doc, "board_id", 16)
    if "insecure" in doc:
        if doc["insecure"] is not True:
            raise ValueError("insecure is not true")
        if not insecure_ok:
            raise ValueError("insecure mode is refused on this board")
        return Keys(store, board_id, insecure=True)
    keys = {}
    for name in catalog.ROLES:
        keys[catalog.ROLES[name]] = unhexlify(_hex_text(doc, name, 2 * auth.KEY))
    _check_keys(keys)
    return Keys(store, board_id, keys)


def _check_keys(keys):
    # A key of zeros is the insecure mode's, which a keyed board must never accept in
    # disguise; two roles sharing a key would let the lesser one claim the other.
    seen = []
    for name in catalog.ROLES:
        key = keys[catalog.ROLES[name]]
        if key == INSECURE_KEY:
            raise ValueError("the %s key is all zeros" % (name,))
        if key in seen:
            raise ValueError("the %s key is another role's" % (name,))
        seen.append(key)


def _hex_text(doc, name, n):
    # The field's text when it is n lowercase hex digits; the error names the field only.
    text = doc.get(name)
    if type(text) is not str or len(text) != n or not all(c in _HEX for c in text):
        raise ValueError("%s is not %d lowercase hex digits" % (name, n))
    return text
