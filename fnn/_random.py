"""Randomness drawn on the host from jax PRNG keys: the one rule by which a key gives a sample
order (:func:`fnn.data.permutation`, and fit's shuffling, which reads its keys back from the
device in blocks and draws each epoch's order from the bits)."""

from __future__ import annotations

import numpy as np


def permutation_of_bits(bits: np.ndarray, n: int) -> np.ndarray:
    """A permutation of ``range(n)`` (int64) from a key's raw bits (``jax.random.key_data``):
    the bits seed NumPy's PCG64 (``np.random.default_rng(bits).permutation(n)``)."""
    return np.random.default_rng(np.asarray(bits, np.uint32).ravel()).permutation(n)
