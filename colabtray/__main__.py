"""``python -m colabtray``: the same as the ``colabtray`` command."""

import sys

from colabtray.launch import main

sys.exit(main())
