"""`pumpguard library` as a user runs it: the real console script, push's wiring (the
service role, a pump needed for push alone), and the README's examples."""

import io
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from pumpguard.cli.library import argparse_library, do_library, library_needs_pump

from tests.librarykit import LIBRARY, ROOT, SHIPPED, SHIPPED_CRC, run, shipped, unsealed, write

PUMPGUARD = Path(sys.executable).parent / "pumpguard"  # the installed console script


def _script(*argv):
    return subprocess.run(
        [str(PUMPGUARD), "library", *map(str, argv)], capture_output=True, text=True, cwd=ROOT
    )


def test_the_console_script_checks_seals_and_fails_in_one_line(tmp_path):
    done = _script("check", LIBRARY)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.rstrip().endswith("sealed; valid")
    path = unsealed(tmp_path)
    assert _script("check", path).returncode == 1
    done = _script("seal", path)
    assert done.returncode == 0 and f"crc32 {SHIPPED_CRC} -> 0x" in done.stdout
    assert _script("check", path).returncode == 0
    done = _script("show", tmp_path / "missing.json")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_push_alone_needs_a_pump_and_speaks_as_service():
    parse = argparse_library().parse_args
    push = parse(["push", "new.json"])
    assert library_needs_pump(push) and push.session_role == "service"
    for argv in (["check", "f"], ["seal", "f"], ["show", "f"], ["diff", "a", "b"]):
        args = parse(argv)
        assert not library_needs_pump(args)
        assert getattr(args, "session_role", None) is None


def test_push_prints_the_library_the_pump_runs_then():
    pushed = []

    class Pump:  # the API's Pump.push_library (contract): returns a LibraryId
        def push_library(self, path):
            pushed.append(path)
            return SimpleNamespace(name="site-icu", version="0.2.0", crc=0xB42E97CB)

    out = io.StringIO()
    do_library(Pump(), argparse_library().parse_args(["push", "new.json"]), out)
    assert pushed == ["new.json"]
    assert out.getvalue() == "the pump now runs site-icu 0.2.0 (crc32 0xb42e97cb)\n"


def test_push_without_a_port_is_a_usage_error(capsys, monkeypatch):
    monkeypatch.delenv("PUMPGUARD_PORT", raising=False)
    code, _, err = run(capsys, "library", "push", LIBRARY)
    assert (code, err) == (
        2,
        "pumpguard: no port: give --port PORT (-p PORT), --port auto, or set PUMPGUARD_PORT\n",
    )


def _readme_examples():
    section = (ROOT / "README.md").read_text().split("## For the pharmacist: the drug library")[1]
    section = section.split("\n## ")[0]
    for block in re.findall(r"```console\n(.*?)```", section, re.S):
        command, _, output = block.partition("\n")
        yield command.removeprefix("$ "), output


def test_the_readme_examples_print_what_the_readme_shows(capsys, monkeypatch, tmp_path):
    # the README's edit: a copy with norepinephrine's hard maximum lowered, version 0.3.0
    (tmp_path / "firmware").mkdir()
    (tmp_path / "firmware" / "druglib.json").write_text(SHIPPED)
    doc = shipped()
    doc["version"] = "0.3.0"
    doc["drugs"]["norepinephrine"]["limits"]["hard_max"] = {
        "value": "2.5",
        "source": "P&T committee 2026-11-24: lowered from 3",
    }
    write(tmp_path / "druglib-new.json", doc)
    monkeypatch.chdir(tmp_path)
    examples = list(_readme_examples())
    assert [c.split()[2] for c, _ in examples] == ["check", "show", "check", "seal", "diff"]
    for command, shown in examples:
        _, out, err = run(capsys, *command.split()[1:])
        assert out + err == shown, command


def test_a_reader_that_goes_away_ends_the_output_without_a_traceback():
    # `pumpguard library show FILE | head -1`: the pipe is closed before pumpguard
    # writes anything (it is still starting), so every write meets EPIPE.
    proc = subprocess.Popen(
        [str(PUMPGUARD), "library", "show", str(LIBRARY)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 1
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


def test_the_readme_api_works_after_import_pumpguard_alone():
    # README: `pumpguard.library.check(path)` and `pumpguard.report`, after the
    # `import pumpguard` every example starts with (a fresh interpreter: no other
    # test's import of the subpackage hides a missing one)
    code = (
        "import pumpguard\n"
        f"assert pumpguard.library.check({str(LIBRARY)!r}).identity.sealed\n"
        "assert callable(pumpguard.report.build)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-600:]
