"""``make farm`` (``python -m pumpguard.testing.farm_run``): a labgrid board farm on
this machine, and the system suite run through it.

It starts labgrid-coordinator on 127.0.0.1 (a port the system picks), one emulator per
place serving raw TCP (``--tcp``), and labgrid-exporter exporting each emulator's port
as a NetworkSerialPort (no ser2net); it creates the places (pumpguard-1, pumpguard-2),
each matching its board, acquires them, and runs
``pytest -m system --lg-env <log dir>/env.yaml -n 2``: one xdist worker per place, each
driving its place's board (the pytest plugin takes the ports from
``pumpguard.testing.farm.labgrid_ports``). Then it releases the places and stops all it
started, also when a step fails, on Ctrl-C or on SIGTERM, and exits with pytest's
status; when the farm could not be set up it says why in one line and exits with 1 (2
for a bad option). Logs, the configs it wrote and the JUnit report are in the log dir.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from ..emulator import RUNTIMES
from ..emulator.process import Emulator
from ..errors import EXIT_USAGE, PumpguardError, UsageError
from . import farm_lab

PLACES = ("pumpguard-1", "pumpguard-2")
EXPORTER = "pumpguard-farm"  # the exporter's name: the first part of each match
# Generous: the exporter's resources reach the coordinator within a second on an idle
# machine.
READY_TIMEOUT_S = 60
_MARK = ".pumpguard-farm"  # in a log dir this runner made (and may empty again)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, as every pumpguard command says it
        self.exit(EXIT_USAGE, f"pumpguard: farm: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m pumpguard.testing.farm_run",
        description="A labgrid board farm on 127.0.0.1 (coordinator, exporter, one emulator "
        "per place) and `pytest -m system --lg-env ENV -n <places>` through it; everything "
        "it starts is stopped at the end. Exits with pytest's status.",
    )
    p.add_argument(
        "--log-dir",
        default=os.path.join("build", "farm"),
        help="logs, configs and junit.xml (default build/farm; emptied first when a "
        "previous run made it)",
    )
    p.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default=RUNTIMES[0],
        help=f"the emulators' runtime (default {RUNTIMES[0]})",
    )
    p.add_argument("pytest_args", nargs="*", help="more pytest arguments, after --")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if importlib.util.find_spec("labgrid") is None:
            raise UsageError("labgrid is not installed: pip install pumpguard[farm]")
        log_dir = _fresh(args.log_dir)
        print(f"farm: logs and configs in {log_dir}", flush=True)
        # SIGTERM (a CI job cancelled) stops the farm as a Ctrl-C does: in order.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        with contextlib.ExitStack() as stack:
            try:
                return _run(args, log_dir, stack)
            finally:
                # a second Ctrl-C (or SIGTERM) must not cut the releases and stops short
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
    except PumpguardError as exc:
        print(f"pumpguard: farm: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("farm: interrupted before the tests ran", file=sys.stderr)
        return 130  # the shell's status of a command stopped by SIGINT


def _fresh(log_dir: str) -> str:
    """The log dir, empty (but for the mark): made, or a previous run's emptied."""
    if os.path.isdir(log_dir) and os.listdir(log_dir):
        if not os.path.exists(os.path.join(log_dir, _MARK)):
            raise UsageError(
                f"--log-dir {log_dir} holds files of something else: give a new or empty dir"
            )
        shutil.rmtree(log_dir)
    os.makedirs(log_dir, exist_ok=True)
    open(os.path.join(log_dir, _MARK), "w").close()
    return log_dir


def _undo(stack: contextlib.ExitStack, what: str, step: Callable[[], object]) -> None:
    """At the end, whatever happened: ``step()``, then "farm: <what>: done"; a step
    that fails is said, and the others still run."""

    def run():
        try:
            step()
            print(f"farm: {what}: done", flush=True)
        except (PumpguardError, OSError) as exc:
            print(f"farm: {what}: {exc}", file=sys.stderr, flush=True)

    stack.callback(run)


def _run(args: argparse.Namespace, log_dir: str, stack: contextlib.ExitStack) -> int:
    coordinator, address = farm_lab.start_coordinator(log_dir)
    _undo(stack, "stop labgrid-coordinator", coordinator.stop)
    print(
        f"farm: labgrid-coordinator at {address} (pid {coordinator.proc.pid}; "
        f"{coordinator.log_path})",
        flush=True,
    )
    session = farm_lab.Session(address)
    stack.callback(session.close)

    keys_dir = os.path.join(log_dir, "keys")
    ports = _start_emulators(args.runtime, log_dir, keys_dir, stack)

    config = os.path.join(log_dir, "exporter.yaml")
    with open(config, "w") as f:
        f.write(farm_lab.exporter_config(ports))
    exporter = farm_lab.start_exporter(address, EXPORTER, config, log_dir)
    _undo(stack, "stop labgrid-exporter", exporter.stop)
    print(
        f"farm: labgrid-exporter {EXPORTER} (pid {exporter.proc.pid}; {config}; "
        f"{exporter.log_path})",
        flush=True,
    )
    matches = {place: f"{EXPORTER}/{place}/NetworkSerialPort" for place in PLACES}
    session.await_resources(set(matches.values()), READY_TIMEOUT_S)
    for place, match in matches.items():
        session.add_place(place, match)
        session.acquire(place)
        _undo(stack, f"release {place}", lambda place=place: session.release(place))
        print(f"farm: place {place}: match {match}, acquired", flush=True)

    env_path = os.path.join(log_dir, "env.yaml")
    with open(env_path, "w") as f:
        f.write(farm_lab.env_config(address, list(PLACES)))
    junit = os.path.join(log_dir, "junit.xml")
    argv = ["-m", "system", "--lg-env", env_path, "-n", str(len(PLACES))]
    argv += ["--junitxml", junit, *args.pytest_args]
    print(f"farm: PUMPGUARD_KEYS={keys_dir} pytest {' '.join(argv)}", flush=True)
    status = _pytest(argv, keys_dir)
    print(f"farm: pytest exited with {status} (JUnit report {junit})", flush=True)
    return status


def _start_emulators(
    runtime: str, log_dir: str, keys_dir: str, stack: contextlib.ExitStack
) -> dict[str, str]:
    """One emulator per place (state, key and log in ``log_dir``/<place>), serving raw
    TCP on a free port, its key file put in the key store ``keys_dir`` as a flash puts
    a board's; each place's ``socket://`` URL."""
    emulators = {
        place: Emulator(state_dir=os.path.join(log_dir, place), tcp=0, runtime=runtime)
        for place in PLACES
    }
    _undo(
        stack, f"stop {len(emulators)} emulators", lambda: [e.close() for e in emulators.values()]
    )
    # Started with SIGINT ignored, which they inherit: a Ctrl-C stops the tests, then
    # the runner closes the emulators, never the other way round mid-test.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with ThreadPoolExecutor(len(emulators)) as pool:
            list(pool.map(Emulator.start, emulators.values()))
    finally:
        signal.signal(signal.SIGINT, previous)
    os.makedirs(keys_dir, mode=0o700, exist_ok=True)
    for place, emulator in emulators.items():
        board_id = emulator.register_key(keys_dir)
        print(
            f"farm: emulator {place} ({runtime} runtime, board {board_id}) at "
            f"{emulator.port} ({emulator.log_path})",
            flush=True,
        )
    return {place: str(emulator.port) for place, emulator in emulators.items()}


def _pytest(argv: list[str], keys_dir: str) -> int:
    """pytest in its own session, so that the runner decides what a Ctrl-C does: the
    first is passed on (pytest stops and reports), a second kills it."""
    env = {k: v for k, v in os.environ.items() if k not in ("PUMPGUARD_KEY", "PUMPGUARD_PORT")}
    env["PUMPGUARD_KEYS"] = os.path.abspath(keys_dir)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", *argv], env=env, start_new_session=True
    )
    interrupted = False
    while True:
        try:
            status = proc.wait()
            # killed by a signal (one passed on before its own handler was set): as a shell says it
            return 128 - status if status < 0 else status
        except KeyboardInterrupt:
            if interrupted:
                proc.kill()
            else:
                proc.send_signal(signal.SIGINT)
            interrupted = True


if __name__ == "__main__":
    sys.exit(main())
