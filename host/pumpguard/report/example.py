"""``make report-example``: the README's own session (``make run``, the demo) played on an
emulator, then ``pumpguard report`` on that pump, as a user would run it; channel 1's
plot is copied to the README's picture.

    python -m pumpguard.report.example [PICTURE] [OUT_DIR]
"""

import contextlib
import io
import shutil
import subprocess
import sys

import pumpguard
from pumpguard import demo

PICTURE = "docs/report-example.png"
OUT = "build/report-example"


def main(argv=None):
    picture, out = [*(argv if argv is not None else sys.argv[1:]), PICTURE, OUT][:2]
    with (
        pumpguard.Emulator(time_scale=10) as emu,
        pumpguard.connect(emu.port, key=emu.key, timeout=2) as pump,
    ):
        with contextlib.redirect_stdout(io.StringIO()):  # the demo's own timeline
            demo.play(emu, pump)
        argv = [sys.executable, "-m", "pumpguard", "--port", emu.port, "--key", emu.key]
        r = subprocess.run([*argv, "report", "--out", out], capture_output=True, text=True)
    sys.stdout.write(r.stdout)
    sys.stderr.write(r.stderr)
    if r.returncode == 0:
        shutil.copyfile(f"{out}/channel-1.png", picture)
        print(picture)
    return r.returncode


if __name__ == "__main__":
    sys.exit(main())
