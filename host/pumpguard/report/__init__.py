"""``pumpguard report``'s API: a session report from the device's persistent event log.

>>> from pumpguard import report
>>> r = report.build(pump.log(), report.identity(pump), pump.channels, now=report.now(pump))
>>> report.write(r, "out")            # [out/channel-1.png, ..., out/report.html]
>>> entries, device, _ = report.load("session.json")   # `pumpguard log --json` output

``parse.py`` reads the firmware's log texts (each format named there), ``model.py``
builds the ``Report``, ``plots.py`` draws a PNG per channel, ``page.py`` writes the page.
"""

import os
from pathlib import Path

from ..errors import UsageError
from .model import build
from .records import Report
from .source import export, identity, load, now, parse

__all__ = ["Report", "build", "export", "identity", "load", "now", "parse", "write"]


def write(report: Report, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write one ``channel-N.png`` per channel the log names and ``report.html`` into
    ``out_dir`` (made if missing); returns the paths written, the page last."""
    # matplotlib loads here, not with the package: `pumpguard log` needs none of it
    from .page import write_html
    from .plots import channel_png

    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        images = {
            ch.channel: channel_png(report, ch, out / f"channel-{ch.channel}.png")
            for ch in report.channels
        }
        return [*images.values(), write_html(report, images, out / "report.html")]
    except OSError as exc:
        raise UsageError(f"cannot write the report into {out}: {exc}") from None
