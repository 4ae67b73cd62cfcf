"""``python -m fnn ...``: the same as the ``fnn`` console script."""

import sys

from fnn.cli import main

sys.exit(main())
