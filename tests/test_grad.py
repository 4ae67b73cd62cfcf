"""Hand-written gradients vs jax.grad vs finite differences; gradcheck and with_manual_vjp.

Compilations: each test runs its own numeric work as one jitted program (gradcheck brings its
own two); eager calls would compile every primitive at every shape on their own. Params come
from NumPy in ``net.init``'s structure (``_params``: a compiled init holds a threefry PRNG per
layer, which costs more compile time than the gradients) and inputs are placed with
``jax.device_put`` (``jnp.asarray`` compiles a small program of its own per shape and dtype).
"""

import collections
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import swapped
from hypothesis import HealthCheck, given, settings, strategies as st

import fnn
from fnn import layers as L

KEY = jax.random.PRNGKey(0)
SMOOTH_ACTIVATIONS = ["linear", "tanh", "sigmoid", "relu", "elu", "gelu", "softplus", "silu", "leaky_relu", "selu"]


def _data(n, d, c, *, kind="sparse", seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    if kind == "sparse":
        y = rng.integers(0, c, size=n)
    elif kind == "binary":
        y = rng.integers(0, 2, size=(n, c)).astype(float)
    else:
        y = rng.normal(size=(n, c))
    return jax.device_put(x), jax.device_put(y)


def _params(net, input_shape, dtype=jnp.float64, seed=0):
    """Params with ``net.init``'s structure, dtypes and distribution (glorot-uniform kernels ``w``,
    unit ``scale``, zero biases and offsets), drawn by NumPy. The points at which gradients are
    checked are arbitrary; ``net.init`` itself is tested in test_layers.py. A compiled init would
    hold a threefry PRNG per layer, most of the compile time of these tests."""
    rng = np.random.default_rng(seed)

    def draw(path, leaf):
        name = path[-1].key
        if name == "w":
            limit = np.sqrt(6 / (leaf.shape[0] + leaf.shape[1]))
            return rng.uniform(-limit, limit, leaf.shape).astype(leaf.dtype)
        return (np.ones if name == "scale" else np.zeros)(leaf.shape, leaf.dtype)

    shapes = jax.eval_shape(lambda: net.init(KEY, input_shape, dtype))  # traced, not compiled
    return jax.device_put(jax.tree_util.tree_map_with_path(draw, shapes))


def test_done_when_gradcheck_mlp_32_32_10_sparse_ce_float64():
    net = fnn.mlp([32, 32, 10])
    params = _params(net, (12,))
    x, y = _data(16, 12, 10)
    loss = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)
    report = fnn.gradcheck(net, loss, params, x, y)
    assert report.passed, str(report)
    assert report.max_error_autodiff < 1e-10
    assert report.max_error_fd < 1e-6
    assert len(report.rows) == 7 and {r.leaf for r in report.rows[:6]} == {"w", "b"}
    assert (report.rows[-1].layer_name, report.rows[-1].leaf, report.rows[-1].shape) == ("input", "dx", (16, 12))
    text = str(report)
    assert "dense_2" in text and "PASSED" in text


@pytest.fixture(scope="module")
def linear_mse_by_mode():
    """``x, y, params, {mode: (value, grads)}`` for both modes, from one compiled program."""
    net = fnn.mlp([3], activation="linear")
    x, y = _data(5, 2, 3, kind="regression")
    params = _params(net, (2,))

    @jax.jit
    def both_modes(params, x, y):
        return {mode: fnn.value_and_grad(net, "mse", mode)(params, x, y) for mode in ["manual", "autodiff"]}

    return x, y, params, both_modes(params, x, y)


@pytest.mark.parametrize("mode", ["manual", "autodiff"])
def test_value_and_grad_modes_agree_and_match_numpy(linear_mse_by_mode, mode):
    x, y, params, by_mode = linear_mse_by_mode
    value, grads = by_mode[mode]
    w, b = np.asarray(params[0]["w"]), np.asarray(params[0]["b"])
    xn, yn = np.asarray(x), np.asarray(y)
    r = xn @ w + b - yn
    np.testing.assert_allclose(value, np.mean(r**2), rtol=1e-12)
    np.testing.assert_allclose(grads[0]["w"], xn.T @ (2 * r / r.size), rtol=1e-12)
    np.testing.assert_allclose(grads[0]["b"], (2 * r / r.size).sum(0), rtol=1e-12)


def test_swapped_byte_order_arrays_are_used_by_their_values(linear_mse_by_mode):
    """Big-endian NumPy params, x and y (read from a file; JAX refuses '>f8'): value_and_grad's
    function, with_manual_vjp's apply and gradcheck give the native arrays' numbers."""
    x, y, params, by_mode = linear_mse_by_mode
    net = fnn.mlp([3], activation="linear")
    big, bx, by = jax.tree.map(swapped, params), swapped(x), swapped(y)

    @jax.jit  # the swapped NumPy arrays reach the calls as they are (constants of one program)
    def calls():
        modes = {mode: fnn.value_and_grad(net, "mse", mode)(big, bx, by) for mode in ("manual", "autodiff")}
        return modes, fnn.with_manual_vjp(net)(big, bx)

    got, applied = calls()
    for mode in ("manual", "autodiff"):
        chex.assert_trees_all_close(got[mode], by_mode[mode], rtol=1e-12)
    w, b = np.asarray(params[0]["w"]), np.asarray(params[0]["b"])
    np.testing.assert_allclose(applied, np.asarray(x) @ w + b, rtol=1e-12)
    report, native = fnn.gradcheck(net, "mse", big, bx, by), fnn.gradcheck(net, "mse", params, x, y)
    assert report.passed and report.max_error_autodiff == native.max_error_autodiff


class TestJitVariants(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_manual_equals_autodiff_with_and_without_jit(self):
        net = fnn.serial(L.Dense(5, "tanh"), L.LayerNorm(), L.Dense(4, "relu"), L.Dense(3))
        params = _params(net, (4,))
        x, y = _data(6, 4, 3)
        loss = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)
        manual = self.variant(fnn.value_and_grad(net, loss, "manual"))
        auto = self.variant(fnn.value_and_grad(net, loss, "autodiff"))
        chex.assert_trees_all_close(manual(params, x, y), auto(params, x, y), rtol=1e-10)


_LOSSES = {
    "mse": ("regression", {}),
    "mae": ("regression", {}),
    "huber": ("regression", {}),
    "log_cosh": ("regression", {}),
    "binary_crossentropy": ("binary", {"from_logits": True}),
    "categorical_crossentropy": ("onehot", {"from_logits": True}),
    "sparse_categorical_crossentropy": ("sparse", {"from_logits": True}),
}


@functools.partial(jax.jit, static_argnums=(0, 1))
def _both_gradients(net, loss, params, x, y):
    """The hand-written value and gradient, and jax.value_and_grad of the same composition: one
    compiled program per example (gradcheck then brings its own two)."""
    manual = fnn.value_and_grad(net, loss, "manual")(params, x, y)
    autodiff = jax.value_and_grad(lambda p: loss(y, net.apply(p, x)))(params)
    return manual, autodiff


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    widths=st.lists(st.integers(1, 16), min_size=1, max_size=4),
    acts=st.lists(st.sampled_from(SMOOTH_ACTIVATIONS), min_size=4, max_size=4),
    loss_name=st.sampled_from(sorted(_LOSSES)),
    batch=st.integers(1, 9),
    d_in=st.integers(1, 6),
    seed=st.integers(0, 2**16),
)
def test_property_random_mlps_manual_equals_autodiff_and_gradcheck(widths, acts, loss_name, batch, d_in, seed):
    kind, opts = _LOSSES[loss_name]
    c = widths[-1] if kind != "sparse" else max(widths[-1], 2)
    widths = widths[:-1] + [c]
    net = fnn.serial(*[L.Dense(w, acts[i]) for i, w in enumerate(widths[:-1])], L.Dense(c))
    x, y = _data(
        batch,
        d_in,
        c,
        kind="regression" if kind == "regression" else ("binary" if kind == "binary" else "sparse"),
        seed=seed,
    )
    if kind == "onehot":
        y = jax.device_put(np.eye(c)[np.asarray(y)])  # one-hot float64 rows, placed without compiling
    loss = fnn.losses.get(loss_name, **opts)
    params = _params(net, (d_in,), seed=[seed, 1])  # a stream apart from the data's
    (v_m, g_m), (v_a, g_a) = _both_gradients(net, loss, params, x, y)
    np.testing.assert_allclose(v_m, v_a, rtol=1e-12)
    chex.assert_trees_all_close(g_m, g_a, rtol=1e-9, atol=1e-13)
    # Random points sit at a kink (relu, mae) with probability ~0, so finite differences apply.
    report = fnn.gradcheck(net, loss, params, x, y, rtol_fd=1e-5)
    assert report.passed, str(report)
    assert not any(r.fd_kinks for r in report.rows), str(report)  # smooth here: no entry taken for a kink


def _wrong_dense(units):
    """A Dense layer whose backward doubles the kernel gradient: the kind of bug gradcheck is for."""
    good = L.Dense(units, "tanh", name="buggy")

    def backward(params, cache, dy):
        grads, dx = good.backward(params, cache, dy)
        return {**grads, "w": 2.0 * grads["w"]}, dx

    return good._replace(backward=backward)


def test_under_jit_value_and_grad_runs_and_gradcheck_says_it_cannot():
    """value_and_grad's function is jittable (the plain call's numbers); gradcheck differences in
    float64 on concrete values, so under a trace it raises a TypeError saying so."""
    net = fnn.mlp([3, 2], activation="tanh")
    params = _params(net, (4,))
    x, y = _data(5, 4, 2, kind="regression")
    f = fnn.value_and_grad(net, "mse")
    chex.assert_trees_all_close(jax.jit(lambda p, x: f(p, x, y))(params, x), f(params, x, y), rtol=1e-14, atol=0)
    said = r"gradcheck cannot run under jax.jit, vmap or grad \((.+) traced\).*call it outside the transformation"
    with pytest.raises(TypeError, match=said.replace("(.+)", "params, x")):
        jax.jit(lambda p, x: fnn.gradcheck(net, "mse", p, x, y))(params, x)
    with pytest.raises(TypeError, match=said.replace("(.+)", "params")):
        jax.grad(lambda p: fnn.gradcheck(net, "mse", p, x, y).rows[0].manual_vs_autodiff)(params)
    with pytest.raises(TypeError, match=said.replace("(.+)", "x")):
        jax.vmap(lambda xb: fnn.gradcheck(net, "mse", params, xb, y))(np.stack([x, x]))


def test_gradcheck_names_a_donated_input_as_fit_does():
    """gradcheck's inputs may hold NaN (it checks their gradients where they are finite), but a
    deleted (donated) x or y is named, as fit names one, not left to JAX's words."""
    net = fnn.mlp([3, 2], activation="tanh")
    params = _params(net, (4,))
    x, y = _data(5, 4, 2, kind="regression")
    donate = jax.jit(lambda a: a + 1, donate_argnums=0)
    gone_x, gone_y = jnp.array(x, copy=True), jax.device_put(np.arange(5))
    donate(gone_x), donate(gone_y)
    with pytest.raises(ValueError, match=r"^x is a deleted jax array \(donated to a compiled program"):
        fnn.gradcheck(net, "mse", params, gone_x, y)
    with pytest.raises(ValueError, match=r"^y is a deleted jax array \(donated to a compiled program"):
        fnn.data.check_arrays(x, gone_y)  # integer labels: no finiteness pass reads them, yet named


def test_gradcheck_fails_on_a_wrong_backward_and_names_the_layer():
    net = fnn.serial(L.Dense(4, "tanh"), _wrong_dense(3), L.Dense(2))
    params = _params(net, (3,))
    x, y = _data(5, 3, 2, kind="regression")
    report = fnn.gradcheck(net, "mse", params, x, y)
    assert not report.passed and not bool(report)
    assert report.failed_layers == ["buggy_0"]
    bad = [r for r in report.rows if not r.passed]
    assert [(r.layer_name, r.leaf) for r in bad] == [("buggy_0", "w")]
    assert bad[0].manual_vs_autodiff > 0.1
    assert "FAILED in buggy_0" in str(report)
    assert [name for name, _ in report.at_fault] == ["buggy_0"] and "starts in buggy_0" in str(report)


def test_gradcheck_names_the_piece_where_a_wrong_gradient_starts_not_the_rows_it_spoils():
    """A middle layer's wrong dx (right shape) spoils the rows of every layer before it and the
    input's; a custom loss's wrong grad spoils every row. Each piece is checked alone against
    jax.vjp of its own forward (given autodiff's cotangent), so the report names the culprit."""
    x, y = _data(5, 3, 2, kind="regression")
    forgot = _custom("double", _same_shape, lambda p, x, key=None, train=False: (2 * x, ()), lambda p, c, dy: ({}, dy))
    net = fnn.serial(L.Dense(4, "tanh"), forgot, L.Dense(2))
    report = fnn.gradcheck(net, "mse", _params(net, (3,)), x, y)
    assert report.failed_layers == ["dense_0", "input"]  # the rows it spoils: double_0 has none
    assert [name for name, _ in report.at_fault] == ["double_0"]
    assert report.at_fault[0][1] == pytest.approx(0.5)  # dy against 2 dy
    assert "the wrong derivative starts in double_0 (5.00e-01 from jax.vjp of its forward)" in str(report)
    # a custom loss whose grad lacks the 2 of mse: every row fails, the loss is named
    half = fnn.losses.custom("half_mse", lambda t, p: jnp.mean((p - t) ** 2, -1), lambda t, p: (p - t) / p.shape[-1])
    net = fnn.serial(L.Dense(4, "tanh"), L.Dense(2))
    report = fnn.gradcheck(net, half, _params(net, (3,)), x, y)
    assert report.failed_layers == ["dense_0", "dense_1", "input"]
    assert [name for name, _ in report.at_fault] == ["loss"] and "loss (5.00e-01 from jax.grad" in str(report)
    # an activation of yours with a wrong derivative: the Dense layer that applies it
    act = fnn.activations.Activation("my_tanh", jnp.tanh, lambda x, y, dy: dy * (1 - y))
    net = fnn.serial(L.Dense(4, act), L.Dense(2))
    report = fnn.gradcheck(net, "mse", _params(net, (3,)), x, y)
    assert [name for name, _ in report.at_fault] == ["dense_0"] and report.at_fault[0][1] > 0.01
    right = fnn.serial(L.Dense(4, "tanh"), L.Dense(2))
    assert fnn.gradcheck(right, "mse", _params(right, (3,)), x, y).at_fault == ()


def test_a_smooth_piece_s_error_between_a_kinked_loss_s_slopes_fails():
    """One sample whose prediction meets its target exactly puts mae at its kink, and its
    one-sided slopes of every entry apart by that sample's whole slope: a linear layer's bias
    gradient 50 % or 90 % short (right at every other point) lands between them. The layer is
    smooth there, so no kink explains its difference from jax.vjp: the row fails on its autodiff
    error and the layer is named; the right layer passes. (A piece's choice at a kink of its own,
    off jax's, still passes between the slopes: the tests of kinks below.)"""

    def bias(short):
        return _custom(
            "bias",
            lambda key, shape, dtype=jnp.float32: (shape, {"b": jnp.zeros(shape[-1:], dtype)}),
            lambda p, x, key=None, train=False: (x + p["b"], ()),
            lambda p, c, dy: ({"b": (1 - short) * jnp.sum(dy, 0)}, dy),
        )

    with jax.enable_x64(False):  # float32 draws (float64 ones put the error outside the slopes)
        x, y = jax.jit(lambda: (jax.random.normal(KEY, (4, 2)), jax.random.normal(jax.random.PRNGKey(1), (4, 1))))()
        params = fnn.serial(bias(0.0), L.Dense(3, "tanh"), L.Dense(1)).init(KEY, (2,))
    x, y = _zero_first_row(x), _zero_first_row(y)
    for short in (0.5, 0.9, 0.0):
        net = fnn.serial(bias(short), L.Dense(3, "tanh"), L.Dense(1))
        report = fnn.gradcheck(net, "mae", params, x, y)
        assert report.rows[0].fd_kinks == 2, str(report)  # both bias entries at the loss's kink
        if short:
            assert report.failed_layers == ["bias_0"] and report.rows[0].manual_vs_autodiff == pytest.approx(short)
            assert [name for name, _ in report.at_fault] == ["bias_0"], str(report)
        else:
            assert report.passed, str(report)


def test_a_valid_choice_at_kinks_that_cancel_along_its_difference_still_passes():
    """Two relu units of equal weights on one kink (an all-zero row through a zero bias) with
    cotangents of opposite sign (w2 = 0.8, -0.8): along the difference d between the
    hand-written choice (0 at 0, as jax.nn.relu) and jax.grad's of jnp.maximum (1/2) their kinks
    cancel, so the loss looks smooth along d and the choice looks off it; but each unit's own
    coordinates (its bias, its weights) kink, and the choice passes, as the built-in relu does."""
    myrelu = fnn.activations.Activation("myrelu", lambda x: jnp.maximum(x, 0.0), lambda x, y, dy: dy * (x > 0))
    w1 = np.array([[-0.5], [0.3], [0.9]]) * np.ones((1, 2))
    x = np.array([[0.0, 0.0, 0.0], [0.5, -0.3, 1.0], [1.2, 0.4, -0.7]])
    y = np.array([[-1.0], [0.7], [0.2]])
    for act in (myrelu, "relu"):
        net = fnn.serial(L.Dense(2, act), L.Dense(1))
        params = [{"w": w1, "b": np.zeros(2)}, {"w": np.array([[0.8], [-0.8]]), "b": np.array([0.1])}]
        report = fnn.gradcheck(net, "mse", params, x, y)
        assert report.passed and report.rows[0].fd_kinks == 2, str(report)


def _zero_first_row(x):
    """``x`` with its first sample all 0, in NumPy (an eager ``.at[].set`` compiles a scatter)."""
    x = np.array(x)
    x[0] = 0.0
    return x


def _tweaked(layer, name, dx=lambda d: d, dparams=lambda g: g):
    """``layer`` with its hand-written backward's results changed by ``dx`` / ``dparams``."""

    def backward(p, c, dy):
        g, d = layer.backward(p, c, dy)
        return dparams(g), dx(d)

    return L.Layer(layer.init, layer.forward, backward, name, layer.needs_key)


def test_gradcheck_s_culprit_is_one_that_can_explain_the_failed_rows():
    x, y = _data(4, 3, 2, kind="regression")
    # a param's gradient 1 % off where the input's is ~1e6 times larger (inputs of ~1e-7): each
    # output of a piece is judged on its own scale, so the layer is named (the input's scale hid it)
    scale = _custom(
        "scale",
        lambda key, shape, dtype=jnp.float32: (shape, {"s": jnp.linspace(0.5, 1.5, shape[-1], dtype=dtype)}),
        lambda p, x, key=None, train=False: (x * p["s"], x),
        lambda p, c, dy: ({"s": 1.01 * jnp.sum(dy * c, 0)}, dy * p["s"]),
    )
    net = fnn.serial(scale, L.Dense(4, "tanh"), L.Dense(2))
    tiny, targets = jax.jit(
        lambda: (1e-7 * jax.random.normal(KEY, (6, 3)), jax.random.normal(jax.random.PRNGKey(1), (6, 2)))
    )()
    report = fnn.gradcheck(net, "mse", net.init(KEY, (3,)), tiny, targets)
    assert report.failed_layers == ["scale_0"] and [name for name, _ in report.at_fault] == ["scale_0"], str(report)
    # a NaN in a middle layer's dx (a hand-written 0/0): named, with an infinite error
    nan_dx = _tweaked(L.Dense(4, "tanh"), "nan", dx=lambda d: d.at[0, 0].set(jnp.nan))
    net = fnn.serial(L.Dense(4, "tanh"), nan_dx, L.Dense(2))
    report = fnn.gradcheck(net, "mse", _params(net, (3,)), x, y)
    assert report.at_fault == (("nan_0", np.inf),) and np.isnan(report.max_error_autodiff)
    # inside a nested network: named by its path
    inner = fnn.serial(L.Dense(4, "tanh"), _tweaked(L.Dense(4, "tanh"), "bad", dx=lambda d: 2 * d), name="inner")
    net = fnn.serial(L.Dense(4, "tanh"), inner, L.Dense(2))
    report = fnn.gradcheck(net, "mse", _params(net, (3,)), x, y)
    assert [name for name, _ in report.at_fault] == ["inner_0/bad_0"]
    # names that read like a nested path's parts are told apart by position (a "/" in a name
    # is refused, as Keras refuses it)
    bad = _tweaked(L.Dense(4, "tanh"), "enc_scale", dx=lambda d: 2 * d)
    for net in (
        fnn.serial(L.Dense(4, "tanh"), bad, L.Dense(2)),
        fnn.layers.Network((L.Dense(4, "tanh"), bad, L.Dense(2)), ("b", "b_c", "c")),
    ):
        report = fnn.gradcheck(net, "mse", _params(net, (3,)), x, y)
        assert [name for name, _ in report.at_fault] == [net.names[1]], report.at_fault
    # a right layer whose activation takes slope 1 at its kink (relu at an exact 0, where
    # jax.nn.relu takes 0) passes its rows; only the wrong layer after it is named
    myrelu = fnn.activations.Activation("myrelu", jax.nn.relu, lambda x, y, dy: dy * (x >= 0))
    wrong = _tweaked(L.Dense(2), "wrong", dparams=lambda g: jax.tree.map(lambda a: 1.5 * a, g))
    net = fnn.serial(L.Dense(1, myrelu), wrong)
    params = _params(net, (3,))
    params[0]["b"] = np.zeros_like(params[0]["b"])
    report = fnn.gradcheck(net, "mse", params, _zero_first_row(x), y)
    assert report.failed_layers == ["wrong_0"] and report.rows[0].fd_kinks == 1
    assert [name for name, _ in report.at_fault] == ["wrong_0"]


def _sqrt():
    """A right sqrt layer of yours: NaN for a negative input, an infinite derivative at 0."""
    forward = lambda p, x, key=None, train=False: (jnp.sqrt(x), (x,))
    return _custom("mysqrt", _same_shape, forward, lambda p, c, dy: ({}, dy * 0.5 / jnp.sqrt(c[0])))


def test_gradcheck_names_where_a_forward_that_is_not_finite_starts():
    """A forward pass that gives NaN or inf makes every comparison NaN against NaN: the report
    names where it starts (the first piece whose output is not finite from a finite input, x,
    y, or the loss) and judges no piece's derivative."""
    x, y = _data(4, 3, 2, kind="regression")
    net = fnn.serial(L.Dense(4, "tanh"), _sqrt(), L.Dense(2))  # tanh's negative outputs: sqrt gives NaN
    report = fnn.gradcheck(net, "mse", _params(net, (3,)), x, y)
    assert not report.passed and np.isnan(report.loss_value)
    assert report.non_finite_from == "mysqrt_0" and report.at_fault is None
    text = str(report)
    assert "the forward pass is not finite from mysqrt_0 on (NaN or inf in its output, its input finite)" in text
    assert "agree" not in text
    # a forward multiplying by NaN, inside a nested network: named by its path
    times_nan = _custom(
        "nan", _same_shape, lambda p, x, key=None, train=False: (x * jnp.nan, ()), lambda p, c, dy: ({}, dy)
    )
    net = fnn.serial(L.Dense(4, "tanh"), fnn.serial(L.Dense(4, "tanh"), times_nan, name="inner"), L.Dense(2))
    report = fnn.gradcheck(net, "mse", _params(net, (3,)), x, y)
    assert (report.non_finite_from, report.at_fault) == ("inner_0/nan_0", None)
    # a right network: NaN in x, in y, in a layer's params; the loss NaN at a finite prediction
    right = fnn.serial(L.Dense(4, "tanh"), L.Dense(2))
    params = _params(right, (3,))
    report = fnn.gradcheck(right, "mse", params, x, y)
    assert report.passed and (report.non_finite_from, report.at_fault) == (None, ())
    x_nan, y_nan = np.array(x), np.array(y)
    x_nan[1, 2] = y_nan[0, 1] = np.nan
    nan_bias = [params[0], {**params[1], "b": np.array([0.0, np.inf])}]
    for args, where, says in (
        ((params, x_nan, y), "input", "x holds NaN or inf"),
        ((params, x, y_nan), "y", "y holds NaN or inf"),
        ((nan_bias, x, y), "dense_1", "not finite from dense_1 on"),
    ):
        report = fnn.gradcheck(right, "mse", *args)
        assert (report.non_finite_from, report.at_fault) == (where, None) and says in str(report)
    assert np.asarray(jax.jit(right.apply)(params, x)).min() < 0  # poisson's log of a negative prediction
    report = fnn.gradcheck(right, "poisson", params, x, np.abs(np.asarray(y)))
    assert report.non_finite_from == "loss" and "the loss is NaN or inf at a finite prediction" in str(report)
    # an inf weight tanh absorbs: a finite forward, 0 * inf gradients; named as the params'
    inf_weight = [{**params[0], "w": np.where(np.arange(12).reshape(3, 4) == 0, np.inf, params[0]["w"])}, params[1]]
    report = fnn.gradcheck(right, "mse", inf_weight, x, y)
    assert np.isfinite(report.loss_value) and (report.non_finite_from, report.at_fault) == ("params", None)
    assert "the params hold NaN or inf" in str(report)

    class Wrapped:  # a network of the user's own (not an fnn.Network): not looked into, no crash
        def __init__(self, net):
            self.forward, self.backward, self.apply = net.forward, net.backward, net.apply

    report = fnn.gradcheck(Wrapped(right), "mse", params, x, y_nan)
    assert not report.passed and report.non_finite_from == "params or y"


def test_gradcheck_says_why_rows_fail_where_every_piece_agrees():
    """sqrt at an exact 0: its derivative is inf in the backward and in jax.vjp alike, so no
    piece is at fault, and the verdict says the derivative is not finite there; just above 0,
    the derivative is finite but the loss is NaN within eps, where finite differences fail."""
    net = fnn.serial(_sqrt(), L.Dense(2))
    x, y = _data(4, 3, 2, kind="regression")
    x = np.abs(np.asarray(x))
    for at, says in ((0.0, "NaN or inf alike (the derivative is not finite at this point)"),
                     (1e-8, "the loss is NaN or inf within eps of this point")):  # fmt: skip
        x[0, 0] = at
        report = fnn.gradcheck(net, "mse", _params(net, (3,)), x, y)
        assert report.failed_layers == ["input"] and (report.non_finite_from, report.at_fault) == (None, ())
        assert says in str(report)


def test_gradcheck_says_a_layer_s_output_is_not_float64_and_refuses_integer_params():
    """A right backward through a forward that casts to a fixed float32 fails finite differences
    at float32's rounding: the verdict says which layer's output is not float64. An integer
    params leaf (a mask an init returned) is refused naming it, as fit refuses it. (XLA:GPU drops
    a float64 -> float32 -> float64 cast pair, its "excess precision": reduce_precision rounds
    there too.)"""
    to32 = lambda v: jax.lax.reduce_precision(v, exponent_bits=8, mantissa_bits=23).astype(jnp.float32)
    f32 = _custom(
        "f32", _same_shape, lambda p, x, key=None, train=False: (to32(jnp.tanh(x)), (x,)),
        lambda p, c, dy: ({}, dy * (1 - jnp.tanh(c[0]) ** 2)),
    )  # fmt: skip
    net = fnn.serial(f32, L.Dense(2))
    x, y = _data(4, 3, 2, kind="regression")
    report = fnn.gradcheck(net, "mse", _params(net, (3,)), x, y)
    assert not report.passed and report.not_float64 == ("f32_0 (float32)",)
    assert "the output of f32_0 (float32) is not float64" in str(report)
    params = _params(net, (3,))
    params[0] = {"mask": np.ones(3, np.int32)}
    with pytest.raises(TypeError, match=r"^params\[0\]\['mask'\] has dtype int32: params must be floating arrays.*"
                       r"layer 0's init returned it"):  # fmt: skip
        fnn.gradcheck(net, "mse", params, x, y)


def test_gradcheck_with_dropout_key_and_subsampled_large_leaf():
    net = fnn.serial(L.Dense(40, "tanh"), L.Dropout(0.5), L.Dense(2))
    params = _params(net, (30,))
    x, y = _data(4, 30, 2, kind="regression")
    report = fnn.gradcheck(net, "mse", params, x, y, key=jax.random.PRNGKey(7), fd_max_entries=100)
    assert report.passed, str(report)
    kernel = next(r for r in report.rows if r.layer == 0 and r.leaf == "w")
    assert kernel.fd_entries == 100 and kernel.shape == (30, 40)


def test_gradcheck_casts_float32_inputs_to_float64(compiles):
    """Cast on the host (arrays on one device, the CPU's or a GPU's): no program per leaf shape,
    only gradcheck's own two, and the same report as for the float64 copies NumPy makes."""
    net = fnn.mlp([4, 2], activation="tanh")
    params = _params(net, (3,), jnp.float32)
    x, y = _data(5, 3, 2)
    x32 = jax.device_put(np.asarray(x, np.float32))
    loss = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)
    with compiles() as c:
        report = fnn.gradcheck(net, loss, params, x32, y)
    assert report.passed and report.max_error_autodiff < 1e-10
    assert c.count == 2
    params64 = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    host = fnn.gradcheck(net, loss, params64, np.asarray(x32, np.float64), y)
    assert host.loss_value == report.loss_value and host.rows == report.rows
    # nested lists, as fit takes them; integer inputs are real numbers, as in fit: the same
    # report as for float64 arrays of their values, from the same two programs
    with compiles() as c:
        lists = fnn.gradcheck(net, loss, params64, np.asarray(x32, np.float64).tolist(), np.asarray(y).tolist())
        pixels = np.round(3 * np.asarray(x)).astype(np.int32)
        ints = fnn.gradcheck(net, loss, params64, pixels, y)
        floats = fnn.gradcheck(net, loss, params64, pixels.astype(np.float64), y)
    assert c.count == 0
    assert lists.loss_value == report.loss_value and lists.rows == report.rows
    assert ints.passed and ints.loss_value == floats.loss_value and ints.rows == floats.rows
    assert ints.loss_value != report.loss_value
    with pytest.raises(ValueError, match=r"^x and y must hold the same number of samples; got 5 in x and 4 in y"):
        fnn.gradcheck(net, loss, params64, x, np.asarray(y)[:4])
    with pytest.raises(TypeError, match=r"^x must be an array of numbers; got list"):
        fnn.gradcheck(net, loss, params64, [[1.0, 2.0], [3.0]], y)


def test_gradcheck_of_narrower_params_passes_with_a_note_that_it_checked_float64():
    """float16 and float32 params are checked in float64 (the programs of the float32 test
    above): a pass there says nothing of their arithmetic (a backward of yours that overflows in
    float32 alone gives NaN in training), which the report's note says (as torch warns)."""
    net = fnn.mlp([4, 2], activation="tanh")
    x, y = _data(5, 3, 2)
    loss = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)
    for dtype, x_dtype, cast_from in (
        (jnp.float16, np.float64, ("params float16",)),
        (jnp.bfloat16, np.float16, ("params bfloat16", "x float16")),
        (jnp.float32, np.float32, ("params float32", "x float32")),
        (jnp.float64, np.float64, ()),
    ):
        params = jax.tree.map(lambda a, d=dtype: np.asarray(a, d), _params(net, (3,), jnp.float32))
        report = fnn.gradcheck(net, loss, params, np.asarray(x, x_dtype), y)
        assert report.passed and report.cast_from == cast_from
        note = [line for line in str(report).splitlines() if line.startswith("(note: ")]
        if cast_from:
            assert note == [
                f"(note: {' and '.join(cast_from)} cast to float64 for this check, which judges the derivatives, "
                "not that dtype's arithmetic: an overflow there (a NaN gradient) does not show; compare "
                "fnn.value_and_grad in the params' own dtype)"
            ]
            assert str(report).splitlines()[-3].startswith("gradcheck PASSED")
        else:
            assert note == []


def test_with_manual_vjp_runs_the_hand_written_backward():
    net = fnn.mlp([5, 3], activation="tanh")
    x, _y = _data(6, 4, 3, kind="regression")
    apply = fnn.with_manual_vjp(net)
    bad = fnn.serial(_wrong_dense(3))

    @jax.jit  # every gradient below in one compiled program
    def gradients(params, pb, x):
        f = lambda p: jnp.sum(jnp.sin(apply(p, x)))
        g_manual = jax.grad(f)(params)
        g_auto = jax.grad(lambda p: jnp.sum(jnp.sin(net.apply(p, x))))(params)
        dx = jax.grad(lambda xx: jnp.sum(apply(params, xx)))(x)
        dx_auto = jax.grad(lambda xx: jnp.sum(net.apply(params, xx)))(x)
        g_bad = jax.grad(lambda p: jnp.sum(fnn.with_manual_vjp(bad)(p, x)))(pb)
        g_true = jax.grad(lambda p: jnp.sum(bad.apply(p, x)))(pb)
        return (g_manual, g_auto), (dx, dx_auto), (g_bad, g_true)

    (g_manual, g_auto), (dx, dx_auto), (g_bad, g_true) = gradients(_params(net, (4,)), _params(bad, (4,)), x)
    chex.assert_trees_all_close(g_manual, g_auto, rtol=1e-10)
    np.testing.assert_allclose(dx, dx_auto, rtol=1e-10)
    # Proof that it is our backward that runs: a wrong backward shows through jax.grad.
    np.testing.assert_allclose(g_bad[0]["w"], 2 * np.asarray(g_true[0]["w"]), rtol=1e-10)


def test_bad_arguments():
    net = fnn.mlp([2])
    with pytest.raises(ValueError, match="mode"):
        fnn.value_and_grad(net, "mse", "numeric")
    with pytest.raises(TypeError, match=r"fnn\.losses\.custom\(name, fn\).*, or use mode='autodiff'\.$"):
        fnn.value_and_grad(net, lambda a, b: jnp.sum(a - b), "manual")
    # gradcheck has no mode: it names the door that gives a plain callable a gradient
    with pytest.raises(TypeError, match=r"got function\. Make a plain callable one with fnn\.losses\.custom") as e:
        fnn.gradcheck(
            net,
            lambda a, b: jnp.sum(a - b),
            [{"w": np.ones((3, 2)), "b": np.zeros(2)}],
            np.ones((2, 3)),
            np.zeros((2, 2)),
        )
    assert "mode" not in str(e.value)
    with pytest.raises(ValueError, match="known|unknown"):
        fnn.value_and_grad(net, "no_such_loss")
    f = fnn.value_and_grad(net, lambda yt, yp: jnp.mean((yt - yp) ** 2), "autodiff")  # plain callables are fine
    # jitted: one program rather than an eager compilation per primitive
    v, _ = jax.jit(f)(_params(net, (3,)), np.ones((2, 3)), np.zeros((2, 2)))
    assert np.isfinite(v)
    drop = fnn.serial(L.Dense(2), L.Dropout(0.5))
    with pytest.raises(ValueError, match="key"):  # raised while tracing: nothing compiles
        jax.jit(lambda: fnn.value_and_grad(drop, "mse")(drop.init(KEY, (3,)), jnp.ones((2, 3)), jnp.zeros((2, 2))))()


def test_gradcheck_refuses_the_labels_value_and_grad_refuses(compiles):
    """Sparse labels outside [0, C) or fractional: value_and_grad's loss refuses them (concrete
    labels), and gradcheck, whose programs trace the labels, refuses them with the same words
    before anything compiles (a label 3 of 3 classes was a zero one-hot row: 'passed')."""
    net = fnn.mlp([3])
    params = _params(net, (4,))
    x = np.random.default_rng(0).normal(size=(6, 4))
    loss = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)
    bad = [
        (np.array([0, 1, 2, 3, 0, 1]), r"labels must be in \[0, 3\) \(the number of classes in y_pred\); got \[3\]$"),
        (np.array([0, 1, 2, -1, 0, 1]), r"labels must be in \[0, 3\) .*; got \[-1\]$"),
        (np.array([0, 1, 2, 1.5, 0, 1]), r"y_true must hold integer class ids, got non-integer values$"),
    ]
    for y, said in bad:
        with pytest.raises(ValueError, match=rf"^sparse_categorical_crossentropy: {said}") as by_value_and_grad:
            fnn.value_and_grad(net, loss)(params, x, y)
        with compiles() as c, pytest.raises(ValueError) as by_gradcheck:
            fnn.gradcheck(net, loss, params, x, y)
        assert str(by_gradcheck.value) == f"y: {by_value_and_grad.value}" and c.count == 0


def test_tuple_and_ordereddict_params_get_gradients_in_their_own_containers():
    """Every manual gradient keeps the params' containers, as jax.grad does: value_and_grad and
    with_manual_vjp on a tuple of params, and on Dense entries given as OrderedDicts."""
    net = fnn.mlp([3, 2], activation="tanh")
    params = _params(net, (4,))
    x, y = _data(5, 4, 2, kind="regression")
    given = {
        "tuple": tuple(params),
        "ordered": [collections.OrderedDict([("w", p["w"]), ("b", p["b"])]) for p in params],
    }
    apply = fnn.with_manual_vjp(net)

    @jax.jit
    def gradients(given, x, y):
        sq = lambda f: lambda p: jnp.sum(f(p, x) ** 2)
        return {
            kind: [fnn.value_and_grad(net, "mse", mode)(p, x, y) for mode in ("manual", "autodiff")]
            + [jax.grad(sq(apply))(p), jax.grad(sq(net.apply))(p)]
            for kind, p in given.items()
        }

    for kind, ((v_manual, g_manual), (v_auto, g_auto), g_vjp, g_ref) in gradients(given, x, y).items():
        for g in (g_manual, g_auto, g_vjp, g_ref):
            assert jax.tree.structure(g) == jax.tree.structure(given[kind])
        np.testing.assert_allclose(v_manual, v_auto, rtol=1e-12)
        chex.assert_trees_all_close(g_manual, g_auto, rtol=1e-12)
        chex.assert_trees_all_close(g_vjp, g_ref, rtol=1e-12)


def test_a_plain_loss_giving_one_value_per_sample_is_refused_naming_loss():
    """Keras's custom-loss form returns one value per sample; in fnn that function is
    fnn.losses.custom's. As a plain callable it is refused while tracing, naming it."""
    net = fnn.mlp([2])
    params = jax.eval_shape(lambda: net.init(KEY, (3,), jnp.float64))
    x, y, w = np.ones((4, 3)), np.zeros((4, 2)), np.ones(4)
    per_sample = lambda t, p: jnp.mean((t - p) ** 2, axis=-1)

    def weighed(t, p, sample_weight=None):
        per = jnp.mean((t - p) ** 2, axis=-1)
        return per if sample_weight is None else per * sample_weight

    door = r"returned an array of shape \(4,\); a plain callable loss.*fnn\.losses\.custom\(name, fn\)"
    with pytest.raises(ValueError, match=rf"^loss <lambda> {door}"):
        jax.eval_shape(fnn.value_and_grad(net, per_sample, "autodiff"), params, x, y)
    with pytest.raises(ValueError, match=rf"^loss weighed {door}"):
        jax.eval_shape(functools.partial(fnn.value_and_grad(net, weighed, "autodiff"), sample_weight=w), params, x, y)


# ------------------------------------------------------------------------- gradcheck's verdicts


def _custom(name, init, forward, backward):
    return L.Layer(init, forward, backward, name)


def _same_shape(key, input_shape, dtype=jnp.float32):
    return tuple(input_shape), {}


def test_gradcheck_passes_a_right_backward_where_jax_grad_itself_is_wrong_and_fails_a_wrong_one():
    """y = where(x == 0, 0, x) is the identity, smooth everywhere; jax.grad routes its derivative
    to the constant branch at exactly 0 (an all-zero input row through a zero bias). The right
    backward dy failed against autodiff there and was named the culprit; the finite
    differences, which agree with it (both one-sided slopes), now judge it. A backward 10 % off
    still fails."""
    forward = lambda p, x, key=None, train=False: (jnp.where(x == 0, 0.0, x), ())
    net_of = lambda backward: fnn.serial(L.Dense(2), _custom("ident", _same_shape, forward, backward), L.Dense(1))
    params = _params(net_of(None), (2,))
    params[0]["b"] = jnp.zeros(2)
    x, y = np.array([[0.0, 0.0], [1.0, -0.5]]), np.array([[1.0], [0.5]])
    right = fnn.gradcheck(net_of(lambda p, c, dy: ({}, dy)), "mse", params, x, y)
    assert right.passed and right.at_fault == ()
    wrong = fnn.gradcheck(net_of(lambda p, c, dy: ({}, 1.1 * dy)), "mse", params, x, y)
    assert not wrong.passed and wrong.at_fault[0][0] == "ident_0"


def test_gradcheck_fails_a_wrong_input_gradient():
    """A first layer y = 3x whose backward returns dx = 0: every parameter gradient is right,
    the input gradient 100 % wrong, and gradcheck says so in its own row."""
    bad = _custom("times3", _same_shape, lambda p, x, key=None, train=False: (3 * x, ()), lambda p, c, dy: ({}, 0 * dy))
    net = fnn.serial(bad, L.Dense(3))
    x, y = _data(6, 4, 3)
    report = fnn.gradcheck(
        net, fnn.losses.get("sparse_categorical_crossentropy", from_logits=True), _params(net, (4,)), x, y
    )
    assert not report.passed and report.failed_layers == ["input"]
    (row,) = [r for r in report.rows if not r.passed]
    assert (row.layer_name, row.leaf, row.shape) == ("input", "dx", (6, 4))
    assert row.manual_vs_autodiff == pytest.approx(1.0) and row.manual_vs_fd == pytest.approx(1.0, rel=1e-6)
    good = _custom(
        "times3", _same_shape, lambda p, x, key=None, train=False: (3 * x, ()), lambda p, c, dy: ({}, 3 * dy)
    )
    assert fnn.gradcheck(fnn.serial(good, L.Dense(3)), "mse", _params(net, (4,)), x, np.zeros((6, 3))).passed


def _relu_layer(slope_at_positive):
    """relu whose hand-written backward multiplies by ``slope_at_positive`` where x > 0 (1: right).
    (jax.nn.relu's derivative at 0 is 0, as this backward's; jnp.maximum's would be 1/2.)"""
    forward = lambda p, x, key=None, train=False: (jax.nn.relu(x), (x,))
    backward = lambda p, cache, dy: ({}, dy * jnp.where(cache[0] > 0, slope_at_positive, 0.0))
    return _custom("my_relu", _same_shape, forward, backward)


def test_gradcheck_at_exact_kinks_passes_a_right_backward_and_fails_a_wrong_one():
    """Central differences average the two one-sided slopes at a kink; gradcheck finds such
    entries (their slopes' jump does not shrink with the step) and judges them by those slopes
    and autodiff."""
    x, y = _data(4, 3, 1, kind="regression")
    x = _zero_first_row(x)  # an all-zero sample through zero biases: every relu of it sits at 0
    for first in (L.Dense(5, "relu"), fnn.serial(L.Dense(5), _relu_layer(1.0))):
        net = fnn.serial(first, L.Dense(1))
        report = fnn.gradcheck(net, "mse", _params(net, (3,)), x, y)
        assert report.passed, str(report)
        kinks = {(r.layer_name, r.leaf): r.fd_kinks for r in report.rows}
        assert kinks[("input", "dx")] == 3 and sum(kinks.values()) >= 8, kinks  # dx of row 0; the biases
        assert "(3 at kinks)" in str(report) and "passes between them or equal to autodiff's" in str(report)
    # the same place with a backward 1 % off: autodiff still judges it, and the smooth entries too
    net = fnn.serial(fnn.serial(L.Dense(5), _relu_layer(1.01)), L.Dense(1))
    report = fnn.gradcheck(net, "mse", _params(net, (3,)), x, y)
    assert not report.passed and report.failed_layers == ["input", "serial_0"]
    assert report.max_error_autodiff > 5e-3 and report.max_error_fd > 5e-3
    # pre-activations pinned at other kinks (w = 0, b = the kink): relu6 at 6, hard_sigmoid at -3
    for act, at in (("relu6", 6.0), ("hard_sigmoid", -3.0)):
        net = fnn.serial(L.Dense(2, act), L.Dense(1))
        params = _params(net, (3,))
        params[0] = {"w": np.zeros((3, 2)), "b": np.full((2,), at)}
        report = fnn.gradcheck(net, "mse", params, x, y)
        assert report.passed and report.rows[0].fd_kinks == 2, str(report)


def test_kinks_that_cancel_downstream_fail_saying_the_chain_rule_is_not_the_derivative_there():
    """leaky_relu(-leaky_relu(b)) at b = 0 is smooth (slope 0.2 either side) but the chain rule
    multiplies the slopes chosen at each kink (1 * 1): manual equals jax.grad, finite
    differences see 0.2, and no one-sided jump marks a kink. The verdict says so, not that a
    backward is wrong."""
    net = fnn.serial(L.Dense(1, "leaky_relu"), L.Dense(1, "leaky_relu"))
    params = [{"w": np.array([[1.0]]), "b": np.array([0.0])}, {"w": np.array([[-1.0]]), "b": np.array([0.0])}]
    x, y = np.array([[0.0], [1.0]]), np.array([[1.0], [0.5]])
    report = fnn.gradcheck(net, "mse", params, x, y)
    assert not report.passed and report.failed_layers == ["dense_0", "input"]
    assert report.max_error_autodiff == 0.0 and report.max_error_fd > 0.5
    assert "and the failing entries equal jax.grad's: the chain rule itself is not the derivative" in str(report)
    # off the kink (a bias of 0.1) the same network passes
    params[0]["b"] = np.array([0.1])
    assert fnn.gradcheck(net, "mse", params, x, y).passed


def test_at_a_kink_any_slope_between_the_one_sided_ones_passes_and_one_outside_fails(compiles):
    """jnp.maximum(x, 0)'s autodiff slope at 0 is 1/2; a backward taking 0 or 1 there is as
    right (each is a one-sided slope), one taking 3 is not. One hidden unit, so that each
    checked entry moves the unit's pre-activation one way only."""
    x, y = _data(4, 3, 1, kind="regression")
    x = _zero_first_row(x)

    def layer(slope_at_zero):
        forward = lambda p, x, key=None, train=False: (jnp.maximum(x, 0.0), (x,))
        slope = lambda x: jnp.where(x > 0, 1.0, jnp.where(x == 0, slope_at_zero, 0.0))
        return _custom("max0", _same_shape, forward, lambda p, cache, dy: ({}, dy * slope(cache[0])))

    for at_zero, passes in ((0.0, True), (1.0, True), (0.5, True), (3.0, False)):
        net = fnn.serial(L.Dense(1), layer(at_zero), L.Dense(1))
        params = _params(net, (3,))
        with compiles() as c:
            report = fnn.gradcheck(net, "mse", params, x, y)
        assert report.passed == passes, (at_zero, str(report))
        # the second look (halved step) runs the first pass's program: gradcheck's two; where a
        # choice off autodiff's 1/2 passes between the one-sided slopes alone, the pieces' own
        # check against jax.vjp (one program, the failing one's culprit search too)
        assert c.count == (2 if at_zero == 0.5 else 3) or not passes, c.count
        # b; row 0 of dx (1/2, the central differences' own answer, needs no second look)
        assert (report.rows[0].fd_kinks, report.rows[-1].fd_kinks) == ((0, 0) if at_zero == 0.5 else (1, 3))


def _kinked(name, fn, left):
    """``y = fn(x)`` (|x|: slope ``left`` = -1 below 0; jax.nn.relu: 0) whose backward takes ``k``
    times the slope, and ``at0`` at 0: params the forward ignores (their gradients are 0), so
    that every choice runs one compiled program."""

    def init(key, input_shape, dtype=jnp.float32):
        return tuple(input_shape), {"at0": np.zeros((), dtype), "k": np.ones((), dtype)}

    def backward(p, cache, dy):
        slope = jnp.where(cache[0] > 0, 1.0, jnp.where(cache[0] < 0, left, p["at0"]))
        return jax.tree.map(jnp.zeros_like, p), dy * p["k"] * slope

    return _custom(name, init, lambda p, x, key=None, train=False: (fn(x), (x,)), backward)


def test_at_a_kink_a_slope_off_autodiff_s_alone_is_judged_by_the_one_sided_ones(compiles):
    """|x| at 0: the central difference is 0, sign(x)'s choice, and jax.grad takes 1; both lie in
    [-1, 1] and pass, found off either reference. 2 sign(x), or 3 at 0, fails and is named.
    Mirrored: jax.nn.relu (jax.grad 0 at 0) with a backward taking 1/2, the central difference.
    Dense(2) with w = I and zero bias puts two inputs exactly at the kink: each sits in a bias
    entry (a parameter gradient) and an input entry (the input gradient)."""
    x, y = np.array([[0.0, 1.0], [2.0, 0.0], [-1.0, 0.5]]), np.ones((3, 2))
    # (k, at0, passes): sign(x), +1 and -1 at 0 pass; 2 sign(x) and 3 at 0 fail
    abs_choices = [(1.0, 0.0, True), (1.0, 1.0, True), (1.0, -1.0, True), (2.0, 0.0, False), (1.0, 3.0, False)]
    cases = {"abs": (jnp.abs, -1.0, abs_choices), "relu": (jax.nn.relu, 0.0, [(1.0, 0.5, True)])}
    for name, (fn, left, choices) in cases.items():
        net = fnn.serial(L.Dense(2), _kinked(name, fn, left))
        with compiles() as c:
            for k, at0, passes in choices:
                params = [{"w": np.eye(2), "b": np.zeros(2)}, {"at0": np.float64(at0), "k": np.float64(k)}]
                report = fnn.gradcheck(net, "mse", params, x, y)
                assert report.passed == passes, (name, k, at0, str(report))
                kinks = {(r.layer_name, r.leaf): r.fd_kinks for r in report.rows}
                assert kinks[("dense_0", "b")] == kinks[("input", "dx")] == 2, (name, k, at0, kinks)
                assert [n for n, _ in report.at_fault] == ([] if passes else [f"{name}_0"]), report.at_fault
        # gradcheck's two programs, and the pieces' own check against jax.vjp: sample by sample
        # for the choices off autodiff's that pass between the one-sided slopes alone, on the
        # whole batch for the failing choices' culprit search (which reads the errors alone)
        assert c.count == 3 + any(not passes for *_, passes in choices), (name, c.count)


def test_a_custom_loss_gradient_wrong_only_at_its_kink_fails():
    """jax.grad of a custom loss runs its own grad, so at the loss's kink (|e| at e = 0) only the
    one-sided slopes can judge it: 1 (a slope) passes, 3 (outside [-1, 1]) does not."""
    x, y = np.array([[1.0, 2.0], [-1.0, 0.5], [0.3, -0.7]]), np.zeros((3, 1))
    net = fnn.mlp([1])
    params = [{"w": np.zeros((2, 1)), "b": np.zeros(1)}]  # every prediction at the kink e = 0
    for at_zero, passes in ((1.0, True), (3.0, False)):
        grad = lambda t, p, a=at_zero: jnp.where(p > t, 1.0, jnp.where(p < t, -1.0, a)) / p.shape[-1]
        mae = fnn.losses.custom(f"mae_{at_zero:g}", lambda t, p: jnp.mean(jnp.abs(p - t), axis=-1), grad)
        report = fnn.gradcheck(net, mae, params, x, y)
        assert report.passed == passes and report.rows[0].fd_kinks == 1, str(report)


def test_gradcheck_passes_where_the_second_derivative_jumps():
    """softsign is C^1 at 0 (slope 1) but its second derivative jumps from 2 to -2: central
    differences err by O(h) there, not O(h^2); Richardson's second look removes most of it."""
    net = fnn.serial(L.Dense(2, "softsign"), L.Dense(1))
    params = _params(net, (3,))
    params[0] = {"w": np.zeros((3, 2)), "b": np.zeros(2)}
    x, y = _data(4, 3, 1, kind="regression")
    report = fnn.gradcheck(net, "mse", params, x, y)
    assert report.passed and not any(r.fd_kinks for r in report.rows), str(report)


_OFF_X, _OFF_Y = np.array([[1.0, 2.0], [-1.0, 0.5], [0.25, -3.0]]), np.array([[1.0], [2.0], [-1.0]])


def _off_kink(act, off, middle=()):
    """``(net, "mse", params)``: one unit of ``act`` whose input is ``off`` for every sample
    (w = 0, b = off), ``middle`` layers, then Dense(1)."""
    net = fnn.serial(L.Dense(1, act), *middle, L.Dense(1))
    params = [{"w": np.zeros((2, 1)), "b": np.array([off])}, *[{} for _ in middle]]
    return net, "mse", [*params, {"w": np.array([[1.5]]), "b": np.array([0.0])}]


def test_a_loss_that_bends_within_the_step_is_resolved_by_smaller_steps_not_called_a_kink():
    """LayerNorm(epsilon=1e-12) at constant rows bends within sqrt(1e-12) = 1e-6, the default
    step: its one-sided slopes differ there as a kink's do. Smaller steps, down to eps / 16384,
    resolve the smooth slope: the right input gradient passes (it failed, "at kinks"), and one 0.1 %
    off still fails."""
    ln = fnn.LayerNorm(epsilon=1e-12)
    off = L.Layer(ln.init, ln.forward, lambda p, c, dy: (lambda g, dx: (g, 1.001 * dx))(*ln.backward(p, c, dy)), "off")
    x = np.array([[3.0] * 5, [0.0] * 5, [1.0, 2, 3, 4, 5]])
    y = np.full((3, 2), 0.3)
    rng = np.random.default_rng(0)
    for first, passes in ((ln, True), (off, False)):
        net = fnn.serial(first, fnn.Flatten(), fnn.Dense(2, activation="tanh"))
        params = net.init(jax.random.PRNGKey(0), (5,), dtype=jnp.float64)
        params[0] = {"scale": 1 + 0.3 * rng.standard_normal(5), "offset": 0.2 * rng.standard_normal(5)}
        report = fnn.gradcheck(net, "mse", params, x, y)
        assert report.passed is passes, str(report)
        assert [r.passed for r in report.rows if r.layer_name == "input"] == [passes]


def test_a_kink_within_the_step_on_one_side_passes_judged_by_the_other_side():
    """relu's input 3e-7..1.2e-6 (or -4e-7) from 0, eps 1e-6: the central difference steps over
    the kink and Richardson's value is neither slope; the side without the kink keeps its
    one-sided slopes alike from step to step, and the right derivative equals that side's."""
    for off in (3e-7, 6e-7, 1.2e-6, -4e-7):
        report = fnn.gradcheck(*_off_kink("relu", off), _OFF_X, _OFF_Y)
        assert report.passed and report.rows[1].fd_kinks >= 1, (off, str(report))
    # a relu network with one sample 2e-7 from one unit's kink (random elsewhere), as a random
    # init of fnn.mlp([64, 1]) over 128 samples gives every ~30 draws
    rng = np.random.default_rng(3)
    net = fnn.serial(L.Dense(6, "relu"), L.Dense(1))
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 1))
    w0 = rng.normal(size=(3, 6))
    b0 = np.abs(rng.normal(size=6))
    b0[2] = 2e-7 - x[1] @ w0[:, 2]  # sample 1 is 2e-7 above unit 2's kink
    params = [{"w": w0, "b": b0}, {"w": rng.normal(size=(6, 1)), "b": np.zeros(1)}]
    report = fnn.gradcheck(net, "mse", params, x, y)
    assert report.passed and report.rows[1].fd_kinks >= 1, str(report)


def test_mae_at_float32_ties_seen_in_float64_passes():
    """Targets equal to a float32 prediction are ~1e-8 off the float64 one: every residual is a
    kink within the step. mae's sign(e), jax.grad's, and a custom loss's own grad (judged by the
    slopes alone) all pass."""
    x = np.array([[1.0, 2.0], [-1.0, 0.5], [0.25, -3.0], [2.0, 2.0], [-0.5, -1.0], [3.0, 1.0]])
    params = [{"w": np.array([[0.3], [-0.7]]), "b": np.array([0.1])}]
    y = x @ params[0]["w"] + params[0]["b"] + np.array([[7e-9], [-3e-8], [1.1e-7], [-9e-9], [5e-8], [-1.1e-7]])
    own = fnn.losses.custom(
        "abs_sign", lambda t, p: jnp.mean(jnp.abs(p - t), -1), lambda t, p: jnp.sign(p - t) / p.shape[-1]
    )
    for loss in ("mae", own):
        report = fnn.gradcheck(fnn.mlp([1]), loss, params, x, y)
        assert report.passed and report.rows[-1].fd_kinks == 12, str(report)


def test_near_a_kink_a_wrong_derivative_still_fails():
    """A vjp wrong only within 1e-7 below relu's kink (slope 1 for x > -1e-7), checked at inputs
    there, fails as it does away from the kink; so does a middle layer's dx 1 % off behind a
    relu whose input is 3e-7 from its kink, named."""
    wrong = fnn.activations.Activation("early", lambda z: jnp.where(z > 0, z, 0.0), lambda z, o, dy: dy * (z > -1e-7))
    for off in (-5e-8, -2e-8, -1e-9):
        report = fnn.gradcheck(*_off_kink(wrong, off), _OFF_X, _OFF_Y)
        assert not report.passed and report.failed_layers == ["dense_0"], (off, str(report))
        assert report.max_error_fd > 0.4 and [n for n, _ in report.at_fault] == ["dense_0"]
    scale = _custom("scale", _same_shape, lambda p, x, key=None, train=False: (x, ()), lambda p, c, dy: ({}, 1.01 * dy))
    report = fnn.gradcheck(*_off_kink("relu", 3e-7, (scale,)), _OFF_X, _OFF_Y)
    assert not report.passed and [n for n, _ in report.at_fault] == ["scale_0"], str(report)
    assert "the wrong derivative starts in scale_0" in str(report)


def test_several_units_on_one_kink_with_another_valid_choice_than_jax_s_say_so():
    """Every sample's relu input exactly 0 (w = 0, b = 0): a kernel entry moves them both ways,
    so per-sample choices sum outside the one-sided slopes, and a vjp taking 1 at 0 (valid)
    differs from jax.grad's 0. It cannot pass soundly; the verdict says it may be a valid
    choice, not that the derivative is wrong. Its bias entries (all moved one way) pass."""
    # column 0 of x times y is positive in every sample: its kernel entry's one-sided slopes
    # have one sign, and the sum of the slopes the choice 1 gives lies outside them
    x, y = np.array([[1.0, 1.0], [-1.0, 2.0], [2.0, -1.0], [-2.0, -2.0]]), np.array([[1.0], [-1.0], [1.0], [-0.5]])
    one_at_0 = fnn.activations.Activation("relu1", lambda z: jnp.where(z > 0, z, 0.0), lambda z, o, dy: dy * (z >= 0))
    net = fnn.serial(L.Dense(3, one_at_0), L.Dense(1))
    params = [{"w": np.zeros((2, 3)), "b": np.zeros(3)}, {"w": np.array([[1.0], [-2.0], [0.5]]), "b": np.zeros(1)}]
    report = fnn.gradcheck(net, "mse", params, x, y)
    assert not report.passed and [(r.leaf, r.passed, r.failed_at_kinks) for r in report.rows[:2]] == [
        ("b", True, False), ("w", False, True)
    ]  # fmt: skip
    assert "failing entries all sit exactly on kinks of the loss" in str(report)
    assert "a wrong derivative or another valid choice" in str(report)


def test_sigmoid_crossentropy_at_large_logits_passes_and_a_wrong_gradient_fails():
    """binary_crossentropy of a sigmoid at logit 12..16: log(1 - c) rounds to ~1e-9, a slope
    error up to ~1e-3 at eps 1e-6; larger steps judge the entry. A gradient 1e-5 off still fails."""
    xs, ys = np.ones((4, 1)), np.array([[0.0], [1.0], [0.0], [1.0]])

    def scaled(k):
        return _custom("k", _same_shape, lambda p, x, key=None, train=False: (x, ()), lambda p, c, dy: ({}, k * dy))

    for k, passes in ((1.0, True), (1.00001, False)):
        net = fnn.serial(L.Dense(1, "sigmoid"), scaled(k))
        for logit in (12.25, 15.5, 16.0):
            params = [{"w": np.zeros((1, 1)), "b": np.array([logit])}, {}]
            report = fnn.gradcheck(net, "binary_crossentropy", params, xs, ys)
            assert report.passed == passes, (k, logit, str(report))
            if not passes:
                assert report.max_error_fd == pytest.approx(1e-5, rel=0.1)
    # logits spread over 13.8-16.8 (a Dense of random x, no target 1): rounding in whole float
    # steps can make two small steps of one side agree on a wrong slope (-0.031984 for -0.031933);
    # such an entry too is judged at larger steps (it failed the input's row at 2.5e-3)
    x = np.array([[1.622642159461975, 2.0252647399902344, -0.4335944354534149],
                  [-0.07861734926700592, 0.17609089612960815, -0.9720892310142517],
                  [-0.49529874324798584, 0.49437859654426575, 0.6643493175506592],
                  [-0.9501634836196899, 2.179530382156372, -1.9551506042480469],
                  [0.35857072472572327, 0.15779513120651245, 1.2770847082138062]])  # fmt: skip
    w = 0.3 * np.array([[-0.5322252511978149], [0.7056913375854492], [-0.25086820125579834]])
    net = fnn.serial(L.Dense(1, "sigmoid"))
    for b in (14.0, 15.5, 16.0):
        report = fnn.gradcheck(net, "binary_crossentropy", [{"w": w, "b": np.array([b])}], x, np.zeros((5, 1)))
        assert report.passed, (b, str(report))


def _custom_mse_plus(name, extra, grad_extra):
    """A custom loss ``mean((p - t)^2) + extra(p)`` with grad ``2 (p - t) / D + grad_extra(p)``."""
    return fnn.losses.custom(
        name,
        lambda t, p: jnp.mean((p - t) ** 2, -1) + jnp.sum(extra(p), -1),
        lambda t, p: 2 * (p - t) / p.shape[-1] + grad_extra(p),
    )


def test_a_fast_wiggle_the_small_steps_resolve_fails_a_gradient_that_omits_it():
    """``mse + A sin(w p)`` with a gradient that omits ``A w cos(w p)`` (3e-4 of the gradient at
    most): steps below eps resolve the wiggle, both sides alike; larger steps average it away
    and agree with the wrong gradient, so they must not overrule the small ones. The right
    gradient passes."""
    x, y = _OFF_X, _OFF_Y
    params = [{"w": np.array([[0.3], [-0.7]]), "b": np.array([0.1])}]
    for w, aw in ((1e6, 1e-3), (1e4, 1e-4), (1e5, 1e-3)):
        a = aw / w
        wiggle = lambda p, a=a, w=w: a * jnp.sin(w * p)
        omits = _custom_mse_plus(f"omits_{w:g}", wiggle, lambda p: 0.0 * p)
        report = fnn.gradcheck(fnn.mlp([1]), omits, params, x, y)
        assert not report.passed and report.max_error_fd > 5e-6, (w, str(report))
        right = _custom_mse_plus(f"right_{w:g}", wiggle, lambda p, a=a, w=w: a * w * jnp.cos(w * p))
        assert fnn.gradcheck(fnn.mlp([1]), right, params, x, y).passed, w


def test_a_loss_that_curves_within_the_step_passes_judged_at_smaller_steps():
    """``|r|^1.5`` at ``r = 1e-6`` (eps 1e-6 steps onto 0, where its curvature is infinite):
    smooth within 1e-6 of the point, so the smaller steps' slopes resolve the right gradient;
    one 0.1 % off still fails."""
    params = [{"w": np.array([[0.3], [-0.7]]), "b": np.array([0.1])}]
    x = np.array([[1.0, 0.5]])
    y = x @ params[0]["w"] + params[0]["b"] - 1e-6
    for k, passes in ((1.0, True), (1.001, False)):
        loss = fnn.losses.custom(
            f"pow15_{k}",
            lambda t, p: jnp.abs(p - t)[..., 0] ** 1.5,
            lambda t, p, k=k: k * 1.5 * jnp.sign(p - t) * jnp.abs(p - t) ** 0.5,
        )
        report = fnn.gradcheck(fnn.mlp([1]), loss, params, x, y)
        assert report.passed == passes, (k, str(report))


def _first_layer_dx(name, dx):
    """``y = x * s`` (a learned scale per feature) whose backward returns ``dx(dy, s)`` for dx."""
    return _custom(
        name,
        lambda key, shape, dtype=jnp.float32: (tuple(shape), {"s": jnp.ones(shape[-1:], dtype)}),
        lambda p, x, key=None, train=False: (x * p["s"], (x,)),
        lambda p, c, dy: ({"s": jnp.sum(dy * c[0], 0)}, dx(dy, p["s"])),
    )


FIRST_LAYER_DX = [
    ("flat", lambda dy, s: (dy * s)[0], r"dx of shape \(3,\) for inputs of shape \(5, 3\)"),
    ("transposed", lambda dy, s: (dy * s).T, r"dx of shape \(3, 5\) for inputs of shape \(5, 3\)"),
    ("nodx", lambda dy, s: None, r"dx None for inputs of shape \(5, 3\)"),
    ("intdx", lambda dy, s: jnp.ones(dy.shape, jnp.int32), r"dx of dtype int32 for inputs of dtype float64"),
]


@pytest.mark.parametrize("name,dx,problem", FIRST_LAYER_DX, ids=[c[0] for c in FIRST_LAYER_DX])
def test_a_first_layer_whose_dx_is_no_input_gradient_is_named(name, dx, problem):
    """gradcheck and with_manual_vjp (differentiated with respect to x) need the first layer's dx
    as x's gradient; one of another shape, None or not floating is named with one message (a
    None dx came out of with_manual_vjp as zeros, a wrong shape as JAX's custom_vjp error)."""
    net = fnn.serial(_first_layer_dx(name, dx), L.Dense(2))
    params, (x, y) = _params(net, (3,)), _data(5, 3, 2, kind="regression")
    apply = fnn.with_manual_vjp(net)
    for door, call in (
        ("gradcheck", lambda: fnn.gradcheck(net, "mse", params, x, y)),
        ("fnn.with_manual_vjp", lambda: jax.eval_shape(jax.grad(lambda xx: jnp.sum(apply(params, xx))), x)),
        ("fnn.with_manual_vjp", lambda: jax.eval_shape(jax.vjp(apply, params, x)[1], y)),
    ):
        message = (
            rf"^layer 0 \({name}_0\): backward returned {problem}; {door} needs it as the gradient with respect "
            r"to x: an array of x's shape and a floating dtype \(a first layer that cannot give dx, one taking "
            r"integer inputs, works where x's gradient is not asked for"
        )
        with pytest.raises(ValueError, match=message):
            call()


def test_with_manual_vjp_with_respect_to_params_alone_needs_no_dx():
    """A first layer that gives no dx (None) still gives jax.grad its params' gradients, which
    are jax.grad's of net.apply; as the first layer of a nested network it is named there."""
    nodx = _first_layer_dx("nodx", lambda dy, s: None)
    net = fnn.serial(nodx, L.Dense(2, "tanh"))
    params, (x, _y) = _params(net, (3,), seed=3), _data(5, 3, 2, kind="regression")
    params[0]["s"] = jax.device_put(np.array([0.5, -1.0, 2.0]))
    apply = fnn.with_manual_vjp(net)

    @jax.jit
    def both(params, x):
        f = lambda a: lambda p: jnp.sum(jnp.sin(a(p, x)))
        return jax.grad(f(apply))(params), jax.grad(f(net.apply))(params)

    manual, auto = both(params, x)
    chex.assert_trees_all_close(manual, auto, rtol=1e-12)
    assert float(np.abs(manual[0]["s"]).min()) > 0
    # behind another layer its None is no dy: the network names it
    outer = fnn.serial(L.Dense(3), net)
    outer_params = [_params(fnn.serial(L.Dense(3)), (3,))[0], params]
    with pytest.raises(ValueError, match=r"^layer 1 \(serial_0\): backward returned dx None for inputs of shape "):
        jax.eval_shape(jax.grad(lambda p: jnp.sum(fnn.with_manual_vjp(outer)(p, x))), outer_params)


def test_with_manual_vjp_takes_a_cache_holding_python_values_as_net_backward_does():
    """A forward may keep a string, a Python int (a size its backward builds from) or float in
    its cache: net.backward, gradcheck and fit took them, with_manual_vjp made them residuals,
    which must be arrays (JAX's "not a valid JAX type", naming nothing), or tracers (no size)."""

    def init(key, input_shape, dtype=jnp.float32):
        return tuple(input_shape), {}

    def forward(params, x, key=None, train=False):
        return 2.0 * x, {"mode": "double", "n": x.shape[-1], "scale": 2.0, "x": x}

    def backward(params, cache, dy):
        assert cache["mode"] == "double" and type(cache["n"]) is int and type(cache["scale"]) is float
        return {}, dy * jnp.full(cache["n"], cache["scale"], dy.dtype)

    net = fnn.serial(L.Dense(3), _custom("keeps", init, forward, backward))
    params, (x, _y) = _params(net, (2,)), _data(4, 2, 3, kind="regression")
    apply = fnn.with_manual_vjp(net)
    f = lambda a: lambda p, x: jnp.sum(jnp.sin(a(p, x)))
    want = jax.grad(f(net.apply), argnums=(0, 1))(params, x)
    for got in (jax.grad(f(apply), argnums=(0, 1))(params, x), jax.jit(jax.grad(f(apply), argnums=(0, 1)))(params, x)):
        chex.assert_trees_all_close(got, want, rtol=1e-12)


def _two_leaf_layer(backward_leaves):
    def init(key, input_shape, dtype=jnp.float32):
        return tuple(input_shape), {"s": jnp.ones(input_shape[-1:], dtype), "t": jnp.zeros(input_shape[-1:], dtype)}

    def forward(params, x, key=None, train=False):
        return x * params["s"] + params["t"], (x,)

    def backward(params, cache, dy):
        (x,) = cache
        full = {"s": jnp.sum(dy * x, axis=0), "t": jnp.sum(dy, axis=0)}
        return {k: full[k] for k in backward_leaves}, dy * params["s"]

    return L.Layer(init, forward, backward, "affine")


def test_a_backward_with_a_missing_leaf_is_named():
    net = fnn.serial(_two_leaf_layer(["s"]), L.Dense(2))
    params, (x, y) = _params(net, (3,)), _data(4, 3, 2, kind="regression")
    message = (
        r"layer 0 \(affine_0\): backward returned dparams with leaves \[\"\['s'\]\"\] "
        r"for params with leaves \[\"\['s'\]\", \"\['t'\]\"\]"
    )
    with pytest.raises(ValueError, match=message):
        fnn.gradcheck(net, "mse", params, x, y)
    with pytest.raises(ValueError, match=message):  # raised while tracing: nothing compiles
        jax.jit(fnn.value_and_grad(net, "mse"))(params, x, y)
    assert fnn.gradcheck(fnn.serial(_two_leaf_layer(["s", "t"]), L.Dense(2)), "mse", params, x, y).passed


def test_a_layer_that_breaks_the_protocol_is_named():
    only_y = _custom("only_y", _same_shape, lambda p, x, key=None, train=False: x, lambda p, c, dy: ({}, dy))
    only_params = _custom("only_params", lambda k, s, d=jnp.float32: {"a": 1, "b": 2, "c": 3}, None, None)
    x = jnp.ones((2, 3))
    with pytest.raises(TypeError, match=r"layer 0 \(only_y_0\): forward.*must return \(y, cache\)"):
        fnn.serial(only_y).apply([{}], x)
    with pytest.raises(TypeError, match=r"layer 1 \(only_params_0\): init.*must return \(output_shape, params\)"):
        fnn.serial(L.Dense(3), only_params).init(KEY, (3,))


# Every loss, from logits and from probabilities, at a zero-initialised network: every logit is 0
# (for probabilities, every output 0.5), which is where autodiff of a max(z, 0) or |z| used to
# differ from the true derivative, and some true gradients are exactly 0.
ZERO_INIT_LOSSES = [
    ("sparse_categorical_crossentropy", {"from_logits": True}, "sparse", None),
    ("sparse_categorical_crossentropy", {}, "sparse", "softmax"),
    ("categorical_crossentropy", {"from_logits": True}, "onehot", None),
    ("categorical_crossentropy", {}, "onehot", "softmax"),
    ("binary_crossentropy", {"from_logits": True}, "binary", None),
    ("binary_crossentropy", {}, "binary", "sigmoid"),
    ("binary_focal_crossentropy", {"from_logits": True}, "binary", None),
    ("binary_focal_crossentropy", {"from_logits": True, "gamma": 0.5}, "binary", None),
    ("binary_focal_crossentropy", {}, "binary", "sigmoid"),
    ("mean_squared_error", {}, "regression", None),
    ("hinge", {}, "binary", None),
]


@pytest.mark.parametrize("name,opts,kind,out", ZERO_INIT_LOSSES, ids=lambda v: v if isinstance(v, str) else "")
def test_a_zero_initialised_network_passes_gradcheck(name, opts, kind, out):
    c = 1 if kind == "binary" else 3
    net = fnn.mlp([4, c], activation="tanh", kernel_initializer="zeros", output_activation=out)
    shapes = jax.eval_shape(lambda: net.init(KEY, (5,), jnp.float64))
    params = jax.device_put(jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes))
    x, y = _data(6, 5, c, kind="sparse" if kind in ("sparse", "onehot") else kind)
    if kind == "sparse":
        y = np.arange(6) % 3  # balanced: the bias gradient is exactly 0
    if kind == "onehot":
        y = np.eye(3)[np.arange(6) % 3]
    report = fnn.gradcheck(net, fnn.losses.get(name, **opts), params, x, y)
    assert report.passed, str(report)


def test_with_manual_vjp_takes_key_and_train_per_call_and_names_forward_mode():
    net = fnn.serial(L.Dense(6, "tanh"), L.Dropout(0.5), L.Dense(2))
    params, (x, _y) = _params(net, (3,)), _data(5, 3, 2, kind="regression")
    apply = fnn.with_manual_vjp(net)

    @jax.jit
    def run(params, x, k1, k2):
        return apply(params, x, key=k1, train=True), apply(params, x, key=k2, train=True), apply(params, x)

    @jax.jit  # the references: net.apply in a program of its own
    def reference(params, x, k1):
        return net.apply(params, x, key=k1, train=True), net.apply(params, x)

    a, b, ev = run(params, x, jax.random.PRNGKey(1), jax.random.PRNGKey(2))
    a_ref, ev_ref = reference(params, x, jax.random.PRNGKey(1))
    assert not np.allclose(a, b)  # the key is used: two keys, two masks
    np.testing.assert_allclose(a, a_ref)
    np.testing.assert_array_equal(ev, ev_ref)  # eval mode by default
    with pytest.raises(TypeError, match="forward-mode.*jax.grad.*jax.hessian"):
        jax.jvp(lambda xx: apply(params, xx), (x,), (np.ones(x.shape, x.dtype),))

    @jax.jit  # both Hessian-vector products in one program
    def hvps(xx):
        hvp = lambda f: jax.jvp(jax.grad(lambda z: jnp.sum(f(params, z) ** 2)), (xx,), (jnp.ones_like(xx),))[1]
        return hvp(apply), hvp(net.apply)

    hvp, hvp_auto = hvps(x)
    np.testing.assert_allclose(hvp, hvp_auto, rtol=1e-10)


def test_with_manual_vjp_under_linearize_transposes_and_refuses_only_the_tangent():
    """jax.linearize cannot be told from reverse mode when apply runs (jax.vjp linearizes too),
    so it succeeds; its linear function transposes into the hand-written backward, and only
    evaluating it on a tangent (forward mode) raises, JAX's own TypeError, as documented."""
    net = fnn.mlp([5, 3], activation="tanh")
    params = _params(net, (4,), jnp.float32)
    x = jax.device_put(np.linspace(-1, 1, 24).reshape(6, 4))
    apply = fnn.with_manual_vjp(net)
    y, f = jax.linearize(lambda q: apply(q, x), params)
    np.testing.assert_allclose(y, _tanh_mlp_numpy(params, np.asarray(x)), rtol=1e-12)
    (grads,) = jax.linear_transpose(f, params)(np.ones(y.shape, y.dtype))
    want = jax.jit(jax.grad(lambda q: jnp.sum(net.apply(q, x))))(params)  # the reference: one program
    chex.assert_trees_all_close(grads, want, rtol=1e-6)  # float32
    tangent = jax.tree.map(lambda a: np.ones(a.shape, a.dtype), params)
    for evaluate in (f, jax.jit(f)):
        with pytest.raises(TypeError, match=r"^can't apply forward-mode autodiff \(jvp\) to a custom_vjp function"):
            evaluate(tangent)
    with pytest.raises(TypeError, match="fnn.with_manual_vjp: forward-mode.*jax.grad"):
        jax.jacfwd(lambda q: apply(q, x))(params)  # fnn's own message, as for jax.jvp


def _tanh_mlp_numpy(params, x):
    """``fnn.mlp([h, c], activation="tanh")``'s forward in float64 NumPy (no program to compile)."""
    (p0, p1) = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    return np.tanh(x @ p0["w"] + p0["b"]) @ p1["w"] + p1["b"]


def test_a_custom_loss_through_the_documented_door():
    tau = 0.9
    pinball = fnn.losses.custom(
        "pinball",
        lambda t, p: jnp.mean(jnp.maximum(tau * (t - p), (tau - 1) * (t - p)), axis=-1),
        lambda t, p: jnp.where(t - p > 0, -tau, 1 - tau) / p.shape[-1],
    )
    net = fnn.mlp([6, 1], activation="tanh")
    rng = np.random.default_rng(3)
    x = rng.normal(size=(128, 3))
    y = x[:, :1] + rng.normal(size=(128, 1))
    params = _params(net, (3,))
    assert fnn.gradcheck(net, pinball, params, x[:16], y[:16]).passed
    e = y[:16] - _tanh_mlp_numpy(params, x[:16])
    np.testing.assert_allclose(
        jax.jit(pinball)(y[:16], y[:16] - e), np.mean(np.maximum(tau * e, (tau - 1) * e)), rtol=1e-12
    )
    res = fnn.fit(
        net, params, fnn.optimizers.adam(2e-2), pinball, x, y, batch_size=32, epochs=40, verbose=0, grad="manual"
    )
    assert res.history["loss"][-1] < 0.6 * res.history["loss"][0]
    below = np.mean(y < _tanh_mlp_numpy(res.params, x))
    assert 0.8 < below < 0.97  # the 90th percentile, roughly
    assert fnn.evaluate(net, res.params, pinball, x, y)["loss"] == pytest.approx(res.history["loss"][-1], rel=0.1)
    with pytest.raises(TypeError, match="fn must be callable"):
        fnn.losses.custom("nope", 3)


def test_gradcheck_under_a_disallowing_transfer_guard_reports_as_unguarded():
    # the finite differences' indices and step go to the device by jax.device_put, the losses and
    # gradients come back by jax.device_get: a caller's jax.transfer_guard("disallow") allows both
    net = fnn.mlp([3, 2])
    params = net.init(jax.random.PRNGKey(0), (4,))
    x, y = jax.device_put((np.random.default_rng(0).normal(size=(5, 4)), np.arange(5) % 2))
    loss = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)
    expected = fnn.gradcheck(net, loss, params, x, y)
    with jax.transfer_guard("disallow"):
        report = fnn.gradcheck(net, loss, params, x, y)
    assert report.passed and report.rows == expected.rows and report.loss_value == expected.loss_value


def test_a_batch_of_other_sample_counts_is_refused_naming_x_and_y_before_the_forward_runs(compiles):
    """value_and_grad's function, train_step and eval_step read the sample counts from the
    shapes (while tracing, under jit too): x and y named, in fit's words, nothing compiled. A
    plain callable loss in autodiff mode may take targets of its own shape (one target vector)."""
    net = fnn.mlp([5, 3])
    params = net.init(jax.random.PRNGKey(0), (4,))
    x, y = np.ones((6, 4)), np.zeros((5, 3))
    words = r"^x and y must hold the same number of samples; got 6 in x and 5 in y"
    sgd = fnn.optimizers.sgd(0.1)
    state, step_params = sgd.init(params), jax.tree.map(jnp.array, params)  # (the step donates them)
    calls = {
        "manual": lambda: fnn.value_and_grad(net, "mse")(params, x, y),
        "autodiff": lambda: fnn.value_and_grad(net, "mse", mode="autodiff")(params, x, y),
        "jit": lambda: jax.jit(fnn.value_and_grad(net, "mse"))(params, x, y),
        "train_step": lambda: fnn.train_step(net, "mse", sgd)(step_params, state, x, y),
        "eval_step": lambda: fnn.eval_step(net, "mse")(params, x, y),
    }
    for name, call in calls.items():
        with compiles() as c, pytest.raises(ValueError, match=words):
            call()
        assert c.count == 0, name
    # a custom loss may read targets of its own shape (here none at all), as may a plain callable
    ignores = fnn.losses.custom("output_norm", lambda t, p: jnp.sum(p**2, axis=-1))
    value, _ = fnn.value_and_grad(net, ignores)(params, x, np.zeros(1))
    assert float(value) == pytest.approx(float(jnp.mean(jnp.sum(net.apply(params, x) ** 2, axis=-1))), rel=1e-12)
    target = jnp.array([1.0, -1.0, 0.5])  # one vector every sample's output is pulled toward
    plain = lambda t, p: jnp.mean((p - t) ** 2)
    value, _ = fnn.value_and_grad(net, plain, mode="autodiff")(params, x, target)
    assert float(value) == pytest.approx(float(plain(target, net.apply(params, x))), rel=1e-12)


def _relu_dense(mask_db: bool) -> fnn.Layer:
    """A relu Dense of one unit, its bias gradient right (``mask_db``) or missing the relu's mask."""

    def init(key, s, dtype=jnp.float32):
        return (1,), {"w": jnp.ones((s[-1], 1), dtype), "b": jnp.zeros((1,), dtype)}

    def forward(p, x, *, key=None, train=False):
        z = x @ p["w"] + p["b"]
        return jax.nn.relu(z), (x, z)

    def backward(p, cache, dy):
        x, z = cache
        dz = dy * (z > 0)
        return {"w": x.T @ dz, "b": (dz if mask_db else dy).sum(0)}, dz @ p["w"].T

    return fnn.Layer(init, forward, backward, "relu_dense")


def test_a_kink_of_one_sample_does_not_hide_a_wrong_gradient_made_on_another():
    """Sample 0 sits on the relu's kink (a blank input row, a zero bias), so the loss's one-sided
    slopes along the bias are 2/3 and 4/3; a bias gradient that forgets the mask (1, from sample
    2's z = -1, which is smooth) lies between them and passed, its error against jax.grad shown
    as 0. Each piece is now also checked with one sample's cotangent at a time."""
    y = jnp.array([[-1.0], [1.0], [0.5]])
    x = jnp.array([[0.0], [2.0], [-1.0]])
    for mask_db, passes in ((False, False), (True, True)):
        net = fnn.serial(_relu_dense(mask_db))
        params = net.init(jax.random.PRNGKey(0), (1,), jnp.float64)
        report = fnn.gradcheck(net, "mse", params, x, y)
        assert report.passed is passes, str(report)
        if not passes:
            assert [r.leaf for r in report.rows if not r.passed] == ["b"]
            assert report.at_fault[0][0] == "relu_dense_0" and report.rows[0].manual_vs_autodiff > 0.3


def test_a_custom_loss_s_own_grad_is_checked_against_autodiff_of_its_fn_even_with_kinks_on_every_sample():
    """jax.grad of a custom loss given ``grad`` runs that grad, so autodiff was no check of it and
    only the slopes judged: with one output of each sample exactly at |p - t|'s kink, the
    slopes of every entry parted and a grad 5 % off on the smooth outputs passed; with
    ``fd_max_entries=0`` a grad 50 % off passed. Autodiff now differentiates the loss's fn."""
    fn = lambda t, p: jnp.sum(jnp.abs(p - t) + 0.5 * p**2, -1)
    net = fnn.serial(fnn.Dense(4, activation="tanh"), fnn.Dense(2))
    params = net.init(jax.random.PRNGKey(10), (3,), jnp.float64)
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 3), jnp.float64)
    y = net.apply(params, x) + jnp.array([[0.0, 0.3], [-0.4, 0.0]])  # a kink on each sample and output
    for k, passes in ((1.05, False), (1.0, True)):
        loss = fnn.losses.custom("abs_sq", fn, lambda t, p, k=k: jnp.sign(p - t) + k * p)
        report = fnn.gradcheck(net, loss, params, x, y)
        assert report.passed is passes, str(report)
    sq = lambda t, p: jnp.mean((p - t) ** 2, -1)
    for k, passes in ((3.0, False), (2.0, True)):
        loss = fnn.losses.custom("sq", sq, lambda t, p, k=k: k * (p - t) / p.shape[-1])
        assert fnn.gradcheck(net, loss, params, x, y, fd_max_entries=0).passed is passes
    # a fn jax differentiates wrongly (stop_gradient) beside a right grad: finite differences side with it
    halved = lambda t, p: jnp.mean(jax.lax.stop_gradient(p - t) * (p - t), -1)
    half = fnn.losses.custom("half", halved, lambda t, p: 2 * (p - t) / p.shape[-1])
    assert fnn.gradcheck(net, half, params, x, y).passed


def test_rtol_fd_of_0_asks_for_equality_and_does_not_switch_the_check_off():
    """Its floor, the loss's rounding over ``h rtol_fd``, was inf: every error against finite
    differences read 0, and a custom loss whose own gradient is 1.5x the true one passed (jax.grad
    runs that gradient too, so finite differences are its only independent check)."""
    sq = lambda t, p: jnp.mean((p - t) ** 2, axis=-1)
    wrong = fnn.losses.custom("three_halves", sq, lambda t, p: 3.0 * (p - t) / p.shape[-1])
    net = fnn.mlp([2])
    params = net.init(jax.random.PRNGKey(0), (3,), jnp.float64)
    x, y = jax.random.normal(jax.random.PRNGKey(1), (4, 3)), jax.random.normal(jax.random.PRNGKey(2), (4, 2))
    for rtol_fd in (1e-6, 0.0):
        report = fnn.gradcheck(net, wrong, params, x, y, rtol_fd=rtol_fd)
        assert not report.passed and report.max_error_fd > 0.3, str(report)
        assert np.isfinite(report.floor_fd)


def test_gradcheck_refuses_bad_tolerances_entry_counts_and_seeds_naming_them(compiles):
    net = fnn.mlp([2])
    params = net.init(jax.random.PRNGKey(0), (3,))
    x, y = np.ones((4, 3)), np.zeros((4, 2))
    for kwargs, error, words in (
        ({"fd_max_entries": -1}, ValueError, r"^fd_max_entries must be >= 0, got -1$"),
        ({"fd_max_entries": 2.5}, TypeError, r"^fd_max_entries must be an int, got float 2.5$"),
        ({"rtol_fd": -1.0}, ValueError, r"^rtol_fd must be"),
        ({"rtol_fd": float("nan")}, ValueError, r"^rtol_fd must be"),
        ({"rtol_autodiff": "1e-8"}, TypeError, r"^rtol_autodiff must be a number >= 0, got str '1e-8'$"),
        ({"rtol_autodiff": True}, TypeError, r"^rtol_autodiff must be a number >= 0, got bool True$"),
        ({"seed": -3}, ValueError, r"^seed must be what numpy.random.default_rng takes \(an int >= 0\); got -3$"),
        ({"seed": "a"}, TypeError, r"^seed must be what numpy.random.default_rng takes"),
    ):
        with compiles() as c, pytest.raises(error, match=words):
            fnn.gradcheck(net, "mse", params, x, y, **kwargs)
        assert c.count == 0, kwargs
    assert fnn.gradcheck(net, "mse", params, x, y, fd_max_entries=0, rtol_fd=0.0).passed  # nothing differenced
    # what NumPy and the old checks took stays welcome: a whole float, any seed of NumPy's, inf
    assert fnn.gradcheck(net, "mse", params, x, y, fd_max_entries=4.0, seed=None, rtol_autodiff=np.inf).passed
    assert fnn.gradcheck(net, "mse", params, x, y, fd_max_entries=jnp.int32(3), seed=np.random.SeedSequence(1)).passed
