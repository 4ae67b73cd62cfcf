"""One sample given without its batch axis (a per-example ``jax.vmap``, a list of numbers):
recognised, and made a batch of one, by every entry point that runs a network on ``x``
(``Network.apply``, ``value_and_grad``, ``with_manual_vjp``, ``eval_step``)."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np


def one_sample(x: Any) -> bool:
    """Whether ``x`` (an array, or nested lists of numbers) is one sample without its batch
    axis: rank 1, as a per-example ``jax.vmap`` hands it (a batch has at least 2 axes, as no
    input shape is empty). Other inputs (a pytree of the user's network) are not."""
    shape = getattr(x, "shape", None)
    if shape is None and isinstance(x, (list, tuple)):
        try:
            shape = np.shape(x)
        except ValueError:  # ragged: a pytree, not an array
            return False
    return shape is not None and len(shape) == 1


def batch_of_one(a: Any) -> Any:
    """``a`` with a batch axis of 1 in front; a NumPy array where it was not a jax array (the
    entry points check its byte order)."""
    return a[None] if isinstance(a, jax.Array) else np.asarray(a)[None]
