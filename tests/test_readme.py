# The README's "Script a pump from Python" example is what a new user copies first:
# run it verbatim against the emulator and check what it prints.
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _example():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Script a pump from Python", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.system
@pytest.mark.needs_emulator  # its own emulator
def test_readme_python_example_runs_and_prints_the_rate():
    example = _example()
    assert len(example.strip().splitlines()) <= 6  # the promise: a few lines, nothing hidden
    run = subprocess.run(
        [sys.executable, "-c", example], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "26.25"  # 0.1 mcg/kg/min x 70 kg x 60 / 16 mcg/mL
