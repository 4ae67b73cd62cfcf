"""Several optimizers' runs in ONE compiled program: what ``fnn compare`` trains.

:func:`fit_together` trains the same K stacked models (the same initial params and keys) once
per optimizer, each run :func:`fnn.fit_many`'s (up to float rounding), but all runs' epochs in
one program per epoch (their validation pass is the runs' common program, run per run).

The point is compile time: XLA:CPU compiles a program's kernels once however often it holds
them, so the runs share the network's forward and backward kernels and only each optimizer's
own update is compiled per run. On ``fnn compare``'s
digits job (11 optimizers, 3 seeds, 2-core EPYC, 2026-12-05) the 11 epoch programs compiled in
6.55 s one after another; the same 11 epochs in one program in 2.59 s (tracing included), where
the program of one epoch takes 0.37 s and each further epoch adds 0.14-0.15 s
(benchmarks/RESULTS.md). Each optimizer's update runs on one vector of the leaves where that
computes the same and pays (:mod:`fnn.train._flat`): a fifth less compile time again. The
validation pass stays a program of its own: inside, it added
~0.6 s to that compile. Training runs the epochs one after the other inside the program, the
work fit_many's runs would do, with one dispatch and one host sync per epoch for all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax

from fnn._cache import structural_cache
from fnn._dtypes import abstract_array
from fnn._interrupts import ctrl_c_recorded
from fnn.train._checks import check_opt_update, check_schedules, resolve_opt
from fnn.train._epoch import EpochSpec, donated, models_epoch_fn
from fnn.train._flat import flat_pays
from fnn.train._loop import copy_tree, init_state, run_epochs_queued, validate
from fnn.train._many import models_inputs, new_histories, prepare_models, record, stacked_keys
from fnn.train._results import SweepResult


class TogetherSpec(NamedTuple):
    """Everything static about a program of several runs' epochs; its cache key."""

    specs: tuple[EpochSpec, ...]  # each run's epoch (the runs differ in their optimizer's update)
    mesh: None = None  # on one device (the epoch loop reads a spec's mesh)


@structural_cache(maxsize=8)
def _compiled_together(spec: TogetherSpec, donate: tuple[int, ...]) -> Callable:
    """The jitted ``(params, opt_states, x, y, w, perms, keys) -> (params, opt_states, bad,
    sums)``: each a tuple over the runs, each run's epoch vmapped over its models (the data,
    sample orders and keys shared); params and states donated. The validation pass is the
    runs' common program, run per run (``Prepared.runs``)."""
    epochs = [models_epoch_fn(s) for s in spec.specs]

    def together(params, opt_states, x, y, w, perm, key):
        out = [epoch(p, s, x, y, w, perm, key) for epoch, p, s in zip(epochs, params, opt_states, strict=True)]
        return tuple(tuple(o[i] for o in out) for i in range(4))

    return jax.jit(together, donate_argnums=donate)


def _settings(
    *,
    batch_size: int | None = 32,
    shuffle: bool = True,
    validation_split: float = 0.0,
    validation_data: tuple | None = None,
    validation_batch_size: int | None = None,
    metrics: Sequence = (),
    weighted_metrics: Sequence = (),
    grad: str = "manual",
    unroll: int | None = None,
) -> dict:
    """fit_together's settings (fit_many's keywords, a wrong name refused as Python refuses
    it) for fnn.train._many.prepare_models, with fit_many's defaults."""
    return dict(
        grad=grad, batch_size=batch_size, unroll=unroll, shuffle=shuffle, validation_split=validation_split,
        validation_data=validation_data, validation_batch_size=validation_batch_size, metrics=metrics,
        weighted_metrics=weighted_metrics,
    )  # fmt: skip


def fit_together(
    net: Any, params: Any, opts: Sequence[Any], loss: Any, x: Any, y: Any, *, key: Any = None, epochs: int = 1,
    **settings: Any,
) -> list[SweepResult]:  # fmt: skip
    """One :func:`fnn.fit_many` per optimizer of ``opts``, from the same stacked ``params`` and
    ``key``, all of them in ONE compiled program per epoch; returns their results in the order
    of ``opts``. Run ``r`` equals ``fit_many(net, params, opts[r], loss, x, y, key=key, ...)``
    with the same settings (its sample orders and dropout keys are the same too), up to float
    rounding (XLA may fuse a run's arithmetic otherwise in the larger program, where an update
    may run on one vector of the leaves: :mod:`fnn.train._flat`): every
    argument means what it does there, and is checked as there, every run's before anything
    compiles. ``settings``: fit_many's ``batch_size``, ``shuffle``, ``validation_split``,
    ``validation_data``, ``validation_batch_size``, ``metrics``, ``weighted_metrics``, ``grad``
    and ``unroll``. Each history's ``times`` are the shared program's: the runs' time together."""
    # a Ctrl-C that Python drops (in JAX's gc callback) still ends the run, as in fit
    with ctrl_c_recorded():
        if not opts:
            raise ValueError("fit_together needs at least one optimizer")
        try:
            settings = _settings(**settings)
        except TypeError as e:  # a keyword fit_many does not take, named as Python names it
            raise TypeError(str(e).replace("_settings()", "fit_together()")) from None
        checked = [resolve_opt(opt) for opt in opts]
        # the data and network checked, and the data moved, once, with the first optimizer; the
        # others checked on their own and given its epoch with their update
        first, _, stacked, _, k_models = prepare_models(
            net, params, checked[0], loss, x, y, None, epochs, 0, 0, settings
        )
        one_model = jax.tree.map(lambda a: abstract_array(a.shape[1:], a.dtype), stacked)  # shapes only
        # each update on one vector of the leaves where that is the same and pays: fewer kernels
        first = first._replace(spec=first.spec._replace(flat=flat_pays(first.spec.batch_size, one_model)))
        runs = [first]
        for opt in checked[1:]:
            check_opt_update(opt, one_model)
            check_schedules(opt, None, max(epochs, 0) * first.iterations_per_epoch)
            runs.append(first._replace(spec=first.spec._replace(update=opt.update)))
        spec = TogetherSpec(tuple(r.spec for r in runs))
        program = first._replace(spec=spec, epoch=_compiled_together(spec, donated()), runs=len(runs))
        keys = stacked_keys(key, k_models)
        params_t = tuple(copy_tree(stacked) for _ in runs)
        states_t = tuple(init_state(opt, p, models=True) for opt, p in zip(checked, params_t, strict=True))
        histories = [new_histories(r, k_models) for r in runs]

        def end(epoch, bad, sums, val, seconds):
            for r, run in enumerate(runs):
                record(histories[r], run, epoch, sums[r], None if val is None else val[r], seconds)

        params_t, states_t = run_epochs_queued(
            program, params_t, states_t, epochs=epochs, inputs=models_inputs(first, net, keys, epochs), end=end
        )
        results = zip(params_t, states_t, histories, strict=True)
        return [SweepResult(p, s, h, [{} for _ in range(k_models)]) for p, s, h in results]


def compile_validation(net: Any, params: Any, opt: Any, loss: Any, x: Any, y: Any, **settings: Any) -> None:
    """Runs once (so compiles, through the open executable store) the validation pass that
    :func:`fit_together` with these arguments runs: a caller can compile it beside the runs'
    own program (``fnn compare``), where it would otherwise compile after the first program,
    beside the others. ``params``: stacked, zeros will do; ``settings``: fit_together's
    keywords (no ``key``); nothing without validation data."""
    run, _, stacked, _, _ = prepare_models(net, params, opt, loss, x, y, None, 1, 0, 0, _settings(**settings))
    if run.validation is not None:
        jax.block_until_ready(validate(run, stacked))
