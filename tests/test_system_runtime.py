"""The two emulator runtimes, and the way back to a board's REPL, through the host tool.

The other system tests already run on both runtimes (the plugin's pump_target); these cover what
only a runtime choice shows: the MicroPython runtime runs the compiled bundle (and so
reports its hash, as a flashed board does), TCP works there too, and a safe boot
leaves the pump loop unstarted on either."""

import os
import subprocess
import sys

import pumpguard
import pytest
from pumpguard.deploy import bundle, flash
from pumpguard.emulator import micropython

from tests.systemkit import ANSWER_TIMEOUT_S

# The emulator itself (its own processes): nothing here runs on a board.
pytestmark = [pytest.mark.system, pytest.mark.needs_emulator]


def test_micropython_runs_the_bundle_and_passes_the_flash_check(tmp_path):
    manifest = bundle.load_manifest(bundle.cached("emulator"))
    with pumpguard.Emulator(state_dir=tmp_path, runtime="micropython") as emu:
        device = flash.verify(emu.port, manifest, key=emu.key)
    assert (device["firmware"], device["bundle"]) == (manifest["firmware"], manifest["bundle"])


def test_cpython_runs_sources_which_fail_the_flash_check(tmp_path):
    manifest = bundle.load_manifest(bundle.cached("emulator"))
    with (
        pumpguard.Emulator(state_dir=tmp_path, runtime="cpython") as emu,
        pytest.raises(flash.FlashError, match="not the bundle just written"),
    ):
        flash.verify(emu.port, manifest, key=emu.key)


def test_tcp_link_on_micropython(tmp_path):
    with (
        pumpguard.Emulator(state_dir=tmp_path, tcp=0, runtime="micropython") as emu,
        pumpguard.connect(emu.port, key=emu.key, timeout=ANSWER_TIMEOUT_S) as pump,
    ):
        assert pump.status(1).state == "idle"


def test_safe_boot_leaves_the_pump_loop_unstarted_once(emulator):
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        start = pump.start(
            2, "vasopressin", "0.03", "units/min", concentration="1 units/mL", volume_ml="20"
        )
    state = emulator.state_dir + "/"
    open(state + "safeboot", "wb").close()  # what `pumpguard flash --repl` writes
    emulator.power_cycle()
    with pytest.raises(pumpguard.LinkError):
        pumpguard.connect(emulator.port, timeout=0.2, attempts=1, boot_wait=0)
    assert emulator.pumps()[1]["rate"] == 0  # no loop: the motors stay off
    with open(state + "emulator.log") as log:
        assert "safe boot" in log.read()
    emulator.power_cycle()  # the file was consumed: the next boot runs the pump again
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        s = pump.status(2)
        assert (s.state, s.rate_ml_h) == ("running", start.rate_ml_h)


def test_emulate_help_offers_both_runtimes():
    r = subprocess.run(
        [sys.executable, "-m", "pumpguard", "emulate", "--help"], capture_output=True, text=True
    )
    assert r.returncode == 0
    assert "{cpython,micropython}" in r.stdout


def test_a_board_at_its_repl_still_obeys_the_emulator(emulator):
    open(emulator.state_dir + "/safeboot", "wb").close()
    emulator.power_cycle()
    emulator.advance(30)  # the clock runs on without the firmware
    assert emulator.command("occlusion 1").startswith("ok")


def _emulate_micropython(env):
    """What `pumpguard emulate --runtime micropython` that cannot start says on stderr:
    before anything is served (no port printed for a board that would never answer)."""
    r = subprocess.run(
        [sys.executable, "-m", "pumpguard", "emulate", "--runtime", "micropython"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=env,
        timeout=120,
    )
    assert (r.returncode, r.stdout) == (1, "")
    return r.stderr


def test_the_micropython_runtime_without_node_exits_saying_what_is_missing(tmp_path):
    said = _emulate_micropython({"PATH": str(tmp_path), "HOME": str(tmp_path)})  # no node
    assert said.count("\n") == 1 and "--runtime cpython" in said
    assert said.startswith("pumpguard: the micropython runtime needs Node 20+ on PATH")


def test_the_micropython_runtime_without_its_npm_package_says_what_to_install(tmp_path):
    # At once: never a board booting into the same wall for ever.
    said = _emulate_micropython({**os.environ, micropython.NODE_MODULES_ENV: str(tmp_path)})
    assert said.count("\n") == 1 and "--runtime cpython" in said
    assert said.startswith(
        f"pumpguard: the micropython runtime needs the npm package {micropython.PACKAGE} "
        f"{micropython.PACKAGE_VERSION} in ${micropython.NODE_MODULES_ENV} ({tmp_path}): "
        f"`npm install --prefix DIR {micropython.PACKAGE}@{micropython.PACKAGE_VERSION}`"
    )


def test_an_interpreter_that_cannot_load_is_an_error_not_a_board_rebooting_into_it(tmp_path):
    # node fails before the firmware runs: once, said, instead of a watchdog reset into
    # the same failure at every boot until the emulator's 60 s deadline for an answer.
    package = tmp_path / micropython.PACKAGE
    package.mkdir(parents=True)
    (package / "package.json").write_text('{"main": "broken.mjs"}')
    (package / "broken.mjs").write_text('throw new Error("not an interpreter");\n')
    said = _emulate_micropython({**os.environ, micropython.NODE_MODULES_ENV: str(tmp_path)})
    assert "not an interpreter" in said  # node's own error, in the log
    assert said.splitlines()[-1].startswith("pumpguard: node exited with 1 before the firmware ran")
    assert "firmware died" not in said
