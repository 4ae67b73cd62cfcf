"""``python -m fnn ...``: the same as the ``fnn`` console script."""

from fnn.cli._main import console

console()
