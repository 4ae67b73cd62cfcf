"""PRNG keys as arguments, typed and raw, as ``fnn._keys`` checks them."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from fnn import _keys as K


def test_keys_typed_and_raw():
    raw, typed = jax.random.PRNGKey(0), jax.random.key(0)
    assert K.key("key", raw) is raw and K.key("key", typed) is typed
    np.testing.assert_array_equal(K.key_data(typed), jax.random.key_data(typed))
    np.testing.assert_array_equal(K.key_data(raw), raw)
    for bad in (3, np.zeros(2, np.float32), "k"):
        with pytest.raises(TypeError, match="^key must be a jax PRNG key"):
            K.key("key", bad)
    with pytest.raises(ValueError, match="ONE PRNG key"):
        K.key("key", jax.random.split(raw, 3))
