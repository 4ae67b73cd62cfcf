"""A Ctrl-C that Python drops while fnn (and JAX) import, raised once the import is done.

JAX registers a garbage-collector callback; a Ctrl-C that lands while it runs is reported by
Python as "Exception ignored" (``sys.unraisablehook``) and the program goes on, so ``fnn
train`` pressed in its first half-second trained to the end. This module imports nothing
heavy, so that ``fnn/__init__.py`` can wrap its imports in :func:`ctrl_c_kept` first.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def ctrl_c_kept() -> Iterator[None]:
    """Within the block, a ``KeyboardInterrupt`` Python drops (reports as unraisable) is kept,
    not printed; the block, ending normally, raises it: the import ends as Python ends one
    that a Ctrl-C reached. Other unraisable exceptions go to the hook in place."""
    dropped: list[BaseException] = []
    before = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            dropped.append(unraisable.exc_value)
            return
        before(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        if sys.unraisablehook is hook:  # one set meanwhile (a module's own) is left in place
            sys.unraisablehook = before
    if dropped:
        raise dropped[0]
