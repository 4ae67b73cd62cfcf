"""Evaluation: :func:`evaluate` over a data set and :func:`eval_step` on one batch, both through
fit's own validation pass (:func:`fnn.train._validation.eval_sums`; evaluate runs its very
program, :func:`fnn.train._validation.compiled_validation`), so the three agree."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from fnn import metrics as metrics_
from fnn._cache import structural_cache
from fnn._dtypes import moved_as_fit_moves, param_dtype
from fnn._executables import call as call_through_store
from fnn._native import native_tree, natively
from fnn._network_checks import check_against_network, check_params_and_x
from fnn._placement import on_one_device
from fnn._validate import any_traced, integer
from fnn.data._checks import check_batch, check_sample_counts
from fnn.grad._value_and_grad import takes_one_target_per_sample
from fnn.layers._base import check_net
from fnn.layers._programs import for_programs
from fnn.layers._samples import batch_of_one, one_sample
from fnn.metrics._resolve import resolve_both
from fnn.train._checks import resolve_loss
from fnn.train._data_checks import (
    check_loss_weighs,
    check_required,
    check_sample_weight,
    check_samples,
    label_dtype,
    sparse_labels,
)
from fnn.train._device_data import data_to_device
from fnn.train._sums import results
from fnn.train._validation import ValidationSpec, compiled_validation, eval_sums


def evaluate(
    net: Any,
    params: Any,
    loss: Any,
    x: Any,
    y: Any,
    metrics: Sequence[Any] = (),
    batch_size: int | None = None,
    sample_weight: Any = None,
    weighted_metrics: Sequence[Any] = (),
) -> dict[str, float]:
    """Loss and metrics of ``net.apply(params, .)`` on ``(x, y)``, computed batch by batch.

    Batches follow Keras (``batch_size`` default 32, the last partial batch kept, order kept);
    the whole pass is one compiled program (the full batches scanned, then the remainder),
    cached on the network, loss, metrics and batch size (a new number of samples compiles it
    for that number, as :func:`predict` does). The loss is
    ``sum_b n_b loss_b / N`` (the exact mean over samples for a batch-mean loss) and each
    metric is ``result(sum, count)`` of its summed partials.

    ``sample_weight`` (``(N,)``, finite, >= 0) weighs the samples as in :func:`fit`: the loss
    and ``weighted_metrics``, not ``metrics`` (Keras 3).

    The network runs in evaluation mode (Dropout off). This is the pass :func:`fit` runs on its
    validation data, so ``evaluate`` on ``validation_data`` gives the epoch's ``val_*`` values.
    Everything is checked before anything is compiled, as in :func:`fit`: a plain callable
    loss that returns one value per sample, not the batch's one number, is a ValueError naming
    it (``fnn.losses.custom(name, fn)`` averages such values, as Keras does).

    ``evaluate`` runs inside ``jax.jit``, ``jax.vmap`` and ``jax.grad`` too, with the same
    values (0-d jax arrays there, not Python floats): under jax.jit/vmap the value checks are
    skipped for traced arguments; the structural checks run at trace time (shapes, dtypes, the
    data against the network, the loss and the metrics, ``batch_size``, which must then be a
    Python int). Concrete arguments keep their value checks (NumPy data with NaN, or sparse
    labels outside ``[0, C)``, are refused under jit too).

    Args:
        net: The network (anything with ``apply(params, x)``, e.g. :func:`fnn.mlp`).
        params: Its parameters (``net.init``'s structure and shapes), on any device or
            replicated over a mesh (as ``fit(mesh=...)`` returns them, over many processes too:
            each uses its local copy); the data follow them to their device.
        loss: A loss name, an :class:`fnn.losses.Loss`, or any callable
            ``(y_true, y_pred) -> scalar`` (taking ``sample_weight=`` when weights are given;
            one returning a value per sample is refused: make it ``fnn.losses.custom(name, fn)``).
        x: Inputs ``(N, *input_shape)`` (``(N, features)`` for Dense first; any rank >= 2 for
            a network that starts with Flatten): a NumPy or jax array or nested lists, finite.
        y: Targets with ``N`` rows, of the shape the loss expects.
        metrics: Metric names, :class:`fnn.metrics.Metric` objects or callables, as in
            :func:`fit` (``"accuracy"`` resolved from the loss and the shapes), unweighted.
        batch_size: Samples per batch, an int >= 1 (None: 32); above ``N``, one batch.
        sample_weight: Per-sample weights ``(N,)`` (or ``(N, 1)``, or a scalar), finite and
            >= 0 (bools weigh 0 and 1), or None.
        weighted_metrics: Metrics as in ``metrics``, weighted by ``sample_weight``; named as
            :func:`fit` names them (``weighted_<name>`` where ``metrics`` took the name).

    Returns:
        ``{"loss": float, <metric name>: float, ...}``, Python floats (0-d jax arrays where the
        arguments are traced).

    Raises:
        TypeError: For a non-int ``batch_size``, non-numeric data or weights, a ``loss`` that
            is neither a name nor callable (or a plain callable without a ``sample_weight=``
            keyword when ``sample_weight`` is given), or metrics that are not names, Metrics or callables.
        ValueError: For ``batch_size < 1``; an unknown loss or metric name; ``x`` not
            ``(N, *input_shape)``, empty or non-finite, data or weights with finite values that
            overflow the dtype they are held in (``x`` in the params' dtype, ``y`` and weights in
            at least float32), ``x`` and ``y`` of different lengths, data that does not fit the
            network or the loss; params of another structure or shapes than the network's, or
            holding a float64 jax array while ``jax_enable_x64`` is off (made while it was on); a
            metric that does not fit the targets (or labels it cannot take); ``sample_weight``
            of the wrong shape, negative or non-finite; an array split over processes (each
            holding part of it: gather it first).

    Examples:
        >>> import fnn, jax, numpy as np
        >>> net = fnn.mlp([1])
        >>> params = net.init(jax.random.PRNGKey(0), (3,))
        >>> x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(8, 3)
        >>> y = x.sum(axis=1, keepdims=True)
        >>> logs = fnn.evaluate(net, params, "mse", x, y, metrics=["mae"], batch_size=4)
        >>> w, b = np.asarray(params[0]["w"]), np.asarray(params[0]["b"])
        >>> sorted(logs), bool(np.isclose(logs["loss"], np.mean((x @ w + b - y) ** 2)))
        (['loss', 'mae'], True)
    """
    batch_size = integer("batch_size", 32 if batch_size is None else batch_size, 1)
    params, x, y, sample_weight = on_one_device(
        (native_tree(params, "params"), x, y, sample_weight), ("params", "x", "y", "sample_weight")
    )
    check_required("y", y)
    x, y = check_samples(x, y)
    loss = resolve_loss(loss)
    check_loss_weighs(loss, sample_weight=sample_weight)
    out_shape = check_against_network(net, params, loss, x, y, "x", "y")
    shapes = dict(y_true_shape=y.shape, y_pred_shape=out_shape, y_true_dtype=label_dtype(loss, y))
    ms, wms = resolve_both(metrics, weighted_metrics, loss=loss, **shapes)
    metrics_.check_targets((*ms, *wms), y, out_shape, name="y", loss=loss)
    w = None if sample_weight is None else check_sample_weight(sample_weight, x.shape[0])
    # The data moves as fit moves it: x in the params' dtype, targets and weights in at least
    # float32, converted once on the host (no second copy), class indices kept as integers.
    x, y, w = data_to_device(param_dtype(params), x, sparse_labels(loss, y), w)
    batch_size = min(batch_size, x.shape[0])
    # an open executable store (the CLI, whose settings describe net, loss and metrics) skips tracing
    # fit's validation pass: the same program (and the same one for equal settings)
    program = compiled_validation(ValidationSpec(for_programs(net), loss, ms, batch_size, weighted_metrics=wms))
    # (the weighted metrics are not in the CLI's settings: they join the program's key)
    # NumPy params (a host copy of trained weights) go in by an explicit transfer, as the data do:
    # a caller's jax.transfer_guard("disallow") refuses an implicit one (device arrays stay put)
    sums = call_through_store(program, "evaluate", (batch_size, *wms), jax.device_put(params), x, y, w)
    if any_traced(sums):  # under the user's jit: no Python float
        return results((*ms, *wms), sums)
    return {k: float(v) for k, v in results((*ms, *wms), jax.device_get(sums)).items()}


def eval_step(net: Any, loss: Any, metrics: Sequence[Any] = ()) -> Callable:
    """A jitted ``(params, x, y) -> {"loss": ..., metric: ...}`` on one batch (eval mode).

    The values are those :func:`evaluate` gives for the batch (the same pass, with the whole
    batch as one, held as evaluate holds it: ``x`` in the params' dtype); they are 0-d jax
    arrays, so the step can run inside your own jitted loop. Metrics are resolved without the
    shapes: ``"accuracy"`` needs a crossentropy loss here (or name the accuracy you mean).

    Args:
        net: The network (anything with ``apply(params, x)``).
        loss: A loss name, an :class:`fnn.losses.Loss`, or any callable
            ``(y_true, y_pred) -> scalar`` (one value per sample is refused when the step is
            called: make such a function ``fnn.losses.custom(name, fn)``).
        metrics: Metric names, :class:`fnn.metrics.Metric` objects or callables.

    Returns:
        ``step(params, x, y) -> {"loss": Array, <metric name>: Array, ...}``, jitted; ``x``
        a batch of inputs ``(B, ...)``, ``y`` its targets. The step is cached on structure
        (the network, loss and metrics compared by value): building it again from equal
        pieces returns the same compiled step, so nothing compiles twice.

    When the step is called it checks what the batch's shapes and dtypes say, while tracing
    (so for free, and inside your own jitted loop too): ``x`` must hold real numbers and at
    least one sample, samples first; the params must fit the network as :func:`fit` checks them
    (against what ``net.init`` builds: a wrong leaf or ``x`` named), and the data the network
    and the loss. The VALUES are not checked: that would make every step wait for the device.
    Sparse labels outside ``[0, C)`` or fractional, and NaN/inf in the data, give a wrong or NaN
    result, unseen; check the data once with :func:`fnn.evaluate` (or
    :func:`fnn.data.check_arrays` and :func:`fnn.losses.check_targets`), which refuse them.

    Raises:
        TypeError: For a ``loss`` that is neither a name nor callable, or metrics that are not
            names, Metrics or callables; when the step is called, for a complex ``x``.
        ValueError: For an unknown loss or metric name, an ``"accuracy"`` that neither the loss
            nor shapes can resolve, or a metric named ``loss`` or ``val_*``. When the step is
            called: for an ``x`` of 0 samples, params that do not fit the network (an
            ``x`` of rank 1 is one sample, checked as a batch of one),
            shape errors of the data, and a plain callable loss returning one value per sample.

    Examples:
        >>> import fnn, jax, numpy as np
        >>> net = fnn.mlp([1])
        >>> params = net.init(jax.random.PRNGKey(0), (3,))
        >>> x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(8, 3)
        >>> y = x.sum(axis=1, keepdims=True)
        >>> step = fnn.eval_step(net, "mse", ["mae"])
        >>> out = step(params, x, y)
        >>> sorted(out), out["loss"].shape
        (['loss', 'mae'], ())
    """
    check_net(net)
    loss = resolve_loss(loss)
    return _compiled_eval_step(for_programs(net), loss, metrics_.resolve(metrics, loss=loss))


@structural_cache(maxsize=32)
def _compiled_eval_step(net: Any, loss: Any, ms: tuple) -> Callable:
    # Keyed on structure (as fit's validation pass): a step built again from equal pieces is this
    # very jitted function, so nothing is traced or compiled again.
    per_sample_targets = takes_one_target_per_sample(net, loss)

    @jax.jit
    def step(params, x, y):
        check_required("y", y)
        check_batch(x)  # while tracing: 0 samples would divide by zero, complex lose its imaginary part
        check_params_and_x(net, params, x)  # as evaluate checks them: the params' leaves or x named
        if one_sample(x):  # one sample (a per-example vmap): a batch of one, as train_step's
            x, y = batch_of_one(x), batch_of_one(y)
        if per_sample_targets:
            check_sample_counts(x, y)
        x, y = moved_as_fit_moves(params, x, y)  # as evaluate holds the batch (its values are evaluate's)
        out = results(ms, eval_sums(net, loss, ms, params, x, y, x.shape[0]))
        for i, m in enumerate(ms):  # while tracing: evaluate and fit refuse such a metric before compiling
            if jnp.ndim(out[m.name]) != 0:
                raise TypeError(
                    f"metrics[{i}] = {m.name!r} gives an array of shape {jnp.shape(out[m.name])}; a metric gives one "
                    "number (reduce it, e.g. its mean, or log each value as a metric of its own)"
                )
        return out

    return natively(step, ("params", "x", "y"))
