"""fnn/_host_eval.py: programs of fills and copies evaluated on the host, equal to XLA's results
in every bit, dtype, weak type and placement; every other program left to the compiler."""

import chex
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings

import fnn
from fnn import _host_eval as host_eval
from fnn._host_eval import evaluate_on_host
from fnn.train._loop import _init_program, init_state


def _same_arrays(got, want):
    """Structure, shapes, dtypes, weak types, bits (NaNs included), placement and commitment."""
    assert jax.tree.structure(got) == jax.tree.structure(want)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        assert isinstance(a, jax.Array) and (a.shape, a.dtype, a.weak_type) == (b.shape, b.dtype, b.weak_type)
        bits = lambda x: np.ascontiguousarray(x).reshape(-1).view(np.uint8)
        np.testing.assert_array_equal(bits(a), bits(b))
        assert a.sharding == b.sharding and a._committed == b._committed


def _compiled(fn, *args):
    """``fn(*args)`` compiled by XLA: the reference."""
    return jax.jit(fn)(*args)


def _params(sizes=(4, 3), n_in=5, dtype=jnp.float32, models=0):
    """Params in ``net.init``'s structure and shapes (traced, not compiled), stacked over
    ``models`` when nonzero, drawn by NumPy: their values are only something to fill states
    from, and a compiled (or eagerly vmapped) init would cost a program per architecture."""
    net = fnn.mlp(list(sizes))
    rng = np.random.default_rng(0)
    shapes = jax.eval_shape(lambda: net.init(jax.random.PRNGKey(0), (n_in,)))
    lead = (models,) if models else ()
    return jax.device_put(jax.tree.map(lambda s: rng.uniform(-1.0, 1.0, lead + s.shape).astype(dtype), shapes))


@pytest.mark.parametrize("name", fnn.optimizers.names())
@pytest.mark.parametrize("models", [0, 3])
def test_every_builtin_optimizer_state_is_filled_on_the_host_as_xla_fills_it(name, models, compiles):
    """Each built-in family's init, alone and vmapped over 3 models, float32 and float64: no
    compilation, and the arrays XLA's program gives."""
    for dtype in (jnp.float32, jnp.float64):
        params = _params(dtype=dtype, models=models)
        opt = fnn.optimizers.get(name, learning_rate=0.03)
        template, values = opt.init.template, opt.init.arrays()
        program = _init_program(template, bool(models), True)
        with compiles() as c:
            state = init_state(opt, params, models=bool(models))
        assert c.count == 0
        _same_arrays(state, program(params, values))
        if not models:
            _same_arrays(state, opt.init(params))  # the optimizer's own init, called eagerly


@settings(max_examples=6)
@given(
    name=st.sampled_from(fnn.optimizers.names()),
    sizes=st.lists(st.integers(1, 5), min_size=1, max_size=3),
    n_in=st.integers(1, 4),
    models=st.sampled_from([0, 1, 2]),
    lr=st.floats(1e-6, 10.0, allow_subnormal=False),
)
def test_host_states_equal_xla_over_random_architectures(name, sizes, n_in, models, lr):
    params = _params(tuple(sizes), n_in, models=models)
    opt = fnn.optimizers.get(name, learning_rate=lr)
    program = _init_program(opt.init.template, bool(models), True)
    _same_arrays(init_state(opt, params, models=bool(models)), program(params, opt.init.arrays()))


def test_placement_follows_the_inputs_the_program_uses():
    """As jit places its results: committed to the device of a committed input the program
    uses (a copy of committed params), uncommitted where it uses only uncommitted inputs or
    none (jit drops the params adam's init only takes the shapes of)."""
    opt = fnn.optimizers.adam(1e-3)
    copies = jax.jit(lambda p: jax.tree.map(jnp.copy, p))
    for committed, params in [(False, _params()), (True, jax.device_put(_params(), jax.devices()[0]))]:
        state = init_state(opt, params)
        _same_arrays(state, _compiled(opt.init, params))
        assert {leaf._committed for leaf in jax.tree.leaves(state)} == {False}
        copied = evaluate_on_host(copies, params)
        _same_arrays(copied, copies(params))
        assert {leaf._committed for leaf in jax.tree.leaves(copied)} == {committed}


def test_every_leaf_is_a_buffer_of_its_own_that_fit_may_donate():
    """Leaves of equal fills never share memory (the epoch donates them), and a fit from the
    host state equals a fit from XLA's."""
    params = _params()
    opt = fnn.optimizers.adam(1e-2)
    state = init_state(opt, params)
    pointers = [leaf.unsafe_buffer_pointer() for leaf in jax.tree.leaves(state) if leaf.size]
    assert len(set(pointers)) == len(pointers)
    x = np.random.default_rng(0).normal(size=(16, 5))
    y = np.random.default_rng(1).integers(0, 3, size=16)
    net, loss = fnn.mlp([4, 3]), fnn.losses.get("sparse_categorical_crossentropy")
    kwargs = dict(epochs=2, batch_size=8, key=jax.random.PRNGKey(2), verbose=0)
    from_host = fnn.fit(net, params, opt, loss, x, y, opt_state=state, **kwargs)
    from_xla = fnn.fit(net, params, opt, loss, x, y, opt_state=_compiled(opt.init, params), **kwargs)
    chex.assert_trees_all_equal((from_host.params, from_host.opt_state), (from_xla.params, from_xla.opt_state))
    chex.assert_trees_all_equal(state, _compiled(opt.init, params))  # the caller's state: not donated


def _zeros_like(p):
    return jax.tree.map(jnp.zeros_like, p)


@pytest.mark.parametrize(
    "fn",
    [
        pytest.param(lambda p: {"z": _zeros_like(p), "n": jnp.zeros((), jnp.int32)}, id="zeros"),
        pytest.param(lambda p: jax.tree.map(jnp.copy, p), id="copies"),
        pytest.param(lambda p: {"ones": jax.tree.map(lambda a: jnp.full(a.shape[::-1], 2.5, a.dtype), p)}, id="full"),
        pytest.param(lambda p: jnp.asarray(np.arange(3, dtype=np.int32)).astype(jnp.float32), id="int-to-float"),
        pytest.param(lambda p: jnp.array([True, False]).astype(jnp.int8), id="bool-to-int"),
        pytest.param(lambda p: jnp.broadcast_to(jnp.float64(0.1).astype(jnp.float32), (2,)), id="f64-to-f32"),
        pytest.param(lambda p: -jnp.reshape(jnp.full((2, 3), 1.5, jnp.float32), (3, 2)), id="neg-reshape"),
        pytest.param(lambda p: jnp.squeeze(jnp.zeros((1, 4, 1))), id="squeeze"),
        pytest.param(lambda p: (jnp.float32(2) * p[0]["w"], jnp.zeros(3))[1], id="dead-arithmetic"),
        pytest.param(lambda p: jnp.full((2,), jnp.nan, jnp.float32), id="nan"),
        pytest.param(lambda p: jax.jit(_zeros_like)(p), id="nested-jit"),
    ],
)
def test_fills_copies_and_exact_conversions_run_on_the_host(fn, compiles):
    params = _params()
    program = jax.jit(fn)
    want = _compiled(fn, params)
    with compiles() as c:
        got = evaluate_on_host(program, params)
    assert got is not None and c.count == 0
    _same_arrays(got, want)


@pytest.mark.parametrize(
    "fn",
    [
        pytest.param(lambda p: jax.tree.map(lambda a: 0.5 * a, p), id="arithmetic"),
        pytest.param(lambda p: jnp.exp(jnp.ones(3)), id="transcendental"),
        pytest.param(lambda p: jax.random.normal(jax.random.PRNGKey(0), (3,)), id="random"),
        pytest.param(lambda p: jnp.full((3,), 2.7).astype(jnp.int32), id="float-to-int"),
        pytest.param(lambda p: {"w": jnp.asarray(0.0)}, id="weakly-typed-result"),
        pytest.param(lambda p: jnp.full((2, 3), 1.5), id="weakly-typed-fill"),
        pytest.param(lambda p: (jax.debug.print("{}", p[0]["b"]), _zeros_like(p))[1], id="effect"),
    ],
)
def test_any_other_program_is_left_to_the_compiler(fn):
    """None: the caller compiles. (The compiled program itself still runs and gives its answer.)"""
    params = _params()
    assert evaluate_on_host(jax.jit(fn), params) is None


def test_typed_keys_are_left_to_the_compiler():
    """A typed PRNG key (an extended dtype, no NumPy value) in the state, from a constant or an
    input: None, not an error; init_state then compiles, and the state holds the key."""
    key = jax.random.key(7)
    params = _params()
    assert evaluate_on_host(jax.jit(lambda p: {"key": key, "z": jnp.zeros(2)}), params) is None
    assert evaluate_on_host(jax.jit(lambda p, k: {"key": k}), params, key) is None
    keyed = fnn.optimizers.GradientTransformation(lambda p: {"key": key}, lambda g, state, params=None: (g, state))
    state = init_state(keyed, params)
    assert jax.dtypes.issubdtype(state["key"].dtype, jax.dtypes.prng_key)
    np.testing.assert_array_equal(jax.random.key_data(state["key"]), jax.random.key_data(key))


def test_an_unfoldable_init_still_gets_its_state_from_one_program(compiles):
    """A user's optimizer whose init computes (here a scaled copy of the params): init_state
    compiles it once, and its state is the init's."""
    params = _params(sizes=(2, 7), n_in=3)
    halves = fnn.optimizers.GradientTransformation(
        lambda p: jax.tree.map(lambda a: 0.5 * a, p), lambda g, state, params=None: (g, state)
    )
    with compiles() as c:
        state = init_state(halves, params)
    assert c.count == 1
    chex.assert_trees_all_equal(state, jax.tree.map(lambda a: 0.5 * a, params))


def test_non_array_inputs_and_disabled_jit_are_left_to_the_caller():
    fills = jax.jit(lambda *args: jnp.zeros(2))
    assert evaluate_on_host(fills, _params()) is not None
    assert evaluate_on_host(fills, 1.0) is None  # a Python number
    assert evaluate_on_host(fills, _params(), np.float32(1)) is None  # a NumPy value: not on a device
    params = _params()  # drawn before: under disable_jit nothing of it may compile op by op
    with jax.disable_jit():
        assert evaluate_on_host(jax.jit(_zeros_like), params) is None


def test_a_large_state_is_left_to_the_compiler(monkeypatch):
    """Past MAX_BYTES a compiled fill is the faster: None, and init_state compiles it."""
    params = _params()
    opt = fnn.optimizers.adam(1e-3)
    program = _init_program(opt.init.template, False, True)
    nbytes = sum(leaf.nbytes for leaf in jax.tree.leaves(program(params, opt.init.arrays())))
    monkeypatch.setattr(host_eval, "MAX_BYTES", nbytes)
    assert evaluate_on_host(program, params, opt.init.arrays()) is not None  # up to it: the host
    monkeypatch.setattr(host_eval, "MAX_BYTES", nbytes - 1)
    assert evaluate_on_host(program, params, opt.init.arrays()) is None


def _seeds_program(net, x64, dtype=None):
    from fnn.train._initial import _program, _seed_values

    seeds = [0, 7, -1, 2**31 + 3] + ([2**40 + 5, -(2**35)] if x64 else [])
    return _program(net, (5,), dtype), jax.device_put(_seed_values(seeds))


@pytest.mark.parametrize("x64", [False, True])
@pytest.mark.parametrize(
    "init", ["glorot_uniform", "he_uniform", "lecun_uniform", "random_uniform", "zeros", "ones", "uniform"]
)
def test_a_uniform_init_draws_its_bits_on_the_host_and_compiles_its_arithmetic_alone(init, x64, compiles):
    """The seeds' init program of a network whose initializers draw uniform values: the keys,
    splits and random bits computed on the host (threefry, as jax hashes them), the arithmetic
    (bits -> [0, 1) -> [minval, maxval), which XLA:CPU rounds once where it fuses a multiply
    and an add) in a small program of its own; the results the whole program's, every bit, for
    32- and 64-bit seeds (negative, and past 2**32), odd sizes, params cast to float64."""
    first = fnn.Dense(7, kernel_initializer=init, bias_initializer=init)
    net = fnn.serial(first, fnn.Dense(3, kernel_initializer=init))
    with jax.enable_x64(x64):
        program, values = _seeds_program(net, x64, jnp.float64 if x64 else None)
        want = program(values)
        with compiles() as c:
            got = evaluate_on_host(program, values, tail=True)
        # at most the tail (compiled once for every init whose arithmetic has these shapes)
        assert got is not None and c.count <= (0 if init in ("zeros", "ones") else 1)
        _same_arrays(got, want)


@pytest.mark.parametrize(
    ("setting", "activation"),
    [
        pytest.param(lambda: jax.threefry_partitionable(False), "tanh", id="threefry-not-partitionable"),
        pytest.param(lambda: jax.default_prng_impl("rbg"), "sigmoid", id="rbg-keys"),
    ],
)
def test_other_key_rules_are_left_to_the_compiler(setting, activation):
    """Keys hashed otherwise than jax's default threefry (the setting off, another
    implementation): None, and the caller compiles; a normal draw (erf_inv) too."""
    with setting():  # (a network of its own: jit's cache of another trace would answer)
        program, values = _seeds_program(fnn.mlp([4, 2], activation=activation), False)
        assert evaluate_on_host(program, values, tail=True) is None
    program, values = _seeds_program(fnn.mlp([4, 2]), False)
    normal, values = _seeds_program(fnn.serial(fnn.Dense(3, kernel_initializer="he_normal")), False)
    assert evaluate_on_host(normal, values, tail=True) is None
    wide = lambda key, shape, dtype=None: fnn.initializers.get("glorot_uniform")(key, shape, jnp.float64)
    draws64, values = _seeds_program(fnn.serial(fnn.Dense(3, kernel_initializer=wide)), False)
    assert evaluate_on_host(draws64, values, tail=True) is None  # float64 draws: 64 random bits each
    assert evaluate_on_host(program, values) is None  # arithmetic without a tail: compiled whole


def _chained(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -1, 1) * 1.7 * 0.3 + 0.1 + 0.2


@pytest.mark.parametrize(
    "init",
    [
        pytest.param(fnn.initializers.random_uniform(-0.3, 0.7), id="width-1"),
        pytest.param(fnn.initializers.random_uniform(0.1, 1.1), id="width-1-shifted"),
        pytest.param(_chained, id="constants-chained"),
    ],
)
def test_the_tail_keeps_the_constants_xla_folds_around(init):
    """Constants (literals, and what the host computed from them alone) are constants of the
    tail too, not its arguments: XLA drops ``x * 1.0`` and folds ``(x + a) + b`` into
    ``x + (a + b)`` around a constant, and the tail must round as the whole program does (a
    width of 1 and chained constants gave other bits when they were arguments)."""
    program, values = _seeds_program(fnn.serial(fnn.Dense(13, kernel_initializer=init)), False)
    got = evaluate_on_host(program, values, tail=True)
    assert got is not None
    _same_arrays(got, program(values))


def test_under_nan_checks_the_program_is_compiled_and_raises():
    """Under ``jax.debug_nans`` a compiled program's NaN raises (FloatingPointError); a value
    filled on the host would not: None, and the caller compiles."""
    nan = lambda key, shape, dtype=jnp.float32: jnp.full(shape, jnp.nan, dtype)
    program, values = _seeds_program(fnn.serial(fnn.Dense(2, kernel_initializer=nan)), False)
    assert evaluate_on_host(program, values, tail=True) is not None
    with jax.debug_nans(True):
        assert evaluate_on_host(program, values, tail=True) is None
