"""``pumpguard flash``: build a board's bundle, deploy it with mpremote, check it runs.

Never while a pump runs: before the safe boot (step 2, which stops every motor at
once, with no taper and no alarm) every channel's state is read over the protocol link
and the flash is refused (``FlashRefused``, exit 3) unless each is idle or stopped, or
when the link does not answer; ``--force`` overrides that, with a warning.

Steps, each shown on the terminal as it starts; a failure names its step and says
what to do next::

    1 build    the bundle (bundle.py): mpy-cross for the board's arch, library (``--library
               FILE``, else the checkout's), manifest; or (``--from-bundle DIR``) one
               built earlier, copied only when every file is the one its manifest lists
    2 repl     the board's MicroPython asked for its release, .mpy version, arch and
               machine (abi.py): a board that does not match the bundle is refused with
               nothing written; then the safe boot: mpremote writes the "safeboot" file
               into the board's store and resets it, so the board comes back at its REPL
               with the pump loop and its watchdog off (firmware/main.py): the copy
               cannot be cut by a watchdog reset
    3 copy     mpremote ``fs cp -r``: files whose SHA-256 already matches are skipped
               (mpremote hashes them on the board); the board's keys into its store
               (``keys``); then every firmware, protocol or board file the manifest does
               not list is removed, so a stale module can never shadow the new one, and
               the safeboot file is cleared, and a library pushed over the link (the
               store's ``druglib.json``): the bundle's is the one active
    4 reset    mpremote ``reset``: the board boots the new firmware
    5 verify   over the protocol link: HELLO_R reports the firmware version, the whole
               bundle hash (SHA-256), the library CRC and the board name

Keys: new random keys for every role (``--keys FILE``: that key file's, every role in
it), written to the host key store (``api/keys.py``: ``<store>/<board_id>.json``, first as
``.json.new``, renamed once the copy is done) and into the board's store over mpremote;
the board id stays the board's when step 1's check could read it. A key file the board
would refuse (a key of zeros, two roles sharing one) is refused before anything is sent.
The link steps speak as service: the check before step 2 with the keys the board holds
now (``--key FILE``/``PUMPGUARD_KEY``, else the key store's file for the board; never
``--keys FILE``, the keys about to be written), step 5 with the keys just flashed. From
then on the board's previous keys, and every key file exported from them, are refused.

mpremote runs as a subprocess (``python -m mpremote``): its own raw-REPL and
filesystem commands, nothing hand-written here. ``--repl`` stops after step 2 (the safe
boot only: with no bundle, there is no MicroPython to match) and leaves the board at its
REPL (the documented way back to it); the next reset runs the pump loop again.

The REPL port is the board's USB port, never the protocol link: a port given (``auto``:
usb.py, by the board's USB id, never ``--link``), and for a board whose protocol is on a
UART, refused when it is the ``--link`` port (mpremote's raw REPL down the link hangs).
"""

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time

from pumpguard._board import boards

from ..api import keys as keystore
from ..api.client import connect
from ..errors import EXIT_REFUSED, PumpguardError, UsageError
from . import abi, bundle, usb

_STEPS = ("build", "repl", "copy", "reset", "verify")
_BOOT_WAIT_S = 15  # a board re-enumerating on USB, then booting, takes a few seconds
_RETRY_S = 0.5
_SAFE_STATES = ("idle", "stopped")  # a channel whose motor the safe boot may stop


class FlashError(PumpguardError):
    """A flash step failed; the message names the step and what to do."""

    def __init__(self, step, what, todo):
        n = _STEPS.index(step) + 1
        super().__init__(f"flash failed at step {n}/{len(_STEPS)} ({step}): {what}. {todo}")
        self.step = step


class FlashRefused(PumpguardError):
    """The board may be infusing: no safe boot without ``--force``; nothing was sent."""

    exit_code = EXIT_REFUSED


def _safe_boot_script(state_dir):
    # Runs on the board: the safeboot file, then a reset (the USB link drops with it).
    return (
        "import os, machine\n"
        f"try:\n    os.mkdir({state_dir!r})\nexcept OSError:\n    pass\n"
        f"open({state_dir!r} + '/safeboot', 'wb').close()\n"
        "machine.reset()\n"
    )


def _cleanup_script(files, state_dir):
    # Runs on the board after the copy: remove what the manifest does not list in the
    # bundle's packages, subpackages included (and a subpackage left empty), and the
    # safeboot file (it was consumed, or never read by an older firmware), so the reset
    # that follows runs the pump loop.
    return (
        "import os\n"
        f"keep = set({sorted(files)!r})\n"
        "def clean(d):\n"
        "    for entry in os.ilistdir('/' + d):\n"
        "        path = d + '/' + entry[0]\n"
        "        if entry[1] == 0x4000:\n"
        "            clean(path)\n"
        "            if not os.listdir('/' + path):\n"
        "                os.rmdir('/' + path)\n"
        "        elif path not in keep:\n"
        "            os.remove('/' + path)\n"
        "            print('removed stale', path)\n"
        f"for pkg in {list(bundle.PACKAGES)!r}:\n"
        "    clean(pkg)\n"
        # A library pushed over the link (the store's druglib.json, firmware/libpush.py)
        # would stand in for the bundle's: removed, the one flashed is the one active.
        f"for name in ('safeboot', 'safeboot.used', 'druglib.json', 'druglib.new'):\n"
        "    try:\n"
        f"        os.remove({state_dir!r} + '/' + name)\n"
        "    except OSError:\n"
        "        pass\n"
    )


class Mpremote:
    """``mpremote connect PORT ARGS...`` in a subprocess: called, its exit status (its
    output goes to the terminal); ``capture``, its status and what it printed."""

    def __call__(self, port, *args, cwd=None):
        return subprocess.run(self._argv(port, args), cwd=cwd, check=False).returncode

    def capture(self, port, *args):
        done = subprocess.run(self._argv(port, args), stdout=subprocess.PIPE, text=True)
        return done.returncode, done.stdout

    @staticmethod
    def _argv(port, args):
        return [sys.executable, "-m", "mpremote", "connect", port, *args]


mpremote = Mpremote()

_USB_TODO = (
    "Check the USB cable and --port (`pumpguard ports`), close any other program holding "
    "the port, or hold the board's safe-boot pin while resetting it."
)


class Flasher:
    """The steps above for one board; ``run`` (an ``Mpremote``) and ``connect`` can be
    replaced by tests, ``out`` is where progress goes."""

    def __init__(
        self,
        board_name,
        port,
        link=None,
        run=mpremote,
        connect=connect,
        out=None,
        force=False,
        keys=None,
        key=None,
        library=None,
        from_bundle=None,
    ):
        # The flash extra's tools, missing: said before anything is built or sent.
        if run is mpremote and importlib.util.find_spec("mpremote") is None:
            raise UsageError(
                f"pumpguard flash needs mpremote, which is not installed: {bundle.INSTALL_FLASH}"
            )
        bundle.mpy_cross()
        try:
            self.board = boards.get(board_name)
        except ValueError as exc:
            raise FlashError("build", str(exc), "Give --board with one of those.") from None
        if self.board.MACHINE is None:  # boards/__init__.py: None is an emulated board
            raise FlashError(
                "build",
                f"board {board_name!r} is not real hardware",
                "Use `pumpguard emulate` for it, or --bundle DIR to inspect its bundle.",
            )
        if link is None and self.board.LINK_UART is not None:
            raise UsageError(
                f"{board_name} speaks the protocol on UART{self.board.LINK_UART}, not on "
                f"its USB port {port}: give --link with the serial adapter wired to that "
                "UART (it is how the channels are checked before, and the firmware after)"
            )
        if port == "auto":
            port = usb.repl_port(self.board, link)
        elif link is not None and self.board.LINK_UART is not None and usb.same_port(port, link):
            raise UsageError(
                f"--port and --link are both {port}: --port is {board_name}'s USB (REPL) "
                f"port, --link the serial adapter on its UART{self.board.LINK_UART} "
                "(`pumpguard ports` lists them; --port auto finds the board's)"
            )
        self.port = port
        self.link = link or port
        self.force = force
        # --keys FILE: read now, so a bad one stops the flash before anything is sent.
        self.keys = None if keys is None else keystore.KeyFile.load(keys)
        if self.keys is not None:
            self.keys.board_json()  # a board needs every role's key
        # The key the board holds now, for the check before the safe boot (None:
        # $PUMPGUARD_KEY, else the key store's file for the board it names).
        self.key = key
        self.library = library  # a drug library file for the bundle (None: the checkout's)
        self.from_bundle = from_bundle  # a bundle built earlier, flashed as it is
        self.board_id = None  # the board's, once the check before the safe boot read it
        self._run = run
        self._connect = connect
        self._out = out or sys.stderr

    def _step(self, step, text):
        n = _STEPS.index(step) + 1
        print(f"[{n}/{len(_STEPS)}] {step}: {text}", file=self._out, flush=True)

    def _mpremote(self, step, *args, todo, cwd=None):
        if self._run(self.port, *args, cwd=cwd):
            raise FlashError(step, f"mpremote {' '.join(args[:2])} failed on {self.port}", todo)

    def build(self, out_dir):
        if self.from_bundle:
            self._step("build", f"bundle {self.from_bundle}, every file checked, into {out_dir}")
            return bundle.verified_copy(self.from_bundle, out_dir, self.board.NAME)
        self._step("build", f"bundle for {self.board.NAME} in {out_dir}")
        try:
            return bundle.build(self.board.NAME, out_dir, self.library)
        except bundle.BundleError as exc:
            raise FlashError("build", str(exc), "Nothing was sent to the board.") from None

    def _infusing(self):
        """The channels the safe boot would stop mid-infusion, as "channel N (state
        drug)"; raises FlashRefused when the firmware does not answer on the link."""
        try:
            with self._connect(self.link, key=self.key, role="service") as pump:
                self.board_id = pump.device["board_id"]
                statuses = [pump.status(ch) for ch in range(1, pump.channels + 1)]
        except PumpguardError as exc:
            raise FlashRefused(
                f"refused: cannot check over {self.link} that no channel infuses ({exc}). "
                "Check --link; if the board is not connected to a patient (new, or at "
                "its REPL), flash it with --force"
            ) from None
        return [
            f"channel {s.channel} ({s.state} {s.drug})"
            for s in statuses
            if s.state not in _SAFE_STATES
        ]

    def check_idle(self):
        """Refuse (FlashRefused) unless every channel is idle or stopped; with --force,
        warn about the ones that are not, or that could not be read."""
        try:
            busy = self._infusing()
        except FlashRefused:
            if not self.force:
                raise
            busy = [f"channels not readable over {self.link}"]
        if not busy:
            return
        if not self.force:
            raise FlashRefused(
                f"refused: {', '.join(busy)} on {self.link}: a safe boot would stop "
                "it at once, with no taper and no alarm. Stop or taper it first "
                "(`pumpguard stop`), or flash with --force"
            )
        print(
            f"WARNING --force: {', '.join(busy)}: the safe boot stops every motor at "
            "once, with no taper and no alarm",
            file=self._out,
            flush=True,
        )

    def enter_repl(self, manifest=None):
        """The safe boot; with the ``manifest`` of the bundle to copy, only once the
        board's MicroPython matches it."""
        self.check_idle()
        checked = "" if manifest is None else "its MicroPython checked, then "
        self._step("repl", f"{checked}safe boot of {self.port}: pump loop and watchdog off")
        if manifest is None:
            self._mpremote("repl", "exec", "pass", todo=_USB_TODO)
        else:
            self.check_micropython(manifest)
        # The board resets under mpremote's feet: its exit status says nothing here;
        # whether the board came back at its REPL is checked next.
        self._run(self.port, "exec", "--no-follow", _safe_boot_script(self.board.STATE_DIR))
        self._wait_for_repl()

    def check_micropython(self, manifest):
        """FlashError unless the board's MicroPython can import ``manifest``'s bundle and
        is the release it was tested on (abi.py); asked before anything is written."""
        code, printed = self._run.capture(self.port, "exec", abi.QUERY)
        if code:
            raise FlashError("repl", f"mpremote exec failed on {self.port}", _USB_TODO)
        try:
            said = abi.parse(printed)
        except ValueError as exc:
            raise FlashError(
                "repl",
                f"the board on {self.port} did not say which MicroPython it runs ({exc})",
                "Is --port the board's USB port, and MicroPython on it? `mpremote connect "
                f"{self.port} repl` shows what answers there.",
            ) from None
        board_wrong, micropython_wrong = abi.problems(said, manifest, self.board)
        if not (board_wrong or micropython_wrong):
            return
        if board_wrong:  # another MicroPython would not make it the board
            todo = f"Check --port and --board: a {self.board.NAME} bundle is for a "
            todo += f"{self.board.MACHINE}"
        else:
            wanted = manifest["micropython"].rsplit(".", 1)[0]
            todo = f"Install MicroPython v{wanted} for the {self.board.MACHINE} "
            todo += "(micropython.org/download), then flash again"
        raise FlashError(
            "repl",
            f"refused: the board on {self.port} runs {abi.describe(said)}: "
            + "; ".join(board_wrong + micropython_wrong),
            todo + "; nothing was written to the board.",
        )

    def _wait_for_repl(self):
        deadline = time.monotonic() + _BOOT_WAIT_S
        while self._run(self.port, "exec", "pass"):
            if time.monotonic() > deadline:
                raise FlashError(
                    "repl",
                    f"the board did not come back on {self.port} after its reset",
                    "Unplug and replug it, then flash again; with --port auto make sure "
                    "it is the only MicroPython board attached.",
                )
            time.sleep(_RETRY_S)

    def provision(self):
        """The keys to flash: --keys FILE's, or new ones (the board's id kept when
        known), saved to the host key store as ``.json.new`` until the copy is done."""
        keyfile = self.keys or keystore.KeyFile.generate(self.board_id)
        store = keystore.store_path(keyfile.board_id)
        pending = keystore.KeyFile(keyfile.board_id, keyfile.keys).save(store + ".new")
        return keyfile, pending, store

    def copy(self, bundle_dir, manifest, keyfile, board_keys):
        """The bundle, and `board_keys` (a file of keyfile's board JSON) as the store's keys."""
        self._step("copy", "changed files only (mpremote skips those already identical)")
        entries = sorted(os.listdir(bundle_dir))
        self._mpremote(
            "copy",
            "fs",
            "cp",
            "-r",
            *entries,
            ":",
            "+",
            "fs",
            "cp",
            board_keys,
            f":{self.board.STATE_DIR}/keys",
            "+",
            "exec",
            _cleanup_script(manifest["files"], self.board.STATE_DIR),
            cwd=bundle_dir,
            todo="The board stays at its REPL (safe boot): run the same command again; "
            "if the filesystem is full, `mpremote fs df` shows it. The keys of board "
            f"{keyfile.board_id} it was writing are kept in the key store as .json.new",
        )

    def reset(self):
        self._step("reset", "booting the new firmware")
        self._mpremote("reset", "reset", todo="Press the board's reset button.")

    def verify(self, manifest, keyfile):
        self._step("verify", f"HELLO over {self.link}")
        verify(self.link, manifest, connect=self._connect, wait_s=_BOOT_WAIT_S, key=keyfile)

    def flash(self):
        with (
            tempfile.TemporaryDirectory(prefix="pumpguard-bundle-") as tmp,
            tempfile.TemporaryDirectory(prefix="pumpguard-keys-") as secret,  # 0700
        ):
            manifest = self.build(tmp)
            self.enter_repl(manifest)
            keyfile, pending, store = self.provision()
            board_keys = os.path.join(secret, "keys")
            fd = os.open(board_keys, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(keyfile.board_json(), f)
            self.copy(tmp, manifest, keyfile, board_keys)
        os.replace(pending, store)
        keyfile = keystore.KeyFile.load(store)
        self.reset()
        self.verify(manifest, keyfile)
        print(
            # the whole hash: what QA compares with the bundle it tested
            f"flashed {self.board.NAME}: bundle {manifest['bundle']}, library "
            f"{manifest['library']['name']} crc {manifest['library']['crc']:08x}, keys of "
            f"board {keyfile.board_id} in {store}; the board's previous keys, and any "
            "key file exported from them, no longer work",
            file=self._out,
        )
        return manifest


def verify(link, manifest, connect=connect, wait_s=0, key=None):
    """Check over the protocol that the device on ``link`` runs ``manifest``'s bundle,
    speaking as service with ``key`` (a key file; None: the key store's).

    Retries for ``wait_s`` seconds while nothing answers (a board still booting).
    """
    deadline = time.monotonic() + wait_s
    while True:
        try:
            with connect(link, key=key, role="service") as pump:
                device = pump.device
            break
        except PumpguardError as exc:
            if time.monotonic() > deadline:
                raise FlashError(
                    "verify",
                    f"no pumpguard firmware answers on {link}: {exc}",
                    "Check the link wiring and --link; `mpremote connect PORT repl` shows "
                    "what the board printed at boot.",
                ) from None
            time.sleep(_RETRY_S)
    problems = []
    if device["bundle"] != manifest["bundle"]:
        problems.append(f"bundle {device['bundle'] or '(none)'}, expected {manifest['bundle']}")
    if device["firmware"] != manifest["firmware"]:
        problems.append(f"firmware {device['firmware']!r}, expected {manifest['firmware']!r}")
    if device["library_crc"] != manifest["library"]["crc"]:
        problems.append(
            f"library crc {device['library_crc']:08x}, expected {manifest['library']['crc']:08x}"
        )
    if device["board"] != manifest["board"]:
        problems.append(f"board {device['board']!r}, expected {manifest['board']!r}")
    if problems:
        raise FlashError(
            "verify",
            "the running firmware is not the bundle just written: " + "; ".join(problems),
            "Flash again; if it persists, a file on the board is not what was copied "
            "(`mpremote fs sha256sum` compares it with manifest.json).",
        )
    return device
