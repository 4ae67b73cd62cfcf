"""Layers: shapes, params layout, and every hand-written backward against ``jax.vjp``.

Compilations: every check runs its numeric work as one jitted program (a parametrised family
as one program for all its cases, in a module-scoped fixture); eager calls would compile every
primitive at every shape and dtype on their own. Inputs reach the programs as NumPy arrays
(``jnp.asarray`` compiles a small program of its own per shape and dtype), and where params are
only a point to evaluate at they are drawn by NumPy in init's structure (``_like_init``).
"""

import collections
import copy
import functools
import pickle
import re
import warnings

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import swapped

import fnn
from fnn import layers as L

KEY = jax.random.PRNGKey(0)


def _like_init(init, seed=1):
    """The params ``init()`` returns, in structure and dtypes (traced, not compiled) and in
    distribution (glorot-uniform kernels ``w``, unit ``scale``, zero biases and offsets), drawn
    by NumPy. For tests where the params are only a point to evaluate at: a compiled init holds a
    threefry PRNG per layer, seconds of compile time each. The tests of init itself use init."""
    rng = np.random.default_rng(seed)

    def draw(path, leaf):
        name = path[-1].key
        if name == "w":
            limit = np.sqrt(6 / (leaf.shape[-2] + leaf.shape[-1]))
            return rng.uniform(-limit, limit, leaf.shape).astype(leaf.dtype)
        return (np.ones if name == "scale" else np.zeros)(leaf.shape, leaf.dtype)

    return jax.device_put(jax.tree_util.tree_map_with_path(draw, jax.eval_shape(init)))


@functools.partial(jax.jit, static_argnums=0)
def _backward_and_vjp(layers, params, xs, dys, keys):
    """For each ``(layer, train)`` in ``layers``: its output, its backward and jax.vjp of its
    forward at ``params[i]``, input ``xs[i]`` and cotangent ``dys[i]``; one compiled program."""
    out = []
    for (layer, train), p, x, dy, key in zip(layers, params, xs, dys, keys, strict=True):
        y, cache = layer.forward(p, x, key=key, train=train)
        _, vjp = jax.vjp(lambda pp, xx: layer.forward(pp, xx, key=key, train=train)[0], p, x)
        out.append((p, y, layer.backward(p, cache, dy), vjp(dy)))
    return out


def _vjp_checks(cases, dtype, *, batch=5, train=False, key=None):
    """Backward of each ``(layer, input_shape)`` vs jax.vjp of its own forward, at params shaped
    by the layer's init and a random input and cotangent:
    ``[(params, y, (dparams, dx), (ref_dparams, ref_dx))]``, all from one compiled program."""
    params, xs, dys = [], [], []
    for layer, input_shape in cases:
        rng = np.random.default_rng(1)
        params.append(_like_init(lambda: layer.init(KEY, input_shape, dtype)[1]))
        xs.append(rng.standard_normal((batch, *input_shape)).astype(np.dtype(dtype)))
        dys.append(rng.standard_normal((batch, *layer.output_shape(input_shape))).astype(np.dtype(dtype)))
    layers = tuple((layer, train) for layer, _ in cases)
    return _backward_and_vjp(layers, params, xs, dys, [key] * len(cases))


def _assert_vjp(result, dtype, rtol):
    params, y, (dparams, dx), (ref_dparams, ref_dx) = result
    chex.assert_trees_all_equal_shapes_and_dtypes(dparams, ref_dparams)
    chex.assert_trees_all_close(dparams, ref_dparams, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(dx, ref_dx, rtol=rtol, atol=rtol)
    assert dx.dtype == dtype
    return params, y


def _vjp_check(layer, input_shape, dtype, rtol, **kwargs):
    """Backward of ``layer`` vs jax.vjp of its own forward with a random cotangent."""
    (result,) = _vjp_checks([(layer, input_shape)], dtype, **kwargs)
    return _assert_vjp(result, dtype, rtol)


DENSE_ACTIVATIONS = [
    "linear",
    "relu",
    "tanh",
    "sigmoid",
    "elu",
    "gelu",
    "softplus",
    "softmax",
    "log_softmax",
    "leaky_relu",
    "selu",
    "silu",
    "mish",
]


DENSE_ACTIVATIONS_FLOAT32 = ["relu", "tanh", "softmax"]


def _dense_pairs(activations, units, input_shape, dtype):
    results = _vjp_checks([(L.Dense(units, a), input_shape) for a in activations], dtype)
    return dict(zip(activations, results, strict=True))


@pytest.fixture(scope="module")
def dense_pairs_float64():
    """The float64 family's backward/vjp pairs, all cases in one compiled program."""
    return _dense_pairs(DENSE_ACTIVATIONS, 4, (3,), jnp.float64)


@pytest.fixture(scope="module")
def dense_pairs_float32():
    return _dense_pairs(DENSE_ACTIVATIONS_FLOAT32, 6, (7,), jnp.float32)


@pytest.mark.parametrize("activation", DENSE_ACTIVATIONS)
def test_dense_backward_matches_vjp_float64(dense_pairs_float64, activation):
    _assert_vjp(dense_pairs_float64[activation], jnp.float64, 1e-10)


@pytest.mark.parametrize("activation", DENSE_ACTIVATIONS_FLOAT32)
def test_dense_backward_matches_vjp_float32(dense_pairs_float32, activation):
    _assert_vjp(dense_pairs_float32[activation], jnp.float32, 1e-5)


def test_dense_without_bias_and_with_leading_axes():
    params, _ = _vjp_check(L.Dense(3, "tanh", use_bias=False), (2, 4), jnp.float64, 1e-10)
    assert set(params) == {"w"}


@pytest.mark.parametrize("dtype,rtol", [(jnp.float64, 1e-10), (jnp.float32, 1e-5)])
def test_activation_layernorm_flatten_backward(dtype, rtol):
    cases = _vjp_checks(
        [
            (L.Activation("gelu_tanh"), (4,)),
            (L.Activation("softmax"), (4,)),
            (L.LayerNorm(), (6,)),
            (L.LayerNorm(center=False), (6,)),
            (L.LayerNorm(scale=False), (6,)),
            (L.Flatten(), (2, 3)),
            (L.UnitNormalization(), (4,)),
            (L.UnitNormalization(axis=(1, 2)), (2, 3)),
            (L.Reshape((3, -1)), (2, 2, 3)),
        ],
        dtype,
    )
    for result in cases:  # one program for the nine layers
        _assert_vjp(result, dtype, rtol)


def test_layernorm_with_nontrivial_params_matches_numpy():
    layer = L.LayerNorm(epsilon=1e-3)
    params = {"scale": np.arange(1.0, 6.0), "offset": np.linspace(-1, 1, 5)}
    x = np.random.default_rng(0).normal(size=(3, 5))
    dy = np.random.default_rng(1).normal(size=(3, 5))

    @jax.jit
    def run(params, x, dy):
        layer.init(KEY, (5,), jnp.float64)  # traced as before; the params above stand in for its own
        y, cache = layer.forward(params, x)
        _, vjp = jax.vjp(lambda p, xx: layer.forward(p, xx)[0], params, x)
        return y, layer.backward(params, cache, dy), vjp(dy)

    y, backward, reference = run(params, x, dy)
    ref = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-3) * np.arange(
        1.0, 6.0
    ) + np.linspace(-1, 1, 5)
    np.testing.assert_allclose(y, ref, rtol=1e-12)
    chex.assert_trees_all_close(backward, reference, rtol=1e-10)


def test_unit_normalization_matches_keras_and_its_clip_keeps_a_zero_sample_finite():
    """Keras 3.15.1's ``UnitNormalization()(x)`` (float32) for the rows below, a zero row and one
    of norm 1e-13 (r clipped at 1e12) included; over two axes too. The backward: the projection
    ``r (dy - y sum(y dy))``, and ``r dy`` where r is clipped (``jax.grad`` of Keras's formula
    is NaN there: rsqrt's derivative at 0 times the minimum's zero)."""
    x = np.array([[3.0, 4.0, 0.0], [1.0, -2.0, 2.0], [0.0, 0.0, 0.0], [1e-13, 0.0, 0.0]])
    dy = np.array([[1.0, 2.0, -1.0], [0.5, 0.0, 1.0], [1.0, -1.0, 2.0], [3.0, 1.0, 1.0]])
    x3 = np.arange(12.0).reshape(2, 2, 3) - 5
    layers = (L.UnitNormalization(), L.UnitNormalization(axis=(1, 2)))

    @jax.jit
    def run(x, dy, x3):
        (y, cache), (y3, _) = layers[0].forward({}, x), layers[1].forward({}, x3)
        return y, layers[0].backward({}, cache, dy)[1], y3

    y, dx, y3 = (np.asarray(a) for a in run(*(np.asarray(a, np.float32) for a in (x, dy, x3))))
    keras_y = [[0.6, 0.8, 0.0], [1 / 3, -2 / 3, 2 / 3], [0.0, 0.0, 0.0], [0.1, 0.0, 0.0]]
    np.testing.assert_allclose(y, keras_y, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(y3, x3 / np.sqrt(np.sum(x3**2, axis=(1, 2), keepdims=True)), rtol=1e-6)
    np.testing.assert_allclose(y3[0, 0], [-0.6741998195648193, -0.5393598675727844, -0.4045199155807495], rtol=1e-6)
    # float64 references: the projection for the normalised rows (Keras's jax.grad: -0.064, 0.048, -0.2),
    # 1e12 dy for the clipped ones
    n = np.linalg.norm(x[:2], axis=1, keepdims=True)
    u = x[:2] / n
    want = np.concatenate([(dy[:2] - u * np.sum(u * dy[:2], axis=1, keepdims=True)) / n, 1e12 * dy[2:]])
    np.testing.assert_allclose(dx, want, rtol=1e-6)
    assert np.all(np.isfinite(dx))


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_unit_normalization_in_half_precision_and_of_integers(dtype):
    """A float16 row (300, 400) squares past float16's 65504: computed in float32, it is (0.6,
    0.8) in the input's dtype, and so is the backward. Integers give the default float dtype."""
    layer = L.UnitNormalization()

    @jax.jit  # one program, not one per eager primitive
    def run(x, dy, xi):
        y, cache = layer.forward({}, x)
        return y, layer.backward({}, cache, dy)[1], layer.forward({}, xi)[0]

    y, dx, yi = run(np.asarray([[300.0, 400.0]], dtype), np.asarray([[1.0, 0.0]], dtype), np.array([[3, 4]], np.int32))
    assert y.dtype == dx.dtype == dtype
    np.testing.assert_allclose(np.asarray(y, np.float64), [[0.6, 0.8]], rtol=float(jnp.finfo(dtype).eps))
    np.testing.assert_allclose(
        np.asarray(dx, np.float64), [[0.64 / 500, -0.48 / 500]], rtol=4 * float(jnp.finfo(dtype).eps)
    )
    assert yi.dtype == jnp.result_type(float) and np.allclose(yi, [[0.6, 0.8]])


def test_unit_normalization_refuses_the_batch_axis_and_axes_it_does_not_have():
    for axis, error in ((0, ValueError), ((), ValueError), ((1, 1), ValueError), (-1.0, TypeError), (True, TypeError)):
        with pytest.raises(error, match="UnitNormalization axis"):
            L.UnitNormalization(axis=axis)
    with pytest.raises(ValueError, match=r"sample's axes 1\.\.1"):
        L.UnitNormalization(axis=2).init(KEY, (3,))
    with pytest.raises(ValueError, match="not the batch axis"):
        L.UnitNormalization(axis=-2).forward({}, np.ones((2, 3)))
    with pytest.raises(ValueError, match="needs inputs \\(N, ...\\) with a sample's axis, got 1 axis"):
        L.UnitNormalization().forward({}, np.ones(3))
    assert repr(L.UnitNormalization(axis=[1, 2])) == "UnitNormalization(axis=(1, 2))"
    assert L.UnitNormalization(axis=1) == L.UnitNormalization(axis=1) != L.UnitNormalization()


def test_unit_normalization_autodiff_equals_its_backward_at_a_zero_sample():
    """A zero sample (zero params: every output row 0) is where jax.grad of Keras's formula is
    NaN; fnn's forward clips the squared norm instead, so ``grad="autodiff"``, gradcheck's
    reference and the hand-written backward agree (``r dy``, r = 1e12)."""
    net = fnn.serial(L.Dense(3), L.UnitNormalization())
    zeros = jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), jax.eval_shape(lambda: net.init(KEY, (3,), jnp.float64)))
    x, t = np.random.default_rng(0).normal(size=(4, 3)), np.random.default_rng(1).normal(size=(4, 3))
    both = jax.jit(lambda *a: [fnn.value_and_grad(net, "mse", mode=m)(*a) for m in ("manual", "autodiff")])
    manual, auto = both(zeros, x, t)  # one program, not one per eager primitive
    chex.assert_trees_all_close(manual, auto, rtol=1e-12)
    assert np.all(np.isfinite(jax.tree.leaves(auto)[0]))
    assert fnn.gradcheck(net, "mse", zeros, x, t).passed
    assert fnn.summary(net, (3,)).rows[1].kind == "UnitNormalization"


def test_circle_loss_trains_unit_normalised_embeddings_and_passes_gradcheck():
    """Keras's Circle workflow (a Dense embedding, UnitNormalization, ``loss="circle"``): the
    network's hand-written gradient through the coupled loss passes gradcheck, and a short
    fit lowers the loss."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 6)
    x = rng.normal(size=(18, 4)) + 2.0 * np.eye(4)[y]
    net = fnn.serial(L.Dense(6, "tanh"), L.Dense(3), L.UnitNormalization())
    params = net.init(KEY, (4,), jnp.float64)
    loss = fnn.losses.get("circle", gamma=4.0)
    report = fnn.gradcheck(net, loss, params, x, y)
    assert report.passed and report.max_error_autodiff < 1e-10, str(report)
    result = fnn.fit(net, params, fnn.optimizers.adam(0.05), loss, x, y, epochs=15, batch_size=18, verbose=0)
    history = result.history["loss"]
    assert history[-1] < 0.5 * history[0], history


def test_reshape_is_keras_s_reshape_and_trains_between_dense_layers():
    """Keras's Reshape: each sample's values in row-major order under ``target_shape`` (one -1
    inferred), backward the reshape back (also at an empty batch); repr, equality and summary
    know it (rows_independent: ROW_NETS); a Dense -> Reshape -> Dense -> Flatten -> Dense network passes
    gradcheck and trains."""
    layer = L.Reshape((3, -1))
    assert layer == L.Reshape([3, -1]) and hash(layer) == hash(L.Reshape((3, -1))) and layer != L.Reshape((-1, 3))
    assert repr(layer) == "Reshape((3, -1))" and repr(L.Reshape(6, name="r")) == "Reshape((6,), name='r')"
    assert layer.output_shape((2, 6)) == (3, 4) and L.Reshape((2, 6)).output_shape(12) == (2, 6)
    x = np.arange(24.0).reshape(2, 12)
    y, cache = layer.forward({}, x)
    np.testing.assert_array_equal(y, x.reshape(2, 3, 4))  # as keras.layers.Reshape((3, -1)) gives it
    np.testing.assert_array_equal(layer.backward({}, cache, y + 1)[1], x + 1)
    y0, cache0 = layer.forward({}, np.ones((0, 12)))
    assert y0.shape == (0, 3, 4) and layer.backward({}, cache0, y0)[1].shape == (0, 12)
    with pytest.raises(ValueError, match=r"dy of shape \(2, 4, 3\) for outputs of shape \(2, 3, 4\)"):
        layer.backward({}, cache, np.ones((2, 4, 3)))

    net = fnn.serial(L.Dense(12, "tanh"), L.Reshape((3, 4)), L.Dense(2, "tanh"), L.Flatten(), L.Dense(1))
    rows = fnn.summary(net, (5,)).rows
    shown = [(r.kind, r.output_shape, r.params) for r in rows[1:3]]
    assert shown == [("Reshape", (None, 3, 4), 0), ("Dense", (None, 3, 2), 10)]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 5))
    target = np.sin(x[:, :1] + x[:, 1:2])
    params = net.init(KEY, (5,), jnp.float64)
    report = fnn.gradcheck(net, "mse", params, x[:8], target[:8])
    assert report.passed and report.max_error_autodiff < 1e-10, str(report)
    result = fnn.fit(net, params, fnn.optimizers.adam(0.02), "mse", x, target, epochs=20, batch_size=32, verbose=0)
    history = result.history["loss"]
    assert history[-1] < 0.5 * history[0], history


def test_reshape_refuses_target_shapes_it_cannot_take():
    for bad, error, match in [
        ((3, -1, -1), ValueError, r"Reshape: target_shape may have one -1 \(the size inferred\), got \(3, -1, -1\)"),
        ((0, 3), ValueError, r"sizes must be >= 1 \(or one -1, inferred\), got \(0, 3\)"),
        ((-2, 3), ValueError, r"sizes must be >= 1 \(or one -1, inferred\), got \(-2, 3\)"),
        ((), ValueError, r"target_shape must name at least one axis"),
        ((2.0, 3), TypeError, r"Reshape: target_shape\[0\] must be an int, got float 2.0"),
        ((True,), TypeError, r"target_shape\[0\] must be an int, got bool"),
        ("34", TypeError, r"target_shape must be a tuple of ints \(without the batch axis\), got '34'"),
        (None, TypeError, r"target_shape must be a tuple of ints"),
    ]:
        with pytest.raises(error, match=match):
            L.Reshape(bad)
    assert L.Reshape((np.int64(2), 3)) == L.Reshape((2, 3))  # NumPy integers are ints
    with pytest.raises(ValueError, match=r"Reshape\(\(5,\)\): samples of shape \(2, 3\) have 6 values, target_shape"):
        fnn.serial(L.Reshape((5,))).init(KEY, (2, 3))
    with pytest.raises(ValueError, match=r"samples of shape \(6,\) \(6 values\) do not divide into \(4, -1\)"):
        L.Reshape((4, -1)).output_shape(6)
    with pytest.raises(ValueError, match=r"samples of shape \(7,\) have 7 values"):
        L.Reshape((2, 3)).forward({}, np.ones((2, 7)))
    with pytest.raises(ValueError, match=r"expects a batch of samples \(at least 2 axes\), got shape \(6,\)"):
        L.Reshape((2, 3)).forward({}, np.ones(6))


def test_layernorm_params_of_the_wrong_shape_are_named_not_the_input():
    """A scale or offset of another length than the other (or not a vector) is the params'
    fault: said so, where the input's feature count was blamed (or an IndexError raised)."""
    layer = L.LayerNorm()
    x = np.ones((2, 4))
    for params, said in (
        ({"scale": np.ones(3), "offset": np.zeros(4)}, r"\{'scale': \(3,\), 'offset': \(4,\)\}"),
        ({"scale": np.ones(4), "offset": np.zeros(3)}, r"'offset': \(3,\)"),
        ({"scale": np.ones((1, 4)), "offset": np.zeros(4)}, r"'scale': \(1, 4\)"),
        ({"scale": np.float64(1.0), "offset": np.zeros(4)}, r"'scale': \(\)"),
    ):
        with pytest.raises(
            ValueError, match="LayerNorm's params must be vectors of one entry per feature, got shapes .*" + said
        ):
            layer.forward(params, x)
    with pytest.raises(ValueError, match="expects 4 input features, got 3"):  # consistent params: the input's fault
        layer.forward({"scale": np.ones(4), "offset": np.zeros(4)}, np.ones((2, 3)))


def test_layernorm_computes_in_its_input_dtype_promoted_with_its_params():
    """int32 x with float64 params: the statistics in float64, as for the same values as
    floats (int32 promotes with float32 to float32, 1e-9 off), forward and backward. float32 x
    with float64 params too, as Dense computes: in float32 the statistics of values near 1e4
    were 2e-3 off the float64 ones of the same inputs."""
    layer = L.LayerNorm()
    params = {"scale": np.arange(1.0, 5.0), "offset": np.linspace(-1, 1, 4)}
    xi = np.array([[3, 1, 4, 1], [5, 9, 2, 6]], np.int32)
    x32 = (1e4 + 0.5 * np.random.default_rng(2).normal(size=(2, 4))).astype(np.float32)
    dy = np.random.default_rng(1).normal(size=(2, 4))

    @jax.jit  # one program for every input, not one per eager primitive
    def run(params, xs, dy):
        return [(lambda yc: (yc[0], layer.backward(params, yc[1], dy)))(layer.forward(params, x)) for x in xs]

    (yi, gi), (yf, gf), (y32, g32), (y64, g64) = run(
        params, (xi, xi.astype(np.float64), x32, x32.astype(np.float64)), dy
    )
    assert yi.dtype == y32.dtype == jnp.float64
    np.testing.assert_array_equal(yi, yf)
    chex.assert_trees_all_equal(gi, gf)
    np.testing.assert_array_equal(y32, y64)
    chex.assert_trees_all_equal(g32, g64)


@functools.partial(jax.jit, static_argnums=0)
def _forward_and_vjp(layer, params, x, dy):
    """``layer``'s output and jax.vjp's gradients at ``dy``: one program (both dtypes' float64
    references share it), not an eager one per primitive."""
    y, vjp = jax.vjp(lambda p, x: layer.forward(p, x)[0], params, x)
    return y, vjp(dy)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_layernorm_in_low_precision_computes_its_statistics_in_float32(dtype):
    """As Keras: float16's (x - mu)^2 overflows at |x - mu| > 256, and bfloat16's mean of values
    near 40 keeps ~2 significant digits; computed in float32 and rounded once, the result is the
    exact one rounded to the dtype. The backward follows (float32 inside, dy's dtype out)."""
    layer = L.LayerNorm(epsilon=1e-3)
    rng = np.random.default_rng(0)
    x64 = np.concatenate([[[-300.0, 0.0, 300.0, 100.0, 5.0]], 40 + 2 * rng.normal(size=(3, 5))])
    dy64 = rng.normal(size=x64.shape)
    params64 = {"scale": np.linspace(0.5, 2.0, 5), "offset": np.linspace(-1, 1, 5)}
    low = lambda a: jnp.asarray(a, dtype)
    params = jax.tree.map(low, params64)
    run = jax.jit(lambda p, x, dy: (lambda yc: (yc[0], layer.backward(p, yc[1], dy)))(layer.forward(p, x)))
    y, (grads, dx) = run(params, low(x64), low(dy64))
    # the reference: float64 on the dtype's own inputs
    f64 = lambda t: jax.tree.map(lambda a: np.asarray(a, np.float64), t)  # x64 is on in the tests
    y_ref, (g_ref, dx_ref) = _forward_and_vjp(layer, f64(params), f64(low(x64)), f64(low(dy64)))
    assert y.dtype == dx.dtype == grads["scale"].dtype == dtype
    eps = float(jnp.finfo(dtype).eps)
    np.testing.assert_allclose(np.asarray(y, np.float64), y_ref, rtol=eps, atol=eps)  # one rounding
    np.testing.assert_allclose(np.asarray(dx, np.float64), dx_ref, rtol=4 * eps, atol=4 * eps * np.abs(dx_ref).max())
    for k in grads:
        np.testing.assert_allclose(
            np.asarray(grads[k], np.float64), g_ref[k], rtol=4 * eps, atol=4 * eps * np.abs(g_ref[k]).max()
        )


def test_dropout_of_integer_data_is_real_and_flatten_takes_an_empty_batch():
    pixels = jax.device_put(np.arange(1, 9, dtype=np.uint8).reshape(2, 4))
    drop = jax.jit(lambda x, key: L.Dropout(0.5).forward({}, x, key=key, train=True)[0])  # one program
    y = drop(pixels, jax.random.PRNGKey(0))
    assert jnp.issubdtype(y.dtype, jnp.floating)
    np.testing.assert_array_equal(np.asarray(y)[np.asarray(y) != 0] / 2, np.asarray(pixels)[np.asarray(y) != 0])
    net = fnn.serial(L.Flatten(), L.Dense(2))
    params = net.init(KEY, (2, 3))

    @jax.jit
    def forward_backward(params, x):
        y, cache = net.forward(params, x)
        return y, net.backward(params, cache, y)[1]

    y, dx = forward_backward(params, np.ones((0, 2, 3)))
    assert y.shape == (0, 2) and dx.shape == (0, 2, 3)


def test_gradients_take_their_parameters_dtype_as_jax_grad_gives_them():
    net = fnn.serial(L.Dense(4, "tanh"), L.LayerNorm(), L.Dense(2))
    params = _like_init(lambda: net.init(KEY, (3,), jnp.bfloat16))  # init's structure and dtypes
    x, y = np.ones((5, 3), np.float32), np.zeros((5, 2), np.float32)
    dtypes = lambda tree: jax.tree.map(lambda a: a.dtype, tree)
    both = jax.jit(lambda *a: [fnn.value_and_grad(net, "mse", mode=m)(*a)[1] for m in ("manual", "autodiff")])
    manual, auto = both(params, x, y)  # one program, not one per eager primitive
    assert dtypes(manual) == dtypes(auto) == dtypes(params)


def test_numpy_float64_params_without_x64_give_float32_gradients_without_a_warning():
    # without x64 NumPy float64 params compute in float32: the gradient stays float32 (its
    # astype(float64) warned once per leaf)
    net = fnn.mlp([2])
    params = jax.tree.map(lambda a: np.asarray(a, np.float64), _like_init(lambda: net.init(KEY, (3,))))
    with jax.enable_x64(False), warnings.catch_warnings():
        warnings.simplefilter("error")
        _, grads = fnn.value_and_grad(net, "mse", mode="manual")(params, np.ones((4, 3)), np.ones((4, 2)))
    assert [g.dtype for g in jax.tree.leaves(grads)] == [jnp.float32, jnp.float32]


def _gradcheck_and_fit_refuse(net, params, x, y, error, message):
    for call in (
        lambda: fnn.gradcheck(net, "mse", params, x, y),
        lambda: fnn.fit(net, params, "sgd", "mse", x, y, verbose=0),
    ):
        with pytest.raises(error, match=message):
            call()


def test_a_user_activation_s_bad_vjp_and_a_bare_layer_are_named():
    x, y = np.ones((8, 3)), np.zeros((8, 1))
    for name, vjp, got in (
        ("flat", lambda x, y, dy: jnp.sum(dy, 0), r"got shape \(4,\)"),
        ("pair", lambda x, y, dy: (dy, dy), "got tuple"),
    ):
        act = fnn.activations.Activation(name, jnp.tanh, vjp)
        net = fnn.serial(L.Dense(4, act), L.Dense(1))
        params = _like_init(lambda: net.init(KEY, (3,), jnp.float64))
        message = rf"activation '{name}': vjp\(x, y, dy\) must return one array of x's shape \(8, 4\), {got}"
        _gradcheck_and_fit_refuse(net, params, x, y, ValueError, message)
    layer = L.Dense(1)
    params = _like_init(lambda: layer.init(KEY, (3,))[1])
    for call in (
        lambda: fnn.fit(layer, params, "sgd", "mse", x, y, verbose=0),
        lambda: fnn.gradcheck(layer, "mse", params, x, y),
    ):
        with pytest.raises(
            TypeError, match=r"net is a single fnn.Layer \('dense'\), not a network: wrap it, fnn.serial"
        ):
            call()


def test_a_layer_whose_init_and_forward_disagree_is_named_not_x():
    def layer(declared, param):  # sizes relative to the input's features (0, 0: a right layer)
        init = lambda key, shape, dtype=jnp.float32: (
            (shape[-1] + declared,),
            {"s": jnp.ones((shape[-1] + param,), dtype)},
        )
        forward = lambda p, x, key=None, train=False: (x * p["s"], x)
        return L.Layer(init, forward, lambda p, x, dy: ({"s": jnp.sum(dy * x, 0)}, dy * p["s"]), "mine")

    x, y = np.ones((8, 3)), np.zeros((8, 1))
    for declared, param, message in (
        (2, 0, r"layer 0 \(mine_0\): its init declares the output shape \(5,\), its forward gives \(3,\)"),
        (0, -1, r"layer 0 \(mine_0\): its forward fails on inputs of shape \(8, 3\) with the params its init builds"),
    ):
        net = fnn.serial(layer(declared, param), L.Dense(1))
        params = _like_init(lambda: net.init(KEY, (3,)))
        with pytest.raises(ValueError, match=message):
            fnn.fit(net, params, "sgd", "mse", x, y, verbose=0)
    # a wrong x is still x's fault
    net = fnn.serial(layer(0, 0), L.Dense(1))
    with pytest.raises(ValueError, match=r"^x of shape \(8, 4\) does not fit the network"):
        fnn.fit(net, _like_init(lambda: net.init(KEY, (3,))), "sgd", "mse", np.ones((8, 4)), y, verbose=0)


def test_a_dtype_failure_in_the_network_s_trace_is_not_called_a_shape_misfit():
    """The check traces x in the params' dtype; where the trace fails on dtypes (params of two
    dtypes under jax_numpy_dtype_promotion="strict"), the message says so, not that x's shape
    does not fit."""
    net = fnn.mlp([3, 2])
    p64 = net.init(KEY, (4,), jnp.float64)
    mixed = [p64[0], jax.tree.map(lambda a: a.astype(jnp.float32), p64[1])]
    x = np.ones((5, 4))
    with jax.numpy_dtype_promotion("strict"):
        assert fnn.predict(net, p64, x).dtype == np.float64  # float64 NumPy x against float64 params
        with pytest.raises(jax.dtypes.TypePromotionError, match=r"^x held in float64 \(the params' dtype.*on a "
                           r"dtype, not its shape: layer 1 \(dense_1\).*Input dtypes"):  # fmt: skip
            fnn.predict(net, mixed, x)
    assert fnn.predict(net, mixed, x).shape == (5, 2)  # standard promotion takes them


def test_a_user_layer_s_mistake_is_named_where_the_next_layer_trips_over_it():
    def user(name, forward, backward=lambda p, c, dy: ((), dy)):
        return L.Layer(lambda key, shape, dtype=jnp.float32: (tuple(shape), ()), forward, backward, name)

    x, y = np.ones((8, 6)), np.zeros((8, 3))
    # its forward gives one feature fewer than its init declares: the Dense after it fails
    chop = user("chop", lambda p, x, key=None, train=False: (x[:, :-1], None))
    net = fnn.serial(L.Dense(5), chop, L.Dense(3))
    params = _like_init(lambda: net.init(KEY, (6,)))
    message = (
        r"layer 1 \(chop_0\): its init declares the output shape \(5,\) for inputs of shape \(5,\), "
        r"its forward gives \(4,\)"
    )
    outer = fnn.serial(L.Dense(6), net)
    outer_params = [_like_init(lambda: outer.init(KEY, (6,))[0]), params]
    for call in (lambda: net.apply(params, x), lambda: outer.apply(outer_params, x)):
        with pytest.raises(L.FeatureMismatchError, match=message):
            call()
    # gradcheck checks params and x as fit does: the layer named in fit's words
    with pytest.raises(
        ValueError, match=r"^layer 1 \(chop_0\): its init declares the output shape \(5,\), its forward"
    ):
        fnn.gradcheck(net, "mse", params, x, y)
    # a forward that fails of its own is named with the shape it got
    bug = user("bug", lambda p, x, key=None, train=False: (x @ jnp.ones((2, 2)), None))
    with pytest.raises(TypeError, match=r"^layer 1 \(bug_0\): forward fails on inputs of shape \(8, 5\): dot_general"):
        fnn.serial(L.Dense(5), bug).apply(_like_init(lambda: fnn.serial(L.Dense(5), bug).init(KEY, (6,))), x)

    # an error class of the user's own stays that class, with the layer named
    class Domain(ValueError):
        pass

    def refuse(p, x, key=None, train=False):
        raise Domain("negative inputs")

    strict = fnn.serial(L.Dense(5), user("strict", refuse))
    with pytest.raises(Domain, match=r"^layer 1 \(strict_0\): forward fails on inputs of shape \(8, 5\): negative"):
        strict.apply(_like_init(lambda: strict.init(KEY, (6,))), x)
    # a backward whose dx is not of its input's shape is named itself, before the layer before it
    # fails on that dy (the forward's cache records each layer's input shape)
    double = user("double", lambda p, x, key=None, train=False: (2 * x, None), lambda p, c, dy: ((), (2 * dy)[:, :-1]))
    net = fnn.serial(L.Dense(5), L.Activation("relu"), double, L.Dense(3))
    params = _like_init(lambda: net.init(KEY, (6,)))
    message = (
        r"^layer 2 \(double_0\): backward returned dx of shape \(8, 4\) for inputs of shape \(8, 5\); dx must "
        r"have its input's shape: it is the dy of layer 1 \(relu_0\)"
    )
    _gradcheck_and_fit_refuse(net, params, x, y, ValueError, message)
    # a dx that would broadcast ((1, n): summed over the batch) is refused too, whatever the layer
    # before it (it trained silently on wrong gradients)
    summed = user(
        "summed", lambda p, x, key=None, train=False: (x, None), lambda p, c, dy: ((), dy.sum(0, keepdims=True))
    )
    for before in (L.Activation("tanh"), L.Dense(5, "tanh"), L.LayerNorm(), L.Flatten(), L.Dropout(0.5)):
        net = fnn.serial(L.Dense(5), before, summed, L.Dense(3))
        message = (
            r"^layer 2 \(summed_0\): backward returned dx of shape \(1, 5\) for inputs of shape \(8, 5\); .*"
            rf"it is the dy of layer 1 \({before.name}_[01]\)"
        )
        with pytest.raises(ValueError, match=message):
            fnn.fit(
                net, _like_init(lambda net=net: net.init(KEY, (6,))), "sgd", "mse", x, y, epochs=1, verbose=0, key=KEY
            )
    # a cache that does not record the forward's shapes (a plain list of the layers' caches):
    # the layer before fails on the dy, which every built-in backward checks, and the layer that
    # gave it is named beside it, unchecked
    net = fnn.serial(L.Dense(5), L.Activation("tanh"), summed)
    params = _like_init(lambda: net.init(KEY, (6,)))

    def backward_of_a_list(params, x):
        y, cache = net.forward(params, x)
        return net.backward(params, list(cache), y)

    message = (
        r"^layer 1 \(tanh_0\): backward fails on dy of shape \(1, 5\) \(the dx of layer 2 \(summed_0\), unchecked: "
        r"a backward must return dx of its input's shape\): dy of shape \(1, 5\) for outputs of shape \(8, 5\)"
    )
    with pytest.raises(ValueError, match=message):
        jax.eval_shape(backward_of_a_list, params, x)  # raised while tracing: nothing compiles


def test_a_cache_batched_after_the_forward_is_used_unchecked():
    """The shapes a cache records are the forward's: a per-sample forward under vmap, then one
    backward of the whole batch, has other shapes, which are then not held against it."""
    net = fnn.serial(L.Dense(4, "tanh"), L.Dense(2))
    params = _like_init(lambda: net.init(KEY, (3,)))
    x = np.ones((8, 3))

    def per_sample_forward_then_batch_backward(params, x):
        y, cache = jax.vmap(lambda row: net.forward(params, row))(x)
        assert isinstance(cache, list) and cache.shapes == ((3,), (4,), (2,))
        return net.backward(params, cache, y)

    dparams, dx = jax.eval_shape(per_sample_forward_then_batch_backward, params, x)
    assert dx.shape == (8, 3) and dparams[0]["w"].shape == (3, 4)


def test_a_backward_s_own_mistake_is_named_alone_when_its_dy_is_right():
    """A bug inside a backward that got the right dy is its own: the layer after it, whose dx
    it is, is not blamed (it was, for every error, before the forward recorded the shapes)."""
    x, y = np.ones((8, 3)), np.zeros((8, 1))
    wrong_dot = _scale("myscale", backward=lambda p, c, dy: ({"s": jnp.sum(dy * c[0], 0)}, jnp.dot(dy, c[0])))
    net = fnn.serial(L.Dense(3), wrong_dot, L.Dense(1))
    params = _like_init(lambda: net.init(KEY, (3,)))
    message = r"^layer 1 \(myscale_0\): backward fails on dy of shape \(8, 3\): dot_general requires contracting"
    for call in (
        lambda: jax.eval_shape(fnn.value_and_grad(net, "mse"), params, x, y),
        lambda: fnn.fit(net, params, "sgd", "mse", x, y, epochs=1, verbose=0),
    ):
        with pytest.raises(TypeError, match=message) as e:
            call()
        assert "dense_1" not in str(e.value)
    # nested, the outer network names its layer first, the same error class
    outer = fnn.serial(net)
    with pytest.raises(TypeError, match=r"^layer 0 \(serial_0\) " + message[1:]):
        jax.eval_shape(fnn.value_and_grad(outer, "mse"), [params], x, y)


def test_a_lookup_error_in_a_layer_s_own_code_is_named_as_the_same_class():
    """A misspelt params key, a cache shorter than the backward thinks, an attribute of the wrong
    object: re-raised as the same class with the layer named (a KeyError's text is only the
    key, so its class is said), the user's own error chained as the cause."""
    x, y = np.ones((8, 3)), np.zeros((8, 1))

    def missing_key(p, x, *, key=None, train=False):
        return x * p["scale"], (x,)

    def short_cache(p, c, dy):
        return {"s": jnp.sum(dy * c[1], 0)}, dy * p["s"]

    def no_attribute(p, c, dy):
        return {"s": jnp.sum(dy * c[0], 0)}, dy * p["s"].weights

    where = r"forward fails on inputs of shape \(8, 3\)"
    for layer, error, said in (
        (_scale("myscale", forward=missing_key), KeyError, rf"{where}: KeyError 'scale'"),
        (_scale("myscale", backward=short_cache), IndexError, r"backward fails on dy of shape \(8, 3\): tuple index"),
        (
            _scale("myscale", backward=no_attribute),
            AttributeError,
            r"backward fails on dy of shape \(8, 3\): .*no attribute '?weights",
        ),
    ):
        net = fnn.serial(L.Dense(3), layer, L.Dense(1))
        params = _like_init(lambda net=net: net.init(KEY, (3,)))
        for call in (
            lambda: jax.eval_shape(fnn.value_and_grad(net, "mse"), params, x, y),
            lambda: fnn.fit(net, params, "sgd", "mse", x, y, epochs=1, verbose=0),
        ):
            with pytest.raises(error) as e:
                call()
            text = e.value.args[0]  # str() of a KeyError quotes it
            assert re.match(rf"layer 1 \(myscale_0\): {said}", text), text
            assert type(e.value) is error
        # nested: the outer layer's name is prefixed to the message, not to its quoted str
        outer = fnn.serial(net)
        with pytest.raises(error) as e:
            jax.eval_shape(fnn.value_and_grad(outer, "mse"), [params], x, y)
        assert re.match(rf"layer 0 \(serial_0\) layer 1 \(myscale_0\): {said}", e.value.args[0])
        assert type(e.value.__cause__) is error
    # an init's lookup error too
    bad_init = _scale("myscale", init=lambda key, shape, dtype=jnp.float32: (tuple(shape), {"s": {}["s"]}))
    with pytest.raises(KeyError) as e:
        fnn.serial(L.Dense(3), bad_init).init(KEY, (3,))
    assert e.value.args[0] == "layer 1 (myscale_0): init fails for input shape (3,): KeyError 's'"


def _scale(name, init=None, forward=None, backward=None):
    """``y = x * s`` (the Layer docstring's), with any of its three functions replaced."""
    own_init = lambda key, shape, dtype=jnp.float32: (tuple(shape), {"s": jnp.ones(shape[-1:], dtype)})
    own_forward = lambda params, x, *, key=None, train=False: (x * params["s"], (x,))
    own_backward = lambda params, cache, dy: ({"s": jnp.sum(dy * cache[0], 0)}, dy * params["s"])
    return L.Layer(init or own_init, forward or own_forward, backward or own_backward, name)


def test_a_layer_whose_functions_take_other_arguments_is_named_with_the_protocol(compiles):
    x, y = np.ones((4, 3)), np.zeros((4, 1))
    stax = _scale("stax", init=lambda rng, input_shape: (tuple(input_shape), {"s": jnp.ones(input_shape[-1:])}))
    net = fnn.serial(L.Dense(3), stax, L.Dense(1))
    init_message = (
        r"^layer 1 \(stax_0\): init\(key, input_shape, dtype\) is the Layer protocol, but the layer's takes "
        r"\(rng, input_shape\); a stax-style init\(rng, input_shape\) needs the dtype too"
    )
    with compiles() as c:
        for call in (
            lambda: net.init(KEY, (3,)),
            lambda: net.output_shape((3,)),
            lambda: fnn.summary(net, (3,)),
            lambda: fnn.serial(L.Dense(3), net).init(KEY, (3,)),  # nested: the outer layer named first
        ):
            with pytest.raises(TypeError, match=init_message.replace("^", "(^|layer 1 \\(serial_0\\) )")):
                call()
        # a forward without the key/train keywords (and a backward without the cache)
        no_keywords = _scale("no_kw", forward=lambda params, x: (x * params["s"], (x,)))
        net = fnn.serial(L.Dense(3), no_keywords, L.Dense(1))
        forward_message = (
            r"^layer 1 \(no_kw_0\): forward\(params, x, \*, key=None, train=False\) is the Layer protocol, "
            r"but the layer's takes \(params, x\)"
        )
        params = jax.eval_shape(lambda k: net.init(k, (3,)), KEY)
        for call in (lambda: fnn.summary(net, (3,)), lambda: jax.eval_shape(net.apply, params, x)):
            with pytest.raises(TypeError, match=forward_message):
                call()
        two = fnn.serial(_scale("two", backward=lambda params, dy: ({"s": dy}, dy)), L.Dense(1))
        with pytest.raises(TypeError, match=r"^layer 0 \(two_0\): backward\(params, cache, dy\) is the Layer protocol"):
            jax.eval_shape(fnn.value_and_grad(two, "mse"), jax.eval_shape(lambda k: two.init(k, (3,)), KEY), x, y)
        # an init returning (params, shape): summary says what net.init says
        swapped = fnn.serial(L.Dense(3), _scale("swapped", init=lambda k, s, d=jnp.float32: ({"s": jnp.ones(s)}, s)))
        message = r"^layer 1 \(swapped_0\): init\(key, input_shape, dtype\) must return \(output_shape, params\)"
        for call in (lambda: swapped.init(KEY, (3,)), lambda: fnn.summary(swapped, (3,))):
            with pytest.raises(TypeError, match=message):
                call()
    assert c.count == 0  # all refused while tracing


def test_integer_gradients_of_a_user_layer_or_activation_are_refused_naming_it(compiles):
    """An integer dparams, dx or activation vjp (a backward's astype(int)) has truncated the
    gradient: refused while tracing, naming the layer and the leaf, where it trained silently."""
    x, y = np.ones((4, 3), np.float32), np.zeros((4, 1), np.float32)
    int_dparams = _scale(
        "intg", backward=lambda p, c, dy: ({"s": jnp.sum(dy * c[0], 0).astype(jnp.int32)}, dy * p["s"])
    )
    int_dx = _scale("intx", backward=lambda p, c, dy: ({"s": jnp.sum(dy * c[0], 0)}, (dy * p["s"]).astype(jnp.int32)))
    int_vjp = fnn.activations.Activation("intv", jnp.tanh, lambda x, y, dy: (dy * (1 - y**2)).astype(jnp.int32))
    int_param = _scale("ints", init=lambda k, s, dtype=jnp.float32: (tuple(s), {"s": jnp.ones(s[-1:], jnp.int32)}))
    cases = (
        (
            fnn.serial(L.Dense(3), int_dparams, L.Dense(1)),
            r"^layer 1 \(intg_0\): backward returned dparams\['s'\] of dtype int32 for a parameter of dtype "
            r"float32; a gradient must be a floating array",
        ),
        (
            fnn.serial(L.Dense(3), int_dx, L.Dense(1)),
            r"^layer 1 \(intx_0\): backward returned dx of dtype int32 for inputs of dtype float32; dx must have "
            r"its input's floating dtype .*: it is the dy of layer 0 \(dense_0\)",
        ),
        (
            fnn.serial(L.Dense(3, int_vjp), L.Dense(1)),
            r"^layer 0 \(dense_0\): backward fails on dy of shape \(4, 3\): activation 'intv': vjp\(x, y, dy\) "
            r"must return a floating array for x of dtype float32, got int32",
        ),
        (  # an integer parameter given a real gradient (it came back truncated to int32 zeros)
            fnn.serial(L.Dense(3), int_param, L.Dense(1)),
            r"^layer 1 \(ints_0\): backward returned a float32 gradient dparams\['s'\] for an integer parameter "
            r"\(int32\), which cannot take it .*return np.zeros\(shape, jax.dtypes.float0\) for it, .*fnn.fit "
            r"and fnn.gradcheck take floating params only: to train with fit, keep a fixed mask in the layer's "
            r"forward",
        ),
    )
    with compiles() as c:
        for net, message in cases:
            params = jax.eval_shape(lambda k, net=net: net.init(k, (3,)), KEY)
            with pytest.raises(TypeError, match=message):
                jax.eval_shape(fnn.value_and_grad(net, "mse"), params, x, y)
        # an integer leaf (a mask) has JAX's float0 zero cotangent, kept as jax.grad(allow_int=True) keeps it
        mask = _scale(
            "mask",
            init=lambda k, s, dtype=jnp.float32: (
                tuple(s),
                {"s": jnp.ones(s[-1:], dtype), "m": jnp.ones(s[-1:], jnp.int32)},
            ),
            backward=lambda p, c, dy: (
                {"s": jnp.sum(dy * c[0], 0), "m": np.zeros(p["m"].shape, jax.dtypes.float0)},
                dy * p["s"],
            ),
        )
        net = fnn.serial(mask, L.Dense(1))
        _, grads = jax.eval_shape(
            fnn.value_and_grad(net, "mse"), jax.eval_shape(lambda k: net.init(k, (3,)), KEY), x, y
        )
        assert grads[0]["m"].dtype == jax.dtypes.float0 and grads[0]["s"].dtype == jnp.float32
        # mode="autodiff" alike (jax.grad's allow_int; it failed naming neither leaf nor layer)
        _, grads = jax.eval_shape(
            fnn.value_and_grad(net, "mse", mode="autodiff"), jax.eval_shape(lambda k: net.init(k, (3,)), KEY), x, y
        )
        assert grads[0]["m"].dtype == jax.dtypes.float0 and grads[0]["s"].dtype == jnp.float32
    assert c.count == 0
    # what fit refuses, as the message says; summary counts the mask as Keras counts a weight
    # that does not train (it counted it as trainable, its bytes as float32's)
    with pytest.raises(TypeError, match=r"params\[0\]\['m'\] has dtype int32: params must be floating arrays"):
        fnn.fit(net, net.init(KEY, (3,)), "sgd", "mse", x, y, verbose=0)
    s = fnn.summary(net, (3,), jnp.float64)
    assert (s.total_params, s.trainable_params, s.non_trainable_params) == (3 + 3 + 4, 3 + 4, 3)
    assert s.param_bytes == 8 * (3 + 4) + 4 * 3 and s.trainable_bytes == 8 * (3 + 4)
    assert str(s).endswith("Trainable params: 7 (56.00 B)\nNon-trainable params: 3 (12.00 B)")
    # a floating leaf of your own kept in another dtype than the network's counts in its own
    half = _scale("half", init=lambda k, sh, dtype=jnp.float32: (tuple(sh), {"s": jnp.ones(sh[-1:], jnp.float16)}))
    s = fnn.summary(fnn.serial(half, L.Dense(1)), (3,), jnp.float32)
    assert (s.param_bytes, s.trainable_bytes) == (2 * 3 + 4 * 4, 2 * 3 + 4 * 4)
    assert str(s).endswith("Trainable params: 7 (22.00 B)\nNon-trainable params: 0 (0.00 B)")


def test_an_init_s_non_array_leaf_an_activation_changing_the_shape_and_a_missing_needs_key_are_named():
    x = np.ones((4, 3))
    named = _scale("named", init=lambda k, s, dtype=jnp.float32: (tuple(s), {"s": jnp.ones(s[-1:]), "tag": "x"}))
    message = (
        r"^layer 0 \(named_0\): init\(key, input_shape, dtype\) must return params of arrays \(the Layer "
        r"protocol\); got params\['tag'\] of type str"
    )
    for call in (
        lambda: fnn.serial(named).init(KEY, (3,)),
        lambda: fnn.serial(L.Dense(3), fnn.serial(named)).init(KEY, (3,)),
    ):
        with pytest.raises(TypeError, match=message.replace("^", "(^|layer 1 \\(serial_0\\) )")):
            call()
    # an activation whose fn changes the shape is named, not the Dense whose init declared it
    twice = fnn.activations.Activation("twice", lambda z: jnp.concatenate([z, z], -1), lambda z, y, dy: dy)
    message = r"activation 'twice': fn\(x\) must return one array of x's shape \(4, 4\) .*, got shape \(4, 8\)"
    for net in (fnn.serial(L.Dense(4, twice), L.Dense(1)), fnn.serial(L.Dense(4), L.Activation(twice), L.Dense(1))):
        params = jax.eval_shape(lambda k, net=net: net.init(k, (3,)), KEY)
        with pytest.raises(ValueError, match=message) as e:
            jax.eval_shape(net.apply, params, x)
        assert "its forward gives" not in str(e.value)
    # a layer drawing randomness built without needs_key=True gets key=None: the message says so
    drop = L.Layer(
        lambda k, s, dtype=jnp.float32: (tuple(s), {}),
        lambda p, x, *, key=None, train=False: (x * jax.random.bernoulli(key, 0.5, x.shape), None),
        lambda p, c, dy: ({}, dy),
        "mydrop",
    )
    net = fnn.serial(L.Dense(4), drop)
    params = jax.eval_shape(lambda k: net.init(k, (3,)), KEY)
    with pytest.raises(TypeError, match=r"^layer 1 \(mydrop_0\): forward fails .*NoneType.* needs_key=True"):
        jax.eval_shape(lambda p: net.apply(p, x, key=KEY, train=True), params)


def test_a_backward_may_return_none_for_a_layer_without_params():
    # torch's habit: no gradient for no params. The layer doubles its input.
    double = L.Layer(
        lambda key, shape, dtype=jnp.float32: (tuple(shape), {}),
        lambda params, x, *, key=None, train=False: (2 * x, ()),
        lambda params, cache, dy: (None, 2 * dy),
        "double",
    )
    net = fnn.serial(L.Dense(2, "tanh"), double, L.Dense(1))
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 3)), rng.normal(size=(8, 1))
    params = _like_init(lambda: net.init(KEY, (3,), jnp.float64))
    assert fnn.gradcheck(net, "mse", params, x, y).passed
    # fit's one full-batch SGD step is the step jax.grad of the same function takes
    _, grads = jax.jit(fnn.value_and_grad(net, "mse", mode="autodiff"))(params, x, y)
    assert grads[1] == {}
    fitted = fnn.fit(
        net, params, fnn.optimizers.sgd(0.1), "mse", x, y, batch_size=8, epochs=1, shuffle=False, verbose=0
    )
    expected = jax.tree.map(lambda p, g: np.asarray(p) - 0.1 * np.asarray(g), params, grads)
    chex.assert_trees_all_close(fitted.params, expected, rtol=1e-12, atol=1e-12)
    # None stands for no gradients only without params; other containers are named as such
    cache = [(np.ones((2, 3)),)]
    with pytest.raises(ValueError, match=r"backward returned None for params with leaves \[\"\['s'\]\"\] \(None is "):
        fnn.serial(_scale("bad", backward=lambda p, c, dy: (None, dy))).backward(
            [{"s": np.ones(3)}], cache, np.ones((2, 3))
        )
    empty = L.Layer(double.init, double.forward, lambda p, c, dy: ((), dy), "empty")
    with pytest.raises(
        ValueError,
        match=r"backward returned dparams structured PyTreeDef\(\(\)\) for params structured PyTreeDef\(\{\}\)",
    ):
        fnn.serial(empty).backward([{}], [()], np.ones((2, 3)))


def test_backward_gives_gradients_in_the_params_containers_and_names_a_layer_s_real_mismatch():
    """As jax.grad keeps them: a tuple of params (and a nested network's tuple) stays a tuple, a
    Dense entry given as an OrderedDict (keys in either order) stays one, though Dense's own
    backward returns a plain dict. A user layer returning other keys is still named."""
    net = fnn.serial(fnn.serial(L.Dense(4, "tanh")), L.Dense(2))
    params = _like_init(lambda: net.init(KEY, (3,), jnp.float64))
    rng = np.random.default_rng(2)
    x, dy = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    given = (
        (collections.OrderedDict([("w", params[0][0]["w"]), ("b", params[0][0]["b"])]),),
        collections.OrderedDict([("b", params[1]["b"]), ("w", params[1]["w"])]),
    )

    @jax.jit
    def backward_and_vjp(params, x, dy):
        _, vjp = jax.vjp(lambda p: net.apply(p, x), params)
        return net.backward(params, net.forward(params, x)[1], dy)[0], vjp(dy)[0]

    grads, reference = backward_and_vjp(given, x, dy)
    assert jax.tree.structure(grads) == jax.tree.structure(given) == jax.tree.structure(reference)
    chex.assert_trees_all_close(grads, reference, rtol=1e-12)
    other_key = fnn.serial(_scale("odd", backward=lambda p, c, dy: ({"t": jnp.sum(dy * c[0], 0)}, dy)))
    with pytest.raises(ValueError, match=r"^layer 0 \(odd_0\): backward returned dparams with leaves \[\"\['t'\]\"\] "):
        other_key.backward((collections.OrderedDict(s=np.ones(3)),), [(np.ones((2, 3)),)], np.ones((2, 3)))


def test_a_network_s_repr_says_each_layer_s_kind_size_and_activation():
    assert repr(fnn.mlp([4, 2], "relu")) == "Network(dense_0=Dense(4, relu), dense_1=Dense(2))"
    assert repr(fnn.mlp([64, 10], "tanh")) == "Network(dense_0=Dense(64, tanh), dense_1=Dense(10))"
    net = fnn.serial(
        fnn.serial(L.Dense(8, "relu", use_bias=False), L.Dropout(0.1)),
        L.LayerNorm(epsilon=1e-5, center=False),
        L.LayerNorm(),
        L.Flatten(),
        L.Activation("tanh"),
        _scale("scale"),
    )
    assert repr(net) == (
        "Network(serial_0=Network(dense_0=Dense(8, relu, use_bias=False), dropout_0=Dropout(0.1)), "
        "layer_norm_0=LayerNorm(epsilon=1e-05, center=False), layer_norm_1=LayerNorm(), flatten_0=Flatten(), "
        "tanh_0=Activation(tanh), scale_0=Layer)"
    )


def test_a_repr_shows_activation_options_and_the_network_s_name_that_are_not_the_defaults():
    """Networks of built-in layers that differ print differently: an activation's options
    (leaky_relu's slope, elu's alpha, softmax's axis) and a network's name where not defaults."""
    A = fnn.activations
    shown = {
        L.Dense(4, "leaky_relu"): "Dense(4, leaky_relu)",
        L.Dense(4, A.get("leaky_relu", negative_slope=0.5)): "Dense(4, leaky_relu(negative_slope=0.5))",
        L.Dense(4, A.get("elu", alpha=1.0)): "Dense(4, elu)",
        L.Dense(4, A.get("elu", alpha=2)): "Dense(4, elu(alpha=2.0))",
        L.Activation("softmax"): "Activation(softmax)",
        L.Activation(A.get("softmax", axis=0)): "Activation(softmax(axis=0))",
    }
    assert len(set(shown)) == len(shown)
    for layer, text in shown.items():
        assert repr(layer) == text  # a layer alone, as a network shows it
    assert repr(fnn.serial(L.Dense(4), name="a")) == "Network(dense_0=Dense(4), name='a')"
    assert repr(fnn.serial(L.Dense(4), name="serial")) == "Network(dense_0=Dense(4))"
    nested = fnn.serial(fnn.serial(L.Dense(2), name="block"), L.Dense(1))
    assert repr(nested) == "Network(block_0=Network(dense_0=Dense(2), name='block'), dense_0=Dense(1))"


def test_a_built_in_layer_s_repr_is_its_call_and_it_stays_the_layer_tuple():
    """``Dense(4, relu)`` rather than a tuple of function addresses, with ``name=`` where not
    the default; the layer still unpacks, compares and hashes as the tuple of its functions."""
    dense = L.Dense(4, activation="relu")
    assert repr(dense) == str(dense) == "Dense(4, relu)"
    assert repr(L.Dense(4, name="hidden")) == "Dense(4, name='hidden')"
    assert repr(L.Dropout(0.1)) == "Dropout(0.1)" and repr(L.Flatten(name="f")) == "Flatten(name='f')"
    assert repr(L.LayerNorm(epsilon=1e-5)) == "LayerNorm(epsilon=1e-05)" and repr(L.LayerNorm()) == "LayerNorm()"
    assert repr(L.Activation("tanh", name="t")) == "Activation(tanh, name='t')"
    init, forward, backward, name, needs_key = dense
    assert name == "dense" and not needs_key and dense == L.Layer(init, forward, backward, name)
    assert hash(dense) == hash(L.Dense(4, activation="relu"))
    mine = _scale("scale")  # a layer of your own: its fields, as a tuple shows them
    assert repr(mine).startswith("Layer(init=<function") and "name='scale', needs_key=False)" in repr(mine)


def test_network_built_directly_checks_what_serial_checks():
    """``Network(layers, names, name)`` refuses what serial refuses, names the argument, and
    takes a list of layers as a tuple (so it hashes, and equals the serial network)."""
    dense = L.Dense(4)
    with pytest.raises(TypeError, match=r"^Network: layers\[0\] must be a Layer or Network, got int$"):
        L.Network([1, 2])
    with pytest.raises(TypeError, match=r"^Network: layers must be a tuple .* got a single Layer$"):
        L.Network(dense)
    with pytest.raises(TypeError, match=r"^Network: layers must be a tuple .* got str$"):
        L.Network("dense")
    with pytest.raises(ValueError, match=r"^Network needs at least one layer$"):
        L.Network(())
    with pytest.raises(ValueError, match=r"^Network: names must be unique .* repeated: \['a'\]$"):
        L.Network((dense, dense), names=("a", "a"))
    with pytest.raises(ValueError, match=r"^Network: names must name each of the 2 layers, got 1 names$"):
        L.Network((dense, dense), names=("a",))
    with pytest.raises(TypeError, match=r"^Network: names\[1\] must be a str, got int$"):
        L.Network((dense, dense), names=("a", 1))
    with pytest.raises(TypeError, match=r"^Network: names must be a tuple of str, one per layer, got str$"):
        L.Network((dense,), names="a")
    with pytest.raises(TypeError, match=r"^Network: name must be a str, got int$"):
        L.Network((dense,), name=3)
    with pytest.raises(TypeError, match=r"^serial: name must be a str, got NoneType$"):
        fnn.serial(dense, name=None)
    # summary joins nested names with "/" (Keras refuses it in names too); names= are used as given
    slash = r"must not contain '/' \(fnn.summary joins the names of nested layers with it\)$"
    with pytest.raises(ValueError, match=r"^Network: names\[1\] 'enc/proj' " + slash):
        L.Network((dense, dense), names=("a", "enc/proj"))
    with pytest.raises(ValueError, match=r"^Network: names\[0\] '' must not be empty$"):
        L.Network((dense,), names=("",))
    with pytest.raises(ValueError, match=r"^serial: name 'a/b' " + slash):
        fnn.serial(dense, name="a/b")
    with pytest.raises(ValueError, match=r"^serial: argument 1's name 'x/' " + slash):
        fnn.serial(dense, L.Dense(2, name="x/"))
    with pytest.raises(ValueError, match=r"^serial: argument 0's name 'h/' " + slash):
        fnn.mlp([3, 2], name="h/")
    listed = L.Network([L.Dense(4, "relu"), L.Dense(1)])
    assert listed.layers == (L.Dense(4, "relu"), L.Dense(1)) and listed.names == ("dense_0", "dense_1")
    assert listed == fnn.serial(L.Dense(4, "relu"), L.Dense(1)) and hash(listed) == hash(fnn.mlp([4, 1]))
    named = L.Network([dense], names=["first"])
    assert named.names == ("first",) and repr(named) == "Network(first=Dense(4))"


def test_a_dense_repr_shows_the_initializers_that_are_not_keras_s_defaults():
    """Networks that draw differently print differently: an initializer by its name (Keras's
    before torch's), else by the call that builds an equal one."""
    I = fnn.initializers
    shown = {
        L.Dense(3): "Dense(3)",
        L.Dense(3, kernel_initializer="he_normal"): "Dense(3, kernel_initializer=he_normal)",
        L.Dense(3, bias_initializer="ones"): "Dense(3, bias_initializer=ones)",
        L.Dense(3, "relu", kernel_initializer="xavier_uniform", bias_initializer="zero"): "Dense(3, relu)",
        L.Dense(3, kernel_initializer="kaiming_uniform", bias_initializer="Constant"): (
            "Dense(3, kernel_initializer=he_uniform)"
        ),
        L.Dense(3, kernel_initializer="zeros", bias_initializer="random_normal"): (
            "Dense(3, kernel_initializer=zeros, bias_initializer=random_normal)"
        ),
        L.Dense(3, kernel_initializer="variance_scaling"): "Dense(3, kernel_initializer=lecun_normal)",
        L.Dense(3, kernel_initializer=I.random_normal(stddev=0.1), bias_initializer=I.constant(0.5)): (
            "Dense(3, kernel_initializer=random_normal(mean=0.0, stddev=0.1), bias_initializer=constant(value=0.5))"
        ),
        L.Dense(3, kernel_initializer=I.kaiming_normal(mode="fan_out")): (
            "Dense(3, kernel_initializer=variance_scaling(scale=2.0, mode='fan_out', "
            "distribution='untruncated_normal'))"
        ),
        L.Dense(3, kernel_initializer=I.random_uniform(-1.0, 1.0), use_bias=False, bias_initializer="ones"): (
            "Dense(3, use_bias=False, kernel_initializer=random_uniform(minval=-1.0, maxval=1.0))"
        ),
        L.Dense(3, kernel_initializer=I.truncated_normal(1.0, 0.2)): (
            "Dense(3, kernel_initializer=truncated_normal(mean=1.0, stddev=0.2))"
        ),
        L.Dense(3, kernel_initializer=_ones_init): "Dense(3, kernel_initializer=_ones_init)",
    }
    assert len(shown) == 12  # no two of these layers are equal
    for layer, text in shown.items():
        assert repr(fnn.serial(layer)) == f"Network(dense_0={text})"
    # the repr of an unnamed one is the public call that builds it
    for init in (I.random_normal(stddev=0.1), I.constant(0.5), I.kaiming_normal(mode="fan_out"), I.random_uniform()):
        assert eval(f"I.{init!r}", {"I": I}) == init


def _ones_init(key, shape, dtype=jnp.float32):
    return jnp.ones(shape, dtype)


def test_init_draws_what_init_with_shape_draws_uniform_bit_for_bit_normals_to_rounding():
    """Network.init's one compiled program and the eager init_with_shape draw from the same keys;
    a normal's transform, truncated or not, may round differently (a few float32 ulps: how
    depends on XLA's optimisation settings and backend, up to 7 on an H200)."""
    key = jax.random.PRNGKey(5)
    net = fnn.serial(
        L.Dense(5, kernel_initializer="glorot_uniform", bias_initializer="random_uniform"),
        L.Dense(4, kernel_initializer="he_normal", bias_initializer="truncated_normal"),
        L.Dense(3, kernel_initializer="random_normal", bias_initializer="ones"),
    )
    compiled, (_, eager) = net.init(key, (6,)), net.init_with_shape(key, (6,))
    chex.assert_trees_all_equal(compiled[0], eager[0])
    chex.assert_trees_all_equal(compiled[2]["b"], eager[2]["b"])
    for got, want in (
        (compiled[1]["w"], eager[1]["w"]),
        (compiled[1]["b"], eager[1]["b"]),
        (compiled[2]["w"], eager[2]["w"]),
    ):
        got, want = np.asarray(got), np.asarray(want)
        assert got.dtype == want.dtype == np.float32 and np.all(np.abs(want) > 0)
        assert np.all(np.abs(got - want) <= 16 * np.spacing(np.abs(want)))


def test_input_shape_must_be_ints_never_coerced():
    net = fnn.mlp([4])
    for bad, error, message in (
        ((3.7,), TypeError, r"input_shape\[0\] must be an int, got float 3.7"),
        ("12", TypeError, "input_shape must be an int or a tuple of ints"),
        (True, TypeError, "input_shape must be an int or a tuple of ints"),
        ((3, 0), ValueError, r"input_shape\[1\] must be >= 1, got 0"),
        ((), ValueError, "input_shape must name at least one axis"),
    ):
        for call in (lambda: net.init(KEY, bad), lambda: net.output_shape(bad), lambda: fnn.summary(net, bad)):
            with pytest.raises(error, match=message):
                call()
    for good in (3, np.int64(3), (3,), [3], np.array([3])):
        assert net.output_shape(good) == (4,)


def test_dropout_train_backward_matches_vjp_and_statistics():
    layer = L.Dropout(0.3)
    _vjp_check(layer, (50,), jnp.float64, 1e-12, batch=4, train=True, key=jax.random.PRNGKey(3))

    @jax.jit
    def statistics(key):
        y, _ = layer.forward({}, jnp.ones((200, 500)), key=key, train=True)
        return y, jnp.mean(y == 0), jnp.mean(y)

    y, dropped, mean = statistics(jax.random.PRNGKey(4))
    assert abs(float(dropped) - 0.3) < 0.01  # rate is the fraction DROPPED
    np.testing.assert_allclose(np.unique(np.asarray(y)), [0.0, 1 / 0.7], rtol=1e-6)  # inverted scaling
    assert abs(float(mean) - 1.0) < 0.01


@pytest.mark.parametrize("impl", ["rbg", "unsafe_rbg"])
def test_dropout_vmapped_over_keys_draws_each_keys_own_mask(impl):
    """JAX's vmap of an rbg draw (and of unsafe_rbg's split) takes the whole batch from the
    first key; a network's Dropout masks, vmapped over models' keys (fit_many), are each key's
    own, as when each model runs alone."""
    net = fnn.serial(L.Dropout(0.5), L.Dense(3), L.Dropout(0.5))
    shapes = jax.eval_shape(lambda: net.init(jax.random.PRNGKey(0), (4,)))
    params = jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), shapes)  # zeros: only the masks show
    x = np.ones((2, 4))
    keys = jax.jit(lambda k: jax.random.split(k, 3))(jax.random.key(1, impl=impl))  # one program, not eager ones
    masks = lambda k: net.forward(params, x, key=k, train=True)[1]
    # vmapped, and each key's alone: one program
    stacked, alone = jax.jit(lambda ks: (jax.vmap(masks)(ks), [masks(ks[i]) for i in range(3)]))(keys)
    stacked = jax.tree.map(np.asarray, stacked)
    for i in range(3):
        chex.assert_trees_all_equal(jax.tree.map(lambda a, i=i: a[i], stacked), alone[i])


def test_dropout_eval_is_identity_and_train_needs_key():
    layer = L.Dropout(0.5)
    x = jax.device_put(np.arange(6.0).reshape(2, 3))
    y, cache = layer.forward({}, x, train=False)
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(layer.backward({}, cache, x)[1], x)
    with pytest.raises(ValueError, match="key"):
        layer.forward({}, x, train=True)
    with pytest.raises(TypeError, match=r"dropout: key must be a jax PRNG key .*got 0"):  # a seed, as through a network
        layer.forward({}, x, key=0, train=True)
    for bad in (-0.1, 1.0001, 1.5):
        with pytest.raises(ValueError, match=r"rate must be in \[0, 1\]"):
            L.Dropout(bad)
    with pytest.raises(TypeError, match="rate"):  # a wrong type is a TypeError, as everywhere
        L.Dropout("0.5")


def test_dropout_rate_1_zeroes_every_unit_and_every_gradient():
    """Keras's and torch's rate 1: in training nothing is kept (outputs, the hand-written dx and
    jax.grad all 0, none NaN: x / (1 - rate) is never formed); evaluation stays the identity."""
    net = fnn.serial(L.Dense(3), L.Dropout(1.0), L.Dense(2))
    params = jax.tree.map(np.asarray, net.init(KEY, (2,), jnp.float64))
    x, key = np.array([[1.0, -2.0], [0.5, 3.0]]), jax.random.PRNGKey(1)

    @jax.jit
    def run(params):
        y, cache = net.forward(params, x, key=key, train=True)
        return (
            y,
            net.backward(params, cache, jnp.ones_like(y)),
            jax.grad(lambda p: net.apply(p, x, key=key, train=True).sum())(params),
        )

    y, (grads, dx), auto = run(params)
    np.testing.assert_array_equal(y, np.broadcast_to(params[2]["b"], (2, 2)))  # only the last bias is left
    chex.assert_trees_all_equal(grads, auto)
    np.testing.assert_array_equal(dx, np.zeros((2, 2)))
    assert not np.any(grads[0]["w"]) and not np.any(grads[0]["b"]) and not np.any(grads[2]["w"])
    np.testing.assert_array_equal(net.apply(params, x), net.apply(params[:1] + [{}, params[2]], x))  # eval: identity


def test_dense_defaults_keras_glorot_uniform_and_zero_bias():
    _, params = jax.jit(lambda k: L.Dense(300).init(k, (200,), jnp.float32))(KEY)
    limit = np.sqrt(6 / (200 + 300))
    w = np.asarray(params["w"])
    assert w.shape == (200, 300) and params["b"].shape == (300,)
    assert np.all(np.abs(w) <= limit) and np.abs(w).max() > 0.95 * limit
    np.testing.assert_allclose(w.std(), limit / np.sqrt(3), rtol=0.02)
    np.testing.assert_array_equal(params["b"], 0.0)
    assert w.dtype == np.float32


def test_mlp_params_layout_and_forward_formula():
    net = fnn.mlp([4, 3], activation="tanh")
    x = np.random.default_rng(0).normal(size=(7, 5))

    @jax.jit
    def init_and_apply(key, x):
        params = net.init(key, (5,), jnp.float64)
        return params, net.apply(params, x)

    params, y = init_and_apply(KEY, x)
    chex.assert_tree_shape_prefix(params, ())
    assert [sorted(p) for p in params] == [["b", "w"], ["b", "w"]]
    chex.assert_shape([params[0]["w"], params[0]["b"], params[1]["w"], params[1]["b"]], [(5, 4), (4,), (4, 3), (3,)])
    p = jax.tree.map(np.asarray, params)
    ref = np.tanh(x @ p[0]["w"] + p[0]["b"]) @ p[1]["w"] + p[1]["b"]  # output layer linear
    np.testing.assert_allclose(y, ref, rtol=1e-12)
    assert net.output_shape((5,)) == (3,)
    assert net.names == ("dense_0", "dense_1")


def test_serial_backward_runs_layers_in_reverse_and_nests():
    inner = fnn.serial(L.Dense(4, "relu"), L.LayerNorm())
    net = fnn.serial(L.Flatten(), inner, L.Dropout(0.2), L.Dense(3, "softmax"))
    params = _like_init(lambda: net.init(KEY, (2, 3), jnp.float64))
    rng = np.random.default_rng(1)
    x, dy = rng.normal(size=(5, 2, 3)), rng.normal(size=(5, 3))  # NumPy draws: the only PRNG left is Dropout's

    @jax.jit
    def backward_and_vjp(params, x, dy, k):
        _, cache = net.forward(params, x, key=k, train=True)
        _, vjp = jax.vjp(lambda p, xx: net.apply(p, xx, key=k, train=True), params, x)
        return net.backward(params, cache, dy), vjp(dy)

    (grads, dx), reference = backward_and_vjp(params, x, dy, jax.random.PRNGKey(2))
    chex.assert_trees_all_close((grads, dx), reference, rtol=1e-10, atol=1e-12)
    assert net.needs_key and not fnn.mlp([2]).needs_key


def test_feature_mismatch_names_layer_and_sizes():
    net = fnn.mlp([4, 2])
    params = _like_init(lambda: net.init(KEY, (3,), jnp.float32))
    with pytest.raises(ValueError, match=r"layer 0 \(dense_0\).*expects 3 input features, got 5"):
        net.apply(params, jax.device_put(np.ones((2, 5))))
    with pytest.raises(ValueError, match="one entry per layer"):
        net.apply(params[:1], jax.device_put(np.ones((2, 3))))


def test_apply_refuses_another_dense_s_params_that_the_matmul_would_run():
    """fit, predict and evaluate refuse params of another network; apply ran them: a wider
    layer's (a Dense(8) computing 16 units), a bias of one value broadcast, a stray entry."""
    net = fnn.mlp([8, 3])
    mine, wide = net.init(KEY, (4,)), fnn.mlp([16, 3]).init(KEY, (4,))
    x = jax.device_put(np.ones((5, 4), np.float32))
    first = r"^layer 0 \(dense_0\): forward fails on inputs of shape \(5, 4\): Dense\(8\)'s params must be "
    shaped = first + re.escape("{'w': (in, 8), 'b': (8,)}, got ")
    cases = [
        (wide, shaped + re.escape("{'w': (4, 16), 'b': (16,)}")),
        ([{"w": mine[0]["w"], "b": jnp.zeros(1)}, mine[1]], shaped + re.escape("{'w': (4, 8), 'b': (1,)}")),
        ([{"w": mine[0]["w"], "b": jnp.zeros((1, 8))}, mine[1]], shaped + re.escape("{'w': (4, 8), 'b': (1, 8)}")),
        ([{**mine[0], "extra": jnp.zeros(3)}, mine[1]], shaped + re.escape("entries ['b', 'extra', 'w']")),
        ([{"w": mine[0]["w"]}, mine[1]], shaped + re.escape("entries ['w']")),
        ([[mine[0]["w"]], mine[1]], shaped + "list"),
    ]
    for params, said in cases:
        with pytest.raises(ValueError, match=said):
            net.apply(params, x)
        with pytest.raises(ValueError, match=said):
            jax.jit(net.apply)(params, x)
    unbiased = fnn.serial(L.Dense(3, use_bias=False))
    p = unbiased.init(KEY, (4,))
    assert unbiased.apply(p, x).shape == (5, 3)
    with pytest.raises(ValueError, match=re.escape("Dense(3)'s params must be {'w': (in, 3)}, got entries ['b', 'w']")):
        unbiased.apply([{**p[0], "b": jnp.zeros(3)}], x)
    assert net.apply(mine, x).shape == (5, 3)
    # a dict-like pytree node of the user's (keys and items, no Mapping) is read as a dict is
    views = [_DictLike(p) for p in mine]
    np.testing.assert_array_equal(net.apply(views, x), net.apply(mine, x))


@jax.tree_util.register_pytree_node_class
class _DictLike:
    """A params container of a user's: dict-like (keys, items, []), not a Mapping."""

    def __init__(self, entries):
        self._entries = dict(entries)

    def keys(self):
        return self._entries.keys()

    def items(self):
        return self._entries.items()

    def __getitem__(self, key):
        return self._entries[key]

    def tree_flatten(self):
        keys = sorted(self._entries)
        return [self._entries[k] for k in keys], keys

    @classmethod
    def tree_unflatten(cls, keys, leaves):
        return cls(zip(keys, leaves, strict=True))


def test_bad_constructor_arguments():
    assert fnn.mlp(np.int64(3)) == fnn.mlp(3) == fnn.mlp(np.array([3]))
    for bad in ("64", 3.0, None, True):
        with pytest.raises(TypeError, match="mlp: sizes must be an int or a sequence of ints"):
            fnn.mlp(bad)
    with pytest.raises(ValueError, match="units"):
        L.Dense(0)
    with pytest.raises(ValueError, match="sizes"):
        fnn.mlp([])
    with pytest.raises(ValueError, match="unknown activation|known"):
        L.Dense(3, "nope")
    with pytest.raises(TypeError, match="argument 0"):
        fnn.serial("dense")
    with pytest.raises(ValueError, match="input_shape"):
        fnn.mlp([2]).init(KEY, ())
    # a string is no bool: "False" switched the learned offset on (Dense's use_bias refuses it alike)
    for kwargs in ({"center": "False"}, {"scale": "no"}, {"center": 1}):
        with pytest.raises(TypeError, match=r"^LayerNorm (center|scale) must be a bool, got "):
            L.LayerNorm(**kwargs)
    assert L.LayerNorm(center=np.False_) == L.LayerNorm(center=False)


class TestJit(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_forward_backward_same_with_and_without_jit(self):
        net = fnn.mlp([6, 3], activation="gelu")
        params = _like_init(lambda: net.init(KEY, (4,), jnp.float64))
        x = jax.device_put(np.random.default_rng(5).normal(size=(3, 4)))

        @self.variant
        def run(p, xx):
            y, cache = net.forward(p, xx)
            return y, net.backward(p, cache, jnp.ones_like(y))

        y, (g, dx) = run(params, x)
        y0, c0 = net.forward(params, x)
        chex.assert_trees_all_close((y, g, dx), (y0, *net.backward(params, c0, jnp.ones_like(y0))), rtol=1e-12)


def test_vmap_over_params():
    net = fnn.mlp([3, 2])

    @jax.jit
    def run(key, x):
        params = jax.vmap(lambda k: net.init(k, (5,)))(jax.random.split(key, 4))
        return jax.vmap(net.apply, in_axes=(0, None))(params, x)

    y = run(KEY, np.ones((6, 5)))
    chex.assert_shape(y, (4, 6, 2))


def test_init_refuses_what_is_not_one_key_in_fit_s_words_and_takes_traced_keys(compiles):
    """An int seed, None or a split's array of keys is named as fit names it, by the network's
    init and by each built-in layer's, before anything compiles; only the key's shape and dtype
    are read, so traced keys (one per model under vmap, typed or raw) still initialise."""
    net = fnn.mlp([3, 2])
    typed, raw = jax.random.split(jax.random.key(0), 2), jax.random.split(KEY, 2)
    not_a_key = r"^key must be a jax PRNG key \(jax\.random\.key\(seed\) or jax\.random\.PRNGKey\(seed\)\), got "
    several = r"^key must be ONE PRNG key, got an array of keys of shape "
    cases = [
        (0, TypeError, not_a_key + "0$"),
        (None, TypeError, not_a_key + "None$"),
        (typed, ValueError, several + r"\(2,\) \(take one, e\.g\. key\[0\]\)$"),
        (raw, ValueError, several + r"\(2, 2\)"),
    ]
    inits = [net.init, net.init_with_shape, *(layer.init for layer in (L.Dense(3), L.Dropout(0.5), L.LayerNorm()))]
    inits += [L.Flatten().init, L.Activation("relu").init]
    with compiles() as c:
        for key, error, said in cases:
            for init in inits:
                with pytest.raises(error, match=said):
                    init(key, (4,))
        for keys in (typed, raw):
            params = jax.eval_shape(jax.vmap(lambda k: net.init(k, (4,))), keys)
            assert params[0]["w"].shape == (2, 4, 3) and params[1]["b"].shape == (2, 2)
    assert c.count == 0


# ------------------------------------------------------------------------- networks are layers


def test_a_network_is_a_layer_and_nests_as_it_is():
    inner = fnn.serial(L.Dense(5, "tanh"), L.Dense(4))
    net = fnn.serial(inner, L.Activation("relu"), L.Dense(3), name="outer")
    assert net.layers[0] is inner  # no conversion: the network itself is the first layer
    for attr in ("init_with_shape", "forward", "backward", "name", "needs_key"):
        assert hasattr(inner, attr) and hasattr(L.Dense(2), attr)
    shapes = {}  # the output shapes the inits return, read while they are traced (one program each)

    def protocol_init(key):
        shapes["inner"], params = inner.init_with_shape(key, (3,))  # the layer protocol's init
        return params

    def tuple_view_init(key):
        shapes["view"], params = net.as_layer().init(key, (3,))
        return params

    # the tuple view compares by the network's value, as the network does: equal networks give
    # equal layers (one compiled program for both), pickled and copied ones too
    twin = fnn.serial(fnn.serial(L.Dense(5, "tanh"), L.Dense(4)), L.Activation("relu"), L.Dense(3), name="outer")
    view = net.as_layer()
    assert view == twin.as_layer() and hash(view) == hash(twin.as_layer())
    assert view != fnn.serial(inner, L.Dense(3)).as_layer() and view.name == "outer"
    assert pickle.loads(pickle.dumps(view)) == view and copy.deepcopy(view) == view
    wrapped = fnn.serial(view, L.Dense(1))
    assert pickle.loads(pickle.dumps(wrapped)) == wrapped == fnn.serial(twin.as_layer(), L.Dense(1))

    params = jax.jit(protocol_init)(KEY)
    assert shapes["inner"] == (4,) and len(params) == 2
    params = net.init(KEY, (3,), jnp.float64)
    assert len(params) == 3 and len(params[0]) == 2  # the nested network's entry is its own list
    x = jax.device_put(np.random.default_rng(0).normal(size=(6, 3)))
    flat = fnn.serial(*inner.layers, L.Activation("relu"), L.Dense(3))
    flat_params = [*params[0], *params[1:]]

    @jax.jit  # one program, not an eager one per operation and shape
    def both(params, flat_params, x):
        y, cache = net.forward(params, x)
        dy = jnp.ones_like(y)
        return (
            (net.apply(params, x), flat.apply(flat_params, x)),
            net.backward(params, cache, dy),
            flat.backward(flat_params, flat.forward(flat_params, x)[1], dy),
        )

    (y_nested, y_flat), (g_nested, dx_nested), (g_flat, dx_flat) = both(params, flat_params, x)
    np.testing.assert_array_equal(y_nested, y_flat)
    chex.assert_trees_all_close([*g_nested[0], *g_nested[1:]], g_flat, rtol=1e-13)
    np.testing.assert_allclose(dx_nested, dx_flat, rtol=1e-13)
    jax.jit(tuple_view_init)(KEY)
    assert shapes["view"] == (3,)  # the Layer tuple view still works


def test_output_shape_is_traced_without_side_effects():
    net = fnn.serial(L.Flatten(), fnn.mlp([7, 2]))
    assert net.output_shape((3, 4)) == (2,)
    assert L.Dense(5).output_shape((3, 4)) == (3, 5)
    assert jax.eval_shape(lambda k: net.init(k, (3, 4)), KEY)[1][1]["w"].shape == (7, 2)


def test_dense_skips_the_identity_by_its_function_not_its_name():
    square = fnn.activations.Activation("linear", lambda x: x * x, lambda x, y, dy: 2 * x * dy)
    layer = L.Dense(2, activation=square)
    params = {"w": np.asarray([[1.0, -2.0]]), "b": np.asarray([0.5, 0.0])}

    @jax.jit  # one program, not one per eager primitive
    def run(params, x):
        y, cache = layer.forward(params, x)
        return y, layer.backward(params, cache, jnp.ones_like(y))

    y, (grads, dx) = run(params, np.asarray([[3.0]]))
    np.testing.assert_array_equal(y, [[12.25, 36.0]])  # (3 + 0.5)^2, (-6)^2: squared, not skipped
    np.testing.assert_array_equal(grads["b"], [7.0, -12.0])
    np.testing.assert_array_equal(dx, [[7.0 * 1.0 - 12.0 * -2.0]])
    assert L.Dense(2, activation="linear") == L.Dense(2)  # the real identity is still skipped


def test_init_is_one_compiled_program_shared_by_equal_networks(compiles):
    """All the initializers in one program (not one per shape); an equal network, and the same
    dtype spelled otherwise, reuse it; the values are the eager init's."""
    key = jax.random.PRNGKey(3)
    net = fnn.mlp([7, 5, 3], activation="tanh")  # shapes no other test initialises
    with compiles() as c:
        params = net.init(key, (6,))
    assert c.count == 1
    with compiles() as c:
        again = fnn.mlp([7, 5, 3], activation="tanh").init(key, (6,), "float32")
    assert c.count == 0
    chex.assert_trees_all_equal(params, again)
    chex.assert_trees_all_close(params, net.init_with_shape(key, (6,))[1], rtol=1e-6, atol=0)
    chex.assert_trees_all_equal_dtypes(params, again)


def test_init_takes_the_four_float_dtypes_and_says_float64_without_x64_once(compiles):
    net = fnn.mlp([7, 5, 3], activation="tanh")  # the test above's program
    key = jax.random.PRNGKey(3)
    with compiles() as c:
        for bad, said in (
            (jnp.float8_e4m3fn, r"^dtype must be float16, bfloat16, float32 or float64 \(8-bit floats"),
            ("float8_e5m2", r"^dtype must be float16, bfloat16, float32 or float64"),
            (jnp.int32, r"^dtype must be a floating dtype, got int32"),
        ):
            with pytest.raises(TypeError, match=said):
                net.init(key, (6,), bad)
            with pytest.raises(TypeError, match=said):
                net.init_with_shape(key, (6,), bad)
    assert c.count == 0
    with jax.enable_x64(False):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # None is the default float dtype: no warning
            default = net.init(key, (6,), None)
        with pytest.warns(UserWarning) as seen:  # one warning, not jax's one per leaf and draw
            wide = net.init(key, (6,), jnp.float64)
        assert [str(w.message)[:58] for w in seen] == ["dtype=float64 is not available with jax_enable_x64 off: th"]
        float32 = net.init(key, (6,))
    chex.assert_trees_all_equal(default, wide, float32)
    assert {a.dtype for a in jax.tree.leaves(wide)} == {np.dtype(np.float32)}


def test_a_layer_whose_init_needs_concrete_values_is_initialised_eagerly():
    def init(key, input_shape, dtype=jnp.float32):
        n = int(jax.random.randint(key, (), 2, 5))  # a Python int from the key: not traceable
        return (n,), {"w": jnp.ones((input_shape[-1], n), dtype)}

    def forward(params, x, key=None, train=False):
        return x @ params["w"], x

    def backward(params, x, dy):
        return {"w": x.T @ dy}, dy @ params["w"].T

    net = fnn.serial(L.Layer(init, forward, backward, "random_width"), L.Dense(2))
    params = net.init(KEY, (3,))
    n = int(jax.random.randint(jax.random.split(KEY, 2)[0], (), 2, 5))
    assert params[0]["w"].shape == (3, n) and params[1]["w"].shape == (n, 2)
    # the shape queries run it eagerly too (with PRNGKey(0), split as init splits it)
    width = lambda key: int(jax.random.randint(key, (), 2, 5))
    assert net.output_shape((3,)) == (2,) and net.layers[0].output_shape((3,)) == (width(jax.random.PRNGKey(0)),)
    m = width(jax.random.split(jax.random.PRNGKey(0), 2)[0])
    report = fnn.summary(net, (3,))
    assert report.total_params == 3 * m + m * 2 + 2 and report.rows[0].output_shape == (None, m)


def test_a_layer_whose_init_needs_numpy_trains_evaluates_and_predicts_as_a_traceable_one():
    """fit, evaluate, predict and sweep check the params against what net.init builds: an init
    that cannot be traced is run eagerly for that too, with the traceable equivalent's results."""

    def dense_init(numpy):
        def init(key, input_shape, dtype=jnp.float32):
            w = jax.random.normal(key, (input_shape[-1], 4), dtype)
            # np.asarray needs the key's concrete value: under eval_shape it raises
            return (4,), {"w": jnp.asarray(np.asarray(w) * 0.5) if numpy else w * 0.5}

        return init

    forward = lambda p, x, key=None, train=False: (x @ p["w"], x)
    backward = lambda p, x, dy: ({"w": x.T @ dy}, dy @ p["w"].T)
    nets = [fnn.serial(L.Layer(dense_init(numpy), forward, backward, "dense4"), L.Dense(1)) for numpy in (True, False)]
    x = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    y = x[:, :1] - x[:, 1:2]
    params = [net.init(KEY, (3,)) for net in nets]
    chex.assert_trees_all_close(params[0], params[1], rtol=1e-6, atol=0)
    numpy_net, traced_net = nets
    p = params[1]  # the same values into both: the results must agree
    want = (x @ np.asarray(p[0]["w"])) @ np.asarray(p[1]["w"]) + np.asarray(p[1]["b"])
    np.testing.assert_allclose(fnn.predict(numpy_net, p, x), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fnn.predict(traced_net, p, x), want, rtol=1e-5, atol=1e-6)
    mse = float(np.mean((want - y) ** 2))
    for net in nets:
        assert fnn.evaluate(net, p, "mse", x, y)["loss"] == pytest.approx(mse, rel=1e-5)
    fits = [fnn.fit(net, p, "sgd", "mse", x, y, epochs=2, batch_size=4, verbose=0) for net in nets]
    assert fits[0].history["loss"] == pytest.approx(fits[1].history["loss"], rel=1e-6)
    chex.assert_trees_all_close(fits[0].params, fits[1].params, rtol=1e-6, atol=1e-7)
    sweeps = [fnn.sweep(net, "sgd", "mse", x, y, seeds=[0, 1], epochs=1, batch_size=8) for net in nets]
    losses = [[h["loss"][0] for h in s.histories] for s in sweeps]
    assert losses[0] == pytest.approx(losses[1], rel=1e-6) and losses[0][0] != losses[0][1]
    # params of another width are still named against the eager init
    wide = [{"w": np.zeros((3, 5))}, {"w": np.zeros((5, 1)), "b": np.zeros(1)}]
    with pytest.raises(ValueError, match=r"params\[0\]\['w'\] has shape \(3, 5\), the network builds \(3, 4\)"):
        fnn.predict(numpy_net, wide, x)


# ------------------------------------------------------------------ rows_independent (fit's padding)


def _wrapping(layer, name="mine"):
    """A user Layer whose forward calls ``layer``'s: the same numbers, but not a built-in."""
    forward = lambda params, x, **kw: layer.forward(params, x, **kw)
    return L.Layer(layer.init, forward, layer.backward, name, layer.needs_key)


ROW_NETS = [
    (fnn.mlp([5, 3]), (4,)),
    (
        fnn.serial(
            L.Flatten(),
            L.Dense(6, "relu"),
            L.Dropout(0.3),
            L.LayerNorm(),
            L.Activation("softmax"),
            L.LayerNorm(center=False, scale=False),
            L.Dense(2, use_bias=False),
        ),
        (2, 3),
    ),
    (  # nested networks of built-in layers, two deep
        fnn.serial(
            fnn.serial(L.Flatten(), fnn.serial(L.Dense(4, "tanh"), L.Reshape((2, 2)), L.LayerNorm())),
            L.Dropout(0.1),
            fnn.mlp([3, 2], activation="gelu", output_activation="log_softmax"),
        ),
        (2, 2),
    ),
]


def test_rows_independent_for_networks_of_builtin_layers():
    """True for built-in layers at any depth, and they are: each output row is the row of that
    input alone (eval mode), so padding a batch changes no real row."""
    from fnn.layers._core import rows_independent

    assert all(rows_independent(net) for net, _ in ROW_NETS)
    rng = np.random.default_rng(0)
    params = [_like_init(lambda net=net, s=s: net.init(KEY, s, jnp.float64)) for net, s in ROW_NETS]
    xs = [rng.normal(size=(5, *s)) for _, s in ROW_NETS]
    idx = np.array([1, 3, 4])
    nets = tuple(net for net, _ in ROW_NETS)

    @functools.partial(jax.jit, static_argnums=0)
    def run(nets, params, xs):
        return [(net.apply(p, x)[idx], net.apply(p, x[idx])) for net, p, x in zip(nets, params, xs, strict=True)]

    for rows_of_all, alone in run(nets, params, xs):
        np.testing.assert_allclose(rows_of_all, alone, rtol=1e-13, atol=1e-15)


def test_rows_independent_is_false_for_a_user_layer_at_any_depth():
    """A user Layer is not assumed row-independent, even one that only calls a built-in's
    functions; one such layer anywhere in the nesting is enough."""
    from fnn.layers._core import rows_independent

    mine = _wrapping(L.Dense(4, "tanh"))
    assert rows_independent(fnn.serial(L.Dense(4, "tanh"), L.Dense(2)))  # the same net, built-in
    cases = [
        fnn.serial(mine, L.Dense(2)),
        fnn.serial(L.Dense(4), L.Dense(2), _wrapping(L.Activation("relu"))),  # the last layer
        fnn.serial(L.Flatten(), fnn.serial(L.Dense(3), mine), L.Dense(2)),  # one deep
        fnn.serial(fnn.serial(fnn.serial(L.LayerNorm(), fnn.serial(mine)), L.Dropout(0.2)), L.Dense(2)),  # 3 deep
        fnn.serial(_wrapping(L.Dropout(0.5)), L.Dense(2)),
        fnn.serial(_wrapping(L.Flatten()), L.Dense(2)),
    ]
    for net in cases:
        assert rows_independent(net) is False, net


def test_rows_independent_is_false_for_an_activation_across_the_batch():
    from fnn.layers._core import rows_independent

    centre = fnn.activations.Activation("centre", lambda z: z - jnp.mean(z, axis=0), lambda z, a, dy: dy - dy.mean(0))
    batch_softmax = fnn.activations.get("softmax", axis=0)
    for act in (centre, batch_softmax):
        for net in (fnn.serial(L.Dense(3, act), L.Dense(2)), fnn.serial(L.Dense(3), L.Activation(act))):
            assert not rows_independent(net), (act.name, net)


def test_swapped_byte_order_params_inputs_and_cotangents_are_used_by_their_values():
    """Big-endian NumPy arrays (read from a file) after a native call of the same shapes, where
    JAX's fast path reads their bytes unswapped: the native arrays' numbers (NumPy's reference)."""
    net = fnn.mlp([2])
    w, b = np.arange(6.0).reshape(3, 2), np.array([0.5, 1.5])
    x, dy = np.array([[1.0, -1.0, 2.0]]), np.array([[1.0, -2.0]])
    params, big = [{"w": w, "b": b}], [{"w": swapped(w), "b": swapped(b)}]
    np.testing.assert_array_equal(net.apply(params, x), x @ w + b)  # native first: the fast path is set
    np.testing.assert_array_equal(net.apply(big, swapped(x)), x @ w + b)
    cache = net.forward(params, x)[1]
    grads, dx = net.backward(big, cache, swapped(dy))
    np.testing.assert_array_equal(grads[0]["w"], x.T @ dy)
    np.testing.assert_array_equal(dx, dy @ w.T)


def test_apply_names_a_shape_dtype_struct_and_an_object_array():
    net = fnn.mlp([2])
    params = [{"w": np.ones((3, 2)), "b": np.zeros(2)}]
    with pytest.raises(TypeError, match=r"^x is a jax.ShapeDtypeStruct .*jax.eval_shape\(net.apply, params, x\)"):
        net.apply(params, jax.ShapeDtypeStruct((4, 3), jnp.float64))
    with pytest.raises(TypeError, match=r"^params\[0\]\['w'\] must hold numbers; got dtype object"):
        net.apply([{"w": np.ones((3, 2), object), "b": np.zeros(2)}], np.ones((4, 3)))


# ---- explicit broadcasts and casts: fnn under jax_numpy_rank_promotion="raise" and
# jax_numpy_dtype_promotion="strict" --------------------------------------------------------


def _whole_workflow(net, params, loss, x, y, w, x_val, y_val, w_val, focal):
    """Every entry point on one network: apply, value_and_grad (manual, autodiff and jax.grad,
    with Dropout's key and sample weights) and ``focal()`` as one jitted program, then fit
    (padded last batches, validation, sample weights, metrics), evaluate, predict, gradcheck;
    as NumPy values."""
    key = jax.random.PRNGKey(3)

    @jax.jit  # one program (traced again under the other setting: it is part of jit's cache key)
    def direct(params, x, y, w):
        out = {"apply": net.apply(params, x), "apply_train": net.apply(params, x, key=key, train=True)}
        for mode in ("manual", "autodiff"):
            out[mode] = fnn.value_and_grad(net, loss, mode)(params, x, y, key=key, sample_weight=w)
        out["jax.grad"] = jax.grad(lambda p: loss(y, net.apply(p, x, key=key, train=True)))(params)
        out["focal"] = focal()
        return out

    out = direct(params, x, y, w)
    fitted = fnn.fit(
        net, params, "adam", loss, x, y, batch_size=8, epochs=2, key=key, verbose=0,
        metrics=["accuracy", "sparse_top_k_categorical_accuracy"], weighted_metrics=["accuracy"],
        validation_data=(x_val, y_val, w_val), sample_weight=w,
    )  # fmt: skip
    out["fit"] = (fitted.params, fitted.opt_state, dict(fitted.history))
    out["evaluate"] = fnn.evaluate(
        net, fitted.params, loss, x_val, y_val, metrics=["accuracy"], batch_size=4, sample_weight=w_val,
        weighted_metrics=["accuracy"],
    )  # fmt: skip
    out["evaluate_one_hot"] = fnn.evaluate(
        net, fitted.params, fnn.losses.get("categorical_crossentropy", from_logits=True), x_val, np.eye(3)[y_val],
        metrics=["auc", "precision", "f1_score", "r2"], weighted_metrics=["auc"], sample_weight=w_val,
    )  # fmt: skip
    out["predict"] = fnn.predict(net, fitted.params, x, batch_size=8)
    report = fnn.gradcheck(net, loss, params, x[:4], y[:4], key=key)
    out["gradcheck"] = (report.passed, report.loss_value, [(r.manual_vs_autodiff, r.manual_vs_fd) for r in report.rows])
    return jax.tree.map(np.asarray, out)


def test_every_entry_point_runs_under_rank_promotion_raise_and_dtype_promotion_strict_with_the_default_s_numbers():
    """fnn broadcasts explicitly (a bias, LayerNorm's scale and offset, a per-class alpha, AUC's
    thresholds...) and casts explicitly where it mixes dtypes: a user who sets
    ``jax_numpy_rank_promotion="raise"`` and ``jax_numpy_dtype_promotion="strict"`` to catch their
    own implicit broadcasts and promotions gets no error from fnn's code, whose message would
    name their layer, and the same numbers, bit for bit. Here float64 params with float64 NumPy
    data and int64 labels (x64 on): the checks trace x in the params' dtype, not float32."""
    net = fnn.serial(
        L.Flatten(), L.Dense(8, "tanh"), L.LayerNorm(), L.Dropout(0.25), L.Dense(6, "relu"), L.Activation("softplus"),
        L.Dense(3),
    )  # fmt: skip
    rng = np.random.default_rng(0)
    x, x_val = rng.normal(size=(20, 2, 3)), rng.normal(size=(7, 2, 3))  # 20 = 2 batches of 8 and one of 4
    y, y_val = rng.integers(0, 3, 20), rng.integers(0, 3, 7)
    w, w_val = rng.uniform(0.5, 2.0, 20), rng.uniform(0.5, 2.0, 7)
    params = net.init(KEY, (2, 3), jnp.float64)
    loss = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)
    # a focal loss with one alpha per class (C,) for targets (N, C)
    t, p, alpha = np.eye(3)[y], rng.uniform(0.05, 0.95, (20, 3)), np.array([0.2, 0.5, 0.8])
    focal = lambda: [
        getattr(fnn.losses, name)(t, p, apply_class_balancing=True, alpha=alpha, sample_weight=w)
        for name in ("binary_focal_crossentropy", "binary_focal_crossentropy_grad")
    ]
    args = (net, params, loss, x, y, w, x_val, y_val, w_val, focal)
    fnn.clear_caches()  # the shape checks fit caches are traced under "raise" too, not filled before
    with jax.numpy_rank_promotion("raise"), jax.numpy_dtype_promotion("strict"):
        got = _whole_workflow(*args)
    want = _whole_workflow(*args)
    assert got["gradcheck"][0] and len(got["fit"][2]["val_loss"]) == 2
    chex.assert_trees_all_equal(got, want)


def test_layer_norm_in_half_precision_casts_its_params_to_its_float32_statistics_under_dtype_promotion_strict():
    """float16 scale and offset meet LayerNorm's float32 statistics: cast, as standard promotion
    would, so "strict" runs it with the same numbers (forward and backward)."""
    layer = L.LayerNorm()
    p = _like_init(lambda: layer.init(KEY, (3,), jnp.float16)[1])  # init's ones and zeros
    p = {"scale": np.asarray(p["scale"]) * np.float16(1.5), "offset": np.asarray(p["offset"]) + np.float16(0.25)}
    x = np.asarray(np.random.default_rng(0).normal(size=(4, 3)), np.float16)

    @jax.jit  # one program (traced again under the other setting: it is part of jit's cache key)
    def run(p, x):
        y, cache = layer.forward(p, x)
        return y, layer.backward(p, cache, jnp.ones_like(y))

    with jax.numpy_dtype_promotion("strict"):
        got = run(p, x)
    assert got[0].dtype == jnp.float16
    chex.assert_trees_all_equal(got, run(p, x))


def test_float32_params_and_int32_labels_under_x64_run_under_dtype_promotion_strict_with_the_default_s_numbers():
    """Under x64 with float32 params and int32 labels fnn mixed dtypes of its own: the epoch's
    loss sum (float64) with a batch's (float32), argmax's int64 indices with int32 labels (the
    accuracy), gradcheck's float64 pass with LayerNorm's float32 statistics floor. Cast
    explicitly, they run under ``jax_numpy_dtype_promotion="strict"`` with the same numbers."""
    net = fnn.serial(L.Dense(4, "tanh"), L.LayerNorm(), L.Dense(3))
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(12, 2)).astype(np.float32), rng.integers(0, 3, 12).astype(np.int32)
    params = net.init(KEY, (2,))
    loss = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)

    def run():
        fitted = fnn.fit(
            net, params, "adam", loss, x[:10], y[:10], batch_size=4, epochs=1, verbose=0, metrics=["accuracy"],
            validation_data=(x[10:], y[10:]),
        )  # fmt: skip
        report = fnn.gradcheck(net, loss, params, x[:4], y[:4])
        return jax.tree.map(
            np.asarray,
            {
                "fit": (fitted.params, dict(fitted.history)),
                "evaluate": fnn.evaluate(net, fitted.params, loss, x, y, metrics=["accuracy"], batch_size=8),
                "gradcheck": (report.passed, report.loss_value, [r.manual_vs_fd for r in report.rows]),
            },
        )

    # a network of this test's own: its checks are traced under "strict" first, not found cached
    with jax.numpy_dtype_promotion("strict"):
        got = run()
    want = run()
    assert jax.config.jax_enable_x64 and got["gradcheck"][0] and got["fit"][0][0]["w"].dtype == np.float32
    chex.assert_trees_all_equal(got, want)


def test_bad_inputs_switches_and_caches_are_refused_naming_them_before_a_layer_runs(compiles):
    """Section 5 of the contract: x None or not numbers, a train switch that is not a bool, a
    cache that is not forward's (one entry per layer) are named, with nothing compiled; a train
    switch traced by the user's jit stays welcome where no layer reads it."""
    net = fnn.mlp([5, 3])
    params = net.init(jax.random.PRNGKey(0), (4,))
    x = np.ones((2, 4), np.float32)
    y, cache = net.forward(params, x)
    dy = np.ones((2, 3), np.float32)
    for call, error, words in (
        (lambda: net.apply(params, None), ValueError, r"^x is required; got None$"),
        (lambda: net.apply(params, "abc"), TypeError, r"^x must hold numbers; got str 'abc'$"),
        (lambda: net.forward(params, np.array([["a", "b", "c", "d"]])), TypeError, r"^x must hold numbers"),
        (lambda: net.apply(params, x, train="yes"), TypeError, r"^train must be a bool, got str 'yes'$"),
        (lambda: net.backward(params, list(cache)[:1], dy), ValueError, r"one cache per layer \(2\); got 1$"),
        (lambda: net.backward(params, None, dy), TypeError, r"^cache must be the list forward returned"),
    ):
        with compiles() as c, pytest.raises(error, match=words):
            call()
        assert c.count == 0, words
    out = jax.jit(net.apply)(params, x, train=True)  # train traced: no layer here reads it
    np.testing.assert_allclose(out, y, rtol=1e-6)
    drop = fnn.serial(fnn.Dense(6), fnn.Dropout(0.5))
    p, k = drop.init(jax.random.PRNGKey(1), (4,)), jax.random.PRNGKey(2)
    trained = drop.apply(p, x, key=k, train=True)
    for on in (1, np.array(True), np.bool_(True)):  # read for their truth, as before
        np.testing.assert_array_equal(drop.apply(p, x, key=k, train=on), trained)
    np.testing.assert_array_equal(drop.apply(p, x, key=k, train=None), drop.apply(p, x))
    grads, dx = net.backward(params, tuple(cache), dy)  # a tuple of the caches is one too
    assert dx.shape == x.shape and grads[1]["w"].shape == (5, 3)


def test_dense_s_use_bias_must_be_a_bool():
    """bool("no") is True: use_bias="no" silently added the bias; a word is refused, as train's."""
    for bad in ("no", "False", 0, None):
        with pytest.raises(TypeError, match="use_bias must be a bool, got"):
            fnn.Dense(2, use_bias=bad)
    assert set(fnn.Dense(2, use_bias=np.bool_(False)).init(jax.random.PRNGKey(0), (3,))[1]) == {"w"}


def test_a_layer_without_params_refuses_another_network_s_shifted_onto_it():
    """Dense(4), Dropout, Dense(2) given an mlp([4, 4, 2])'s params ran (Dropout ignored its
    kernel, whose gradient came out 0 under jax.grad); each param-less layer refuses them now."""
    x = jnp.ones((5, 3))
    other = fnn.mlp([4, 4, 2]).init(jax.random.PRNGKey(0), (3,))
    for middle in (fnn.Dropout(0.1), fnn.Activation("relu"), fnn.Flatten(), fnn.Reshape((4,)), fnn.UnitNormalization()):
        net = fnn.serial(fnn.Dense(4), middle, fnn.Dense(2))
        said = rf"^layer 1 \({net.names[1]}\): .*takes no params \(init builds \{{\}}\), got "
        said += r"\{'b': \(4,\), 'w': \(4, 4\)\}"
        for run in (lambda p: net.apply(p, x), jax.grad(lambda p: net.apply(p, x).sum())):
            with pytest.raises(ValueError, match=said):
                run(other)
        own = net.init(jax.random.PRNGKey(0), (3,))
        assert net.apply(own, x).shape == (5, 2) and jax.tree.leaves(own[1]) == []
    # LayerNorm given a Dense's w and b said KeyError 'scale'; it names what it takes
    net = fnn.serial(fnn.Dense(4), fnn.LayerNorm(), fnn.Dense(2))
    said = r"^layer 1 \(layer_norm_0\): .*LayerNorm's params must be "
    said += r"\{'scale': \(features,\), 'offset': \(features,\)\}, "
    with pytest.raises(ValueError, match=said + r"got entries \['b', 'w'\]: params of another network\?$"):
        net.apply(other, x)
