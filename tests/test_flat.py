"""fnn.train._flat: an optimizer's update on one vector of all the leaves, taken only where its
jaxpr proves it the same as leaf by leaf, and then bit for bit the same."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fnn
from fnn import optimizers as O
from fnn.train._flat import flat_pays, flat_plan
from fnn.train._together import fit_together

# The built-in optimizers whose update reads a leaf as a whole (a norm, factored moments, an
# orthogonalisation): they keep their leaves.
NOT_ELEMENTWISE = {"adafactor", "lamb", "muon"}


def _params(sizes=(5, 4, 3), n_in=6, seed=0):
    return fnn.mlp(list(sizes)).init(jax.random.PRNGKey(seed), (n_in,))


def _grads(params, seed):
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda a: jnp.asarray(rng.standard_normal(a.shape), a.dtype), params)


def _steps(opt, plan, params, n=3):
    """n updates of the leaves and of the vector: ((params, state), (params, state)) after them.
    Op by op: the plan promises the same arithmetic, which XLA may then round otherwise (an FMA
    where a multiply and an add land in one kernel of the leaves' program and two of the
    vector's), as it may any two programs."""
    with jax.disable_jit():
        p1, s1 = params, opt.init(params)
        p2, s2 = params, plan.collapse(s1)
        for t in range(n):
            g = _grads(params, t)
            u1, s1 = opt.update(g, s1, p1)
            u2, s2 = plan.update(g, s2, p2)
            p1, p2 = fnn.optimizers.apply_updates(p1, u1), fnn.optimizers.apply_updates(p2, u2)
    return (p1, s1), (p2, plan.expand(s2))


def _build(name):
    try:
        return O.get(name, learning_rate=0.01)
    except TypeError:  # an optimizer without a learning rate
        return O.get(name)


@pytest.mark.parametrize("name", O.names())
def test_every_elementwise_optimizer_updates_one_vector_with_the_leaves_bits(name):
    params = _params()
    opt = _build(name)
    plan = flat_plan(opt.update, params, opt.init(params))
    if name in NOT_ELEMENTWISE:
        assert plan is None
        return
    assert plan is not None
    leaves, vector = _steps(opt, plan, params)
    chex.assert_trees_all_equal(leaves, vector)  # exactly, float64
    chex.assert_trees_all_equal_structs(leaves[1], opt.init(params))


def test_float32_and_an_optimizer_of_options_update_alike():
    params = jax.tree.map(lambda a: a.astype(jnp.float32), _params())
    opt = O.adamw(0.01, b1=0.8, weight_decay=0.1, amsgrad=True)
    plan = flat_plan(opt.update, params, opt.init(params))
    assert plan is not None
    leaves, vector = _steps(opt, plan, params, n=4)
    chex.assert_trees_all_equal(leaves, vector)
    assert jax.tree.leaves(vector)[0].dtype == jnp.float32


@settings(max_examples=4, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 5), min_size=1, max_size=3),
    n_in=st.integers(1, 4),
    name=st.sampled_from(["sgd", "momentum", "adam", "nadam", "lion", "adadelta"]),
)
def test_random_networks_update_one_vector_as_their_leaves(sizes, n_in, name):
    params = _params(sizes, n_in, seed=len(sizes))
    opt = _build(name)
    state = opt.init(params)
    plan = flat_plan(opt.update, params, state)
    assert plan is not None
    chex.assert_trees_all_equal(plan.expand(plan.collapse(state)), state)
    with jax.disable_jit():  # op by op: the same arithmetic, no compilation per example
        g = _grads(params, 1)
        u1, s1 = opt.update(g, state, params)
        u2, s2 = plan.update(g, plan.collapse(state), params)
    chex.assert_trees_all_equal((u1, s1), (u2, plan.expand(s2)))


def _sgd_like(fn):
    return lambda g, s, p: (jax.tree.map(fn, g, p), s)


def _leafwise(fn):
    """An update that gives leaf i ``fn(i, leaves of g)``."""

    def update(g, s, p):
        leaves = jax.tree.leaves(g)
        return jax.tree.unflatten(jax.tree.structure(g), [fn(i, leaves) for i in range(len(leaves))]), s

    return update


@pytest.mark.parametrize(
    "update",
    [
        _sgd_like(lambda g, p: -0.1 * g - (0.01 * p if p.ndim > 1 else 0.0)),  # biases left out by rank
        _sgd_like(lambda g, p: -g / g.size),  # a leaf's size read as a number
        _sgd_like(lambda g, p: -g / jnp.linalg.norm(g)),  # a per-leaf norm
        _sgd_like(lambda g, p: -g.T.T),  # a transpose, however harmless
        _sgd_like(lambda g, p: -g * np.ones(g.shape, g.dtype)),  # an array of values
        _sgd_like(lambda g, p: jnp.zeros_like(g)),  # an update that reads no leaf
        _sgd_like(lambda g, p: jax.debug.print("x") or -g),  # an effect
        _sgd_like(lambda g, p: jax.lax.cond(jnp.sum(g) > 0, lambda: -g, lambda: g)),  # control flow
        lambda g, s, p: (jax.tree.map(lambda x: -x / sum(jnp.sum(y * y) for y in jax.tree.leaves(g)), g), s),
        _leafwise(lambda i, leaves: -(0.1 * (i + 1)) * leaves[i]),  # a rate per position
        _leafwise(lambda i, leaves: leaves[[2, 1, 0, 3, 4, 5][i]]),  # leaves of one shape swapped
        _leafwise(lambda i, leaves: leaves[i] + (leaves[0] if leaves[i].shape == leaves[0].shape else 0)),
    ],
    ids=[
        "mask by rank",
        "size",
        "norm",
        "transpose",
        "array",
        "zeros",
        "effect",
        "cond",
        "global norm",
        "rate per position",
        "swapped",
        "reads another leaf",
    ],
)
def test_updates_that_read_leaves_otherwise_keep_them(update):
    assert flat_plan(update, _params(), ()) is None


def test_a_rule_the_vector_would_read_otherwise_keeps_the_leaves():
    # every leaf is 2-D, the vector 1-D: decaying 2-D leaves would decay none of the vector
    params = {"a": jnp.ones((3, 3)), "b": jnp.ones((2, 3))}
    decay_matrices = _sgd_like(lambda g, p: -0.1 * g - (0.01 * p if p.ndim == 2 else 0.0))
    assert flat_plan(decay_matrices, params, ()) is None
    # a rule true of every leaf and of the vector alike is the same rule
    decay_arrays = _sgd_like(lambda g, p: -0.1 * g - (0.01 * p if p.ndim >= 1 else 0.0))
    assert flat_plan(decay_arrays, params, ()) is not None


def test_elementwise_updates_with_nested_calls_run_flat():
    update = _sgd_like(lambda g, p: jnp.where(g > 0, jnp.clip(g, -1, 1), jnp.maximum(g, -0.5)) - 1e-3 * p)
    params = _params()
    plan = flat_plan(update, params, ())
    assert plan is not None
    g = _grads(params, 0)
    chex.assert_trees_all_equal(plan.update(g, (), params), update(g, (), params))


def test_params_it_cannot_concatenate_keep_their_leaves():
    opt = O.sgd(0.1)
    mixed = {"a": jnp.ones(3, jnp.float32), "b": jnp.ones(2, jnp.float64)}
    assert flat_plan(opt.update, mixed, opt.init(mixed)) is None
    one = {"a": jnp.ones(3)}
    assert flat_plan(opt.update, one, opt.init(one)) is None
    ints = {"a": jnp.ones(3), "b": jnp.ones(2, jnp.int32)}
    assert flat_plan(lambda g, s, p: (g, s), ints, ()) is None
    # an update that fails on its own arguments: the step reports it, not the plan
    assert flat_plan(lambda g, s, p: 1 / 0, _params(), ()) is None


def test_gradients_of_another_dtype_are_updated_leaf_by_leaf():
    params = _params()  # float64
    opt = O.adam(0.01)
    state = opt.init(params)
    plan = flat_plan(opt.update, params, state)
    g32 = jax.tree.map(lambda a: a.astype(jnp.float32), _grads(params, 0))
    u1, s1 = opt.update(g32, state, params)
    u2, s2 = plan.update(g32, plan.collapse(state), params)
    chex.assert_trees_all_equal((u1, s1), (u2, plan.expand(s2)))


def test_the_vector_is_taken_from_batch_32_up_to_65536_parameters():
    small = [jnp.zeros((64, 64)), jnp.zeros(64)]
    assert flat_pays(32, small) and flat_pays(1024, small)
    assert not flat_pays(8, small) and not flat_pays(1, small)
    assert flat_pays(32, [jnp.zeros((256, 256)), jnp.zeros(0)]) and not flat_pays(
        32, [jnp.zeros((256, 256)), jnp.zeros(1)]
    )


def test_fit_together_trains_the_same_bits_as_with_the_leaves_apart(monkeypatch):
    import fnn.train._epoch as epoch_module

    net = fnn.mlp([8, 3], activation="tanh")
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((70, 4)), rng.integers(0, 3, 70)
    params = jax.vmap(lambda k: net.init(k, (4,)))(jax.random.split(jax.random.PRNGKey(1), 2))
    opts = [O.nadam(0.01), O.sgd(0.1, momentum=0.9)]
    plans = []
    monkeypatch.setattr(epoch_module, "flat_plan", lambda *a: plans.append(flat_plan(*a)) or plans[-1])
    args = (net, params, opts, "sparse_categorical_crossentropy", x, y)
    kwargs = dict(epochs=2, batch_size=32, key=jax.random.split(jax.random.PRNGKey(2), 2))
    flat = fit_together(*args, **kwargs)
    assert len(plans) == 2 and all(plan is not None for plan in plans)  # both runs' epochs, traced once
    monkeypatch.setattr(epoch_module, "flat_plan", lambda *a: None)
    fnn.clear_caches()
    apart = fit_together(*args, **kwargs)
    fnn.clear_caches()
    for a, b in zip(flat, apart, strict=True):
        chex.assert_trees_all_equal((a.params, a.opt_state), (b.params, b.opt_state))
        assert [h.history for h in a.histories] == [h.history for h in b.histories]
    # fit and fit_many keep the leaves: at batch 1 and at 269,322 parameters the vector trains slower
    plans.clear()
    monkeypatch.setattr(epoch_module, "flat_plan", lambda *a: plans.append(a))
    fnn.fit(
        net,
        jax.tree.map(lambda a: a[0], params),
        opts[0],
        "sparse_categorical_crossentropy",
        x,
        y,
        batch_size=32,
        verbose=0,
    )
    assert plans == []


def test_a_stateless_optimizer_trains_together_as_in_fit_many():
    net = fnn.mlp([8, 3], activation="tanh")
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((70, 4)), rng.integers(0, 3, 70)
    params = jax.vmap(lambda k: net.init(k, (4,)))(jax.random.split(jax.random.PRNGKey(1), 2))
    descent = O.stateless(lambda u, p: jax.tree.map(lambda g: -0.1 * g, u))
    assert jax.tree.leaves(descent.init(params)) == []  # a state without arrays, mapped over no leaf
    keys = jax.random.split(jax.random.PRNGKey(2), 2)
    args = (net, params, descent, "sparse_categorical_crossentropy", x, y)
    (together,) = fit_together(*args[:2], [descent], *args[3:], epochs=2, batch_size=32, key=keys)
    many = fnn.fit_many(*args, epochs=2, batch_size=32, key=keys)
    chex.assert_trees_all_close(together.params, many.params, rtol=1e-12, atol=1e-12)


def test_keys_closed_over_are_constants_and_traced_values_no_plan():
    params = _params()
    key = jax.random.key(0)
    noisy = _sgd_like(lambda g, p: -g * jax.random.normal(key, ()))
    plan = flat_plan(noisy, params, ())
    assert plan is not None
    g = _grads(params, 0)
    with jax.disable_jit():
        chex.assert_trees_all_equal(plan.update(g, (), params), noisy(g, (), params))
    # a value of an outer trace, closed over, is no constant a plan could keep
    assert jax.jit(lambda lr: flat_plan(_sgd_like(lambda g, p: -lr * g), params, ()) is None)(0.1)


def test_a_custom_derivative_keeps_the_leaves():
    @jax.custom_jvp
    def same(x):
        return x * 1.0

    same.defjvp(lambda primals, tangents: (same(primals[0]), tangents[0] * jnp.mean(primals[0])))
    assert flat_plan(_sgd_like(lambda g, p: -same(g)), _params(), ()) is None


def test_params_of_another_dtype_or_none_are_updated_leaf_by_leaf():
    params = _params()
    opt = O.sgd(0.1, momentum=0.9)
    state = opt.init(params)
    plan = flat_plan(opt.update, params, state)
    g = _grads(params, 0)
    for p in (jax.tree.map(lambda a: a.astype(jnp.float64), params), None):
        u1, s1 = opt.update(g, state, p)
        u2, s2 = plan.update(g, plan.collapse(state), p)
        chex.assert_trees_all_equal((u1, s1), (u2, plan.expand(s2)))


def test_low_precision_params_keep_their_leaves():
    """XLA:CPU computes a bfloat16 chain in float32 within a kernel and rounds where kernels end:
    another split into kernels moves a bfloat16 result by whole bits."""
    for dtype in (jnp.bfloat16, jnp.float16):
        params = jax.tree.map(lambda a: a.astype(dtype), _params())
        opt = O.sgd(0.05, momentum=0.9)
        assert flat_plan(opt.update, params, opt.init(params)) is None
