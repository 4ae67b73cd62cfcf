"""fnn/_interrupts.py: Ctrl-C (a real SIGINT) and SIGTERM held over a section and delivered at its
end, and recorded while fit, fit_many and sweep run, so that one Python drops still ends them.

The fits share one tiny float64 network and data set (one compiled epoch)."""

import signal
import sys
import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn._interrupts import Terminated, caught, ctrl_c_recorded, interrupts_held, raise_dropped
from fnn.callbacks import Callback


class _RaisesWhenCollected:
    def __init__(self, signum):
        self.signum = signum

    def __del__(self):
        signal.raise_signal(self.signum)


def _dropped(signum):
    """What Python does to an interrupt raised where it cannot propagate (JAX's gc callback,
    a ``__del__``): the handler runs, and its exception goes to ``sys.unraisablehook`` and is
    dropped. This object is collected at once, its ``__del__`` raising into nowhere."""
    _RaisesWhenCollected(signum)


def test_a_ctrl_c_inside_is_delivered_when_the_block_ends():
    done = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts_held():
            signal.raise_signal(signal.SIGINT)
            done.append("after the signal")  # the block runs on to its end
        done.append("after the block")
    assert done == ["after the signal"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_ctrl_c_goes_through_at_once():
    done = []
    with pytest.raises(KeyboardInterrupt), interrupts_held():
        signal.raise_signal(signal.SIGINT)
        done.append(1)
        signal.raise_signal(signal.SIGINT)
        done.append(2)
    assert done == [1]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_nothing_held_nothing_delivered_and_an_error_drops_the_held_ctrl_c():
    with interrupts_held():
        pass
    with pytest.raises(ValueError, match="the block's own"), interrupts_held():
        signal.raise_signal(signal.SIGINT)
        raise ValueError("the block's own")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_the_handler_in_place_is_the_one_called(monkeypatch):
    calls = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: calls.append(signum))
    try:
        with interrupts_held():
            signal.raise_signal(signal.SIGINT)
            assert calls == []
        assert calls == [signal.SIGINT]
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # not a Python handler: left alone
        with interrupts_held():
            assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
            signal.raise_signal(signal.SIGINT)  # ignored, as it would be outside
    finally:
        signal.signal(signal.SIGINT, previous)


def test_outside_the_main_thread_it_holds_nothing():
    seen, errors = [], []

    def worker():
        try:
            with interrupts_held():
                seen.append(signal.getsignal(signal.SIGINT))
        except BaseException as err:  # reported in the test's thread
            errors.append(err)

    t = threading.Thread(target=worker)
    t.start()
    t.join(timeout=30)
    assert errors == [] and seen == [signal.default_int_handler]


def test_a_recorded_ctrl_c_that_was_dropped_is_raised_at_the_next_section_end():
    """What a gc callback does to a KeyboardInterrupt raised inside it (drops it) does not lose
    the Ctrl-C under ctrl_c_recorded: the next held section ends by raising it."""
    done = []
    with ctrl_c_recorded(sigterm=True):
        _dropped(signal.SIGINT)  # as Python drops one raised in a gc callback
        with pytest.raises(KeyboardInterrupt), interrupts_held():
            done.append("the section runs")
        assert done == ["the section runs"]
        with pytest.raises(KeyboardInterrupt), interrupts_held():  # until the command has it
            pass
        caught()
        with interrupts_held():
            done.append("nothing left")
    assert done == ["the section runs", "nothing left"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with interrupts_held():  # nothing recorded outside
        pass


def test_sigterm_under_ctrl_c_recorded_is_a_ctrl_c_that_names_itself():
    """SIGTERM (kill, timeout) within the CLI's commands raises Terminated, a KeyboardInterrupt
    (every `except KeyboardInterrupt` stops on it), held over a section and recorded as a
    Ctrl-C is; the OS default is back afterwards."""
    outside = signal.signal(signal.SIGTERM, signal.SIG_DFL)  # as in a fresh process
    try:
        done = []
        with ctrl_c_recorded(sigterm=True):
            assert callable(signal.getsignal(signal.SIGTERM))  # (the OS default would end pytest)
            with pytest.raises(Terminated):
                signal.raise_signal(signal.SIGTERM)
            caught()
            with pytest.raises(Terminated), interrupts_held():
                signal.raise_signal(signal.SIGTERM)
                done.append("held to the section's end")
            caught()
            _dropped(signal.SIGTERM)  # as Python drops one raised in a gc callback
            with pytest.raises(Terminated), interrupts_held():
                pass
            caught()
            with pytest.raises(KeyboardInterrupt) as ctrl_c, interrupts_held():  # Ctrl-C stays Ctrl-C
                signal.raise_signal(signal.SIGINT)
            assert not isinstance(ctrl_c.value, Terminated)
            caught()
        assert done == ["held to the section's end"] and issubclass(Terminated, KeyboardInterrupt)
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGTERM, outside)


def test_with_once_the_first_signal_ends_the_run_and_later_ones_leave_its_keeping_alone():
    """The CLI's recording (once=True): a user pressing Ctrl-C three times, or a burst of SIGTERMs,
    cut the final checkpoint or the partial results short with the second signal, losing every
    finished epoch. The first raises; later ones, and any while a section holds one, are
    ignored; a first one Python dropped does not count; without once, each raises as before."""
    outside = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        kept = []
        with ctrl_c_recorded(sigterm=True, once=True):
            with pytest.raises(KeyboardInterrupt):
                signal.raise_signal(signal.SIGINT)
            caught()
            for s in (signal.SIGINT, signal.SIGTERM, signal.SIGINT):  # the run keeps its work
                signal.raise_signal(s)
            kept.append("saved")
        assert kept == ["saved"] and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        with ctrl_c_recorded(sigterm=True, once=True):  # a section holding the first: the rest ignored
            with pytest.raises(KeyboardInterrupt), interrupts_held():
                for _ in range(3):
                    signal.raise_signal(signal.SIGINT)
                kept.append("section ran to its end")
            caught()
        with ctrl_c_recorded(sigterm=True, once=True):  # a dropped first one: the next still raises
            _dropped(signal.SIGINT)
            with pytest.raises(KeyboardInterrupt):
                signal.raise_signal(signal.SIGINT)
            caught()
        with ctrl_c_recorded(sigterm=True), pytest.raises(KeyboardInterrupt):  # the library's: each raises
            try:
                signal.raise_signal(signal.SIGINT)
            except KeyboardInterrupt:
                caught()
            signal.raise_signal(signal.SIGINT)
        assert kept == ["saved", "section ran to its end"]
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, outside)


def test_a_block_that_ends_with_a_dropped_ctrl_c_raises_it_and_one_that_propagated_is_forgotten():
    """The library's recording (SIGINT only): a Ctrl-C dropped after the last section's end is
    raised when the block ends rather than lost; one that propagated out of the block leaves
    nothing behind; SIGTERM keeps its handler, and a nested block installs nothing."""
    sigterm = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), ctrl_c_recorded():
        record = signal.getsignal(signal.SIGINT)
        assert record is not signal.default_int_handler and signal.getsignal(signal.SIGTERM) == sigterm
        with ctrl_c_recorded():  # nested: the enclosing block's handler stays
            assert signal.getsignal(signal.SIGINT) is record
        _dropped(signal.SIGINT)  # as Python drops one raised in a gc callback
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with pytest.raises(KeyboardInterrupt), ctrl_c_recorded():
        signal.raise_signal(signal.SIGINT)  # propagates: the record goes with it
    with ctrl_c_recorded():
        raise_dropped()  # nothing recorded
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_handler_of_the_caller_s_is_left_alone_and_a_dropped_ctrl_c_is_raised_in_the_main_thread_only():
    calls = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: calls.append(signum))
    try:
        with ctrl_c_recorded():
            signal.raise_signal(signal.SIGINT)
        assert calls == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, previous)
    errors = []
    with pytest.raises(KeyboardInterrupt), ctrl_c_recorded():
        _dropped(signal.SIGINT)  # as Python drops one raised in a gc callback
        t = threading.Thread(target=lambda: errors.append(_raised(raise_dropped)))
        t.start()
        t.join(timeout=30)
        assert errors == [None]  # another thread's run is not the one interrupted
        raise_dropped()


def _raised(fn):
    try:
        fn()
    except BaseException as err:  # reported in the test's thread
        return err
    return None


# ---- fit, fit_many and sweep record SIGINT while they run ------------------------------------

NET = fnn.mlp([2])
X = np.linspace(-1, 1, 24).reshape(8, 3)
Y = X[:, :2] * 0.5
RUN = dict(batch_size=4, verbose=0, unroll=1)


def _params():
    return NET.init(jax.random.PRNGKey(0), (3,), jnp.float64)


def _drop_a_ctrl_c():
    """What Python does to a Ctrl-C that lands in a gc callback (JAX's): the handler runs (and
    records it) and its KeyboardInterrupt is reported as "Exception ignored" and dropped."""
    _dropped(signal.SIGINT)  # as Python drops one raised in a gc callback


class Seen(Callback):
    """Notes the SIGINT handler each epoch begins under and the epochs that ended; drops a
    Ctrl-C at the beginning of epoch ``drop_at`` (or at the training's end: ``"end"``)."""

    def __init__(self, drop_at=None, inner=None):
        self.drop_at, self.inner, self.handlers, self.ended = drop_at, inner, [], []

    def on_epoch_begin(self, epoch, ctx):
        self.handlers.append((signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)))
        if self.inner is not None:
            fnn.fit(NET, _params(), "sgd", "mse", X, Y, epochs=1, callbacks=[self.inner], **RUN)
        if epoch == self.drop_at:
            _drop_a_ctrl_c()

    def on_epoch_end(self, epoch, logs, ctx):
        self.ended.append(epoch)

    def on_train_end(self, ctx):
        if self.drop_at == "end":
            _drop_a_ctrl_c()


def _fit(cb, epochs=3):
    return fnn.fit(NET, _params(), "sgd", "mse", X, Y, epochs=epochs, callbacks=[cb], **RUN)


def test_a_ctrl_c_fit_s_caller_lost_is_raised_at_the_next_epoch_end_or_when_fit_returns():
    sigterm = signal.getsignal(signal.SIGTERM)
    cb = Seen(drop_at=1)
    with pytest.raises(KeyboardInterrupt):
        _fit(cb)
    assert cb.ended == [0, 1]  # epoch 1's end section raised it; epoch 2 never began
    record, term = cb.handlers[0]
    assert record is not signal.default_int_handler and term == sigterm  # SIGTERM is the caller's
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    cb = Seen(drop_at="end")  # after the last epoch's end: no section is left to raise it
    with pytest.raises(KeyboardInterrupt):
        _fit(cb)
    assert cb.ended == [0, 1, 2] and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert len(_fit(Seen()).history.epochs) == 3  # nothing recorded is left behind


@pytest.mark.parametrize("run", ["fit", "fit_many", "sweep"])
def test_a_ctrl_c_lost_before_the_first_epoch_ends_a_run_without_callbacks_before_it(run, capsys):
    """No held end section here (the epochs are queued): each epoch's start raises it."""

    def mse_losing_a_ctrl_c(y, p):  # traced by the checks, before anything compiles
        _drop_a_ctrl_c()
        return jnp.mean((y - p) ** 2)

    kw = {**RUN, "grad": "autodiff", "epochs": 2, "verbose": 2}
    with pytest.raises(KeyboardInterrupt):
        if run == "fit":
            fnn.fit(NET, _params(), "sgd", mse_losing_a_ctrl_c, X, Y, **kw)
        elif run == "fit_many":
            stacked = jax.tree.map(lambda a: a[None], _params())
            fnn.fit_many(NET, stacked, "sgd", mse_losing_a_ctrl_c, X, Y, **kw)
        else:
            fnn.sweep(NET, "sgd", mse_losing_a_ctrl_c, X, Y, seeds=[0], dtype=jnp.float64, **kw)
    assert "Epoch" not in capsys.readouterr().out
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_fit_leaves_a_handler_in_place_alone_nested_in_a_fit_the_cli_or_a_user_s_and_in_a_thread():
    inner = Seen(drop_at=0)
    outer = Seen(inner=inner)
    with pytest.raises(KeyboardInterrupt):  # the inner fit's lost Ctrl-C ends both
        _fit(outer)
    assert inner.handlers[0] == outer.handlers[0] and inner.ended == [0] and outer.ended == []
    with ctrl_c_recorded(sigterm=True):  # the CLI's
        cli = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
        _fit(cb := Seen(), epochs=1)
    assert cb.handlers == [cli]
    calls = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: calls.append(signum))
    try:
        _fit(cb := Seen(), epochs=1)
        assert cb.handlers[0][0] is signal.getsignal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, previous)
    done, cb = [], Seen()
    t = threading.Thread(target=lambda: done.append(_fit(cb, epochs=1)))
    t.start()
    t.join(timeout=60)
    assert len(done) == 1 and cb.handlers[0][0] is signal.default_int_handler
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_ctrl_c_the_caller_catches_is_gone_and_python_s_hook_gets_what_is_not_ours():
    """A callback that catches KeyboardInterrupt itself and stops the run gracefully gets what
    it asked for (fit returns), as with Python's own handler; another unraisable exception still
    reaches the hook that was in place, which is back afterwards."""

    class Graceful(Callback):
        def on_epoch_begin(self, epoch, ctx):
            if epoch == 1:
                try:
                    signal.raise_signal(signal.SIGINT)
                except KeyboardInterrupt:
                    ctx.stop("ctrl-c")

    result = fnn.fit(NET, _params(), "sgd", "mse", X, Y, epochs=4, callbacks=[Graceful()], **RUN)
    assert result.history.epochs == [0, 1] and result.history.stop_reason == "ctrl-c"
    seen, before = [], sys.unraisablehook
    sys.unraisablehook = seen.append
    try:
        with ctrl_c_recorded():

            class Fails:
                def __del__(self):
                    raise ValueError("not a Ctrl-C")

            Fails()
        assert [type(u.exc_value) for u in seen] == [ValueError]
        assert sys.unraisablehook == seen.append
    finally:
        sys.unraisablehook = before


class _InstallsHandlers(Callback):
    """Sets SIGINT's (and SIGTERM's) handler for the rest of the program in ``hook``, as a user's
    callback might (to save on Ctrl-C)."""

    def __init__(self, hook, sigterm=False):
        self.hook, self.sigterm, self.calls = hook, sigterm, []

    def _install(self):
        mine = lambda signum, frame: self.calls.append(signum)
        signal.signal(signal.SIGINT, mine)
        if self.sigterm:
            signal.signal(signal.SIGTERM, mine)
        self.mine = mine

    def on_train_begin(self, ctx):
        if self.hook == "on_train_begin":
            self._install()

    def on_epoch_end(self, epoch, logs, ctx):  # within fit's held section
        if self.hook == "on_epoch_end" and epoch == 0:
            self._install()


@pytest.mark.parametrize("hook", ["on_train_begin", "on_epoch_end"])
def test_a_handler_a_callback_sets_during_fit_is_still_in_place_after_it(hook):
    """fit takes back only its own handlers: one the user's callback set while it ran stays
    (SIGTERM too, under the CLI's recording), and a Ctrl-C afterwards goes to it."""
    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        _fit(cb := _InstallsHandlers(hook), epochs=2)
        assert signal.getsignal(signal.SIGINT) is cb.mine and signal.getsignal(signal.SIGTERM) == sigterm
        signal.raise_signal(signal.SIGINT)
        assert cb.calls == [signal.SIGINT]
        signal.signal(signal.SIGINT, signal.default_int_handler)
        with ctrl_c_recorded(sigterm=True):  # the CLI's
            _fit(cb := _InstallsHandlers(hook, sigterm=True), epochs=2)
        assert signal.getsignal(signal.SIGINT) is cb.mine and signal.getsignal(signal.SIGTERM) is cb.mine
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, sigterm)
    _fit(Seen(), epochs=2)  # and without one: Python's default is back
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) == sigterm


def test_a_handler_set_inside_a_block_stays_and_one_left_alone_is_put_back():
    mine = lambda signum, frame: None
    try:
        with ctrl_c_recorded(), interrupts_held():
            signal.signal(signal.SIGINT, mine)
        assert signal.getsignal(signal.SIGINT) is mine
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    with ctrl_c_recorded():
        with interrupts_held():
            held = signal.getsignal(signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is not held  # the section's own is taken back
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


class _SavesAndPutsBack(Callback):
    """Sets its own SIGINT handler at epoch 0's end (inside fit's held section) and puts back
    the one it replaced (``old = signal.signal(...)``; ``signal.signal(SIGINT, old)``) at
    ``put_back`` (a later epoch's end, or the training's end), as a user's callback that saves
    on Ctrl-C for a while might. The one it saves is fnn's, ended by the time it is put back."""

    def __init__(self, put_back, save_at="on_epoch_end"):
        self.put_back, self.save_at, self.calls, self.saved = put_back, save_at, [], None

    def _save(self):
        self.saved = signal.signal(signal.SIGINT, lambda signum, frame: self.calls.append(signum))

    def on_train_begin(self, ctx):
        if self.save_at == "on_train_begin":
            self._save()

    def on_epoch_end(self, epoch, logs, ctx):
        if self.save_at == "on_epoch_end" and epoch == 0:
            self._save()
        if self.put_back == epoch:
            signal.signal(signal.SIGINT, self.saved)

    def on_train_end(self, ctx):
        if self.put_back == "end":
            signal.signal(signal.SIGINT, self.saved)


@pytest.mark.parametrize("put_back, save_at", [("end", "on_epoch_end"), (1, "on_epoch_end"), (1, "on_train_begin")])
@pytest.mark.parametrize("cli", [False, True])
def test_a_callback_that_puts_back_the_handler_it_saved_leaves_python_s_default_after_fit(put_back, save_at, cli):
    """The handler a callback saved was fnn's (epoch 0's held section's, or fit's own
    recording's); put back after its block ended (at the training's end, or in a later
    section), it stands for fnn's handling: fit ends with the handler from before it in place
    (Python's default), and the first Ctrl-C after fit raises KeyboardInterrupt, none is
    swallowed by a held section that is over. The callback's own handler got nothing."""
    cb = _SavesAndPutsBack(put_back, save_at)
    sigterm = signal.getsignal(signal.SIGTERM)
    if cli:
        with ctrl_c_recorded(sigterm=True):  # the CLI's: SIGTERM is fnn's too
            cli_handlers = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
            _fit(cb, epochs=3)
            assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == cli_handlers
    else:
        _fit(cb, epochs=3)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) == sigterm
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)
    assert cb.calls == []


def test_a_held_ctrl_c_goes_to_the_handler_a_callback_set_inside_the_block():
    """Delivered at the block's end as one arriving then would be: to the handler in place
    then, which is the one set inside the block (kept for the rest of the program); one set to
    SIG_IGN ignores it. The handler from before the block gets nothing."""
    before, mine = [], []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: before.append(signum))
    try:
        with interrupts_held():
            signal.raise_signal(signal.SIGINT)  # held
            signal.signal(signal.SIGINT, lambda signum, frame: mine.append(signum))
            assert mine == []
        assert before == [] and mine == [signal.SIGINT]
        signal.signal(signal.SIGINT, signal.default_int_handler)
        with interrupts_held():  # Python's default before it, SIG_IGN set inside: ignored
            signal.raise_signal(signal.SIGINT)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_section_s_handler_put_back_after_the_section_passes_a_ctrl_c_on_at_once():
    """Nothing holds a signal once the section is over: its handler, put back by a caller that
    saved it, hands a Ctrl-C to the handler from before at once (here Python's default)."""
    with interrupts_held():
        held = signal.getsignal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    try:
        signal.signal(signal.SIGINT, held)
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
