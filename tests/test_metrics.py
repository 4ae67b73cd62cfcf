"""fnn.metrics against NumPy float64 formulas written here from Keras's definitions."""

import collections
import dataclasses
import functools
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import staged, swapped
from hypothesis import given, settings, strategies as st

import fnn
from fnn import losses as fnn_losses, metrics
from fnn.metrics._registry import direction
from fnn.metrics._resolve import resolve_both

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
    assert float(metrics.get("mae").result(0.0, 0.0)) == 0.0  # nothing counted: 0, as Keras's Mean


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


def test_a_metric_of_yours_that_fails_when_traced_is_named_with_its_place_in_the_list(compiles):
    """A function of yours first meets its data as the pass is traced: its mistake names
    ``metrics[i]`` (or ``weighted_metrics[i]``) and the function, chained from its own error,
    and nothing compiles."""

    def pair(y_true, y_pred):  # a score and a count, as a Keras 2 stateful metric might
        return jnp.abs(y_true - y_pred), 1

    def matmul(y_true, y_pred):
        return y_true @ y_pred

    x, _, params = _data(n=8, c=2)
    y = np.zeros((8, 2))
    with compiles() as c:
        with pytest.raises(
            TypeError, match=r"^metrics\[1\] \(pair\) must return its scores as one array .*a tuple of 2"
        ):
            fnn.evaluate(LINEAR, params, _MSE, x, y, metrics=["mae", pair])
        with pytest.raises(TypeError, match=r"^weighted_metrics\[0\] \(matmul\): dot_general") as e:
            fnn.evaluate(LINEAR, params, "mse", x, y, weighted_metrics=[matmul], sample_weight=np.ones(8))
        assert "dot_general" in str(e.value.__cause__)
    assert c.count == 0


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
        # a Keras class name is the loss fnn.losses.get gives, not a lowercased string
        ("BinaryCrossentropy", (8, 3), (8, 3), "_binary_matches"),
        ("SparseCategoricalCrossentropy", (8, 1), (8, 1), "_sparse_categorical_matches"),
    ],
)
def test_accuracy_resolution(loss, yt, yp, want):
    m = metrics.get("accuracy", loss=loss, y_true_shape=yt, y_pred_shape=yp)
    assert m.scores.__name__ == want
    assert m.name == "accuracy"
    assert metrics.get("acc", loss=loss, y_true_shape=yt, y_pred_shape=yp).name == "acc"


@pytest.mark.parametrize("loss", ["mse", "mae", "huber", _Loss("mean_squared_error"), "poisson", "MeanSquaredError"])
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
    with pytest.raises(ValueError, match="unknown metric 'f2'.*binary_accuracy.*rmse"):
        metrics.get("f2")
    with pytest.raises(TypeError, match="unknown option.*'k'"):
        metrics.get("mae", k=3)
    with pytest.raises(ValueError, match="pass loss="):
        metrics.get("accuracy")
    with pytest.raises(TypeError, match="name, a Metric or a callable"):
        metrics.get(3)
    with pytest.raises(TypeError, match="Metric instance"):
        metrics.get(metrics.get("mae"), k=1)


def test_every_metric_has_keras_s_direction():
    """Keras 3.15's metric classes declare ``_direction`` "up" for the accuracies, AUC,
    Precision, Recall, F1Score, FBetaScore, R2Score and CosineSimilarity, "down" for the errors
    and the other losses (read by callbacks' mode="auto"), none for the confusion counts; a
    function of yours has none, one of fnn's losses given as a metric falls (Keras's rule for
    its own losses)."""
    up = {
        "accuracy", "acc", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
        "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy", "auc", "precision", "recall",
        "f1_score", "f1", "fbeta_score", "r2_score", "r2", "cosine_similarity",
    }  # fmt: skip
    counts = {"true_positives", "false_positives", "true_negatives", "false_negatives"}
    up |= set(_AT)  # Keras's SensitivitySpecificityBase
    up |= {*_IOU_NAMES, "pearson_correlation", "concordance_correlation"}
    for name in metrics.names():
        floor = {_AT[name]: 0.5} if name in _AT else {}
        m = metrics.get(name, loss="binary_crossentropy", **floor, **_REQUIRED.get(name, {}))
        assert direction(m) == (None if name in counts else "up" if name in up else "down"), name
    assert direction(metrics.get(lambda t, p: t == p)) is None
    custom = fnn_losses.custom("sq", lambda t, p: ((p - t) ** 2).sum(-1))
    assert direction(metrics.get(custom)) is None  # a loss of yours: Keras knows none either
    for loss in (fnn_losses.cosine_similarity, fnn_losses.mean_squared_error, fnn_losses.get("huber")):
        assert direction(metrics.get(loss)) == "down"


@pytest.mark.parametrize(
    "asked,canonical",
    [
        ("ACC", "sparse_categorical_accuracy"), ("Accuracy", "sparse_categorical_accuracy"), ("MSE", "mse"),
        ("SparseCategoricalAccuracy", "sparse_categorical_accuracy"), ("RootMeanSquaredError", "rmse"),
        ("MeanAbsoluteError", "mae"), ("mean_absolute_error", "mae"), ("AUC", "auc"), ("Precision", "precision"),
        ("F1Score", "f1_score"), ("f1", "f1_score"), ("R2Score", "r2_score"), ("BinaryAccuracy", "binary_accuracy"),
    ],
)  # fmt: skip
def test_a_metric_asked_for_by_a_string_is_named_by_that_string(asked, canonical):
    """Keras 3's compile_utils.get_metric: ``metric_name = identifier`` ("AUC" logs AUC, val_AUC)."""
    loss = "sparse_categorical_crossentropy"
    m = metrics.get(asked, loss=loss)
    want = metrics.get(canonical, loss=loss)
    assert m.name == asked and (m.scores, m.options, m.root) == (want.scores, want.options, want.root)


def test_resolve_both_names_as_keras_3_compile_metrics():
    """Keras 3's CompileMetrics.result: metrics first (repeats _1, _2), then a weighted metric
    keeps its name unless taken, else weighted_<name> (repeats weighted_<name>_1)."""
    cases = [
        (["mae", "mae"], ["mae", "mae", "acc"], ["mae", "mae_1"], ["weighted_mae", "weighted_mae_1", "acc"]),
        (["AUC"], ["AUC", "accuracy"], ["AUC"], ["weighted_AUC", "accuracy"]),
        ([], ["mae", "mae"], [], ["mae", "weighted_mae"]),
        (None, "rmse", [], ["rmse"]),
    ]
    for plain, weighted, want_plain, want_weighted in cases:
        ms, wms = resolve_both(plain, weighted, loss="binary_crossentropy")
        assert ([m.name for m in ms], [m.name for m in wms]) == (want_plain, want_weighted)
    # where Keras would overwrite an entry (a second "mae_1"), the next free suffix is taken
    mae_1 = dataclasses.replace(metrics.get("mae"), name="mae_1")
    ms, wms = resolve_both([mae_1, "mae", "mae"], [mae_1])
    assert ([m.name for m in ms], [m.name for m in wms]) == (["mae_1", "mae", "mae_2"], ["weighted_mae_1"])
    sce = "sparse_categorical_crossentropy"
    with pytest.raises(ValueError, match=r"^weighted_metrics\[1\] = 'acc' \('sparse_categorical_accuracy'\) does "):
        resolve_both(["mae"], ["mae", "acc"], loss=sce, y_true_shape=(8, 3), y_pred_shape=(8, 3))
    with pytest.raises(TypeError, match="^weighted_metrics must be a list"):
        resolve_both([], 3)


def test_resolve_dedupes_like_keras_and_reserves_loss():
    ms = metrics.resolve(["mae", "mae", "mse"], loss="mse")
    assert [m.name for m in ms] == ["mae", "mae_1", "mse"]
    assert metrics.resolve(None) == ()
    assert [m.name for m in metrics.resolve("rmse")] == ["rmse"]

    def loss(y_true, y_pred):
        return y_pred

    with pytest.raises(ValueError, match="reserved"):
        metrics.resolve([loss])


def test_a_callable_metric_is_named_by_its_name_then_its___name__():
    """Keras 3 names a metric object after its ``name``: a Loss (fnn's, a custom one) is logged
    under it, not under its type ``Loss``; a function under ``__name__``, anything else under its
    type's name; repeats get Keras's suffixes."""
    log_cosh = fnn_losses.custom("my_log_cosh", lambda t, p: jnp.mean(jnp.log(jnp.cosh(p - t)), -1))
    huber = fnn_losses.get("huber", delta=0.5)

    def gap(y_true, y_pred):
        return jnp.abs(y_true - y_pred)

    ms = metrics.resolve(
        [log_cosh, huber, fnn_losses.get("huber"), fnn_losses.get("mse"), gap, jax.jit(gap), functools.partial(gap)]
    )
    names = ["my_log_cosh", "huber", "huber_1", "mean_squared_error", "gap", "gap_1", "partial"]
    assert [m.name for m in ms] == names
    # a name that is not a non-empty string is passed over
    nameless = functools.partial(gap)
    nameless.name = ""
    assert metrics.get(nameless).name == "partial"
    # evaluate logs them under those names, with the losses' values
    x, _, params = _data(n=12, c=2)
    y = np.random.default_rng(2).normal(size=(12, 2))
    out = fnn.evaluate(LINEAR, params, "mse", x, y, metrics=[log_cosh, huber], batch_size=5)
    e = x @ params["w"] + params["b"] - y
    huber_want = np.where(np.abs(e) <= 0.5, 0.5 * e**2, 0.5 * (np.abs(e) - 0.25))
    assert set(out) == {"loss", "my_log_cosh", "huber"}
    assert out["my_log_cosh"] == pytest.approx(np.mean(np.log(np.cosh(e))), rel=1e-12)
    assert out["huber"] == pytest.approx(np.mean(huber_want), rel=1e-12)


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


# ---------------------------------------------------------------- auc, precision, recall, f1, r2


def _scores(n=1000, seed=0):
    """Binary labels and scores in [0, 1] that rank positives higher, with ties (rounded)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = np.clip(0.35 + 0.25 * y + 0.3 * rng.normal(size=n), 0.0, 1.0)
    s[:50] = np.round(s[:50], 1)  # exact ties, some on thresholds; 0 and 1 themselves
    return y, s


def ref_counts(y, p, w, num_thresholds):
    """Keras's confusion counts in float64: label y != 0, predicted where clip(p, 0, 1) > t_j."""
    t = np.array([-1e-7] + [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)] + [1 + 1e-7])
    pos = (np.asarray(y).reshape(-1) != 0).astype(float)
    above = np.clip(np.asarray(p, float).reshape(-1), 0, 1)[:, None] > t
    w = np.ones_like(pos) if w is None else np.asarray(w, float).reshape(-1)
    tp, fp = (w * pos) @ above, (w * (1 - pos)) @ above
    return tp, fp, np.sum(w * (1 - pos)) - fp, np.sum(w * pos) - tp


def ref_auc(y, p, w=None, num_thresholds=200, curve="ROC", method="interpolation"):
    tp, fp, tn, fn = ref_counts(y, p, w, num_thresholds)
    area = 0.0
    for a in range(num_thresholds - 1):  # interval between thresholds a and b = a + 1
        b = a + 1
        if curve == "PR" and method == "interpolation":
            # Davis & Goadrich: precision = TP / P with TP and P linear in between.
            pa, pb = tp[a] + fp[a], tp[b] + fp[b]
            if pa - pb > 0:
                slope = (tp[a] - tp[b]) / (pa - pb)
                log_ratio = np.log(pa / pb) if pb > 0 else 0.0
                area += slope * (tp[a] - tp[b] + (tp[b] - slope * pb) * log_ratio) / (tp[b] + fn[b])
            continue
        if curve == "ROC":
            x = [f / (f + n) if f + n else 0.0 for f, n in ((fp[a], tn[a]), (fp[b], tn[b]))]
            h = [t / (t + f) if t + f else 0.0 for t, f in ((tp[a], fn[a]), (tp[b], fn[b]))]
        else:
            x = [t / (t + f) if t + f else 0.0 for t, f in ((tp[a], fn[a]), (tp[b], fn[b]))]
            h = [t / (t + f) if t + f else 0.0 for t, f in ((tp[a], fp[a]), (tp[b], fp[b]))]
        height = {"interpolation": (h[0] + h[1]) / 2, "minoring": min(h), "majoring": max(h)}[method]
        area += (x[0] - x[1]) * height
    return area


# The counts depend only on num_thresholds and from_logits: one update serves every curve and
# summation method, each its own Metric (and result).
_AUCS = {
    "roc": metrics.get("auc"),
    "pr": metrics.get("AUC", curve="PR"),
    "roc_min": metrics.get("auc", summation_method="minoring"),
    "roc_max": metrics.get("auc", summation_method="majoring"),
    "pr_min": metrics.get("auc", curve="pr", summation_method="Minoring"),
}


@jax.jit
def _auc_updates(y, s, w):
    """The AUC's partial counts of one batch, unweighted and weighted (one program per shape)."""
    return _AUCS["roc"].update(y, s), _AUCS["roc"].update(y, s, sample_weight=w)


def _stream(update, *arrays, bounds=(0, 256, 512, 768, 1000)):
    """Partials of uneven batches added up (here on the host), as a compiled epoch adds them."""
    batches = (jax.tree.map(lambda a: a[lo:hi], arrays) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True))
    parts = [update(*batch) for batch in batches]
    return jax.tree.map(lambda *xs: sum(np.asarray(x) for x in xs), *parts)


def test_auc_matches_sklearn_and_keras_streamed_over_uneven_batches():
    from sklearn.metrics import average_precision_score, roc_auc_score

    y, s = _scores()
    w = np.random.default_rng(1).uniform(0.2, 3.0, size=y.shape)
    whole = jax.device_get(_auc_updates(y, s, w))  # one batch of 1000
    streamed = _stream(_auc_updates, y, s, w)  # 256 + 256 + 256 + 232
    for a, b in zip(whole[0], streamed[0], strict=True):
        assert np.array_equal(a, b)  # integer counts add exactly
    for a, b in zip(whole[1], streamed[1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-9)  # weighted ones up to rounding
    auc = {}
    for k, m in _AUCS.items():
        o = dict(m.options)
        got = [float(m.result(*whole[0])), float(m.result(*streamed[0])), float(m.result(*streamed[1]))]
        want = [ref_auc(y, s, None, 200, o["curve"], o["summation_method"])] * 2
        want += [ref_auc(y, s, w, 200, o["curve"], o["summation_method"])]
        np.testing.assert_allclose(got, want, rtol=1e-10, err_msg=k)
        auc[k] = got[1:]
    for i, sw in enumerate((None, w)):
        exact = roc_auc_score(y, s, sample_weight=sw)
        assert abs(auc["roc"][i] - exact) < 1e-3
        # within each bucket the true curve is monotone: the lower and upper sums bracket it
        assert auc["roc_min"][i] <= exact <= auc["roc_max"][i]
        # Davis-Goadrich interpolation is not the step-wise average precision; they agree closely
        assert abs(auc["pr"][i] - average_precision_score(y, s, sample_weight=sw)) < 5e-3
        assert auc["pr_min"][i] <= auc["pr"][i]
    assert 0.6 < auc["roc"][0] < 0.95  # a real signal, not a degenerate curve


def test_auc_buckets_a_prediction_on_a_threshold_as_keras_does():
    """Keras counts p above t_j where ceil(p (T - 1)) - 1 >= j, in p's dtype: float32(0.6) * 100
    is 60.000004, so 0.6 counts above t = 0.6 (keras.metrics.AUC(num_thresholds=101): 0.904187 on
    scores rounded to 2 decimals, where p > float32(0.6) gave 0.903382); 0.55 * 100 is 55.0."""
    y = np.array([1.0, 1.0, 0.0, 0.0], np.float32)
    p = np.array([0.6, 0.55, 0.6, 0.0], np.float32)
    tp, fp, tn, fn = (np.asarray(c) for c in staged(lambda: metrics.get("auc", num_thresholds=101).update(y, p)))
    assert (tp[54], tp[55], tp[60], tp[61]) == (2, 1, 1, 0)
    assert (fp[0], fp[1], fp[60], fp[61]) == (2, 1, 1, 0)  # 0.0 is above t_0 = -1e-7 alone
    np.testing.assert_array_equal(tp + fn, 2.0)
    np.testing.assert_array_equal(fp + tn, 2.0)


def test_auc_keras_examples_logits_and_one_batch_form():
    y, s = _scores(200, seed=2)
    logits = np.log(s.clip(1e-6, 1 - 1e-6) / (1 - s.clip(1e-6, 1 - 1e-6)))
    m = metrics.get("auc", num_thresholds=3)

    @jax.jit
    def run(y, s, z):
        return (
            metrics.auc(y, s, curve="PR", num_thresholds=50),
            metrics.auc(y, z, "PR", 50, from_logits=True),
            # keras.metrics.AUC's docstring: thresholds [-eps, 0.5, 1 + eps] give 0.75, 1.0 weighted
            m(jnp.array([0, 0, 1, 1]), jnp.array([0.0, 0.5, 0.3, 0.9])),
            m(jnp.array([0, 0, 1, 1]), jnp.array([0.0, 0.5, 0.3, 0.9]), sample_weight=jnp.array([1, 0, 0, 1])),
        )

    on_probs, on_logits, keras, keras_weighted = run(y, s, logits)
    assert float(on_probs) == pytest.approx(ref_auc(y, s, None, 50, "PR"), rel=1e-10)
    assert float(on_logits) == pytest.approx(float(on_probs), abs=1e-3)  # sigmoid(logit(s)) ~ s
    assert (float(keras), float(keras_weighted)) == pytest.approx((0.75, 1.0))
    # A logits loss makes the AUC read logits, as it does binary accuracy.
    assert dict(metrics.get("auc", loss=_Loss("binary_crossentropy", from_logits=True)).options)["from_logits"]


# precision and recall share their counts, as do the averages of F1: one update for each group
_THRESHOLD_METRICS = {
    "precision": metrics.get("precision"),
    "recall": metrics.get("recall"),
    "precision_c1": metrics.get("precision", class_id=1, threshold=0.3),
    "recall_c1": metrics.get("recall", class_id=1, threshold=0.3),
    "f1_micro": metrics.get("f1", average="micro", threshold=0.5),
    "f1_macro": metrics.get("F1Score", threshold=0.5),
    "f1_weighted": metrics.get("f1_score", average="weighted", threshold=0.5),
    "f1_argmax": metrics.get("F1Score"),  # Keras's default: threshold None, the row's argmax
}
_SHARED = {"recall": "precision", "recall_c1": "precision_c1", "f1_macro": "f1_micro", "f1_weighted": "f1_micro"}


def _multi_label(seed, n=1000, c=3):
    """0/1 targets of ``c`` columns (multi-label), scores in [0, 1] that rank them, sample weights."""
    rng = np.random.default_rng(seed)
    y = (rng.uniform(size=(n, c)) < [0.2, 0.5, 0.3]).astype(float)
    p = np.clip(0.3 * y + rng.uniform(size=(n, c)) * 0.7, 0, 1)
    return y, p, rng.uniform(0.0, 2.0, size=n)


@jax.jit
def _threshold_family(y, p, w):
    ms = {k: m for k, m in _THRESHOLD_METRICS.items() if k not in _SHARED}
    return {k: (m.update(y, p), m.update(y, p, w)) for k, m in ms.items()}


def test_precision_recall_f1_match_sklearn_streamed():
    from sklearn.metrics import f1_score, precision_score, recall_score

    y, p, w = _multi_label(3)
    c = y.shape[1]
    streamed = _stream(_threshold_family, y, p, w)  # sklearn sees the whole set at once
    pred = (p > 0.5).astype(int)
    argmax = np.eye(c, dtype=int)[p.argmax(1)]
    for i, sw in enumerate((None, w)):
        got = {}
        for k, m in _THRESHOLD_METRICS.items():
            got[k] = float(m.result(*streamed[_SHARED.get(k, k)][i]))
        kw = {"sample_weight": sw, "zero_division": 0.0}
        # Keras pools all elements (no class_id): sklearn on the flattened columns
        flat = {"sample_weight": None if sw is None else np.repeat(sw, c)}
        assert got["precision"] == pytest.approx(precision_score(y.ravel(), pred.ravel(), **flat), rel=1e-10)
        assert got["recall"] == pytest.approx(recall_score(y.ravel(), pred.ravel(), **flat), rel=1e-10)
        assert got["precision_c1"] == pytest.approx(precision_score(y[:, 1], p[:, 1] > 0.3, **kw), rel=1e-10)
        assert got["recall_c1"] == pytest.approx(recall_score(y[:, 1], p[:, 1] > 0.3, **kw), rel=1e-10)
        for average in ("micro", "macro", "weighted"):  # Keras's epsilons: ~1e-9 relative here
            assert got[f"f1_{average}"] == pytest.approx(f1_score(y, pred, average=average, **kw), rel=1e-6)
        assert got["f1_argmax"] == pytest.approx(f1_score(y, argmax, average="macro", **kw), rel=1e-6)


def test_binary_precision_recall_f1_one_batch_forms():
    from sklearn.metrics import f1_score, precision_score, recall_score

    y = np.array([0, 1, 1, 1, 0, 1, 0, 0])
    z = np.array([2.0, -1.0, 0.5, 3.0, -2.0, 0.0, 0.1, -0.1])  # logits

    @jax.jit
    def run(y, z):
        on_logits = [f(y, z, threshold=0.5, from_logits=True) for f in (metrics.precision, metrics.recall, metrics.f1)]
        # Keras's Precision docstring example, weighted: 1.0
        keras = metrics.get("precision")(y[:4], jnp.array([1.0, 0.0, 1.0, 1.0]), jnp.array([0, 0, 1, 0]))
        return on_logits + [metrics.precision(y[:, None], (z > 0).astype(float)[:, None]), keras]

    got = [float(v) for v in run(y, z)]
    pred = (z > 0).astype(int)  # sigmoid(z) > 0.5; sigmoid(0) = 0.5 is not above
    assert got[:3] == pytest.approx([precision_score(y, pred), recall_score(y, pred), f1_score(y, pred)], rel=1e-6)
    assert got[3] == got[0] and got[4] == 1.0
    # nothing predicted positive: 0, not NaN (divide_no_nan), on the host too
    assert float(metrics.get("precision").result(np.float32(0), np.float32(0), np.float32(3))) == 0.0


_R2S = (metrics.get("r2"), metrics.get("R2Score", class_aggregation="variance_weighted_average"))


@jax.jit
def _r2_updates(y, p, w):
    return _R2S[0].update(y, p), _R2S[0].update(y, p, w)  # the sums serve both aggregations


def test_r2_streamed_equals_sklearn():
    from sklearn.metrics import r2_score

    rng = np.random.default_rng(4)
    y = rng.normal(size=(1000, 3)) * [1.0, 3.0, 0.5] + [0.0, 10.0, -2.0]
    p = y + rng.normal(size=y.shape) * [0.5, 2.0, 0.6]
    w = rng.uniform(0.0, 2.0, size=1000)
    plain, weighted = _stream(_r2_updates, y, p, w)
    for m, multi in zip(_R2S, ("uniform_average", "variance_weighted"), strict=True):
        assert float(m.result(*plain)) == pytest.approx(r2_score(y, p, multioutput=multi), abs=1e-6)
        assert float(m.result(*weighted)) == pytest.approx(r2_score(y, p, sample_weight=w, multioutput=multi), abs=1e-6)
    # (N,) against (N, 1); constant targets: 1 if predicted exactly, else 0 (sklearn's force_finite)
    one_col = jax.jit(lambda y, p, c: (metrics.r2(y, p), metrics.r2(c, c), metrics.r2(c, p)))
    got = one_col(y[:, 0], p[:, :1], np.full(1000, 2.0))
    assert float(got[0]) == pytest.approx(r2_score(y[:, 0], p[:, 0]), abs=1e-6)
    assert (float(got[1]), float(got[2])) == (1.0, 0.0)
    assert math.isnan(float(_R2S[0].result(*np.zeros((len(plain), 3)))))  # nothing counted


def test_r2_of_constant_targets_whose_sums_round_is_0_or_1_not_a_rounding_residue_s_ratio():
    """Constant targets give 0 (1 if predicted exactly), as the docstring and scikit-learn's
    force_finite say, also where their sums round: SS_tot was a residue of ~1e-8 and R2 came out
    -1.6e7 for 0.1 six times, +44740 (above 1) for 0.1 ten times against 0.11. A spread that
    float32 resolves is still scored as scikit-learn scores it."""
    from sklearn.metrics import r2_score

    m, constants = metrics.get("r2"), np.array([0.1, 0.3, 0.7, 1.1, 3.3, 1234.5, 1 / 3])
    r2_of = jax.jit(lambda y, p: (m.update(y, p), m.update(y[: len(y) // 3], p[: len(y) // 3])))
    for dtype in (np.float32, np.float64):
        for n in (3, 6, 10, 1000):
            # a column per constant, predicted 0.01 off (R2 0) then exactly (R2 1): their mean 0.5
            y = np.tile(constants.astype(dtype), (n, 2))
            p = y + np.repeat(np.asarray([0.01, 0.0], dtype), len(constants))
            whole, first = jax.device_get(r2_of(y, p))
            rest = [a - b for a, b in zip(whole, first, strict=True)]  # streamed: two batches' sums
            cols = [m.result(*(t[..., j] for t in whole)) for j in range(2 * len(constants))]
            assert [float(v) for v in cols] == [0.0] * len(constants) + [1.0] * len(constants), (dtype, n)
            assert float(m.result(*[a + b for a, b in zip(first, rest, strict=True)])) == 0.5, (dtype, n)
    rng = np.random.default_rng(7)
    y = (1.0 + 1e-2 * rng.normal(size=200)).astype(np.float32)  # spread/mean 1e-2: resolved
    p = y + (3e-3 * rng.normal(size=200)).astype(np.float32)
    assert float(metrics.r2(y, p)) == pytest.approx(r2_score(y.astype(float), p.astype(float)), abs=1e-3)
    # a spread of 1e-3 on 1 in float32 (SS_tot ~8 epsilons of sum y^2) keeps its digits, a
    # NaN or inf target stays NaN: only one value counts as constant
    y = (1.0 + 1e-3 * rng.normal(size=1000)).astype(np.float32)
    p = y + (3e-4 * rng.normal(size=1000)).astype(np.float32)
    assert float(metrics.r2(y, p)) == pytest.approx(r2_score(y.astype(float), p.astype(float)), abs=0.05)
    for bad in (np.nan, np.inf):
        assert math.isnan(float(metrics.r2(np.array([1.0, bad, 3.0]), np.array([1.0, 2.0, 3.0]))))


def test_r2_streamed_one_value_per_batch_is_scored_not_taken_for_constant():
    """Batches of one sample, or of grouped targets, each hold one value while the data set
    holds many: R2 as the one-batch value (a regression of e2524d9 gave 0), and constant
    targets so streamed still 0 or 1."""
    from sklearn.metrics import r2_score

    m = metrics.get("r2")
    rng = np.random.default_rng(0)
    y = (300 + 0.3 * rng.normal(size=(32, 1))).astype(np.float32)  # kelvins: spread 1e-3 of the mean
    p = (y + 0.03 * rng.normal(size=(32, 1))).astype(np.float32)
    grouped = np.repeat(np.array([299.7, 300.0, 300.3, 300.6], np.float32), 8)[:, None]
    constant = np.full((12, 1), 0.1, np.float32)
    zeros = np.array([[0.0], [-0.0], [0.0]], np.float32)  # one value, two bit patterns
    small = np.array([[200.0]] * 6 + [[201.0]], np.float32)  # bits 2^16 apart: (b_i - b_j)^2 = 0 mod 2^32
    dyadic = np.array([[1.0]] * 15 + [[1.0078125]], np.float32)
    cases = [(y, p, 1), (grouped, grouped + 0.01, 8), (small, small + 0.01, 7), (dyadic, dyadic + 1e-3, 16)]
    cases += [(constant, constant + 0.01, 1), (constant, constant, 1), (zeros, zeros, 1)]

    def streamed(y, p, size):  # the batches' sums added, as fit and evaluate add them
        sums = [m.update(y[i : i + size], p[i : i + size]) for i in range(0, len(y), size)]
        return [sum(parts[1:], parts[0]) for parts in zip(*sums, strict=True)]

    got = jax.device_get(jax.jit(lambda: [(m.result(*streamed(*c)), m.update(c[0], c[1])) for c in cases])())
    for (y_, p_, _), (value, whole) in zip(cases[:4], got[:4], strict=True):
        # float32 sums of a large mean keep ~3 digits of SS_tot (the docstring's float64 advice)
        for r2 in (float(value), float(m.result(*whole))):
            assert r2 == pytest.approx(r2_score(y_.astype(float), p_.astype(float)), abs=5e-3)
    assert [float(v) for v, _ in got[4:]] == [0.0, 1.0, 1.0]
    # constant targets streamed in many batches: SS_tot's residue grew past any band (R2 -307)
    net = fnn.serial(fnn.Activation("linear"))
    t = np.full((1000, 1), 0.1, np.float32)
    for pred, want in ((t + np.float32(0.01), 0.0), (t, 1.0)):
        assert fnn.evaluate(net, [{}], "mse", pred, t, metrics=["r2"], batch_size=1)["r2"] == want


def test_r2_of_values_repeated_a_power_of_two_times_is_scored_not_taken_for_constant(monkeypatch):
    """Two values 2^16 times each: with the hashes' sums kept modulo 2^32, ``n sum h^2 - (sum
    h)^2 = c_a c_b (h_a - h_b)^2`` vanished for ANY hashes (c_a c_b = 2^32), and balanced 0/1
    targets scored 0 (scikit-learn: 0.75). Counts are no zero divisors modulo a prime; the
    residues' sums stay exact however many rows a batch has (summed in chunks)."""
    from sklearn.metrics import r2_score

    from fnn.metrics import _regression

    m = metrics.get("r2")
    many = 1 << 16
    two = np.r_[np.zeros(many), np.ones(many)].astype(np.float32)
    far = np.r_[np.full(many // 4, 1.0), np.full(many // 4, 100.0)].astype(np.float32)
    tilt = (far + 0.3 * np.sign(np.arange(len(far)) % 2 - 0.5)).astype(np.float32)
    for y, p in ((two, two * 0.5 + 0.25), (far, tilt), (two[: many // 2 + 1], two[: many // 2 + 1] + 0.5)):
        assert float(metrics.r2(y, p)) == pytest.approx(r2_score(y, p), abs=1e-5)
    # a prime dividing a count: another prime (and the hashes modulo 2^32) tell the values apart
    for count in (251, 251 * 241, 229 * 233):
        y = np.r_[np.zeros(count), np.ones(count)].astype(np.float32)
        assert float(metrics.r2(y, y * 0.5 + 0.25)) == pytest.approx(0.75, abs=1e-6), count
    # counts of two primes, and hashes equal modulo the three others (found by a search of the
    # float32 integers): the primes alone took them for one value; modulo 2^32 they differ
    y = np.array([9100.0] * 229 + [15792.0] * 233, np.float32)
    p = (y + np.random.default_rng(0).normal(0, 1000, y.shape)).astype(np.float32)
    assert float(metrics.r2(y, p)) == pytest.approx(r2_score(y, p), abs=1e-5)
    # batches of more rows than one uint32 sum holds are summed in chunks: the same totals
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, size=(50, 2)).astype(np.float32)
    y[:, 1] = 2.5  # a constant column beside a varying one
    p = y + rng.normal(scale=0.1, size=y.shape).astype(np.float32)
    whole = jax.device_get(m.update(y, p))
    monkeypatch.setattr(_regression, "_BATCH_CHUNK", 7)  # read when traced: this call traces anew
    chunked = jax.device_get(jax.jit(m.update)(y, p))
    for a, b in zip(whole, chunked, strict=True):  # the residues exact; float sums to their rounding
        if np.issubdtype(np.asarray(a).dtype, np.integer):
            np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_allclose(a, b, rtol=1e-6)
    assert float(m.result(*chunked)) == pytest.approx((r2_score(y[:, 0], p[:, 0]) + 0.0) / 2, abs=1e-5)


def test_sample_weight_of_mean_metrics_matches_numpy():
    rng = np.random.default_rng(5)
    y, p = rng.normal(size=(6, 2)), rng.normal(size=(6, 2))
    w, w_el = rng.uniform(0, 2, 6), rng.uniform(0, 2, (6, 2))
    labels, scores = rng.integers(0, 3, 6), rng.uniform(size=(6, 3))
    bits, probs = (rng.uniform(size=6) > 0.5).astype(float), rng.uniform(size=6)

    @jax.jit
    def run(y, p, w, w_el, labels, scores, bits, probs):
        g = metrics.get
        return {
            "mae": g("mae").update(y, p, w),
            "mae_col": g("mae").update(y, p, w[:, None]),
            "mse_el": g("mse").update(y, p, w_el),
            "rmse": g("rmse")(y, p, w),
            "rmse_scalar": g("rmse")(y, p, 2.5),
            "rmse_none": g("rmse")(y, p),
            "rmse_ones": g("rmse")(y, p, jnp.ones(6)),
            "sparse": g("sparse_categorical_accuracy")(labels, scores, w),
            "top2": g("sparse_top_k_categorical_accuracy", k=2)(labels, scores, w),
            "binary": g("binary_accuracy")(bits[:, None], probs, w),
            "batch_mean": metrics.get(lambda t, q: jnp.mean(q - t)).update(y, p, w),
            "small_weights": g("mae")(jnp.zeros(2), jnp.array([1.0, 3.0]), jnp.array([0.1, 0.3])),
        }

    got = run(y, p, w, w_el, labels, scores, bits, probs)
    err = p - y
    np.testing.assert_allclose(got["mae"], (np.sum(w[:, None] * np.abs(err)), 2 * w.sum()), rtol=1e-12)
    np.testing.assert_allclose(got["mae_col"], got["mae"], rtol=1e-12)
    np.testing.assert_allclose(got["mse_el"], (np.sum(w_el * err**2), w_el.sum()), rtol=1e-12)
    assert float(got["rmse"]) == pytest.approx(np.sqrt(np.sum(w[:, None] * err**2) / (2 * w.sum())), rel=1e-12)
    assert float(got["rmse_scalar"]) == pytest.approx(float(got["rmse_none"]), rel=1e-12)
    assert float(got["rmse_ones"]) == pytest.approx(float(got["rmse_none"]), rel=1e-12)
    hit = labels == scores.argmax(1)
    assert float(got["sparse"]) == pytest.approx(np.sum(w * hit) / w.sum(), rel=1e-12)
    assert float(got["top2"]) == pytest.approx(np.sum(w * (ref_top_k_hits(labels, scores, 2))) / w.sum(), rel=1e-12)
    assert float(got["binary"]) == pytest.approx(np.sum(w * (bits == (probs > 0.5))) / w.sum(), rel=1e-12)
    np.testing.assert_allclose(got["batch_mean"], (np.mean(err) * w.sum(), w.sum()), rtol=1e-12)
    # weights summing to less than 1 still divide by their own sum
    assert float(got["small_weights"]) == pytest.approx(2.5, rel=1e-12)
    with pytest.raises(ValueError, match=r"sample_weight of shape \(5,\) does not fit 6 samples"):
        jax.jit(metrics.get("mae").update)(y, p, np.ones(5))  # traced only: nothing compiles
    with pytest.raises(ValueError, match=r"sample_weight of shape \(6, 3\)"):
        jax.jit(metrics.get("auc").update)(bits, probs, np.ones((6, 3)))


def ref_top_k_hits(labels, y_pred, k):
    at = y_pred[np.arange(len(labels)), labels]
    return 1 + np.sum(y_pred > at[:, None], axis=1) <= k


def test_new_metrics_by_name_are_hashable_by_value():
    a = metrics.get("auc", curve="PR", num_thresholds=500)
    b = metrics.get("auc", curve="pr", num_thresholds=500)
    assert a == b and hash(a) == hash(b) and a.name == "auc"
    upper = metrics.get("AUC", curve="PR", num_thresholds=500)  # the same metric, named as asked
    assert upper.name == "AUC" and (upper.scores, upper.options) == (a.scores, a.options)
    assert a != metrics.get("auc", curve="PR", num_thresholds=499)
    assert metrics.get("precision") != metrics.get("recall")  # same counts, another result
    assert {"auc", "precision", "recall", "f1", "f1_score", "r2", "r2_score"} <= set(metrics.names())
    assert [m.name for m in metrics.resolve(["auc", "AUC", a])] == ["auc", "AUC", "auc_1"]


@pytest.mark.parametrize(
    "name,options,error,match",
    [
        ("auc", {"num_thresholds": 1}, ValueError, "num_thresholds must be >= 2"),
        ("auc", {"num_thresholds": 2.5}, TypeError, "num_thresholds must be an int"),
        ("auc", {"curve": "PRC"}, ValueError, r"curve must be one of \('ROC', 'PR'\), got 'PRC'"),
        ("auc", {"summation_method": "trapezoid"}, ValueError, "summation_method must be one of"),
        ("auc", {"from_logits": 1}, TypeError, "from_logits must be a bool"),
        ("precision", {"threshold": 1.5}, ValueError, r"threshold must be in \[0, 1\]"),
        ("recall", {"class_id": -1}, ValueError, "class_id must be >= 0"),
        ("f1", {"average": "samples"}, ValueError, "average must be one of"),
        ("f1", {"threshold": -0.1}, ValueError, "threshold must be in"),
        ("r2", {"class_aggregation": None}, TypeError, "class_aggregation must be one of"),
        ("auc", {"multi_label": True}, TypeError, r"unknown option.*'multi_label'"),
        # checked when built, not when first traced (a string threshold failed as a comparison
        # of the outputs, named as the shapes of y and the outputs)
        ("binary_accuracy", {"threshold": "x"}, TypeError, r"^threshold must be a real number, got 'x'$"),
        ("binary_accuracy", {"threshold": 1.5, "from_logits": True}, ValueError, r"^threshold must be in \(0, 1\)"),
        ("binary_accuracy", {"from_logits": 1}, TypeError, r"^from_logits must be a bool"),
        ("top_k_categorical_accuracy", {"k": "a"}, TypeError, r"^k must be an int, got str 'a'$"),
        ("sparse_top_k_categorical_accuracy", {"k": 0}, ValueError, r"^k must be >= 1, got 0$"),
    ],
)
def test_bad_options_name_the_argument(name, options, error, match):
    with pytest.raises(error, match=match):
        metrics.get(name, **options)


def test_bad_shapes_name_the_arguments():
    with pytest.raises(ValueError, match=r"y_true .* y_pred"):
        metrics.auc(np.zeros(4), np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"class_id=3 needs y_pred of shape \(N, C\) with C > 3"):
        metrics.recall(np.zeros((4, 3)), np.zeros((4, 3)), class_id=3)
    with pytest.raises(ValueError, match=r"f1_score and fbeta_score expect .* \(N,\) or \(N, C\)"):
        metrics.f1(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match=r"r2_score expects .* \(N,\) or \(N, k\)"):
        metrics.r2(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="num_thresholds must be >= 2"):
        metrics.auc(np.zeros(4), np.zeros(4), num_thresholds=0)


# ---------------------------------------------------------------- labels and target checks


def test_sparse_accuracy_refuses_fractional_and_out_of_range_labels():
    scores = np.eye(3)
    with pytest.raises(ValueError, match="sparse_categorical_accuracy: y_true must hold integer class ids"):
        metrics.sparse_categorical_accuracy(np.array([1.5, 0.9, 2.0]), scores)
    with pytest.raises(ValueError, match=r"sparse_top_k_categorical_accuracy: labels must be in \[0, 3\).*\[3\]"):
        metrics.sparse_top_k_categorical_accuracy(np.array([0, 3, 1]), scores, k=1)
    assert float(metrics.sparse_categorical_accuracy(np.array([0.0, 1.0, 1.0]), scores)) == pytest.approx(2 / 3)
    # Under jit the labels are traced: fit and evaluate call check_targets with the real values.
    ms = metrics.resolve(["acc", "mae"], loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="^y: metric 'acc': y_true must hold integer class ids"):
        metrics.check_targets(ms, np.array([1.5, 0.9, 2.0]), (3, 3), name="y")
    with pytest.raises(ValueError, match=r"^validation y: metric 'acc': labels must be in \[0, 3\).*\[-1\]"):
        metrics.check_targets(ms, np.array([[0], [-1], [2]]), (3, 3), name="validation y")
    with pytest.raises(ValueError, match=r"one integer label per sample, shape \(3,\) or \(3, 1\)"):
        metrics.check_targets(ms, np.eye(3), (3, 3))
    ignoring = fnn_losses.get("sparse_categorical_crossentropy", ignore_class=-1)
    metrics.check_targets(ms, np.array([0, -1, 2]), (3, 3), loss=ignoring)  # the loss's ignore_class
    metrics.check_targets(metrics.resolve(["mae"]), np.array([1.5]), (1, 1))  # no sparse metric: nothing to check


def test_resolve_refuses_a_metric_that_does_not_fit_the_targets_before_compiling(compiles):
    x, labels, params = _data(n=12)
    with compiles() as c:
        with pytest.raises(
            ValueError,
            match=r"^metrics\[1\] = 'categorical_accuracy' does not fit targets y of shape \(12,\) and outputs "
            r"of shape \(12, 4\).*one-hot.*for integer labels use 'sparse_categorical_accuracy'",
        ):
            metrics.resolve(["acc", "categorical_accuracy"], y_true_shape=(12,), y_pred_shape=(12, 4))
        with pytest.raises(ValueError, match=r"metrics\[0\] = 'CategoricalAccuracy' \('categorical_accuracy'\)"):
            fnn.evaluate(LINEAR, params, _SparseLoss(4), x, labels, ["CategoricalAccuracy"])
        with pytest.raises(ValueError, match=r"metrics\[0\].*for one-hot targets use 'top_k_categorical_accuracy'"):
            metrics.resolve(["sparse_top_k_categorical_accuracy"], y_true_shape=(12, 4), y_pred_shape=(12, 4))
        with pytest.raises(ValueError, match=r"metrics\[0\] = 'auc' .*y_true and y_pred must have the same shape"):
            metrics.resolve(["auc"], y_true_shape=(12,), y_pred_shape=(12, 4))
    assert c.count == 0


# ---------------------------------------------------------------- through evaluate and fit


def test_evaluate_streams_the_new_metrics_and_reads_logits_from_the_loss():
    x, _, params = _data(n=70, c=1)
    z = x @ params["w"] + params["b"]
    y = (z[:, 0] + np.random.default_rng(6).normal(size=70) > 0).astype(float)
    bce = fnn_losses.get("binary_crossentropy", from_logits=True)
    names = ["auc", metrics.get("auc", curve="PR", loss=bce), metrics.get("f1", threshold=0.5, loss=bce)]
    out = fnn.evaluate(LINEAR, params, bce, x, y, names, batch_size=16)  # 4 batches of 16 and one of 6
    # the loss's from_logits reaches the threshold metrics: the sigmoid is applied
    want = jax.jit(
        lambda y, z: {
            "auc": metrics.auc(y, z, from_logits=True),
            "auc_1": metrics.auc(y, z, curve="PR", from_logits=True),
            "f1": metrics.f1(y, z, threshold=0.5, from_logits=True),
        }
    )(y, z)
    assert out.keys() == {"loss", *want}
    for k, v in want.items():
        assert out[k] == pytest.approx(float(v), rel=1e-10), k


def test_a_metric_built_without_the_loss_takes_its_from_logits_and_ignore_class_as_a_name_does():
    """get("auc", curve="PR") is how options are given; built without loss=, it read a logits
    loss's outputs as probabilities (clipped into [0, 1]) where the name "auc" beside it took the
    sigmoid. Given explicitly, from_logits=False still reads them so (Keras's reading)."""
    x, _, params = _data(n=70, c=1)
    z = x @ params["w"] + params["b"]
    y = (z[:, 0] + np.random.default_rng(6).normal(size=70) > 0).astype(float)
    bce = fnn_losses.get("binary_crossentropy", from_logits=True)
    given = [
        "auc",
        metrics.get("auc", num_thresholds=200),
        metrics.get("auc", curve="PR"),
        metrics.get("precision_at_recall", recall=0.5),
        metrics.get("auc", from_logits=False),
    ]
    out = fnn.evaluate(LINEAR, params, bce, x, y, given, batch_size=16)
    want = jax.jit(
        lambda y, z: {
            "auc": metrics.auc(y, z, from_logits=True),
            "auc_1": metrics.auc(y, z, from_logits=True),
            "auc_2": metrics.auc(y, z, curve="PR", from_logits=True),
            "precision_at_recall": metrics.precision_at_recall(y, z, recall=0.5, from_logits=True),
            "auc_3": metrics.auc(y, z),
        }
    )(y, z)
    assert out.keys() == {"loss", *want}
    for k, v in want.items():
        assert out[k] == pytest.approx(float(v), rel=1e-10), k
    assert out["auc_3"] != pytest.approx(out["auc"], rel=1e-3)
    # a sparse loss's ignore_class reaches a crossentropy metric built without it, as by name
    sce = fnn_losses.get("sparse_categorical_crossentropy", from_logits=True, ignore_class=2)
    by_name = metrics.resolve(["sparse_categorical_crossentropy"], loss=sce)[0]
    built = metrics.resolve([metrics.get("sparse_categorical_crossentropy")], loss=sce)[0]
    assert dict(built.options) == dict(by_name.options) and dict(built.options)["ignore_class"] == 2
    # until a loss settles it, such a metric is not the one given from_logits=False; then it is
    assert metrics.get("auc") != metrics.get("auc", from_logits=False)
    plain = fnn_losses.get("binary_crossentropy")
    assert metrics.resolve([metrics.get("auc")], loss=plain) == metrics.resolve(["auc"], loss=plain)


@pytest.mark.slow
def test_fit_logs_a_streamed_auc_for_training_and_validation():
    x, _, params = _data(n=70, c=1)
    y = (x @ params["w"][:, 0] + np.random.default_rng(6).normal(size=70) > 0).astype(float)
    bce = fnn_losses.get("binary_crossentropy", from_logits=True)
    net = fnn.mlp([1])
    p0 = net.init(jax.random.key(0), (3,), jnp.float64)
    res = fnn.fit(
        net, p0, fnn.optimizers.sgd(0.1), bce, x[:50], y[:50], batch_size=16, epochs=1, shuffle=False,
        validation_data=(x[50:], y[50:]), metrics=["auc", "r2"], verbose=0,
    )  # fmt: skip
    val = fnn.evaluate(net, res.params, bce, x[50:], y[50:], ["auc", "r2"])
    assert res.history.history["val_auc"][0] == pytest.approx(val["auc"], rel=1e-10)
    assert res.history.history["val_r2"][0] == pytest.approx(val["r2"], rel=1e-10)
    assert 0.0 <= res.history.history["auc"][0] <= 1.0


# ---------------------------------------------------------------- F1's default, empty means


def test_f1_default_is_keras_argmax_and_one_column_needs_a_threshold():
    y = np.eye(3)[[0, 1, 2, 0]]  # softmax outputs whose argmax is always right, none above 0.5 in row 2
    p = np.array([[0.45, 0.35, 0.2], [0.3, 0.4, 0.3], [0.2, 0.3, 0.5], [0.6, 0.2, 0.2]])
    m = metrics.get("F1Score")
    assert dict(m.options) == {"average": "macro", "threshold": None, "from_logits": False}
    # one compiled program per shape, not an eager one per primitive
    scores = jax.jit(lambda y, p: (m(y, p), metrics.f1_score(y, p), metrics.f1_score(y, p, threshold=0.5)))
    by_class, plain, at_half = scores(y, p)
    assert float(by_class) == pytest.approx(1.0, abs=1e-6)  # Keras F1Score(average="macro"): 1.0
    assert float(plain) == float(by_class)
    # the old cut at 0.5: only row 3's 0.6 is above (class 0: P = 1, R = 1/2), the rest never
    assert float(at_half) == pytest.approx((2 / 3 + 0 + 0) / 3, rel=1e-6)
    # one column: every nonzero score is its row's argmax, all predicted positive (Keras: 0.8)
    yb, pb = np.array([[1.0], [0.0], [1.0]]), np.array([[0.9], [0.2], [0.4]])
    by_class, _, at_half = scores(yb, pb)
    assert float(by_class) == pytest.approx(2 * (2 / 3) / (2 / 3 + 1), rel=1e-6)
    assert float(at_half) == pytest.approx(2 / 3, rel=1e-6)


@pytest.mark.parametrize("name", ["f1_score", "fbeta_score"])
def test_f_scores_from_logits_take_the_argmax_of_the_logits(name):
    """With ``from_logits`` and no threshold the prediction is the logits' argmax, as on the
    softmax's probabilities: the sigmoid first rounded every logit past ~17 to 1 (all tied,
    all predicted) and put rows whose largest logit is below ~-21 under the zero cut."""
    y = np.array([[0, 1, 0], [1, 0, 0]], np.float32)
    z = np.array([[18.0, 25.0, -3.0], [-25.0, -30.0, -40.0]], np.float32)  # both rows' argmax right
    loss = fnn_losses.get("categorical_crossentropy", from_logits=True)
    averages = ("macro", "micro", "weighted")
    from_loss = [metrics.get(name, loss=loss, average=average) for average in averages]  # from_logits off the loss
    for m in from_loss:
        assert dict(m.options)["from_logits"] is True
    at_half = metrics.get(name, from_logits=True, threshold=0.5, average="micro")
    # the inputs concrete (as eager calls see them), every value in one compiled program
    got, wants, at, at_want = staged(
        lambda: (
            [m(y, z) for m in from_loss],
            [metrics.get(name, average=average)(y, jax.nn.softmax(z)) for average in averages],
            at_half(y, z),  # a threshold still cuts the sigmoid's probabilities
            metrics.get(name, threshold=0.5, average="micro")(y, jax.nn.sigmoid(z)),
        )
    )
    for average, value, want in zip(averages, got, wants, strict=True):
        assert float(value) == pytest.approx(float(want), rel=1e-6), average
    assert float(at) == pytest.approx(float(at_want))


def test_a_mean_of_zero_total_weight_is_zero_as_keras_but_r2_stays_nan():
    y, p, w = np.array([[0.0], [1.0], [1.0]]), np.array([[0.2], [0.7], [0.4]]), np.zeros(3)
    names = ("mae", "mse", "rmse", "binary_accuracy", "mape", "binary_crossentropy", "AUC", "precision", "r2")
    # all in one compiled program, not an eager one per primitive
    values = jax.jit(lambda y, p, w: {name: metrics.get(name)(y, p, w) for name in names})(y, p, w)
    for name in names[:-1]:
        assert float(values[name]) == 0.0, name  # Keras: divide_no_nan
    assert float(metrics.get("rmse").result(np.float64(0), np.float64(0))) == 0.0  # on the host too
    assert math.isnan(float(values["r2"]))  # Keras's R2Score: 0 / 0 as well


# ---------------------------------------------------------------- confusion counts and F-beta

_COUNT_NAMES = ("true_positives", "false_positives", "true_negatives", "false_negatives")
AVERAGES = ("micro", "macro", "weighted")
_COUNTS_AND_FBETA = {
    "counts": metrics.get("TruePositives"),  # the four share their update: one for all
    "counts_03": metrics.get("true_positives", threshold=0.3),
    **{f"f2_{a}": metrics.get("fbeta_score", average=a, beta=2.0, threshold=0.5) for a in AVERAGES},
    "f05_argmax": metrics.get("FBetaScore", beta=0.5),  # Keras's default threshold None: argmax
}


def ref_counts_at(y, p, w, threshold):
    """``(tp, fp, tn, fn)`` of all elements in float64, ``w`` per sample (or None)."""
    pos, pred = y != 0, p > threshold
    w = np.ones(len(y)) if w is None else w
    return tuple(float(np.sum(w[:, None] * (pos == a) * (pred == b))) for a, b in ((1, 1), (0, 1), (0, 0), (1, 0)))


def ref_fbeta(y, p, w, beta, average, threshold):
    """Keras's FBetaScore.result in float64, from its update's per-column counts."""
    pred = (p >= p.max(1, keepdims=True)) & (np.abs(p) > 1e-9) if threshold is None else p > threshold
    w = (np.ones(len(y)) if w is None else w)[:, None]
    tp, fp, fn = (np.sum(w * a * b, 0) for a, b in ((pred, y), (pred, 1 - y), (~pred, y)))
    support = np.sum(w * y, 0)
    if average == "micro":
        tp, fp, fn = tp.sum(), fp.sum(), fn.sum()
    precision, recall, b2 = tp / (tp + fp + EPS), tp / (tp + fn + EPS), beta * beta
    f = precision * recall / (b2 * precision + recall + EPS) * (1 + b2)
    return np.sum(f * support / (support.sum() + EPS)) if average == "weighted" else np.mean(f)


@jax.jit
def _counts_family(y, p, w):
    return {k: (m.update(y, p), m.update(y, p, w)) for k, m in _COUNTS_AND_FBETA.items()}


def test_counts_and_fbeta_match_numpy_streamed_over_uneven_batches():
    y, p, w = _multi_label(4)
    (n, c), p[:40] = y.shape, np.round(p[:40], 1)  # some on the thresholds: not above them
    streamed = _stream(_counts_family, y, p, w)  # 256 + 256 + 256 + 232
    for i, sw in enumerate((None, w)):
        for key, threshold in (("counts", 0.5), ("counts_03", 0.3)):
            want = ref_counts_at(y, p, sw, threshold)
            for name, value in zip(_COUNT_NAMES, want, strict=True):
                m = metrics.get(name, threshold=threshold)
                assert float(m.result(*streamed[key][i])) == pytest.approx(value, rel=1e-12), (name, threshold)
            assert sum(want) == pytest.approx(c * (n if sw is None else sw.sum()), rel=1e-12)
        for a in AVERAGES:
            got = float(_COUNTS_AND_FBETA[f"f2_{a}"].result(*streamed["f2_micro"][i]))
            assert got == pytest.approx(ref_fbeta(y, p, sw, 2.0, a, 0.5), rel=1e-12), a
        got = float(_COUNTS_AND_FBETA["f05_argmax"].result(*streamed["f05_argmax"][i]))
        assert got == pytest.approx(ref_fbeta(y, p, sw, 0.5, "macro", None), rel=1e-12)
    # beta = 1 is F1 to the bit, and the one-batch forms are the streamed metric on one batch
    one_batch = jax.jit(
        lambda y, p: (
            metrics.fbeta_score(y, p, threshold=0.5),
            metrics.f1_score(y, p, threshold=0.5),
            metrics.fbeta_score(y, p, "weighted", 2.0, 0.5),
            [f(y, p) for f in (metrics.true_positives, metrics.false_positives, metrics.true_negatives)],
            metrics.false_negatives(y, p, threshold=0.3),
        )
    )(y, p)
    assert float(one_batch[0]) == float(one_batch[1])
    assert float(one_batch[2]) == pytest.approx(ref_fbeta(y, p, None, 2.0, "weighted", 0.5), rel=1e-12)
    assert [float(v) for v in one_batch[3]] == list(ref_counts_at(y, p, None, 0.5)[:3])
    assert float(one_batch[4]) == ref_counts_at(y, p, None, 0.3)[3]


def test_counts_and_fbeta_options_names_and_errors():
    bce = fnn_losses.get("binary_crossentropy", from_logits=True)
    assert dict(metrics.get("FalseNegatives").options) == {"threshold": 0.5, "from_logits": False}
    assert dict(metrics.get("true_negatives", loss=bce).options)["from_logits"]  # logits, as precision's
    assert dict(metrics.get("FBetaScore").options) == {
        "average": "macro", "beta": 1.0, "threshold": None, "from_logits": False
    }  # fmt: skip
    assert metrics.get("true_positives") != metrics.get("false_positives")  # same counts, another result
    assert metrics.get("fbeta_score", beta=2) == metrics.get("fbeta_score", beta=2.0)
    assert {*_COUNT_NAMES, "fbeta_score"} <= set(metrics.names())
    for name, options, error, said in [
        (
            "true_positives",
            {"thresholds": 0.3},
            TypeError,
            r"unknown option.*'thresholds'.*\['from_logits', 'threshold'\]",
        ),
        ("true_positives", {"threshold": 1.5}, ValueError, r"threshold must be in \[0, 1\]"),
        ("false_positives", {"class_id": 0}, TypeError, "unknown option"),
        ("fbeta_score", {"beta": 0.0}, ValueError, "beta must be > 0"),
        ("fbeta_score", {"beta": "2"}, TypeError, "beta must be a real number"),
        ("fbeta_score", {"average": None}, TypeError, "average must be one of"),
        ("f1_score", {"beta": 2.0}, TypeError, r"unknown option.*'beta'"),
    ]:
        with pytest.raises(error, match=said):
            metrics.get(name, **options)
    with pytest.raises(ValueError, match="beta must be > 0"):
        metrics.fbeta_score(np.ones((2, 2)), np.ones((2, 2)), beta=-1.0)
    with pytest.raises(ValueError, match=r"metrics\[0\] = 'fbeta_score' does not fit.*\(N,\) or \(N, C\)"):
        metrics.resolve(["fbeta_score"], y_true_shape=(4, 2, 2), y_pred_shape=(4, 2, 2))


def test_fit_and_evaluate_stream_the_counts_and_fbeta_past_a_padded_last_batch():
    """Learning rate 0: the training entries are the metrics of the initial params over the 50
    training samples (3 batches of 16 and one of 2, padded into the scan: the padding counts
    for nothing), the validation ones over the other 20 with their weights."""
    x, _, params = _data(n=70, c=2)
    rng = np.random.default_rng(8)
    y = (x @ params["w"] + rng.normal(size=(70, 2)) > 0).astype(float)  # two sigmoid columns
    w = rng.uniform(0.5, 2.0, 70)
    bce = fnn_losses.get("binary_crossentropy", from_logits=True)
    net = fnn.mlp([2])
    p0 = net.init(jax.random.key(0), (3,), jnp.float64)
    names = [*_COUNT_NAMES, metrics.get("fbeta_score", beta=2.0, threshold=0.5, loss=bce)]  # reads logits
    stop = fnn.callbacks.EarlyStopping(monitor="val_true_positives")
    with pytest.raises(ValueError, match=r"mode='auto' cannot tell .*'true_positives' is a count"):
        fnn.fit(net, p0, "sgd", bce, x, y, metrics=names, callbacks=[stop], verbose=0)
    res = fnn.fit(
        net, p0, fnn.optimizers.sgd(0.0), bce, x[:50], y[:50], batch_size=16, epochs=1, shuffle=False,
        validation_data=(x[50:], y[50:], w[50:]), sample_weight=w[:50], metrics=names,
        weighted_metrics=["true_positives", "FBetaScore"], verbose=0,
    )  # fmt: skip
    out = fnn.evaluate(net, p0, bce, x, y, names, batch_size=16, sample_weight=w, weighted_metrics=["FalsePositives"])
    z = x @ np.asarray(p0[0]["w"]) + np.asarray(p0[0]["b"])
    prob = 1 / (1 + np.exp(-z))  # the loss's from_logits reaches the metrics: the sigmoid is applied

    def want(rows, sw):
        counts = ref_counts_at(y[rows], prob[rows], None, 0.5)
        out = dict(
            zip(_COUNT_NAMES, counts, strict=True), fbeta_score=ref_fbeta(y[rows], prob[rows], None, 2.0, "macro", 0.5)
        )
        out["weighted_true_positives"] = ref_counts_at(y[rows], prob[rows], sw[rows], 0.5)[0]
        out["FBetaScore"] = ref_fbeta(y[rows], prob[rows], sw[rows], 1.0, "macro", None)
        out["FalsePositives"] = ref_counts_at(y[rows], prob[rows], sw[rows], 0.5)[1]
        return out

    history = res.history.history
    train, val, every = want(slice(0, 50), w), want(slice(50, 70), w), want(slice(0, 70), w)
    assert sum(history[k][0] for k in _COUNT_NAMES) == 100.0  # 50 samples x 2 columns, no padding
    for k in (*_COUNT_NAMES, "fbeta_score", "weighted_true_positives", "FBetaScore"):
        assert history[k][0] == pytest.approx(train[k], rel=1e-10), k
        assert history["val_" + k][0] == pytest.approx(val[k], rel=1e-10), k
    for k in (*_COUNT_NAMES, "fbeta_score", "FalsePositives"):
        assert out[k] == pytest.approx(every[k], rel=1e-10), k


# ---------------------------------------------------------------- Keras's metrics that are losses

EPS = 1e-7


def _np_smooth(t, ls, k):
    return t * (1 - ls) + ls / k


def _np_log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _np_cce(t, p):
    q = np.clip(p / p.sum(-1, keepdims=True), EPS, 1 - EPS)
    return -np.sum(t * np.log(q), -1)


def _np_bce(t, p):
    q = np.clip(p, EPS, 1 - EPS)
    return np.mean(-(t * np.log(q) + (1 - t) * np.log(1 - q)), -1)


def _np_hinge_labels(t):
    return 2 * t - 1 if np.all((t == 0) | (t == 1)) else t  # Keras turns 0/1 labels into -1/1


def _np_unit(v):
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), EPS)


# name -> (options, which data, per-sample values in float64 written from Keras's formulas)
_LOSS_METRICS = {
    "mape": ({}, "reg", lambda t, p: 100 * np.mean(np.abs(t - p) / np.maximum(np.abs(t), EPS), -1)),
    "MSLE": ({}, "reg", lambda t, p: np.mean((np.log1p(np.maximum(p, EPS)) - np.log1p(np.maximum(t, EPS))) ** 2, -1)),
    "LogCoshError": ({}, "reg", lambda t, p: np.mean(np.log(np.cosh(p - t)), -1)),
    "poisson": ({}, "reg", lambda t, p: np.mean(p - t * np.log(p + EPS), -1)),
    "kld": ({}, "dist", lambda t, p: np.sum(np.clip(t, EPS, 1) * np.log(np.clip(t, EPS, 1) / np.clip(p, EPS, 1)), -1)),
    "binary_crossentropy": ({}, "bits", _np_bce),
    "BCE": (
        {"from_logits": True, "label_smoothing": 0.1},
        "bits_logits",
        lambda t, z: np.mean(np.logaddexp(0, z) - _np_smooth(t, 0.1, 2) * z, -1),
    ),
    "categorical_crossentropy": ({"label_smoothing": 0.2}, "dist", lambda t, p: _np_cce(_np_smooth(t, 0.2, 4), p)),
    "CategoricalCrossentropy": (
        {"from_logits": True},
        "dist_logits",
        lambda t, z: -np.sum(t * _np_log_softmax(z), -1),
    ),
    "sparse_categorical_crossentropy": ({}, "labels", lambda t, p: _np_cce(np.eye(4)[t], p)),
    "hinge": ({}, "bits_logits", lambda t, z: np.mean(np.maximum(1 - _np_hinge_labels(t) * z, 0), -1)),
    "SquaredHinge": ({}, "bits_logits", lambda t, z: np.mean(np.maximum(1 - _np_hinge_labels(t) * z, 0) ** 2, -1)),
    "categorical_hinge": (
        {},
        "dist",
        lambda t, p: np.maximum(np.max((1 - t) * p, -1) - np.sum(t * p, -1) + 1, 0),
    ),
    # the metric is the cosine itself (+1: same direction), the loss its negative
    "CosineSimilarity": ({}, "vectors", lambda t, p: np.sum(_np_unit(t) * _np_unit(p), -1)),
}
_LOSS_METRIC_OBJECTS = {name: metrics.get(name, **o) for name, (o, _, _) in _LOSS_METRICS.items()}


def _loss_metric_data(n=23, seed=7):
    rng = np.random.default_rng(seed)
    onehot = np.eye(4)[rng.integers(0, 4, n)]
    bits = (rng.uniform(size=(n, 1)) > 0.5).astype(float)
    return {
        "reg": (rng.uniform(0.1, 3.0, (n, 3)), rng.uniform(0.1, 3.0, (n, 3))),
        "dist": (onehot, rng.dirichlet(np.ones(4), n)),
        "dist_logits": (onehot, rng.normal(size=(n, 4)) * 2),
        "labels": (onehot.argmax(1), rng.dirichlet(np.ones(4), n)),
        "bits": (bits, rng.uniform(0.0, 1.0, (n, 1))),
        "bits_logits": (bits, rng.normal(size=(n, 1)) * 2),
        "vectors": (rng.normal(size=(n, 3)), rng.normal(size=(n, 3))),
    }


@jax.jit
def _loss_metric_updates(data, w):
    return {
        name: (m.update(*data[kind]), m.update(*data[kind], w))
        for (name, (_, kind, _)), m in zip(_LOSS_METRICS.items(), _LOSS_METRIC_OBJECTS.values(), strict=True)
    }


def test_keras_loss_metrics_match_numpy_streamed_over_uneven_batches():
    data, w = _loss_metric_data(), np.random.default_rng(8).uniform(0.0, 2.0, 23)
    w[3] = 0.0
    streamed = _stream(_loss_metric_updates, data, w, bounds=(0, 10, 20, 23))
    for name, (_, kind, ref) in _LOSS_METRICS.items():
        per = ref(*data[kind])
        assert per.shape == (23,), name
        m = _LOSS_METRIC_OBJECTS[name]
        assert m.name == name  # named by the very string asked for
        assert float(m.result(*streamed[name][0])) == pytest.approx(np.mean(per), rel=1e-10), name
        assert float(m.result(*streamed[name][1])) == pytest.approx(np.sum(w * per) / np.sum(w), rel=1e-10), name


def test_a_metric_of_several_numbers_is_named_before_anything_compiles_and_statistics_may_be_python_numbers(compiles):
    """A user's metric whose value is an array (per class) ended fit after its first epoch with
    "Only scalar arrays can be converted", naming nothing; a statistics metric returning a
    Python int (a count) ended it with an AttributeError from the epoch's sums."""
    x = np.linspace(-1, 1, 40).reshape(10, 4)
    y = np.arange(10) % 3
    net = fnn.mlp([3])
    params = net.init(jax.random.PRNGKey(0), (4,), jnp.float64)
    loss = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)

    def per_class(t, p, sample_weight=None):
        hit = jax.nn.one_hot(jnp.argmax(p, -1), 3) * jax.nn.one_hot(t, 3)
        return jnp.sum(hit, 0), jnp.sum(jax.nn.one_hot(t, 3), 0)

    vector = fnn.metrics.Metric("per_class_recall", per_class, finish=lambda hits, n: hits / n)
    message = r"^metrics\[0\] = 'per_class_recall' gives an array of shape \(3,\) on targets of shape \(10,\)"
    with compiles() as c:
        with pytest.raises(TypeError, match=message):
            fnn.fit(net, params, "sgd", loss, x, y, metrics=[vector], epochs=1, verbose=0)
        with pytest.raises(TypeError, match=message):
            fnn.evaluate(net, params, loss, x, y, metrics=[vector])
        with pytest.raises(TypeError, match=r"^metrics\[0\] = 'per_class_recall' gives an array of shape \(3,\)"):
            fnn.eval_step(net, loss, [vector])(params, x, y)  # named while tracing, as well
    assert c.count == 0
    counted = fnn.metrics.Metric(
        "hits",
        lambda t, p, sample_weight=None: (jnp.sum(jnp.argmax(p, -1) == t), t.shape[0]),
        finish=lambda a, n: a / n,
    )
    got = fnn.evaluate(net, params, loss, x, y, metrics=[counted, "accuracy"], batch_size=4)
    assert got["hits"] == pytest.approx(got["accuracy"], abs=1e-12)


def test_keras_loss_metric_names_options_and_errors():
    keras_names = {
        "mape": "mape", "MAPE": "mape", "mean_absolute_percentage_error": "mape", "MeanAbsolutePercentageError": "mape",
        "msle": "msle", "MeanSquaredLogarithmicError": "msle", "log_cosh_error": "log_cosh_error",
        "LogCoshError": "log_cosh_error", "log_cosh": "log_cosh_error", "logcosh": "log_cosh_error",
        "kl_divergence": "kl_divergence", "KLDivergence": "kl_divergence", "kld": "kl_divergence",
        "poisson": "poisson", "Poisson": "poisson", "bce": "binary_crossentropy",
        "BinaryCrossentropy": "binary_crossentropy",
        "categorical_crossentropy": "categorical_crossentropy",
        "SparseCategoricalCrossentropy": "sparse_categorical_crossentropy", "hinge": "hinge", "Hinge": "hinge",
        "squared_hinge": "squared_hinge", "CategoricalHinge": "categorical_hinge",
        "cosine_similarity": "cosine_similarity", "CosineSimilarity": "cosine_similarity",
    }  # fmt: skip
    for asked, canonical in keras_names.items():
        m = metrics.get(asked)
        assert (m.name, m.scores) == (asked, metrics.get(canonical).scores), asked
    assert {"mape", "msle", "binary_crossentropy", "cosine_similarity", "kld"} <= set(metrics.names())
    bce = metrics.get("binary_crossentropy", from_logits=True, label_smoothing=0.1)
    assert dict(bce.options) == {"from_logits": True, "label_smoothing": 0.1}
    same = metrics.get("BCE", from_logits=True, label_smoothing=0.1)  # equal options, equal metric but its name
    assert (same.name, same.scores, same.options) == ("BCE", bce.scores, bce.options)
    assert dict(metrics.get("sparse_categorical_crossentropy").options) == {
        "from_logits": False, "ignore_class": None, "axis": -1
    }  # fmt: skip
    with pytest.raises(TypeError, match=r"unknown option.*'from_logits'.*none"):
        metrics.get("mape", from_logits=True)
    with pytest.raises(TypeError, match=r"unknown option.*'axis'.*\['from_logits', 'label_smoothing'\]"):
        metrics.get("binary_crossentropy", axis=0)
    with pytest.raises(ValueError, match="label_smoothing"):
        metrics.get("categorical_crossentropy", label_smoothing=1.5)
    with pytest.raises(TypeError, match="from_logits"):
        metrics.get("bce", from_logits="yes")
    with pytest.raises(ValueError, match="unknown metric 'huber'"):  # Keras has no Huber metric either
        metrics.get("huber")


def test_loss_metrics_read_the_loss_logits_and_ignored_class():
    rng = np.random.default_rng(9)
    labels, z = np.array([0, 1, 2, 1, 3, 1]), rng.normal(size=(6, 4))
    w = rng.uniform(0.5, 2.0, 6)
    scce = fnn_losses.get("sparse_categorical_crossentropy", from_logits=True, ignore_class=1)
    m = metrics.get("sparse_categorical_crossentropy", loss=scce)
    assert dict(m.options) == {"from_logits": True, "ignore_class": 1, "axis": -1}
    per = -_np_log_softmax(z)[np.arange(6), labels]
    kept = labels != 1  # the ignored samples count for nothing, weighted or not
    plain, weighted, own = jax.jit(lambda t, z, w: (m(t, z), m(t, z, w), scce(t, z)))(labels, z, w)  # one program
    assert float(plain) == pytest.approx(np.mean(per[kept]), rel=1e-10)
    assert float(weighted) == pytest.approx(np.sum((w * per)[kept]) / np.sum(w[kept]), rel=1e-10)
    assert float(plain) == pytest.approx(float(own), rel=1e-10)  # the loss's own value
    # given here, the option wins over the loss's
    assert dict(metrics.get("bce", loss="binary_crossentropy", from_logits=False).options)["from_logits"] is False
    assert dict(metrics.get("bce", loss=fnn_losses.get("bce", from_logits=True)).options)["from_logits"] is True
    # the metric's labels are checked as the sparse losses check theirs (ignore_class allowed)
    checked = metrics.resolve(["sparse_categorical_crossentropy"], loss=scce)
    metrics.check_targets(checked, np.array([0, 1, 3]), (3, 4))
    with pytest.raises(ValueError, match=r"^y: metric 'sparse_categorical_crossentropy': labels must be in \[0, 4\)"):
        metrics.check_targets(metrics.resolve(["sparse_categorical_crossentropy"]), np.array([0, 4]), (2, 4), name="y")
    instead = r"metrics\[0\] = 'categorical_crossentropy' .*for integer labels use 'sparse_categorical_crossentropy'"
    with pytest.raises(ValueError, match=instead):
        metrics.resolve(["categorical_crossentropy"], y_true_shape=(6,), y_pred_shape=(6, 4))
    # a sample of weight 0 adds nothing even where its loss is not finite (fit's padding rows)
    update = jax.jit(metrics.get("poisson").update)  # one program, not an eager one per primitive
    s, c = update(np.array([[1.0], [1.0]]), np.array([[0.5], [-1.0]]), np.array([1.0, 0.0]))
    assert (float(s), float(c)) == pytest.approx((0.5 - np.log(0.5 + EPS), 1.0), rel=1e-12)


def test_evaluate_logs_keras_loss_metrics_plain_and_weighted():
    x, _, params = _data(n=70, c=2)
    rng = np.random.default_rng(10)
    y, w = rng.normal(size=(70, 2)), rng.uniform(0.0, 2.0, 70)
    out = fnn.evaluate(
        LINEAR, params, fnn_losses.get("mse"), x, y, ["CosineSimilarity", "log_cosh"], batch_size=16, sample_weight=w,
        weighted_metrics=["CosineSimilarity"],
    )  # fmt: skip
    p = x @ params["w"] + params["b"]
    cos, lc = np.sum(_np_unit(y) * _np_unit(p), -1), np.mean(np.log(np.cosh(p - y)), -1)
    assert out.keys() == {"loss", "CosineSimilarity", "log_cosh", "weighted_CosineSimilarity"}
    assert out["CosineSimilarity"] == pytest.approx(np.mean(cos), rel=1e-10)
    assert out["weighted_CosineSimilarity"] == pytest.approx(np.sum(w * cos) / np.sum(w), rel=1e-10)
    assert out["log_cosh"] == pytest.approx(np.mean(lc), rel=1e-10)


def test_swapped_byte_order_targets_predictions_and_weights_are_used_by_their_values():
    """Big-endian NumPy arrays (JAX refuses them) score as the native ones: NumPy's values."""
    labels, scores = np.array([0, 2, 1]), np.array([[1.0, 2.0, 0.5], [0.1, -1.0, 3.0], [0.0, 4.0, 0.0]])
    hit = np.argmax(scores, axis=1) == labels
    assert float(metrics.sparse_categorical_accuracy(swapped(labels), swapped(scores))) == hit.mean()
    t, p, w = np.array([1.0, -2.0, 0.5]), np.array([0.0, 1.0, 0.5]), np.array([2.0, 1.0, 4.0])
    total, count = metrics.get("mae").update(swapped(t), swapped(p), sample_weight=swapped(w))
    assert (float(total), float(count)) == (np.sum(w * np.abs(p - t)), np.sum(w))


# ---------------------------------------------------------------- threshold searches (precision_at_recall...)

# each metric and the option its floor is given by (Keras's required argument)
_AT = {
    "precision_at_recall": "recall",
    "recall_at_precision": "precision",
    "sensitivity_at_specificity": "specificity",
    "specificity_at_sensitivity": "sensitivity",
}
# keras 3.15.1 (KERAS_BACKEND=jax): keras.metrics.PrecisionAtRecall(value, **options) (likewise
# RecallAtPrecision, SensitivityAtSpecificity, SpecificityAtSensitivity), update_state on each
# batch, then result(), for the five cases of the test below (data made there)
_KERAS_AT = {
    "precision_at_recall": [0.8615384697914124, 1.0, 0.5, 0.0, 0.8211364150047302],
    "recall_at_precision": [0.9871794581413269, 0.9912668466567993, 0.8999999761581421, 0.0, 0.7166932821273804],
    "sensitivity_at_specificity": [0.807692289352417, 0.9912668466567993, 0.4000000059604645, 0.0, 0.7166932821273804],
    "specificity_at_sensitivity": [0.875, 1.0, 0.4166666567325592, 0.0, 0.8144078850746155],
}


@functools.partial(jax.jit, static_argnums=0)
def _at_updates(ms, y, p, w):
    return [m.update(y, p, w) for m in ms]


def _at_values(value, batches, **options):
    """The four metrics streamed over ``batches`` of ``(y, p, w)`` (one program per batch shape),
    their results taken from the totals on the host; ``value``: one floor for all, or one each."""
    values = value if isinstance(value, tuple) else (value,) * 4
    ms = tuple(metrics.get(name, **{held: v}, **options) for (name, held), v in zip(_AT.items(), values, strict=True))
    parts = [_at_updates(ms, *batch) for batch in batches]
    totals = jax.tree.map(lambda *xs: sum(np.asarray(x) for x in xs), *parts)
    return [float(m.result(*t)) for m, t in zip(ms, totals, strict=True)], totals[0]


def test_threshold_searches_match_keras():
    """Pooled; class_id with weights over batches of 7, 20 and 23; predictions exactly on the
    thresholds j / 10 in float32 (Keras's buckets: float32(0.3) * 10 rounds up, so 0.3 counts
    above t = 0.3; p = 0 counts above none of the grid 0..1, unlike the AUC's -1e-7 end); a
    floor no threshold reaches (0); Keras's single threshold 0.5 for num_thresholds=1."""
    rng = np.random.default_rng(7)  # the same data was given to Keras
    y = rng.integers(0, 2, (50, 3)).astype("float32")
    p = np.clip(0.35 * y + rng.uniform(size=(50, 3)) * 0.65, 0, 1).astype("float32")
    w = rng.uniform(0.0, 2.0, 50).astype("float32")
    pt = (np.arange(11, dtype="float32") / 10).repeat(2)[:, None]
    yt = np.tile([0.0, 1.0], 11).astype("float32")
    yt[[3, 8, 15]] = 1 - yt[[3, 8, 15]]
    yi, pi = np.array([1, 0, 1, 0, 1.0], "float32"), np.array([0.0, 0.9, 0.8, 0.1, 0.6], "float32")
    got = [
        _at_values(0.7, [(y, p, None)])[0],
        _at_values(0.6, [(y[a:b], p[a:b], w[a:b]) for a, b in ((0, 7), (7, 27), (27, 50))], class_id=1)[0],
    ]
    on_grid, counts = _at_values(0.5, [(yt[:, None], pt, None)], num_thresholds=11)
    # Keras's true_positives, false_positives, true_negatives, false_negatives variables there
    assert np.asarray(counts).tolist() == [
        [9, 9, 8, 7, 5, 4, 3, 3, 2, 1, 0], [11, 9, 8, 7, 7, 6, 5, 3, 2, 1, 0],
        [1, 3, 4, 5, 5, 6, 7, 9, 10, 11, 12], [1, 1, 2, 3, 5, 6, 7, 7, 8, 9, 10],
    ]  # fmt: skip
    got += [
        on_grid,
        _at_values((1.0, 0.9, 1.0, 1.0), [(yi, pi, None)])[0],
        _at_values(0.4, [(y[:, 2], p[:, 2], w)], num_thresholds=1)[0],
    ]
    for i, name in enumerate(_AT):
        assert [case[i] for case in got] == pytest.approx(_KERAS_AT[name], rel=1e-6), name
    # the one-batch functions and logits (fnn's from_logits, as precision's)
    z = np.log(p) - np.log1p(-p)
    one = jax.jit(lambda y, p, z: [getattr(metrics, n)(y, p, 0.7) for n in _AT] + [metrics.recall_at_precision(
        y, z, 0.7, from_logits=True)])(y, p, z)  # fmt: skip
    assert [float(v) for v in one] == pytest.approx([*got[0], got[0][1]], rel=1e-6)


def test_fit_and_evaluate_log_the_threshold_searches_under_keras_s_names():
    """Keras's default names (snake case of the class): precision_at_recall, val_...; a class
    name asked for is kept (RecallAtPrecision); the loss's from_logits reaches them."""
    x, _, params = _data(n=40, c=1)
    y = (x @ params["w"][:, 0] + np.random.default_rng(6).normal(size=40) > 0).astype(float)
    bce = fnn_losses.get("binary_crossentropy", from_logits=True)
    net = fnn.mlp([1])
    p0 = net.init(jax.random.key(0), (3,), jnp.float64)
    ms = [metrics.get("precision_at_recall", recall=0.6, loss=bce), metrics.get("RecallAtPrecision", precision=0.7)]
    assert ms[0].name == "precision_at_recall" and ms[1].name == "RecallAtPrecision"
    res = fnn.fit(
        net, p0, fnn.optimizers.sgd(0.0), bce, x[:30], y[:30], batch_size=8, epochs=1, shuffle=False,
        validation_data=(x[30:], y[30:]), metrics=ms, verbose=0,
    )  # fmt: skip
    z = np.asarray(net.apply(p0, x))
    want = jax.jit(
        lambda y, z: [
            # the second built without loss=: the run's loss settles its from_logits too
            (
                metrics.precision_at_recall(y, z, 0.6, from_logits=True),
                metrics.recall_at_precision(y, z, 0.7, from_logits=True),
            )
            for y, z in ((y[:30], z[:30]), (y[30:], z[30:]))
        ]
    )(y, z)
    h = res.history.history
    for key, (i, j) in {"precision_at_recall": (0, 0), "RecallAtPrecision": (0, 1)}.items():
        assert h[key][0] == pytest.approx(float(want[i][j]), rel=1e-10), key
        assert h[f"val_{key}"][0] == pytest.approx(float(want[1][j]), rel=1e-10), key
    with pytest.raises(TypeError, match=r"PrecisionAtRecall needs recall="):
        fnn.evaluate(net, p0, bce, x, y, ["PrecisionAtRecall"])


def test_threshold_searches_refuse_bad_options():
    for bad, error, match in [
        (dict(recall=1.5), ValueError, r"recall must be in \[0, 1\], got 1.5"),
        (dict(recall=-0.1), ValueError, "recall must be in"),
        (dict(recall="0.5"), TypeError, "recall must be a real number"),
        (dict(recall=0.5, num_thresholds=0), ValueError, "num_thresholds must be >= 1, got 0"),
        (dict(recall=0.5, num_thresholds=2.5), TypeError, "num_thresholds must be an int"),
        (dict(recall=0.5, class_id=-1), ValueError, "class_id must be >= 0"),
        (dict(), TypeError, r"PrecisionAtRecall needs recall=.*get\('PrecisionAtRecall', recall=0.8\)"),
        (dict(precision=0.5), TypeError, r"unknown option\(s\) \['precision'\]"),
    ]:
        with pytest.raises(error, match=match):
            metrics.get("PrecisionAtRecall", **bad)
    with pytest.raises(ValueError, match="specificity must be in"):
        metrics.sensitivity_at_specificity([0, 1], [0.2, 0.7], specificity=2.0)
    with pytest.raises(ValueError, match=r"class_id=3 needs y_pred of shape \(N, C\) with C > 3; got y_pred \(8, 3\)"):
        metrics.resolve([metrics.get("recall_at_precision", precision=0.5, class_id=3)], y_true_shape=(8, 3),
                        y_pred_shape=(8, 3))  # fmt: skip
    with pytest.raises(ValueError, match="class_id=0 needs y_pred of shape"):
        metrics.specificity_at_sensitivity([0, 1], [0.2, 0.7], 0.5, class_id=0)


# ---------------------------------------------------------------- IoU and the correlations
_IOU_NAMES = ("iou", "mean_iou", "binary_iou", "one_hot_iou", "one_hot_mean_iou")
# options without a default (Keras's required arguments), for the tests that walk every name
_REQUIRED = {
    "iou": {"num_classes": 2, "target_class_ids": [0]},
    "mean_iou": {"num_classes": 2},
    "one_hot_iou": {"num_classes": 2, "target_class_ids": [0]},
    "one_hot_mean_iou": {"num_classes": 2},
}
# 10 samples of 5 classes: class 2 absent on both sides, class 4 the ignored one in some cases
_IOU_T = np.array([0, 1, 3, 4, 0, 1, 1, 3, 4, 0])
_IOU_P = np.array([0, 1, 1, 3, 4, 1, 0, 3, 0, 3])
_IOU_S = np.eye(5)[_IOU_P] * 0.6 + 0.1  # scores whose argmax is _IOU_P
_BIN_T = np.array([0, 1, 1, 0, 1, 0, 1, 1, 0, 0])
_BIN_P = np.array([0.1, 0.8, 0.3, 0.5, 0.2, 0.6, 0.9, 0.4, 0.05, 0.3])
_W = np.array([1.0, 0.5, 2.0, 1.0, 1.5, 0.25, 1.0, 3.0, 1.0, 0.75])
_CORR_T = np.array([[0.1, 0.5, 0.9], [1.0, 0.2, 0.4], [0.3, 0.3, 0.8], [0.9, 0.1, 0.2], [0.5, 0.6, 0.7],
                    [0.2, 0.9, 0.4], [0.7, 0.7, 0.1], [0.4, 0.8, 0.6], [0.6, 0.2, 0.9], [0.8, 0.4, 0.3]])  # fmt: skip
_CORR_P = np.array([[0.2, 0.4, 0.8], [0.9, 0.3, 0.3], [0.1, 0.5, 0.6], [0.7, 0.2, 0.4], [0.4, 0.4, 0.9],
                    [0.3, 0.8, 0.2], [0.5, 0.9, 0.2], [0.6, 0.6, 0.5], [0.5, 0.1, 0.7], [0.9, 0.5, 0.1]])  # fmt: skip


def _streamed(m, y_true, y_pred, w=None):
    """``m``'s partial sums over batches of 5, 3 and 2 samples, and the value of their totals,
    as Keras's stateful metric after three ``update_state`` calls (jittable)."""
    cuts = ((0, 5), (5, 8), (8, 10))
    parts = [m.update(y_true[a:b], y_pred[a:b], None if w is None else w[a:b]) for a, b in cuts]
    return m.result(*[sum(p) for p in zip(*parts, strict=True)])


# Keras 3.15.1 (KERAS_BACKEND=jax), the class on the same data streamed over the same three
# batches: e.g. keras.metrics.MeanIoU(5, ignore_class=4, dtype="float32") then update_state per
# batch and result(). Weighted cases use dtype="float32": Keras's default int dtype truncates
# fractional weights.
_KERAS_STREAMED = [
        ("MeanIoU", {"num_classes": 5, "ignore_class": 4}, _IOU_T, _IOU_P, _W, 0.2392583191394806),
        ("IoU", {"num_classes": 5, "target_class_ids": [1, 3]}, _IOU_T, _IOU_P, _W, 0.3222222328186035),
        ("iou", {"num_classes": 5, "target_class_ids": [2]}, _IOU_T, _IOU_P, None, 0.0),  # absent: 0
        ("iou", {"num_classes": 5, "target_class_ids": [0, 4], "sparse_y_pred": False}, _IOU_T, _IOU_S, None, 0.1),
        ("OneHotMeanIoU", {"num_classes": 5}, np.eye(5)[_IOU_T], _IOU_S, _W, 0.20873016119003296),
        ("OneHotIoU", {"num_classes": 5, "target_class_ids": [0, 1], "ignore_class": 4}, np.eye(5)[_IOU_T], _IOU_S,
         None, 0.375),
        # class ids as y_pred (sparse_y_pred=True): one-hot rows against ids of their shape less the class axis
        ("OneHotIoU", {"num_classes": 5, "target_class_ids": [0, 1], "ignore_class": 4, "sparse_y_pred": True},
         np.eye(5)[_IOU_T], _IOU_P, None, 0.375),
        ("OneHotMeanIoU", {"num_classes": 5, "sparse_y_pred": True}, np.eye(5)[_IOU_T], _IOU_P, _W,
         0.20873016119003296),
        ("BinaryIoU", {}, _BIN_T, _BIN_P, None, 0.3303571343421936),
        ("BinaryIoU", {"target_class_ids": [1], "threshold": 0.3}, _BIN_T, _BIN_P, _W, 0.6499999165534973),
        ("PearsonCorrelation", {}, _CORR_T, _CORR_P, None, 0.8097604513168335),
        ("PearsonCorrelation", {}, _CORR_T, _CORR_P, _W, 0.6486856937408447),
        ("pearson_correlation", {}, _CORR_T[:, 0], _CORR_P[:, 0], None, 0.8382470011711121),  # per batch, plain mean
        ("ConcordanceCorrelation", {}, _CORR_T, _CORR_P, _W, 0.5702260732650757),
        ("concordance_correlation", {"axis": 0}, _CORR_T, _CORR_P, None, 0.6113799214363098),
]  # fmt: skip


def test_iou_and_correlations_streamed_match_keras():
    """Every case in one compiled function (one compilation, where eager dispatch would compile
    each operation for each batch shape)."""
    ms = [metrics.get(name, **options) for name, options, *_ in _KERAS_STREAMED]
    data = [case[2:5] for case in _KERAS_STREAMED]
    got = jax.jit(lambda data: [_streamed(m, *d) for m, d in zip(ms, data, strict=True)])(data)
    for case, value in zip(_KERAS_STREAMED, got, strict=True):
        assert float(value) == pytest.approx(case[-1], rel=1e-6, abs=1e-7), case[:2]


def test_iou_and_correlation_one_batch_forms_and_keras_edge_cases():
    @jax.jit
    def values():
        return (
            # Keras's docstring example (keras/src/metrics/iou_metrics.py, 3.15.1: 0.23809525)
            metrics.get("MeanIoU", num_classes=2)([0, 0, 1, 1], [0, 1, 0, 1], sample_weight=[0.3, 0.3, 0.3, 0.1]),
            # Keras 3.15.1 MeanIoU(3): labels outside [0, 3) dropped, float predictions truncated (1.7 -> 1)
            metrics.mean_iou(np.array([0, 1, 2, 5, -1]), np.array([0.9, 1.7, 2, 1, 1]), num_classes=3),
            metrics.get("mean_iou", num_classes=3).result(jnp.zeros((3, 3))),  # nothing seen: 0
            # Keras 3.15.1 PearsonCorrelation: (N,) against (N, 1) is N rows of one value each, NaN
            metrics.pearson_correlation(np.array([[1.0], [2.0], [3.0]]), np.array([1.0, 2.0, 2.0])),
            metrics.concordance_correlation(_CORR_T, _CORR_T),  # 1 but for the 1e-7 Keras adds
        )

    docstring, truncated, empty, rows_of_one, same = (float(v) for v in values())
    assert (docstring, truncated, same) == pytest.approx((0.23809525, 1.0, 1.0), rel=1e-5)
    assert empty == 0.0 and np.isnan(rows_of_one)


def test_iou_and_correlation_names_options_and_errors():
    assert {*_IOU_NAMES, "pearson_correlation", "concordance_correlation"} <= set(metrics.names())
    a, b = metrics.get("MeanIoU", num_classes=3), metrics.get("mean_iou", num_classes=np.int64(3))
    assert (a.name, a.scores, a.options) == ("MeanIoU", b.scores, b.options)
    assert dict(metrics.get("BinaryIoU").options) == {"target_class_ids": (0, 1), "threshold": 0.5}
    assert dict(metrics.get("OneHotIoU", num_classes=3, target_class_ids=[2]).options)["target_class_ids"] == (2,)
    for name, options, error, said in [
        ("MeanIoU", {}, TypeError, "needs num_classes="),
        ("IoU", {"num_classes": 3}, TypeError, "needs target_class_ids="),
        ("iou", {"num_classes": 0, "target_class_ids": [0]}, ValueError, "num_classes must be >= 1"),
        ("iou", {"num_classes": 2.0, "target_class_ids": [0]}, TypeError, "num_classes must be an int"),
        ("iou", {"num_classes": 3, "target_class_ids": [3]}, ValueError, r"class id 3 is out of range.*\[0, 3\)"),
        ("iou", {"num_classes": 3, "target_class_ids": []}, ValueError, "at least one class"),
        ("BinaryIoU", {"target_class_ids": [2]}, ValueError, "out of range"),
        ("BinaryIoU", {"num_classes": 2}, TypeError, "unknown option"),
        ("mean_iou", {"num_classes": 3, "ignore_class": 1.5}, TypeError, "ignore_class must be an int"),
        ("one_hot_iou", {"num_classes": 3, "target_class_ids": [0], "sparse_y_true": True}, TypeError, "unknown"),
        ("pearson_correlation", {"axis": "last"}, TypeError, "axis must be an int"),
    ]:
        with pytest.raises(error, match=said):
            metrics.get(name, **options)
    with pytest.raises(ValueError, match=r"one predicted class per label.*pass sparse_y_pred=False"):
        metrics.mean_iou(_IOU_T, _IOU_S, num_classes=5)  # scores given as labels
    with pytest.raises(ValueError, match=r"metrics\[0\] = 'MeanIoU' does not fit"):
        metrics.resolve([metrics.get("MeanIoU", num_classes=3)], y_true_shape=(8,), y_pred_shape=(8, 3))
    with pytest.raises(ValueError, match="y_true and y_pred must have the same shape"):
        metrics.pearson_correlation(np.zeros((4, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="a batch's single correlation takes no weights"):
        metrics.get("pearson_correlation").update(_CORR_T[:, 0], _CORR_P[:, 0], _W)  # Keras refuses too
    with pytest.raises(ValueError, match=r"axis 5 is out of range for inputs of shape \(4, 3\)"):
        metrics.get("pearson_correlation", axis=5).update(np.ones((4, 3)), np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"one-hot targets of y_pred's shape \(4, 3\), got y_true \(4,\)"):
        metrics.one_hot_mean_iou(np.zeros(4, int), np.ones((4, 3)), num_classes=3)  # labels, not one-hot rows
    with pytest.raises(ValueError, match=r"sparse_y_pred=True needs class ids of y_true's shape \(4, 3\) without its "
                       r"class axis, \(4,\); got y_pred \(4, 3\)"):  # fmt: skip
        metrics.one_hot_mean_iou(np.eye(3)[[0, 1, 2, 0]], np.ones((4, 3)), num_classes=3, sparse_y_pred=True)
    assert float(metrics.one_hot_iou(np.eye(3)[[0, 1, 2]], [0, 1, 1], 3, [0, 1], sparse_y_pred=True)) == pytest.approx(
        0.75, rel=1e-6
    )  # Keras 3.15.1's OneHotIoU(3, [0, 1], sparse_y_pred=True): 0.75
    with pytest.raises(TypeError, match=r"known when it is set, got a traced value.*static argument"):
        jax.jit(metrics.precision_at_recall)(np.array([0, 1]), np.array([0.2, 0.7]), 0.5)


def test_fit_and_evaluate_log_iou_and_correlation_as_keras_names_them():
    """Learning rate 0 over 50 samples in batches of 16 (a padded last batch, whose padding
    counts for nothing): the entries are the metrics of the initial params over the training
    and validation rows, named as asked."""
    x, labels, _ = _data(n=70, c=3)
    y = np.eye(3)[labels]
    net = fnn.mlp([3])
    p0 = net.init(jax.random.key(0), (3,), jnp.float64)
    loss = fnn_losses.get("categorical_crossentropy", from_logits=True)
    asked = [metrics.get("OneHotMeanIoU", num_classes=3), "PearsonCorrelation"]
    res = fnn.fit(
        net, p0, fnn.optimizers.sgd(0.0), loss, x[:50], y[:50], batch_size=16, epochs=1, shuffle=False,
        validation_data=(x[50:], y[50:]), metrics=asked, verbose=0,
    )  # fmt: skip
    z = x @ np.asarray(p0[0]["w"]) + np.asarray(p0[0]["b"])
    history = res.history.history
    for prefix, rows in (("", slice(0, 50)), ("val_", slice(50, 70))):
        cm = np.zeros((3, 3))
        np.add.at(cm, (labels[rows], z[rows].argmax(1)), 1.0)
        tp, den = np.diag(cm), cm.sum(0) + cm.sum(1) - np.diag(cm)
        want_iou = np.sum(tp[den > 0] / (den[den > 0] + 1e-7)) / (np.sum(den > 0) + 1e-7)
        want_r = np.mean([np.corrcoef(a, b)[0, 1] for a, b in zip(y[rows], z[rows], strict=True)])
        assert history[prefix + "OneHotMeanIoU"][0] == pytest.approx(want_iou, rel=1e-12)
        assert history[prefix + "PearsonCorrelation"][0] == pytest.approx(want_r, rel=1e-12)
    out = fnn.evaluate(net, p0, loss, x[50:], y[50:], asked, batch_size=16)
    assert out["OneHotMeanIoU"] == pytest.approx(history["val_OneHotMeanIoU"][0], rel=1e-12)
