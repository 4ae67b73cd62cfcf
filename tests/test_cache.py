"""Compiled programs are cached on structure: objects built from the same description compare
equal and share programs, and the caches are bounded (they keep at most ``maxsize`` entries,
so a long session does not keep every network and optimizer it made alive)."""

from __future__ import annotations

import gc
import weakref

import chex
import jax
import numpy as np

import fnn
from fnn._cache import structural_cache


def test_built_in_objects_compare_by_description():
    assert fnn.mlp([8, 3], activation="tanh") == fnn.mlp([8, 3], activation="tanh")
    assert hash(fnn.mlp([8, 3])) == hash(fnn.mlp([8, 3]))
    assert fnn.mlp([8, 3]) != fnn.mlp([8, 4]) and fnn.mlp([8, 3]) != fnn.mlp([8, 3], activation="tanh")
    assert fnn.Dense(4, "relu") == fnn.Dense(4, "relu") != fnn.Dense(4, "relu", use_bias=False)
    assert fnn.Dropout(0.1) == fnn.Dropout(0.1) != fnn.Dropout(0.2)
    assert fnn.optimizers.adam(1e-3).update == fnn.optimizers.adam(0.1, b2=0.99).update
    chained = fnn.optimizers.chain(fnn.optimizers.clip_by_global_norm(1.0), fnn.optimizers.sgd(0.1))
    assert (
        chained.update == fnn.optimizers.chain(fnn.optimizers.clip_by_global_norm(1.0), fnn.optimizers.sgd(0.5)).update
    )


def test_a_new_equal_network_and_optimizer_compile_nothing(compiles):
    x = np.random.default_rng(0).normal(size=(12, 3)).astype(np.float32)
    y = np.arange(12) % 2
    loss = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)

    def run(lr):
        net = fnn.mlp([5, 2])
        params = net.init(jax.random.PRNGKey(0), (3,))
        return fnn.fit(net, params, fnn.optimizers.adam(lr), loss, x, y, batch_size=4, epochs=1, verbose=0)

    run(1e-3)
    with compiles() as c:
        run(1e-2)  # new network object, new optimizer object: the same structure
    assert c.count == 0


def test_structural_cache_is_bounded_and_lets_old_keys_go():
    calls = []

    @structural_cache(maxsize=2)
    def build(key):
        calls.append(id(key))
        return object()

    class Key:  # hashable by identity, weakly referenceable
        pass

    first = Key()
    alive = weakref.ref(first)
    build(first)
    build(first)
    assert len(calls) == 1  # cached
    for _ in range(2):
        build(Key())  # two newer entries push the first one out
    del first
    gc.collect()
    assert alive() is None
    unhashable = {"a": 1}
    assert build(unhashable) is not build(unhashable)  # not cached, still computed


def test_clear_caches_lets_the_networks_fit_kept_go_and_the_next_fit_compiles_the_same(compiles):
    """fnn keeps the last networks it ran (and what they hold) with their programs;
    fnn.clear_caches() drops them and JAX's compiled programs: the next fit compiles again and
    trains to the same numbers."""
    x = np.random.default_rng(1).normal(size=(8, 3)).astype(np.float32)
    y = x[:, :1] - x[:, 1:2]

    def run():
        net = fnn.mlp([7, 1])
        params = net.init(jax.random.PRNGKey(0), (3,))
        return net, fnn.fit(net, params, "sgd", "mse", x, y, batch_size=4, epochs=2, verbose=0).params

    net, first = run()
    kept = weakref.ref(net)
    del net
    gc.collect()
    assert kept() is not None  # held by the caches of its programs
    fnn.clear_caches()
    gc.collect()
    assert kept() is None
    with compiles() as c:
        _, again = run()
    assert c.count > 0
    chex.assert_trees_all_equal(again, first)
