"""``python -m glidemq``: the same as the ``glidemq`` command."""

import sys

from .cli import main

sys.exit(main())
