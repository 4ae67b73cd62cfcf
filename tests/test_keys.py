"""PRNG keys as arguments, typed and raw, as ``fnn._keys`` checks them."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import swapped

import fnn
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


def test_a_big_endian_raw_key_is_taken_by_its_value_wherever_keys_enter():
    """np.array([0, 5], '>u4') (a raw key read from a big-endian file) was 'not a jax PRNG key'
    for fit and init, JAX's 'Dtype >u4 is not a valid JAX array type' for fit_many and its
    'expected key_data.dtype = uint32' for apply: each now does what the native key does."""
    native, big = np.array([0, 5], np.uint32), swapped(np.array([0, 5], np.uint32))
    got = K.key("key", big)
    assert got.dtype == np.uint32 and got.dtype.isnative and got.tolist() == [0, 5]
    with pytest.raises(ValueError, match="ONE PRNG key"):
        K.key("key", swapped(np.zeros((3, 2), np.uint32)))

    net = fnn.serial(fnn.layers.Dense(3), fnn.layers.Dropout(0.5), fnn.layers.Dense(2))
    x, y = np.linspace(-1.0, 1.0, 8).reshape(4, 2), np.array([0, 1, 1, 0])
    params = net.init(big, (2,), jnp.float64)
    chex.assert_trees_all_equal(params, net.init(native, (2,), jnp.float64))
    np.testing.assert_array_equal(
        net.apply(params, x, key=big, train=True), net.apply(params, x, key=native, train=True)
    )
    run = dict(loss="sparse_categorical_crossentropy", x=x, y=y, epochs=1, batch_size=2, verbose=0)
    opt = fnn.optimizers.sgd(0.1)
    chex.assert_trees_all_equal(
        fnn.fit(net, params, opt, key=big, **run).params, fnn.fit(net, params, opt, key=native, **run).params
    )
    two = jax.tree.map(lambda a: np.stack([a, a]), params)
    stacked = np.stack([native, native + 1])
    for keys in (big, swapped(stacked)):
        chex.assert_trees_all_equal(
            fnn.fit_many(net, two, opt, key=keys, **run).params,
            fnn.fit_many(net, two, opt, key=np.asarray(keys, np.uint32), **run).params,
        )
