"""The ``fnn`` command line: ``fnn compare`` (optimizers and batch sizes side by side on one
problem), ``fnn train``, ``fnn gradcheck`` and ``fnn datasets``. ``main(argv)`` runs it
in-process and returns the exit status; ``_main.py`` says where each part lives.
"""

from fnn.cli._main import (
    DEFAULT_OPTIMIZERS as DEFAULT_OPTIMIZERS,
    build_parser as build_parser,
    main as main,
)
from fnn.cli._problem import DEFAULT_LEARNING_RATES as DEFAULT_LEARNING_RATES

__all__ = ["DEFAULT_LEARNING_RATES", "DEFAULT_OPTIMIZERS", "build_parser", "main"]


def __dir__() -> list[str]:
    """The public API only (implementation modules stay out of ``dir``)."""
    return sorted(__all__)
