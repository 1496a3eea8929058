# The store port over a filesystem directory: the board's flash filesystem (littlefs on
# a Pico) or, in the emulator, the --state-dir on the host. Three primitives, enough for
# persist.py to write atomically (write a temporary file, then rename it over the old).
import os


class FileStore:
    def __init__(self, root):
        self._root = root
        try:
            os.stat(root)
        except OSError:  # ENOENT: the very first boot of this board
            os.mkdir(root)

    def _path(self, name):
        return self._root + "/" + name

    def read(self, name):
        """The file's bytes, or None when it does not exist."""
        try:
            with open(self._path(name), "rb") as f:
                return f.read()
        except OSError:
            return None

    def write(self, name, data):
        with open(self._path(name), "wb") as f:
            f.write(data)

    def rename(self, src, dst):
        # littlefs and POSIX both replace dst in one step: a reader sees old or new.
        os.rename(self._path(src), self._path(dst))
