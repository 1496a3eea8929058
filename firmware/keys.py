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
#
# Reading the file at boot is firmware/startup.py's (load_keys()): the boot's code,
# dropped after it. What stays is what a running pump calls: key(), rotate().
import json
from binascii import hexlify

from micropython import const

from protocol import auth, catalog

FILE = "keys"
_NEW = const("keys.new")
_NO_BOARD = const("0000000000000000")
INSECURE_KEY = bytes(auth.KEY)  # every role's key in insecure mode


class Keys:
    """board_id (16 hex digits), insecure, problem (why the board has no keys, or None)
    and key(role) -> the role's 32-byte key, or None when the board has none."""

    def __init__(self, store, board_id=_NO_BOARD, keys=None, insecure=False, problem=None):
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
        check_keys(keys)
        doc = {"board_id": self.board_id}
        for name in catalog.ROLES:
            doc[name] = hexlify(keys[catalog.ROLES[name]]).decode()
        self._store.write(_NEW, json.dumps(doc).encode())
        self._store.rename(_NEW, FILE)
        self._keys = keys


def check_keys(keys):
    """ValueError unless keys (role number -> key) are keys a board may hold (at boot,
    firmware/startup.py; and a rotation's)."""
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
