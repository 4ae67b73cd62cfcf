"""Resuming with callbacks (issue 16 items 1-4): every built-in callback's state travels with
fit's checkpoints, so an interrupted and resumed run is bit-identical to an uninterrupted one --
params, optimizer state, history, the CSV log and every checkpoint file -- with shuffling,
Dropout and validation_split; a NaN guard that never keeps NaN params; finished and stopped
runs that stay finished.

All fits share one compiled epoch (same network, loss, optimizer family, TerminateOnNaN present,
unroll=1)."""

import os
import pathlib
import re
import warnings

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import checkpoint, optimizers as O
from fnn.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    LambdaCallback,
    LearningRateScheduler,
    ModelCheckpoint,
    ReduceLROnPlateau,
    StopAtThreshold,
    TerminateOnNaN,
)

KEY = jax.random.PRNGKey(0)
NET = fnn.serial(fnn.Dense(6, "relu"), fnn.Dropout(0.25), fnn.Dense(2))
MSE = fnn.losses.get("mse")
RUN = dict(batch_size=3, key=jax.random.PRNGKey(7), verbose=0, validation_split=0.2, unroll=1, shuffle=True)
EPOCHS = 9


def _problem(n=11):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 4)), rng.normal(size=(n, 2))


def _bits(tree):
    return [(str(np.asarray(a).dtype), np.shape(a), np.asarray(a).tobytes()) for a in jax.tree.leaves(tree)]


class Interrupt(Callback):
    """Raises KeyboardInterrupt at the end of epoch ``at`` -- after the callbacks before it ran
    (the CSV row of that epoch is written) and before the epoch's checkpoints are."""

    def __init__(self, at):
        self.at = at

    def on_epoch_end(self, epoch, logs, ctx):
        if epoch == self.at:
            raise KeyboardInterrupt("interrupted")


def _callbacks(folder: pathlib.Path, lr: str, at=None):
    # min_delta=10 on losses of ~1: the first epoch is the only improvement, so the waits run
    # through the interruption; EarlyStopping stops at epoch 6, ReduceLROnPlateau halves the
    # rate after epochs 2, 4 and 6.
    rate = (
        ReduceLROnPlateau(monitor="loss", min_delta=10, patience=2, factor=0.5)
        if lr == "plateau"
        else LearningRateScheduler(lambda e, lr: lr * 0.9 if e else 0.05)
    )
    return [
        EarlyStopping(monitor="val_loss", min_delta=10, patience=6, restore_best_weights=True),
        rate,
        ModelCheckpoint(folder / "best.npz", monitor="val_loss", save_best_only=True),
        ModelCheckpoint(folder / "ep{epoch}.npz"),
        CSVLogger(folder / "log.csv"),
        TerminateOnNaN(),
        StopAtThreshold(monitor="loss", value=-1.0),
        LambdaCallback(lambda epoch, logs: None),
        Interrupt(at),
    ]


def _same_checkpoint(a: pathlib.Path, b: pathlib.Path):
    ca, cb = checkpoint.load(a), checkpoint.load(b)
    assert ca.epoch == cb.epoch
    assert _bits(ca.params) == _bits(cb.params) and _bits(ca.opt_state) == _bits(cb.opt_state)
    ha, hb = dict(ca.history), dict(cb.history)
    ha.pop("times"), hb.pop("times")
    assert ha == hb
    assert _bits(ca.callbacks) == _bits(cb.callbacks)
    strip = lambda s: jax.tree.map(lambda v: None if isinstance(v, (np.ndarray, jax.Array)) else v, s)
    assert strip(ca.callbacks) == strip(cb.callbacks)


@pytest.mark.parametrize("lr", ["plateau", "schedule"])
def test_interrupted_run_with_every_builtin_callback_resumes_bit_identically(tmp_path, lr):
    x, y = _problem()
    params = NET.init(KEY, (4,), jnp.float64)
    opt = O.adam(0.05)
    full_dir, cut_dir = tmp_path / "full", tmp_path / "cut"
    full = fnn.fit(
        NET, params, opt, MSE, x, y, epochs=EPOCHS, checkpoint=full_dir / "run.npz",
        callbacks=_callbacks(full_dir, lr), **RUN,
    )  # fmt: skip
    if lr == "plateau":
        assert full.history.stop_reason == "early_stopping" and full.history.epochs == list(range(7))
        assert full.history["learning_rate"] == [0.05] * 3 + [0.025] * 2 + [0.0125] * 2
    with pytest.raises(KeyboardInterrupt):
        fnn.fit(
            NET, params, opt, MSE, x, y, epochs=EPOCHS, checkpoint=cut_dir / "run.npz",
            callbacks=_callbacks(cut_dir, lr, at=4), **RUN,
        )  # fmt: skip
    assert checkpoint.load(cut_dir / "run.npz").epoch == 4  # epoch 4 ran; its checkpoint never came
    # A new process: new callback objects, the same command.
    resumed = fnn.fit(
        NET, params, opt, MSE, x, y, epochs=EPOCHS, checkpoint=cut_dir / "run.npz",
        callbacks=_callbacks(cut_dir, lr), **RUN,
    )  # fmt: skip
    assert _bits(resumed.params) == _bits(full.params)  # restore_best_weights: the same best epoch
    assert _bits(resumed.opt_state) == _bits(full.opt_state)
    assert resumed.history.epochs == full.history.epochs
    assert resumed.history.history == full.history.history
    assert (resumed.history.stop_reason, resumed.history.stopped_epoch) == (
        full.history.stop_reason,
        full.history.stopped_epoch,
    )
    assert (cut_dir / "log.csv").read_text() == (full_dir / "log.csv").read_text()
    assert sorted(os.listdir(cut_dir)) == sorted(os.listdir(full_dir))
    for name in os.listdir(full_dir):
        if name.endswith(".npz"):
            _same_checkpoint(full_dir / name, cut_dir / name)


def test_finished_and_stopped_runs_stay_finished_and_checkpoint_files_hold_their_epochs(tmp_path):
    x, y = _problem()
    params = NET.init(KEY, (4,), jnp.float64)
    opt = O.adam(0.05)
    cbs = lambda: [
        EarlyStopping(monitor="val_loss", min_delta=10, patience=2, restore_best_weights=True),
        ModelCheckpoint(tmp_path / "ep{epoch}.npz"),
        TerminateOnNaN(),
    ]
    first = fnn.fit(NET, params, opt, MSE, x, y, epochs=EPOCHS, checkpoint=tmp_path / "run.npz", callbacks=cbs(), **RUN)
    assert first.history.stop_reason == "early_stopping" and first.history.epochs == [0, 1, 2]
    saved = checkpoint.load(tmp_path / "run.npz")
    assert saved.history["stop_reason"] == "early_stopping"  # saved after the stop was decided
    # The identical call again: nothing more is trained, and the same (restored best) params return.
    again = fnn.fit(NET, params, opt, MSE, x, y, epochs=EPOCHS, checkpoint=tmp_path / "run.npz", callbacks=cbs(), **RUN)
    assert _bits(again.params) == _bits(first.params) and _bits(again.opt_state) == _bits(first.opt_state)
    assert again.history.epochs == [0, 1, 2] and again.history.history == first.history.history
    # A ModelCheckpoint file written after epoch 2 (1-based) holds exactly two epochs, and a run
    # resumed from it continues with epoch index 2.
    ep2 = checkpoint.load(tmp_path / "ep2.npz")
    assert ep2.epoch == 2 and ep2.history["epochs"] == [0, 1] and len(ep2.history["history"]["loss"]) == 2
    os.replace(tmp_path / "ep2.npz", tmp_path / "from2.npz")
    # (without the callbacks it was written with: their saved state is dropped, and said so)
    with pytest.warns(RuntimeWarning, match=r"state of callbacks\[0\] \(EarlyStopping: .*best_weights\), which no"):
        cont = fnn.fit(NET, params, opt, MSE, x, y, epochs=4, checkpoint=tmp_path / "from2.npz", verbose=0,
                       batch_size=3, key=RUN["key"], validation_split=0.2, unroll=1)  # fmt: skip
    assert cont.history.epochs == [0, 1, 2, 3]


def test_a_run_resumed_with_another_batch_size_records_its_own_steps_per_epoch(tmp_path):
    x, y = _problem(12)
    path, seen = tmp_path / "ck.npz", []
    params = NET.init(KEY, (4,))
    fnn.fit(NET, params, "sgd", MSE, x, y, epochs=1, checkpoint=path, **{**RUN, "batch_size": 6})
    record = lambda self, epoch, logs, ctx: seen.append(ctx.iterations_per_epoch)
    watch = type("Watch", (Callback,), {"on_epoch_end": record})
    with pytest.warns(UserWarning, match=r"batch_size 3 \(the checkpoint's: 6\)"):  # on purpose here
        res = fnn.fit(NET, params, "sgd", MSE, x, y, epochs=2, checkpoint=path, callbacks=[watch()], **RUN)
    # the resumed epoch ran at batch 3: its steps, as a fresh run at batch 3 counts them (not batch 6's 2)
    fresh = fnn.fit(NET, params, "sgd", MSE, x, y, epochs=1, **RUN).history.iterations_per_epoch
    assert res.history.iterations_per_epoch == seen[0] == fresh != 2


def test_a_resume_without_a_key_takes_the_file_s_and_other_settings_are_warned_of(tmp_path):
    """The checkpoint records the run's key, batch size and shuffling. Resumed without a key,
    the run takes the file's: bit-identical to the uninterrupted run, and the file keeps that
    key. Resumed with another key, batch size or shuffling, it goes on with them and a
    UserWarning names each against the file's value; a finished run, which trains nothing
    more, warns of nothing."""
    x, y = _problem()
    params = NET.init(KEY, (4,), jnp.float64)
    fit = lambda path, epochs, **kw: fnn.fit(
        NET, params, O.adam(0.05), MSE, x, y, epochs=epochs, checkpoint=path, callbacks=[TerminateOnNaN()],
        **{**RUN, **kw},
    )  # fmt: skip
    full = fit(None, 3)
    fit(tmp_path / "run.npz", 2)
    settings = checkpoint.load(tmp_path / "run.npz").extra["fit_settings"]
    assert {k: settings[k] for k in ("batch_size", "shuffle")} == {"batch_size": 3, "shuffle": True}
    assert settings["optimizer"].startswith("_inject_update(_Spec(factory=<function _adam>")  # no address
    before = (tmp_path / "run.npz").read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = fit(tmp_path / "run.npz", 3, key=None)
    assert _bits(res.params) == _bits(full.params) and res.history.history == full.history.history
    np.testing.assert_array_equal(checkpoint.load(tmp_path / "run.npz").key, RUN["key"])
    (tmp_path / "other.npz").write_bytes(before)
    said = (
        r"key \[0, 8\] \(the checkpoint's: \[0, 7\]\), batch_size 4 \(the checkpoint's: 3\), "
        r"shuffle False \(the checkpoint's: True\).*will not match an uninterrupted one"
    )
    with pytest.warns(UserWarning, match=rf"fit: resuming '.*other.npz' with other settings .*: {said}"):
        res = fit(tmp_path / "other.npz", 3, key=jax.random.PRNGKey(8), batch_size=4, shuffle=False)
    assert res.history.epochs == [0, 1, 2] and res.history.iterations_per_epoch == 2  # 8 samples in 4s
    with warnings.catch_warnings():  # finished: nothing runs, so nothing differs
        warnings.simplefilter("error")
        fit(tmp_path / "run.npz", 3, key=jax.random.PRNGKey(8), batch_size=4, shuffle=False)


def test_a_history_saved_by_hand_is_continued_with_the_uninterrupted_run_s_epochs(tmp_path, monkeypatch):
    """checkpoint.save(history=...) given the History itself (a dict of its logs too), its
    to_dict(), or its logs alone: fit(checkpoint=...) continues it to the uninterrupted run's
    history, bit for bit, and the file it writes next keeps the saved epochs."""
    x, y = _problem()
    params = NET.init(KEY, (4,), jnp.float64)
    fit = lambda epochs, **kw: fnn.fit(
        NET, params, O.adam(0.05), MSE, x, y, epochs=epochs, callbacks=[TerminateOnNaN()], **RUN, **kw
    )
    full, part = fit(4), fit(2)
    state = dict(params=part.params, opt_state=part.opt_state, epoch=2, key=RUN["key"])
    for i, saved in enumerate([part.history, part.history.to_dict(), dict(part.history)]):
        path = tmp_path / f"run{i}.npz"
        checkpoint.save(path, **state, history=saved)
        assert checkpoint.load(path).history == (saved if i == 2 else part.history.to_dict())
        res = fit(4, checkpoint=path)
        assert res.history.epochs == full.history.epochs == [0, 1, 2, 3]
        assert res.history.history == full.history.history
        assert _bits(res.params) == _bits(full.params)
        assert checkpoint.load(path).history["history"] == full.history.history
    # logs of the last epoch alone are that epoch's: epochs 1, 2, 3
    checkpoint.save(tmp_path / "last.npz", **state, history={"loss": part.history["loss"][1:]})
    assert fit(4, checkpoint=tmp_path / "last.npz").history.epochs == [1, 2, 3]
    # a history that cannot be the file's: save refuses it, writing nothing; in a file of an older
    # fnn (whose save let it through) fit refuses it naming the file, before any epoch runs
    too_long = {"loss": [*part.history["loss"], 1.0]}
    late = {**part.history.to_dict(), "epochs": [1, 2]}
    ragged = {"loss": part.history["loss"], "val_loss": part.history["loss"][1:]}
    said = [
        r"history holds 3 values per name, more than epoch=2, the epochs the checkpoint holds",
        r"history records epochs \[1, 2\], which are not increasing epochs before epoch=2",
        r"history lists disagree in length \('loss': 2, 'val_loss': 1\): a plain history holds one value per epoch",
    ]
    for i, (saved, why) in enumerate(zip([too_long, late, ragged], said, strict=True)):
        path = tmp_path / f"bad{i}.npz"
        with pytest.raises(ValueError, match=rf"^{why}.*\(epoch= is the number of epochs done"):
            checkpoint.save(path, **state, history=saved)
        assert not path.exists()
        with monkeypatch.context() as older:
            older.setattr("fnn.checkpoint._io.check_history_fits", lambda history, epoch: None)
            checkpoint.save(path, **state, history=saved)
        with pytest.raises(ValueError, match=rf"^checkpoint '{re.escape(str(path))}': its {why}"):
            fit(4, checkpoint=path)


def test_a_params_only_checkpoint_is_refused_saying_what_to_do(tmp_path, compiles):
    """fit(checkpoint=) on a file saved with params alone: it cannot resume (no optimizer
    state), and the message says so in the user's terms (no 'template', which fit made itself)
    and how to start from those params, a way that works."""
    x, y = _problem()
    params = NET.init(KEY, (4,), jnp.float64)
    path = tmp_path / "params.npz"
    checkpoint.save(path, params=params)
    with compiles() as c, pytest.raises(ValueError) as e:
        fnn.fit(NET, params, O.sgd(0.1), MSE, x, y, epochs=1, **RUN, checkpoint=path)
    assert c.count == 0
    assert str(e.value) == (
        f"checkpoint {str(path)!r} holds no optimizer state (it was saved with params only, as "
        "ModelCheckpoint(save_weights_only=True) writes), so training cannot resume from it. To start a "
        "new run from its params, load them with "
        "fnn.checkpoint.load(path, params=params).params (your params as the template) and pass them to fit "
        "as params, with another checkpoint path or none (this one would be resumed)"
    )
    loaded = checkpoint.load(path, params=params).params
    assert _bits(loaded) == _bits(params)


@pytest.mark.parametrize("lr", [0.05, fnn.schedules.cosine_decay(0.05, 20)], ids=["rate", "schedule"])
def test_a_checkpoint_written_before_schedules_values_were_state_resumes(tmp_path, lr):
    """An optimizer state saved without the injected state's schedule_values field (fnn before
    schedules' values became state) resumes bit-identically, the values taken from the
    optimizer as they were then; checkpoint.load against a concrete template reads it too."""
    from fnn.optimizers._inject import without_schedule_values

    x, y = _problem()
    params = NET.init(KEY, (4,), jnp.float64)
    fit = lambda epochs, **kw: fnn.fit(
        NET, params, O.adam(lr), MSE, x, y, epochs=epochs, callbacks=[TerminateOnNaN()], **RUN, **kw
    )
    full, part = fit(4), fit(2)
    path = tmp_path / "old.npz"
    old_state = without_schedule_values(part.opt_state)
    assert "schedule_values" not in str(jax.tree.structure(old_state))
    checkpoint.save(path, params=part.params, opt_state=old_state, epoch=2, key=RUN["key"], history=part.history)
    loaded = checkpoint.load(path, params=params, opt_state=O.adam(lr).init(params))
    assert _bits(loaded.opt_state) == _bits(part.opt_state)
    res = fit(4, checkpoint=path)
    assert res.history.history == full.history.history
    assert _bits((res.params, res.opt_state)) == _bits((full.params, full.opt_state))
    # any other difference of structure is still refused
    checkpoint.save(path, params=part.params, opt_state=old_state.inner_state, epoch=2)
    with pytest.raises(ValueError, match="structure differs from the template"):
        fit(4, checkpoint=path)


def test_fit_refuses_its_own_best_only_checkpoint_file_as_the_run_s_checkpoint(tmp_path):
    """fit writes its checkpoint after every epoch: on ModelCheckpoint's best file that would
    replace the best epoch with the last one."""
    x, y = _problem()
    best = tmp_path / "best.npz"
    params = NET.init(KEY, (4,))
    fnn.fit(NET, params, "sgd", MSE, x, y, epochs=2, callbacks=[ModelCheckpoint(best, save_best_only=True)], **RUN)
    before = best.read_bytes()
    for path in (best, str(tmp_path / "." / "best.npz")):
        with pytest.raises(ValueError, match="is ModelCheckpoint's save_best_only file: .* resume from a copy of it"):
            fnn.fit(
                NET, params, "sgd", MSE, x, y, epochs=3, checkpoint=path,
                callbacks=[ModelCheckpoint(best, save_best_only=True)], **RUN,
            )  # fmt: skip
    assert best.read_bytes() == before
    # a templated best-only file: any name its filepath can write is refused, others are not
    template = str(tmp_path / "best-{epoch:02d}-{val_loss:.3f}.npz")
    named = tmp_path / "best-02-0.125.npz"
    named.write_bytes(before)
    for path in (named, tmp_path / "best-10-nan.npz", tmp_path / "best-01--inf.npz"):
        with pytest.raises(ValueError, match=r"save_best_only file \(its filepath '.*' can write that name\)"):
            fnn.fit(
                NET, params, "sgd", MSE, x, y, epochs=3, checkpoint=path,
                callbacks=[ModelCheckpoint(template, save_best_only=True)], **RUN,
            )  # fmt: skip
    assert named.read_bytes() == before and not (tmp_path / "best-10-nan.npz").exists()
    # a name of number characters that the field's spec cannot give ({epoch:02d} never writes 5)
    own = tmp_path / "best-5.npz"
    short = ModelCheckpoint(str(tmp_path / "best-{epoch:02d}.npz"), save_best_only=True, monitor="loss")
    fnn.fit(NET, params, "sgd", MSE, x, y, epochs=1, checkpoint=own, callbacks=[short], **RUN)
    assert own.exists() and (tmp_path / "best-01.npz").exists()
    # every epoch's file (not best-only) or a copy resumes as before
    copy = tmp_path / "run.npz"
    copy.write_bytes(before)
    res = fnn.fit(NET, params, "sgd", MSE, x, y, epochs=3, checkpoint=copy, callbacks=[ModelCheckpoint(best)], **RUN)
    assert res.history.epochs == [0, 1, 2]


def test_a_save_asked_for_in_on_train_end_is_written_with_the_run_as_it_ends(tmp_path):
    """No epoch end follows on_train_end to write it: written when the hooks return, with the
    params EarlyStopping restored and the epochs done (also for a resumed run that trains none)."""
    x, y = _problem()
    params = NET.init(KEY, (4,), jnp.float64)

    class SaveFinal(Callback):
        def __init__(self, path):
            self.path = path

        def on_train_end(self, ctx):
            ctx.save(self.path, ctx.epoch)

    stop = EarlyStopping(monitor="loss", patience=0, restore_best_weights=True, min_delta=1e9)  # stops at once
    res = fnn.fit(
        NET, params, O.adam(0.05), MSE, x, y, epochs=3, callbacks=[stop, SaveFinal(tmp_path / "a.npz")], **RUN
    )
    saved = fnn.checkpoint.load(tmp_path / "a.npz", params=params)
    assert saved.epoch == 2 and res.history.epochs == [0, 1]
    chex.assert_trees_all_equal(saved.params, res.params)  # the restored (best) epoch's
    run = tmp_path / "run.npz"
    fnn.fit(NET, params, O.adam(0.05), MSE, x, y, epochs=2, checkpoint=run, **RUN)
    again = fnn.fit(
        NET, params, O.adam(0.05), MSE, x, y, epochs=2, checkpoint=run, callbacks=[SaveFinal(tmp_path / "b.npz")], **RUN
    )
    saved = fnn.checkpoint.load(tmp_path / "b.npz", params=params)
    assert saved.epoch == 2
    chex.assert_trees_all_equal(saved.params, again.params)
    # an early-stopped run resumed with more epochs trains none: its 2 epochs, not the 5 asked for
    stopped = tmp_path / "stopped.npz"
    for epochs in (3, 5):
        res = fnn.fit(
            NET, params, O.adam(0.05), MSE, x, y, epochs=epochs, checkpoint=stopped,
            callbacks=[EarlyStopping(monitor="loss", patience=0, min_delta=1e9), SaveFinal(tmp_path / "c.npz")], **RUN,
        )  # fmt: skip
        assert res.history.epochs == [0, 1] and fnn.checkpoint.load(tmp_path / "c.npz", params=params).epoch == 2


def test_a_callback_state_that_is_no_dict_is_refused_and_a_falsy_one_comes_back_as_saved(tmp_path):
    x, y = _problem()
    params = NET.init(KEY, (4,), jnp.float64)

    class Counter(Callback):
        def __init__(self, state):
            self.state, self.got = state, "nothing"

        def get_state(self):
            return self.state

        def set_state(self, state):
            self.got = state

    with pytest.raises(TypeError, match=r"callbacks\[0\] \(Counter\).get_state\(\) must return a dict, got int 0"):
        fnn.fit(NET, params, "sgd", MSE, x, y, epochs=1, checkpoint=tmp_path / "a.npz", callbacks=[Counter(0)], **RUN)
    fnn.fit(
        NET, params, "sgd", MSE, x, y, epochs=1, checkpoint=tmp_path / "b.npz", callbacks=[Counter({"n": 0})], **RUN
    )
    resumed = Counter({"n": 5})
    fnn.fit(NET, params, "sgd", MSE, x, y, epochs=1, checkpoint=tmp_path / "b.npz", callbacks=[resumed], **RUN)
    assert resumed.got == {"n": 0}


def test_an_array_a_callback_logs_is_checkpointed_and_resumed_as_keras_s_history_keeps_it(tmp_path):
    """A callback that logs an array of several values (Keras's History keeps it) no longer ends
    the run at the first checkpoint (a TypeError after the epoch had trained, nothing written):
    the array is stored as an entry, and the resumed run's History holds it again, a NumPy
    array as the later epochs' are, dtype and all; a list comes back a list."""
    x, y = _problem()
    params = NET.init(KEY, (4,), jnp.float64)

    class Log(Callback):
        def __init__(self, value):
            self.value = value

        def on_epoch_end(self, epoch, logs, ctx):
            logs["norms"] = self.value * (epoch + 1)

    norms = np.array([1.5, -2.0], np.float32)
    path = tmp_path / "a.npz"
    first = fnn.fit(NET, params, "sgd", MSE, x, y, epochs=1, checkpoint=path, callbacks=[Log(norms)], **RUN)
    saved = fnn.checkpoint.load(path).history["history"]["norms"]
    assert len(saved) == 1 and saved[0].dtype == np.float32 and saved[0].tolist() == [1.5, -2.0]
    resumed = fnn.fit(NET, params, "sgd", MSE, x, y, epochs=2, checkpoint=path, callbacks=[Log(norms)], **RUN)
    got = resumed.history.history["norms"]
    assert [type(v) for v in got] == [np.ndarray, np.ndarray]
    assert [v.tolist() for v in got] == [[1.5, -2.0], [3.0, -4.0]]
    assert first.history.history["loss"] == resumed.history.history["loss"][:1]
    path = tmp_path / "b.npz"
    fnn.fit(NET, params, "sgd", MSE, x, y, epochs=1, checkpoint=path, callbacks=[Log([0.5, "a"])], **RUN)
    resumed = fnn.fit(NET, params, "sgd", MSE, x, y, epochs=2, checkpoint=path, callbacks=[Log([0.5, "a"])], **RUN)
    assert resumed.history.history["norms"] == [[0.5, "a"], [0.5, "a", 0.5, "a"]]


def test_what_a_callback_logs_is_recorded_alike_in_a_run_and_in_its_resumed_twin(tmp_path):
    """Typed keys (their checkpoint could not be loaded), a live param (deleted under the History
    when the next epoch donated it), a dict and a tuple (refused at the first checkpoint, after
    the epoch had trained), a large array with a CSVLogger (its 240,000-character field stopped the
    resume): the resumed run's History holds what the uninterrupted one does, types included."""
    x, y = _problem()
    params = NET.init(KEY, (4,), jnp.float64)

    class Log(Callback):
        def on_epoch_end(self, epoch, logs, ctx):
            logs.update(
                keys=jax.random.split(jax.random.key(epoch), 2), bias=ctx.params[0]["b"], per_class={"a": 0.5 * epoch},
                pair=(epoch, 2.5), big=np.linspace(0, 1, 20_000, dtype=np.float32) * epoch,
            )  # fmt: skip

    def run(folder, epochs):
        cbs = [Log(), fnn.callbacks.CSVLogger(str(folder / "log.csv"))]
        return fnn.fit(NET, params, "sgd", MSE, x, y, epochs=epochs, checkpoint=folder / "ck.npz", callbacks=cbs, **RUN)

    (tmp_path / "whole").mkdir(), (tmp_path / "parts").mkdir()
    whole = run(tmp_path / "whole", 2).history
    run(tmp_path / "parts", 1)
    resumed = run(tmp_path / "parts", 2).history
    for name in ("bias", "per_class", "pair", "big"):
        assert [type(v) for v in resumed[name]] == [type(v) for v in whole[name]], name
        for a, b in zip(resumed[name], whole[name], strict=True):
            np.testing.assert_equal(a, b)
    assert [jax.random.key_data(k).tolist() for k in resumed["keys"]] == [
        jax.random.key_data(k).tolist() for k in whole["keys"]
    ]
    assert resumed["pair"] == [[0, 2.5], [1, 2.5]] and isinstance(whole["bias"][0], np.ndarray)
    assert (tmp_path / "parts" / "log.csv").read_text() == (tmp_path / "whole" / "log.csv").read_text()


def test_callbacks_without_saved_state_are_named_in_a_warning(tmp_path):
    x, y = _problem()
    params = NET.init(KEY, (4,), jnp.float64)
    path = tmp_path / "run.npz"
    fnn.fit(NET, params, O.adam(0.05), MSE, x, y, epochs=1, checkpoint=path, callbacks=[TerminateOnNaN()], **RUN)
    with pytest.warns(RuntimeWarning, match=r"callbacks\[1\] \(EarlyStopping\)"):
        fnn.fit(
            NET, params, O.adam(0.05), MSE, x, y, epochs=2, checkpoint=path,
            callbacks=[TerminateOnNaN(), EarlyStopping(monitor="loss", patience=1)], **RUN,
        )  # fmt: skip


def test_a_saved_callback_state_no_callback_takes_is_named_in_a_warning(tmp_path):
    """An early-stopped run resumed without its EarlyStopping would return the last weights,
    not the best ones it restored: the dropped state is named (class and what it held)."""
    x, y = _problem()
    params = NET.init(KEY, (4,), jnp.float64)
    path = tmp_path / "run.npz"
    es = lambda: EarlyStopping(monitor="loss", min_delta=10, patience=1, restore_best_weights=True)
    first = fnn.fit(
        NET, params, O.adam(0.05), MSE, x, y, epochs=5, checkpoint=path, callbacks=[TerminateOnNaN(), es()], **RUN
    )
    assert first.history.stop_reason == "early_stopping"
    with pytest.warns(
        RuntimeWarning, match=r"holds the state of callbacks\[1\] \(EarlyStopping: wait, .*best_weights\)"
    ) as w:
        again = fnn.fit(
            NET, params, O.adam(0.05), MSE, x, y, epochs=5, checkpoint=path, callbacks=[TerminateOnNaN()], **RUN
        )
    # the category of the warning of a callback added on resume (no saved state): one kind of mismatch
    assert [type(m.message) for m in w] == [RuntimeWarning] and "it is dropped" in str(w[0].message)
    assert _bits(again.params) != _bits(first.params)  # the checkpoint's last weights: what the warning is about
    # with the callbacks it was written with: the best weights, and nothing to warn of
    kept = fnn.fit(
        NET, params, O.adam(0.05), MSE, x, y, epochs=5, checkpoint=path, callbacks=[TerminateOnNaN(), es()], **RUN
    )
    assert _bits(kept.params) == _bits(first.params)


def test_a_dropped_logger_s_or_model_checkpoint_s_state_is_not_warned_of(tmp_path):
    """A CSVLogger's or ModelCheckpoint's state decides only what it writes: resumed without
    them, training and its result are the uninterrupted run's, so nothing is said."""
    x, y = _problem()
    params = NET.init(KEY, (4,), jnp.float64)
    path = tmp_path / "run.npz"
    fit = lambda epochs, *cbs, **kw: fnn.fit(
        NET, params, O.adam(0.05), MSE, x, y, epochs=epochs, callbacks=[TerminateOnNaN(), *cbs], **kw, **RUN
    )  # fmt: skip
    full = fit(2)
    fit(
        1, CSVLogger(tmp_path / "log.csv"), ModelCheckpoint(tmp_path / "best.npz", save_best_only=True), checkpoint=path
    )
    assert [entry["class"] for entry in checkpoint.load(path).callbacks] == [
        "TerminateOnNaN",
        "CSVLogger",
        "ModelCheckpoint",
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = fit(2, checkpoint=path)
    assert _bits(res.params) == _bits(full.params)


def test_another_key_is_warned_of_only_where_the_run_draws_from_it(tmp_path):
    """Without shuffling and with no layer that draws randomness (no Dropout), any key gives the
    same run: resumed with another, nothing is said and it is bit-identical; with shuffling the
    batches differ, which is said (the Dropout network warns without shuffling too: see above)."""
    x, y = _problem()
    net = fnn.serial(fnn.Dense(2))
    params = net.init(KEY, (4,), jnp.float64)
    run = dict(RUN, validation_split=0.0)
    fit = lambda path, epochs, **kw: fnn.fit(
        net, params, "sgd", MSE, x, y, epochs=epochs, checkpoint=path, **{**run, **kw}
    )
    full = fit(None, 2, shuffle=False)
    fit(tmp_path / "still.npz", 1, shuffle=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = fit(tmp_path / "still.npz", 2, shuffle=False, key=jax.random.PRNGKey(8))
    assert _bits(res.params) == _bits(full.params)
    fit(tmp_path / "shuffled.npz", 1)
    with pytest.warns(UserWarning, match=r"with other settings .*: key \[0, 8\] \(the checkpoint's: \[0, 7\]\)"):
        fit(tmp_path / "shuffled.npz", 2, key=jax.random.PRNGKey(8))


def test_a_checkpoint_s_hyperparameters_that_differ_from_opt_s_are_named_in_a_warning(tmp_path):
    """The checkpoint's values win (they are the run's), as a given opt_state's do, and are
    named the same way; a learning rate a ReduceLROnPlateau of the run set is no surprise."""
    x, y = _problem()
    params = NET.init(KEY, (4,), jnp.float64)
    path = tmp_path / "run.npz"
    fnn.fit(NET, params, O.adam(0.05), MSE, x, y, epochs=1, checkpoint=path, callbacks=[TerminateOnNaN()], **RUN)
    said = r"fit: checkpoint '.*run\.npz' holds learning_rate=0\.05 \(opt says 0\.01\); training continues with the "
    said += "checkpoint's values"
    with pytest.warns(RuntimeWarning, match=said):
        res = fnn.fit(
            NET, params, O.adam(0.01), MSE, x, y, epochs=2, checkpoint=path, callbacks=[TerminateOnNaN()], **RUN
        )
    assert float(O.get_learning_rate(res.opt_state)) == 0.05
    # a rate the run's ReduceLROnPlateau halved: resumed with the same callbacks, no warning
    path = tmp_path / "plateau.npz"
    plateau = lambda: [TerminateOnNaN(), ReduceLROnPlateau(monitor="loss", min_delta=10, patience=1, factor=0.5)]
    fnn.fit(NET, params, O.adam(0.05), MSE, x, y, epochs=3, checkpoint=path, callbacks=plateau(), **RUN)
    res = fnn.fit(NET, params, O.adam(0.05), MSE, x, y, epochs=4, checkpoint=path, callbacks=plateau(), **RUN)
    assert float(O.get_learning_rate(res.opt_state)) < 0.05
    # saved with x64 off (float32 values), resumed with it on (float64): the same values, no
    # warning (it named all four of adam's, "learning_rate=0.01 (opt says 0.01)")
    path = tmp_path / "x64.npz"
    with jax.enable_x64(False):
        small = jax.tree.map(lambda a: np.asarray(a, np.float32), params)
        fnn.fit(NET, small, O.adam(0.01), MSE, x, y, epochs=1, checkpoint=path, **RUN)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        fnn.fit(NET, small, O.adam(0.01), MSE, x, y, epochs=2, checkpoint=path, **RUN)
    # a schedule's values likewise (rounded once in float32, they are the same values)
    path = tmp_path / "x64_schedule.npz"
    cosine = lambda: O.adam(fnn.schedules.cosine_decay(0.01, 100))
    with jax.enable_x64(False):
        fnn.fit(NET, small, cosine(), MSE, x, y, epochs=1, checkpoint=path, **RUN)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        fnn.fit(NET, small, cosine(), MSE, x, y, epochs=2, checkpoint=path, **RUN)
    # what is not a value held in the state is opt's: a schedule of other step counts took the
    # checkpoint's values (the rate rose again mid-run), and nothing said so
    path = tmp_path / "steps.npz"
    decay = lambda steps: O.adam(fnn.schedules.exponential_decay(0.05, steps, 0.7))
    fnn.fit(NET, params, decay(3), MSE, x, y, epochs=1, checkpoint=path, **RUN)
    said = r"optimizer built otherwise .*'transition_steps', 6\).* where the checkpoint's had .*'transition_steps', 3"
    with pytest.warns(UserWarning, match=said):
        fnn.fit(NET, params, decay(6), MSE, x, y, epochs=2, checkpoint=path, **RUN)
    with warnings.catch_warnings():  # the same program again: nothing to say
        warnings.simplefilter("error")
        fnn.fit(NET, params, decay(6), MSE, x, y, epochs=3, checkpoint=path, **RUN)
    # a dict's order is no part of the program (JAX flattens dicts by sorted keys): a mask written
    # in another order (session 31's copies sorted it, this one's keep the caller's) says nothing
    path = tmp_path / "mask.npz"
    mask = lambda *order: O.masked(O.adam(0.01), [{k: k == "w" for k in order}, {}, {"w": True, "b": True}])
    fnn.fit(NET, params, mask("w", "b"), MSE, x, y, epochs=1, checkpoint=path, **RUN)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fnn.fit(NET, params, mask("b", "w"), MSE, x, y, epochs=2, checkpoint=path, **RUN)
    from fnn.train._resume import _sorted_dicts

    nested = "f([{'w': True, 'b': {'z': 1, 'a': (2, 3)}}, 'x, {y}'], {})"
    assert _sorted_dicts(nested) == "f([{'b': {'a': (2, 3), 'z': 1}, 'w': True}, 'x, {y}'], {})"


class _UserCallback(Callback):
    """A user's stateful callback: counts epochs across interruptions."""

    def __init__(self):
        self.seen = 0

    def on_epoch_end(self, epoch, logs, ctx):
        self.seen += 1
        logs["seen"] = float(self.seen)

    def get_state(self):
        return {"seen": self.seen, "weights": [jnp.arange(3.0)]}

    def set_state(self, state):
        assert np.array_equal(state["weights"][0], np.arange(3.0))
        self.seen = state["seen"]


def test_a_user_callback_state_round_trips(tmp_path):
    x, y = _problem()
    params = NET.init(KEY, (4,), jnp.float64)
    path = tmp_path / "run.npz"
    fnn.fit(NET, params, O.adam(0.05), MSE, x, y, epochs=2, checkpoint=path,
            callbacks=[TerminateOnNaN(), _UserCallback()], **RUN)  # fmt: skip
    res = fnn.fit(NET, params, O.adam(0.05), MSE, x, y, epochs=3, checkpoint=path,
                  callbacks=[TerminateOnNaN(), _UserCallback()], **RUN)  # fmt: skip
    assert res.history["seen"] == [1.0, 2.0, 3.0]


# ---------------------------------------------------------------- the NaN guard (item 1)


def _dead_relu_problem():
    # Every hidden unit is dead on every sample (negative bias): the loss is finite, the hidden
    # gradients are exactly zero, and Adam with eps=0 divides 0 by 0.
    x = np.abs(np.random.default_rng(1).normal(size=(12, 4)))
    y = np.random.default_rng(2).normal(size=(12, 2))
    params = NET.init(KEY, (4,), jnp.float64)
    params[0] = {"w": jnp.abs(params[0]["w"]) * 0 - 1.0, "b": jnp.full((6,), -1.0)}
    return x, y, params


@pytest.mark.parametrize(
    "opt",
    [
        pytest.param(O.adam(0.01, eps=0.0), id="adam-eps0-dead-relu"),
        pytest.param(O.rmsprop(0.01, eps=0.0), id="rmsprop-eps0-dead-relu"),
    ],
)
def test_terminate_on_nan_never_keeps_nan_params(tmp_path, opt):
    x, y, params = _dead_relu_problem()
    path = tmp_path / "run.npz"
    kw = dict(batch_size=4, key=jax.random.PRNGKey(3), verbose=0, unroll=1, shuffle=False)
    res = fnn.fit(NET, params, opt, MSE, x, y, epochs=3, checkpoint=path, callbacks=[TerminateOnNaN()], **kw)
    assert res.history.stop_reason == "nan"
    assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(res.params))
    saved = checkpoint.load(path, params=params)
    assert _bits(saved.params) == _bits(res.params)


def test_terminate_on_nan_guards_an_overflowing_step_in_float32(capsys):
    x, y = _problem(12)
    params = NET.init(KEY, (4,), jnp.float32)
    kw = dict(batch_size=4, key=jax.random.PRNGKey(3), verbose=0, unroll=1, shuffle=False)
    res = fnn.fit(NET, params, O.sgd(3e38), MSE, x.astype(np.float32), y.astype(np.float32), epochs=2,
                  callbacks=[TerminateOnNaN()], **kw)  # fmt: skip
    assert res.history.stop_reason == "nan" and res.history.epochs == [0]
    # the first step already overflows: the params are the initial ones, untouched
    assert _bits(res.params) == _bits(params)
    # Keras's TerminateOnNaN says so whatever verbose ("Batch 0: Invalid loss, terminating training")
    assert capsys.readouterr().out == "Epoch 1: Invalid loss, terminating training\n"


def test_a_real_ctrl_c_at_an_epochs_end_lands_after_its_line_and_checkpoint(tmp_path, capsys):
    """A SIGINT while epoch 3's end is handled (here raised by a callback, where the CLI's own
    keeps the state it saves on Ctrl-C) is delivered once that end is done: the epoch is in
    the history, its line printed and its checkpoint written, then KeyboardInterrupt. Without
    that, the interrupt cut the end in two and left an epoch kept that was never shown."""
    import signal

    x, y = _problem()
    params = NET.init(KEY, (4,), jnp.float64)
    seen = []

    def ctrl_c_at_epoch_3(epoch, logs):
        seen.append(epoch)
        if epoch == 2:
            signal.raise_signal(signal.SIGINT)

    run = {**RUN, "verbose": 2}
    with pytest.raises(KeyboardInterrupt):
        fnn.fit(NET, params, O.adam(0.05), MSE, x, y, epochs=EPOCHS, checkpoint=tmp_path / "run.npz",
                callbacks=[LambdaCallback(ctrl_c_at_epoch_3)], **run)  # fmt: skip
    shown = [int(n) for n in re.findall(r"Epoch (\d+)/9", capsys.readouterr().out)]
    saved = checkpoint.load(tmp_path / "run.npz")
    assert seen == [0, 1, 2] and shown == [1, 2, 3]
    assert saved.epoch == 3 and len(saved.history["epochs"]) == 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_while_a_checkpoint_is_written_leaves_no_saved_epoch_unreported(tmp_path, monkeypatch, capsys):
    """fit reports an epoch (verbose=2: its line) before it writes the epoch's checkpoint, so a
    Ctrl-C during the write leaves the previous checkpoint, and every epoch it holds was shown."""
    x, y = _problem()
    params = NET.init(KEY, (4,), jnp.float64)
    write = fnn.callbacks.write_checkpoint

    def interrupted_at_epoch_3(path, ctx, *args, **kwargs):
        if ctx.epoch == 3:
            raise KeyboardInterrupt("interrupted")
        write(path, ctx, *args, **kwargs)

    monkeypatch.setattr(fnn.callbacks, "write_checkpoint", interrupted_at_epoch_3)
    run = {**RUN, "verbose": 2}
    with pytest.raises(KeyboardInterrupt):
        fnn.fit(NET, params, O.adam(0.05), MSE, x, y, epochs=EPOCHS, checkpoint=tmp_path / "run.npz", **run)
    shown = [int(n) for n in re.findall(r"Epoch (\d+)/9", capsys.readouterr().out)]
    saved = checkpoint.load(tmp_path / "run.npz")
    assert saved.epoch == 3 and len(saved.history["epochs"]) == 3  # the checkpoint of epoch index 2
    assert shown == [1, 2, 3, 4]  # and the interrupted epoch's line as well
