"""The parts of a labgrid farm on this machine (``farm_run``, and its test): a process
with its log and readiness line, a client session on the coordinator (places, matches,
acquire, release), and the exporter's and the environment's configs.

labgrid's exporter exports any resource class it has no export code for as it is
given (a static entry): a ``NetworkSerialPort`` with host, port and protocol ``raw``
needs no ser2net, and the emulator's ``--tcp`` port is one."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
from collections import deque
from typing import IO, Any

from ..errors import PumpguardError

_LOG_TAIL_LINES = 12  # of a process's log, quoted when it fails to start


class Process:
    """A program of the farm in its own session (a Ctrl-C reaches only the runner,
    which then releases the places before it stops the exporter and the coordinator),
    its output (stdout and stderr) in ``log_path``; ``wait_ready()`` returns the
    match of ``ready`` against its first line that matches."""

    def __init__(self, name: str, argv: list[str], log_path: str, ready: str, cwd=None):
        self.name = name
        self.log_path = log_path
        self._ready = re.compile(ready)
        self._match: re.Match[str] | None = None
        self._seen = threading.Event()  # the ready line came, or the output ended
        self._tail: deque[str] = deque(maxlen=_LOG_TAIL_LINES)
        self._log = open(log_path, "w")  # noqa: SIM115 (closed by stop())
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                cwd=cwd,
                # its lines into the log as they come (labgrid flushes only some prints)
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,
            )
        except OSError as exc:
            self._log.close()
            raise PumpguardError(f"cannot run {argv[0]}: {exc}") from None
        assert self.proc.stdout is not None  # stdout=PIPE
        self._copier = threading.Thread(target=self._copy, args=(self.proc.stdout,), daemon=True)
        self._copier.start()

    def _copy(self, out: IO[str]) -> None:
        for line in out:
            self._log.write(line)
            self._log.flush()
            self._tail.append(line)
            if self._match is None and (found := self._ready.search(line)):
                self._match = found
                self._seen.set()
        self._seen.set()

    def wait_ready(self, timeout: float) -> re.Match[str]:
        """The ready line's match, once it is printed; PumpguardError quoting the log's
        end when the program exits first, or says nothing of the kind in ``timeout``."""
        self._seen.wait(timeout)
        if self._match is not None:
            return self._match
        if self._seen.is_set():
            code = self.proc.wait()
            raise PumpguardError(
                f"{self.name} exited with {code} before it was ready; "
                f"{self.log_path} ends:\n{''.join(self._tail)}"
            )
        raise PumpguardError(
            f"{self.name} was not ready after {timeout:.0f} s; see {self.log_path}"
        )

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM (labgrid's programs shut down on it), SIGKILL after ``timeout``."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._copier.join(timeout)
        self._log.close()


def start_coordinator(log_dir: str) -> tuple[Process, str]:
    """labgrid-coordinator on 127.0.0.1 and a port the system picks (it prints it), its
    state (places.yaml) in ``log_dir``/coordinator; the process and its address."""
    state = os.path.join(log_dir, "coordinator")
    os.makedirs(state, exist_ok=True)
    proc = Process(
        "labgrid-coordinator",
        [_tool("labgrid-coordinator"), "--listen", "127.0.0.1:0"],
        os.path.join(log_dir, "coordinator.log"),
        ready=r"listening on (\S+:\d+)",
        cwd=state,
    )
    return proc, _ready(proc)[1]


def start_exporter(address: str, name: str, config: str, log_dir: str) -> Process:
    """labgrid-exporter ``name`` exporting the resources of ``config`` to ``address``,
    returned once the coordinator greeted it (its resources follow: ``Session``'s
    ``await_resources``)."""
    proc = Process(
        "labgrid-exporter",
        [_tool("labgrid-exporter"), "-c", address, "--name", name, config],
        os.path.join(log_dir, "exporter.log"),
        ready=r"^Exporter ready",
    )
    _ready(proc)
    return proc


def _ready(proc: Process) -> re.Match[str]:
    # Generous: labgrid's programs import gRPC first, slowly on a loaded machine.
    try:
        return proc.wait_ready(60)
    except PumpguardError:
        proc.stop()  # one that said nothing in time is still running
        raise


def _tool(name: str) -> str:
    # labgrid's commands are installed beside this interpreter (the venv's bin/)
    beside = os.path.join(os.path.dirname(sys.executable), name)
    return beside if os.path.exists(beside) else name


def exporter_config(ports: dict[str, str]) -> str:
    """The exporter's resources: one group per place (its name), holding that board's
    NetworkSerialPort at the ``socket://host:port`` given."""
    # a Jinja2 template to the exporter: "##" starts its comments ("#" its statements)
    text = "## one group per board: its protocol link as it is (raw TCP)\n"
    for group, url in ports.items():
        host, port = url.removeprefix("socket://").rsplit(":", 1)
        text += f"{group}:\n  NetworkSerialPort:\n    host: {host}\n    port: {port}\n"
        text += "    protocol: raw\n"
    return text


def env_config(address: str, places: list[str]) -> str:
    """The labgrid environment of the places: one target each (named as the place),
    its RemotePlace and a PumpguardDriver."""
    text = f"options:\n  coordinator_address: {address}\n"
    text += "imports:\n  - pumpguard.testing.farm  # registers PumpguardDriver\ntargets:\n"
    for place in places:
        text += f"  {place}:\n    resources:\n      RemotePlace:\n        name: {place}\n"
        text += "    drivers:\n      PumpguardDriver: {}\n"
    return text


class Session:
    """A client session on the coordinator, as ``labgrid-client`` holds one: this
    host and user (``LG_HOSTNAME``/``LG_USERNAME``) acquire the places."""

    def __init__(self, address: str):
        from labgrid.remote.client import Error, start_session

        try:
            self._session: Any = start_session(address)
        except (Error, OSError) as exc:  # labgrid's ServerError, or the connection's
            raise PumpguardError(f"coordinator {address}: {exc}") from None
        self._loop: asyncio.AbstractEventLoop = self._session.loop

    def await_resources(self, paths: set[str], timeout: float) -> None:
        """Return once the coordinator lists every ``exporter/group/class`` of
        ``paths`` as available (the exporter's updates reach this session as they
        come: no polling)."""
        session = self._session
        changed = asyncio.Event()
        noted = session.on_resource_changed

        async def on_resource_changed(*args):
            await noted(*args)
            changed.set()

        def missing() -> set[str]:
            have = {
                f"{exporter}/{group}/{entry.data.get('cls')}"
                for exporter, groups in session.resources.items()
                for group, entries in groups.items()
                for entry in entries.values()
                if entry.data.get("avail")
            }
            return paths - have

        async def all_there():
            while missing():
                changed.clear()
                await changed.wait()

        session.on_resource_changed = on_resource_changed
        try:
            self._loop.run_until_complete(asyncio.wait_for(all_there(), timeout))
        except TimeoutError:
            raise PumpguardError(
                f"the coordinator lists no {', '.join(sorted(missing()))} after {timeout:.0f} s"
            ) from None
        finally:
            del session.on_resource_changed  # the class's own again

    def add_place(self, name: str, match: str) -> None:
        """Create the place ``name`` with one match (``exporter/group/class``)."""
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb2

        stub = self._session.stub
        self._call("create place " + name, lambda: stub.AddPlace(pb2.AddPlaceRequest(name=name)))
        request = pb2.AddPlaceMatchRequest(placename=name, pattern=match)
        self._call(f"add match {match} to {name}", lambda: stub.AddPlaceMatch(request))

    def acquire(self, name: str) -> None:
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb2

        request = pb2.AcquirePlaceRequest(placename=name)
        self._call("acquire " + name, lambda: self._session.stub.AcquirePlace(request))
        if not self._session.places[name].acquired_resources:
            raise PumpguardError(
                f"place {name} was acquired without a resource: its match is wrong"
            )

    def release(self, name: str) -> None:
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb2

        request = pb2.ReleasePlaceRequest(placename=name)
        self._call("release " + name, lambda: self._session.stub.ReleasePlace(request))

    def _call(self, what: str, call) -> None:
        """Run ``call()`` (a request to the coordinator) on the session's loop."""
        import grpc

        async def done():
            await call()
            await self._session.sync_with_coordinator()  # its places as they are now

        try:
            self._loop.run_until_complete(done())
        except grpc.aio.AioRpcError as exc:
            raise PumpguardError(f"{what}: the coordinator says {exc.details()}") from None

    def close(self) -> None:
        self._loop.run_until_complete(self._session.stop())
        self._loop.run_until_complete(self._session.close())
