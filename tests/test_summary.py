"""summary and count_params: parameter counts from the formulas (in*out + out per Dense, 2*units
per LayerNorm, 0 for the layers without weights), output shapes against the network's own,
nested networks expanded under their row, the table's text; nothing compiled."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn

KEY = jax.random.PRNGKey(0)
INNER = fnn.serial(fnn.Dense(4), fnn.Activation("tanh"), fnn.LayerNorm(), name="block")
NESTED = fnn.serial(
    fnn.Flatten(), fnn.Dense(8, "relu"), fnn.Dropout(0.2), INNER, fnn.Dense(3, name="head"), fnn.Activation("softmax")
)


def test_mlp_summary_counts_keras_numbers(compiles):
    with compiles() as c:
        s = fnn.summary(fnn.mlp([32, 10]), (20,))
    assert c.count == 0  # traced only
    assert s.total_params == 20 * 32 + 32 + 32 * 10 + 10 == 1002
    assert s.trainable_params == 1002 and s.non_trainable_params == 0
    assert s.param_bytes == 4 * 1002 and s.dtype == "float32"
    assert s.input_shape == (None, 20) and s.output_shape == (None, 10) and s.name == "serial"
    assert s.rows == (
        fnn.LayerSummary("dense_0", "Dense", (None, 32), 20 * 32 + 32, 0),
        fnn.LayerSummary("dense_1", "Dense", (None, 10), 32 * 10 + 10, 0),
    )
    text = str(s)
    assert repr(s) == text
    lines = text.splitlines()
    assert lines[0] == 'Network: "serial"   input shape: (None, 20)   dtype: float32'
    assert lines[2].split() == ["Layer", "(type)", "Output", "shape", "Params"]
    assert lines[4].split() == ["dense_0", "(Dense)", "(None,", "32)", "672"]
    assert lines[5].split() == ["dense_1", "(Dense)", "(None,", "10)", "330"]
    assert lines[-3:] == [
        "Total params: 1,002 (3.91 KB)",  # Keras's figures: 4008 B / 1024
        "Trainable params: 1,002 (3.91 KB)",
        "Non-trainable params: 0 (0.00 B)",
    ]
    # the same count from the params themselves
    params = fnn.mlp([32, 10]).init(KEY, (20,))
    assert fnn.count_params(params) == 1002 and len(params) == 2


def test_nested_networks_and_layers_without_weights(compiles):
    with compiles() as c:
        s = fnn.summary(NESTED, (2, 3), dtype=jnp.float64)
    assert c.count == 0
    dense8, dense4, layer_norm, head = 6 * 8 + 8, 8 * 4 + 4, 2 * 4, 4 * 3 + 3
    expected = [
        ("flatten_0", "Flatten", (None, 6), 0, 0),
        ("dense_0", "Dense", (None, 8), dense8, 0),
        ("dropout_0", "Dropout", (None, 8), 0, 0),
        ("block_0", "Network", (None, 4), dense4 + layer_norm, 0),
        ("block_0/dense_0", "Dense", (None, 4), dense4, 1),
        ("block_0/tanh_0", "Activation", (None, 4), 0, 1),
        ("block_0/layer_norm_0", "LayerNorm", (None, 4), layer_norm, 1),
        ("head_0", "Dense", (None, 3), head, 0),  # a name of its own, still a Dense
        ("softmax_0", "Activation", (None, 3), 0, 0),
    ]
    assert [tuple(r) for r in s.rows] == expected
    total = dense8 + dense4 + layer_norm + head
    assert s.total_params == total == 115 and s.param_bytes == 8 * 115
    # against what the network itself builds and computes
    params = NESTED.init(KEY, (2, 3))
    assert fnn.count_params(params) == total
    assert fnn.count_params(params[3]) == s.rows[3].params
    out = jax.eval_shape(NESTED.apply, params, jax.ShapeDtypeStruct((5, 2, 3), jnp.float32))
    assert s.output_shape == (None, *out.shape[1:]) == (None, *NESTED.output_shape((2, 3)))
    lines = str(s).splitlines()
    assert lines[7].startswith("block_0 (Network)") and lines[7].split()[-1] == "44"
    assert lines[8].startswith("  dense_0 (Dense)")  # its layers indented under it
    assert lines[11].startswith("head_0 (Dense)")
    assert "Total params: 115 (920.00 B)" in lines


def test_single_layers_custom_layers_and_input_shape_forms():
    s = fnn.summary(fnn.Dense(5), 3)
    assert s.rows == (fnn.LayerSummary("dense_0", "Dense", (None, 5), 3 * 5 + 5, 0),) and s.name == "dense"

    def init(key, input_shape, dtype=jnp.float32):
        return tuple(input_shape), {"a": jnp.zeros((), dtype)}

    scale = fnn.Layer(init, lambda p, x, key=None, train=False: (x * p["a"], ()), lambda p, c, dy: (p, dy), "scale")
    s = fnn.summary(fnn.serial(scale, fnn.Dense(2)), [np.int64(4)])
    assert [(r.kind, r.params) for r in s.rows] == [("Layer", 1), ("Dense", 10)]


def test_count_params():
    assert fnn.count_params({"w": np.zeros((3, 4)), "b": jnp.zeros(4)}) == 16
    assert fnn.count_params([{}, {"w": jax.ShapeDtypeStruct((2, 5), jnp.float32)}, {}]) == 10
    assert fnn.count_params([]) == 0 and fnn.count_params({"s": 1.5, "t": np.float32(2)}) == 2
    with pytest.raises(TypeError, match="params must be a pytree of arrays; found a leaf of type str"):
        fnn.count_params({"w": "weights"})


def test_bad_arguments_are_named():
    net = fnn.mlp([2])
    with pytest.raises(TypeError, match="net must be an fnn Network.*got object"):
        fnn.summary(object(), (3,))
    with pytest.raises(ValueError, match=r"input_shape must name at least one axis"):
        fnn.summary(net, ())
    with pytest.raises(ValueError, match=r"input_shape\[1\] must be >= 1, got 0"):
        fnn.summary(net, (3, 0))
    with pytest.raises(TypeError, match="input_shape must be an int or a tuple of ints"):
        fnn.summary(net, "20")
    with pytest.raises(TypeError, match=r"input_shape\[0\] must be an int"):
        fnn.summary(net, (2.5,))
    with pytest.raises(TypeError, match="dtype must be a floating dtype, got int32"):
        fnn.summary(net, (3,), dtype=jnp.int32)
