"""Where a failed gradcheck's wrong gradient starts: each piece of the network (every layer,
nested networks' too, and the loss) checked alone against autodiff of its own forward, at its
own input and given autodiff's cotangent of its output, so that no piece's mistake reaches
another; and, where the loss or a gradient is not finite, where the forward pass stops being
finite. Compiled only when a check has failed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from fnn._cache import structural_cache
from fnn.layers import Layer, Network
from fnn.losses._custom import autodiff_twin

Array = jax.Array


def _probe(net: Network) -> Network:
    """``net`` whose every layer (nested networks' too) keeps its input and key beside its
    cache, for :func:`_local_program`."""
    return Network(tuple(_recording(layer) for layer in net.layers), net.names, net.name)


def _recording(layer: Any) -> Layer:
    inner = _probe(layer) if isinstance(layer, Network) else layer

    def forward(params: Any, x: Array, *, key: Array | None = None, train: bool = False) -> tuple[Array, Any]:
        y, cache = inner.forward(params, x, key=key, train=train)
        return y, (cache, x, key)

    def backward(params: Any, record: Any, dy: Array) -> tuple[Any, Array]:
        return inner.backward(params, record[0], dy)

    return Layer(inner.init_with_shape, forward, backward, layer.name, layer.needs_key)


def _disagreement(a: Any, b: Any, floor: Array) -> Array:
    """The largest relative difference of two trees of one structure, each leaf's
    ``max|a - b|`` against its own scale ``max(|a|, |b|, floor)`` (a param's gradient thousands of
    times smaller than the input's is judged on its own: the input's scale hid it); a NaN or inf
    where the other has none is an infinite difference (a hand-written 0/0 is a common mistake)."""
    errors = [jnp.zeros(())]
    for m, r in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        same = (m == r) | (jnp.isnan(m) & jnp.isnan(r))
        d = jnp.where(same, 0.0, jnp.abs(m - r))
        d = jnp.max(jnp.where(jnp.isnan(d), jnp.inf, d), initial=0.0)
        finite = lambda v: jnp.where(jnp.isfinite(v), jnp.abs(v), 0.0)
        scale = jnp.maximum(jnp.maximum(jnp.max(finite(m), initial=0.0), jnp.max(finite(r), initial=0.0)), floor)
        errors.append(jnp.where(d == 0, 0.0, d / scale))
    return jnp.max(jnp.stack(errors))


# The coordinates of d (the largest) whose own one-sided slopes must agree too: units kinked at
# once with cotangents of opposite sign can cancel along d while each kinks along its own.
_COORDINATES = 32
# The loss's gradient checked one output element at a time, at most this many (the largest
# differences from autodiff's first); each layer's with one sample's cotangent at a time, at
# most this many samples (the largest cotangents first).
_ELEMENTS = 256
_SAMPLES = 64


def _slopes_along(phi: Callable[[Array], Array], unravel: Callable, fz: Array, d: Array, h: Array, f0: Array) -> tuple:
    """``phi``'s one-sided slopes ``(right, left)`` at ``fz`` along ``d``, each from steps ``h``
    and ``h / 2``, extrapolated (Richardson)."""
    f = [phi(unravel(fz + t * d)) for t in (h, -h, h / 2, -h / 2)]
    right = 2 * (f[2] - f0) / (h / 2) - (f[0] - f0) / h
    left = 2 * (f0 - f[3]) / (h / 2) - (f0 - f[1]) / h
    return right, left


def _off_where_smooth(phi: Callable[[Array], Array], z: Any, manual: Any, auto: Any) -> Array:
    """Whether a piece's hand-written ``manual`` VJP is off ``jax.vjp``'s ``auto`` where its forward
    is smooth: ``phi(t)``, the cotangent's product with the forward at ``z + t d`` (``d = manual -
    auto``), has one slope ``s`` on both sides of 0, and so has ``phi`` along each of the
    coordinates where ``d`` is largest, and ``<manual, d>`` is off ``s`` by ``|d|^2`` (``<auto,
    d>`` is ``s`` where the forward is differentiable). At a kink of the piece, along ``d`` or
    along one of those coordinates (two kinked units of opposite cotangents cancel along ``d``),
    the sides part and both choices stand, so only a derivative that no kink can explain is
    flagged; a difference too small for the steps to resolve is not flagged either."""
    fz, unravel = ravel_pytree(z)
    fm, fa = ravel_pytree(manual)[0], ravel_pytree(auto)[0]
    if fz.size == 0 or fm.size != fz.size or not jnp.issubdtype(fz.dtype, jnp.floating):
        return jnp.bool_(False)
    d = fm - fa
    dd, big = jnp.vdot(d, d), jnp.max(jnp.abs(d), initial=0.0)
    scale = jnp.maximum(1.0, jnp.max(jnp.abs(fz), initial=0.0))
    f0 = phi(unravel(fz))
    right, left = _slopes_along(phi, unravel, fz, d, 1e-6 * scale / jnp.where(big > 0, big, 1.0), f0)
    smooth = jnp.abs(right - left) <= 0.01 * dd
    off = jnp.abs(jnp.vdot(fm, d) - (right + left) / 2) >= 0.75 * dd
    top = jnp.argsort(-jnp.abs(d))[: min(_COORDINATES, fz.size)]
    unit = jax.nn.one_hot(top, fz.size, dtype=fz.dtype)
    r, lft = jax.vmap(lambda e: _slopes_along(phi, unravel, fz, e, 1e-6 * scale, f0))(unit)
    kinked = jnp.any((jnp.abs(r - lft) > 0.1 * jnp.abs(d[top])) & (d[top] != 0))
    return (big > 0) & smooth & off & ~kinked & jnp.isfinite(right) & jnp.isfinite(left)


def _local_pieces(
    net: Network, params: Any, records: Any, dy: Array, train: bool, prefix: str, floor: Array, apart: bool
) -> tuple[list, Array]:
    """Each layer's ``(name, relative difference, (params' off, dx off) where smooth)`` against
    ``jax.vjp`` of its own forward (:func:`_disagreement`, :func:`_off_where_smooth`), from the last layer down
    (inside nested networks too), each given autodiff's cotangent; and the cotangent of the
    network's input."""
    found: list = []
    for layer, name, p, (cache, x_in, k) in reversed(list(zip(net.layers, net.names, params, records, strict=True))):
        if isinstance(layer, Network):
            inner, dy = _local_pieces(layer, p, cache, dy, train, f"{prefix}{name}/", floor, apart)
            found = inner + found
            continue
        manual = layer.backward(p, cache, dy)
        forward = lambda pp, xx, layer=layer, k=k: layer.forward(pp, xx, key=k, train=train)[0]
        vjp = jax.vjp(forward, p, x_in)[1]
        auto = vjp(dy)
        off = _off_for(forward, p, x_in, dy, manual, auto)
        # and sample by sample (the cotangent of one sample's output alone: a backward is the VJP
        # for any cotangent): a kink of one sample (a blank input row, a zero bias) parts the
        # slopes along the whole difference, which hid a mistake made on another, smooth sample
        # (``apart``: where an entry passes between the slopes alone; at most _SAMPLES samples,
        # those of the largest cotangents, each one a pass over the batch)
        n = dy.shape[0] if dy.ndim else 0
        if apart and n > 1:
            rows = jnp.arange(n).reshape((n,) + (1,) * (dy.ndim - 1))
            largest = jnp.argsort(-jnp.sum(jnp.abs(dy).reshape(n, -1), axis=1))[: min(n, _SAMPLES)]

            def one_sample(i, layer=layer, forward=forward, vjp=vjp, p=p, x_in=x_in, cache=cache, dy=dy, rows=rows):
                dy_i = jnp.where(rows == i, dy, jnp.zeros_like(dy))
                return _off_for(forward, p, x_in, dy_i, layer.backward(p, cache, dy_i), vjp(dy_i))

            off = off | jnp.any(jax.lax.map(one_sample, largest), axis=0)
        found.insert(0, (f"{prefix}{name}", _disagreement(tuple(manual), auto, floor), off))
        dy = auto[1]
    return found, dy


def _off_for(forward: Callable, p: Any, x_in: Array, dy: Array, manual: Any, auto: Any) -> Array:
    """A layer's ``(params' gradient off, dx off)`` where its forward is smooth, for the cotangent
    ``dy`` (:func:`_off_where_smooth` of ``<dy, forward>``), each judged apart: a wrong dparams
    spoils this layer's rows alone."""
    phi = lambda z: jnp.vdot(dy, forward(*z))
    mixed = ((manual[0], auto[1]), (auto[0], manual[1]))
    return jnp.stack([_off_where_smooth(phi, (p, x_in), m, auto) for m in mixed])


def _piece_names(net: Network, prefix: str = "") -> list[str]:
    """The names :func:`_local_pieces` reports, in order (``"outer/inner"`` inside a nested network)."""
    return [name for name, _ in _pieces_with_layer(net, prefix)]


def _pieces_with_layer(net: Network, prefix: str = "") -> list[tuple[str, int]]:
    """Each piece's name and the index of the top-level layer it sits in, by position (names
    may repeat or hold a slash)."""
    pieces: list[tuple[str, int]] = []
    for i, (layer, name) in enumerate(zip(net.layers, net.names, strict=True)):
        inner = _piece_names(layer, f"{prefix}{name}/") if isinstance(layer, Network) else [f"{prefix}{name}"]
        pieces += [(piece, i) for piece in inner]
    return pieces


@structural_cache(maxsize=32)
def _local_program(net: Network, loss: Any, train: bool, apart: bool) -> Callable:
    """Each piece's own derivative against ``jax.vjp`` of its own forward, alone: every layer at
    its input and given autodiff's cotangent of its output (from the loss down, so no piece's
    mistake reaches another), and the loss's gradient against ``jax.grad`` of its function;
    the relative differences (each output against its own scale, at least ``floor``) in the order
    of :func:`_piece_names`, then the loss's, and where each one's params' gradient and its input
    gradient (the loss's: its gradient) are off where its forward is smooth.
    Compiled only when a check fails or passes on kinks alone: it says where the wrong gradient
    starts."""
    probe = _probe(net)
    reference = autodiff_twin(loss)

    @jax.jit
    def local(params: Any, x: Array, y: Array, key: Array | None, floor: Array) -> tuple[Array, Array]:
        y_pred, records = probe.forward(params, x, key=key, train=train)
        dy = jax.grad(lambda yp: reference(y, yp))(y_pred)
        pieces, _ = _local_pieces(net, params, records, dy, train, "", floor, apart)
        grad = loss.value_and_grad(y, y_pred)[1]
        phi = lambda yp: reference(y, yp)
        off = _off_where_smooth(phi, y_pred, grad, dy)
        # and element by element, the largest differences first: kinks met on several samples
        # and outputs (a target met exactly on each) part the slopes along the whole difference,
        # which hid a grad off on the smooth elements
        size = y_pred.size
        if apart and size > 1:
            flat_index = jnp.arange(size).reshape(y_pred.shape)
            largest = jnp.argsort(-jnp.abs(grad - dy).reshape(-1))[: min(size, _ELEMENTS)]

            def one_element(j):
                return _off_where_smooth(phi, y_pred, jnp.where(flat_index == j, grad, dy), dy)

            off = off | jnp.any(jax.lax.map(one_element, largest))
        pieces.append(("loss", _disagreement(grad, dy, floor), jnp.stack([jnp.bool_(False), off])))
        return jnp.stack([e for _, e, _ in pieces]), jnp.stack([o for *_, o in pieces])

    return local


def _piece_inputs(net: Network, records: Any) -> list:
    """Each piece's input from :func:`_probe`'s records, in the order of :func:`_piece_names`."""
    inputs: list = []
    for layer, (cache, x_in, _) in zip(net.layers, records, strict=True):
        inputs += _piece_inputs(layer, cache) if isinstance(layer, Network) else [x_in]
    return inputs


def _all_finite(tree: Any) -> Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(v)) for v in jax.tree.leaves(tree)] or [jnp.bool_(True)]))


@structural_cache(maxsize=32)
def _finite_program(net: Network, train: bool) -> Callable:
    """Whether each piece's output is finite, in the order of :func:`_piece_names` (a piece's
    output is the next one's input; the last one's, the network's)."""
    probe = _probe(net)

    @jax.jit
    def outputs_finite(params: Any, x: Array, key: Array | None) -> Array:
        y_pred, records = probe.forward(params, x, key=key, train=train)
        outputs = [*_piece_inputs(net, records)[1:], y_pred]
        return jnp.stack([_all_finite(o) for o in outputs])

    return outputs_finite


def non_finite_start(net: Network, train: bool, args: tuple, loss_value: float) -> str | None:
    """Where the forward pass at the checked ``args`` (``(params, x, y, key)``) stops being
    finite: ``"input"`` if ``x`` holds a NaN or inf, else the first piece whose output holds
    one (its input is finite), else ``"y"`` if the targets hold one, else ``"loss"`` if
    ``loss_value`` is not finite, else ``"params"`` if a param holds one that the forward
    absorbed; None where all of them are finite. A network of the user's own (not a
    :class:`~fnn.Network`) is not looked into: ``"params or y"`` or None."""
    params, x, y, key = args
    if not _finite_tree(x):
        return "input"
    if not isinstance(net, Network):  # a network of the user's own: no pieces to look into
        return None if _finite_tree((params, y)) else "params or y"
    with jax.enable_x64(True):
        finite = np.asarray(jax.device_get(_finite_program(net, train)(params, x, key)))
    pieces = _piece_names(net)
    if not finite.all():
        # the last flag is the network's output: a network without layers passes x through
        return pieces[int(np.argmin(finite))] if pieces else "input"
    if not _finite_tree(y):
        return "y"
    if not np.isfinite(loss_value):
        return "loss"
    # a finite forward can still hide a NaN or inf param (tanh absorbs an inf weight; its
    # gradient is 0 * inf)
    return None if _finite_tree(params) else "params"


def _finite_tree(tree: Any) -> bool:
    # read explicitly: a caller's jax.transfer_guard("disallow") refuses np.asarray of a device array
    return all(np.all(np.isfinite(np.asarray(v))) for v in jax.tree.leaves(jax.device_get(tree)))


def local_checks(net: Network, loss: Any, train: bool, args: tuple, floor: float, apart: bool = False) -> tuple | None:
    """:func:`_local_program`'s results on the checked ``args`` (``(params, x, y, key)``), run
    once for :func:`spoiled_where_smooth` and :func:`culprits` alike: each piece's relative
    error and whether its params' and input gradients are off where it is smooth (``apart``:
    also with each sample's cotangent alone, and the loss's gradient element by element, which
    :func:`spoiled_where_smooth` reads; ``culprits`` reads the errors alone). None if a piece
    cannot be differentiated alone."""
    floor = floor if np.isfinite(floor) else 0.0  # a NaN gradient makes the check's own floor NaN
    try:
        with jax.enable_x64(True):
            program = _local_program(net, loss, train, apart)
            errors, off = jax.device_get(program(*args, jax.device_put(np.float64(floor))))
    except Exception:  # a piece jax cannot differentiate alone: the report stands, no culprit named
        return None
    return np.asarray(errors, np.float64), np.asarray(off, bool)


def spoiled_where_smooth(net: Network, checks: tuple | None, rtol: float) -> set[int]:
    """The top-level layer indices (-1 the input's) of the rows a piece spoils whose derivative
    is off ``jax.vjp`` of its own forward beyond ``rtol`` where that forward is smooth along
    their difference (``checks``: :func:`local_checks`), wrong whatever the kinks elsewhere: its
    params' gradient its own rows, its input gradient (the loss's gradient) every row before it
    too (for entries that pass between the loss's one-sided slopes, which the error of a smooth
    piece can land between)."""
    if checks is None:
        return set()
    spoiled: set[int] = set()
    for (_, i), e, (params_off, input_off) in zip(
        [*_pieces_with_layer(net), ("loss", len(net.layers))], *checks, strict=True
    ):
        if e > rtol:
            spoiled |= ({i} if params_off else set()) | (set(range(-1, i + 1)) if input_off else set())
    return spoiled


def culprits(
    net: Network, checks: tuple | None, failed: list[int], rtol: float
) -> tuple[tuple[str, float], ...] | None:
    """The pieces whose own derivative is off (``checks``: :func:`local_checks`, each output
    relative to its own scale, at least the check's floor) and that can explain a failed row
    (``failed``: the failed rows' layer indices, -1 for the input's): a layer's mistake spoils
    its own rows and those of the layers before it (and the input's), never a later layer's; the
    loss's, every row. None if a piece cannot be differentiated alone."""
    if checks is None:
        return None
    pieces = [*_pieces_with_layer(net), ("loss", len(net.layers))]
    return tuple(
        (name, float(e))
        for (name, i), e in zip(pieces, checks[0], strict=True)
        if e > rtol and any(j <= i for j in failed)
    )
