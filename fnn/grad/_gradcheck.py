"""``gradcheck``: the hand-written gradients against ``jax.grad`` and finite differences, leaf by
leaf and for the input, in float64, each entry judged (kinks, Richardson's second look); the
report it returns is in ``_report``."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from fnn import losses as _losses
from fnn._cache import structural_cache
from fnn._dtypes import abstract_array, check_params_dtypes, input_dtype
from fnn._native import native_tree
from fnn._network_checks import check_params_and_x, rank_error
from fnn._placement import on_one_device
from fnn._validate import any_traced, real
from fnn.data import check_arrays
from fnn.grad._culprits import culprits, local_checks, non_finite_start, spoiled_where_smooth
from fnn.grad._judgement import FD_BATCH, autodiff_scale, between_slopes, judge_leaf, padded, second_look
from fnn.grad._report import GradcheckReport, GradcheckRow
from fnn.grad._value_and_grad import resolve_loss
from fnn.layers import Network
from fnn.layers._base import check_net
from fnn.layers._errors import input_gradient_error
from fnn.layers._programs import for_programs
from fnn.losses._custom import autodiff_twin

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


# local_checks's result before it has run (None is its answer for a piece jax cannot differentiate)
_NOT_RUN: Any = object()


def _tolerance(name: str, value: Any) -> float:
    """A relative tolerance: a number >= 0 (inf passes everything)."""
    if isinstance(value, (str, bytes, bool, np.bool_)):
        raise TypeError(f"{name} must be a number >= 0, got {type(value).__name__} {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number >= 0, got {type(value).__name__} {value!r}") from None
    if not v >= 0:  # NaN too
        raise ValueError(f"{name} must be >= 0, got {v}")
    return v


def _count(name: str, value: Any) -> int:
    """A count >= 0: an int (NumPy's, a 0-d integer array) or a float of a whole number (4096.0)."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}") from None
    if v < 0:
        raise ValueError(f"{name} must be >= 0, got {v}")
    return v


def _path_name(path: Any) -> str:
    parts = [str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k)))) for k in path]
    return ".".join(parts) or "-"


def _narrower(name: str, tree: Any) -> tuple[str, ...]:
    """``("params float32",)`` where ``tree`` holds float32, float16 or bfloat16 leaves (named by
    ``name``), their dtypes sorted: what the float64 check cannot speak for (a backward that
    overflows in float32 alone, as torch's gradcheck warns of inputs that are not double)."""
    dtypes = {np.dtype(leaf.dtype).name for leaf in jax.tree.leaves(tree) if hasattr(leaf, "dtype")}
    narrow = sorted(d for d in dtypes if d in ("float32", "float16", "bfloat16"))
    return (f"{name} {' and '.join(narrow)}",) if narrow else ()


def _to_float64(tree: Any) -> Any:
    """Floating leaves as float64 (call with x64 on), each on the device it was on. Host data and
    arrays on one device (a GPU's too) are converted on the host: an eager ``astype`` compiles a
    program per leaf shape (~0.2 s for a 3-layer network's 6 leaves, against ~2 ms on the host,
    and a GPU's round trip of a gradient check's small arrays is cheaper than a compile)."""

    def one(a: Any) -> Any:
        if isinstance(a, jax.Array):
            if not jnp.issubdtype(a.dtype, jnp.floating) or a.dtype == jnp.float64:
                return a
            devices = a.devices()
            if len(devices) != 1:  # sharded: converted where its shards are
                return a.astype(jnp.float64)
            # committed where it was (an uncommitted array stays free to follow the others)
            where = next(iter(devices)) if getattr(a, "_committed", True) else None
            return jax.device_put(np.asarray(jax.device_get(a), np.float64), where)
        a = np.asarray(a)
        if jnp.issubdtype(a.dtype, jnp.floating):  # bfloat16 too
            return jax.device_put(a.astype(np.float64))
        # A fresh host copy: JAX 0.10.2 can give back, for this very array object (int64 labels
        # fit or evaluate put on the device with x64 off), an int32 buffer typed int64, which
        # the program then refuses ("expected s64[12] but got ... s32[12]"), now and then.
        return jax.device_put(np.array(a, copy=True))

    return jax.tree.map(one, tree)


@structural_cache(maxsize=32)
def _gradcheck_programs(net: Network, loss: Any, train: bool, reference: Any = None) -> tuple[Callable, Callable]:
    """gradcheck's two compiled programs for a network and loss, kept (keyed on structure) so
    that checking the same network again compiles nothing: the manual and autodiff gradients
    with respect to params AND the input (autodiff of ``reference``: the loss, or its autodiff
    twin), and the loss at ``(params, x)`` and at each flat index of it moved by ``+eps`` and
    ``-eps``."""
    reference = loss if reference is None else reference

    @jax.jit
    def both(params, x, y, key):
        y_pred, cache = net.forward(params, x, key=key, train=train)
        value, dy = loss.value_and_grad(y, y_pred)
        g_manual, dx_manual = net.backward(params, cache, dy)
        objective = lambda p, xx: reference(y, net.apply(p, xx, key=key, train=train))
        g_auto, dx_auto = jax.grad(objective, argnums=(0, 1))(params, x)
        return value, (g_manual, dx_manual), (g_auto, dx_auto)

    @jax.jit
    def shifted(params, x, y, key, indices, eps):
        flat, unravel = ravel_pytree((params, x))
        at = lambda f: loss(y, net.apply(*unravel(f), key=key, train=train))

        def one(i):
            e = jnp.zeros_like(flat).at[i].set(eps)
            return jnp.stack([at(flat + e), at(flat - e)])

        return at(flat), jax.lax.map(one, indices, batch_size=FD_BATCH)

    return both, shifted


def gradcheck(
    net: Network,
    loss: str | _losses.Loss,
    params: list,
    x: ArrayLike,
    y: ArrayLike,
    *,
    key: Array | None = None,
    eps: float = 1e-6,
    rtol_autodiff: float = 1e-8,
    rtol_fd: float = 1e-6,
    fd_max_entries: int | None = 4096,
    seed: int = 0,
) -> GradcheckReport:
    """Checks the hand-written gradients of ``loss(y, net(params, x))`` in float64: with respect
    to every parameter leaf AND to the input ``x`` (the row ``input dx``, which also covers
    layers without parameters).

    Each manual gradient is compared with ``jax.grad`` and with central finite differences
    ``D(h) = (L(p + h e_i) - L(p - h e_i)) / (2 h)``, ``h = eps``; errors are relative with an
    absolute floor (see :class:`GradcheckReport`). An entry outside tolerance of either (finite
    differences, or ``jax.grad``) gets a second look with the step halved: against Richardson's
    ``(4 D(h/2) - D(h)) / 3``, which removes
    the differences' own ``h^2`` error; and if its one-sided slopes ``(L(p + h e_i) - L(p)) / h``
    and ``(L(p) - L(p - h e_i)) / h`` differ by a jump that does not shrink with the step, the
    entry sits at a kink (relu at 0, relu6 at 6, an all-zero input row through a zero bias...),
    where finite differences have no single answer and frameworks choose (``jax.nn.relu``
    takes 0 at 0, ``jnp.maximum(x, 0)`` 1/2; ``sign(x)`` for ``|x|`` 0, ``jax.grad`` 1): it
    passes if it lies between the one-sided slopes or equals ``jax.grad``'s (several units
    kinked at once may sum their choices outside the two slopes), whichever of the two it was
    found off, and is counted in the row's ``fd_kinks``; but an entry off ``jax.grad``'s that
    lies between the slopes alone keeps its error against autodiff where a piece that can spoil
    its row (a layer at or after it, or the loss) is off ``jax.vjp`` of its own forward where
    that forward is smooth along their difference (for the whole batch's cotangent, and for
    each sample's alone: a kink of one sample does not hide a mistake made on another), so
    that no kink explains it (one sample
    whose prediction meets its target exactly puts ``mae`` at a kink whose slopes hold a
    smooth layer's 90 % error; the loss's gradient is also checked one output element at a
    time, so kinks met on several samples and outputs do not hide it). For a
    :func:`fnn.losses.custom` loss given ``grad``, autodiff differentiates its ``fn``, not its
    ``grad`` (which ``jax.grad`` of the loss would run), an independent check of it; where jax
    cannot differentiate ``fn`` (a host callback) the slopes alone judge that ``grad`` (an
    :class:`fnn.activations.Activation` of yours is alike:
    ``jax.grad`` differentiates its ``fn``, not its ``vjp``, so it is an independent check; at a
    kink it makes its own choice, ``jnp.maximum`` 1/2 at 0, and the vjp's passes between the
    slopes). An entry still off is differenced with smaller steps, down to ``eps / 16384``, each
    side's one-sided differences extrapolated (Richardson): where one side's slopes agree from
    step to step while the other's move, a kink lies within the step on that other side (a relu
    unit's input 3e-7 from 0, a float32 tie of ``mae`` seen in float64) and the entry passes
    equal to the smooth side's slope (counted in ``fd_kinks``); where both sides agree and
    differ, they judge it as above; where both agree alike and stay put as the step shrinks,
    the loss is smooth and resolved there (``|r|^1.5`` at ``r = 1e-6``, a fast ``sin(w p)``),
    and the entry passes only equal to their slope. Where the loss is smooth and the differences
    agree with the manual entry but not with ``jax.grad``'s, ``jax.grad`` is the one that is
    wrong (a forward's ``where(x == 0, 0, x)``, the identity, is differentiated through its
    constant branch at exactly 0): the entry is not counted against autodiff. Where no side
    agrees with itself, or the slopes move or stall as the step shrinks (their error growing as
    1 / h), the loss's own rounding swamps the difference (``log(1 - c)`` of a saturated
    sigmoid, whose error ~1e-9 is a slope error of ~1e-3 at ``eps``): it is differenced with
    larger steps, up to ``65536 eps``, and passes equal to a Richardson value that agrees with
    the next smaller step's and that the small steps scatter about as rounding does (their
    distance from it shrinking as 1 / h). A wrong gradient equals neither side's slope of a
    smooth loss, so it fails whatever the step; such an entry's error is taken against the
    best-agreeing difference. The tolerance has an absolute floor of the loss's own rounding at ``eps``,
    ``10 * 2.2e-16 * max(|loss|, 1) / (eps * rtol_fd)`` (``floor_fd`` in the report): a large
    loss value (``1e6``: a floor of ``2.2e3``) hides gradient errors below it, so subtract a
    constant offset from such a loss before checking it. Leaves (and inputs) with
    more than ``fd_max_entries`` entries are finite-differenced on a random subset of that
    size (drawn from ``seed``). When a check fails, each piece is checked alone to say where the
    wrong gradient starts (:attr:`GradcheckReport.at_fault`): every layer's backward against
    ``jax.vjp`` of its own forward, at its own input and given autodiff's cotangent of its output,
    and the loss's gradient against ``jax.grad`` of its function (a piece is named only if its
    mistake can explain a failed row: its own, an earlier layer's or the input's); a middle layer's
    wrong ``dx`` fails the rows of the layers before it, and is named there (a layer inside a
    nested network as ``outer/inner``). Kinks whose one-sided slopes cancel downstream (two
    leaky_relu units at 0 through a negative weight) leave the loss smooth, so no kink is
    found, while the chain rule multiplies the slopes chosen at each: such entries fail with
    every piece agreeing with ``jax.vjp`` and equal to ``jax.grad``, and the verdict says the
    chain rule itself is not the derivative there. Several units exactly on one kink (zero
    weights and biases) sum their choices, which may lie outside the loss's one-sided slopes:
    a choice there other than jax's (relu'(0) = 1 where ``jax.nn.relu`` takes 0) fails, and
    where the failing entries all sit on kinks the verdict says the named piece differs from
    jax's choice there, a wrong derivative or another valid one. Where the forward pass is not finite at the checked
    point (a sqrt of a negative input, NaN in ``x``), every comparison is NaN against NaN: the
    report names where the NaN or inf starts instead (:attr:`GradcheckReport.non_finite_from`),
    and no culprit. With ``key`` given, Dropout runs
    in training mode with that fixed key (the same mask for every evaluation, so finite
    differences stay consistent).

    Args:
        net: The network.
        loss: A loss name or an :class:`fnn.losses.Loss` (it must carry its hand-written gradient).
        params: The network's params (cast to float64 for the check; float32, float16 or
            bfloat16 ones are named in the report's note, :attr:`GradcheckReport.cast_from`).
        x: A (small) batch of inputs: an array or nested lists, samples first (integers are
            taken as real numbers, as ``fit`` takes them).
        y: Its targets, as ``x``.
        key: A PRNG key to run Dropout in training mode with a fixed mask; None: evaluation mode.
        eps: The finite-difference step h (> 0).
        rtol_autodiff: The largest relative error of manual vs autodiff that passes.
        rtol_fd: The largest relative error of manual vs finite differences that passes.
        fd_max_entries: Finite-difference at most this many entries per leaf (None: all).
        seed: Draws the subset of entries of a large leaf (anything
            ``numpy.random.default_rng`` takes).

    Returns:
        A :class:`GradcheckReport`: one row per parameter leaf and one for the input, the verdict
        in ``passed``, and a table as ``str(report)``.

    Raises:
        ValueError: For a ``eps`` that is not positive, a tolerance that is negative or
            NaN, an ``fd_max_entries`` or ``seed`` below 0, an unknown loss name, params that do
            not fit the network, ``x`` and ``y`` of different sample counts, targets that do
            not fit the loss (sparse labels outside ``[0, C)`` or not whole numbers, as
            :func:`value_and_grad` refuses them), or a first layer
            whose backward returns a ``dx`` that is None or not of ``x``'s shape (the message
            names the layer).
        TypeError: For a loss that is not a name or a Loss, ``eps``, a tolerance,
            ``fd_max_entries`` or ``seed`` of the wrong type, ``x``, ``y`` that do not hold
            real numbers, or params with a leaf that is not a floating array (the message names
            it); for params, ``x``, ``y`` or ``key`` traced (gradcheck called under
            ``jax.jit``, ``vmap`` or ``grad``).

    Examples:
        >>> import fnn, jax, jax.numpy as jnp
        >>> net = fnn.mlp([2])
        >>> params = net.init(jax.random.PRNGKey(0), (3,))
        >>> x = jax.random.normal(jax.random.PRNGKey(1), (4, 3))
        >>> report = fnn.gradcheck(net, "mse", params, x, jnp.zeros((4, 2)))
        >>> report.passed, [(r.layer_name, r.leaf) for r in report.rows]
        (True, [('dense_0', 'b'), ('dense_0', 'w'), ('input', 'dx')])
    """
    check_net(net)
    given = (("params", params), ("x", x), ("y", y), ("key", key))
    traced = [name for name, a in given if any_traced(a)]
    if traced:  # the float64 pass and the finite differences run on the host, on concrete values
        raise TypeError(
            f"gradcheck cannot run under jax.jit, vmap or grad ({', '.join(traced)} traced): it compares "
            "against finite differences in float64 on concrete values; call it outside the transformation"
        )
    params, x, y, key = on_one_device((native_tree(params, "params"), x, y, key), ("params", "x", "y", "key"))
    check_params_dtypes(params)  # an integer leaf has no gradient (jax.grad would refuse it, naming nothing)
    # arrays first, as fit takes them (nested lists too); NaN is welcome: the report says where it starts
    if getattr(x, "ndim", None) == 1:  # no samples axis: named before the sample counts, as fit names it
        raise rank_error("x", np.shape(x))
    inputs, targets = check_arrays(x, y, x_ndim=None, allow_nonfinite=True)
    if not jnp.issubdtype(inputs.dtype, jnp.inexact):  # integer pixels are real inputs, as in fit
        inputs = np.asarray(inputs, np.float64)
    loss = resolve_loss(loss, "manual")
    eps = real("eps", eps, lo=0.0, lo_open=True)
    rtol_autodiff, rtol_fd = _tolerance("rtol_autodiff", rtol_autodiff), _tolerance("rtol_fd", rtol_fd)
    if fd_max_entries is not None:
        fd_max_entries = _count("fd_max_entries", fd_max_entries)
    try:  # anything NumPy seeds a generator with: an int, a SeedSequence, a Generator, None
        rng = np.random.default_rng(seed)
    except (TypeError, ValueError) as bad_seed:
        raise type(bad_seed)(f"seed must be what numpy.random.default_rng takes (an int >= 0); got {seed!r}") from None
    train = key is not None
    # The targets against the loss, as value_and_grad's loss checks concrete ones (sparse labels
    # integers in [0, C)): the programs below trace y, so out of range or fractional labels
    # would pass unseen (one_hot of 3 among 3 classes is a zero row) and the report say passed.
    # x traced in the params' dtype (the check runs both in float64): float64 x against float32
    # params would be a mix of gradcheck's own, which jax_numpy_dtype_promotion="strict" refuses
    x_like = abstract_array(inputs.shape, input_dtype(params, inputs.dtype))
    check_params_and_x(net, params, inputs)  # fit's checks: the params' leaves or x named
    out = jax.eval_shape(lambda p, xx: net.apply(p, xx, key=key, train=train), params, x_like)
    _losses.check_targets(loss, targets, tuple(out.shape), name="y")
    # A custom loss given its own grad: jax.grad of the loss would run that very grad, so autodiff
    # differentiates its fn instead (its twin), an independent check of it, where jax can.
    twin = autodiff_twin(loss) if isinstance(loss, _losses.Loss) else loss
    programs = [_gradcheck_programs(for_programs(net), loss, train, twin)]
    if twin is not loss:
        programs.append(_gradcheck_programs(for_programs(net), loss, train))
    cast_from = _narrower("params", params) + _narrower("x", inputs)
    with jax.enable_x64(True):
        params64, x64 = _to_float64(params), _to_float64(inputs)
        y64 = _to_float64(targets)
        # read to the host explicitly, once (a caller's jax.transfer_guard("disallow") refuses np.asarray)
        independent = True
        try:
            both, shifted = programs[0]
            value, (g_manual, dx_manual), (g_auto, dx_auto) = jax.device_get(both(params64, x64, y64, key))
        except Exception:
            if len(programs) == 1:
                raise
            # its fn is not one jax can differentiate (a callback, an integer step): the slopes
            # alone judge its grad, as the docstring says
            independent = False
            both, shifted = programs[1]
            value, (g_manual, dx_manual), (g_auto, dx_auto) = jax.device_get(both(params64, x64, y64, key))
        err = input_gradient_error(net, dx_manual, x64, "gradcheck")
        if err is not None:
            raise err

        # Which flat entries to difference: all of a small leaf, a random subset of a large one.
        leaves = [*jax.tree.leaves(params64), x64]
        offsets = np.cumsum([0] + [leaf.size for leaf in leaves])
        chosen = []
        for leaf in leaves:
            idx = np.arange(leaf.size)
            if fd_max_entries is not None and leaf.size > fd_max_entries:
                idx = np.sort(rng.choice(leaf.size, fd_max_entries, replace=False))
            chosen.append(idx)
        all_idx = np.concatenate([offsets[i] + c for i, c in enumerate(chosen)])

        def difference(idx: np.ndarray, h: float) -> tuple[np.float64, np.ndarray]:
            """The loss at ``(params, x)`` and, per flat index, moved by ``+h`` and ``-h``."""
            # the host's indices and step go in, and the losses come back, explicitly
            f, f_pm = jax.device_get(shifted(params64, x64, y64, key, *jax.device_put((padded(idx), h))))
            return np.float64(f), np.asarray(f_pm, np.float64)[: idx.size]

        f0, f_h = difference(all_idx, eps) if all_idx.size else (np.float64(value), np.zeros((0, 2)))

    names = getattr(net, "names", tuple(f"layer_{i}" for i in range(len(params))))
    entries = []  # (layer, name, leaf, manual, autodiff)
    for layer_i, (pm, pa) in enumerate(zip(g_manual, g_auto, strict=True)):
        with_path, _ = jax.tree_util.tree_flatten_with_path(pm)
        for (path, gm), ga in zip(with_path, jax.tree.leaves(pa), strict=True):
            entries.append((layer_i, names[layer_i], _path_name(path), gm, ga))
    entries.append((-1, "input", "dx", dx_manual, dx_auto))
    as_np = [(np.asarray(m, np.float64), np.asarray(a, np.float64)) for *_, m, a in entries]
    # a NaN or inf gradient (or loss) makes NaN errors, which fail the rows: no warnings for them
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        scale = max(
            (max(np.max(np.abs(m), initial=0.0), np.max(np.abs(a), initial=0.0)) for m, a in as_np), default=0.0
        )
        floor_autodiff = 1e-3 * scale
        # finite differences' own rounding, relative to rtol_fd; rtol_fd = 0 asks for equality (an
        # inf floor, 0 / 0, would have passed every entry)
        rounding = 10 * np.finfo(np.float64).eps * max(abs(float(value)), 1.0) / eps
        floor_fd = max(1e-3 * scale, rounding / rtol_fd if rtol_fd > 0 else 0.0)

        manual_fd = np.concatenate([m.reshape(-1)[idx] for (m, _), idx in zip(as_np, chosen, strict=True)])
        fd = (f_h[:, 0] - f_h[:, 1]) / (2 * eps)
        bounds = np.cumsum([0] + [idx.size for idx in chosen])
        # each entry's tolerance: rtol_fd of its leaf's scale (see GradcheckReport)
        tol = np.empty_like(fd)
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            leaf_scale = max(np.max(np.abs(manual_fd[lo:hi]), initial=0.0), np.max(np.abs(fd[lo:hi]), initial=0.0))
            tol[lo:hi] = rtol_fd * max(leaf_scale, floor_fd)
        # and each entry's tolerance against autodiff, as judge_leaf's error takes it
        auto_fd = np.concatenate([a.reshape(-1)[idx] for (_, a), idx in zip(as_np, chosen, strict=True)])
        auto_tol = np.concatenate(
            [
                np.full(idx.size, rtol_autodiff * autodiff_scale(m, a, floor_autodiff))
                for (m, a), idx in zip(as_np, chosen, strict=True)
            ]
        )
        # An entry off either reference gets the second look, which finds kinks: at |x|'s kink
        # the central difference (0) agrees with sign(x)'s 0 and only jax.grad's 1 differs; both
        # are valid choices between the one-sided slopes -1 and 1.
        out = np.flatnonzero((np.abs(manual_fd - fd) > tol) | (np.abs(manual_fd - auto_fd) > auto_tol))
        # (a loss's own grad that jax.grad of it runs, its fn not differentiable: only the slopes
        # judge it at its kinks)
        agrees = independent & (np.abs(manual_fd - auto_fd) <= auto_tol)
        slopes = second_look(difference, all_idx, out, eps, f0, f_h, fd, tol, manual_fd, agrees)
        # Entries off autodiff that pass between the loss's one-sided slopes alone: a kink of one
        # sample (a target met exactly) makes them wide enough to hold the error of a piece that is
        # smooth there. Such an entry keeps its autodiff error where a piece that can spoil its row
        # is off jax.vjp of its own forward where that forward is smooth (no kink explains it).
        exempt, checks = np.ones(fd.size, bool), _NOT_RUN
        hull_only = between_slopes(manual_fd, slopes, tol) & (np.abs(manual_fd - auto_fd) > auto_tol)
        if hull_only.any():
            # each piece also judged sample by sample (and the loss element by element), which
            # only this verdict reads
            checks = local_checks(net, loss, train, (params64, x64, y64, key), floor_autodiff, apart=True)
            spoiled = spoiled_where_smooth(net, checks, rtol_autodiff)
            layer_of = np.repeat([e[0] for e in entries], [idx.size for idx in chosen])
            exempt = ~(hull_only & np.isin(layer_of, list(spoiled)))

        rows = []
        for (layer_i, layer_name, leaf, gm, _), (gm_np, ga_np), idx, lo, hi in zip(
            entries, as_np, chosen, bounds[:-1], bounds[1:], strict=True
        ):
            e_auto, e_fd, kinks, at_kinks_only = judge_leaf(
                gm_np.reshape(-1), ga_np.reshape(-1), idx, fd[lo:hi], slopes[lo:hi], tol[lo:hi], floor_autodiff,
                floor_fd, rtol_autodiff, rtol_fd, agrees[lo:hi], exempt[lo:hi],
            )  # fmt: skip
            rows.append(
                GradcheckRow(
                    layer=layer_i,
                    layer_name=layer_name,
                    leaf=leaf,
                    shape=tuple(np.shape(gm)),
                    manual_vs_autodiff=e_auto,
                    manual_vs_fd=e_fd,
                    fd_entries=int(idx.size),
                    passed=bool(e_auto <= rtol_autodiff and e_fd <= rtol_fd),
                    fd_kinks=kinks,
                    failed_at_kinks=at_kinks_only,
                )
            )
    args = (params64, x64, y64, key)
    non_finite_from = None
    if not (np.isfinite(value) and all(np.isfinite(m).all() and np.isfinite(a).all() for m, a in as_np)):
        non_finite_from = non_finite_start(net, train, args, float(value))
    at_fault: tuple[tuple[str, float], ...] | None = ()
    if non_finite_from is not None:
        at_fault = None  # NaN against NaN: no piece's derivative can be judged
    elif not all(r.passed for r in rows):
        failed = [r.layer for r in rows if not r.passed]
        if checks is _NOT_RUN:  # the pieces' own check runs once, for both uses
            checks = local_checks(net, loss, train, args, floor_autodiff)
        at_fault = culprits(net, checks, failed, rtol_autodiff)
    passed = all(r.passed for r in rows)
    return GradcheckReport(
        tuple(rows), float(value), rtol_autodiff, rtol_fd, float(floor_autodiff), float(floor_fd), at_fault,
        non_finite_from, cast_from, _not_float64(net, train, params64, x64, key) if not passed else (),
    )  # fmt: skip


def _not_float64(net: Any, train: bool, params64: Any, x64: Any, key: Any) -> tuple[str, ...]:
    """The layers of ``net`` whose output is floating but not float64 at the checked point (a
    forward that casts to a fixed float32): their finite differences carry that rounding, which
    no float64 check can tell from a wrong gradient. Traced, nothing runs."""
    if not isinstance(net, Network):
        return ()
    with jax.enable_x64(True):
        cache = jax.eval_shape(lambda p, xx: net.forward(p, xx, key=key, train=train)[1], params64, x64)
    dtypes = getattr(cache, "dtypes", ())[1:]
    return tuple(
        f"{name} ({jnp.dtype(d)})"
        for name, d in zip(net.names, dtypes, strict=False)
        if jnp.issubdtype(d, jnp.floating) and jnp.dtype(d) != jnp.float64
    )
