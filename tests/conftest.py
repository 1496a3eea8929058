"""What this project's tests add to the pytest plugin (pumpguard.testing, loaded by
its entry point: the options, the fixtures pump_port, pump, pump_cli, emulator,
pump_key, pump_target, and the marker needs_emulator are its own, see README's
"Hardware in the loop")."""

import os
import tempfile

from hypothesis import settings
from pumpguard.testing.plugin import boards_given

# Hypothesis examples are judged on what they do, never on how long they take: a
# deadline only turns a loaded machine (pytest -n, CI) into a flaky failure.
settings.register_profile("pumpguard", deadline=None)
settings.load_profile("pumpguard")


def pytest_configure(config):
    # The tests speak as each key file's default role, whatever the shell exported.
    os.environ.pop("PUMPGUARD_ROLE", None)
    if not boards_given(config):
        # Tests that flash, rotate or save keys write the key store: never the user's
        # on an emulator run (a board's run uses it: its keys).
        os.environ["PUMPGUARD_KEYS"] = tempfile.mkdtemp(prefix="pumpguard-test-keys-")
        os.environ.pop("PUMPGUARD_KEY", None)
