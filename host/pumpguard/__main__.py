"""``python -m pumpguard``: the same as the ``pumpguard`` command."""

import sys

from .cli.main import main

sys.exit(main())
