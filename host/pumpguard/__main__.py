"""``python -m pumpguard``: the same as the ``pumpguard`` command."""

import sys

from .cli import main

sys.exit(main())
