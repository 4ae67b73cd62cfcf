"""Activations: hand-written derivatives against jax.grad / jax.vjp of the same forward and
finite differences, forward values against NumPy float64 formulas, stability, the registry."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fnn import activations as A

SQRT2 = math.sqrt(2.0)
SELU_ALPHA = 1.6732632423543772848170429916717  # Klambauer et al. 2017
SELU_SCALE = 1.0507009873554804934193349852946

# (name, kwargs) of every elementwise activation, with some non-default hyperparameters.
ELEMENTWISE = [
    ("linear", {}),
    ("sigmoid", {}),
    ("tanh", {}),
    ("relu", {}),
    ("relu6", {}),
    ("leaky_relu", {}),
    ("leaky_relu", {"negative_slope": 0.1}),
    ("elu", {}),
    ("elu", {"alpha": 0.5}),
    ("selu", {}),
    ("gelu", {}),
    ("gelu_tanh", {}),
    ("silu", {}),
    ("softplus", {}),
    ("softsign", {}),
    ("hard_sigmoid", {}),
    ("mish", {}),
]
IDS = [n + "".join(f"-{k}={v}" for k, v in kw.items()) for n, kw in ELEMENTWISE]
KINKS = np.array([-3.0, 0.0, 3.0, 6.0])


def _away_from_kinks(x, gap=1e-3):
    x = np.array(x, dtype=np.float64)
    for k in KINKS:
        x[np.abs(x - k) < gap] += 2 * gap
    return x


def _sample(n=64, scale=4.0, seed=0):
    return _away_from_kinks(np.random.default_rng(seed).normal(size=n) * scale)


def _np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _np_softplus(x):
    return np.log1p(np.exp(x))


_erf = np.vectorize(math.erf)


def _np_reference(name, x, negative_slope=0.2, alpha=1.0):
    """Independent float64 formulas (moderate |x| only: no stabilisation here)."""
    return {
        "linear": lambda: x,
        "sigmoid": lambda: _np_sigmoid(x),
        "tanh": lambda: np.tanh(x),
        "relu": lambda: np.maximum(x, 0),
        "relu6": lambda: np.clip(x, 0, 6),
        "leaky_relu": lambda: np.where(x >= 0, x, negative_slope * x),
        "elu": lambda: np.where(x > 0, x, alpha * np.expm1(x)),
        "selu": lambda: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(x)),
        "gelu": lambda: 0.5 * x * (1 + _erf(x / SQRT2)),
        "gelu_tanh": lambda: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))),
        "silu": lambda: x * _np_sigmoid(x),
        "softplus": lambda: _np_softplus(x),
        "softsign": lambda: x / (1 + np.abs(x)),
        "hard_sigmoid": lambda: np.clip(x / 6 + 0.5, 0, 1),
        "mish": lambda: x * np.tanh(_np_softplus(x)),
    }[name]()


# ------------------------------------------------------------------------- forward values


@pytest.mark.parametrize("name,kw", ELEMENTWISE, ids=IDS)
def test_forward_matches_numpy_float64(name, kw):
    x = _sample(seed=1, scale=3.0)
    y = A.get(name, **kw)(jnp.asarray(x))
    chex.assert_shape(y, x.shape)
    np.testing.assert_allclose(np.asarray(y), _np_reference(name, x, **kw), rtol=1e-12, atol=1e-13)


def test_selu_constants_are_keras_constants():
    # Keras documents them rounded to 8 decimals.
    assert abs(A.SELU_ALPHA - 1.67326324) < 1e-8 and abs(A.SELU_SCALE - 1.05070098) < 1e-8
    assert float(A.selu(1.0)) == pytest.approx(SELU_SCALE, rel=1e-15)
    assert float(A.selu(-50.0)) == pytest.approx(-SELU_SCALE * SELU_ALPHA, rel=1e-15)


def test_softmax_and_log_softmax_values():
    x = np.random.default_rng(2).normal(size=(4, 5)) * 3
    e = np.exp(x)
    ref = e / e.sum(-1, keepdims=True)
    y = A.softmax(jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(y), ref, rtol=1e-13)
    np.testing.assert_allclose(np.asarray(y).sum(-1), 1.0, rtol=1e-14)
    np.testing.assert_allclose(np.asarray(A.log_softmax(jnp.asarray(x))), np.log(ref), rtol=1e-12)
    ref0 = e / e.sum(0, keepdims=True)
    np.testing.assert_allclose(np.asarray(A.get("softmax", axis=0)(jnp.asarray(x))), ref0, rtol=1e-13)
    np.testing.assert_allclose(np.asarray(A.get("log_softmax", axis=0)(jnp.asarray(x))), np.log(ref0), rtol=1e-12)


def test_gelu_approximate_keyword_matches_gelu_tanh():
    x = jnp.asarray(_sample(seed=3))
    np.testing.assert_array_equal(np.asarray(A.gelu(x, approximate=True)), np.asarray(A.gelu_tanh(x)))
    # the two GELUs differ, but by little
    diff = np.abs(np.asarray(A.gelu(x)) - np.asarray(A.gelu_tanh(x)))
    assert 0 < diff.max() < 1e-3


# ------------------------------------------------------------------------- derivatives


@pytest.mark.parametrize("name,kw", ELEMENTWISE, ids=IDS)
def test_grad_and_vjp_match_autodiff_float64(name, kw):
    act = A.get(name, **kw)
    x = jnp.asarray(_sample(seed=4))
    dy = jnp.asarray(np.random.default_rng(5).normal(size=x.shape))
    auto = jax.vmap(jax.grad(act.fn))(x)
    manual = A.derivative(name, x, **kw)
    # atol: derivatives computed from y = f(x) (tanh: (1-y)(1+y)) carry y's rounding, ~1e-16
    # absolute, and jax.grad rounds its own formula differently; relative error then grows
    # where the derivative is tiny.
    np.testing.assert_allclose(np.asarray(manual), np.asarray(auto), rtol=1e-10, atol=1e-15)
    _, pullback = jax.vjp(act.fn, x)
    np.testing.assert_allclose(
        np.asarray(act.vjp(x, act.fn(x), dy)), np.asarray(pullback(dy)[0]), rtol=1e-10, atol=1e-15
    )
    # the module-level f_grad works without y too
    grad_fn = getattr(A, name + "_grad")
    np.testing.assert_allclose(np.asarray(grad_fn(x, **kw)), np.asarray(manual), rtol=1e-14)


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "gelu", "gelu_tanh", "silu", "mish", "softplus", "elu"])
def test_grad_matches_autodiff_float32(name):
    act = A.get(name)
    x = jnp.asarray(_sample(seed=6), dtype=jnp.float32)
    manual = A.derivative(name, x)
    assert manual.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(manual), np.asarray(jax.vmap(jax.grad(act.fn))(x)), rtol=2e-6, atol=1e-7)


@settings(max_examples=20, deadline=None)
@given(st.lists(st.floats(-20, 20, allow_nan=False), min_size=1, max_size=16))
def test_grad_matches_central_differences(values):
    # a fixed length, so eager ops reuse their compilations across examples
    x = jnp.asarray(_away_from_kinks(np.resize(values, 16), gap=1e-3))
    h = 1e-6
    for name, kw in ELEMENTWISE:
        act = A.get(name, **kw)
        fd = (np.asarray(act(x + h)) - np.asarray(act(x - h))) / (2 * h)
        np.testing.assert_allclose(np.asarray(A.derivative(act, x)), fd, rtol=1e-6, atol=1e-8, err_msg=name)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_vjps_match_autodiff(name, axis):
    rng = np.random.default_rng(7)
    x, dy = (jnp.asarray(rng.normal(size=(4, 5)) * 3) for _ in range(2))
    act = A.get(name, axis=axis)
    y, pullback = jax.vjp(act.fn, x)
    np.testing.assert_allclose(np.asarray(act.vjp(x, y, dy)), np.asarray(pullback(dy)[0]), rtol=1e-10, atol=1e-14)
    vjp_fn = getattr(A, name + "_vjp")  # y=None recomputes the forward
    np.testing.assert_allclose(
        np.asarray(vjp_fn(x, None, dy, axis=axis)), np.asarray(pullback(dy)[0]), rtol=1e-10, atol=1e-14
    )
    # float32 too
    x32, dy32 = x.astype(jnp.float32), dy.astype(jnp.float32)
    y32, pullback32 = jax.vjp(act.fn, x32)
    dx32 = act.vjp(x32, y32, dy32)
    assert dx32.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(dx32), np.asarray(pullback32(dy32)[0]), rtol=1e-5, atol=1e-6)


KINK_CASES = [  # (name, kwargs, x, expected derivative, jax.nn reference forward)
    ("relu", {}, 0.0, 0.0, jax.nn.relu),
    ("relu6", {}, 0.0, 0.0, jax.nn.relu6),
    ("relu6", {}, 6.0, 0.0, jax.nn.relu6),
    ("hard_sigmoid", {}, -3.0, 0.0, jax.nn.hard_sigmoid),
    ("hard_sigmoid", {}, 3.0, 0.0, jax.nn.hard_sigmoid),
    ("leaky_relu", {"negative_slope": 0.1}, 0.0, 1.0, lambda x: jax.nn.leaky_relu(x, 0.1)),
    ("elu", {"alpha": 0.5}, 0.0, 0.5, lambda x: jax.nn.elu(x, 0.5)),
    ("selu", {}, 0.0, SELU_SCALE * SELU_ALPHA, jax.nn.selu),
]


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_defined_values_at_kinks(dtype):
    for name, kw, x0, expected, jax_nn_fn in KINK_CASES:
        x = jnp.asarray(x0, dtype=dtype)
        d = A.derivative(name, x, **kw)
        assert d.dtype == dtype
        assert float(d) == pytest.approx(expected, rel=1e-6), name
        assert float(jax.grad(A.get(name, **kw).fn)(x)) == pytest.approx(expected, rel=1e-6), name
        assert float(jax.grad(jax_nn_fn)(x)) == pytest.approx(expected, rel=1e-6), name


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_finite_at_extreme_inputs(dtype):
    x = jnp.asarray([-1e4, -100.0, -1.0, 0.0, 1.0, 100.0, 1e4], dtype=dtype)
    for name, kw in ELEMENTWISE:
        act = A.get(name, **kw)
        y, d = act(x), A.derivative(act, x)
        assert y.dtype == dtype and d.dtype == dtype, name
        assert bool(jnp.all(jnp.isfinite(y))) and bool(jnp.all(jnp.isfinite(d))), name
    for name in ["softmax", "log_softmax"]:
        act = A.get(name)
        y = act(x)
        dx = act.vjp(x, y, jnp.ones_like(x).at[0].set(-2.0))
        assert bool(jnp.all(jnp.isfinite(y))) and bool(jnp.all(jnp.isfinite(dx))), name
    # the saturated values are the right limits
    np.testing.assert_allclose(np.asarray(A.sigmoid(x))[[0, -1]], [0.0, 1.0])
    np.testing.assert_allclose(np.asarray(A.softplus(x))[[0, -1]], [0.0, 1e4])
    np.testing.assert_allclose(np.asarray(A.softmax(x))[-1], 1.0)
    np.testing.assert_allclose(np.asarray(A.log_softmax(x))[[0, -1]], [-2e4, 0.0], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(A.gelu(x))[[0, -1]], [0.0, 1e4])
    np.testing.assert_allclose(np.asarray(A.derivative("gelu_tanh", x))[[0, -1]], [0.0, 1.0])


def test_dtype_preserved_and_ints_promoted():
    x32 = jnp.asarray([-2.0, 0.5, 4.0], dtype=jnp.float32)
    for name in A.names():
        act = A.get(name)
        y = act(x32)
        assert y.dtype == jnp.float32, name
        assert act.vjp(x32, y, jnp.ones_like(y)).dtype == jnp.float32, name
        assert act(jnp.asarray([1, 2, 3])).dtype == jnp.float64, name  # x64 on in tests


# ------------------------------------------------------------------------- registry


def test_names_sorted_and_complete():
    expected = {
        "linear",
        "sigmoid",
        "tanh",
        "relu",
        "relu6",
        "leaky_relu",
        "elu",
        "selu",
        "gelu",
        "gelu_tanh",
        "gelu_approximate",
        "silu",
        "swish",
        "softplus",
        "softsign",
        "hard_sigmoid",
        "mish",
        "softmax",
        "log_softmax",
    }
    assert A.names() == sorted(A.names())
    assert set(A.names()) == expected


def test_get_aliases_defaults_and_kwargs():
    assert A.get(None) == A.get("linear")
    assert A.get(None).name == "linear"
    assert A.get("swish") == A.get("silu") and A.get("swish").name == "silu"
    assert A.get("gelu_approximate") == A.get("gelu_tanh") == A.get("gelu", approximate=True)
    assert A.get("gelu", approximate=False) == A.get("gelu")
    assert A.get("leaky_relu") == A.get("leaky_relu", negative_slope=0.2)
    assert A.get("leaky_relu", alpha=0.1) == A.get("leaky_relu", negative_slope=0.1)
    assert A.get("leaky_relu", negative_slope=0.1) != A.get("leaky_relu")
    assert A.get("elu", alpha=0.5) != A.get("elu")
    assert A.get("softmax", axis=0) != A.get("softmax")
    act = A.get("relu")
    assert A.get(act) is act
    x = jnp.asarray([-2.0, 3.0])
    np.testing.assert_allclose(np.asarray(A.get("leaky_relu", negative_slope=0.1)(x)), [-0.2, 3.0])
    np.testing.assert_allclose(np.asarray(A.get("leaky_relu")(x)), [-0.4, 3.0])  # Keras 3 default
    np.testing.assert_allclose(np.asarray(A.get("elu", alpha=0.5)(x)), [0.5 * math.expm1(-2), 3.0])


def test_get_results_hashable_and_equal():
    a = A.get("leaky_relu", negative_slope=0.1)
    b = A.get("leaky_relu", negative_slope=np.float64(0.1))
    assert a == b and hash(a) == hash(b)
    table = {A.get(n): n for n in A.names()}
    assert len(table) == len(A.names()) - 2  # the two aliases collapse onto their targets
    assert table[A.get("relu")] == "relu"


def test_equal_activations_share_one_compilation():
    traces = []

    def apply(act, x):
        traces.append(act.name)
        return act(x)

    f = jax.jit(apply, static_argnums=0)
    x = jnp.ones(3)
    f(A.get("leaky_relu", negative_slope=0.1), x)
    f(A.get("leaky_relu", alpha=0.1), x)
    assert traces == ["leaky_relu"]


def test_get_errors():
    with pytest.raises(ValueError, match="unknown activation 'rellu'.*relu6.*softmax"):
        A.get("rellu")
    for bad in [3, jax.nn.relu, ["relu"]]:
        with pytest.raises(TypeError, match="activation must be a name"):
            A.get(bad)
    with pytest.raises(TypeError, match="unexpected keyword.*slope"):
        A.get("relu", slope=0.1)
    with pytest.raises(TypeError, match="negative_slope must be a real number"):
        A.get("leaky_relu", negative_slope="0.1")
    with pytest.raises(TypeError, match="negative_slope must be a real number"):
        A.get("leaky_relu", negative_slope=jnp.asarray(0.1))
    with pytest.raises(ValueError, match="alpha must be finite"):
        A.get("elu", alpha=float("nan"))
    with pytest.raises(TypeError, match="not both"):
        A.get("leaky_relu", alpha=0.1, negative_slope=0.1)
    with pytest.raises(TypeError, match="axis must be an int"):
        A.get("softmax", axis=1.5)
    with pytest.raises(TypeError, match="approximate must be a bool"):
        A.get("gelu", approximate="yes")
    with pytest.raises(TypeError, match="only apply to a name"):
        A.get(A.get("relu"), alpha=1.0)
    for name in ["softmax", "log_softmax"]:
        with pytest.raises(ValueError, match="not elementwise"):
            A.derivative(name, jnp.ones(3))
