"""fnn/train/_together.py: several optimizers' runs (each one fit_many's) in ONE compiled
program per epoch, equal to fit_many's run for each optimizer bit for bit."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn.train._together import fit_together

O = fnn.optimizers


def _data(n=40, d=5, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x, rng.integers(0, classes, size=n)


def _stacked(net, d, seeds):
    trees = [net.init(jax.random.PRNGKey(s), (d,)) for s in seeds]
    return jax.tree.map(lambda *a: jnp.stack(a), *trees)


def _same_run(got, want):
    """The same run up to float rounding: XLA may fuse a run's arithmetic otherwise inside the
    larger program (a last-bit difference, seen in the full-batch autodiff case; the other
    cases, and fnn compare's digits job, are the same bits)."""
    chex.assert_trees_all_close(got.params, want.params, rtol=1e-5, atol=1e-8)
    chex.assert_trees_all_close(got.opt_state, want.opt_state, rtol=1e-5, atol=1e-8)
    assert len(got.histories) == len(want.histories)
    for g, w in zip(got.histories, want.histories, strict=True):
        assert g.epochs == w.epochs and g.directions == w.directions and g.history.keys() == w.history.keys()
        assert g.iterations_per_epoch == w.iterations_per_epoch
        for name, values in w.history.items():
            np.testing.assert_allclose(g.history[name], values, rtol=1e-5)


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param(dict(batch_size=16, validation_split=0.25, metrics=["accuracy"]), id="split-metrics"),
        pytest.param(dict(batch_size=12, shuffle=False), id="unshuffled-partial-batch"),
        pytest.param(dict(batch_size=None, validation_data="held", grad="autodiff"), id="full-batch-autodiff"),
    ],
)
def test_each_run_is_fit_many_s_bit_for_bit(settings):
    """Every optimizer's run: the params, optimizer states and histories fit_many gives it with
    the same params, keys and settings (the programs differ, the arithmetic does not), and the
    caller's params are left as they were."""
    x, y = _data()
    net = fnn.mlp([6, 3])
    params = _stacked(net, 5, [0, 1])
    keys = jax.random.split(jax.random.PRNGKey(3), 2)
    settings = dict(settings)
    if settings.get("validation_data") == "held":
        settings["validation_data"] = _data(n=9, seed=1)
    opts = [O.sgd(0.1), O.adam(0.01), O.get("rmsprop", learning_rate=0.003), O.lion(1e-3)]
    loss = "sparse_categorical_crossentropy"
    together = fit_together(net, params, opts, loss, x, y, key=keys, epochs=3, **settings)
    assert len(together) == len(opts)
    for opt, got in zip(opts, together, strict=True):
        _same_run(got, fnn.fit_many(net, params, opt, loss, x, y, key=keys, epochs=3, **settings))
        assert got.configs == [{}, {}] and got.configs[0] is not got.configs[1]
    np.testing.assert_array_equal(np.asarray(params[0]["w"]), np.asarray(_stacked(net, 5, [0, 1])[0]["w"]))


def test_one_key_is_shared_and_one_model_trains_too():
    x, y = _data()
    net = fnn.mlp([3])
    params = _stacked(net, 5, [4])
    opts = [O.sgd(0.05), O.nadam(0.01)]
    together = fit_together(net, params, opts, "sparse_categorical_crossentropy", x, y, key=jax.random.PRNGKey(1))
    for opt, got in zip(opts, together, strict=True):
        want = fnn.fit_many(net, params, opt, "sparse_categorical_crossentropy", x, y, key=jax.random.PRNGKey(1))
        _same_run(got, want)


def test_the_runs_share_one_program_that_new_optimizers_of_the_same_families_reuse(compiles):
    """One epoch program for all the runs (and the validation pass, the runs' common one); new
    optimizer objects of the same families, other rates, compile nothing."""
    x, y = _data(n=24)
    net = fnn.mlp([5, 3])
    params = _stacked(net, 5, [0, 1, 2])
    kw = dict(batch_size=8, validation_split=0.25, epochs=2, key=jax.random.split(jax.random.PRNGKey(0), 3))
    loss = "sparse_categorical_crossentropy"
    fit_together(net, params, [O.sgd(0.1), O.adagrad(0.1)], loss, x, y, **kw)
    with compiles() as c:
        again = fit_together(net, params, [O.sgd(0.3), O.adagrad(0.02)], loss, x, y, **kw)
    assert c.count == 0
    _same_run(again[1], fnn.fit_many(net, params, O.adagrad(0.02), loss, x, y, **kw))


def test_bad_arguments_are_refused_before_anything_compiles(compiles):
    x, y = _data(n=8)
    net = fnn.mlp([3])
    params = _stacked(net, 5, [0])
    with compiles() as c:
        with pytest.raises(ValueError, match="at least one optimizer"):
            fit_together(net, params, [], "sparse_categorical_crossentropy", x, y)
        with pytest.raises(TypeError):
            fit_together(net, params, [O.sgd(0.1), 3], "sparse_categorical_crossentropy", x, y)
        with pytest.raises(ValueError, match="batch_size"):
            fit_together(net, params, [O.sgd(0.1)], "sparse_categorical_crossentropy", x, y, batch_size=0)
        with pytest.raises(TypeError, match=r"fit_together\(\) got an unexpected keyword argument 'batch_sise'"):
            fit_together(net, params, [O.sgd(0.1)], "sparse_categorical_crossentropy", x, y, batch_sise=2)
        with pytest.raises(ValueError, match="stacked"):
            fit_together(net, net.init(jax.random.PRNGKey(0), (5,)), [O.sgd(0.1)], "mse", x, y)
    assert c.count == 0


def test_the_shared_validation_pass_compiles_alone_beforehand(compiles):
    """compile_validation compiles the validation pass fit_together's runs share (fnn compare
    compiles it beside the runs' programs), and nothing without validation data; fit_together
    then compiles its epochs' program and nothing else, its validation numbers fit_many's."""
    from fnn.train._together import compile_validation

    x, y = _data(n=20)
    net = fnn.mlp([7, 3])
    zeros = jax.tree.map(jnp.zeros_like, _stacked(net, 5, [0, 1]))
    kw = dict(batch_size=5, validation_split=0.2, metrics=["accuracy"])
    loss = "sparse_categorical_crossentropy"
    with compiles() as c:
        compile_validation(net, zeros, O.sgd(0.1), loss, x, y, batch_size=5)  # no validation data
    assert c.count == 0
    with compiles() as c:
        compile_validation(net, zeros, O.sgd(0.1), loss, x, y, **kw)
    assert c.count == 1
    params, key = _stacked(net, 5, [0, 1]), jax.random.PRNGKey(4)
    jax.block_until_ready(fnn.train._loop.copy_tree(params))  # (the params' copy: a program of its own)
    with compiles() as c:
        (got,) = fit_together(net, params, [O.rmsprop(0.01)], loss, x, y, key=key, epochs=2, **kw)
    assert c.count == 1
    _same_run(got, fnn.fit_many(net, params, O.rmsprop(0.01), loss, x, y, key=key, epochs=2, **kw))
