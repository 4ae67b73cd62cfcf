"""Initializers: Keras's formulas under Keras's names and PyTorch's under PyTorch's, checked by
bounds, sample statistics and Kolmogorov–Smirnov distances against limits, standard deviations
and distributions computed here from the fans, plus determinism, dtypes and the registry."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import initializers as I

FI, FO = 250, 400  # one kernel shape for every statistical test: 1e5 samples
SHAPE = (FI, FO)
N = FI * FO
KEY = jax.random.PRNGKey(0)


def _truncated_std(a=2.0):
    """Std of a standard normal truncated to [-a, a], from the closed form."""
    pdf = math.exp(-a * a / 2) / math.sqrt(2 * math.pi)
    mass = math.erf(a / math.sqrt(2))  # P(|z| <= a)
    return math.sqrt(1 - 2 * a * pdf / mass)


# name -> variance s of the Keras formula, for (fan_in, fan_out) = (FI, FO)
VARIANCE = {
    "glorot_uniform": 2 / (FI + FO),
    "glorot_normal": 2 / (FI + FO),
    "he_uniform": 2 / FI,
    "he_normal": 2 / FI,
    "lecun_uniform": 1 / FI,
    "lecun_normal": 1 / FI,
}


def test_truncation_constant():
    assert _truncated_std() == pytest.approx(I.TRUNCATED_NORMAL_STD, rel=1e-12)


@pytest.mark.parametrize("name", ["glorot_uniform", "he_uniform", "lecun_uniform"])
def test_uniform_bounds_and_statistics(name):
    limit = {
        "glorot_uniform": math.sqrt(6 / (FI + FO)),
        "he_uniform": math.sqrt(6 / FI),
        "lecun_uniform": math.sqrt(3 / FI),
    }[name]
    w = np.asarray(getattr(I, name)()(KEY, SHAPE), dtype=np.float64)
    chex.assert_shape(w, SHAPE)
    assert np.abs(w).max() <= limit
    assert np.abs(w).max() > 0.999 * limit  # the whole interval is used
    std = limit / math.sqrt(3)
    assert abs(w.mean()) < 5 * std / math.sqrt(N)
    assert w.std() == pytest.approx(std, rel=0.015)
    assert w.std() == pytest.approx(math.sqrt(VARIANCE[name]), rel=0.015)


@pytest.mark.parametrize("name", ["glorot_normal", "he_normal", "lecun_normal"])
def test_truncated_normal_bounds_and_statistics(name):
    s = VARIANCE[name]
    scale = math.sqrt(s) / 0.87962566103423978
    w = np.asarray(getattr(I, name)()(KEY, SHAPE), dtype=np.float64)
    assert np.abs(w).max() <= 2 * scale * (1 + 1e-6)  # truncated at two (unscaled) stds
    assert np.abs(w).max() > 1.99 * scale
    expected_std = scale * _truncated_std()  # == sqrt(s): the correction undoes the truncation
    assert abs(w.mean()) < 5 * expected_std / math.sqrt(N)
    assert w.std() == pytest.approx(expected_std, rel=0.015)
    assert w.std() == pytest.approx(math.sqrt(s), rel=0.015)


def test_plain_random_initializers():
    w = np.asarray(I.random_normal()(KEY, SHAPE), dtype=np.float64)
    assert abs(w.mean()) < 5 * 0.05 / math.sqrt(N)
    assert w.std() == pytest.approx(0.05, rel=0.015)
    assert (np.abs(w) > 2 * 0.05).mean() == pytest.approx(0.0455, abs=0.005)  # not truncated
    w = np.asarray(I.random_uniform()(KEY, SHAPE), dtype=np.float64)
    assert -0.05 <= w.min() < -0.0499 and 0.0499 < w.max() <= 0.05
    assert w.std() == pytest.approx(0.1 / math.sqrt(12), rel=0.015)
    w = np.asarray(I.truncated_normal(mean=1.0, stddev=0.1)(KEY, SHAPE), dtype=np.float64)
    assert np.abs(w - 1.0).max() <= 0.2 * (1 + 1e-6)
    assert w.mean() == pytest.approx(1.0, abs=5 * 0.1 / math.sqrt(N))
    assert w.std() == pytest.approx(0.1 * _truncated_std(), rel=0.015)  # Keras does not rescale
    w = np.asarray(I.random_uniform(2.0, 3.0)(KEY, SHAPE))
    assert np.all((w >= 2.0) & (w <= 3.0))


def test_constant_initializers():
    np.testing.assert_array_equal(np.asarray(I.zeros()(KEY, (2, 3))), np.zeros((2, 3)))
    np.testing.assert_array_equal(np.asarray(I.ones()(KEY, (4,))), np.ones(4))
    np.testing.assert_array_equal(np.asarray(I.constant(2.5)(KEY, (2, 2))), np.full((2, 2), 2.5))
    z = I.zeros()(KEY, (3,), jnp.int32)
    assert z.dtype == jnp.int32
    assert I.zeros()(KEY, ()).shape == ()  # constants need no fans


def test_compute_fans():
    assert I.compute_fans((3, 4)) == (3, 4)
    assert I.compute_fans((7,)) == (7, 7)
    assert I.compute_fans((3, 3, 16, 32)) == (3 * 3 * 16, 3 * 3 * 32)  # receptive-field rule
    # a >2-D kernel is scaled by its fans too (receptive field 1 * 2: fan_in 2 * FI, not FI).
    # (XLA on CPU takes ~10 s to compile the random bits of a small kernel like (2, 5, 8, 6),
    # whose loops it unrolls; 1e5 draws of this shape compile in well under a second.)
    w = np.asarray(I.he_uniform()(KEY, (1, 2, FI, FO)))
    assert np.abs(w).max() <= math.sqrt(6 / (2 * FI))


def test_determinism_keys_and_dtypes():
    # SHAPE, as the statistical tests: the float32 programs are compiled already (a small shape
    # compiles slowly: XLA on CPU unrolls its loops).
    for factory in [I.glorot_uniform, I.he_normal, I.random_normal, I.random_uniform]:
        init = factory()
        a, b = init(KEY, SHAPE), init(KEY, SHAPE)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        c = init(jax.random.PRNGKey(1), SHAPE)
        assert not np.array_equal(np.asarray(a), np.asarray(c))
        assert a.dtype == jnp.float32  # the default, even with x64 on
        assert jax.eval_shape(lambda k, init=init: init(k, SHAPE, jnp.float64), KEY).dtype == jnp.float64  # traced only
        assert init(jax.random.key(3), SHAPE).shape == SHAPE  # typed keys work too


def test_get_names_and_equality():
    assert I.names() == sorted(I.names())
    for name in [
        "glorot_uniform",
        "glorot_normal",
        "he_uniform",
        "he_normal",
        "lecun_uniform",
        "lecun_normal",
        "zeros",
        "ones",
        "random_normal",
        "random_uniform",
        "truncated_normal",
        "constant",
        "variance_scaling",
        "zero",
        "one",
        "normal",
        "uniform",
    ]:
        assert name in I.names()
        assert callable(I.get(name))
    assert I.get("he_normal") == I.he_normal() and hash(I.get("he_normal")) == hash(I.he_normal())
    assert I.get("glorot_uniform") != I.get("glorot_normal")
    assert I.get("glorot_uniform") == I.variance_scaling(1.0, "fan_avg", "uniform")
    assert I.get("he_normal") == I.variance_scaling(2.0, "fan_in", "truncated_normal")
    assert I.get("zero") == I.zeros() and I.get("normal") == I.random_normal()
    assert I.get("xavier_uniform") == I.glorot_uniform()
    assert I.get("random_normal", stddev=0.1) == I.random_normal(stddev=0.1) != I.random_normal()

    def custom(key, shape, dtype=jnp.float32):
        return jnp.full(shape, 7.0, dtype)

    assert I.get(custom) is custom


def test_variance_scaling_takes_the_distribution_in_any_case_as_keras():
    """Keras's VarianceScaling lower-cases ``distribution``; "normal" is its truncated normal."""
    cases = [("Normal", "truncated_normal"), ("UNIFORM", "uniform"), ("Untruncated_Normal", "untruncated_normal")]
    for given, distribution in [*cases, ("normal", "truncated_normal")]:
        assert I.variance_scaling(2.0, "fan_in", given) == I.variance_scaling(2.0, "fan_in", distribution)
    assert I.variance_scaling(distribution="Normal") == I.lecun_normal()


def test_errors():
    with pytest.raises(ValueError, match="unknown initializer 'glorot'.*glorot_normal.*zeros"):
        I.get("glorot")
    with pytest.raises(TypeError, match="name \\(str\\) or a callable"):
        I.get(3)
    with pytest.raises(TypeError, match="'he_normal'.*unexpected keyword"):
        I.get("he_normal", scale=2.0)
    with pytest.raises(TypeError, match="only apply to a name"):
        I.get(I.zeros(), value=1.0)
    init = I.glorot_uniform()
    with pytest.raises(ValueError, match="at least one dimension"):
        init(KEY, ())
    with pytest.raises(ValueError, match="zero fan"):
        init(KEY, (0, 5))
    with pytest.raises(ValueError, match="zero fan"):
        I.he_normal()(KEY, (4, 0))
    with pytest.raises(ValueError, match="non-negative"):
        init(KEY, (-1, 5))
    with pytest.raises(TypeError, match="shape must be a sequence of ints"):
        init(KEY, (2.5, 3))
    with pytest.raises(TypeError, match="dtype must be a floating dtype"):
        init(KEY, (2, 3), jnp.int32)
    with pytest.raises(ValueError, match="minval must be <= maxval"):
        I.random_uniform(1.0, 0.0)
    with pytest.raises(ValueError, match="stddev must be >= 0"):
        I.random_normal(stddev=-1.0)
    with pytest.raises(ValueError, match="mean must be finite"):
        I.random_normal(mean=float("nan"))
    with pytest.raises(TypeError, match="stddev must be a real number"):
        I.truncated_normal(stddev="0.1")
    with pytest.raises(ValueError, match="mode must be one of"):
        I.variance_scaling(mode="fan_sum")
    with pytest.raises(ValueError, match="distribution must be one of .*'normal'.* got 'Laplace'"):
        I.variance_scaling(distribution="Laplace")
    with pytest.raises(TypeError, match="distribution must be one of"):
        I.variance_scaling(distribution=None)
    with pytest.raises(ValueError, match="mode must be one of .* got 'FAN_IN'"):  # Keras does not lower-case it
        I.variance_scaling(mode="FAN_IN")
    with pytest.raises(ValueError, match="scale must be > 0"):
        I.variance_scaling(scale=0.0)
    # a Keras-style int seed (or an array of keys) is named as the key, for every random family
    for random_init in (init, I.he_normal(), I.random_normal(), I.truncated_normal(), I.random_uniform()):
        with pytest.raises(TypeError, match=r"key must be a jax PRNG key .*got 0"):
            random_init(0, (3, 4))
    with pytest.raises(ValueError, match="key must be ONE PRNG key"):
        init(jax.random.split(KEY, 2), (3, 4))


def test_a_user_initializer_is_checked_where_the_layer_draws_it(compiles):
    # the shape it returns: a torch-style (out, in) kernel is named at init, not by the forward
    torch_like = lambda key, shape, dtype=jnp.float32: jnp.zeros(shape[::-1], dtype)
    net = fnn.serial(fnn.Dense(4, kernel_initializer=torch_like), fnn.Dense(1))
    message = (
        r"^layer 0 \(dense_0\): init fails for input shape \(3,\): kernel_initializer <lambda> returned an array "
        r"of shape \(4, 3\), expected \(3, 4\)"
    )
    with compiles() as c:
        for call in (lambda: net.init(KEY, (3,)), lambda: net.output_shape((3,)), lambda: fnn.summary(net, (3,))):
            with pytest.raises(ValueError, match=message):
                call()
        with pytest.raises(TypeError, match=r"bias_initializer listed must return an array of shape \(4,\), got list"):

            def listed(key, shape, dtype=jnp.float32):
                return [0.0] * shape[0]

            jax.eval_shape(lambda k: fnn.Dense(4, bias_initializer=listed).init(k, (3,)), KEY)
        # one without a dtype parameter: refused when the layer is built, naming the signature
        for arg in ("kernel_initializer", "bias_initializer"):
            with pytest.raises(
                TypeError, match=rf"^{arg}: initializer no_dtype must take \(key, shape, dtype\).*\(key, shape\)$"
            ):

                def no_dtype(key, shape):
                    return jnp.zeros(shape)

                fnn.Dense(4, **{arg: no_dtype})
        with pytest.raises(TypeError, match=r"^initializer <lambda> must take \(key, shape, dtype\)"):
            I.get(lambda key, shape: None)
        with pytest.raises(ValueError, match=r"^kernel_initializer: unknown initializer 'glorot'"):
            fnn.Dense(4, kernel_initializer="glorot")
    assert c.count == 0  # all refused while tracing or building
    # jax.nn.initializers keep the signature
    assert fnn.Dense(4, kernel_initializer=jax.nn.initializers.he_normal()).output_shape((3,)) == (4,)


def test_a_user_initializer_that_ignores_dtype_is_cast_to_it():
    float32_only = lambda key, shape, dtype=jnp.float32: jax.random.normal(key, shape, jnp.float32)
    _, params = fnn.Dense(4, kernel_initializer=float32_only).init(KEY, (3,), jnp.bfloat16)
    # Dense's draw: kernel first, then bias (one compiled program for the split and the draw)
    expected = np.asarray(jax.jit(lambda k: float32_only(jax.random.split(k)[0], (3, 4)))(KEY)).astype(jnp.bfloat16)
    assert params["w"].dtype == jnp.bfloat16 and params["b"].dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(params["w"]), expected)


# ---------------------------------------------------------------------------------------------
# PyTorch's names follow torch.nn.init: untruncated normals; Keras's names truncate at ±2.
# 1e6 draws of ONE shape (one compiled draw per distribution), fan_in != fan_out so that the
# fan each formula uses shows.

A, B = 800, 1250
BIG = (A, B)
M = A * B
KS_LIMIT = 1.95 / math.sqrt(M)  # Kolmogorov–Smirnov critical value at the 0.1 % level


def _ks(w, cdf):
    """The Kolmogorov–Smirnov statistic ``sup |F_n - F|`` of the draws ``w`` against ``cdf``."""
    v = np.sort(np.ravel(w))
    f, i = cdf(v), np.arange(1, v.size + 1)
    return max((i / v.size - f).max(), (f - (i - 1) / v.size).max())


def _phi(v):
    from scipy.special import ndtr  # scikit-learn's dependency: there wherever the test extras are

    return ndtr(v)


def _normal(std):
    return lambda v: _phi(v / std)


def _truncated(scale):
    """Keras's draw ``scale * t``, ``t`` a standard normal truncated to [-2, 2]."""
    lo, mass = _phi(-2.0), _phi(2.0) - _phi(-2.0)
    return lambda v: np.clip((_phi(v / scale) - lo) / mass, 0.0, 1.0)


@pytest.mark.parametrize(
    "init, std",
    [
        (I.get("xavier_normal"), math.sqrt(2 / (A + B))),
        (I.get("kaiming_normal"), math.sqrt(2 / A)),  # torch's defaults: leaky_relu, a=0, fan_in
    ],
)
def test_torch_normals_are_untruncated(init, std):
    w = np.asarray(init(KEY, BIG), dtype=np.float64)
    assert abs(w.mean()) < 5 * std / math.sqrt(M)
    assert w.std() == pytest.approx(std, rel=0.005)
    # P(|z| > 3) = 0.27 % for a normal: ~2700 draws; a truncated normal has none
    assert (np.abs(w) > 3 * std).mean() == pytest.approx(0.0027, rel=0.1)
    assert _ks(w, _normal(std)) < KS_LIMIT
    assert _ks(w, _truncated(std / I.TRUNCATED_NORMAL_STD)) > 5 * KS_LIMIT  # the test tells them apart


@pytest.mark.parametrize(
    "init, std",
    [(I.get("glorot_normal"), math.sqrt(2 / (A + B))), (I.get("he_normal"), math.sqrt(2 / A))],
)
def test_keras_normals_are_truncated(init, std):
    scale = std / I.TRUNCATED_NORMAL_STD  # the std of the normal before truncation
    w = np.asarray(init(KEY, BIG), dtype=np.float64)
    assert np.abs(w).max() <= 2 * scale * (1 + 1e-6)  # none beyond 2 (unscaled) stds
    assert np.abs(w).max() > 1.999 * scale
    assert w.std() == pytest.approx(std, rel=0.005)  # the correction restores the std
    assert _ks(w, _truncated(scale)) < KS_LIMIT
    assert _ks(w, _normal(std)) > 5 * KS_LIMIT


def test_torch_normal_options_scale_the_same_draw():
    """mode, nonlinearity, a and gain as torch.nn.init takes them: the same standard normal
    draw, scaled by torch's std."""
    z = np.asarray(I.xavier_normal()(KEY, BIG), dtype=np.float64) / math.sqrt(2 / (A + B))
    cases = [
        (I.xavier_normal(gain=2.0), 2 * math.sqrt(2 / (A + B))),
        (I.kaiming_normal(mode="fan_out"), math.sqrt(2 / B)),
        (I.kaiming_normal(nonlinearity="relu"), math.sqrt(2 / A)),
        (I.kaiming_normal(a=0.2), math.sqrt(2 / (1 + 0.04)) / math.sqrt(A)),
        (I.kaiming_normal(nonlinearity="tanh"), (5 / 3) / math.sqrt(A)),
        (I.get("kaiming_normal", nonlinearity="selu", mode="fan_out"), 0.75 / math.sqrt(B)),
    ]
    for init, std in cases:
        np.testing.assert_allclose(np.asarray(init(KEY, BIG), dtype=np.float64), std * z, rtol=1e-5, atol=1e-7 * std)


@pytest.mark.parametrize(
    "init, bound",
    [
        (I.get("xavier_uniform"), math.sqrt(6 / (A + B))),
        (I.get("kaiming_uniform"), math.sqrt(6 / A)),  # gain sqrt(2) * sqrt(3 / fan_in)
        (I.kaiming_uniform(mode="fan_out", nonlinearity="relu"), math.sqrt(6 / B)),
        (I.kaiming_uniform(a=math.sqrt(5)), math.sqrt(1 / A)),  # torch's nn.Linear default weight
        (I.xavier_uniform(gain=I.calculate_gain("tanh")), (5 / 3) * math.sqrt(6 / (A + B))),
    ],
)
def test_torch_uniforms_use_torch_bounds(init, bound):
    w = np.asarray(init(KEY, BIG), dtype=np.float64)
    assert -bound <= w.min() < -0.9999 * bound and 0.9999 * bound < w.max() <= bound
    assert _ks(w, lambda v: np.clip((v + bound) / (2 * bound), 0.0, 1.0)) < KS_LIMIT


def test_torch_names_in_the_registry_and_their_equalities():
    # the uniforms are the same formulas as Keras's; the normals are not
    assert I.get("xavier_uniform") == I.xavier_uniform() == I.glorot_uniform()
    assert I.get("kaiming_uniform") == I.kaiming_uniform() == I.he_uniform()
    assert I.get("XavierNormal") == I.xavier_normal() != I.glorot_normal()
    assert I.get("kaiming_normal") == I.kaiming_normal() != I.he_normal()
    assert I.get("kaiming_normal", mode="fan_out") == I.kaiming_normal(mode="fan_out")
    assert I.get("kaiming_normal") == I.variance_scaling(2.0, "fan_in", "untruncated_normal")
    assert I.get("xavier_normal") == I.variance_scaling(1.0, "fan_avg", "untruncated_normal")
    for name in ["xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal"]:
        assert name in I.names()
    d = fnn.Dense(4, kernel_initializer="kaiming_normal")
    assert d == fnn.Dense(4, kernel_initializer=I.kaiming_normal())


def test_torch_in_place_normal_and_uniform_take_torchs_defaults_where_keras_s_names_take_keras_s():
    """torch.nn.init.normal_ draws N(0, 1) and uniform_ U(0, 1), with keywords std, a, b; Keras's
    "normal" and "uniform" are RandomNormal(stddev=0.05) and RandomUniform(-0.05, 0.05)."""
    assert I.get("normal_") == I.random_normal(0.0, 1.0) and I.get("Normal_") == I.random_normal(0.0, 1.0)
    assert I.get("uniform_") == I.random_uniform(0.0, 1.0)
    assert I.get("normal") == I.random_normal() == I.random_normal(0.0, 0.05)
    assert I.get("uniform") == I.random_uniform() == I.random_uniform(-0.05, 0.05)
    assert I.get("normal_", mean=1.0, std=0.5) == I.random_normal(1.0, 0.5)
    assert I.get("uniform_", a=-2.0, b=3.0) == I.random_uniform(-2.0, 3.0)
    assert I.get("kaiming_uniform_") == I.kaiming_uniform() and I.get("xavier_normal_") == I.xavier_normal()
    assert {"normal_", "uniform_"} <= set(I.names())
    assert fnn.Dense(4, kernel_initializer="normal_") == fnn.Dense(4, kernel_initializer=I.random_normal(0.0, 1.0))
    with pytest.raises(TypeError, match=r"initializer 'normal_': \['std', 'stddev'\] name the same argument twice"):
        I.get("normal_", std=1.0, stddev=2.0)
    with pytest.raises(TypeError, match="initializer 'uniform_'.*unexpected keyword argument 'std'"):
        I.get("uniform_", std=1.0)


def test_constant_minus_zero_is_its_own_initializer_and_init_program():
    """-0.0 == 0.0 in Python: the two compared equal and the second network took the first
    one's compiled init, filling +0.0 (Keras's Constant(-0.0) fills -0.0)."""
    assert I.constant(-0.0) != I.constant(0.0) and I.constant(1) == I.constant(1.0) == I.ones()
    nets = [fnn.serial(fnn.Dense(2, bias_initializer=I.constant(v))) for v in (0.0, -0.0)]
    assert nets[0] != nets[1]
    signs = [np.signbit(np.asarray(n.init(KEY, (3,))[0]["b"])).tolist() for n in nets]
    assert signs == [[False, False], [True, True]]


def test_calculate_gain_is_torchs():
    assert I.calculate_gain("linear") == I.calculate_gain("sigmoid") == I.calculate_gain("conv2d") == 1.0
    assert I.calculate_gain("tanh") == pytest.approx(5 / 3, rel=1e-15)
    assert I.calculate_gain("relu") == pytest.approx(math.sqrt(2), rel=1e-15)
    assert I.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01**2)), rel=1e-15)
    assert I.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04), rel=1e-15)
    assert I.calculate_gain("selu") == 0.75
    with pytest.raises(ValueError, match="nonlinearity must be one of.*'leaky_relu'.*got 'gelu'"):
        I.calculate_gain("gelu")
    with pytest.raises(TypeError, match="param must be a real number"):
        I.calculate_gain("leaky_relu", "0.1")
    with pytest.raises(ValueError, match="gain must be > 0"):
        I.xavier_normal(gain=0.0)
    with pytest.raises(ValueError, match="mode must be one of \\('fan_in', 'fan_out'\\), got 'fan_avg'"):
        I.kaiming_normal(mode="fan_avg")
    with pytest.raises(TypeError, match="a must be a real number"):
        I.kaiming_uniform(a="0.2")


# ---------------------------------------------------------------------------------------------
# orthogonal and identity: Keras's Orthogonal and Identity (PyTorch's orthogonal_ and eye_).

# shape -> the (rows, cols) matrix Keras factors: rows = prod(shape[:-1]), cols = shape[-1]
_ORTHOGONAL_SHAPES = {(6, 4): (6, 4), (4, 6): (4, 6), (2, 3, 4): (6, 4), (3, 2, 8): (6, 8), (5, 5): (5, 5)}


def _ref_orthogonal(key, rows, cols, gain):
    """Keras's formula in NumPy float64, from the same normal draw (fnn draws it flat)."""
    a = np.asarray(jax.random.normal(key, (rows * cols,), jnp.float64)).reshape(max(rows, cols), min(rows, cols))
    q, r = np.linalg.qr(a)
    q = q * np.sign(np.diag(r))
    return gain * (q.T if rows < cols else q)


def test_orthogonal_is_keras_formula_with_orthonormal_rows_or_columns(compiles):
    init, key = I.orthogonal(gain=1.5), jax.random.PRNGKey(7)
    # every shape and dtype in one compiled program
    draws = jax.jit(
        lambda k: {
            "f64": {s: init(k, s, jnp.float64) for s in _ORTHOGONAL_SHAPES},
            "again": init(k, (6, 4), jnp.float64),
            "other": init(jax.random.fold_in(k, 1), (6, 4), jnp.float64),
            "f32": init(k, (6, 4)),
            "bf16": init(k, (6, 4), jnp.bfloat16),
        }
    )(key)
    for shape, (rows, cols) in _ORTHOGONAL_SHAPES.items():
        w = np.asarray(draws["f64"][shape])
        assert w.shape == shape and w.dtype == np.float64
        m = w.reshape(rows, cols)
        gram = m.T @ m if rows >= cols else m @ m.T  # orthonormal columns (tall) or rows (wide)
        np.testing.assert_allclose(gram, 2.25 * np.eye(min(rows, cols)), atol=1e-12)
        np.testing.assert_allclose(m, _ref_orthogonal(key, rows, cols, 1.5), rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(np.asarray(draws["again"]), np.asarray(draws["f64"][(6, 4)]))  # per key
    assert not np.allclose(np.asarray(draws["other"]), np.asarray(draws["again"]))
    assert draws["f32"].dtype == jnp.float32 and draws["bf16"].dtype == jnp.bfloat16
    for low in ("f32", "bf16"):  # drawn and factored in float32, then rounded
        m = np.asarray(draws[low], np.float64)
        np.testing.assert_allclose(m.T @ m, 2.25 * np.eye(4), atol=1e-5 if low == "f32" else 5e-2)
    # a Dense kernel by name: all the layers' initializers still in one compiled program
    net = fnn.serial(fnn.Dense(3, kernel_initializer="orthogonal"), fnn.Dense(3, kernel_initializer="identity"))
    with compiles() as c:
        params = net.init(key, (5,), jnp.float64)
    assert c.count == 1
    w0 = np.asarray(params[0]["w"])
    np.testing.assert_allclose(w0.T @ w0, np.eye(3), atol=1e-12)
    np.testing.assert_array_equal(np.asarray(params[1]["w"]), np.eye(3))
    assert repr(net.layers[0]) == "Dense(3, kernel_initializer=orthogonal)"


def test_identity_values_dtypes_and_the_names_of_both():
    eye = I.identity(gain=0.5)
    np.testing.assert_array_equal(np.asarray(eye(KEY, (2, 3), jnp.float64)), 0.5 * np.eye(2, 3))
    np.testing.assert_array_equal(np.asarray(eye(KEY, (3, 2))), 0.5 * np.eye(3, 2))
    assert I.identity(3)(KEY, [2, 2], jnp.int32).tolist() == [[3, 0], [0, 3]]  # any dtype
    assert I.identity()(KEY, (2, 2)).dtype == jnp.float32
    for name in ["orthogonal", "identity", "eye", "orthogonal_initializer", "identity_initializer"]:
        assert name in I.names()
    assert I.get("Orthogonal", gain=2.0) == I.orthogonal(2.0) != I.orthogonal()
    assert I.get("OrthogonalInitializer") == I.orthogonal() and hash(I.get("orthogonal")) == hash(I.orthogonal())
    assert I.get("IdentityInitializer") == I.get("eye") == I.identity()  # Keras's alias, torch's eye_
    assert repr(I.identity(2.0)) == "identity(gain=2.0)" and repr(I.orthogonal()) == "orthogonal(gain=1.0)"


def test_orthogonal_and_identity_errors():
    for shape in [(4,), 4, ()]:  # Keras: at least two dimensions
        with pytest.raises(ValueError, match=r"orthogonal needs a shape of at least two dimensions"):
            I.orthogonal()(KEY, shape)
    for shape in [(3,), (2, 2, 2)]:  # Keras: 2-D only
        with pytest.raises(ValueError, match=r"identity needs a 2-D shape \(rows, cols\), got"):
            I.identity()(KEY, shape)
    with pytest.raises(TypeError, match="dtype must be a floating dtype"):
        I.orthogonal()(KEY, (3, 3), jnp.int32)
    with pytest.raises(TypeError, match=r"key must be a jax PRNG key .*got 0"):
        I.orthogonal()(0, (3, 4))
    with pytest.raises(ValueError, match="gain must be finite"):
        I.orthogonal(gain=float("inf"))
    with pytest.raises(TypeError, match="gain must be a real number"):
        I.identity(gain="1")
    with pytest.raises(TypeError, match="'identity'.*unexpected keyword"):
        I.get("identity", seed=1)


def test_random_initializers_in_16_bit_floats_are_drawn_in_float32_and_rounded_unbiased():
    """Drawn in bfloat16's own 8 bits a uniform is floored onto 128 values (mean 0.5 - 2**-8), so
    every kernel's mean sat ~1/70 of its std below 0 (glorot_uniform: -0.0135) and a ReLU layer's
    pre-activations went negative; float16 had 1,024 values. Drawn in float32 and rounded, the
    16-bit draws are the float32 draw rounded, with no bias (0.5M draws: standard error 0.0014)."""
    key, shape = jax.random.PRNGKey(0), (512, 1024)
    names = ("glorot_uniform", "he_normal", "lecun_normal", "random_uniform", "truncated_normal")
    draws = jax.jit(
        lambda k: {(n, d): I.get(n)(k, shape, d) for n in names for d in ("float32", "bfloat16", "float16")}
    )(key)
    for (name, dtype), w in draws.items():
        assert w.dtype == jnp.dtype(dtype), (name, dtype)
        v = np.asarray(w, np.float64)
        assert abs(v.mean() / v.std()) < 0.005, (name, dtype, v.mean() / v.std())
        assert len(np.unique(v)) > (2_000 if dtype != "float32" else 500_000), (name, dtype)
        # the float32 draw rounded (within one step of the 16-bit grid: XLA may fuse the scaling
        # into the rounding with other float32 bits, which flips a rounding now and then)
        f32 = np.asarray(draws[name, "float32"], np.float64)
        np.testing.assert_allclose(v, f32, rtol=float(jnp.finfo(dtype).eps), atol=1e-7, err_msg=f"{name} {dtype}")
