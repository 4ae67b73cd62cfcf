"""fnn._per_key: a draw vmapped over keys (or over the data it folds in) equals the draws of
each key alone, for JAX's rbg and unsafe_rbg keys, whose own vmap does not; threefry keys
trace exactly as without it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn._per_key import is_threefry, per_key


def _fold_split(key, data):
    return jax.random.key_data(jax.random.split(jax.random.fold_in(key, data)))


@pytest.mark.parametrize("impl", ["rbg", "unsafe_rbg"])
def test_vmapped_draws_are_each_keys_own(impl):
    """Over stacked keys (Dropout's mask, fit_many's models), over the data folded in with one
    key (a block of epochs), and both nested: each row is the unbatched call's."""
    keys = jax.random.split(jax.random.key(3, impl=impl), 4)
    mask = lambda k: jax.random.bernoulli(k, 0.5, (3, 5))

    @jax.jit  # one program for all three
    def drawn(keys):
        return (
            jax.vmap(lambda k: per_key(mask, k))(keys),
            jax.vmap(lambda e: per_key(_fold_split, keys[0], e))(jnp.arange(3)),
            jax.vmap(lambda e: jax.vmap(lambda k: per_key(_fold_split, k, e))(keys))(jnp.arange(2)),
        )

    masks, by_epoch, nested = drawn(keys)
    for i in range(4):
        np.testing.assert_array_equal(masks[i], mask(keys[i]))
    for e in range(3):
        np.testing.assert_array_equal(by_epoch[e], _fold_split(keys[0], e))
    for e in range(2):
        for i in range(4):
            np.testing.assert_array_equal(nested[e, i], _fold_split(keys[i], e))
    # unbatched, it is the draw itself
    np.testing.assert_array_equal(per_key(mask, keys[1]), mask(keys[1]))


def test_threefry_keys_trace_as_the_draw_itself():
    """The default path is untouched: the same jaxpr with and without per_key, raw or typed."""
    for key in (jax.random.PRNGKey(1), jax.random.key(1)):
        assert is_threefry(key)
        plain = jax.make_jaxpr(jax.vmap(lambda e: _fold_split(key, e)))(jnp.arange(3))
        wrapped = jax.make_jaxpr(jax.vmap(lambda e: per_key(_fold_split, key, e)))(jnp.arange(3))
        assert str(plain) == str(wrapped)
    assert not is_threefry(jax.random.key(1, impl="rbg"))
    with jax.default_prng_impl("unsafe_rbg"):  # raw keys are then that kind's
        assert not is_threefry(jax.random.PRNGKey(1))
