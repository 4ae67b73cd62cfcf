"""Layers: shapes, params layout, and every hand-written backward against ``jax.vjp``."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import layers as L

KEY = jax.random.PRNGKey(0)


def _vjp_check(layer, input_shape, dtype, rtol, *, batch=5, train=False, key=None, x=None):
    """Backward of ``layer`` vs jax.vjp of its own forward with a random cotangent."""
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(1), 3)
    _, params = layer.init(k1, input_shape, dtype)
    if x is None:
        x = jax.random.normal(k2, (batch,) + tuple(input_shape), dtype)
    y, cache = layer.forward(params, x, key=key, train=train)
    dy = jax.random.normal(k3, y.shape, dtype)
    dparams, dx = layer.backward(params, cache, dy)
    _, vjp = jax.vjp(lambda p, xx: layer.forward(p, xx, key=key, train=train)[0], params, x)
    ref_dparams, ref_dx = vjp(dy)
    chex.assert_trees_all_equal_shapes_and_dtypes(dparams, ref_dparams)
    chex.assert_trees_all_close(dparams, ref_dparams, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(dx, ref_dx, rtol=rtol, atol=rtol)
    assert dx.dtype == dtype
    return params, y


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


@pytest.mark.parametrize("activation", DENSE_ACTIVATIONS)
def test_dense_backward_matches_vjp_float64(activation):
    _vjp_check(L.Dense(4, activation), (3,), jnp.float64, 1e-10)


@pytest.mark.parametrize("activation", ["relu", "tanh", "softmax"])
def test_dense_backward_matches_vjp_float32(activation):
    _vjp_check(L.Dense(6, activation), (7,), jnp.float32, 1e-5)


def test_dense_without_bias_and_with_leading_axes():
    params, _ = _vjp_check(L.Dense(3, "tanh", use_bias=False), (2, 4), jnp.float64, 1e-10)
    assert set(params) == {"w"}


@pytest.mark.parametrize("dtype,rtol", [(jnp.float64, 1e-10), (jnp.float32, 1e-5)])
def test_activation_layernorm_flatten_backward(dtype, rtol):
    _vjp_check(L.Activation("gelu_tanh"), (4,), dtype, rtol)
    _vjp_check(L.Activation("softmax"), (4,), dtype, rtol)
    _vjp_check(L.LayerNorm(), (6,), dtype, rtol)
    _vjp_check(L.LayerNorm(center=False), (6,), dtype, rtol)
    _vjp_check(L.LayerNorm(scale=False), (6,), dtype, rtol)
    _vjp_check(L.Flatten(), (2, 3), dtype, rtol)


def test_layernorm_with_nontrivial_params_matches_numpy():
    layer = L.LayerNorm(epsilon=1e-3)
    _, params = layer.init(KEY, (5,), jnp.float64)
    params = {"scale": jnp.arange(1.0, 6.0), "offset": jnp.linspace(-1, 1, 5)}
    x = np.random.default_rng(0).normal(size=(3, 5))
    y, cache = layer.forward(params, jnp.asarray(x))
    ref = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-3) * np.arange(
        1.0, 6.0
    ) + np.linspace(-1, 1, 5)
    np.testing.assert_allclose(y, ref, rtol=1e-12)
    dy = jnp.asarray(np.random.default_rng(1).normal(size=(3, 5)))
    _, vjp = jax.vjp(lambda p, xx: layer.forward(p, xx)[0], params, jnp.asarray(x))
    chex.assert_trees_all_close(layer.backward(params, cache, dy), vjp(dy), rtol=1e-10)


def test_dropout_train_backward_matches_vjp_and_statistics():
    layer = L.Dropout(0.3)
    _vjp_check(layer, (50,), jnp.float64, 1e-12, batch=4, train=True, key=jax.random.PRNGKey(3))
    x = jnp.ones((200, 500))
    y, _ = layer.forward({}, x, key=jax.random.PRNGKey(4), train=True)
    dropped = float(jnp.mean(y == 0))
    assert abs(dropped - 0.3) < 0.01  # rate is the fraction DROPPED
    np.testing.assert_allclose(np.unique(np.asarray(y)), [0.0, 1 / 0.7], rtol=1e-6)  # inverted scaling
    assert abs(float(jnp.mean(y)) - 1.0) < 0.01


def test_dropout_eval_is_identity_and_train_needs_key():
    layer = L.Dropout(0.5)
    x = jnp.arange(6.0).reshape(2, 3)
    y, cache = layer.forward({}, x, train=False)
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(layer.backward({}, cache, x)[1], x)
    with pytest.raises(ValueError, match="key"):
        layer.forward({}, x, train=True)
    for bad in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match="rate"):
            L.Dropout(bad)
    with pytest.raises(TypeError, match="rate"):  # a wrong type is a TypeError, as everywhere
        L.Dropout("0.5")


def test_dense_defaults_keras_glorot_uniform_and_zero_bias():
    _, params = L.Dense(300).init(KEY, (200,), jnp.float32)
    limit = np.sqrt(6 / (200 + 300))
    w = np.asarray(params["w"])
    assert w.shape == (200, 300) and params["b"].shape == (300,)
    assert np.all(np.abs(w) <= limit) and np.abs(w).max() > 0.95 * limit
    np.testing.assert_allclose(w.std(), limit / np.sqrt(3), rtol=0.02)
    np.testing.assert_array_equal(params["b"], 0.0)
    assert w.dtype == np.float32


def test_mlp_params_layout_and_forward_formula():
    net = fnn.mlp([4, 3], activation="tanh")
    params = net.init(KEY, (5,), jnp.float64)
    chex.assert_tree_shape_prefix(params, ())
    assert [sorted(p) for p in params] == [["b", "w"], ["b", "w"]]
    chex.assert_shape([params[0]["w"], params[0]["b"], params[1]["w"], params[1]["b"]], [(5, 4), (4,), (4, 3), (3,)])
    x = np.random.default_rng(0).normal(size=(7, 5))
    p = jax.tree.map(np.asarray, params)
    ref = np.tanh(x @ p[0]["w"] + p[0]["b"]) @ p[1]["w"] + p[1]["b"]  # output layer linear
    np.testing.assert_allclose(net.apply(params, jnp.asarray(x)), ref, rtol=1e-12)
    assert net.output_shape((5,)) == (3,)
    assert net.names == ("dense_0", "dense_1")


def test_serial_backward_runs_layers_in_reverse_and_nests():
    inner = fnn.serial(L.Dense(4, "relu"), L.LayerNorm())
    net = fnn.serial(L.Flatten(), inner, L.Dropout(0.2), L.Dense(3, "softmax"))
    params = net.init(KEY, (2, 3), jnp.float64)
    x = jax.random.normal(jax.random.PRNGKey(1), (5, 2, 3), jnp.float64)
    k = jax.random.PRNGKey(2)
    y, cache = net.forward(params, x, key=k, train=True)
    dy = jax.random.normal(jax.random.PRNGKey(3), y.shape, jnp.float64)
    grads, dx = net.backward(params, cache, dy)
    _, vjp = jax.vjp(lambda p, xx: net.apply(p, xx, key=k, train=True), params, x)
    chex.assert_trees_all_close((grads, dx), vjp(dy), rtol=1e-10, atol=1e-12)
    assert net.needs_key and not fnn.mlp([2]).needs_key


def test_feature_mismatch_names_layer_and_sizes():
    net = fnn.mlp([4, 2])
    params = net.init(KEY, (3,))
    with pytest.raises(ValueError, match=r"layer 0 \(dense_0\).*expects 3 input features, got 5"):
        net.apply(params, jnp.ones((2, 5)))
    with pytest.raises(ValueError, match="one entry per layer"):
        net.apply(params[:1], jnp.ones((2, 3)))


def test_bad_constructor_arguments():
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


class TestJit(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_forward_backward_same_with_and_without_jit(self):
        net = fnn.mlp([6, 3], activation="gelu")
        params = net.init(KEY, (4,), jnp.float64)
        x = jax.random.normal(jax.random.PRNGKey(5), (3, 4), jnp.float64)

        @self.variant
        def run(p, xx):
            y, cache = net.forward(p, xx)
            return y, net.backward(p, cache, jnp.ones_like(y))

        y, (g, dx) = run(params, x)
        y0, c0 = net.forward(params, x)
        chex.assert_trees_all_close((y, g, dx), (y0, *net.backward(params, c0, jnp.ones_like(y0))), rtol=1e-12)


def test_vmap_over_params():
    net = fnn.mlp([3, 2])
    keys = jax.random.split(KEY, 4)
    params = jax.vmap(lambda k: net.init(k, (5,)))(keys)
    x = jnp.ones((6, 5))
    y = jax.vmap(net.apply, in_axes=(0, None))(params, x)
    chex.assert_shape(y, (4, 6, 2))
