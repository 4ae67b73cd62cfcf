"""The ``fnn`` command line: ``fnn compare`` (optimizers and batch sizes side by side on one
problem), ``fnn train``, ``fnn gradcheck`` and ``fnn datasets``. ``main(argv)`` runs it
in-process and returns the exit status; the compare engine lives in ``_compare.py``.
"""

from fnn.cli._compare import DEFAULT_LEARNING_RATES as DEFAULT_LEARNING_RATES
from fnn.cli._main import (
    DEFAULT_OPTIMIZERS as DEFAULT_OPTIMIZERS,
    build_parser as build_parser,
    main as main,
)

__all__ = ["DEFAULT_LEARNING_RATES", "DEFAULT_OPTIMIZERS", "build_parser", "main"]
