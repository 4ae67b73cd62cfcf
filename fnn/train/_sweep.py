""":func:`sweep`: K models built from a grid of seeds and hyperparameters (learning rate,
weight decay, any ``hparams`` entry of the optimizer state), trained at once by
:func:`fnn.fit_many`: the comparison work fnn exists for.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn._cache import structural_cache, trace_settings
from fnn._dtypes import check_number_dtype, params_dtype
from fnn._interrupts import ctrl_c_recorded
from fnn._keys import seed_key
from fnn._validate import eval_shape_or_run, is_real_number
from fnn.layers._errors import misfit_marks
from fnn.optimizers import set_hyperparams
from fnn.optimizers._learning_rates import set_learning_rate_in_proportion
from fnn.train._checks import check_opt_update, check_schedules, check_settings, opt_state_shape, resolve_opt
from fnn.train._data_checks import prepare_data
from fnn.train._initial import initial_params
from fnn.train._loop import init_state
from fnn.train._many import fit_many, unexpected_keyword
from fnn.train._results import SweepResult


def _set_hparam(state: Any, name: str, values: Any) -> Any:
    """``state`` with hyperparameter ``name`` set to ``values`` (shape (K,)) in every optimizer
    state that holds it; the learning rate is the first parameter group's, the others scaled in
    proportion (as LearningRateScheduler sets it; schedules rescale)."""
    if name == "learning_rate":
        return set_learning_rate_in_proportion(state, values)
    return set_hyperparams(state, **{name: values})


def _values(name: str, values: Any) -> list:
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray, jax.Array)):
        raise TypeError(f"{name} must be a sequence of values, got {type(values).__name__}")
    check_number_dtype(name, values)  # an 8-bit float array is already rounded
    values = list(np.asarray(values).tolist()) if not isinstance(values, list) else list(values)
    for i, v in enumerate(values):
        check_number_dtype(f"{name}[{i}]", v)
    if not values:
        raise ValueError(f"{name} must hold at least one value, got an empty sequence")
    return values


def sweep(
    net: Any,
    opt: Any,
    loss: Any,
    x: Any,
    y: Any,
    *,
    seeds: Sequence[int] = (0,),
    learning_rates: Sequence[float] | None = None,
    weight_decays: Sequence[float] | None = None,
    hparams: dict[str, Sequence[float]] | None = None,
    input_shape: tuple[int, ...] | None = None,
    dtype: Any = None,
    **fit_kwargs: Any,
) -> SweepResult:
    """Trains one model per point of the grid ``seeds x learning_rates x weight_decays x
    hparams`` in one compiled program (:func:`fit_many`).

    Model with seed ``s`` starts from ``net.init(init_key, input_shape)`` and trains with
    ``key=fit_key`` where ``init_key, fit_key = jax.random.split(jax.random.PRNGKey(s))``
    (whatever ``jax_default_prng_impl`` says; a layer of your own that draws randomness: see
    :func:`fit_many`); its
    optimizer state is ``opt.init(params)`` with the swept hyperparameters set (``learning_rate``
    through ``set_learning_rate``: a scheduled rate is scaled as a whole so that the first update
    uses the swept value; a schedule that gives 0 there, a warmup from 0, is refused). In a state
    holding several learning rates (parameter groups, :func:`fnn.optimizers.get_learning_rates`)
    the swept rate is the first group's, and every other group's is scaled by the same factor, so
    they keep their proportions (``chain(masked(sgd(0.1), w), masked(adam(0.01), b))`` swept at
    0.5 trains with 0.5 and 0.05), as :class:`fnn.callbacks.LearningRateScheduler` sets them;
    where the first group's rate is 0, every group gets the swept rate. ``hparams`` names any other entry
    of the state's ``hparams`` (``momentum``, ``b1``...). A term must exist to be swept: build
    ``opt`` with a nonzero ``weight_decay`` to sweep weight decays (0 is then a valid value).
    ``input_shape`` defaults to ``x.shape[1:]``; ``dtype`` (e.g. ``jnp.float64``) casts the
    initial params, and so the training, to that dtype; ``fit_kwargs`` go to :func:`fit_many`
    (``batch_size``, ``epochs``, ``validation_split``, ``metrics``, ``weighted_metrics``,
    ``grad``...).
    ``result.configs[i]`` says which grid point model i is.

    The grid is the product over the seeds, then the ``hparams`` entries in their order, then
    the learning rates and the weight decays: model ``i`` is the ``i``-th point of
    ``itertools.product`` over them (the last axis varies fastest). Every
    hyperparameter name is checked against the optimizer state (traced, nothing compiled),
    and the data, loss and settings as :func:`fit_many` checks them, before anything runs.

    Args:
        net: The network (it must have ``init``).
        opt: An optimizer or an optimizer name, built with every term to sweep (a nonzero
            ``weight_decay`` to sweep weight decays).
        loss: A loss name, an :class:`fnn.losses.Loss`, or with ``grad="autodiff"`` a callable
            returning the batch's loss, a scalar, as in :func:`fit`.
        x: Inputs ``(N, *input_shape)``.
        y: Targets with ``N`` rows.
        seeds: The seeds, ints: each gives a model's initial params and its training key.
        learning_rates: The learning rates to try (finite, >= 0), or None to keep ``opt``'s; with
            several parameter groups, the first group's (the others keep their proportions).
        weight_decays: The weight decays to try (finite), or None: the optimizer's
            ``weight_decay`` hyperparameter (muon's decays its matrices only: sweep its
            ``adam_weight_decay`` through ``hparams``).
        hparams: ``{name: values}`` for further hyperparameters held in the optimizer state
            (``{"momentum": [0.0, 0.9]}``); ``learning_rate``/``weight_decay`` may be given here
            instead of by keyword, not both.
        input_shape: The shape of one sample for ``net.init`` (None: ``x.shape[1:]``).
        dtype: A floating dtype to cast the initial params to: float16, bfloat16, float32 or
            float64 (float32 without ``jax_enable_x64``, with one warning); None: ``net.init``'s.
        **fit_kwargs: Further :func:`fit_many` arguments (``batch_size``, ``epochs``,
            ``validation_split``, ``validation_data``, ``metrics``, ``grad``, ``verbose``...);
            not ``key``, ``opt_state`` or ``configs``, which the sweep sets.

    Returns:
        A :class:`SweepResult` whose ``configs[i]`` is model i's grid point, ``{"seed": s,
        "learning_rate": lr, ...}``.

    Raises:
        TypeError: For ``key``, ``opt_state`` or ``configs`` in ``fit_kwargs``, or a keyword
            :func:`fit_many` does not take (``mesh``: a sweep runs on one device); a seed that is
            not an int; a grid that is not a sequence (a string, a number), or that holds a value
            that is not a real number (a string, None, a bool, a float8 value); a ``dtype`` that is not one of
            those four (an integer dtype, float8); and the type errors of :func:`fit_many`.
        ValueError: For an empty grid; a seed beyond int64's range (``PRNGKey`` overflows
            there); a hyperparameter given both by keyword and in
            ``hparams``; values that are not finite (NaN, inf), or a negative learning rate; a
            hyperparameter the optimizer state does not hold (a term switched off in ``opt``);
            and the value errors of :func:`fit_many`.

    Examples:
        >>> import fnn, numpy as np
        >>> x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(8, 3)
        >>> y = x.sum(axis=1, keepdims=True)
        >>> result = fnn.sweep(fnn.mlp([1]), "sgd", "mse", x, y, learning_rates=[0.01, 0.1], batch_size=4, epochs=1)
        >>> result.configs
        [{'seed': 0, 'learning_rate': 0.01}, {'seed': 0, 'learning_rate': 0.1}]
        >>> best = result.best()
        >>> result.configs[best], result.result(best).params[0]["w"].shape
        ({'seed': 0, 'learning_rate': 0.1}, (3, 1))
    """
    # a Ctrl-C that Python drops (in JAX's gc callback) still ends the run, as in fit
    with ctrl_c_recorded():
        for bad in ("key", "opt_state", "configs"):
            if bad in fit_kwargs:
                raise TypeError(
                    f"sweep() sets {bad!r} itself from the seeds and hyperparameters; use fit_many to pass it"
                )
        taken = _fit_many_parameters()
        for name in fit_kwargs:
            if name not in taken:  # named here, not as fit_many's unexpected keyword
                raise unexpected_keyword("sweep", name, "a sweep")
        opt = resolve_opt(opt)
        axes = {"seed": _values("seeds", seeds)}
        for s in axes["seed"]:
            if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
                raise TypeError(f"seeds must be ints, got {s!r}")
            if not -(2**63) <= int(s) < 2**63:  # beyond, PRNGKey(s) overflows: no key to equal
                raise ValueError(f"seeds must be in int64's range, as jax.random.PRNGKey takes a seed; got {s!r}")
        swept = dict(hparams or {})
        for name, vals in (("learning_rate", learning_rates), ("weight_decay", weight_decays)):
            if vals is not None:
                if name in swept:
                    raise ValueError(f"{name} given twice (keyword and hparams)")
                swept[name] = vals
        for name, vals in swept.items():
            vals = _values(name if name not in ("learning_rate", "weight_decay") else name + "s", vals)
            wrong = [v for v in vals if not is_real_number(v)]
            if wrong:  # a wrong type ("0.1", None, a list) is a TypeError; a bad number, below, a ValueError
                raise TypeError(f"{name} values must be real numbers, got {wrong[0]!r} in {vals}")
            if not all(math.isfinite(float(v)) for v in vals):
                raise ValueError(f"{name} values must be finite numbers, got {vals}")
            # the configs hold Python numbers, whatever scalars the grid was given in
            vals = [v.item() if isinstance(v, (np.generic, np.ndarray, jax.Array)) else v for v in vals]
            if name == "learning_rate" and min(vals) < 0:
                raise ValueError(f"learning_rates must be >= 0, got {vals}")
            axes[name] = vals
        configs = [dict(zip(axes, point, strict=True)) for point in itertools.product(*axes.values())]

        given_shape = input_shape is not None
        if input_shape is None:
            input_shape = tuple(np.shape(x)[1:])
        if dtype is not None:  # canonical: float64 without x64 is float32, said once here
            dtype = params_dtype("dtype", dtype)
        # Fail on a hyperparameter the state lacks, or a value out of its range, before anything runs
        # (traced: nothing compiles; a second sweep of the same structure and grid traces nothing).
        params_shape = _one_model(net, input_shape, dtype, trace_settings())
        check_opt_update(opt, params_shape)  # the check fit_many makes, before the inits below compile
        try:
            _check_as_fit_many(net, params_shape, opt, loss, x, y, fit_kwargs)
        except ValueError as e:
            said = misfit_marks(e)[1]
            if not (given_shape and said):
                raise
            # the params are sweep's, built for input_shape: the two disagree, either may be wrong
            raise ValueError(
                f"{said} built for input_shape={tuple(input_shape)} (sweep inits each model with "
                f"net.init(key, input_shape); without input_shape it builds for x.shape[1:]){str(e)[len(said) :]}"
            ) from None
        for name in axes:
            if name != "seed":
                # the values' reprs in the key: 1 and 1.0, 0.0 and -0.0 are checked apart
                vals = tuple(axes[name])
                leaves, treedef = jax.tree.flatten(params_shape)
                _check_settable(opt, treedef, tuple(leaves), name, vals, tuple(map(repr, vals)), trace_settings())
        params, key = initial_params(net, input_shape, [c["seed"] for c in configs], dtype)
        opt_state = init_state(opt, params, models=True)
        for name in axes:
            if name != "seed":
                opt_state = _set_hparam(opt_state, name, np.array([c[name] for c in configs]))
        return fit_many(net, params, opt, loss, x, y, key=key, opt_state=opt_state, configs=configs, **fit_kwargs)


@structural_cache(maxsize=64)
def _one_model(net: Any, input_shape: Any, dtype: Any, settings: tuple) -> Any:
    """One model's params as ``net.init`` builds them for ``input_shape``, cast to ``dtype``
    (None: as built), as shapes (traced; an init that cannot be traced runs eagerly, as
    ``Network.init`` runs it)."""
    params_shape = eval_shape_or_run(lambda k: net.init(k, input_shape), seed_key(0))
    if dtype is None:
        return params_shape
    return jax.tree.map(
        lambda a: jax.ShapeDtypeStruct(a.shape, dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a,
        params_shape,
    )


@structural_cache(maxsize=64)
def _check_settable(
    opt: Any, treedef: Any, leaves: tuple, name: str, values: tuple, reprs: tuple, settings: tuple
) -> None:
    """Each of ``values`` set as ``name`` in ``opt.init`` of the params ``treedef`` and ``leaves``
    (shapes) build (traced): a ValueError naming the argument for a hyperparameter the state
    does not hold or a value out of its range. Cached on the values' ``reprs`` too; a check
    that raises is not cached."""
    state_shape = opt_state_shape(opt, jax.tree.unflatten(treedef, leaves))
    try:
        jax.eval_shape(lambda s: [_set_hparam(s, name, v) for v in values], state_shape)
    except ValueError as e:  # the grid names a hyperparameter opt's state does not hold (settable)
        arg = f"{name}s" if name in ("learning_rate", "weight_decay") else f"hparams[{name!r}]"
        raise ValueError(f"{arg}: sweep sets {name} in opt's state for each model, but {e}") from None


@functools.cache
def _fit_many_parameters() -> Any:
    """fit_many's parameters (read once: a signature costs tens of microseconds)."""
    return inspect.signature(fit_many).parameters


def _check_as_fit_many(net: Any, params_shape: Any, opt: Any, loss: Any, x: Any, y: Any, fit_kwargs: dict) -> None:
    """fit_many's checks of its settings and data (the loss, sizes, shapes, non-finite values,
    metrics), on one model's abstract params: a bad argument fails before the seeds' inits
    compile, as it would fail in fit_many before its epoch does."""
    defaults = {n: p.default for n, p in _fit_many_parameters().items() if p.default is not p.empty}
    kw = {**defaults, **fit_kwargs}
    checked_loss, batch_size = check_settings(
        kw["grad"], loss, opt, kw["batch_size"], kw["epochs"], kw["unroll"], kw["validation_split"], kw["verbose"]
    )
    x_tr, *_ = prepare_data(
        net, params_shape, checked_loss, x, y, kw["validation_split"], kw["validation_data"], kw["metrics"],
        None, None, kw["weighted_metrics"],
    )  # fmt: skip
    # every model's state is fresh: its schedules run from step 0
    check_schedules(opt, None, kw["epochs"] * math.ceil(x_tr.shape[0] / batch_size))
