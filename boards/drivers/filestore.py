# The store port over a filesystem directory: the board's flash filesystem (littlefs on
# a Pico) or, in the emulator, the --state-dir on the host. persist.py writes its record
# atomically with write + rename (a temporary file renamed over the old one);
# firmware/journal.py appends to its log segments, reads them back record by record with
# readinto (never a whole segment into RAM) and removes the older one when it rotates.
#
# Durable: write() and append() return once the bytes are on the medium. CPython
# (the emulator's state directory) flushes and os.fsync()s the file, and fsyncs the
# directory after a rename or a remove, so a power cut (SIGKILL, a host crash) keeps
# what was acknowledged. MicroPython has no os.fsync: on littlefs closing the file
# commits it (copy-on-write, the metadata pair updated last), which the `with` does.
import errno
import os

from micropython import const

# The paths kept (_path()): the firmware names a dozen files, the same ever after, but
# for a record set aside (state.bad.<gen>), once in a long while.
_PATHS = const(16)


class FileStore:
    def __init__(self, root):
        self._root = root
        self._paths = {}  # name -> its path
        try:
            os.stat(root)
        except OSError:  # ENOENT: the very first boot of this board
            os.mkdir(root)
        # The errno a missing file raises here: errno.ENOENT on a Pico and CPython, but
        # the WebAssembly port's filesystem raises 44 (Emscripten's) while its errno
        # module says 2. Asked of the filesystem itself, once, on a name never written.
        self._missing = errno.ENOENT
        try:
            os.stat(self._path(".missing"))
        except OSError as exc:
            self._missing = exc.args[0] if exc.args else errno.ENOENT

    def _path(self, name):
        # Made once per name and kept: every call makes it, and a save alone is half a
        # dozen calls (the record's chunks, its rename, the counter's), each path two
        # strings made: 1.7 to 2.9 KB of a command on the unix port, its directory's
        # name a temporary one. Past _PATHS names (records set aside) it starts afresh.
        paths = self._paths
        path = paths.get(name)
        if path is None:
            if len(paths) >= _PATHS:
                paths.clear()
            path = paths[name] = self._root + "/" + name
        return path

    def read(self, name):
        """The file's bytes, or None when it does not exist. Any other failure (EIO)
        raises: a record that cannot be read is not a first boot (firmware/persist.py)."""
        try:
            with open(self._path(name), "rb") as f:
                return f.read()
        except OSError as exc:
            # A missing file (see __init__: the port's own errno for it) is no record.
            if exc.args and exc.args[0] in (errno.ENOENT, self._missing):
                return None
            raise

    def readinto(self, name, offset, buf):
        """Bytes of the file from offset into buf: their count (0 past the end), or
        None when the file does not exist (or cannot be read: the journal scans its
        segments as the shell is built, outside the loop's safety net, so a failure to
        read one must not fail the boot; a log it cannot read is lost, not the pump)."""
        try:
            with open(self._path(name), "rb") as f:
                f.seek(offset)
                return f.readinto(buf) or 0
        except OSError:  # ENOENT or EIO alike, see above
            return None

    def size(self, name):
        """The file's size in bytes, or None when it does not exist (or, as readinto(),
        cannot be read: the journal's scan at boot)."""
        try:
            return os.stat(self._path(name))[6]
        except OSError:  # ENOENT or EIO alike, see readinto()
            return None

    def write(self, name, data):
        with open(self._path(name), "wb") as f:
            f.write(data)
            _sync(f)

    def append(self, name, data):
        with open(self._path(name), "ab") as f:
            f.write(data)
            _sync(f)

    def rename(self, src, dst):
        # littlefs and POSIX both replace dst in one step: a reader sees old or new.
        os.rename(self._path(src), self._path(dst))
        self._sync_dir()

    def remove(self, name):
        """Delete the file; one that does not exist is already what was asked (any
        other failure raises)."""
        if self.size(name) is None:
            return
        os.remove(self._path(name))
        self._sync_dir()

    def _sync_dir(self):
        # POSIX makes a rename or an unlink durable only once its directory is synced.
        fsync = getattr(os, "fsync", None)  # looked up per call: None on MicroPython
        if fsync is not None:
            fd = os.open(self._root, 0)  # O_RDONLY, which MicroPython's os does not name
            try:
                fsync(fd)
            finally:
                os.close(fd)


def _sync(f):
    f.flush()
    fsync = getattr(os, "fsync", None)  # None on MicroPython (littlefs: close commits)
    if fsync is not None:
        fsync(f.fileno())
