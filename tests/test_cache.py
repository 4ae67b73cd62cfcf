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


def test_optax_optimizers_and_inline_factories_are_keyed_by_what_they_compute(compiles):
    """An optax optimizer is closures made anew by every call: keyed by their code and the values
    they hold, ``optax.adam(1e-3)`` twice shares one epoch; ``optax.sgd`` at another rate holds
    it in the program, compiles it, and trains with it; optax's injected adam holds dicts,
    which could be changed in place: keyed by identity, it compiles again. A factory written
    inline for fnn's inject_hyperparams (a new lambda each time) shares the epoch across its
    values."""
    import optax

    x, y = np.random.default_rng(2).normal(size=(8, 3)), np.random.default_rng(3).normal(size=(8, 1))
    net = fnn.mlp([1])
    params = net.init(jax.random.PRNGKey(0), (3,))
    fit = lambda opt: fnn.fit(net, params, opt, "mse", x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    fit(optax.adam(1e-3))
    slow = fit(optax.sgd(0.1))
    clipped = lambda lr, c: fnn.optimizers.inject_hyperparams(
        lambda learning_rate, max_norm: fnn.optimizers.chain(
            fnn.optimizers.clip_by_global_norm(max_norm), fnn.optimizers.sgd(learning_rate)
        )
    )(lr, c)
    fit(clipped(0.1, 1.0))
    with compiles() as c:
        fit(optax.adam(1e-3))
        fit(clipped(0.2, 0.5))
    assert c.count == 0
    with compiles() as c:
        fast = fit(optax.sgd(0.3))
    assert c.count == 1
    # one epoch of 2 full-batch sgd steps from the same params: the other rate was used
    assert not np.allclose(np.asarray(fast.params[0]["w"]), np.asarray(slow.params[0]["w"]))


def _scale_layer(c):
    """A custom layer made by a factory: new closures at every call, ``y = c * x``."""

    def init(key, input_shape, dtype=jax.numpy.float32):
        return tuple(input_shape), {}

    def forward(params, x, *, key=None, train=False):
        return c * x, ()

    def backward(params, cache, dy):
        return {}, c * dy

    return fnn.Layer(init, forward, backward, "scale")


def test_custom_layers_made_anew_by_a_factory_share_programs_for_equal_values(compiles):
    x, y = np.ones((4, 2)), np.zeros((4, 1))

    def run(c):
        net = fnn.serial(_scale_layer(c), fnn.Dense(1))
        params = net.init(jax.random.PRNGKey(0), (2,))
        return fnn.fit(net, params, fnn.optimizers.sgd(0.1), "mse", x, y, epochs=1, verbose=0)

    two = run(2.0)
    with compiles() as c:
        again = run(2.0)
    assert c.count == 0
    chex.assert_trees_all_equal(again.params, two.params)
    with compiles() as c:
        three = run(3.0)
    assert c.count == 2  # another value held: another network, its init and epoch compiled, computing with it
    assert not np.allclose(np.asarray(three.params[1]["w"]), np.asarray(two.params[1]["w"]))


def test_a_layer_reading_a_list_changed_in_place_never_lends_its_program_to_an_equal_copy():
    """A factory's layer scaling by ``held[0]``: the first network's list is changed after its fit,
    and a second network holding an equal copy of the list's old contents is predicted on data
    of another size (a program traced again through the function it was made with). Keyed by
    value alone, that trace read the changed list; the copy's own numbers come out."""

    def scaled_by(held):
        def forward(params, x, *, key=None, train=False):
            return held[0] * x, ()

        return fnn.Layer(lambda key, shape, dtype=None: (tuple(shape), {}), forward, lambda p, c, dy: ({}, dy), "s")

    first = [2.0]
    net = fnn.serial(scaled_by(first))
    fnn.predict(net, [{}], np.ones((4, 1)), batch_size=2)
    first[0] = 5.0
    copy = fnn.serial(scaled_by([2.0]))
    np.testing.assert_array_equal(fnn.predict(copy, [{}], np.ones((6, 1)), batch_size=2), 2.0 * np.ones((6, 1)))


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
