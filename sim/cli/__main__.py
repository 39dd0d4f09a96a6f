"""``python -m sim.cli``: the ``kbt`` command."""

import sys

from sim.cli import main

sys.exit(main())
