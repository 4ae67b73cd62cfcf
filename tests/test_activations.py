"""Activations: hand-written derivatives against jax.grad / jax.vjp of the same forward and
finite differences, forward values against NumPy float64 formulas, stability, the registry.

Compilations: each parametrised family computes all its cases in one jitted program (a
module-scoped fixture), and every other test jits its numeric work once; eager calls would
compile every primitive at every shape and dtype on their own. Inputs reach the programs as
NumPy arrays: ``jnp.asarray`` compiles a small program of its own per shape and dtype.
"""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import swapped
from hypothesis import given, settings, strategies as st

import fnn
from fnn import activations as A
from fnn.activations._registry import activation_repr

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
    ("celu", {}),
    ("celu", {"alpha": 0.5}),
    ("exponential", {}),
    ("log_sigmoid", {}),
    ("hard_tanh", {}),
    ("hard_silu", {}),
    ("sparse_sigmoid", {}),
    ("sparse_plus", {}),
    ("squareplus", {}),
    ("squareplus", {"b": 1.0}),
    ("hard_shrink", {}),
    ("hard_shrink", {"threshold": 0.25}),
    ("soft_shrink", {}),
    ("soft_shrink", {"threshold": 0.25}),
    ("tanh_shrink", {}),
    ("threshold", {"threshold": 0.5, "default_value": -1.0}),
]
IDS = [n + "".join(f"-{k}={v}" for k, v in kw.items()) for n, kw in ELEMENTWISE]
KINKS = np.array([-3.0, -1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0, 3.0, 6.0])
ALONG_AXIS = ("softmax", "log_softmax", "sparsemax")
# The options an activation needs to be built at all (threshold's have no defaults, as in Keras).
REQUIRED = {"threshold": {"threshold": 0.5, "default_value": -1.0}}


def _get(name):
    """``A.get(name)``, with the options it cannot do without."""
    return A.get(name, **REQUIRED.get(name, {}))


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


def _np_reference(name, x, negative_slope=0.2, alpha=1.0, b=4.0, threshold=0.5, default_value=None):
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
        "celu": lambda: np.maximum(x, 0) + np.minimum(0, alpha * (np.exp(x / alpha) - 1)),
        "exponential": lambda: np.exp(x),
        "log_sigmoid": lambda: np.log(_np_sigmoid(x)),
        "hard_tanh": lambda: np.clip(x, -1, 1),
        "hard_silu": lambda: x * np.clip(x / 6 + 0.5, 0, 1),
        "sparse_sigmoid": lambda: np.clip((x + 1) / 2, 0, 1),
        "sparse_plus": lambda: np.select([x <= -1, x >= 1], [0 * x, x], (x + 1) ** 2 / 4),
        "squareplus": lambda: (x + np.sqrt(x * x + b)) / 2,
        "hard_shrink": lambda: x * (np.abs(x) > threshold),
        "soft_shrink": lambda: np.sign(x) * np.maximum(np.abs(x) - threshold, 0),
        "tanh_shrink": lambda: x - np.tanh(x),
        "threshold": lambda: np.where(x > threshold, x, default_value),
    }[name]()


# ------------------------------------------------------------------------- forward values


@pytest.fixture(scope="module")
def forwards():
    """``(x, [f(x) for every ELEMENTWISE activation])``, all in one compiled program."""
    x = _sample(seed=1, scale=3.0)
    acts = [A.get(name, **kw) for name, kw in ELEMENTWISE]
    return x, jax.jit(lambda xx: [act(xx) for act in acts])(x)


@pytest.mark.parametrize("name,kw", ELEMENTWISE, ids=IDS)
def test_forward_matches_numpy_float64(forwards, name, kw):
    x, ys = forwards
    y = ys[ELEMENTWISE.index((name, kw))]
    chex.assert_shape(y, x.shape)
    np.testing.assert_allclose(np.asarray(y), _np_reference(name, x, **kw), rtol=1e-12, atol=1e-13)


def test_selu_constants_are_keras_constants():
    # Keras documents them rounded to 8 decimals.
    assert abs(A.SELU_ALPHA - 1.67326324) < 1e-8 and abs(A.SELU_SCALE - 1.05070098) < 1e-8
    selu = jax.jit(A.selu)  # one compilation for both scalars
    assert float(selu(1.0)) == pytest.approx(SELU_SCALE, rel=1e-15)
    assert float(selu(-50.0)) == pytest.approx(-SELU_SCALE * SELU_ALPHA, rel=1e-15)


def test_softmax_and_log_softmax_values():
    x = np.random.default_rng(2).normal(size=(4, 5)) * 3
    e = np.exp(x)
    ref = e / e.sum(-1, keepdims=True)
    y, log_y, y0, log_y0 = jax.jit(
        lambda xx: (A.softmax(xx), A.log_softmax(xx), A.get("softmax", axis=0)(xx), A.get("log_softmax", axis=0)(xx))
    )(x)
    np.testing.assert_allclose(np.asarray(y), ref, rtol=1e-13)
    np.testing.assert_allclose(np.asarray(y).sum(-1), 1.0, rtol=1e-14)
    np.testing.assert_allclose(np.asarray(log_y), np.log(ref), rtol=1e-12)
    ref0 = e / e.sum(0, keepdims=True)
    np.testing.assert_allclose(np.asarray(y0), ref0, rtol=1e-13)
    np.testing.assert_allclose(np.asarray(log_y0), np.log(ref0), rtol=1e-12)


def test_gelu_approximate_keyword_matches_gelu_tanh():
    x = _sample(seed=3)
    approx, tanh_form, exact = jax.jit(lambda xx: (A.gelu(xx, approximate=True), A.gelu_tanh(xx), A.gelu(xx)))(x)
    np.testing.assert_array_equal(np.asarray(approx), np.asarray(tanh_form))
    # the two GELUs differ, but by little
    diff = np.abs(np.asarray(exact) - np.asarray(tanh_form))
    assert 0 < diff.max() < 1e-3


# ------------------------------------------------------------------------- derivatives


def _derivatives64(x, dy):
    out = []
    for name, kw in ELEMENTWISE:
        act = A.get(name, **kw)
        _, pullback = jax.vjp(act.fn, x)
        out.append(
            {
                "auto": jax.vmap(jax.grad(act.fn))(x),
                "manual": A.derivative(name, x, **kw),
                "vjp": act.vjp(x, act.fn(x), dy),
                "pullback": pullback(dy)[0],
                "grad_fn": getattr(A, name + "_grad")(x, None, **kw),  # the module-level f_grad, without y
            }
        )
    return out


@pytest.fixture(scope="module")
def derivatives64():
    """Every ELEMENTWISE activation's derivatives and VJPs, in one compiled program."""
    x = _sample(seed=4)
    dy = np.random.default_rng(5).normal(size=x.shape)
    return jax.jit(_derivatives64)(x, dy)


@pytest.mark.parametrize("name,kw", ELEMENTWISE, ids=IDS)
def test_grad_and_vjp_match_autodiff_float64(derivatives64, name, kw):
    r = derivatives64[ELEMENTWISE.index((name, kw))]
    auto, manual = r["auto"], r["manual"]
    # atol: derivatives computed from y = f(x) (tanh: (1-y)(1+y)) carry y's rounding, ~1e-16
    # absolute, and jax.grad rounds its own formula differently; relative error then grows
    # where the derivative is tiny.
    np.testing.assert_allclose(np.asarray(manual), np.asarray(auto), rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(np.asarray(r["vjp"]), np.asarray(r["pullback"]), rtol=1e-10, atol=1e-15)
    # the module-level f_grad works without y too
    np.testing.assert_allclose(np.asarray(r["grad_fn"]), np.asarray(manual), rtol=1e-14)


FLOAT32_CHECKED = ["sigmoid", "tanh", "gelu", "gelu_tanh", "silu", "mish", "softplus", "elu", "celu", "log_sigmoid"]
FLOAT32_CHECKED += ["squareplus"]


@pytest.fixture(scope="module")
def derivatives32():
    """``name -> (manual, autodiff)`` float32 derivatives, in one compiled program."""

    def both(x):
        return {name: (A.derivative(name, x), jax.vmap(jax.grad(A.get(name).fn))(x)) for name in FLOAT32_CHECKED}

    return jax.jit(both)(_sample(seed=6).astype(np.float32))


@pytest.mark.parametrize("name", FLOAT32_CHECKED)
def test_grad_matches_autodiff_float32(derivatives32, name):
    manual, auto = derivatives32[name]
    assert manual.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(manual), np.asarray(auto), rtol=2e-6, atol=1e-7)


_FD_STEP = 1e-6


@jax.jit
def _plus_minus_and_derivative(x):
    """For every ELEMENTWISE activation: ``f(x + h)``, ``f(x - h)`` and ``f'(x)``; one program
    for all hypothesis examples (their inputs have one fixed shape)."""
    out = []
    for name, kw in ELEMENTWISE:
        act = A.get(name, **kw)
        out.append((act(x + _FD_STEP), act(x - _FD_STEP), A.derivative(act, x)))
    return out


@settings(max_examples=20, deadline=None)
@given(st.lists(st.floats(-20, 20, allow_nan=False), min_size=1, max_size=16))
def test_grad_matches_central_differences(values):
    # a fixed length, so every example reuses the one compiled program
    x = _away_from_kinks(np.resize(values, 16), gap=1e-3)
    h = _FD_STEP
    for (name, _kw), (plus, minus, d) in zip(ELEMENTWISE, _plus_minus_and_derivative(x), strict=True):
        fd = (np.asarray(plus) - np.asarray(minus)) / (2 * h)
        np.testing.assert_allclose(np.asarray(d), fd, rtol=1e-6, atol=1e-8, err_msg=name)


SOFTMAX_CASES = [(name, axis) for axis in (-1, 0) for name in ("softmax", "log_softmax")]


def _softmax_vjps(x, dy):
    out = {}
    for name, axis in SOFTMAX_CASES:
        act = A.get(name, axis=axis)
        y, pullback = jax.vjp(act.fn, x)
        x32, dy32 = x.astype(jnp.float32), dy.astype(jnp.float32)
        y32, pullback32 = jax.vjp(act.fn, x32)
        out[name, axis] = {
            "vjp": act.vjp(x, y, dy),
            "pullback": pullback(dy)[0],
            "vjp_fn": getattr(A, name + "_vjp")(x, None, dy, axis=axis),  # y=None recomputes the forward
            "vjp32": act.vjp(x32, y32, dy32),
            "pullback32": pullback32(dy32)[0],
        }
    return out


@pytest.fixture(scope="module")
def softmax_vjps():
    """Every case of the softmax VJP test, float64 and float32, in one compiled program."""
    rng = np.random.default_rng(7)
    x, dy = (rng.normal(size=(4, 5)) * 3 for _ in range(2))
    return jax.jit(_softmax_vjps)(x, dy)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_vjps_match_autodiff(softmax_vjps, name, axis):
    r = softmax_vjps[name, axis]
    np.testing.assert_allclose(np.asarray(r["vjp"]), np.asarray(r["pullback"]), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(np.asarray(r["vjp_fn"]), np.asarray(r["pullback"]), rtol=1e-10, atol=1e-14)
    # float32 too
    dx32 = r["vjp32"]
    assert dx32.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(dx32), np.asarray(r["pullback32"]), rtol=1e-5, atol=1e-6)


KINK_CASES = [  # (name, kwargs, x, expected derivative, jax.nn reference forward)
    ("relu", {}, 0.0, 0.0, jax.nn.relu),
    ("relu6", {}, 0.0, 0.0, jax.nn.relu6),
    ("relu6", {}, 6.0, 0.0, jax.nn.relu6),
    ("hard_sigmoid", {}, -3.0, 0.0, jax.nn.hard_sigmoid),
    ("hard_sigmoid", {}, 3.0, 0.0, jax.nn.hard_sigmoid),
    ("leaky_relu", {"negative_slope": 0.1}, 0.0, 1.0, lambda x: jax.nn.leaky_relu(x, 0.1)),
    ("elu", {"alpha": 0.5}, 0.0, 0.5, lambda x: jax.nn.elu(x, 0.5)),
    ("selu", {}, 0.0, SELU_SCALE * SELU_ALPHA, jax.nn.selu),
    ("celu", {"alpha": 0.5}, 0.0, 1.0, lambda x: jax.nn.celu(x, 0.5)),
    ("hard_tanh", {}, -1.0, 1.0, jax.nn.hard_tanh),
    ("hard_tanh", {}, 1.0, 1.0, jax.nn.hard_tanh),
    ("hard_silu", {}, -3.0, 0.0, jax.nn.hard_silu),
    ("hard_silu", {}, 3.0, 1.0, jax.nn.hard_silu),
    ("sparse_sigmoid", {}, -1.0, 0.25, jax.nn.sparse_sigmoid),
    ("sparse_sigmoid", {}, 1.0, 0.25, jax.nn.sparse_sigmoid),
    ("sparse_plus", {}, -1.0, 0.0, jax.nn.sparse_plus),
    ("sparse_plus", {}, 1.0, 1.0, jax.nn.sparse_plus),
    # Keras's JAX forwards of the shrinks (keras/src/backend/jax/nn.py): selects, the small branch at the kink
    ("hard_shrink", {}, 0.5, 0.0, lambda x: jnp.where(jnp.abs(x) > 0.5, x, 0.0)),
    ("hard_shrink", {}, -0.5, 0.0, lambda x: jnp.where(jnp.abs(x) > 0.5, x, 0.0)),
    ("soft_shrink", {}, 0.5, 0.0, lambda x: jnp.where(x > 0.5, x - 0.5, jnp.where(x < -0.5, x + 0.5, 0.0))),
    ("soft_shrink", {}, -0.5, 0.0, lambda x: jnp.where(x > 0.5, x - 0.5, jnp.where(x < -0.5, x + 0.5, 0.0))),
    ("threshold", REQUIRED["threshold"], 0.5, 0.0, lambda x: jnp.where(x > 0.5, x, -1.0)),
]


@jax.jit
def _kink_derivatives(xs):
    """``(derivative, jax.grad of the forward, jax.grad of jax.nn's)`` at every kink; one program per dtype."""
    out = []
    for i, (name, kw, _x0, _expected, jax_nn_fn) in enumerate(KINK_CASES):
        x = xs[i]
        out.append((A.derivative(name, x, **kw), jax.grad(A.get(name, **kw).fn)(x), jax.grad(jax_nn_fn)(x)))
    return out


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_defined_values_at_kinks(dtype):
    xs = np.asarray([x0 for _name, _kw, x0, _expected, _fn in KINK_CASES], dtype=dtype)
    for (name, _kw, _x0, expected, _fn), (d, g, g_nn) in zip(KINK_CASES, _kink_derivatives(xs), strict=True):
        assert d.dtype == dtype
        assert float(d) == pytest.approx(expected, rel=1e-6), name
        assert float(g) == pytest.approx(expected, rel=1e-6), name
        assert float(g_nn) == pytest.approx(expected, rel=1e-6), name


@jax.jit
def _at_extremes(x):
    """Everything test_finite_at_extreme_inputs looks at, in one program per dtype."""
    elementwise = []
    for name, kw in ELEMENTWISE:
        act = A.get(name, **kw)
        elementwise.append((act(x), A.derivative(act, x)))
    along_axis = []
    for name in ALONG_AXIS:
        act = A.get(name)
        y = act(x)
        along_axis.append((y, act.vjp(x, y, jnp.ones_like(x).at[0].set(-2.0))))
    limits = {
        "sigmoid": A.sigmoid(x),
        "softplus": A.softplus(x),
        "softmax": A.softmax(x),
        "log_softmax": A.log_softmax(x),
        "gelu": A.gelu(x),
        "gelu_tanh'": A.derivative("gelu_tanh", x),
        "log_sigmoid": A.log_sigmoid(x),
        "squareplus": A.squareplus(x),
        "sparsemax": A.sparsemax(x),
    }
    return elementwise, along_axis, limits


@pytest.mark.parametrize(
    ("name", "want"), [("hard_silu", [0.0, 1.0]), ("hard_swish", [0.0, 1.0]), ("squareplus", [0.0, 1.0])]
)
def test_slopes_at_infinities_are_their_limits(name, want):
    """hard_silu's x * hard_sigmoid'(x) and squareplus's x / sqrt(x^2 + b) were inf * 0 and
    inf / inf at x = +-inf (NaN); the slopes there are their flat limits, as jax.grad of
    jax.nn.hard_silu and torch's hardswish give."""
    x = np.array([-np.inf, np.inf])
    # one compiled program for both (op by op, each operation compiles a program of its own)
    hand, auto = jax.jit(lambda x: (A.derivative(name, x), jax.vmap(jax.grad(A.get(name)))(x)))(x)
    np.testing.assert_array_equal(np.asarray(hand), want)
    np.testing.assert_array_equal(np.asarray(auto), want)


def test_squareplus_takes_an_array_b_with_half_precision_inputs_under_strict_promotion():
    x = np.array([1.0, -2.0], np.float16)

    @jax.jit  # one compiled program (traced under the strict promotion it is called in)
    def run(x, b):
        return A.squareplus(x, b=b), jax.grad(lambda b: A.squareplus(x, b=b).astype(jnp.float32).sum())(b)

    with jax.numpy_dtype_promotion("strict"):
        y, d = run(x, np.float32(4.0))
    np.testing.assert_allclose(np.asarray(y, np.float64), (np.array([1.0, -2.0]) + np.sqrt([5.0, 8.0])) / 2, rtol=1e-3)
    assert y.dtype == jnp.float16 and np.isfinite(float(d))


def test_hard_tanh_passes_a_nan_s_gradient_on_as_jax_nn_does():
    x = np.array([np.nan, -1.0, 1.0, 2.0])
    got, want = jax.jit(lambda x: (A.derivative("hard_tanh", x), jax.vmap(jax.grad(jax.nn.hard_tanh))(x)))(x)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_finite_at_extreme_inputs(dtype):
    x = np.asarray([-1e4, -100.0, -1.0, 0.0, 1.0, 100.0, 1e4], dtype=dtype)
    elementwise, along_axis, limits = _at_extremes(x)
    for (name, _kw), (y, d) in zip(ELEMENTWISE, elementwise, strict=True):
        assert y.dtype == dtype and d.dtype == dtype, name
        if name == "exponential":  # exp's own overflow, as Keras's: the derivative is the value
            tiny = float(np.finfo(dtype).tiny)  # XLA on CPU flushes subnormals (exp(-100) in float32)
            with np.errstate(over="ignore"):
                want = np.exp(x.astype(np.float64)).astype(dtype)
            np.testing.assert_allclose(np.asarray(y), want, rtol=1e-6, atol=tiny)
            np.testing.assert_array_equal(np.asarray(d), np.asarray(y))
            continue
        assert np.all(np.isfinite(np.asarray(y))) and np.all(np.isfinite(np.asarray(d))), name
    for name, (y, dx) in zip(ALONG_AXIS, along_axis, strict=True):
        assert np.all(np.isfinite(np.asarray(y))) and np.all(np.isfinite(np.asarray(dx))), name
    # the saturated values are the right limits
    np.testing.assert_allclose(np.asarray(limits["sigmoid"])[[0, -1]], [0.0, 1.0])
    np.testing.assert_allclose(np.asarray(limits["softplus"])[[0, -1]], [0.0, 1e4])
    np.testing.assert_allclose(np.asarray(limits["softmax"])[-1], 1.0)
    np.testing.assert_allclose(np.asarray(limits["log_softmax"])[[0, -1]], [-2e4, 0.0], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(limits["gelu"])[[0, -1]], [0.0, 1e4])
    np.testing.assert_allclose(np.asarray(limits["gelu_tanh'"])[[0, -1]], [0.0, 1.0])
    np.testing.assert_allclose(np.asarray(limits["log_sigmoid"])[[0, -1]], [-1e4, 0.0])
    # squareplus(x) ~ b / (4|x|) below 0, x above: no cancellation, no overflow of x^2
    x64 = x.astype(np.float64)
    h = np.sqrt(x64 * x64 + 4)
    want = np.where(x64 < 0, 2 / (h - x64), (x64 + h) / 2)  # each side in its cancellation-free form
    np.testing.assert_allclose(np.asarray(limits["squareplus"]), want, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(limits["sparsemax"]), [0, 0, 0, 0, 0, 0, 1])


@jax.jit
def _derivatives_everywhere(x):
    """Every activation's derivative at ``x`` (a column for the softmaxes), in one program per dtype."""
    out = {}
    for name in A.names():
        act = _get(name)
        xx = x[:, None] if name in ALONG_AXIS else x
        y = act(xx)
        out[name] = act.vjp(xx, y, jnp.ones_like(y))
    return out


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_half_precision_derivatives_are_finite_where_float32_s_are(dtype):
    # gelu_tanh's cubic overflowed float16 from |x| = 256 (x^2 = inf, s (1 - s) inf = NaN)
    big = float(jnp.finfo(dtype).max)
    x = np.asarray([-big, -1e4, -300.0, -256.5, -100.0, -30.0, -1.0, 0.0, 1.0, 30.0, 100.0, 256.5, 300.0, 1e4, big])
    # cast on the host (every value is a float32 one: no double rounding), not by a program per cast
    half, single = _derivatives_everywhere(x.astype(dtype)), _derivatives_everywhere(x.astype(np.float32))
    for name in A.names():
        with np.errstate(over="ignore"):  # float32 past float16's max: inf, as jax's cast gives
            finite32 = np.isfinite(np.asarray(single[name]).astype(dtype).astype(np.float32))
        assert np.all(np.isfinite(np.asarray(half[name], np.float32))[finite32]), name
    # torch.nn.functional.gelu(approximate="tanh")'s float16 derivative at -300, -100, 30, 100, 300, 1e4
    at = np.isin(x, [-300.0, -100.0, 30.0, 100.0, 300.0, 1e4])
    np.testing.assert_array_equal(np.asarray(half["gelu_tanh"], np.float32)[at], [0, 0, 1, 1, 1, 1])


def test_gelu_tanh_s_clip_changes_nothing_in_float64():
    # the cubic is clipped at |x| = 30, where sigmoid(2u) is exactly 0 or 1 in float64 already
    x = np.linspace(-45.0, 45.0, 181)
    u = math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)
    with np.errstate(over="ignore"):
        # sigmoid(2u) = (1 + tanh u) / 2 without its cancellation: exp of -2|u| only
        e = np.exp(-2 * np.abs(u))
        s = np.where(u >= 0, 1 / (1 + e), e / (1 + e))
    want = s + 2 * x * s * (1 - s) * math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * x * x)
    got, y = jax.jit(lambda z: (A.derivative("gelu_tanh", z), A.gelu_tanh(z)))(x)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(np.asarray(y), x * s, rtol=1e-12, atol=1e-300)
    assert np.all(np.asarray(got)[np.abs(x) >= 30] == (x[np.abs(x) >= 30] > 0))


def test_dtype_preserved_and_ints_promoted():
    # Output dtypes are what tracing infers, so jax.eval_shape checks them without compiling.
    def dtypes(x32, xint):
        out = {}
        for name in A.names():
            act = _get(name)
            y = act(x32)
            out[name] = (y, act.vjp(x32, y, jnp.ones_like(y)), act(xint))
        return out

    x32 = np.asarray([-2.0, 0.5, 4.0], dtype=np.float32)
    shapes = jax.eval_shape(dtypes, x32, np.asarray([1, 2, 3]))
    for name in A.names():
        y, dx, y_int = shapes[name]
        assert y.dtype == jnp.float32, name
        assert dx.dtype == jnp.float32, name
        assert y_int.dtype == jnp.float64, name  # x64 on in tests


# ------------------------------------------------------------------------- sparsemax


def _np_sparsemax(x, axis=-1):
    """The projection onto the simplex by bisection on tau (sum(max(x - tau, 0)) = 1), in NumPy:
    independent of the sort-and-cumsum algorithm."""
    x = np.moveaxis(np.asarray(x, np.float64), axis, -1)
    lo, hi = x.max(-1, keepdims=True) - 1, x.max(-1, keepdims=True)
    for _ in range(200):
        mid = (lo + hi) / 2
        over = np.maximum(x - mid, 0).sum(-1, keepdims=True) > 1
        lo, hi = np.where(over, mid, lo), np.where(over, hi, mid)
    return np.moveaxis(np.maximum(x - (lo + hi) / 2, 0), -1, axis)


@jax.jit
def _sparsemax_cases(x, dy, h):
    """sparsemax's values (both axes), its VJP and central differences of it, in one program."""
    out = {}
    for axis in (-1, 0):
        act = A.get("sparsemax", axis=axis)
        y, pullback = jax.vjp(act.fn, x)
        # central differences of <dy, f(x)>, one input entry at a time
        eye = jnp.eye(x.size, dtype=x.dtype).reshape(x.size, *x.shape)
        fd = jax.vmap(lambda e: jnp.sum(dy * (act.fn(x + h * e) - act.fn(x - h * e))) / (2 * h))(eye)
        out[f"axis={axis}"] = (y, act.vjp(x, y, dy), A.sparsemax_vjp(x, None, dy, axis=axis), pullback(dy)[0], fd)
    out["examples"] = A.sparsemax(np.asarray([[0.0, 0.5, 1.0], [1.0, 1.0, 1.0], [0.0, 0.0, 3.0], [1.0, 0.0, -5.0]]))
    return out


def test_sparsemax_values_and_vjp():
    rng = np.random.default_rng(8)
    x, dy = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    out = _sparsemax_cases(x, dy, 1e-6)
    for axis in (-1, 0):
        y, vjp, vjp_fn, pullback, fd = out[f"axis={axis}"]
        np.testing.assert_allclose(np.asarray(y), _np_sparsemax(x, axis), rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(np.asarray(y).sum(axis), 1.0, rtol=1e-14)
        assert 0 < np.mean(np.asarray(y) == 0) < 1  # sparse, not one-hot everywhere
        np.testing.assert_allclose(np.asarray(vjp_fn), np.asarray(vjp), rtol=1e-14)  # y=None recomputes it
        np.testing.assert_array_equal(np.asarray(pullback), np.asarray(vjp))  # jax's derivative is the hand-written one
        np.testing.assert_allclose(np.asarray(fd).reshape(x.shape), np.asarray(vjp), rtol=1e-7, atol=1e-9)
    # Keras 3.15's gives [0, 0, 0.25] for the first (keras-team/keras#23425); an input exactly
    # at the threshold (the 0 beside 1) is outside the support
    np.testing.assert_allclose(np.asarray(out["examples"]), [[0, 0.25, 0.75], [1 / 3] * 3, [0, 0, 1], [1, 0, 0]])


def test_sparsemax_at_its_threshold_leaves_the_input_out_of_the_support():
    x, dy = np.asarray([1.0, 0.0, -5.0]), np.asarray([1.0, 2.0, 3.0])
    grad = jax.grad(lambda u: A.sparsemax(u) @ dy)
    y, dx, g = jax.jit(lambda v: (A.sparsemax(v), A.sparsemax_vjp(v, None, dy), grad(v)))(x)
    np.testing.assert_array_equal(np.asarray(y), [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(np.asarray(dx), [0.0, 0.0, 0.0])  # support {0}: J = 1 - 1 = 0
    np.testing.assert_array_equal(np.asarray(g), np.asarray(dx))


# ------------------------------------------------------------------------- in a network

# The activations added after Keras 3.15 (three hidden layers a network, each unit's derivative
# alive over most of the data), and sparsemax on the output.
_GRADCHECK_NETS = [
    ["celu", "hard_shrink", "log_sigmoid"],
    ["squareplus", "soft_shrink", "hard_silu"],
    ["sparse_plus", "tanh_shrink", "hard_tanh"],
    ["exponential", "sparse_sigmoid", _get("threshold")],
]


@pytest.mark.parametrize("acts", _GRADCHECK_NETS, ids=lambda acts: "-".join(getattr(a, "name", a) for a in acts))
def test_gradcheck_of_a_tiny_mlp_with_each_activation(acts):
    layers = [fnn.Dense(5, a) for a in acts] + [fnn.Dense(3, "sparsemax")]
    net = fnn.serial(*layers)
    params = net.init(jax.random.PRNGKey(0), (3,), jnp.float64)
    rng = np.random.default_rng(9)
    x, y = rng.normal(size=(6, 3)) * 1.5, rng.dirichlet(np.ones(3), size=6)
    report = fnn.gradcheck(net, "mse", params, x, y)
    assert report.passed, str(report)


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
        "celu",
        "exponential",
        "log_sigmoid",
        "hard_tanh",
        "hard_silu",
        "hard_swish",
        "sparse_sigmoid",
        "sparse_plus",
        "squareplus",
        "hard_shrink",
        "soft_shrink",
        "tanh_shrink",
        "threshold",
        "sparsemax",
    }
    assert A.names() == sorted(A.names())
    assert set(A.names()) == expected


def test_get_aliases_defaults_and_kwargs():
    assert A.get(None) == A.get("linear")
    assert A.get(None).name == "linear"
    assert A.get("swish") == A.get("silu") and A.get("swish").name == "silu"
    assert A.get("gelu_approximate") == A.get("gelu_tanh") == A.get("gelu", approximate=True)
    assert A.get("gelu", approximate=False) == A.get("gelu")
    assert A.get("hard_swish") == A.get("hard_silu") and A.get("hard_swish").name == "hard_silu"
    # PyTorch's class names resolve too
    for torch_name, name in [("Hardswish", "hard_silu"), ("Hardtanh", "hard_tanh"), ("LogSigmoid", "log_sigmoid")]:
        assert A.get(torch_name).name == name
    for torch_name, name in [("CELU", "celu"), ("Softshrink", "soft_shrink"), ("Tanhshrink", "tanh_shrink")]:
        assert A.get(torch_name).name == name
    assert A.get("celu") == A.get("celu", alpha=1.0) and A.get("squareplus") == A.get("squareplus", b=4)
    assert A.get("hard_shrink") == A.get("hard_shrink", threshold=0.5) == A.get("HardShrink")
    assert A.get("leaky_relu") == A.get("leaky_relu", negative_slope=0.2)
    assert A.get("leaky_relu", alpha=0.1) == A.get("leaky_relu", negative_slope=0.1)
    assert A.get("leaky_relu", negative_slope=0.1) != A.get("leaky_relu")
    assert A.get("elu", alpha=0.5) != A.get("elu")
    assert A.get("softmax", axis=0) != A.get("softmax")
    act = A.get("relu")
    assert A.get(act) is act
    x = np.asarray([-2.0, 3.0])
    leaky_01, leaky_default, elu_05 = jax.jit(
        lambda xx: (A.get("leaky_relu", negative_slope=0.1)(xx), A.get("leaky_relu")(xx), A.get("elu", alpha=0.5)(xx))
    )(x)
    np.testing.assert_allclose(np.asarray(leaky_01), [-0.2, 3.0])
    np.testing.assert_allclose(np.asarray(leaky_default), [-0.4, 3.0])  # Keras 3 default
    np.testing.assert_allclose(np.asarray(elu_05), [0.5 * math.expm1(-2), 3.0])


def test_get_results_hashable_and_equal():
    a = A.get("leaky_relu", negative_slope=0.1)
    b = A.get("leaky_relu", negative_slope=np.float64(0.1))
    assert a == b and hash(a) == hash(b)
    table = {_get(n): n for n in A.names()}
    assert len(table) == len(A.names()) - 3  # the three aliases collapse onto their targets
    assert table[A.get("relu")] == "relu"


def test_activation_repr_names_a_built_in_with_the_options_that_are_not_its_defaults():
    assert activation_repr(A.get("relu")) == "relu" and activation_repr(A.get("swish")) == "silu"
    assert activation_repr(A.get("leaky_relu", negative_slope=0.2)) == "leaky_relu"
    assert activation_repr(A.get("leaky_relu", alpha=0.5)) == "leaky_relu(negative_slope=0.5)"
    assert activation_repr(A.get("elu", alpha=2)) == "elu(alpha=2.0)"
    assert activation_repr(A.get("log_softmax", axis=0)) == "log_softmax(axis=0)"
    assert activation_repr(A.get("celu", alpha=0.5)) == "celu(alpha=0.5)"
    assert activation_repr(A.get("hard_swish")) == "hard_silu" and activation_repr(A.get("sparsemax")) == "sparsemax"
    # threshold's options have no defaults: both are shown
    assert activation_repr(_get("threshold")) == "threshold(threshold=0.5, default_value=-1.0)"
    assert activation_repr(A.get("gelu", approximate=True)) == "gelu_tanh"
    # an Activation of your own, even under a built-in's name, by its name alone
    assert activation_repr(A.Activation("elu", lambda x: x, lambda x, y, dy: dy)) == "elu"


def test_equal_activations_share_one_compilation():
    traces = []

    def apply(act, x):
        traces.append(act.name)
        return act(x)

    f = jax.jit(apply, static_argnums=0)
    x = np.ones(3)
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
        A.get("leaky_relu", negative_slope=jax.device_put(np.ones(2)))
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
    for name in ALONG_AXIS:
        with pytest.raises(ValueError, match="not elementwise"):
            A.derivative(name, jax.device_put(np.ones(3)))


@pytest.mark.parametrize(
    "name,kw,error,message",
    [
        ("celu", {"alpha": 0.0}, ValueError, "alpha must be > 0, got 0.0"),
        ("celu", {"alpha": -1}, ValueError, "alpha must be > 0"),
        ("squareplus", {"b": 0}, ValueError, "b must be > 0"),
        ("squareplus", {"b": float("inf")}, ValueError, "b must be finite"),
        ("hard_shrink", {"threshold": -0.5}, ValueError, "threshold must be >= 0"),
        ("soft_shrink", {"threshold": float("nan")}, ValueError, "threshold must be finite"),
        ("threshold", {"threshold": 0.0, "default_value": float("-inf")}, ValueError, "default_value must be finite"),
        ("threshold", {}, TypeError, "'threshold' needs threshold and default_value"),
        ("threshold", {"threshold": 0.0}, TypeError, "'threshold' needs default_value"),
        ("soft_shrink", {"lambd": 0.5}, TypeError, r"unexpected keyword.*allowed: threshold"),
        ("sparsemax", {"axis": 0.5}, TypeError, "axis must be an int"),
    ],
)
def test_bad_options_of_the_keras_3_15_activations(name, kw, error, message):
    with pytest.raises(error, match=message):
        A.get(name, **kw)
    if error is TypeError and "needs" in message:  # the layers take it once its options are given
        with pytest.raises(error, match="'threshold' needs"):
            fnn.Dense(2, activation=name)
        assert fnn.Dense(2, activation=_get(name)) is not None


def test_an_activation_of_the_user_s_is_refused_where_its_calls_cannot_bind():
    """fn(x) and vjp(x, y, dy) are the calls the layers make: a vjp of (x, dy) is refused where
    the layer is built (it failed in the backward, blamed on the layer after it)."""
    two = A.Activation("v2", lambda x: x * x, lambda x, dy: 2 * x * dy)
    message = r"^activation 'v2': the layers call vjp\(x, y, dy\), but its vjp takes \(x, dy\)$"
    for build in (lambda: A.get(two), lambda: fnn.Dense(4, activation=two), lambda: fnn.Activation(two)):
        with pytest.raises(TypeError, match=message):
            build()
    with pytest.raises(TypeError, match=r"^activation 'f2': the layers call fn\(x\), but its fn takes \(x, y\)$"):
        fnn.mlp([2], activation=A.Activation("f2", lambda x, y: x, lambda x, y, dy: dy))
    with pytest.raises(TypeError, match=r"^activation 'nofn': fn must be a function fn\(x\), got NoneType$"):
        A.get(A.Activation("nofn", None, lambda x, y, dy: dy))
    # defaults, *args and keyword-only parameters with defaults bind, as do the built-ins
    loose = A.Activation("loose", lambda x, *rest: x, lambda x, y, dy, *, scale=1.0: scale * dy)
    assert A.get(loose) is loose and A.get(A.get("leaky_relu", negative_slope=0.5)).name == "leaky_relu"


# Every kink, tie and saturation point of every registered activation, and huge inputs.
_KINKS_AND_EXTREMES = np.array(
    [0.0, -0.0, 3.0, -3.0, 6.0, -6.0, 1.0, -1.0, 0.5, -0.5, 1e-300, -1e-300, 1e4, -1e4, 1.9e19, -1.9e19, 3e38, -3e38]
    + [100.0, -100.0]
)


@jax.jit
def _autodiff_vs_hand_written(x, dy):
    out = {}
    for name in A.names():
        act = _get(name)
        if name in ALONG_AXIS:
            y, pullback = jax.vjp(act.fn, x)
            out[name] = (pullback(dy)[0], act.vjp(x, y, dy), jax.jacfwd(act.fn)(x) @ dy, jax.jacrev(act.fn)(x) @ dy)
        else:
            out[name] = (jax.vmap(jax.grad(act.fn))(x), A.derivative(act, x))
    return out


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_jax_grad_of_every_activation_is_its_hand_written_derivative(dtype):
    """Autodiff (mode="autodiff", gradcheck's reference, a user's jax.grad) agrees with the manual
    backward at every point, kinks and saturation included (the derivative is attached with
    jax.custom_jvp; finite differences and NumPy references above stay the independent checks)."""
    finfo = np.finfo(dtype)
    x = np.clip(_KINKS_AND_EXTREMES, finfo.min, finfo.max).astype(dtype)
    dy = np.linspace(-1.0, 2.0, x.size).astype(dtype)
    for name, results in _autodiff_vs_hand_written(x, dy).items():
        auto, hand = results[:2]
        if name != "exponential":  # exp overflows, as its value does
            assert np.all(np.isfinite(np.asarray(hand))), name  # gelu_tanh' no longer overflows
        np.testing.assert_array_equal(np.asarray(auto), np.asarray(hand), err_msg=name)
        if len(results) == 4:  # forward and reverse mode agree on the Jacobian
            np.testing.assert_allclose(np.asarray(results[2]), np.asarray(results[3]), rtol=1e-5, atol=1e-30)


def test_jax_grad_reaches_a_learned_slope_or_alpha_as_jax_nn_s_does():
    """A PReLU-style learned ``negative_slope`` or ELU ``alpha`` is differentiable (autodiff of
    the forward for the parameter; the hand-written derivative still gives d/dx), under grad,
    jacfwd, second order and vmap, as ``jax.nn.leaky_relu``/``jax.nn.elu`` are."""
    x = np.linspace(-3.0, 2.0, 6)

    def both(f, ref, a):
        def loss(fn, a, x):
            return jnp.sum(fn(x, a) ** 2)

        return (
            jax.grad(loss, argnums=(1, 2))(f, a, x),
            jax.grad(loss, argnums=(1, 2))(ref, a, x),
            jax.hessian(loss, argnums=1)(f, a, x),
            jax.hessian(loss, argnums=1)(ref, a, x),
            jax.vmap(lambda a: f(x, a))(jnp.stack([a, 2 * a])),
            jax.vmap(lambda a: ref(x, a))(jnp.stack([a, 2 * a])),
        )

    pairs = [(A.leaky_relu, jax.nn.leaky_relu), (A.elu, jax.nn.elu)]
    # the slope's derivative by hand: d/da sum(leaky(x, a)^2) = sum over x < 0 of 2 a x^2
    by_hand = lambda a: jax.grad(lambda a: jnp.sum(A.leaky_relu(x, a) ** 2))(a)
    # one compiled program for both activations and the hand-checked slope derivative
    *results, g = jax.jit(lambda a: [both(f, ref, a) for f, ref in pairs] + [by_hand(a)])(np.float64(0.3))
    for mine_g, ref_g, mine_h, ref_h, mine_v, ref_v in results:
        np.testing.assert_allclose(np.asarray(mine_g[0]), np.asarray(ref_g[0]), rtol=1e-12)
        np.testing.assert_allclose(np.asarray(mine_g[1]), np.asarray(ref_g[1]), rtol=1e-12)
        np.testing.assert_allclose(np.asarray(mine_h), np.asarray(ref_h), rtol=1e-12)
        np.testing.assert_allclose(np.asarray(mine_v), np.asarray(ref_v), rtol=1e-12)
    # a float32 slope promotes a float16 x's output: the tangent follows (jax.nn's does too)
    x16, slope = x.astype(np.float16), np.float32(0.3)
    g16 = jax.jit(jax.grad(lambda v, a: jnp.sum(A.leaky_relu(v, a)), argnums=(0, 1)))(x16, slope)
    assert (g16[0].dtype, g16[1].dtype) == (jnp.float16, jnp.float32)
    np.testing.assert_array_equal(np.asarray(g16[0]), np.where(x16 < 0, np.float16(0.3), np.float16(1)))
    np.testing.assert_allclose(float(g16[1]), float(np.sum(x16[x16 < 0])), rtol=1e-6)
    np.testing.assert_allclose(float(g), 2 * 0.3 * np.sum(x[x < 0] ** 2), rtol=1e-12)


def test_swapped_byte_order_inputs_are_used_by_their_values():
    """A big-endian NumPy input (JAX refuses '>f8') gives the native one's values; an object
    array is named."""
    x = np.array([-1.5, 0.0, 2.0])
    # the input a constant of the trace (a concrete NumPy array, as an eager call takes it): one program
    tanh, relu = jax.jit(lambda: (A.tanh(swapped(x)), A.relu(swapped(x))))()
    np.testing.assert_allclose(tanh, np.tanh(x), rtol=1e-15)
    np.testing.assert_array_equal(relu, np.maximum(x, 0.0))
    with pytest.raises(TypeError, match=r"^x must hold numbers; got dtype object"):
        A.relu(np.ones(2, object))
