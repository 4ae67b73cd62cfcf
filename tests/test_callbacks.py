"""Callbacks on scripted monitor sequences (Keras's algorithms), without compiling anything."""

import csv
import functools
import math
import os
import re
import warnings

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import swapped

import fnn
from fnn import optimizers as O
from fnn.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    FitContext,
    LearningRateScheduler,
    ModelCheckpoint,
    ReduceLROnPlateau,
    StopAtThreshold,
    TerminateOnNaN,
)
from fnn.metrics._resolve import resolve_both
from fnn.train import History
from fnn.train._callback_checks import check_against_logs


def _run(cb, values, monitor="loss", opt_state=None):
    """Drives ``cb`` through epochs whose params are ``{"w": epoch}``; returns (epochs run, ctx)."""
    ctx = FitContext(
        net=None,
        params={"w": jnp.asarray(-1.0)},
        opt_state=opt_state,
        history=History(1),
        epochs=len(values),
        iterations_per_epoch=1,
    )
    cb.on_train_begin(ctx)
    ran = 0
    for epoch, value in enumerate(values):
        cb.on_epoch_begin(epoch, ctx)
        ctx.params = {"w": jnp.asarray(float(epoch))}
        logs = {monitor: value}
        cb.on_epoch_end(epoch, logs, ctx)
        ran += 1
        if ctx.stop_training:
            break
    cb.on_train_end(ctx)
    return ran, ctx


@pytest.mark.parametrize(
    "kwargs,values,monitor,expected_epochs",
    [
        # patience 2: 0.95 and 0.92 do not beat 0.9 -> stop after epoch index 3
        (dict(patience=2), [1.0, 0.9, 0.95, 0.92, 0.91, 0.8], "loss", 4),
        # patience 0 stops at the first non-improving epoch
        (dict(patience=0), [1.0, 0.9, 0.95, 0.5], "loss", 3),
        # min_delta 0.05: 0.97 is not enough of an improvement on 1.0
        (dict(patience=1, min_delta=0.05), [1.0, 0.97, 0.96, 0.9], "loss", 2),
        # negative min_delta is taken by its absolute value, as in Keras
        (dict(patience=1, min_delta=-0.05), [1.0, 0.97, 0.96, 0.9], "loss", 2),
        # mode max: an equal value is no improvement
        (dict(monitor="val_accuracy", mode="max", patience=1), [0.5, 0.6, 0.6, 0.55], "val_accuracy", 3),
        # explicit mode max on a loss-like name
        (dict(monitor="score", mode="max", patience=1), [1.0, 2.0, 1.5, 3.0], "score", 3),
        # baseline never beaten: improvements don't reset the wait, the first non-improvement stops
        (dict(patience=2, baseline=0.5), [0.9, 0.8, 0.85, 0.7], "loss", 3),
        # the same sequence without baseline runs on
        (dict(patience=2), [0.9, 0.8, 0.85, 0.7], "loss", 4),
        # start_from_epoch: the first two epochs are not monitored at all
        (dict(patience=1, start_from_epoch=2), [5.0, 6.0, 1.0, 1.1, 1.2], "loss", 4),
    ],
)
def test_early_stopping_scripted(kwargs, values, monitor, expected_epochs):
    kwargs.setdefault("monitor", monitor)
    ran, ctx = _run(EarlyStopping(**kwargs), values, monitor)
    assert ran == expected_epochs
    assert ctx.stop_training == (expected_epochs < len(values))
    if ctx.stop_training:
        assert ctx.stop_reason == "early_stopping"


LOG_COSH = fnn.losses.custom("my_log_cosh", lambda t, p: jnp.mean(jnp.log(jnp.cosh(p - t)), -1))


def hit_rate(y_true, y_pred):
    """A metric of the user's where higher is better: no name says which way it improves."""
    return (jnp.abs(y_true - y_pred) < 0.1).astype(jnp.float32)


# (metrics, weighted_metrics, monitor, mode): Keras 3.15 resolves each mode="auto" the same
# (every monitor of the built-in metrics by the metric's direction, loss and val_loss min;
# checked with keras in a venv), except for the names only fnn logs or accepts ("mae_1",
# "weighted_mae", "kld", "logcosh"), where Keras's metric objects keep another name.
_AUTO_MODES = [
    ([], [], "val_loss", "min"), ([], [], "loss", "min"),
    (["accuracy"], [], "val_accuracy", "max"), (["ACC"], [], "ACC", "max"),
    (["binary_accuracy"], [], "binary_accuracy", "max"),
    (["SparseCategoricalAccuracy"], [], "val_SparseCategoricalAccuracy", "max"),
    (["top_k_categorical_accuracy"], [], "top_k_categorical_accuracy", "max"),
    (["AUC"], [], "val_AUC", "max"), (["precision"], [], "precision", "max"), (["Recall"], [], "Recall", "max"),
    (["F1Score"], [], "F1Score", "max"), (["r2_score"], [], "val_r2_score", "max"),
    (["cosine_similarity"], [], "cosine_similarity", "max"), (["CosineSimilarity"], [], "CosineSimilarity", "max"),
    (["mae"], [], "mae", "min"), (["MeanAbsoluteError"], [], "MeanAbsoluteError", "min"),
    (["root_mean_squared_error"], [], "val_root_mean_squared_error", "min"), (["mape"], [], "val_mape", "min"),
    (["msle"], [], "msle", "min"), (["poisson"], [], "poisson", "min"), (["KLDivergence"], [], "KLDivergence", "min"),
    (["binary_crossentropy"], [], "binary_crossentropy", "min"), (["hinge"], [], "hinge", "min"),
    (["LogCoshError"], [], "LogCoshError", "min"),
    # fnn's losses given as metrics fall, as Keras's do (the cosine-similarity loss is the
    # metric's negative, logged under the same name)
    ([fnn.losses.cosine_similarity], [], "cosine_similarity", "min"),
    ([fnn.losses.get("mse")], [], "mean_squared_error", "min"),
    ([fnn.losses.get("huber", delta=0.5)], [], "val_huber", "min"),
    # repeats and weighted metrics keep their metric's direction under the names they are logged as
    (["AUC", "AUC"], [], "val_AUC_1", "max"), (["mae"], ["mae"], "weighted_mae", "min"),
    (["accuracy"], ["accuracy"], "val_weighted_accuracy", "max"), ([], ["accuracy"], "accuracy", "max"),
]  # fmt: skip


def _settle(cb, metrics, weighted=()):
    """``cb`` as fit settles it before training, for a run with these metrics and validation."""
    plain, weighted = resolve_both(
        metrics, weighted, loss="binary_crossentropy", y_true_shape=(8, 1), y_pred_shape=(8, 1)
    )
    check_against_logs([cb], plain + weighted, validation=True)
    return cb


@pytest.mark.parametrize("metrics,weighted,monitor,mode", _AUTO_MODES)
def test_mode_auto_reads_metric_names_as_they_are_logged(metrics, weighted, monitor, mode):
    """mode="auto" is Keras 3's: min for the loss, else the direction of the metric logged under
    the monitored name (as it is logged: "AUC" logs AUC, a repeat AUC_1, a weighted one
    weighted_<name> where the name was taken)."""
    assert _settle(EarlyStopping(monitor=monitor, patience=1), metrics, weighted).mode == mode
    for cb in (ReduceLROnPlateau(monitor=monitor), StopAtThreshold(monitor=monitor)):
        assert _settle(cb, metrics, weighted).mode == mode
    values = [0.5, 0.6, 0.55, 0.5] if mode == "max" else [0.6, 0.5, 0.55, 0.6]
    stop = _settle(EarlyStopping(monitor=monitor, patience=1), metrics, weighted)
    assert _run(stop, values, monitor)[0] == 3


@pytest.mark.parametrize(
    "metrics,monitor,why",
    [
        ([hit_rate], "val_hit_rate", "'hit_rate' is a metric of yours"),
        ([hit_rate], "hit_rate", "'hit_rate' is a metric of yours"),
        ([LOG_COSH], "val_my_log_cosh", "'my_log_cosh' is a metric of yours"),  # a loss of yours, by its name
        (["mae"], "learning_rate", r"it is neither the loss nor one of the run's metrics \['mae'\]"),
        ([], "val_score", r"it is neither the loss nor one of the run's metrics \[\]"),
    ],
)
def test_mode_auto_refuses_a_monitor_of_unknown_direction_as_keras_3_does(tmp_path, metrics, monitor, why):
    """Keras 3.15: "EarlyStopping callback received monitor=val_hit_rate, but Keras isn't able to
    automatically determine whether that metric should be maximized or minimized. Pass
    `mode='max'` ... or pass `mode='min'` ..." (after the first epoch); fnn refuses it before
    training, for each callback that compares, where a guess from the name (min) would stop
    early and restore the worst weights of a metric that grows."""
    for cb in (
        EarlyStopping(monitor=monitor),
        ReduceLROnPlateau(monitor=monitor),
        ModelCheckpoint(tmp_path / "best.npz", monitor=monitor, save_best_only=True),
        StopAtThreshold(monitor=monitor),
    ):
        message = (
            rf"^{type(cb).__name__}: mode='auto' cannot tell whether monitor '{monitor}' should be maximized or "
            rf"minimized \({why}\); pass mode='max' to monitor its highest value, or mode='min' its lowest"
        )
        with pytest.raises(ValueError, match=message):
            _settle(cb, metrics)
    # a ModelCheckpoint saving every epoch never compares (Keras 3 refuses it too)
    assert _settle(ModelCheckpoint(tmp_path / "each.npz", monitor=monitor), metrics).mode == "auto"
    for mode in ("min", "max"):  # an explicit mode needs no metric
        assert _settle(EarlyStopping(monitor=monitor, mode=mode), metrics).mode == mode


def test_mode_auto_outside_fit_knows_no_metric():
    """Driven by hand, no run's metrics tell the direction: the loss compares, anything else is
    the same refusal at its first comparison."""
    assert _run(EarlyStopping(monitor="val_loss", patience=0), [1.0, 2.0], "val_loss")[0] == 2
    for cb in (EarlyStopping(monitor="val_accuracy"), StopAtThreshold("val_accuracy", 0.9)):
        with pytest.raises(ValueError, match=r"monitor 'val_accuracy' .* \(outside fit, no metric is known\)"):
            _run(cb, [0.5, 0.6], "val_accuracy")


def test_mode_max_on_a_metric_of_yours_keeps_its_best_weights():
    """The defect: mode="auto" read hit_rate as a loss, stopped after its first rise and restored
    the worst weights. With mode="max" the best epoch's weights come back; they are those of a
    run of that many epochs."""
    h = _small_fit(epochs=8, metrics=[hit_rate]).history["hit_rate"]
    assert h[:4] == [0.0, 0.125, 0.25, 0.25]  # rises, then stalls for one epoch
    with pytest.raises(ValueError, match="'hit_rate' is a metric of yours"):
        _small_fit(epochs=8, metrics=[hit_rate], callbacks=[EarlyStopping(monitor="hit_rate", patience=1)])
    stop = EarlyStopping(monitor="hit_rate", mode="max", patience=1, restore_best_weights=True)
    result = _small_fit(epochs=8, metrics=[hit_rate], callbacks=[stop])
    assert result.history["hit_rate"] == h[:4] and result.history.stop_reason == "early_stopping"
    assert stop.best_epoch == 2 and stop.best == 0.25
    best = _small_fit(epochs=3, metrics=[hit_rate]).params
    jax.tree.map(np.testing.assert_array_equal, result.params, best)
    low = EarlyStopping(monitor="hit_rate", mode="min", patience=1, restore_best_weights=True)
    assert _small_fit(epochs=8, metrics=[hit_rate], callbacks=[low]).history["hit_rate"] == h[:2]
    assert low.best_epoch == 0 and low.best == 0.0  # what mode="auto" used to do


def test_early_stopping_restores_best_weights_when_epochs_run_out():
    ran, ctx = _run(EarlyStopping(monitor="loss", patience=10, restore_best_weights=True), [3.0, 1.0, 2.0, 2.5])
    assert ran == 4 and not ctx.stop_training
    assert float(ctx.params["w"]) == 1.0  # epoch 1 was best


def test_early_stopping_restores_best_weights_on_stop_and_without_flag_keeps_last():
    _, ctx = _run(EarlyStopping(monitor="loss", patience=1, restore_best_weights=True), [3.0, 1.0, 2.0, 0.5])
    assert ctx.stop_training and float(ctx.params["w"]) == 1.0
    _, ctx = _run(EarlyStopping(monitor="loss", patience=1), [3.0, 1.0, 2.0, 0.5])
    assert float(ctx.params["w"]) == 2.0


def test_early_stopping_missing_monitor_warns_and_never_stops():
    with pytest.warns(RuntimeWarning, match="val_loss"):
        ran, ctx = _run(EarlyStopping(patience=0), [1.0, 2.0, 3.0], monitor="loss")
    assert ran == 3 and not ctx.stop_training


def test_stop_at_threshold():
    ran, ctx = _run(StopAtThreshold("loss", 0.5), [1.0, 0.7, 0.5, 0.1])
    assert ran == 3 and ctx.stop_reason == "threshold"
    ran, _ = _run(StopAtThreshold("val_accuracy", 0.9, mode="max"), [0.5, 0.95, 0.97], monitor="val_accuracy")
    assert ran == 2


def test_monitors_compare_in_float32_as_keras_3(tmp_path):
    """Keras's ops.less / ops.greater take both sides as float32 after the min_delta's Python
    arithmetic (Keras 3.15 run on these sequences): a float32 loss of 0.9 plus min_delta 0.1
    ties with 1.0, and values 1e-9 apart are one float32. In float64 each counted as an
    improvement: EarlyStopping never stopped, ReduceLROnPlateau never reduced."""
    f9 = float(np.float32(0.9))  # 0.8999999761581421, as a float32 loss is logged
    for kwargs, values, ran in (
        (dict(min_delta=0.1), [1.0, f9, f9], 2),
        ({}, [1.0, 1 - 1e-9, 1 - 2e-9], 2),
        (dict(mode="max"), [1.0, 1 + 1e-9, 1 + 2e-9], 2),
        ({}, [1e8, 1e8 - 1, 1e8 - 2], 2),
        ({}, [1.0, 1 - 1e-7, 1 - 2e-7], 3),  # float32 resolves 1e-7: improvements
    ):
        stop = EarlyStopping(monitor="loss", patience=0, **kwargs)
        assert _run(stop, values)[0] == ran, (kwargs, values)
    state = O.sgd(0.1).init({"w": np.zeros(2)})
    plateau = ReduceLROnPlateau(monitor="loss", patience=0, factor=0.5)
    _, ctx = _run(plateau, [1.0, 1 - 1e-9, 1 - 2e-9], opt_state=state)
    assert float(O.get_learning_rate(ctx.opt_state)) == pytest.approx(0.025)  # reduced twice, as Keras
    best_only = ModelCheckpoint(tmp_path / "e{epoch}.npz", "loss", save_best_only=True)
    _drive_checkpoint(best_only, [{"loss": v} for v in (1.0, 1 - 1e-9, 1 - 2e-9)])
    assert _saved(tmp_path) == ["e1.npz"]
    # integers compare exactly, as Keras's int tensors (16777216 and 16777217 are one float32);
    # values beyond float32's range are inf there, without NumPy's overflow warning
    exact = EarlyStopping(monitor="loss", mode="min", min_delta=0)
    assert exact.improved(16777216, 16777217) and not exact.improved(16777217, 16777217)
    assert EarlyStopping(monitor="acc", mode="max").improved(16777217, 16777216)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert EarlyStopping(monitor="loss", mode="min").improved(1e38, 1e39)
        assert not EarlyStopping(monitor="loss", mode="min").improved(1e39, 1e40)  # inf and inf


def test_reduce_lr_on_plateau_scripted_with_cooldown_and_min_lr():
    state = O.sgd(1.0).init({"w": np.zeros(2)})
    cb = ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, cooldown=1, min_lr=0.3, min_delta=0.0)
    _, ctx = _run(cb, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0], opt_state=state)
    # e1: reduce to .5 (cooldown 1); e2: cooling down; e3: reduce to max(.25, .3) = .3; then at min_lr
    assert float(O.get_learning_rate(ctx.opt_state)) == pytest.approx(0.3)


def test_learning_rate_scheduler_and_plain_callable_in_fit():
    net = fnn.mlp([2])
    params = jax.jit(lambda key: net.init(key, (3,), jnp.float64))(np.zeros(2, np.uint32))  # one program
    x, y = np.ones((4, 3)), np.zeros((4, 2))
    seen = []

    def stop_after_two(epoch, logs):
        seen.append((epoch, sorted(logs)))
        return epoch == 1

    res = fnn.fit(
        net,
        params,
        O.sgd(0.1),
        "mse",
        x,
        y,
        epochs=5,
        verbose=0,
        callbacks=[LearningRateScheduler(lambda e, lr: 0.1 / (e + 1)), stop_after_two],
    )
    assert res.history.epochs_run == 2 and res.history.stop_reason.startswith("callback")
    np.testing.assert_allclose(res.history["learning_rate"], [0.1, 0.05])
    assert seen == [(0, ["learning_rate", "loss"]), (1, ["learning_rate", "loss"])]
    with pytest.raises(TypeError, match="callbacks"):
        fnn.fit(net, params, O.sgd(0.1), "mse", x, y, epochs=1, verbose=0, callbacks=[42])


def _small_fit(opt=None, **kw):
    net = fnn.mlp([1])
    params = [{"w": jnp.full((2, 1), 0.5, jnp.float64), "b": jnp.zeros(1, jnp.float64)}]
    x = np.linspace(-1, 1, 16).reshape(8, 2)
    opt = O.sgd(0.1) if opt is None else opt
    return fnn.fit(net, params, opt, "mse", x, x.sum(1, keepdims=True), **{"batch_size": 4, "verbose": 0, **kw})


def test_a_loss_given_as_a_metric_is_monitored_under_its_name_in_fit():
    """A Loss as a metric is logged under its ``name``, as Keras 3 names a metric object, so a
    callback monitors it: a loss of yours with mode="min" (its direction is yours to say), one of
    fnn's with mode="auto" (a loss falls). No change beats min_delta=1: the second epoch stops the run."""
    mine = EarlyStopping(monitor="val_my_log_cosh", mode="min", min_delta=1.0, patience=0)
    huber = EarlyStopping(monitor="val_huber", patience=5)
    metrics = [LOG_COSH, fnn.losses.get("huber", delta=0.5)]
    res = _small_fit(metrics=metrics, validation_split=0.25, epochs=3, callbacks=[mine, huber])
    assert res.history.epochs_run == 2 and res.history.stop_reason == "early_stopping"
    assert set(res.history.history) >= {"my_log_cosh", "huber", "val_my_log_cosh", "val_huber"}
    assert huber.mode == "min"


class _Sets(Callback):
    """Puts ``what(ctx)`` into ``ctx.<attr>`` as the first epoch begins."""

    def __init__(self, attr, what):
        self.attr, self.what = attr, what

    def on_epoch_begin(self, epoch, ctx):
        if epoch == 0:
            setattr(ctx, self.attr, self.what(ctx))


def test_params_and_state_a_callback_puts_into_ctx_are_checked_naming_it():
    """What a callback puts into ctx.params or ctx.opt_state is checked as fit checks what it is
    given, naming the callback and its hook (it failed inside the optimizer, or blamed a layer's
    init); with TerminateOnNaN, NaN params are refused, so fit never returns them."""
    who = r"^callbacks\[0\] \(_Sets\)\.on_epoch_begin set "
    cases = (
        ("opt_state", lambda ctx: None, ValueError, r"ctx\.opt_state to None: a callback may change its values"),
        (
            "opt_state",
            lambda ctx: O.adam(0.1).init(ctx.params),
            ValueError,
            r"ctx\.opt_state to another optimizer's state, which does not match opt\.init\(params\)",
        ),
        (
            "params",
            lambda ctx: [{"w": np.zeros((3, 1)), "b": ctx.params[0]["b"]}],
            ValueError,
            r"ctx\.params that do not match the run's params \(ctx\.params\[0\]\['w'\] has shape \(3, 1\), the run's "
            r"params have \(2, 1\)\)",
        ),
        (
            "params",
            lambda ctx: [{"w": np.zeros((2, 1), np.int32), "b": ctx.params[0]["b"]}],
            TypeError,
            r"ctx\.params\[0\]\['w'\] has dtype int32",
        ),
    )
    for attr, what, error, message in cases:
        with pytest.raises(error, match=who + message):
            _small_fit(epochs=1, callbacks=[_Sets(attr, what)])
    nan = _Sets("params", lambda ctx: [{"w": np.full((2, 1), np.nan), "b": ctx.params[0]["b"]}])
    message = who + r"ctx\.params holding NaN or inf \(ctx\.params\[0\]\['w'\]\): with TerminateOnNaN fit keeps"
    with pytest.raises(ValueError, match=message):
        _small_fit(epochs=1, callbacks=[nan, TerminateOnNaN()])
    # a state replaced by the same optimizer's (set_learning_rate's) trains on
    lower = _Sets("opt_state", lambda ctx: O.set_learning_rate(ctx.opt_state, 0.05))
    assert _small_fit(epochs=1, callbacks=[lower]).opt_state.hparams["learning_rate"] == 0.05


class _Averages(Callback):
    """Stochastic weight averaging: the running mean of the epochs' params, set as ctx.params at
    each epoch's end; kept as fit's arrays (``host=False``: a snapshot) or as NumPy copies."""

    def __init__(self, host):
        self.host, self.avg, self.n = host, None, 0

    def on_epoch_end(self, epoch, logs, ctx):
        cur = jax.tree.map(np.array, ctx.params) if self.host else ctx.snapshot(ctx.params)
        self.n += 1
        self.avg = cur if self.avg is None else jax.tree.map(lambda a, b: a + (b - a) / self.n, self.avg, cur)
        ctx.params = jax.tree.map(jnp.asarray, self.avg) if self.host else self.avg


def test_arrays_a_callback_puts_into_ctx_stay_its_own():
    """fit trains on a copy of what a hook puts into ctx.params: a weight average the callback
    keeps and sets each epoch stays readable (donating it to the next epoch deleted it), and the
    run equals the one whose callback keeps NumPy copies."""
    kept, host = _Averages(host=False), _Averages(host=True)
    res, ref = _small_fit(epochs=3, callbacks=[kept]), _small_fit(epochs=3, callbacks=[host])
    np.testing.assert_array_equal(res.history["loss"], ref.history["loss"])
    for a, b, c in zip(jax.tree.leaves(kept.avg), jax.tree.leaves(host.avg), jax.tree.leaves(res.params), strict=True):
        np.testing.assert_array_equal(np.asarray(a), b)
        np.testing.assert_array_equal(np.asarray(c), b)


class _BigEndianAverages(_Averages):
    """The weight average set as big-endian NumPy arrays (as read back from a file written on
    another machine)."""

    def on_epoch_end(self, epoch, logs, ctx):
        super().on_epoch_end(epoch, logs, ctx)
        ctx.params = jax.tree.map(swapped, self.avg)


def test_big_endian_params_a_callback_puts_into_ctx_train_as_their_values():
    res, ref = (
        _small_fit(epochs=3, callbacks=[_BigEndianAverages(True)]),
        _small_fit(epochs=3, callbacks=[_Averages(True)]),
    )
    np.testing.assert_array_equal(res.history["loss"], ref.history["loss"])
    for a, b in zip(jax.tree.leaves(res.params), jax.tree.leaves(ref.params), strict=True):
        np.testing.assert_array_equal(a, b)


def test_lambda_callback_takes_keras_s_hooks_by_keyword(tmp_path):
    """Keras's LambdaCallback(on_epoch_end=lambda epoch, logs: ...): each hook with Keras's
    arguments (a copy of the logs; {} at the begin hooks, the last epoch's at the end), return
    values ignored; per-batch hooks, unknown names and wrong signatures refused at construction."""
    seen = []
    cb = fnn.callbacks.LambdaCallback(
        on_train_begin=lambda logs: seen.append(("train_begin", logs)),
        on_epoch_begin=lambda epoch, logs: seen.append(("epoch_begin", epoch, logs)),
        on_epoch_end=lambda epoch, logs: seen.append(("epoch_end", epoch, logs)) or True,  # ignored
        on_train_end=lambda logs: seen.append(("train_end", logs)),
    )
    h = _small_fit(epochs=2, callbacks=[cb]).history
    loss = h["loss"]
    assert seen == [
        ("train_begin", {}),
        ("epoch_begin", 0, {}),
        ("epoch_end", 0, {"loss": loss[0]}),
        ("epoch_begin", 1, {}),
        ("epoch_end", 1, {"loss": loss[1]}),
        ("train_end", {"loss": loss[1]}),
    ]
    assert h.epochs_run == 2 and h.stop_reason == "epochs"
    # a resumed run with no epoch left: on_train_end still gets the last epoch's logs
    ends = []
    ck = tmp_path / "ck.npz"
    _small_fit(epochs=2, checkpoint=ck)
    _small_fit(epochs=2, checkpoint=ck, callbacks=[fnn.callbacks.LambdaCallback(on_train_end=ends.append)])
    assert ends == [{"loss": loss[1]}]
    with pytest.raises(TypeError, match="on_batch_end= .*no per-batch hooks"):
        fnn.callbacks.LambdaCallback(on_batch_end=lambda batch, logs: None)
    with pytest.raises(TypeError, match="on_epoch_ends= \\(unknown hook\\)"):
        fnn.callbacks.LambdaCallback(on_epoch_ends=print)
    with pytest.raises(TypeError, match=r"on_epoch_end must take \(epoch, logs\), got \(epoch\)"):
        fnn.callbacks.LambdaCallback(on_epoch_end=lambda epoch: None)
    with pytest.raises(TypeError, match="needs fn"):
        fnn.callbacks.LambdaCallback()


def test_a_learning_rate_callback_needs_a_state_holding_the_rate_and_says_so_before_training():
    ran = []
    chained = O.chain(O.scale_by_adam(), O.scale_by_learning_rate(0.1))  # its state holds no rate
    for cb in (ReduceLROnPlateau(monitor="loss"), LearningRateScheduler(lambda epoch: 0.1)):
        who = rf"callbacks\[1\] \({type(cb).__name__}\)"
        with pytest.raises(ValueError, match=who + r" sets the learning rate, but the optimizer state holds no "
                           r"learning rate .*fnn.optimizers.inject_hyperparams"):  # fmt: skip
            _small_fit(chained, epochs=2, callbacks=[lambda epoch, logs: ran.append(epoch), cb])
    assert ran == []  # not after an epoch
    optax = pytest.importorskip("optax")
    with pytest.raises(ValueError, match=r"optax.inject_hyperparams\(optax.adam\)\(learning_rate=1e-3\)"):
        _small_fit(optax.adam(0.1), epochs=1, callbacks=[ReduceLROnPlateau(monitor="loss")])
    scheduled = optax.inject_hyperparams(optax.sgd)(learning_rate=optax.linear_schedule(0.1, 0.0, 4))
    with pytest.raises(ValueError, match=r"callbacks\[0\] \(ReduceLROnPlateau\) .* follows a schedule"):
        _small_fit(scheduled, epochs=1, callbacks=[ReduceLROnPlateau(monitor="loss")])
    # optax keeps learning_rate=1 an int: a reduced rate could not be held, so said before training
    with pytest.raises(ValueError, match=r"holds it as int(32|64) \(built with an integer learning_rate\)"):
        _small_fit(optax.inject_hyperparams(optax.sgd)(learning_rate=1), epochs=1, callbacks=[ReduceLROnPlateau()])


def test_a_learning_rate_callback_on_an_optimizer_that_does_not_read_the_rate_is_warned_of_once():
    """rprop's learning_rate only seeds its step sizes (as in PyTorch): a callback setting it
    would log rates the run never used, params bit-identical to a run without it. fit probes
    the optimizer's update (no name check) and says so once, before training, at its caller."""
    plain = _small_fit(O.rprop(1e-2), epochs=3)
    ignored = O.inject_hyperparams(lambda learning_rate: O.chain(O.scale_by_adam(), O.scale(-1e-2)))(learning_rate=0.1)
    for opt in (O.rprop(1e-2), "rprop", ignored):
        for cb in (
            ReduceLROnPlateau(monitor="loss", min_delta=100.0, patience=0),
            LearningRateScheduler(lambda e: 1e-9),
        ):
            who = rf"callbacks\[0\] \({type(cb).__name__}\)"
            with pytest.warns(UserWarning, match=who + r" sets the learning rate, but the update of .*reads it only "
                              r"at its first step or not at all .*changes nothing") as record:  # fmt: skip
                res = _small_fit(opt, epochs=3, callbacks=[cb])
            assert len(record) == 1 and record[0].filename == __file__  # at fit's caller
            assert ("rprop(learning_rate=0.01" in str(record[0].message)) is (opt is not ignored)
            if opt is not ignored and isinstance(cb, ReduceLROnPlateau):  # what it warns of: logged, not used
                assert res.history["learning_rate"][-1] < 1e-2
                chex.assert_trees_all_equal(res.params, plain.params)
    # the optimizers that read the rate are not warned of (filterwarnings=error), a scheduled one
    # (warming up from 0) included
    for opt in (O.adam(1e-3), O.sgd(0.1, momentum=0.9), O.lion(1e-4), O.adam(fnn.schedules.linear(0.0, 0.1, 4))):
        _small_fit(
            opt, epochs=2, callbacks=[ReduceLROnPlateau(monitor="loss"), LearningRateScheduler(lambda e, lr: lr)]
        )


def test_reduce_lr_on_plateau_and_scheduler_drive_an_optax_inject_hyperparams_optimizer():
    """optax's recipe for a mutable rate works in fit: the callbacks set state.hyperparams, the
    run follows the rates they set (against full-batch gradient descent in NumPy)."""
    optax = pytest.importorskip("optax")
    opt = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)
    x = np.linspace(-1, 1, 16).reshape(8, 2)
    y = x.sum(1, keepdims=True)
    plateau = ReduceLROnPlateau(monitor="loss", min_delta=100.0, patience=1, factor=0.5)
    scheduler = LearningRateScheduler(lambda epoch: 0.1 * 0.5**epoch)
    # the plateau's second reduction, made after the last epoch, is in the state returned
    for cb, rates, held in ((plateau, [0.1, 0.1, 0.05], 0.025), (scheduler, [0.1, 0.05, 0.025], 0.025)):
        res = _small_fit(opt, epochs=3, batch_size=8, callbacks=[cb])
        assert res.history["learning_rate"] == rates
        assert float(O.get_learning_rate(res.opt_state)) == held
        w, b = np.full((2, 1), 0.5), np.zeros(1)
        for lr in rates:
            err = x @ w + b - y
            w, b = w - lr * 2 * x.T @ err / len(x), b - lr * 2 * err.sum(0) / len(x)
        np.testing.assert_allclose(res.params[0]["w"], w, rtol=1e-12)
        np.testing.assert_allclose(res.params[0]["b"], b, atol=1e-15)


class _KerasEpochEnd(Callback):
    def on_epoch_end(self, epoch, logs=None):
        pass


class _KerasTrainBegin(Callback):
    def on_train_begin(self, logs=None):
        pass


class _KerasEpochBegin(Callback):
    def on_epoch_begin(self, epoch, logs=None):
        pass


class _KerasTrainEnd:  # any object with the hooks
    def on_train_end(self, logs=None):
        pass


class _Swapped(Callback):
    def on_epoch_end(self, epoch, ctx, logs):
        pass


@pytest.mark.parametrize(
    "cb,hook,signature,expected",
    [
        (_KerasEpochEnd(), "on_epoch_end", "(self, epoch, logs=None)", "on_epoch_end(self, epoch, logs, ctx)"),
        (_KerasTrainBegin(), "on_train_begin", "(self, logs=None), whose logs would receive ctx",
         "on_train_begin(self, ctx)"),
        (_KerasEpochBegin(), "on_epoch_begin", "(self, epoch, logs=None), whose logs",
         "on_epoch_begin(self, epoch, ctx)"),
        (_KerasTrainEnd(), "on_train_end", "(self, logs=None), whose logs", "on_train_end(self, ctx)"),
        (_Swapped(), "on_epoch_end", "(self, epoch, ctx, logs), whose logs", "on_epoch_end(self, epoch, logs, ctx)"),
    ],
)  # fmt: skip
def test_a_keras_style_hook_is_refused_before_training_naming_fnns_signature(cb, hook, signature, expected):
    ran = []
    want = re.escape(f"callbacks[1]: {type(cb).__name__}.{hook}{signature}") + ".*" + re.escape(f"fit calls {expected}")
    with pytest.raises(TypeError, match=want + ".*fnn's hooks take ctx"):
        _small_fit(epochs=1, callbacks=[lambda epoch, logs: ran.append(epoch), cb])
    assert ran == []


class _PerBatch(Callback):  # a Keras callback ported as-is
    def on_train_batch_end(self, batch, logs=None):
        pass


class _PerTestBatch:  # any object with the hooks
    def on_epoch_end(self, epoch, logs, ctx):
        pass

    def on_test_batch_begin(self, batch, logs=None):
        pass


@pytest.mark.parametrize("cb,hook", [(_PerBatch(), "on_train_batch_end"), (_PerTestBatch(), "on_test_batch_begin")])
def test_a_per_batch_hook_is_refused_before_anything_compiles_as_lambda_callback_refuses_it(cb, hook, compiles):
    """fit never calls a per-batch hook (its epochs are compiled programs): a subclass defining
    one fails before training, naming it, in LambdaCallback's words, instead of silently never
    running."""
    with pytest.raises(TypeError, match=r"no per-batch hooks") as lambda_error:
        fnn.callbacks.LambdaCallback(**{hook: lambda batch, logs: None})
    why = re.search(r"\(.*\)", str(lambda_error.value)).group(0)  # LambdaCallback's reason, verbatim
    want = re.escape(f"callbacks[1]: {type(cb).__name__}.{hook} {why}") + ".*on_train_begin, on_epoch_begin"
    ran, params, x = [], [{"w": np.full((2, 1), 0.5), "b": np.zeros(1)}], np.ones((8, 2))
    with compiles() as c, pytest.raises(TypeError, match=want):
        callbacks = [lambda epoch, logs: ran.append(epoch), cb]
        fnn.fit(fnn.mlp([1]), params, "sgd", "mse", x, x[:, :1], epochs=1, verbose=0, callbacks=callbacks)
    assert c.count == 0 and ran == []


@pytest.mark.parametrize("hook", ["on_test_begin", "on_test_end", "on_predict_begin", "on_predict_end"])
def test_keras_s_validation_and_predict_pass_hooks_are_refused_as_never_called(hook, compiles):
    """fit's validation pass runs in the compiled epoch: a Keras on_test_end would never run."""
    with pytest.raises(TypeError, match=f"LambdaCallback got {hook}= .fit's validation pass runs inside the compiled"):
        fnn.callbacks.LambdaCallback(**{hook: lambda logs: None})
    cb = type("Ported", (Callback,), {hook: lambda self, logs=None: None})()
    params, x = [{"w": np.full((2, 1), 0.5), "b": np.zeros(1)}], np.ones((8, 2))
    with compiles() as c, pytest.raises(TypeError, match=f"callbacks\\[0\\]: Ported.{hook} .fit's validation pass"):
        fnn.fit(fnn.mlp([1]), params, "sgd", "mse", x, x[:, :1], epochs=1, verbose=0, callbacks=[cb])
    assert c.count == 0


def test_hooks_that_take_fnns_arguments_are_accepted_and_a_callable_must_take_epoch_and_logs():
    class Loose(Callback):
        def __init__(self):
            self.seen = []

        def on_train_begin(self, context, extra=1):  # another name, a defaulted extra
            self.seen.append("begin")

        def on_epoch_begin(self, *args):
            self.seen.append(len(args))

        def on_epoch_end(self, epoch, logs, ctx=None, **kw):
            self.seen.append(sorted(logs))

    def adapted(hook):  # a decorator whose wrapper takes fnn's arguments, the hook Keras's
        @functools.wraps(hook)
        def wrapper(self, epoch, logs, ctx):
            return hook(self, epoch, logs)

        return wrapper

    seen = []

    class Decorated(Callback):
        @adapted
        def on_epoch_end(self, epoch, logs=None):
            seen.append(epoch)

        def on_epoch_begin(self, epoch, *logs):  # a var-positional named logs takes the rest
            seen.append(len(logs))

    loose = Loose()
    _small_fit(epochs=1, callbacks=[loose, ReduceLROnPlateau(monitor="loss"), Decorated()])
    assert loose.seen == ["begin", 2, ["loss"]] and seen == [1, 0]
    with pytest.raises(TypeError, match=r"callbacks\[0\]: <lambda>\(logs\) cannot be called as fn\(epoch, logs\)"):
        _small_fit(epochs=1, callbacks=[lambda logs: None])


def test_a_monitor_that_differs_from_a_logged_name_in_case_is_refused_before_training(tmp_path):
    """Metrics are logged under the names they were given ("AUC" logs AUC): a monitor written
    otherwise would only warn at each epoch and never act."""
    ran = []
    best = ModelCheckpoint(tmp_path / "best.npz", monitor="lo_ss", save_best_only=True)
    for cb in (EarlyStopping(monitor="Loss"), ReduceLROnPlateau(monitor="LOSS"), best):
        with pytest.raises(ValueError, match=rf"{type(cb).__name__}: monitor '.*' is not logged, 'loss' is"):
            _small_fit(epochs=1, callbacks=[cb, lambda epoch, logs: ran.append(epoch)])
    assert ran == []
    with pytest.warns(RuntimeWarning, match="val_loss"):  # a name not logged at all warns, as in Keras
        _small_fit(epochs=1, callbacks=[EarlyStopping(monitor="val_loss")])
    # not checked: a monitor a ModelCheckpoint saving every epoch never reads, and one a callback
    # of yours may log (whose direction only you know)
    _small_fit(epochs=1, callbacks=[ModelCheckpoint(tmp_path / "each.npz", monitor="Loss")])
    logs_its_own = type("Own", (Callback,), {"on_epoch_end": lambda self, epoch, logs, ctx: logs.update(Loss=1.0)})
    _small_fit(epochs=1, callbacks=[logs_its_own(), EarlyStopping(monitor="Loss", mode="min")])


def test_learning_rate_scheduler_takes_keras_one_argument_form_too():
    for schedule in (lambda epoch: 0.1 * 0.5**epoch, lambda epoch, lr: 0.1 * 0.5**epoch):
        h = _small_fit(epochs=3, callbacks=[LearningRateScheduler(schedule)]).history
        np.testing.assert_allclose(h["learning_rate"], [0.1, 0.05, 0.025])
    with pytest.raises(TypeError, match="schedule must be callable"):
        LearningRateScheduler(0.1)


def test_learning_rate_scheduler_logs_the_rate_the_state_holds():
    """Keras logs float(optimizer.learning_rate): the rate in the optimizer's dtype, not the
    schedule's Python float (0.045 is 0.04500000178813934 in float32)."""
    f32_sgd = O.inject_hyperparams(
        lambda learning_rate: O.chain(O.scale_by_learning_rate(learning_rate)), hyperparam_dtype=jnp.float32
    )(learning_rate=0.1)
    net, x = fnn.mlp([1]), np.linspace(-1, 1, 16).reshape(8, 2)
    params = [{"w": jnp.full((2, 1), 0.5, jnp.float64), "b": jnp.zeros(1, jnp.float64)}]
    scheduler = LearningRateScheduler(lambda epoch: 0.045 * 0.9**epoch)
    y = x.sum(1, keepdims=True)
    result = fnn.fit(net, params, f32_sgd, "mse", x, y, epochs=2, verbose=0, callbacks=[scheduler])
    want = [float(np.float32(0.045)), float(np.float32(0.045 * 0.9))]
    assert result.history["learning_rate"] == want != [0.045, 0.045 * 0.9]
    assert float(O.get_learning_rate(result.opt_state)) == want[-1]


def test_a_callback_of_yours_may_log_what_a_checkpoint_path_names_and_logs_are_python_numbers(tmp_path):
    class Score(Callback):
        def on_epoch_end(self, epoch, logs, ctx=None):
            logs["score"] = jnp.asarray(0.25) * (epoch + 1)  # a jax scalar, as a metric of yours gives

    template = str(tmp_path / "ck-{epoch:02d}-{score:.2f}.npz")
    h = _small_fit(epochs=2, callbacks=[Score(), ModelCheckpoint(template)]).history
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck-01-0.25.npz", "ck-02-0.50.npz"]
    assert h["score"] == [0.25, 0.5] and all(type(v) is float for v in h["score"])
    # listed before the callback that logs it, or never logged: refused before training / at the epoch's end
    with pytest.raises(ValueError, match=r"names \{score\}, which the logs will not have"):
        _small_fit(epochs=1, callbacks=[ModelCheckpoint(template), Score()])
    with pytest.raises(ValueError, match=r"names 'nothing', which the logs do not have"):
        _small_fit(epochs=1, callbacks=[Score(), ModelCheckpoint(str(tmp_path / "{nothing}.npz"))])
    # a LambdaCallback (or a plain function, which fit wraps in one) logs new names as Keras's
    # does: a checkpoint after it names them (it was refused before training)
    for i, logs_it in enumerate(
        [
            fnn.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: logs.update(score=0.5 * (epoch + 1))),
            lambda epoch, logs: logs.update(score=0.5 * (epoch + 1)),
        ]
    ):
        h = _small_fit(epochs=2, callbacks=[logs_it, ModelCheckpoint(str(tmp_path / f"l{i}-{{score:.1f}}.npz"))])
        assert h.history["score"] == [0.5, 1.0], h.history
        assert sorted(p.name for p in tmp_path.glob(f"l{i}-*")) == [f"l{i}-0.5.npz", f"l{i}-1.0.npz"]
    # one with no function for the epoch's end logs nothing: the names after it are still checked
    ends = fnn.callbacks.LambdaCallback(on_train_end=lambda logs: None)
    with pytest.raises(ValueError, match=r"names \{score\}, which the logs will not have"):
        _small_fit(epochs=1, callbacks=[ends, ModelCheckpoint(template)])


@pytest.mark.parametrize(
    "template,field,kind",
    [
        ("ck-{loss:02d}.npz", "{loss:02d}", "a float"),
        ("ck-{epoch:.2s}.npz", "{epoch:.2s}", "an int"),
        ("ck-{loss!r:.3f}.npz", "{loss!r:.3f}", "a float"),
        ("ck-{loss[0]}.npz", "{loss[0]}", "a float"),
    ],
)
def test_a_checkpoint_path_s_format_spec_that_cannot_format_its_value_is_refused_before_training(
    tmp_path, template, field, kind
):
    """Not after the first epoch, as a bare ValueError of str.format: the message names
    ModelCheckpoint, the filepath and the field, also after a callback of yours."""

    ran = []

    class Score(Callback):
        def on_epoch_end(self, epoch, logs, ctx=None):
            ran.append(epoch)
            logs["score"] = "high"

    path = str(tmp_path / template)
    for callbacks in ([ModelCheckpoint(path)], [Score(), ModelCheckpoint(path)]):
        with pytest.raises(ValueError) as err:
            _small_fit(epochs=1, callbacks=callbacks)
        assert ran == [] and os.listdir(tmp_path) == []
        words = str(err.value)
        assert words.startswith(f"ModelCheckpoint: filepath {path!r} cannot format its field {field}: ")
        assert words.endswith(f"is {kind}" + (", as every value the logs hold)" if kind == "a float" else ")"))
    # a value of yours of another type: at the epoch's end, naming ModelCheckpoint and the filepath
    bad = str(tmp_path / "ck-{score:.2f}.npz")
    with pytest.raises(
        ValueError, match=r"ModelCheckpoint: filepath '.*' cannot be formatted at epoch 1: Unknown format"
    ):
        _small_fit(epochs=1, callbacks=[Score(), ModelCheckpoint(bad)])
    assert os.listdir(tmp_path) == []


def test_model_checkpoint_could_write_matches_the_names_its_template_formats():
    """A name matches where each field's text is what its spec formats some value to: the
    number read back and formatted again gives the same text ({epoch:02d} never writes 5)."""
    mc = ModelCheckpoint("/runs/best-{epoch:02d}-{val_loss:.3f}.npz", save_best_only=True)
    for name in (
        "best-02-0.125.npz",
        "best-123-nan.npz",
        "best-01--inf.npz",
        "best-07-12345.679.npz",
        "best-07--0.000.npz",
    ):
        assert mc.could_write("/runs/" + name), name
    for name in ("best-02.npz", "best-run-0.1.npz", "best-02-0.125.npz.bak", "best-02-0.1/x.npz", "best-02-0.1.npy"):
        assert not mc.could_write("/runs/" + name), name
    # text of number characters that the spec cannot give
    for name in ("best-1-0.125.npz", "best-07-1.5e-05.npz", "best-07-0.12.npz", "best--.npz", "best-0x2-0.125.npz"):
        assert not mc.could_write("/runs/" + name), name
    best = ModelCheckpoint("/runs/best-{epoch:02d}.npz", save_best_only=True)
    assert best.could_write("/runs/best-05.npz") and not best.could_write("/runs/best-5.npz")
    for template, name, can in (
        ("{loss}", "5", False), ("{loss}", "5.0", True), ("{loss:.2%}", "12.34%", True),
        ("{loss:e}", "1.5e-05", False), ("{epoch:,}", "1,000", True), ("{epoch:,}", "1000", False),
        ("{epoch:#x}", "0x1f", True), ("{epoch:#x}", "1f", False), ("{epoch:+d}", "5", False),
        ("{epoch:.2f}", "5.00", True), ("{epoch:.2f}", "5.10", False), ("{epoch}{loss:.1f}", "120.5", True),
    ):  # fmt: skip
        assert ModelCheckpoint(f"/runs/{template}.npz").could_write(f"/runs/{name}.npz") == can, (template, name)
    assert not mc.could_write("/other/best-02-0.125.npz")
    assert ModelCheckpoint("/runs/{epoch:*>4}.npz").could_write("/runs/**12.npz")  # the fill character
    assert ModelCheckpoint("/runs/{epoch}/ck.npz").could_write("/runs/3/ck.npz")
    assert ModelCheckpoint("/runs/fixed.npz").could_write("/runs/./fixed.npz")


def test_an_os_error_writing_the_csv_log_names_the_file(tmp_path, monkeypatch):
    """A full disk raises from a write with no file name: re-raised as the same type and
    errno, naming the log (chained to the original); an error naming another file keeps it."""
    import errno

    import fnn.callbacks._files as files

    class FullDisk:
        def __init__(self, f, **kw):
            pass

        def writerow(self, row):
            raise OSError(errno.ENOSPC, "No space left on device")

    log = tmp_path / "log.csv"
    monkeypatch.setattr(files.csv, "writer", FullDisk)
    with pytest.raises(OSError) as err:
        _small_fit(epochs=1, callbacks=[CSVLogger(log)])
    assert type(err.value) is OSError and err.value.errno == errno.ENOSPC and err.value.filename == str(log)
    assert str(err.value) == f"[Errno 28] No space left on device while writing the CSV log: {str(log)!r}"
    assert isinstance(err.value.__cause__, OSError) and err.value.__cause__.filename is None
    monkeypatch.undo()

    real_makedirs, refused = os.makedirs, str(tmp_path / "ro")

    def makedirs(name, *args, **kwargs):
        if str(name).startswith(refused):
            raise PermissionError(errno.EACCES, "Permission denied", str(name))
        return real_makedirs(name, *args, **kwargs)

    monkeypatch.setattr(os, "makedirs", makedirs)
    with pytest.raises(PermissionError, match=r"Permission denied at '.*ro' while writing the CSV log: '.*log\.csv'"):
        _small_fit(epochs=1, callbacks=[CSVLogger(tmp_path / "ro" / "log.csv")])


def test_csv_logger_appended_to_by_a_resumed_run_keeps_the_rows_of_runs_before_it(tmp_path):
    log, ck = tmp_path / "log.csv", tmp_path / "ck.npz"
    _small_fit(epochs=4, callbacks=[CSVLogger(log, append=True)])  # an earlier run: epochs 0-3
    _small_fit(epochs=2, callbacks=[CSVLogger(log, append=True)], checkpoint=ck)
    _small_fit(epochs=3, callbacks=[CSVLogger(log, append=True)], checkpoint=ck)  # resumed at 2
    with log.open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["epoch", "loss", "val_loss"] and [r[0] for r in rows[1:]] == ["0", "1", "2", "3", "0", "1", "2"]
    assert {r[2] for r in rows[1:]} == {"NA"}  # Keras's val_ columns of a run without validation
    assert rows[1:5] == rows[5:7] + [rows[3], rows[4]]  # the same training: the same losses
    for bad in (";;", "", 1, "\n", '"'):
        with pytest.raises((ValueError, TypeError), match="separator must be one character"):
            CSVLogger(tmp_path / "x.csv", separator=bad)
    with pytest.raises(TypeError, match="append must be a bool"):
        CSVLogger(tmp_path / "x.csv", append="yes")


def test_csv_logger_writes_through_a_link_and_into_a_pipe_never_replacing_them(tmp_path):
    """Keras's CSVLogger opens the log with mode "w": a symbolic link's target gets the rows and
    a pipe or device (``/dev/stdout``) is written to, the header once. The log was removed and
    made anew before: the link and the pipe became plain files (as root, ``CSVLogger("/dev/null")``
    removed the system's ``/dev/null``), and the link's target kept its old text."""
    import contextlib
    import stat
    import threading

    target, link = tmp_path / "real.csv", tmp_path / "link.csv"
    target.write_text("an old log\n")
    link.symlink_to(target)
    _small_fit(epochs=2, callbacks=[CSVLogger(link)])
    assert link.is_symlink() and [r[0] for r in csv.reader(target.read_text().splitlines())] == ["epoch", "0", "1"]
    _small_fit(epochs=0, callbacks=[CSVLogger(link)])  # a fresh run that trains no epoch empties it
    assert link.is_symlink() and target.read_text() == ""

    pipe, got, done = tmp_path / "pipe", [], threading.Event()
    os.mkfifo(pipe)

    def read():  # each epoch's row is written by its own open: read until told to stop
        while not done.is_set():
            with open(pipe) as f:
                got.append(f.read())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    _small_fit(epochs=3, callbacks=[CSVLogger(pipe)])
    done.set()
    with contextlib.suppress(OSError):  # lets the reader's last open return, if it waits in one
        os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
    reader.join(10)
    assert stat.S_ISFIFO(os.lstat(pipe).st_mode)
    assert [r[0] for r in csv.reader("".join(got).splitlines())] == ["epoch", "0", "1", "2"]


def test_csv_logger_and_model_checkpoint_best_only(tmp_path):
    log = tmp_path / "logs" / "log.csv"
    ckpt = tmp_path / "ck" / "best.npz"
    cb_csv = CSVLogger(str(log))
    cb_ckpt = ModelCheckpoint(str(ckpt), monitor="loss", save_best_only=True)
    assert list(tmp_path.iterdir()) == []  # their folders are made when they write, not before
    ctx = FitContext(
        net=None, params={"w": jnp.asarray(0.0)}, opt_state=None, history=History(1), epochs=3, iterations_per_epoch=1
    )
    for cb in (cb_csv, cb_ckpt):
        cb.on_train_begin(ctx)
    for epoch, value in enumerate([2.0, 1.0, 1.5]):
        ctx.params = {"w": jnp.asarray(float(epoch))}
        for cb in (cb_csv, cb_ckpt):
            cb.on_epoch_end(epoch, {"loss": value, "acc": 0.1 * epoch}, ctx)
    with open(log) as f:
        rows = list(csv.reader(f))
    # Keras 3.15's CSVLogger: sorted names, then val_<name> for each when the first logs have none
    assert rows[0] == ["epoch", "acc", "loss", "val_acc", "val_loss"] and len(rows) == 4
    assert [float(r[2]) for r in rows[1:]] == [2.0, 1.0, 1.5] and {v for r in rows[1:] for v in r[3:]} == {"NA"}
    loaded = fnn.checkpoint.load(str(ckpt), params={"w": jnp.asarray(0.0)})
    assert float(loaded.params["w"]) == 1.0 and loaded.epoch == 2  # best epoch (index 1) saved, not the last


def test_csv_logger_writes_a_float32_value_as_the_shortest_text_that_reads_back_to_it():
    """As its docstring says: 1e-08, not 0.00000001 (and a 42-digit string for 1e-40); the
    positional form where it is as short (0.001, 100)."""
    from fnn.callbacks._files import csv_number

    values = [1e-8, 1e-40, 0.001, 100.0, 0.1, 123456789.0, 3e38, 1e6, 2.5]
    texts = [csv_number(float(np.float32(v))) for v in values]
    assert texts == ["1e-08", "1e-40", "0.001", "100", "0.1", "123456790", "3e+38", "1e+06", "2.5"]
    assert [float(np.float32(float(t))) for t in texts] == [float(np.float32(v)) for v in values]
    assert csv_number(0.1 + 1e-12) == 0.1 + 1e-12  # not a float32 value: exact, as Python writes it


def test_csv_logger_writes_an_array_or_list_a_callback_logged_as_keras_does(tmp_path):
    """Keras 3.15's CSVLogger writes an iterable as ``"[a, b]"`` with its quotes, which the CSV
    quoting doubles; fnn wrote NumPy's ``[1.5 -2. ]``."""
    log = tmp_path / "log.csv"
    cb = CSVLogger(str(log))
    ctx = FitContext(
        net=None, params={"w": jnp.asarray(0.0)}, opt_state=None, history=History(1), epochs=1, iterations_per_epoch=1
    )
    cb.on_train_begin(ctx)
    logs = {"loss": 0.5, "norms": np.array([1.5, -2.0], np.float32), "ids": [1, 2], "w": jnp.asarray([0.25, 3.0])}
    cb.on_epoch_end(0, logs, ctx)
    cb.on_train_end(ctx)
    assert log.read_text().splitlines() == [
        "epoch,ids,loss,norms,w,val_ids,val_loss,val_norms,val_w",
        '0,"""[1, 2]""",0.5,"""[1.5, -2.0]""","""[0.25, 3.0]""",NA,NA,NA,NA',
    ]


class _KerasReduceLROnPlateau:
    """Keras 3.15's ReduceLROnPlateau, line for line (keras/src/callbacks/reduce_lr_on_plateau.py
    and monitor_callback.py), on a plain learning rate: the reference the callback must follow."""

    def __init__(self, mode, factor, patience, min_delta, cooldown, min_lr, lr):
        self.less = mode == "min"
        self.min_delta = abs(min_delta) * (-1 if self.less else 1)
        self.factor, self.patience, self.cooldown, self.min_lr, self.lr = factor, patience, cooldown, min_lr, lr
        self.best, self.wait, self.cooldown_counter = None, 0, 0

    def improvement(self, value, reference):
        if reference is None:
            return True
        v = value - self.min_delta
        return v < reference if self.less else v > reference

    def epoch_end(self, current):
        logged = self.lr
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self.improvement(current, self.best):
            self.best, self.wait = current, 0
        elif not self.cooldown_counter > 0:
            self.wait += 1
            if self.wait >= self.patience and self.lr > np.float32(self.min_lr):
                self.lr = max(self.lr * self.factor, self.min_lr)
                self.cooldown_counter, self.wait = self.cooldown, 0
        return logged


def _plateau_rates(cb, values, lr, monitor="loss"):
    opt = O.sgd(lr)
    ctx = FitContext(None, {"w": jnp.zeros(())}, opt.init({"w": jnp.zeros(())}), History(1), len(values), 1)
    cb.on_train_begin(ctx)
    rates = []
    for epoch, value in enumerate(values):
        logs = {monitor: value}
        cb.on_epoch_end(epoch, logs, ctx)
        rates.append(logs["learning_rate"])
    return rates


def test_reduce_lr_on_plateau_starts_with_best_unset_as_keras_3():
    # The sequence: the first epoch is always an improvement, even an infinite one.
    cb = ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1)
    np.testing.assert_allclose(_plateau_rates(cb, [math.inf, math.inf, 1.0, 0.9], 0.05), [0.05, 0.05, 0.025, 0.025])


@pytest.mark.parametrize("mode", ["min", "max"])
@pytest.mark.parametrize("min_delta", [0.0, 0.05, -0.05])
@pytest.mark.parametrize("patience,cooldown,min_lr", [(0, 0, 0.0), (1, 0, 0.0), (2, 1, 0.01), (1, 2, 0.02)])
def test_reduce_lr_on_plateau_follows_keras_step_by_step(mode, min_delta, patience, cooldown, min_lr):
    rng = np.random.default_rng(patience * 7 + cooldown)
    values = list(np.round(rng.normal(1.0, 0.1, size=25), 2))  # rounded: ties and near-ties happen
    values[3] = values[4] = math.inf if mode == "min" else -math.inf
    ref = _KerasReduceLROnPlateau(mode, 0.5, patience, min_delta, cooldown, min_lr, 0.1)
    want = [ref.epoch_end(v) for v in values]
    cb = ReduceLROnPlateau(monitor="loss", mode=mode, factor=0.5, patience=patience, min_delta=min_delta,
                           cooldown=cooldown, min_lr=min_lr)  # fmt: skip
    got = _plateau_rates(cb, values, 0.1)
    np.testing.assert_allclose(got, want, rtol=1e-6)  # the rate is held in float32 by the state
    assert len(set(want)) > 2  # the sequence does exercise reductions


@pytest.mark.parametrize(
    "make,error,message",
    [
        (lambda: EarlyStopping(patience=-1), ValueError, "patience must be >= 0"),
        (lambda: EarlyStopping(patience=1.5), TypeError, "patience must be an int"),
        (lambda: EarlyStopping(restore_best_weights="no"), TypeError, "restore_best_weights must be a bool, got str"),
        (lambda: EarlyStopping(baseline="low"), TypeError, "baseline"),
        (lambda: EarlyStopping(monitor=None), TypeError, "monitor must be a log name"),
        (lambda: ReduceLROnPlateau(factor=1.0), ValueError, r"factor must be in \(0, 1\)"),
        (lambda: ReduceLROnPlateau(cooldown=-1), ValueError, "cooldown must be >= 0"),
        (lambda: ReduceLROnPlateau(min_lr=-1e-3), ValueError, "min_lr must be >= 0"),
        (lambda: StopAtThreshold(value=float("nan")), ValueError, "value must be finite"),
    ],
)
def test_bad_callback_arguments_are_named(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_callback_options_take_jax_scalars_as_numbers_and_refuse_8_bit_floats():
    """jnp.float32(0.5) and a bfloat16 jax scalar are numbers wherever NumPy's are (they were
    refused for factor and min_lr, and EarlyStopping's min_delta took "0.1"); a value held in an
    8-bit float has already been rounded, and is refused by name."""
    half, tiny = jax.device_put(np.asarray(0.5, jnp.bfloat16)), jnp.float32(0.25)
    plateau = ReduceLROnPlateau(factor=half, min_lr=tiny)
    assert (plateau.factor, plateau.min_lr) == (0.5, 0.25) and type(plateau.factor) is float
    assert EarlyStopping(min_delta=tiny).min_delta == 0.25
    assert EarlyStopping(baseline=half).baseline == 0.5 and StopAtThreshold(value=tiny).value == 0.25
    with pytest.raises(TypeError, match="^min_delta must be a real number, got '0.1'$"):
        EarlyStopping(min_delta="0.1")
    eight = jax.device_put(np.asarray(0.9, jnp.float8_e4m3fn))
    for make, name in (
        (lambda: ReduceLROnPlateau(factor=eight), "factor"),
        (lambda: EarlyStopping(min_delta=eight), "min_delta"),
    ):
        with pytest.raises(TypeError, match=rf"^{name} is held in float8_e4m3fn \(as 0.875\)"):
            make()


def _drive_checkpoint(cb, logs_per_epoch):
    """Drives ModelCheckpoint ``cb`` outside fit (each save written at once) through epochs whose
    params are ``{"w": epoch}``."""
    ctx = FitContext(None, {"w": jnp.asarray(-1.0)}, None, History(1), len(logs_per_epoch), 1)
    cb.on_train_begin(ctx)
    for epoch, logs in enumerate(logs_per_epoch):
        ctx.params = {"w": jnp.asarray(float(epoch))}
        cb.on_epoch_end(epoch, dict(logs), ctx)


def _saved(folder):
    return sorted(p.name for p in folder.iterdir())


def test_model_checkpoint_initial_value_threshold_is_the_best_a_value_must_beat_as_keras_3(tmp_path):
    low = ModelCheckpoint(tmp_path / "min" / "e{epoch}.npz", "loss", save_best_only=True, initial_value_threshold=0.8)
    assert low.best == low.get_state()["best"] == 0.8  # saved with fit's checkpoints, so a resumed run keeps it
    _drive_checkpoint(low, [{"loss": v} for v in (2.0, 0.8, 0.5, 0.7, 0.4)])
    assert _saved(tmp_path / "min") == ["e3.npz", "e5.npz"] and low.best == 0.4  # 0.8 itself does not beat 0.8
    assert fnn.checkpoint.load(tmp_path / "min" / "e3.npz").params == {"['w']": 2.0}
    high = ModelCheckpoint(tmp_path / "max" / "e{epoch}.npz", "acc", save_best_only=True, mode="max",
                           initial_value_threshold=0.5)  # fmt: skip
    _drive_checkpoint(high, [{"acc": v} for v in (0.4, 0.5, 0.6, 0.55)])
    assert _saved(tmp_path / "max") == ["e3.npz"]
    resumed = ModelCheckpoint(tmp_path / "r.npz", "loss", save_best_only=True, initial_value_threshold=9.0)
    resumed.set_state({"best": 0.3})  # a resumed run compares with the best before the interruption
    _drive_checkpoint(resumed, [{"loss": 0.35}])
    assert not (tmp_path / "r.npz").exists()


def test_model_checkpoint_best_only_without_its_monitor_saves_every_epoch_with_a_warning_as_keras_3(tmp_path):
    """Keras 3.15 (_should_save_model): "Can save best model only with val_loss available." and
    the epoch is saved; a monitor that turns up later is then compared as usual."""
    cb = ModelCheckpoint(tmp_path / "e{epoch}.npz", save_best_only=True)  # val_loss, never logged
    with pytest.warns(RuntimeWarning, match="can save best model only with val_loss available") as caught:
        h = _small_fit(epochs=2, callbacks=[cb]).history
    assert len(caught) == 2 and _saved(tmp_path) == ["e1.npz", "e2.npz"] and cb.best is None
    assert fnn.checkpoint.load(tmp_path / "e2.npz").history["history"]["loss"] == h["loss"]
    later = ModelCheckpoint(tmp_path / "later" / "e{epoch}.npz", "val_loss", save_best_only=True)
    with pytest.warns(RuntimeWarning):
        _drive_checkpoint(later, [{"loss": 1.0}, {"val_loss": 2.0}, {"val_loss": 3.0}, {"val_loss": 1.0}])
    assert _saved(tmp_path / "later") == ["e1.npz", "e2.npz", "e4.npz"]


def test_model_checkpoint_save_weights_only_writes_the_params_alone_which_fit_will_not_resume(tmp_path):
    weights = ModelCheckpoint(tmp_path / "w-{epoch}.npz", save_weights_only=True)
    res = _small_fit(epochs=2, callbacks=[weights, ModelCheckpoint(tmp_path / "full.npz")])
    assert _saved(tmp_path) == ["full.npz", "w-1.npz", "w-2.npz"]
    params = [{"w": jnp.zeros((2, 1)), "b": jnp.zeros(1)}]
    only = fnn.checkpoint.load(tmp_path / "w-2.npz", params=params)
    assert only.epoch == 2 and (only.opt_state, only.key, only.history, only.callbacks) == (None, None, None, None)
    chex.assert_trees_all_equal(only.params, res.params)
    full = fnn.checkpoint.load(tmp_path / "full.npz", params=params)
    chex.assert_trees_all_equal(full.params, only.params)
    assert full.opt_state is not None and full.key is not None and full.callbacks
    # no run state to resume: fit says so before anything runs, and leaves the file as it was
    before = (tmp_path / "w-2.npz").read_bytes()
    with pytest.raises(
        ValueError,
        match=r"holds no optimizer state \(it was saved with params only, as ModelCheckpoint\(save_weights_only",
    ):
        _small_fit(epochs=3, checkpoint=tmp_path / "w-2.npz")
    fixed = ModelCheckpoint(tmp_path / "w.npz", save_weights_only=True)  # fit would write its own over it
    with pytest.raises(ValueError, match="is ModelCheckpoint's save_weights_only file: .* another path"):
        _small_fit(epochs=1, checkpoint=tmp_path / "w.npz", callbacks=[fixed])
    assert (tmp_path / "w-2.npz").read_bytes() == before and not (tmp_path / "w.npz").exists()


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        (
            dict(save_freq=10),
            ValueError,
            r"save_freq=10 \(a save every 10 batches\) cannot be: fnn's epochs are "
            r"compiled programs: there are no per-batch hooks; ModelCheckpoint saves at each epoch's end",
        ),
        (dict(save_freq="batch"), ValueError, "save_freq must be 'epoch', got 'batch'"),
        (dict(save_freq=True), TypeError, "save_freq must be 'epoch', got bool"),
        (dict(save_weights_only=1), TypeError, "save_weights_only must be a bool"),
        (dict(initial_value_threshold="0.5"), TypeError, "initial_value_threshold must be a real number"),
        (dict(initial_value_threshold=math.nan), ValueError, "initial_value_threshold must be finite"),
    ],
)
def test_model_checkpoint_keras_3_keywords_refused_where_fnn_cannot_do_them(tmp_path, kwargs, error, message):
    with pytest.raises(error, match=message):
        ModelCheckpoint(tmp_path / "ck.npz", **kwargs)
    assert ModelCheckpoint(tmp_path / "ck.npz", save_freq="epoch").save_freq == "epoch"  # Keras's default


def test_terminate_on_nan_raise_error_raises_at_the_bad_epoch_as_keras_3(tmp_path):
    """Keras 3.15's TerminateOnNaN(raise_error=True) raises a RuntimeError instead of stopping;
    no on_train_end runs. fnn raises at the end of the epoch of the bad batch, whose files are
    not written."""
    ran, ctx = _run(TerminateOnNaN(), [1.0, math.nan, 1.0])
    assert ran == 2 and ctx.stop_reason == "nan"
    with pytest.raises(RuntimeError, match=r"NaN or Inf loss encountered in epoch 2 \(loss inf\)"):
        _run(TerminateOnNaN(raise_error=True), [1.0, math.inf, 1.0])
    ended, ck = [], tmp_path / "run.npz"
    cbs = [ModelCheckpoint(tmp_path / "e{epoch}.npz"), TerminateOnNaN(raise_error=True),
           fnn.callbacks.LambdaCallback(on_train_end=ended.append)]  # fmt: skip
    with pytest.raises(RuntimeError, match=r"NaN or Inf loss encountered in epoch 2 \(loss inf\)\. Terminating"):
        _small_fit(opt=O.sgd(1e100), epochs=5, callbacks=cbs, checkpoint=ck)  # epoch 2's loss overflows
    assert ended == [] and fnn.checkpoint.load(ck).epoch == 1 and _saved(tmp_path) == ["e1.npz", "run.npz"]
    with pytest.raises(TypeError, match="raise_error must be a bool"):
        TerminateOnNaN(raise_error="yes")


def test_both_learning_rate_callbacks_log_the_rate_the_state_holds_at_the_epoch_s_end_as_keras_3():
    """Keras logs float(optimizer.learning_rate) at the epoch's end: with a per-step schedule,
    the rate of the next step (here 2 steps an epoch, lr(step) = 0.1 * 0.8**step)."""
    want = [0.1 * 0.8 ** (2 * (epoch + 1)) for epoch in range(3)]
    for cb in (ReduceLROnPlateau(monitor="loss", patience=100), LearningRateScheduler(lambda epoch, lr: lr)):
        res = _small_fit(opt=O.sgd(fnn.schedules.exponential_decay(0.1, 1, 0.8)), epochs=3, callbacks=[cb])
        np.testing.assert_allclose(res.history["learning_rate"], want, rtol=1e-6)
        assert res.history["learning_rate"][-1] == float(O.get_learning_rate(res.opt_state))


def test_early_stopping_verbose_says_which_epoch_s_weights_it_restores_as_keras_3(capsys):
    _run(EarlyStopping(monitor="loss", patience=1, restore_best_weights=True, verbose=1), [3.0, 1.0, 2.0, 0.5])
    assert capsys.readouterr().out == (
        "Epoch 3: early stopping\nRestoring model weights from the end of the best epoch: 2.\n"
    )
    _run(EarlyStopping(monitor="loss", patience=9, restore_best_weights=True, verbose=1), [3.0, 1.0, 2.0])
    assert capsys.readouterr().out == "Restoring model weights from the end of the best epoch: 2.\n"
    _run(EarlyStopping(monitor="loss", patience=1, restore_best_weights=True), [3.0, 1.0, 2.0])
    assert capsys.readouterr().out == ""


def _groups(first, second):
    """Two parameter groups (torch's param_groups): ``w`` trained by ``first``, ``b`` by ``second``."""
    opt = O.chain(O.masked(first, {"b": False, "w": True}), O.masked(second, {"b": True, "w": False}))
    return opt.init({"b": jnp.zeros(()), "w": jnp.zeros(())})


def _rates(state):
    return [float(lr) for lr in O.get_learning_rates(state)]


def test_writing_back_a_warmup_s_0_keeps_its_schedule():
    """Keras's idiom ``lr if epoch < 10 else lr * exp(-0.1)`` on a warmup from 0: at epoch 0
    the state holds 0 and gets 0 back, which changes nothing (it used to scale the schedule by
    0 for good); the schedule still reaches its peak 0.1 at step 6."""
    sched = fnn.schedules.warmup_cosine_decay(0.0, peak_value=0.1, warmup_steps=6, decay_steps=60)
    state = O.sgd(sched).init({"w": jnp.zeros(2)})
    for cb in (
        LearningRateScheduler(lambda epoch, lr: lr if epoch < 10 else lr * math.exp(-0.1)),
        LearningRateScheduler(lambda epoch, lr: lr * 0.5),  # 0 * 0.5: the value held too
        ReduceLROnPlateau(monitor="loss", patience=0, min_delta=100.0),  # a rate of 0 is not reduced
    ):
        _, ctx = _run(cb, [1.0, 1.0], opt_state=state)
        assert float(ctx.opt_state.scales["learning_rate"]) == 1.0
        assert float(sched(6)) * float(ctx.opt_state.scales["learning_rate"]) == pytest.approx(0.1, rel=1e-15)
    # a nonzero rate onto the warmup's 0 is still refused: no factor of the schedule gives it
    with pytest.raises(ValueError, match="learning_rate=0.05: learning_rate follows a schedule that gives 0"):
        _run(LearningRateScheduler(lambda epoch: 0.05), [1.0], opt_state=state)


def test_reduce_lr_on_plateau_reduces_each_parameter_group_s_own_rate_as_torch():
    """torch's ReduceLROnPlateau: each param group becomes max(lr * factor, min_lr) (a group at or
    below min_lr keeps its rate); the first group's rate is logged. It used to set every group
    to the first group's reduced rate, raising 0.01 to 0.05."""
    plateau = dict(monitor="loss", patience=0, min_delta=100.0, factor=0.5)  # every epoch after the first
    cb = ReduceLROnPlateau(**plateau)
    _, ctx = _run(cb, [1.0, 1.0, 1.0], opt_state=_groups(O.sgd(0.1), O.sgd(0.01)))
    np.testing.assert_allclose(_rates(ctx.opt_state), [0.025, 0.0025], rtol=1e-15)
    logged = _plateau_rates(ReduceLROnPlateau(**plateau), [1.0, 1.0, 1.0], 0.1)
    np.testing.assert_allclose(logged, [0.1, 0.1, 0.05], rtol=1e-15)
    # min_lr per group: 0.005 -> max(0.0025, 0.004); 0.004 is not above min_lr: kept
    _, ctx = _run(ReduceLROnPlateau(**plateau, min_lr=0.004), [1.0] * 4, opt_state=_groups(O.sgd(0.1), O.sgd(0.01)))
    np.testing.assert_allclose(_rates(ctx.opt_state), [0.0125, 0.004], rtol=1e-15)
    # a group below min_lr is not raised to it; the other is reduced
    _, ctx = _run(ReduceLROnPlateau(**plateau, min_lr=0.02), [1.0, 1.0], opt_state=_groups(O.sgd(0.1), O.sgd(0.01)))
    np.testing.assert_allclose(_rates(ctx.opt_state), [0.05, 0.01], rtol=1e-15)


def test_reduce_lr_on_plateau_verbose_names_each_group_s_new_rate(capsys):
    cb = ReduceLROnPlateau(monitor="loss", patience=0, min_delta=100.0, factor=0.5, verbose=1)
    _run(cb, [1.0, 1.0], opt_state=_groups(O.sgd(0.1), O.sgd(0.01)))
    assert capsys.readouterr().out == "Epoch 2: ReduceLROnPlateau reducing learning rates to [0.05, 0.005].\n"


def test_learning_rate_scheduler_scales_every_group_by_the_first_group_s_ratio():
    """The schedule gets the first group's rate; every group is scaled by new / old, so they
    keep their proportions (0.1 : 0.01); the first group's rate is logged."""
    _, ctx = _run(
        LearningRateScheduler(lambda epoch, lr: lr * 0.5), [1.0, 1.0], opt_state=_groups(O.sgd(0.1), O.sgd(0.01))
    )
    np.testing.assert_allclose(_rates(ctx.opt_state), [0.025, 0.0025], rtol=1e-15)
    cb, state = LearningRateScheduler(lambda epoch: 0.2), _groups(O.sgd(0.1), O.sgd(0.01))
    _, ctx = _run(cb, [1.0], opt_state=state)
    np.testing.assert_allclose(_rates(ctx.opt_state), [0.2, 0.02], rtol=1e-15)
    # a group whose warmup holds 0 now stays at 0, and its whole schedule is scaled: peak 0.01 * 0.5
    warm = fnn.schedules.warmup_cosine_decay(0.0, 0.01, 4, 40)
    _, ctx = _run(LearningRateScheduler(lambda epoch, lr: 0.05), [1.0], opt_state=_groups(O.sgd(0.1), O.sgd(warm)))
    assert _rates(ctx.opt_state) == [pytest.approx(0.05, rel=1e-15), 0.0]
    assert float(ctx.opt_state[1].inner_state.scales["learning_rate"]) == 0.5
    # the first group at 0: no ratio; a new rate is set into every group, as set_learning_rate does
    _, ctx = _run(LearningRateScheduler(lambda epoch: 0.2), [1.0], opt_state=_groups(O.sgd(0.0), O.sgd(0.01)))
    np.testing.assert_allclose(_rates(ctx.opt_state), [0.2, 0.2], rtol=1e-15)


@pytest.mark.parametrize("bad", [None, "0.2", True, np.array([0.1]), np.array([0.1, 0.2]), 0.2 + 0j, jnp.array([0.2])])
def test_learning_rate_scheduler_refuses_a_result_that_is_not_a_real_number_naming_the_epoch(bad):
    """Keras refuses what is not a float; None and a 1-element array used to fail inside
    float() and "0.2" to be taken."""
    cb = LearningRateScheduler(lambda epoch: 0.1 if epoch == 0 else bad)
    said = "LearningRateScheduler: the schedule's learning rate for epoch 1 must be a real number"
    message = rf"^{said}, got {re.escape(repr(bad))}$"
    with pytest.raises(TypeError, match=message):
        _run(cb, [1.0, 1.0], opt_state=O.sgd(0.5).init({"w": jnp.zeros(())}))


@pytest.mark.parametrize(
    "good,want",
    [(np.float32(0.25), 0.25), (np.array(0.25), 0.25), (jnp.float32(0.25), 0.25), (jnp.bfloat16(0.25), 0.25),
     (np.int64(1), 1.0), (2, 2.0), (np.array(3, np.int32), 3.0)],
)  # fmt: skip
def test_learning_rate_scheduler_takes_python_and_numpy_scalars_and_0_d_arrays(good, want):
    _, ctx = _run(LearningRateScheduler(lambda epoch: good), [1.0], opt_state=O.sgd(0.5).init({"w": jnp.zeros(())}))
    assert float(O.get_learning_rate(ctx.opt_state)) == want


def test_learning_rate_scheduler_returning_the_held_rate_in_the_state_s_dtype_changes_nothing():
    """A float32 state holds 0.1 as 0.10000000149; a schedule returning Python's 0.1 returns that
    rate, so the state is left as it is (it used to be rescaled by 0.1 / 0.10000000149 every
    epoch, a per-step schedule's scale with it)."""
    warm = fnn.schedules.warmup_cosine_decay(0.0, 0.01, 4, 40)
    p = {"w": jnp.zeros((), jnp.float32)}
    state = _groups(O.sgd(0.1), O.sgd(warm))
    state = jax.tree.map(lambda a: a.astype(jnp.float32) if jnp.issubdtype(a.dtype, jnp.floating) else a, state)
    assert O.get_learning_rate(state).dtype == jnp.float32 and float(O.get_learning_rate(state)) != 0.1
    cb = LearningRateScheduler(lambda epoch: 0.1)
    cb.on_epoch_begin(0, ctx := FitContext(None, p, state, History(1), 1, 1))
    assert ctx.opt_state is state
    # a rate that differs in the state's dtype is still set
    cb = LearningRateScheduler(lambda epoch: 0.1000001)
    cb.on_epoch_begin(0, ctx)
    assert float(O.get_learning_rate(ctx.opt_state)) == float(np.float32(0.1000001))


def _tqdm_monitors():
    """The threads of tqdm's monitor alive now (tqdm names each ``tqdm_monitor``)."""
    import threading

    return {t for t in threading.enumerate() if t.name == "tqdm_monitor" and t.is_alive()}


def test_the_progress_bar_leaves_no_tqdm_monitor_thread_and_the_user_s_tqdm_keeps_its_own(capsys):
    """verbose=1 draws tqdm's bar, but its class starts no ``tqdm_monitor`` thread (tqdm 4.70 left
    it running after fit returned); tqdm's own classes keep their monitor_interval, so a bar of
    the user's still starts its monitor."""
    import io

    import tqdm.auto
    import tqdm.std

    intervals = (tqdm.std.tqdm.monitor_interval, tqdm.auto.tqdm.monitor_interval)
    for cls in {tqdm.std.tqdm, tqdm.auto.tqdm}:  # one an earlier test left would be reused: stopped
        if cls.monitor is not None:
            cls.monitor.exit()
            cls.monitor = None
    before = _tqdm_monitors()
    assert not before
    res = _small_fit(epochs=2, verbose=1)
    err = capsys.readouterr().err
    # the bar: 2 epochs of 2 batches of 4 samples, the last epoch's loss as fit logs it
    assert "Epoch 2/2" in err and "4/4 [" in err and f"loss: {res.history['loss'][-1]:.4f}" in err
    assert not _tqdm_monitors()  # none started
    assert (tqdm.std.tqdm.monitor_interval, tqdm.auto.tqdm.monitor_interval) == intervals == (10, 10)
    bar = tqdm.auto.tqdm(total=1, file=io.StringIO())
    try:
        (monitor,) = _tqdm_monitors()
        assert type(bar).monitor is monitor
    finally:
        bar.close()
        type(bar).monitor.exit()  # the process as this test found it: no monitor
        type(bar).monitor = None
    assert not _tqdm_monitors()


def test_the_new_names_a_lambda_callback_logs_are_recorded_as_in_keras_its_changes_are_not():
    """Keras's History records what a LambdaCallback adds to the epoch's logs (Keras 3.15:
    ``{'loss': [...], 'lam': [1.0, 1.0]}``): so does fnn, for a plain callable and both forms
    of LambdaCallback, arrays too (a checkpoint stores them); changing or deleting the epoch's
    own entries in the copy changes nothing, and a later callback can monitor a new name."""

    def plain(epoch, logs):
        logs["custom"] = 1.5 * (epoch + 1)
        logs["norm"] = jnp.float32(2.0)  # a 0-d array: its Python number
        logs["loss"] = "tampered"
        del logs["loss"]

    keras_style = fnn.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: logs.update(lam=1.0, note=None))
    stop = EarlyStopping(monitor="custom", mode="min", patience=0)  # custom rises: stops after epoch 1
    h = _small_fit(
        epochs=4, callbacks=[plain, keras_style, lambda epoch, logs: logs.update(vec=jnp.zeros(3)), stop]
    ).history
    assert h["custom"] == [1.5, 3.0] and h["norm"] == [2.0, 2.0] and h["lam"] == [1.0, 1.0]
    assert h["note"] == [None, None] and h.stop_reason == "early_stopping"
    assert [type(v) for v in h["vec"]] == [np.ndarray, np.ndarray]  # on the host, as a resumed run reads it
    reference = _small_fit(epochs=2).history
    assert h["loss"] == reference["loss"]
