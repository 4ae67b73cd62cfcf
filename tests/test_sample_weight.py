"""Sample and class weights in fit and evaluate, with Keras 3's semantics: a batch's loss is
``sum(w * loss_i) / batch size``, ``metrics`` are not weighted and ``weighted_metrics`` are
weighted means (``CompileMetrics``), ``class_weight`` is the per-class ``sample_weight``,
validation data may carry weights as a third element."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import optimizers as O

KEY = jax.random.PRNGKey(0)
NET = fnn.mlp([5, 3], activation="tanh")


def _problem(n=12):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4))
    labels = rng.integers(0, 3, size=n)
    return x, labels, rng.uniform(0.0, 2.0, size=n)


@jax.jit  # one program per shape, not an eager one per primitive
def _reference_loss(params, x, labels, w):
    """Sparse categorical cross-entropy from logits, weighted, Keras's reduction: sum(w*l)/N."""
    h = jnp.tanh(x @ params[0]["w"] + params[0]["b"])
    z = h @ params[1]["w"] + params[1]["b"]
    logp = jax.nn.log_softmax(z)
    per_sample = -jnp.take_along_axis(logp, labels[:, None], axis=1)[:, 0]
    return jnp.sum(w * per_sample) / x.shape[0]


SCE = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)


def _hits(params, x, labels):
    """1.0 where the network's argmax is the label (NumPy)."""
    h = np.tanh(x @ np.asarray(params[0]["w"]) + np.asarray(params[0]["b"]))
    z = h @ np.asarray(params[1]["w"]) + np.asarray(params[1]["b"])
    return (np.argmax(z, axis=1) == labels).astype(float)


def test_a_weighted_full_batch_step_follows_the_hand_weighted_gradient():
    x, labels, w = _problem()
    params = NET.init(KEY, (4,), jnp.float64)
    res = fnn.fit(NET, params, O.sgd(0.5), SCE, x, labels, sample_weight=w, batch_size=12, epochs=1,
                  shuffle=False, verbose=0)  # fmt: skip
    value, grads = jax.jit(jax.value_and_grad(_reference_loss))(params, x, labels, w)
    want = jax.tree.map(lambda p, g: np.asarray(p) - 0.5 * np.asarray(g), params, grads)  # NumPy: no program
    for a, b in zip(jax.tree.leaves(res.params), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(res.history["loss"][0], float(value), rtol=1e-12)


def test_bool_weights_weigh_as_zeros_and_ones():
    """Keras casts bool sample weights to float: True weighs 1 and False 0."""
    x, labels, _ = _problem()
    mask = np.arange(12) % 3 != 0
    params = NET.init(KEY, (4,), jnp.float64)
    kw = dict(batch_size=12, epochs=1, shuffle=False, verbose=0)
    got = fnn.fit(NET, params, O.sgd(0.5), SCE, x, labels, sample_weight=mask, **kw)
    want = fnn.fit(NET, params, O.sgd(0.5), SCE, x, labels, sample_weight=mask.astype(float), **kw)
    assert got.history["loss"] == want.history["loss"]
    np.testing.assert_allclose(
        got.history["loss"][0], float(_reference_loss(params, x, labels, mask * 1.0)), rtol=1e-12
    )
    assert fnn.evaluate(NET, params, SCE, x, labels, sample_weight=mask) == fnn.evaluate(
        NET, params, SCE, x, labels, sample_weight=mask.astype(float)
    )


def test_weights_scale_the_gradient_not_the_batching():
    # Doubling every weight doubles the step of SGD; weights of one are no weights at all.
    x, labels, _ = _problem()
    params = NET.init(KEY, (4,), jnp.float64)
    kw = dict(batch_size=5, epochs=1, shuffle=False, verbose=0)
    plain = fnn.fit(NET, params, O.sgd(0.2), SCE, x, labels, **kw)
    ones = fnn.fit(NET, params, O.sgd(0.2), SCE, x, labels, sample_weight=np.ones(12), **kw)
    twice = fnn.fit(NET, params, O.sgd(0.1), SCE, x, labels, sample_weight=np.full(12, 2.0), **kw)
    for a, b, c in zip(*(jax.tree.leaves(r.params) for r in (plain, ones, twice)), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13)
        np.testing.assert_allclose(a, c, rtol=1e-12)


def test_class_weight_equals_the_corresponding_sample_weight():
    x, labels, _ = _problem()
    params = NET.init(KEY, (4,), jnp.float64)
    cw = {0: 0.5, 1: 2.0}  # class 2 not named: weight 1, as in Keras
    kw = dict(batch_size=5, epochs=2, key=jax.random.PRNGKey(3), verbose=0, metrics=["accuracy"])
    by_class = fnn.fit(NET, params, O.adam(0.05), SCE, x, labels, class_weight=cw, **kw)
    sw = np.array([cw.get(int(c), 1.0) for c in labels])
    by_sample = fnn.fit(NET, params, O.adam(0.05), SCE, x, labels, sample_weight=sw, **kw)
    assert by_class.history.history == by_sample.history.history
    for a, b in zip(jax.tree.leaves(by_class.params), jax.tree.leaves(by_sample.params), strict=True):
        np.testing.assert_array_equal(a, b)
    # whole-number float keys, as np.unique of float labels gives them, name the classes (Keras)
    floats = fnn.fit(NET, params, O.adam(0.05), SCE, x, labels, class_weight={np.float32(0): 0.5, 1.0: 2.0}, **kw)
    assert floats.history.history == by_class.history.history
    # bfloat16 keys and weights (ml_dtypes' scalars) as float16 ones
    bf16 = np.dtype(jnp.bfloat16).type
    halves = fnn.fit(NET, params, O.adam(0.05), SCE, x, labels, class_weight={bf16(0): bf16(0.5), 1: bf16(2)}, **kw)
    assert halves.history.history == by_class.history.history
    # one-hot targets: the class is the argmax of the row
    one_hot = np.eye(3)[labels]
    cce = fnn.losses.get("categorical_crossentropy", from_logits=True)
    a = fnn.fit(NET, params, O.adam(0.05), cce, x, one_hot, class_weight=cw, **kw)
    b = fnn.fit(NET, params, O.adam(0.05), cce, x, one_hot, sample_weight=sw, **kw)
    assert a.history.history == b.history.history


def test_class_weight_names_a_hinge_loss_s_negative_class_as_keras_does():
    """Keras looks each label up as ``class_weight.get(int(label), 1.0)``: -1 and 1, a hinge
    loss's labels, are classes; fnn refused -1 as not a class index."""
    x, _, _ = _problem()
    y = np.where(x[:, :1] > 0, 1.0, -1.0)
    net = fnn.mlp([1])
    params = net.init(KEY, (4,), jnp.float64)
    kw = dict(batch_size=5, epochs=2, shuffle=False, verbose=0)
    by_class = fnn.fit(net, params, O.sgd(0.1), "hinge", x, y, class_weight={-1: 2.0, 1: 0.5}, **kw)
    by_sample = fnn.fit(net, params, O.sgd(0.1), "hinge", x, y, sample_weight=np.where(y[:, 0] < 0, 2.0, 0.5), **kw)
    assert by_class.history.history == by_sample.history.history
    assert by_class.history.history != fnn.fit(net, params, O.sgd(0.1), "hinge", x, y, **kw).history.history


def test_a_loss_object_or_function_as_a_weighted_metric_is_the_weighted_mean_of_its_per_sample_values():
    """``weighted_metrics=[fnn.losses.get("log_cosh")]`` (or a custom loss, or the function
    ``fnn.losses.log_cosh``) gave the unweighted mean at one batch and another number at
    another: the loss's call is its batch's mean, weighed as one number. Each is now the
    name's, ``sum(w * l) / sum(w)``, whatever the batching; a loss of its whole batch (dice) is
    still its batches' mean."""
    x, _, w = _problem(13)
    y = np.stack([np.sin(x[:, 0]), x[:, 1] * x[:, 2]], axis=1)
    net = fnn.mlp([2])
    params = net.init(KEY, (4,), jnp.float64)
    per = np.mean(np.log(np.cosh(np.asarray(net.apply(params, x)) - y)), axis=-1)
    weighted, plain = np.sum(w * per) / np.sum(w), np.mean(per)
    mine = fnn.losses.custom("my_log_cosh", lambda t, p: jnp.mean(jnp.log(jnp.cosh(p - t)), axis=-1))
    for metric in ("log_cosh", fnn.losses.get("log_cosh"), fnn.losses.log_cosh, mine):
        for batch_size in (13, 4):
            got = fnn.evaluate(
                net, params, "mse", x, y, metrics=[metric], weighted_metrics=[metric], sample_weight=w,
                batch_size=batch_size,
            )  # fmt: skip
            name = "my_log_cosh" if metric is mine else "log_cosh"
            assert got[name] == pytest.approx(plain, rel=1e-12), (metric, batch_size)
            assert got[f"weighted_{name}"] == pytest.approx(weighted, rel=1e-12), (metric, batch_size)
    assert fnn.metrics.get(fnn.losses.get("mse")) == fnn.metrics.get(fnn.losses.get("mse"))  # cached on value


def test_class_weight_is_refused_for_several_predictions_per_sample():
    """Per-timestep outputs (N, T, C) with labels (N, T): one class per sample does not exist
    (the labels were argmax'ed across time); Keras refuses class_weight there too."""
    x = np.random.default_rng(1).normal(size=(6, 3, 4))
    labels = np.zeros((6, 3), np.int64)
    net = fnn.serial(fnn.Dense(2))
    with pytest.raises(ValueError, match=r"class_weight .* outputs \(6, 3, 2\) hold several predictions per sample"):
        fnn.fit(net, net.init(KEY, (3, 4), jnp.float64), O.sgd(0.1), SCE, x, labels, class_weight={1: 2.0}, verbose=0)


def test_evaluate_and_validation_weights_match_numpy():
    x, labels, w = _problem()
    params = NET.init(KEY, (4,), jnp.float64)
    want = float(_reference_loss(params, x, labels, w))
    got = fnn.evaluate(NET, params, SCE, x, labels, sample_weight=w, batch_size=5, metrics=["accuracy"],
                       weighted_metrics=["accuracy", "ACC"])  # fmt: skip
    np.testing.assert_allclose(got["loss"], want, rtol=1e-12)
    hit = _hits(params, x, labels)
    # Keras 3: metrics unweighted, weighted_metrics weighted, a taken name prefixed with weighted_
    assert list(got) == ["loss", "accuracy", "weighted_accuracy", "ACC"]
    np.testing.assert_allclose(got["accuracy"], np.mean(hit), rtol=1e-12)
    np.testing.assert_allclose(got["weighted_accuracy"], np.sum(w * hit) / np.sum(w), rtol=1e-12)
    assert got["ACC"] == got["weighted_accuracy"]
    # validation data with weights as its third element (Keras), and validation_split splits them
    res = fnn.fit(NET, params, O.sgd(0.0), SCE, x[:8], labels[:8], validation_data=(x[8:], labels[8:], w[8:]),
                  batch_size=4, verbose=0, shuffle=False)  # fmt: skip
    np.testing.assert_allclose(res.history["val_loss"][0], float(_reference_loss(params, x[8:], labels[8:], w[8:])),
                               rtol=1e-12)  # fmt: skip
    # bfloat16 weights, NumPy's (ml_dtypes) and jax's, are real numbers as float16 ones are: the
    # float64 loss of the same values
    wb = np.asarray(w, jnp.bfloat16)
    exact = float(_reference_loss(params, x, labels, wb.astype(np.float64)))
    for weights in (wb, jax.device_put(wb), wb.astype(np.float16)):
        got_b = fnn.evaluate(NET, params, SCE, x, labels, sample_weight=weights, batch_size=5)["loss"]
        np.testing.assert_allclose(got_b, exact, rtol=1e-12)
    val_b = fnn.fit(NET, params, O.sgd(0.0), SCE, x[:8], labels[:8], validation_data=(x[8:], labels[8:], wb[8:]),
                    batch_size=4, verbose=0, shuffle=False)  # fmt: skip
    np.testing.assert_allclose(val_b.history["val_loss"][0], float(_reference_loss(params, x[8:], labels[8:],
                               wb[8:].astype(np.float64))), rtol=1e-12)  # fmt: skip
    split = fnn.fit(NET, params, O.sgd(0.0), SCE, x, labels, sample_weight=w, validation_split=1 / 3,
                    batch_size=4, verbose=0, shuffle=False)  # fmt: skip
    assert split.history["val_loss"] == res.history["val_loss"]
    assert split.history["loss"][0] == pytest.approx(float(_reference_loss(params, x[:8], labels[:8], w[:8])),
                                                     rel=1e-12)  # fmt: skip


def test_fit_weighs_weighted_metrics_only_as_keras_3_does():
    """13 training rows in batches of 4 (the last one padded into the scan, its extra rows masked
    out of every metric), weights of their own on the validation data; a learning rate of 0
    keeps the params, so every epoch's metrics are NumPy's on the initial ones."""
    x, labels, w = _problem(n=18)
    params = NET.init(KEY, (4,), jnp.float64)
    (xt, lt, wt), (xv, lv, wv) = (x[:13], labels[:13], w[:13]), (x[13:], labels[13:], w[13:])
    hit_t, hit_v = _hits(params, xt, lt), _hits(params, xv, lv)
    cw = {0: 0.5, 2: 3.0}
    cwt = np.array([cw.get(int(c), 1.0) for c in lt])
    kw = dict(batch_size=4, epochs=2, verbose=0, metrics=["accuracy"], weighted_metrics=["accuracy", "ACC"])
    runs = {
        "sample_weight": (fnn.fit(NET, params, O.sgd(0.0), SCE, xt, lt, sample_weight=wt,
                                  validation_data=(xv, lv, wv), **kw), wt),
        "class_weight": (fnn.fit(NET, params, O.sgd(0.0), SCE, xt, lt, class_weight=cw,
                                 validation_data=(xv, lv, wv), **kw), cwt),
    }  # fmt: skip
    for how, (res, weights) in runs.items():
        h = res.history
        assert list(h) == [
            "loss", "accuracy", "weighted_accuracy", "ACC", "val_loss", "val_accuracy", "val_weighted_accuracy",
            "val_ACC",
        ], how  # fmt: skip
        want = {
            "accuracy": np.mean(hit_t),
            "weighted_accuracy": np.sum(weights * hit_t) / np.sum(weights),
            "val_accuracy": np.mean(hit_v),
            "val_weighted_accuracy": np.sum(wv * hit_v) / np.sum(wv),
        }
        want["ACC"], want["val_ACC"] = want["weighted_accuracy"], want["val_weighted_accuracy"]
        for k, v in want.items():
            np.testing.assert_allclose(h[k], [v, v], rtol=1e-12, err_msg=f"{how}: {k}")
        assert want["accuracy"] != pytest.approx(want["weighted_accuracy"])  # the weights do matter here
    # fit_many: the validation data's weights are its only weights
    stacked = jax.device_put(jax.tree.map(lambda a: np.stack([a, a]), params))  # NumPy: no stack program
    many = fnn.fit_many(NET, stacked, O.sgd(0.0), SCE, xt, lt, validation_data=(xv, lv, wv), **kw)
    for h in many.histories:
        np.testing.assert_allclose(h["accuracy"], [np.mean(hit_t)] * 2, rtol=1e-12)
        np.testing.assert_allclose(h["weighted_accuracy"], [np.mean(hit_t)] * 2, rtol=1e-12)
        np.testing.assert_allclose(h["val_accuracy"], [np.mean(hit_v)] * 2, rtol=1e-12)
        np.testing.assert_allclose(h["val_weighted_accuracy"], [np.sum(wv * hit_v) / np.sum(wv)] * 2, rtol=1e-12)


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        (dict(sample_weight=np.ones(5)), ValueError, r"sample_weight must have one weight per sample, shape \(12,\)"),
        (dict(sample_weight=-np.ones(12)), ValueError, r"sample_weight must be finite and >= 0; sample_weight\[0\]"),
        (dict(sample_weight=np.full(12, np.nan)), ValueError, "sample_weight must be finite"),
        (dict(sample_weight=["a"] * 12), TypeError, "sample_weight must hold real numbers"),
        (dict(class_weight=[1.0, 2.0]), TypeError, r"class_weight must be a dict"),
        (dict(class_weight={0: -1.0}), ValueError, r"class_weight\[0\] must be >= 0"),
        (dict(class_weight={"a": 1.0}), ValueError, "class_weight keys must be class labels"),
        (dict(class_weight={0.5: 1.0}), ValueError, r"class labels \(whole numbers\), got 0.5"),
        (dict(class_weight={0: 1.0}, sample_weight=np.ones(12)), ValueError, "not both"),
        (dict(validation_data=(np.ones((2, 4)), np.zeros(2), np.ones(3))), ValueError, r"validation_data\[2\]"),
        (dict(weighted_metrics=3), TypeError, "^weighted_metrics must be a list of names"),
        (dict(weighted_metrics=["accuracy", "nosuch"]), ValueError, "unknown metric 'nosuch'"),
        (
            dict(weighted_metrics=["categorical_accuracy"]),
            ValueError,
            r"^weighted_metrics\[0\] = 'categorical_accuracy' does not fit targets y of shape \(12,\)",
        ),
        (
            dict(weighted_metrics=[dataclasses.replace(fnn.metrics.get("acc", loss=SCE), name="val_acc")]),
            ValueError,
            r"^weighted_metrics\[0\]: metric name 'val_acc' is reserved",
        ),
    ],
)
def test_bad_weights_are_named_before_anything_compiles(kwargs, error, message, compiles):
    x, labels, _ = _problem()
    params = NET.init(KEY, (4,), jnp.float64)
    with compiles() as c, pytest.raises(error, match=message):
        fnn.fit(NET, params, O.sgd(0.1), SCE, x, labels, verbose=0, **kwargs)
    assert c.count == 0
