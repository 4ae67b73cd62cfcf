"""predict against a NumPy float64 forward pass, over batch sizes that split the data every way
(1, 7, N, > N); the kinds and dtypes out follow those in; evaluation mode; one compiled program
per network, batch size and shapes; bad input named before anything is compiled. And
``net.apply`` on NumPy arrays and nested lists.

Every network here is built once at module level: its programs are compiled once per batch size
and shapes, and tests share them.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn

KEY = jax.random.PRNGKey(0)
N, D = 10, 4
NET = fnn.mlp([3, 2], activation="tanh")
PARAMS = NET.init(KEY, (D,), jnp.float64)
X = np.random.default_rng(0).normal(size=(N, D))


def _numpy_forward(p, x):
    """tanh-Dense(3) -> Dense(2) in float64 NumPy, one row at a time (no batching at all)."""
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), p)
    rows = [np.tanh(r @ p[0]["w"] + p[0]["b"]) @ p[1]["w"] + p[1]["b"] for r in np.asarray(x, np.float64)]
    return np.stack(rows)


@pytest.mark.parametrize("batch_size", [1, 7, N, 25, None])
def test_predict_equals_the_forward_pass_for_every_batch_split(batch_size):
    ref = _numpy_forward(PARAMS, X)
    y = fnn.predict(NET, PARAMS, X, batch_size=batch_size)
    assert isinstance(y, np.ndarray) and y.dtype == np.float64 and y.shape == (N, 2)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(y, np.asarray(NET.apply(PARAMS, X)), rtol=1e-12, atol=1e-14)


def test_integer_inputs_are_computed_in_the_params_dtype(compiles):
    """int32 x under float64 params: predict, evaluate and fit take it as the float64 values it
    holds (a LayerNorm first computed its statistics in float32, int32 promoting with float32),
    through the same programs as float64 x."""
    net = fnn.serial(fnn.LayerNorm(), fnn.Dense(2))
    params = net.init(KEY, (D,), jnp.float64)
    xi = np.random.default_rng(3).integers(-5, 6, size=(N, D)).astype(np.int32)
    xf, y = xi.astype(np.float64), np.arange(N) % 2
    np.testing.assert_array_equal(fnn.predict(net, params, xi), fnn.predict(net, params, xf))
    loss = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)
    assert fnn.evaluate(net, params, loss, xi, y) == fnn.evaluate(net, params, loss, xf, y)
    kw = dict(batch_size=4, epochs=1, shuffle=False, verbose=0)
    a = fnn.fit(net, params, "sgd", loss, xf, y, **kw)
    with compiles() as c:
        b = fnn.fit(net, params, "sgd", loss, xi, y, **kw)
    assert c.count == 0  # the same epoch program (converted on the host)
    chex.assert_trees_all_equal(a.params, b.params)
    chex.assert_trees_all_equal(a.params, fnn.fit(net, params, "sgd", loss, jax.device_put(xi), y, **kw).params)


def test_kinds_in_are_kinds_out():
    ref = _numpy_forward(PARAMS, X)
    y = fnn.predict(NET, PARAMS, jax.device_put(X), batch_size=7)
    assert isinstance(y, jax.Array) and y.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(y), ref, rtol=1e-12, atol=1e-14)
    y = fnn.predict(NET, PARAMS, X.tolist(), batch_size=7)  # nested lists: NumPy out, as Keras
    assert isinstance(y, np.ndarray) and y.dtype == np.float64
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-14)
    # float32 params and inputs stay float32, with x64 on
    p32 = jax.tree.map(lambda a: jax.device_put(np.asarray(a).astype(np.float32)), PARAMS)
    y = fnn.predict(NET, p32, X.astype(np.float32), batch_size=7)
    assert isinstance(y, np.ndarray) and y.dtype == np.float32
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)
    # float64 data for float32 params computes in float32, as evaluate scores it (and as Keras
    # predicts): the same numbers as the float32 data
    for x in (X, jax.device_put(X)):
        y64 = fnn.predict(NET, p32, x, batch_size=7)
        assert y64.dtype == np.float32
        np.testing.assert_array_equal(np.asarray(y64), y)
    # a network without float params has no dtype of its own: x's is kept (as net.apply)
    flat = fnn.serial(fnn.Flatten())
    np.testing.assert_array_equal(fnn.predict(flat, flat.init(KEY, (D,)), X + 1e-12), X + 1e-12)
    mse = fnn.evaluate(NET, p32, "mse", X, np.zeros((N, 2)), batch_size=7)["loss"]
    np.testing.assert_allclose(mse, np.mean(np.asarray(y, np.float64) ** 2), rtol=1e-6)
    assert fnn.train.predict is fnn.predict


def test_a_second_call_with_the_same_shapes_compiles_nothing(compiles):
    fnn.predict(NET, PARAMS, X, batch_size=4)
    x2 = np.random.default_rng(1).normal(size=(N, D))  # new values, same shapes
    p2 = NET.init(jax.random.PRNGKey(1), (D,), jnp.float64)
    with compiles() as c:
        y = fnn.predict(NET, p2, x2, batch_size=4)
        # a new network object built from the same description shares the program
        fnn.predict(fnn.mlp([3, 2], activation="tanh"), p2, x2, batch_size=4)
    assert c.count == 0
    np.testing.assert_allclose(y, _numpy_forward(p2, x2), rtol=1e-12, atol=1e-14)


def test_a_second_call_with_the_same_shapes_checks_the_values_only(monkeypatch):
    """The params' and x's checks against the network read their structure, shapes, dtypes
    and kinds only: they run once for those (a second call of one sample spent most of its
    time on them); the values are checked on every call, and other dtypes or shapes afresh."""
    import fnn._network_checks as checks

    calls: list = []
    original = checks.check_64bit_arrays  # the first of them
    monkeypatch.setattr(checks, "check_64bit_arrays", lambda *a: calls.append(a[1:]) or original(*a))
    x = np.concatenate([X, X[:1]])  # a shape no other test predicts on
    for _ in range(3):
        fnn.predict(NET, PARAMS, x)
    assert len(calls) == 1
    nan_x = x.copy()
    nan_x[2, 0] = np.inf
    with pytest.raises(ValueError, match=r"x contains 1 NaN/inf value\(s\), the first at index \(2, 0\)"):
        fnn.predict(NET, PARAMS, nan_x)
    said = r"params\[0\]\['b'\] is a float64 jax array, but jax_enable_x64 is off"
    with jax.enable_x64(False), pytest.raises(ValueError, match=said):
        fnn.predict(NET, PARAMS, x)
    fnn.predict(NET, jax.tree.map(lambda a: np.asarray(a, np.float32), PARAMS), x)  # NumPy float32: checked
    assert len(calls) == 3


def test_evaluation_mode_dropout_off_and_inputs_of_higher_rank():
    net = fnn.serial(fnn.Flatten(), fnn.Dense(3, "tanh"), fnn.Dropout(0.5), fnn.Dense(2))
    params = net.init(KEY, (2, 2), jnp.float64)
    x = X.reshape(N, 2, 2)
    y = fnn.predict(net, params, x, batch_size=3)
    # Dropout in evaluation mode is the identity: the same as the network without it
    ref = _numpy_forward([params[1], params[3]], X)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-14)
    assert net.needs_key  # and no key was needed


def test_bad_input_is_named_before_anything_is_compiled(compiles):
    no_b = [{"w": PARAMS[0]["w"]}, PARAMS[1]]
    wide = fnn.mlp([5, 2]).init(KEY, (D,), jnp.float64)  # another hidden width: x fits, the shapes do not
    nan_x = X.copy()
    nan_x[3, 1] = np.nan
    with compiles() as c:
        with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
            fnn.predict(NET, PARAMS, X, batch_size=0)
        with pytest.raises(TypeError, match="batch_size must be an int"):
            fnn.predict(NET, PARAMS, X, batch_size=2.5)
        with pytest.raises(ValueError, match=r"x must be \(samples, \*input_shape\).*shape \(4,\)"):
            fnn.predict(NET, PARAMS, X[0])
        with pytest.raises(ValueError, match="x is empty"):
            fnn.predict(NET, PARAMS, X[:0])
        with pytest.raises(TypeError, match="x must hold numbers"):
            fnn.predict(NET, PARAMS, np.array([["a"] * D]))
        with pytest.raises(ValueError, match=r"x contains 1 NaN/inf value\(s\), the first at index \(3, 1\)"):
            fnn.predict(NET, PARAMS, nan_x)
        with pytest.raises(
            ValueError, match=r"x of shape \(10, 5\) does not fit the network.*expects 4 input features"
        ):
            fnn.predict(NET, PARAMS, np.ones((N, D + 1)))
        with pytest.raises(ValueError, match=r"params do not have the network's structure.*missing params\[0\]\['b'\]"):
            fnn.predict(NET, no_b, X)
        with pytest.raises(ValueError, match=r"params\[0\]\['w'\] has shape \(4, 5\), the network builds \(4, 3\)"):
            fnn.predict(NET, wide, X)
        # the params' own fault, not x's: a list too short, params still stacked by fit_many
        with pytest.raises(
            ValueError, match=r"^params must be a list with one entry per layer \(\d\), got a list of length 1$"
        ):
            fnn.predict(NET, PARAMS[:1], X)
        stacked = jax.tree.map(lambda a: np.stack([a, a]), PARAMS)
        with pytest.raises(
            ValueError, match=r"^params do not fit the network .*params\[0\]\['w'\] has shape \(2, 4, 3\)"
        ):
            fnn.predict(NET, stacked, X)
    assert c.count == 0


def test_apply_takes_numpy_arrays_and_nested_lists():
    ref = _numpy_forward(PARAMS, X)
    for x in (X, X.tolist(), jax.device_put(X)):
        y = NET.apply(PARAMS, x)
        assert isinstance(y, jax.Array) and y.dtype == jnp.float64
        np.testing.assert_allclose(np.asarray(y), ref, rtol=1e-12, atol=1e-14)
    y, _ = NET.forward(PARAMS, X[:2].tolist())
    np.testing.assert_allclose(np.asarray(y), ref[:2], rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match=r"layer 0 \(dense_0\).*expects 4 input features, got 3"):
        NET.apply(PARAMS, [[1.0, 2.0, 3.0]])


# predict and evaluate inside the user's jax.jit, vmap, grad and lax.scan: the same numbers as
# the plain call; the structural checks at trace time, the value checks for concrete arguments.

SCE = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)
LABELS = np.arange(N) % 2


def _params_in(dtype):
    """PARAMS in ``dtype``, converted by NumPy (an eager ``astype`` compiles a program per shape)."""
    return jax.tree.map(lambda a: jax.device_put(np.asarray(a).astype(dtype)), PARAMS)


def _evaluate(p, x, y, w):
    return fnn.evaluate(
        NET, p, SCE, x, y, metrics=["accuracy"], batch_size=4, sample_weight=w, weighted_metrics=["accuracy"]
    )


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32])
def test_predict_under_jit_vmap_scan_and_grad_gives_the_plain_call_s_outputs(dtype):
    p, x = _params_in(dtype), X.astype(dtype)
    ref = fnn.predict(NET, p, x, batch_size=4)
    # the very pass, inlined in the caller's program: the same bits
    np.testing.assert_array_equal(jax.jit(lambda p, x: fnn.predict(NET, p, x, batch_size=4))(p, jax.device_put(x)), ref)
    y = jax.jit(lambda p: fnn.predict(NET, p, x, batch_size=4))(p)  # params traced, NumPy x concrete
    assert isinstance(y, jax.Array) and y.dtype == dtype  # traced: no host copy to return
    np.testing.assert_array_equal(y, ref)
    static = jax.jit(lambda p, x, b: fnn.predict(NET, p, x, batch_size=b), static_argnums=2)
    np.testing.assert_array_equal(static(p, x, 3), fnn.predict(NET, p, x, batch_size=3))
    xs = np.stack([x, x[::-1]])
    refs = np.stack([ref, fnn.predict(NET, p, xs[1], batch_size=4)])
    scanned = jax.lax.scan(lambda c, xb: (c, fnn.predict(NET, p, xb, batch_size=4)), 0, xs)[1]
    np.testing.assert_array_equal(scanned, refs)
    # vmap makes each matmul one with a batch axis, which XLA sums in its own order: a few ulp
    ulp = float(jnp.finfo(dtype).eps)
    vmapped = jax.vmap(lambda xb: fnn.predict(NET, p, xb, batch_size=4))(xs)
    np.testing.assert_allclose(vmapped, refs, rtol=4 * ulp, atol=4 * ulp)
    g = jax.grad(lambda p: fnn.predict(NET, p, x, batch_size=4).sum())(p)
    want = jax.jit(jax.grad(lambda p: NET.apply(p, x).sum()))(p)  # the reference: one program
    chex.assert_trees_all_close(g, want, rtol=4 * ulp, atol=4 * ulp)


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32])
def test_evaluate_under_jit_vmap_and_grad_gives_the_plain_call_s_values(dtype, tmp_path):
    from fnn._executables import ExecutableStore, using

    p, x = _params_in(dtype), X.astype(dtype)
    w = np.linspace(0.0, 1.0, N)
    ref = _evaluate(p, x, LABELS, w)
    # In the caller's program XLA may fold the division by the sample count into a product by
    # its reciprocal (0.3 as 3 * 0.1): 1 ulp apart, otherwise the same pass.
    ulp = float(jnp.finfo(dtype).eps)

    def assert_values(got, want):
        assert sorted(got) == sorted(want) == ["accuracy", "loss", "weighted_accuracy"]
        for k, v in got.items():
            assert isinstance(v, jax.Array) and v.dtype == dtype
            np.testing.assert_allclose(np.asarray(v), want[k], rtol=2 * ulp, atol=0)

    assert_values(jax.jit(_evaluate)(p, *jax.device_put((x, LABELS, w))), ref)
    assert_values(jax.jit(lambda p: _evaluate(p, x, LABELS, w))(p), ref)  # params traced, data concrete
    with using(ExecutableStore(str(tmp_path), "ns")):  # the CLI's store: a traced pass is not stored
        assert_values(jax.jit(lambda p: _evaluate(p, x, LABELS, w))(p), ref)
    xs = np.stack([x, x[::-1]])
    vmapped = jax.vmap(_evaluate, in_axes=(None, 0, None, None))(p, xs, LABELS, w)
    for i, xi in enumerate(xs):  # batched matmuls: a few ulp (as predict's)
        want = _evaluate(p, xi, LABELS, w)
        for k, v in vmapped.items():
            np.testing.assert_allclose(np.asarray(v)[i], want[k], rtol=4 * ulp, atol=4 * ulp)
    # the gradient of the loss: that of the mean of the weighted per-sample losses (summed
    # batch by batch, in another order: a few ulp of the largest entry)
    g = jax.grad(lambda p: _evaluate(p, x, LABELS, w)["loss"])(p)
    want = jax.jit(jax.grad(lambda p: SCE(LABELS, NET.apply(p, x), sample_weight=w.astype(dtype))))(p)
    chex.assert_trees_all_close(g, want, rtol=16 * ulp, atol=16 * ulp)


def test_under_jit_the_structural_checks_raise_at_trace_time():
    def jitted(**kw):
        return jax.jit(lambda p, x: fnn.predict(NET, p, x, **kw))

    wide = fnn.mlp([5, 2]).init(KEY, (D,), jnp.float64)
    with pytest.raises(ValueError, match=r"x of shape \(10, 5\) does not fit the network.*expects 4 input features"):
        jitted()(PARAMS, np.ones((N, D + 1)))
    with pytest.raises(ValueError, match="x is empty"):
        jitted()(PARAMS, np.ones((0, D)))
    with pytest.raises(ValueError, match=r"x must be \(samples, \*input_shape\).*shape \(4,\)"):
        jitted()(PARAMS, np.ones(D))
    with pytest.raises(TypeError, match="x must hold real numbers; got dtype complex128"):
        jitted()(PARAMS, np.ones((N, D), complex))
    with pytest.raises(ValueError, match=r"params\[0\]\['w'\] has shape \(4, 5\), the network builds \(4, 3\)"):
        jitted()(wide, X)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        jitted(batch_size=0)(PARAMS, X)
    with pytest.raises(TypeError, match=r"batch_size must be an int, got a traced int.*static argument"):
        jax.jit(lambda p, x, b: fnn.predict(NET, p, x, batch_size=b))(PARAMS, X, 4)
    evaluate = jax.jit(_evaluate)
    with pytest.raises(ValueError, match="x and y must hold the same number of samples; got 10 in x and 9 in y"):
        evaluate(PARAMS, X, LABELS[:-1], None)
    with pytest.raises(
        ValueError, match=r"sample_weight must have one weight per sample, shape \(10,\); got shape \(9,\)"
    ):
        evaluate(PARAMS, X, LABELS, np.ones(N - 1))
    with pytest.raises(TypeError, match="sample_weight must hold real numbers, got dtype complex128"):
        evaluate(PARAMS, X, LABELS, np.ones(N, complex))
    with pytest.raises(ValueError, match=r"y: sparse_categorical_crossentropy: y_true shape \(10, 3\) does not match"):
        evaluate(PARAMS, X, np.zeros((N, 3), np.int32), None)


def test_under_jit_concrete_arguments_keep_their_value_checks_and_traced_ones_skip_them():
    nan_x = X.copy()
    nan_x[2, 1] = np.nan
    out_of_range = LABELS.copy()
    out_of_range[3] = 2
    with pytest.raises(ValueError, match=r"x contains 1 NaN/inf value\(s\), the first at index \(2, 1\)"):
        jax.jit(lambda p: fnn.predict(NET, p, nan_x))(PARAMS)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\) .*got \[2\]"):
        jax.jit(lambda p: _evaluate(p, X, out_of_range, None))(PARAMS)
    with pytest.raises(ValueError, match=r"sample_weight must be finite and >= 0; sample_weight\[0\] is -1.0"):
        jax.jit(lambda p: _evaluate(p, X, LABELS, -np.ones(N)))(PARAMS)
    # traced values cannot be read: the pass computes on them what the network computes
    y = np.asarray(jax.jit(lambda p, x: fnn.predict(NET, p, x))(PARAMS, nan_x))
    assert np.isnan(y[2]).all() and np.isfinite(np.delete(y, 2, axis=0)).all()
    logs = jax.jit(lambda y: _evaluate(PARAMS, X, y, None))(out_of_range)  # one_hot(2) of 2 classes: a zero row
    assert np.isfinite(np.asarray(logs["loss"]))


def test_a_traced_call_leaves_the_value_checks_of_later_plain_calls_in_place():
    """The passes and the checks of shapes are cached on shapes; the values are not: NaN data
    traced through first is still refused by a plain call of the same shapes."""
    x = np.concatenate([X, X[:3]])  # shapes no other test uses
    y = np.concatenate([LABELS, LABELS[:3]])
    x[4, 0] = np.inf
    jax.jit(lambda p, x: fnn.predict(NET, p, x))(PARAMS, jax.device_put(x))
    jax.jit(lambda p, x, y: _evaluate(p, x, y, None))(PARAMS, *jax.device_put((x, y)))
    said = r"x contains 1 NaN/inf value\(s\), the first at index \(4, 0\)"
    for bad in (x, jax.device_put(x)):
        with pytest.raises(ValueError, match=said):
            fnn.predict(NET, PARAMS, bad)
        with pytest.raises(ValueError, match=said):
            _evaluate(PARAMS, bad, y, None)
