"""fnn.metrics against NumPy float64 formulas written here from Keras's definitions."""

import collections
import dataclasses
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fnn
from fnn import losses as fnn_losses, metrics

RNG = np.random.default_rng(0)


# ---------------------------------------------------------------- NumPy references (float64)


def ref_binary(y_true, y_pred, threshold=0.5):
    return np.mean(np.asarray(y_true, float).reshape(-1) == (np.asarray(y_pred).reshape(-1) > threshold))


def ref_top_k(labels, y_pred, k):
    # Keras: rank of the true class = 1 + number of strictly larger scores.
    at = y_pred[np.arange(len(labels)), labels]
    rank = 1 + np.sum(y_pred > at[:, None], axis=1)
    return np.mean(rank <= k)


# ---------------------------------------------------------------- pure functions


@pytest.mark.parametrize(
    "shape_true,shape_pred", [((12,), (12,)), ((12, 1), (12, 1)), ((12,), (12, 1)), ((12, 1), (12,)), ((6, 3), (6, 3))]
)
def test_binary_accuracy_shapes_and_threshold(shape_true, shape_pred):
    n = int(np.prod(shape_true))
    y_true = RNG.integers(0, 2, n).astype(float).reshape(shape_true)
    y_pred = RNG.uniform(size=n).reshape(shape_pred)
    # one compiled program for both thresholds
    at_half, at_07 = jax.jit(
        lambda t, p: (metrics.binary_accuracy(t, p), metrics.binary_accuracy(t, p, threshold=0.7))
    )(y_true, y_pred)
    assert float(at_half) == pytest.approx(ref_binary(y_true, y_pred))
    assert float(at_07) == pytest.approx(ref_binary(y_true, y_pred, 0.7))


def test_binary_accuracy_is_strictly_greater_and_logits_cut_at_zero():
    y_true = np.array([0.0, 1.0, 1.0, 0.0])
    probs = np.array([0.5, 0.5, 0.9, 0.2])
    logits = np.log(probs / (1 - probs))
    z = np.linspace(-3, 3, 25)
    labels = (RNG.uniform(size=25) > 0.5).astype(float)

    @jax.jit  # the three accuracies in one compiled program
    def run(y_true, probs, logits, labels, z):
        return (
            metrics.binary_accuracy(y_true, probs),
            metrics.binary_accuracy(y_true, logits, from_logits=True),
            metrics.binary_accuracy(labels, z, threshold=0.7, from_logits=True),
        )

    on_probs, on_logits, on_z = run(y_true, probs, logits, labels, z)
    # 0.5 is not > 0.5: predicted 0, so the second sample is a miss.
    assert float(on_probs) == 0.75
    assert float(on_logits) == 0.75
    # A logit threshold follows the probability one: sigmoid(z) > 0.7 <=> z > log(0.7/0.3).
    p = 1 / (1 + np.exp(-z))
    assert float(on_z) == pytest.approx(ref_binary(labels, p, 0.7))
    with pytest.raises(ValueError, match="threshold"):
        metrics.binary_accuracy(labels, z, threshold=1.5, from_logits=True)


@jax.jit
def _categorical_family(labels, one_hot, y_pred):
    """Every categorical metric of one example, in one program compiled once per shape."""
    return (
        metrics.categorical_accuracy(one_hot, y_pred),
        metrics.sparse_categorical_accuracy(labels, y_pred),
        metrics.sparse_categorical_accuracy(labels[:, None], y_pred),
        {
            k: (
                metrics.top_k_categorical_accuracy(one_hot, y_pred, k=k),
                metrics.sparse_top_k_categorical_accuracy(labels, y_pred, k=k),
            )
            for k in (1, 2, 5)
        },
    )


# Few distinct shapes (each new shape compiles the program again); values vary freely.
@settings(max_examples=20, deadline=None)
@given(shape=st.sampled_from([(1, 2), (9, 3), (9, 6)]), seed=st.integers(0, 10_000))
def test_categorical_family_matches_numpy(shape, seed):
    n, c = shape
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, n)
    # Rounded scores make ties common, exercising argmax's first-index rule and top-k ties.
    y_pred = np.round(rng.uniform(size=(n, c)), 1)
    one_hot = np.eye(c)[labels]
    want = np.mean(labels == np.argmax(y_pred, axis=1))
    categorical, sparse, sparse_n_1, top_k = _categorical_family(labels, one_hot, y_pred)
    assert float(categorical) == pytest.approx(want)
    assert float(sparse) == pytest.approx(want)
    assert float(sparse_n_1) == pytest.approx(want)
    for k in (1, 2, 5):
        want_k = ref_top_k(labels, y_pred, k)
        assert float(top_k[k][0]) == pytest.approx(want_k)
        assert float(top_k[k][1]) == pytest.approx(want_k)


def test_top_k_tie_counts_as_hit_and_nan_never():
    y_pred = np.array([[0.3, 0.3, 0.3, 0.1], [np.nan, 0.2, 0.1, 0.0]])
    labels = np.array([2, 0])
    top1, top3, top4 = jax.jit(
        lambda labels, y_pred: [metrics.sparse_top_k_categorical_accuracy(labels, y_pred, k=k) for k in (1, 3, 4)]
    )(labels, y_pred)
    # Sample 0: label ties with two others -> rank 1 -> hit even for k=1. Sample 1: a NaN at
    # the label ranks below every number (rank 4 of 4): a miss until k covers all classes.
    assert float(top1) == 0.5
    assert float(top3) == 0.5
    assert float(top4) == 1.0


@pytest.mark.parametrize("shape_true,shape_pred", [((8, 3), (8, 3)), ((8,), (8, 1)), ((8, 1), (8,))])
def test_regression_metrics(shape_true, shape_pred):
    y_true = RNG.normal(size=shape_true)
    y_pred = RNG.normal(size=shape_pred)
    err = y_pred.reshape(-1) - y_true.reshape(-1)  # elementwise, never an (N, N) broadcast
    mae, mse, rmse = jax.jit(lambda t, p: (metrics.mae(t, p), metrics.mse(t, p), metrics.rmse(t, p)))(y_true, y_pred)
    assert float(mae) == pytest.approx(np.mean(np.abs(err)), rel=1e-12)
    assert float(mse) == pytest.approx(np.mean(err**2), rel=1e-12)
    assert float(rmse) == pytest.approx(np.sqrt(np.mean(err**2)), rel=1e-12)
    assert metrics.mean_squared_error is metrics.mse


def test_shape_errors_name_the_arguments():
    with pytest.raises(ValueError, match="y_true .* y_pred"):
        metrics.mse(np.zeros((4, 2)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="one-hot"):
        metrics.categorical_accuracy(np.zeros(4), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="one integer label per sample"):
        metrics.sparse_categorical_accuracy(np.zeros((4, 3)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="k must be >= 1"):
        metrics.sparse_top_k_categorical_accuracy(np.zeros(4), np.zeros((4, 3)), k=0)


# ---------------------------------------------------------------- streaming form


def test_streamed_rmse_is_root_of_the_overall_mean_not_mean_of_batch_roots():
    y_true = RNG.normal(size=(10, 2))
    y_pred = y_true + RNG.normal(size=(10, 2)) * np.linspace(0.1, 3, 10)[:, None]
    m = metrics.get("rmse")
    batch = jax.jit(lambda t, p: (m.update(t, p), m(t, p)))  # compiled once per batch shape
    total = count = 0.0
    per_batch = []
    for lo, hi in [(0, 4), (4, 8), (8, 10)]:  # uneven last batch
        (s, c), value = batch(y_true[lo:hi], y_pred[lo:hi])
        total, count = total + float(s), count + float(c)
        per_batch.append(float(value))
    want = np.sqrt(np.mean((y_pred - y_true) ** 2))
    assert float(m.result(total, count)) == pytest.approx(want, rel=1e-12)
    assert abs(np.mean(per_batch) - want) > 1e-3  # the naive average is really different
    assert count == 20.0  # elements, as Keras's Mean counts them


def test_metric_is_hashable_by_value_and_jittable():
    a = metrics.get("top_k_categorical_accuracy", k=3)
    b = metrics.get("top_k_categorical_accuracy", k=3)
    assert a == b and hash(a) == hash(b)
    assert a != metrics.get("top_k_categorical_accuracy", k=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.name = "x"

    @jax.jit
    def partial(y_true, y_pred):
        return metrics.get("sparse_categorical_accuracy").update(y_true, y_pred)

    labels = np.array([0, 1, 2, 1])
    y_pred = np.eye(3)[[0, 1, 1, 1]]
    s, c = partial(labels, y_pred)
    chex.assert_shape((s, c), ())
    assert (float(s), float(c)) == (3.0, 4.0)
    r = jax.jit(metrics.get("rmse").result)(jnp.asarray(8.0), jnp.asarray(2.0))
    assert float(r) == 2.0
    assert math.isnan(float(metrics.get("mae").result(0.0, 0.0)))


def test_float32_inputs_give_float32_partials():
    m = metrics.get("mse")
    s, c = jax.jit(m.update)(np.ones((3, 2), np.float32), np.zeros((3, 2), jnp.bfloat16))
    assert s.dtype == jnp.float32 and c.dtype == jnp.float32
    assert float(s) == 6.0 and float(c) == 6.0


def test_custom_callables_per_sample_and_scalar():
    def abs_sum(y_true, y_pred):  # one score per sample
        return jnp.sum(jnp.abs(y_pred - y_true), axis=-1)

    def batch_mean(y_true, y_pred):  # already a batch mean: weighted by batch size
        return jnp.mean(y_pred - y_true)

    y_true, y_pred = np.zeros((5, 2)), np.arange(10.0).reshape(5, 2)
    m = metrics.get(abs_sum)
    assert m.name == "abs_sum"
    assert [float(v) for v in jax.jit(m.update)(y_true, y_pred)] == [45.0, 5.0]
    s, c = jax.jit(metrics.get(batch_mean).update)(y_true, y_pred)
    assert (float(s), float(c)) == (4.5 * 5, 5.0)


# ---------------------------------------------------------------- names and resolution


class _Loss:
    """Stand-in for an fnn.losses.Loss: a name, options, and the batch mean."""

    def __init__(self, name, from_logits=False):
        self.name, self.from_logits = name, from_logits

    def __call__(self, y_true, y_pred):
        return jnp.mean(jnp.square(y_pred - y_true))


@pytest.mark.parametrize(
    "loss,yt,yp,want",
    [
        ("binary_crossentropy", (8, 1), (8, 1), "_binary_matches"),
        ("binary_focal_crossentropy", (8, 3), (8, 3), "_binary_matches"),  # multi-label
        ("sparse_categorical_crossentropy", None, None, "_sparse_categorical_matches"),
        ("categorical_crossentropy", None, None, "_categorical_matches"),
        (_Loss("sparse_categorical_crossentropy"), None, None, "_sparse_categorical_matches"),
        (None, (8, 1), (8, 1), "_binary_matches"),  # output of size 1
        ("squared_hinge", (8,), (8,), "_binary_matches"),
        (None, (8,), (8, 5), "_sparse_categorical_matches"),  # rank one less
        (None, (8, 1), (8, 5), "_sparse_categorical_matches"),  # trailing 1
        ("hinge", (8, 5), (8, 5), "_categorical_matches"),  # one-hot
    ],
)
def test_accuracy_resolution(loss, yt, yp, want):
    m = metrics.get("accuracy", loss=loss, y_true_shape=yt, y_pred_shape=yp)
    assert m.scores.__name__ == want
    assert m.name == "accuracy"
    assert metrics.get("acc", loss=loss, y_true_shape=yt, y_pred_shape=yp).name == "acc"


@pytest.mark.parametrize("loss", ["mse", "mae", "huber", _Loss("mean_squared_error"), "poisson"])
def test_accuracy_with_a_regression_loss_is_refused(loss):
    """Exact equality of real numbers would silently report ~0: say so and name what fits."""
    with pytest.raises(ValueError, match=r"metric 'accuracy' means nothing for the regression loss .*'mae'"):
        metrics.get("accuracy", loss=loss, y_true_shape=(8, 1), y_pred_shape=(8, 1))
    assert metrics.get("binary_accuracy", loss=loss).name == "binary_accuracy"  # named, it is your call


def test_accuracy_follows_logits_of_the_loss():
    m = metrics.get("accuracy", loss=_Loss("binary_crossentropy", from_logits=True))
    assert dict(m.options)["from_logits"] is True
    logits, labels = np.array([-0.1, 0.2, 3.0]), np.array([0.0, 1.0, 1.0])
    assert float(jax.jit(m)(labels, logits)) == 1.0  # thresholded at 0, not at 0.5
    explicit = metrics.get("binary_accuracy", loss=_Loss("binary_crossentropy", True), from_logits=False)
    assert dict(explicit.options)["from_logits"] is False
    # from_logits is meaningless for argmax metrics and is dropped there, not an error.
    m = metrics.get("accuracy", loss="sparse_categorical_crossentropy", from_logits=True)
    assert m.options == ()


def test_names_aliases_and_errors():
    assert {"accuracy", "acc", "mae", "mean_absolute_error", "rmse", "root_mean_squared_error"} <= set(metrics.names())
    assert metrics.get("mean_absolute_error").scores is metrics.get("mae").scores
    assert metrics.get("mean_absolute_error").name == "mean_absolute_error"  # Keras keeps it
    with pytest.raises(ValueError, match="unknown metric 'f1'.*binary_accuracy.*rmse"):
        metrics.get("f1")
    with pytest.raises(TypeError, match="unknown option.*'k'"):
        metrics.get("mae", k=3)
    with pytest.raises(ValueError, match="pass loss="):
        metrics.get("accuracy")
    with pytest.raises(TypeError, match="name, a Metric or a callable"):
        metrics.get(3)
    with pytest.raises(TypeError, match="Metric instance"):
        metrics.get(metrics.get("mae"), k=1)


def test_resolve_dedupes_like_keras_and_reserves_loss():
    ms = metrics.resolve(["mae", "mae", "mse"], loss="mse")
    assert [m.name for m in ms] == ["mae", "mae_1", "mse"]
    assert metrics.resolve(None) == ()
    assert [m.name for m in metrics.resolve("rmse")] == ["rmse"]

    def loss(y_true, y_pred):
        return y_pred

    with pytest.raises(ValueError, match="reserved"):
        metrics.resolve([loss])


# ---------------------------------------------------------------- evaluate

Net = collections.namedtuple("Net", "apply")
LINEAR = Net(lambda p, x: x @ p["w"] + p["b"])


def _data(n=70, f=3, c=4):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, f))
    params = {"w": rng.normal(size=(f, c)), "b": rng.normal(size=c)}
    labels = rng.integers(0, c, n)
    return x, labels, params


class _SparseLoss(_Loss):
    """Labels against C outputs: mean squared error to the one-hot rows (easy to check)."""

    def __init__(self, c):
        super().__init__("sparse_categorical_crossentropy")
        self.c = c

    def __call__(self, y_true, y_pred):
        return jnp.mean(jnp.square(jax.nn.one_hot(y_true, self.c) - y_pred))


def test_evaluate_matches_numpy_over_all_samples():
    x, labels, params = _data()
    out = fnn.evaluate(
        LINEAR,
        params,
        _SparseLoss(4),
        x,
        labels,
        metrics=["accuracy", metrics.get("sparse_top_k_categorical_accuracy", k=2)],
        batch_size=32,
    )
    y_pred = x @ params["w"] + params["b"]
    assert out.keys() == {"loss", "accuracy", "sparse_top_k_categorical_accuracy"}
    assert out["loss"] == pytest.approx(np.mean((np.eye(4)[labels] - y_pred) ** 2), rel=1e-12)
    assert out["accuracy"] == pytest.approx(np.mean(np.argmax(y_pred, 1) == labels))
    assert out["sparse_top_k_categorical_accuracy"] == pytest.approx(ref_top_k(labels, y_pred, 2))


# One loss object for the family: evaluate caches its program on (network, loss, metrics, batch
# size capped at N), so batch_size=500 reuses the program of batch_size=70.
_MSE = _Loss("mse")


@pytest.mark.parametrize("batch_size", [None, 1, 7, 70, 500])
def test_evaluate_regression_any_batch_size(batch_size):
    x, _, params = _data(n=70, c=2)
    y = np.random.default_rng(2).normal(size=(70, 2))
    out = fnn.evaluate(LINEAR, params, _MSE, x, y, ["rmse", "mae"], batch_size=batch_size)
    err = x @ params["w"] + params["b"] - y
    assert out["loss"] == pytest.approx(np.mean(err**2), rel=1e-12)
    assert out["rmse"] == pytest.approx(np.sqrt(np.mean(err**2)), rel=1e-12)
    assert out["mae"] == pytest.approx(np.mean(np.abs(err)), rel=1e-12)


def test_evaluate_compiles_once_per_batch_shape(compiles):
    x, labels, params = _data(n=50)
    loss = _SparseLoss(4)
    fnn.evaluate(LINEAR, params, loss, x, labels, ["accuracy"], batch_size=16)
    with compiles() as c:
        out1 = fnn.evaluate(LINEAR, params, loss, x, labels, ["accuracy"], batch_size=16)
        out2 = fnn.evaluate(LINEAR, params, loss, x, labels, ["accuracy"], batch_size=16)
    assert c.count == 0  # 3 full batches scanned + remainder: one program, cached
    assert out1 == out2


def test_evaluate_with_fnn_losses_by_name_and_object():
    x, labels, params = _data(n=45)
    z = x @ params["w"] + params["b"]
    log_p = z - np.log(np.sum(np.exp(z - z.max(1, keepdims=True)), 1, keepdims=True)) - z.max(1, keepdims=True)
    want = -np.mean(log_p[np.arange(45), labels])
    loss = fnn_losses.get("sparse_categorical_crossentropy", from_logits=True)
    out = fnn.evaluate(LINEAR, params, loss, x, labels, ["acc"], batch_size=8)
    assert out["loss"] == pytest.approx(want, rel=1e-10)
    assert out["acc"] == pytest.approx(np.mean(np.argmax(z, 1) == labels))
    y = (z[:, :1] > 0).astype(float)
    out = fnn.evaluate(LINEAR, {"w": params["w"][:, :1], "b": params["b"][:1]}, "mse", x, y, batch_size=8)
    assert out["loss"] == pytest.approx(np.mean((z[:, :1] - y) ** 2), rel=1e-12)
    # A logits loss makes "accuracy" threshold the logits at 0.
    m = metrics.get("accuracy", loss=fnn_losses.get("binary_crossentropy", from_logits=True))
    assert m.scores.__name__ == "_binary_matches" and dict(m.options)["from_logits"] is True


def test_evaluate_bad_input():
    x, labels, params = _data(n=10)
    loss = _SparseLoss(4)
    with pytest.raises(ValueError, match="batch_size"):
        fnn.evaluate(LINEAR, params, loss, x, labels, batch_size=0)
    with pytest.raises(ValueError, match="same number of samples.*10.*9"):
        fnn.evaluate(LINEAR, params, loss, x, labels[:9])
    with pytest.raises(TypeError, match="loss must be"):
        fnn.evaluate(LINEAR, params, 3, x, labels)
    with pytest.raises(ValueError, match="unknown metric"):
        fnn.evaluate(LINEAR, params, loss, x, labels, ["nope"])


def test_evaluate_unhashable_network_still_works():
    import types

    net = types.SimpleNamespace(apply=LINEAR.apply)  # SimpleNamespace is unhashable
    with pytest.raises(TypeError):
        hash(net)
    x, _, params = _data(n=11, c=1)
    y = np.ones((11, 1))
    out = fnn.evaluate(net, params, _Loss("mse"), x, y, ["mse"], batch_size=4)
    want = np.mean((x @ params["w"] + params["b"] - y) ** 2)
    assert out["loss"] == pytest.approx(want, rel=1e-12)
    assert out["mse"] == pytest.approx(want, rel=1e-12)
