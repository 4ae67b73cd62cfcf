"""Gradients of ``loss(y, net(params, x))``: hand-written backprop, ``jax.grad``, and a check of both.

* :func:`value_and_grad` gives ``(params, x, y) -> (loss, grads)`` computed either by the
  network's hand-written reverse pass (``mode="manual"``: forward with caches, the loss's own
  gradient w.r.t. ``y_pred``, then ``net.backward``) or by ``jax.value_and_grad`` of the same
  composition (``mode="autodiff"``).
* :func:`gradcheck` compares the two, and both against central finite differences, in float64,
  leaf by leaf, and names the layer where they disagree.
* :func:`with_manual_vjp` turns the hand-written backward into a ``jax.custom_vjp`` rule, so any
  JAX code that differentiates through the network runs our reverse pass.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from fnn import losses as _losses
from fnn._cache import structural_cache
from fnn._compat import float64
from fnn._validate import boolean, real
from fnn.layers import Network

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = ["value_and_grad", "gradcheck", "GradcheckReport", "GradcheckRow", "with_manual_vjp", "MODES"]

MODES = ("manual", "autodiff")
"""The values of ``mode``: the hand-written backward pass, or ``jax.grad`` of the same function."""


def _resolve_loss(loss: Any, mode: str) -> Any:
    if isinstance(loss, str):
        return _losses.get(loss)
    if isinstance(loss, _losses.Loss):
        return loss
    if mode == "manual":
        raise TypeError(
            "loss must be a loss name or an fnn.losses.Loss (which carries its hand-written gradient) "
            f"for mode='manual'; got {type(loss).__name__}. Plain callables work with mode='autodiff'."
        )
    if not callable(loss):
        raise TypeError(f"loss must be a loss name, an fnn.losses.Loss or a callable, got {type(loss).__name__}")
    return loss


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def value_and_grad(
    net: Network,
    loss: str | _losses.Loss | Callable,
    mode: str = "manual",
    *,
    train: bool = True,
    return_output: bool = False,
) -> Callable:
    """``f(params, x, y, *, key=None, sample_weight=None) -> (loss_value, grads)``.

    ``grads`` has the structure of ``params``. ``mode="manual"`` runs the hand-written chain
    rule ``dL/dparams = net.backward(params, cache, dL/dy_pred)``; ``mode="autodiff"`` is
    ``jax.value_and_grad`` of ``loss(y, net.apply(params, x))``. ``train`` is the layers'
    train switch (Dropout then needs ``key``). With ``return_output=True`` the function
    returns ``(loss_value, grads, y_pred)`` (training metrics reuse the forward pass).
    The function is pure and jittable.

    Args:
        net: The network (:func:`fnn.serial`, :func:`fnn.mlp`), or any object with the
            ``forward``/``backward``/``apply`` of a :class:`fnn.Network`.
        loss: A loss name, an :class:`fnn.losses.Loss`, or (``mode="autodiff"`` only) any
            callable ``(y_true, y_pred) -> scalar``.
        mode: ``"manual"`` (the hand-written backward) or ``"autodiff"`` (``jax.grad``).
        train: The layers' train switch (Dropout is active in training and then needs ``key``).
        return_output: Also return the network's output ``y_pred``.

    Returns:
        ``f(params, x, y, *, key=None, sample_weight=None)`` returning ``(loss_value, grads)``, or
        ``(loss_value, grads, y_pred)`` with ``return_output``.

    Raises:
        ValueError: For an unknown ``mode`` or loss name.
        TypeError: For a loss that is not a name or a Loss with ``mode="manual"`` (it carries no
            hand-written gradient), or not callable with ``mode="autodiff"``.

    Examples:
        >>> import fnn, jax, jax.numpy as jnp
        >>> net = fnn.mlp([3, 2], activation="tanh")
        >>> params = net.init(jax.random.PRNGKey(0), (4,))
        >>> x, y = jnp.ones((5, 4)), jnp.array([0, 1, 0, 1, 1])
        >>> loss = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)
        >>> value, grads = jax.jit(fnn.value_and_grad(net, loss))(params, x, y)
        >>> value2, grads2 = jax.jit(fnn.value_and_grad(net, loss, mode="autodiff"))(params, x, y)
        >>> bool(jnp.allclose(grads[0]["w"], grads2[0]["w"])), grads[1]["b"].shape
        (True, (2,))
    """
    _check_mode(mode)
    loss_fn = _resolve_loss(loss, mode)

    if mode == "manual":

        def manual(params, x, y, *, key=None, sample_weight=None):
            y_pred, cache = net.forward(params, x, key=key, train=train)
            value, dy = loss_fn.value_and_grad(y, y_pred, sample_weight=sample_weight)
            grads, _ = net.backward(params, cache, dy)  # the input gradient is dead code under jit
            return (value, grads, y_pred) if return_output else (value, grads)

        return manual

    def autodiff(params, x, y, *, key=None, sample_weight=None):
        def objective(p):
            y_pred = net.apply(p, x, key=key, train=train)
            if sample_weight is None:
                return loss_fn(y, y_pred), y_pred
            return loss_fn(y, y_pred, sample_weight=sample_weight), y_pred

        (value, y_pred), grads = jax.value_and_grad(objective, has_aux=True)(params)
        return (value, grads, y_pred) if return_output else (value, grads)

    return autodiff


_FORWARD_MODE = (
    "fnn.with_manual_vjp: forward-mode differentiation (jax.jvp, jax.jacfwd, jax.linearize of the "
    "function itself) cannot run a hand-written backward pass, which is reverse mode. What works: "
    "jax.grad, jax.vjp, jax.jacrev, forward-over-reverse such as jax.jvp(jax.grad(f)) for "
    "Hessian-vector products, and jax.hessian. For forward mode differentiate net.apply instead."
)


def with_manual_vjp(net: Network, *, train: bool = False) -> Callable:
    """``apply(params, x, *, key=None, train=train) -> y``, as ``net.apply``, whose derivative under
    ``jax.grad``/``jax.vjp`` (reverse mode) is the network's hand-written backward, registered
    with ``jax.custom_vjp``.

    ``train`` (default: the value given here) switches the layers' training mode and ``key``
    feeds Dropout, per call, exactly as in ``net.apply``. Reverse mode, ``jax.jacrev``,
    forward-over-reverse (``jax.jvp(jax.grad(f))``) and ``jax.hessian`` work; plain forward mode
    (``jax.jvp``, ``jax.jacfwd`` of the function itself) does not and says so.

    Args:
        net: The network.
        train: The default of the returned function's ``train`` keyword.

    Returns:
        ``apply(params, x, *, key=None, train=train) -> y``.

    Raises:
        TypeError: When called with a ``train`` that is not a bool; under forward-mode
            differentiation (the message says what works instead).

    Examples:
        >>> import fnn, jax, jax.numpy as jnp
        >>> net = fnn.mlp([2], activation="relu")
        >>> params = net.init(jax.random.PRNGKey(0), (3,))
        >>> apply = fnn.with_manual_vjp(net)
        >>> x = jnp.ones((4, 3))
        >>> g = jax.jit(jax.grad(lambda p: jnp.sum(apply(p, x))))(params)  # runs net.backward
        >>> g[0]["w"].shape
        (3, 2)
    """
    default_train = boolean("train", train)

    @functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
    def run(params, x, key, train):
        return net.forward(params, x, key=key, train=train)[0]

    def fwd(params, x, key, train):
        y, cache = net.forward(params, x, key=key, train=train)
        return y, (params, cache)

    def bwd(train, res, dy):
        params, cache = res
        dparams, dx = net.backward(params, cache, dy)
        return dparams, dx, None

    run.defvjp(fwd, bwd)

    def apply(params: Any, x: Any, *, key: Array | None = None, train: bool = default_train) -> Array:
        try:
            return run(params, x, key, boolean("train", train))
        except TypeError as e:
            if "custom_vjp" in str(e) and "forward-mode" in str(e):
                raise TypeError(_FORWARD_MODE) from None
            raise

    return apply


# --------------------------------------------------------------------------------------------
# gradcheck
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GradcheckRow:
    """One parameter leaf (or the input, ``layer_name="input"``, ``leaf="dx"``): how far the
    manual gradient is from autodiff and from finite differences.

    Attributes:
        layer: The layer's index (-1 for the input row).
        layer_name: The layer's name in the network (``dense_0``...), or ``"input"``.
        leaf: The leaf's path inside the layer's params (``w``, ``b``...), or ``"dx"``.
        shape: The leaf's shape.
        manual_vs_autodiff: The relative error of the manual gradient against ``jax.grad``.
        manual_vs_fd: The relative error against central finite differences.
        fd_entries: How many entries were finite-differenced.
        passed: Both errors within their tolerances.
    """

    layer: int
    layer_name: str
    leaf: str
    shape: tuple[int, ...]
    manual_vs_autodiff: float
    manual_vs_fd: float
    fd_entries: int
    passed: bool


@dataclass(frozen=True)
class GradcheckReport:
    """Result of :func:`gradcheck`. ``passed`` is the overall verdict; ``str(report)`` is a table.

    An error is ``max|a - b| / max(max|a|, max|b|, floor)`` over a leaf: relative to the leaf's
    scale, which stays meaningful where single entries are (near) 0, and to an absolute floor
    where the whole leaf is (near) 0, as ``atol`` does in ``torch.autograd.gradcheck``. The
    floors are stated in the report: ``floor_autodiff`` is 1e-3 of the largest gradient entry of
    the whole check; ``floor_fd`` the same, or finite differences' own rounding
    (``10 eps_float64 max(|loss|, 1) / (h rtol_fd)``) if larger.

    Attributes:
        rows: One :class:`GradcheckRow` per parameter leaf, then the input's.
        loss_value: The loss at the checked point (float64).
        rtol_autodiff: The tolerance against autodiff.
        rtol_fd: The tolerance against finite differences.
        floor_autodiff: The absolute floor of the errors against autodiff.
        floor_fd: The absolute floor of the errors against finite differences.
    """

    rows: tuple[GradcheckRow, ...]
    loss_value: float
    rtol_autodiff: float
    rtol_fd: float
    floor_autodiff: float = 0.0
    floor_fd: float = 0.0

    @property
    def passed(self) -> bool:
        """True if every row passed (``bool(report)`` is the same).

        Returns:
            The verdict.
        """
        return all(r.passed for r in self.rows)

    @property
    def max_error_autodiff(self) -> float:
        """The largest relative error against autodiff over the rows.

        Returns:
            The error (0 without rows).
        """
        return max((r.manual_vs_autodiff for r in self.rows), default=0.0)

    @property
    def max_error_fd(self) -> float:
        """The largest relative error against finite differences over the rows.

        Returns:
            The error (0 without rows).
        """
        return max((r.manual_vs_fd for r in self.rows), default=0.0)

    @property
    def failed_layers(self) -> list[str]:
        """The layers where a row failed.

        Returns:
            Their names, sorted (``"input"`` for the input row).
        """
        return sorted({r.layer_name for r in self.rows if not r.passed})

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        head = ("layer", "param", "shape", "manual vs autodiff", "manual vs FD", "FD entries", "")
        body = [
            (
                r.layer_name,
                r.leaf,
                "x".join(map(str, r.shape)) or "()",
                f"{r.manual_vs_autodiff:.2e}",
                f"{r.manual_vs_fd:.2e}",
                str(r.fd_entries),
                "ok" if r.passed else "FAIL",
            )
            for r in self.rows
        ]
        widths = [max(len(str(c)) for c in col) for col in zip(head, *body, strict=True)]
        fmt = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
        lines = [fmt(head), fmt(["-" * w for w in widths])] + [fmt(b) for b in body]
        verdict = "PASSED" if self.passed else f"FAILED in {', '.join(self.failed_layers)}"
        lines.append(
            f"gradcheck {verdict}: max relative error {self.max_error_autodiff:.2e} vs autodiff "
            f"(rtol {self.rtol_autodiff:g}), {self.max_error_fd:.2e} vs finite differences "
            f"(rtol {self.rtol_fd:g}); loss {self.loss_value:.6g}"
        )
        lines.append(
            f"(errors relative to max(|leaf|, floor); floor {self.floor_autodiff:.1e} vs autodiff, "
            f"{self.floor_fd:.1e} vs finite differences; the input gradient is the row 'input dx')"
        )
        return "\n".join(lines)


def _path_name(path: Any) -> str:
    parts = [str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k)))) for k in path]
    return ".".join(parts) or "-"


def _rel_error(a: np.ndarray, b: np.ndarray, floor: float = 0.0) -> float:
    scale = max(np.max(np.abs(a), initial=0.0), np.max(np.abs(b), initial=0.0), floor)
    if scale == 0.0:
        return 0.0
    return float(np.max(np.abs(a - b), initial=0.0) / scale)


def _to_float64(tree: Any) -> Any:
    """Floating leaves as float64 (call with x64 on); host data converted on the host."""

    def one(a: Any) -> Any:
        if isinstance(a, jax.Array):
            return a.astype(jnp.float64) if jnp.issubdtype(a.dtype, jnp.floating) else a
        a = np.asarray(a)
        return jax.device_put(a.astype(np.float64) if np.issubdtype(a.dtype, np.floating) else a)

    return jax.tree.map(one, tree)


@structural_cache(maxsize=32)
def _gradcheck_programs(net: Network, loss: Any, train: bool) -> tuple[Callable, Callable]:
    """gradcheck's two compiled programs for a network and loss, kept (keyed on structure) so
    that checking the same network again compiles nothing: the manual and autodiff gradients
    with respect to params AND the input, and central differences over flat indices of
    ``(params, x)``."""

    @jax.jit
    def both(params, x, y, key):
        y_pred, cache = net.forward(params, x, key=key, train=train)
        value, dy = loss.value_and_grad(y, y_pred)
        g_manual, dx_manual = net.backward(params, cache, dy)
        objective = lambda p, xx: loss(y, net.apply(p, xx, key=key, train=train))
        g_auto, dx_auto = jax.grad(objective, argnums=(0, 1))(params, x)
        return value, (g_manual, dx_manual), (g_auto, dx_auto)

    @jax.jit
    def central(params, x, y, key, indices, eps):
        flat, unravel = ravel_pytree((params, x))

        def one(i):
            e = jnp.zeros_like(flat).at[i].set(eps)
            plus = loss(y, net.apply(*unravel(flat + e), key=key, train=train))
            minus = loss(y, net.apply(*unravel(flat - e), key=key, train=train))
            return (plus - minus) / (2 * eps)

        return jax.lax.map(one, indices, batch_size=128)

    return both, central


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
    ``(L(p + eps e_i) - L(p - eps e_i)) / (2 eps)``; errors are relative with an absolute floor
    (see :class:`GradcheckReport`). Leaves (and inputs) with more than ``fd_max_entries``
    entries are finite-differenced on a random subset of that size (drawn from ``seed``).
    With ``key`` given, Dropout runs in training mode with that fixed key (the same mask for
    every evaluation, so finite differences stay consistent).

    Args:
        net: The network.
        loss: A loss name or an :class:`fnn.losses.Loss` (it must carry its hand-written gradient).
        params: The network's params (cast to float64 for the check).
        x: A (small) batch of inputs.
        y: Its targets.
        key: A PRNG key to run Dropout in training mode with a fixed mask; None: evaluation mode.
        eps: The finite-difference step h (> 0).
        rtol_autodiff: The largest relative error of manual vs autodiff that passes.
        rtol_fd: The largest relative error of manual vs finite differences that passes.
        fd_max_entries: Finite-difference at most this many entries per leaf (None: all).
        seed: Draws the subset of entries of a large leaf.

    Returns:
        A :class:`GradcheckReport`: one row per parameter leaf and one for the input, the verdict
        in ``passed``, and a table as ``str(report)``.

    Raises:
        ValueError: For a ``eps`` that is not positive, an unknown loss name, or params that do
            not fit the network.
        TypeError: For a loss that is not a name or a Loss.

    Examples:
        >>> import fnn, jax, jax.numpy as jnp
        >>> net = fnn.mlp([2])
        >>> params = net.init(jax.random.PRNGKey(0), (3,))
        >>> x = jax.random.normal(jax.random.PRNGKey(1), (4, 3))
        >>> report = fnn.gradcheck(net, "mse", params, x, jnp.zeros((4, 2)))
        >>> report.passed, [(r.layer_name, r.leaf) for r in report.rows]
        (True, [('dense_0', 'b'), ('dense_0', 'w'), ('input', 'dx')])
    """
    loss = _resolve_loss(loss, "manual")
    eps = real("eps", eps, lo=0.0, lo_open=True)
    train = key is not None
    both, central = _gradcheck_programs(net, loss, train)
    with float64():
        params64, x64 = _to_float64(params), _to_float64(x)
        y64 = _to_float64(y)
        value, (g_manual, dx_manual), (g_auto, dx_auto) = both(params64, x64, y64, key)

        # Which flat entries to difference: all of a small leaf, a random subset of a large one.
        rng = np.random.default_rng(seed)
        leaves = [*jax.tree.leaves(params64), x64]
        offsets = np.cumsum([0] + [leaf.size for leaf in leaves])
        chosen = []
        for leaf in leaves:
            idx = np.arange(leaf.size)
            if fd_max_entries is not None and leaf.size > fd_max_entries:
                idx = np.sort(rng.choice(leaf.size, fd_max_entries, replace=False))
            chosen.append(idx)
        all_idx = np.concatenate([offsets[i] + c for i, c in enumerate(chosen)])
        fd_flat = np.asarray(central(params64, x64, y64, key, all_idx, eps)) if all_idx.size else np.zeros(0)

    names = getattr(net, "names", tuple(f"layer_{i}" for i in range(len(params))))
    entries = []  # (layer, name, leaf, manual, autodiff)
    for layer_i, (pm, pa) in enumerate(zip(g_manual, g_auto, strict=True)):
        with_path, _ = jax.tree_util.tree_flatten_with_path(pm)
        for (path, gm), ga in zip(with_path, jax.tree.leaves(pa), strict=True):
            entries.append((layer_i, names[layer_i], _path_name(path), gm, ga))
    entries.append((-1, "input", "dx", dx_manual, dx_auto))
    as_np = [(np.asarray(m, np.float64), np.asarray(a, np.float64)) for *_, m, a in entries]
    scale = max((max(np.max(np.abs(m), initial=0.0), np.max(np.abs(a), initial=0.0)) for m, a in as_np), default=0.0)
    floor_autodiff = 1e-3 * scale
    floor_fd = max(1e-3 * scale, 10 * np.finfo(np.float64).eps * max(abs(float(value)), 1.0) / (eps * rtol_fd))

    rows = []
    pos = 0
    for (layer_i, layer_name, leaf, gm, _), (gm_np, ga_np), idx in zip(entries, as_np, chosen, strict=True):
        fd = fd_flat[pos : pos + idx.size]
        pos += idx.size
        e_auto = _rel_error(gm_np, ga_np, floor_autodiff)
        e_fd = _rel_error(gm_np.reshape(-1)[idx], fd, floor_fd)
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
            )
        )
    return GradcheckReport(tuple(rows), float(value), rtol_autodiff, rtol_fd, float(floor_autodiff), float(floor_fd))


def __dir__() -> list[str]:
    """The public API only (implementation imports stay out of ``dir``)."""
    return sorted(__all__)
