"""pumpguard boards in a labgrid farm: the driver a labgrid environment names for a
board, and the ports the pytest plugin takes from the places acquired (``--lg-env``).

An env yaml names one target per place, each with a ``PumpguardDriver``::

    imports:
      - pumpguard.testing.farm        # registers PumpguardDriver with labgrid
    targets:
      pumpguard-1:
        resources:
          RemotePlace: {name: pumpguard-1}
        drivers:
          PumpguardDriver: {}

The driver binds the board's protocol link: a ``NetworkSerialPort`` (``raw``: the
exporter's TCP port as it is, ``socket://``; ``rfc2217``: a serial port the exporter
serves with ser2net) or a serial port on this machine (``RawSerialPort``,
``USBSerialPort``). With two serial resources on a place (the board's REPL and its link),
name the link in the binding: ``PumpguardDriver: {bindings: {link: <resource name>}}``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import attr
from labgrid.binding import BindingError, StateError
from labgrid.driver.common import Driver
from labgrid.driver.exception import ExecutionError
from labgrid.exceptions import (
    InvalidConfigError,
    NoConfigFoundError,
    NoSupplierFoundError,
    RegistrationError,
)
from labgrid.factory import target_factory
from labgrid.remote.client import Error as ClientError
from labgrid.resource import SerialPort
from labgrid.util.proxy import proxymanager

from ..errors import PumpguardError, UsageError

if TYPE_CHECKING:
    import pytest
    from labgrid import Environment

    from ..api.client import Pump

# What labgrid raises for a farm that is not as the env yaml says (a place not acquired,
# no coordinator, a resource missing, a bad config): said in one line, not a traceback.
_FARM_ERRORS = (
    ClientError,
    NoConfigFoundError,
    InvalidConfigError,
    NoSupplierFoundError,
    RegistrationError,
    BindingError,
    StateError,
    ExecutionError,
    OSError,
)


@target_factory.reg_driver
@attr.s(eq=False)
class PumpguardDriver(Driver):
    """A pumpguard board's protocol link on a labgrid target.

    Activated, ``.port`` is the URL ``pumpguard.connect()`` and ``pumpguard --port``
    open (an SSH forward set up first when the exporter asks for a proxy), and
    ``connect(**options)`` opens a session on it (``pumpguard.connect``'s options).
    The driver never holds the link open itself: a board serves one host at a time,
    and that host is the test's."""

    bindings = {"link": {"NetworkSerialPort", "SerialPort"}}
    link: Any = attr.ib(default=None, init=False)  # the resource bound (labgrid sets it)
    _url: str = attr.ib(default="", init=False)

    def on_activate(self):
        self._url = link_url(self.link)

    def on_deactivate(self):
        self._url = ""

    @property
    @Driver.check_active
    def port(self) -> str:
        return self._url

    @Driver.check_active
    def connect(self, **options: Any) -> Pump:
        from .. import connect

        return connect(self.port, **options)


def link_url(resource: Any) -> str:
    """The pyserial URL of a serial resource: a local port's device path; a
    NetworkSerialPort's ``socket://host:port`` (raw) or ``rfc2217://host:port``."""
    if isinstance(resource, SerialPort):
        return resource.port
    host, port = proxymanager.get_host_and_port(resource)
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address, as a URL writes it
    if resource.protocol == "raw":
        return f"socket://{host}:{port}"
    if resource.protocol == "rfc2217":
        # ser2net does not confirm modem-control changes: labgrid's own SerialDriver
        # opens its ports with ign_set_control too.
        return f"rfc2217://{host}:{port}?ign_set_control"
    raise UsageError(
        f"NetworkSerialPort {host}:{port} has protocol {resource.protocol!r}: "
        "a pumpguard link is 'raw' or 'rfc2217'"
    )


def env_ports(env: Environment) -> list[str]:
    """The link URL of every target of ``env`` that has a PumpguardDriver, in the env
    yaml's order of targets (each pytest-xdist worker computes the same list);
    UsageError naming the target when labgrid cannot give one."""
    names = [
        name
        for name, config in (env.config.get_targets() or {}).items()  # `targets:` empty: None
        if "PumpguardDriver" in target_factory.normalize_config(config)[1]
    ]
    if not names:
        raise UsageError(
            "no target has a PumpguardDriver: give each place's target "
            "`drivers: {PumpguardDriver: {}}` (and `imports: [pumpguard.testing.farm]`)"
        )
    ports = []
    for name in names:
        try:
            target = env.get_target(name)
            assert target is not None  # one of the config's targets
            ports.append(target.get_driver(PumpguardDriver).port)
        except (PumpguardError, *_FARM_ERRORS) as exc:
            said = _said(exc)
            if isinstance(exc, ClientError):  # what the coordinator said, or that none did
                said += f" (coordinator at {_coordinator(env)})"
            raise UsageError(f"target {name}: {said}") from exc
    return ports


def _coordinator(env: Environment) -> str:
    # where labgrid's RemotePlace looks for it
    default = os.environ.get("LG_COORDINATOR", "127.0.0.1:20408")
    return env.config.get_option("coordinator_address", default)


def labgrid_ports(config: pytest.Config) -> list[str]:
    """The ports of the places of labgrid's ``--lg-env`` (see ``env_ports``), for the
    pytest plugin; a farm that is not as the env yaml says is one UsageError line."""
    import pytest
    from labgrid import Environment
    from labgrid.pytestplugin.hooks import LABGRID_ENV_KEY

    path = config.option.lg_env or os.environ.get("LG_ENV")  # labgrid's plugin reads both
    # labgrid logs what its errors say too (the coordinator unreachable...): said once here
    was = logging.root.manager.disable
    logging.disable(logging.ERROR)
    try:
        # The environment labgrid's plugin made, when its pytest_configure ran first.
        env = config.stash.get(LABGRID_ENV_KEY, None)
        if env is None:
            # labgrid's attrs fields carry no annotations: pyright sees no parameters
            environment = cast("Callable[..., Environment]", Environment)
            env = environment(config_file=path)
            if config.option.lg_coordinator is not None:
                env.config.set_option("coordinator_address", config.option.lg_coordinator)
        return env_ports(env)
    except (PumpguardError, *_FARM_ERRORS) as exc:
        raise pytest.UsageError(f"pumpguard: --lg-env {path}: {_said(exc)}") from None
    finally:
        logging.disable(was)


def _said(exc: BaseException) -> str:
    # labgrid's own errors carry their text in .msg (attrs classes); the client's in
    # args (its str() puts "Error: " before them)
    if isinstance(exc, ClientError):
        return " ".join(map(str, exc.args))
    return str(getattr(exc, "msg", None) or exc).strip() or type(exc).__name__
