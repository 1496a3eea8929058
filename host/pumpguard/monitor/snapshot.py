"""What the monitor shows, gathered from the pump in one refresh: a ``Snapshot``."""

from dataclasses import dataclass

from pumpguard._board.protocol.catalog import PRIORITY

# A priority this host's table lacks (a newer firmware's) is listed first: an alarm
# nobody here can rank must not sink below the ones it can.
_UNKNOWN_RANK = max(PRIORITY.values()) + 1


@dataclass(frozen=True)
class Snapshot:
    """The pump at one refresh: its identity (HELLO_R's fields), this session's role
    and the heartbeat interval it supervises with (0: none), the device's uptime, every
    channel's ``Status`` and every ``Alarm`` it lists."""

    device: dict
    role: str
    supervise_s: int
    uptime_ms: int
    channels: tuple
    alarms: tuple
    # INFO's, not HELLO_R's: a push since this session opened shows at once, and an
    # invalid library (nothing starts) says so on the clinician's screen
    library_problems: int = 0

    @property
    def listed(self):
        """The alarms in the order shown (and numbered for the keys): high priority
        first; within one, those not acknowledged first, then the oldest first."""
        return tuple(
            sorted(
                self.alarms,
                key=lambda a: (-PRIORITY.get(a.priority, _UNKNOWN_RANK), a.acked, a.at_ms),
            )
        )


def gather(pump, supervise_s):
    """One refresh: the device's uptime and active library (INFO), every channel's
    status, every alarm."""
    info = pump.info()
    device = dict(
        pump.device,
        library=info.library,
        library_version=info.library_version,
        library_crc=info.library_crc,
    )
    return Snapshot(
        device=device,
        role=pump.role,
        supervise_s=supervise_s,
        uptime_ms=info.uptime_ms,
        channels=tuple(pump.status(ch) for ch in range(1, pump.channels + 1)),
        alarms=tuple(pump.alarms()),
        library_problems=info.library_problems,
    )
