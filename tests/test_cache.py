"""Compiled programs are cached on structure: objects built from the same description compare
equal and share programs, and the caches are bounded (they keep at most ``maxsize`` entries,
so a long session does not keep every network and optimizer it made alive)."""

from __future__ import annotations

import gc
import weakref

import chex
import jax
import numpy as np
import pytest

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


def test_networks_that_differ_only_in_their_initializers_share_every_program_but_init(compiles):
    """An initializer study: the programs that run the layers on given params (the epoch, the
    validation pass, evaluate, predict, train and eval steps, gradcheck's) are keyed without the
    initializers, so a second network drawn otherwise compiles none of them again; its params
    are still drawn its own way, and it trains exactly as the first network does from them."""
    x = np.random.default_rng(1).normal(size=(10, 3))
    y = np.arange(10) % 2
    loss = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)
    opt = fnn.optimizers.sgd(0.1)

    def everything(net, params):
        result = fnn.fit(net, params, opt, loss, x, y, batch_size=4, epochs=2, validation_data=(x, y), verbose=0)
        fnn.evaluate(net, params, loss, x, y)
        fnn.predict(net, params, x)
        fnn.train_step(net, loss, opt)(jax.tree.map(jax.numpy.copy, params), opt.init(params), x, y)
        fnn.eval_step(net, loss)(params, x, y)
        fnn.gradcheck(net, loss, params, x[:3], y[:3])
        return result

    default = fnn.serial(fnn.Dense(4, "tanh"), fnn.serial(fnn.Dense(2)))
    drawn = fnn.serial(
        fnn.Dense(4, "tanh", kernel_initializer="he_normal", bias_initializer="ones"),
        fnn.serial(fnn.Dense(2, kernel_initializer="orthogonal")),
    )
    params = drawn.init(jax.random.PRNGKey(0), (3,))
    assert params[0]["b"].tolist() == [1.0] * 4  # drawn its own way
    first = everything(default, params)
    with compiles() as c:
        second = everything(drawn, params)
    assert c.count == 0
    chex.assert_trees_all_equal(second.params, first.params)
    assert second.history.history == first.history.history


def test_a_callback_setting_the_rate_probes_each_optimizer_family_once(compiles):
    """fit checks that the optimizer's update reads the rate such a callback sets (one small
    program): keyed on the update and the state's structure, not on the optimizer's values."""
    x, y = np.ones((4, 2)), np.zeros((4, 1))
    net = fnn.mlp([1])
    params = net.init(jax.random.PRNGKey(0), (2,))

    def run(lr):
        cb = fnn.callbacks.ReduceLROnPlateau(monitor="loss", patience=0)
        return fnn.fit(net, params, fnn.optimizers.adam(lr), "mse", x, y, epochs=2, callbacks=[cb], verbose=0)

    run(1e-3)
    with compiles() as c:
        run(2e-3)
    assert c.count == 0


# A loop's variable at a module's top level, read by functions made anew in the loop
# (test_functions_made_anew_are_keyed_by_identity_never_by_what_they_seem_to_hold).
SCALE = 1.0


def test_functions_made_anew_are_keyed_by_identity_never_by_what_they_seem_to_hold():
    """Lambdas made in a loop at a module's top level are alike in code and hold nothing, but read
    the loop's variable as a global when a program is traced: keyed by identity, as Python
    compares them, each computes with its own value (keyed by code, the second lambda got the
    first's program and its numbers). The same for an optimizer's schedule and a loss."""
    global SCALE
    x = np.ones((4, 2))
    outputs, losses, params = [], [], []
    net0 = fnn.mlp([1])
    p0 = net0.init(jax.random.PRNGKey(0), (2,))
    for SCALE in (1.0, 10.0):
        layer = fnn.Layer(
            lambda key, shape, dtype=None: (tuple(shape), {}),
            lambda p, x, *, key=None, train=False: (SCALE * x, ()),
            lambda p, c, dy: ({}, SCALE * dy),
            "scale",
        )
        outputs.append(fnn.predict(fnn.serial(layer), [{}], x))
        loss = fnn.losses.custom("scaled", lambda t, q: SCALE * jax.numpy.mean((t - q) ** 2, axis=-1))
        losses.append(fnn.evaluate(net0, p0, loss, x, np.zeros((4, 1)))["loss"])
        opt = fnn.optimizers.sgd(lambda step: SCALE * 0.01)
        params.append(fnn.fit(net0, p0, opt, "mse", x, np.ones((4, 1)), epochs=1, verbose=0).params)
    np.testing.assert_array_equal(outputs[1], 10.0 * outputs[0])
    assert losses[1] == pytest.approx(10.0 * losses[0], rel=1e-6)
    assert not np.allclose(np.asarray(params[0][0]["w"]), np.asarray(params[1][0]["w"]))


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
