"""``python -m colabtray``: the same as the ``colabtray`` command."""

import sys

from colabtray.cli import main

sys.exit(main())
