"""``predict``: the network's outputs over a data set, batch by batch, as one compiled program
cached on the network and the batch size (Keras's ``Model.predict``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn._cache import structural_cache
from fnn._native import native_tree
from fnn._network_checks import check_against_network
from fnn._placement import on_one_device
from fnn._validate import integer, is_traced
from fnn.layers._programs import for_programs
from fnn.train._data_checks import check_samples
from fnn.train._device_data import to_device

Array = jax.Array


def batched_apply(net: Any, params: Any, x: Array, batch_size: int) -> Array:
    """``net.apply(params, x)`` (eval mode) in batches of ``batch_size`` in order: the full ones
    in one scan (``lax.map``), then the rest, concatenated along the samples axis."""
    n = x.shape[0]
    nb, rem = divmod(n, batch_size)
    outs = []
    if nb:
        full = x[: nb * batch_size].reshape(nb, batch_size, *x.shape[1:])
        ys = jax.lax.map(lambda xb: net.apply(params, xb), full)
        outs.append(ys.reshape(nb * batch_size, *ys.shape[2:]))
    if rem:
        outs.append(net.apply(params, x[nb * batch_size :]))
    return outs[0] if len(outs) == 1 else jnp.concatenate(outs, axis=0)


@structural_cache(maxsize=32)
def _compiled(net: Any, batch_size: int) -> Callable:
    return jax.jit(lambda params, x: batched_apply(net, params, x, batch_size))


def predict(net: Any, params: Any, x: Any, batch_size: int | None = 32) -> Any:
    """The outputs ``net.apply(params, x)`` in evaluation mode (Dropout off), computed in batches.

    Batches follow Keras's ``Model.predict``: ``batch_size`` samples each (default 32), in order,
    the last partial batch kept; the outputs are concatenated, so row ``i`` of the result is the
    output for ``x[i]``. The whole pass is ONE compiled program, cached on the network and the
    batch size (jit's own cache handles the shapes): a second call with the same shapes compiles
    nothing, and a new number of samples compiles the pass for it (~0.1-0.3 s on a 2-core CPU;
    to predict on many sizes, pad them to a few, or call ``jax.jit(net.apply)`` on batches of
    one size). Batching bounds the memory of the intermediate activations, not of ``x``.

    ``predict`` runs inside ``jax.jit``, ``jax.vmap``, ``jax.grad`` and ``lax.scan`` too, with
    the same outputs: under jax.jit/vmap the value checks are skipped for traced arguments; the
    structural checks run at trace time (shapes, dtypes, the params against the network,
    ``batch_size``, which must then be a Python int, e.g. a static argument). Concrete
    arguments keep their value checks (a NumPy ``x`` with NaN is refused under jit too).

    Args:
        net: The network (anything with ``apply(params, x)``, e.g. :func:`fnn.mlp`).
        params: Its parameters (``net.init``'s structure and shapes), on any device or
            replicated over a mesh (as ``fit(mesh=...)`` returns them, over many processes too:
            each uses its local copy); ``x`` follows them to their device.
        x: Inputs ``(samples, *input_shape)``: a jax array (on any device or mesh), a NumPy
            array or nested lists.
        batch_size: Samples per batch, an int >= 1 (``None``: 32); more than the samples is one
            batch.

    Returns:
        ``(samples, *output_shape)``: a jax array for a jax ``x`` (or traced params), otherwise
        a NumPy array; computed with floating ``x`` cast to the params' dtype, as :func:`fnn.fit`
        and :func:`fnn.evaluate` do (and Keras's ``predict``: float32 outputs for float64 data);
        a network without float params computes in ``x``'s dtype.

    Raises:
        TypeError: ``x`` not numeric; ``batch_size`` not an int.
        ValueError: ``x`` without a samples axis, empty, holding NaN/inf or finite values that
            overflow the params' dtype (1e39 for float32), or not fitting the network;
            ``params`` of another structure or shape than the network's, or holding a float64 jax
            array while ``jax_enable_x64`` is off (made while it was on); ``batch_size < 1``; an
            array split over processes (each holding part of it: gather it first).

    Examples:
        >>> import fnn, jax, numpy as np
        >>> net = fnn.mlp([4, 2])
        >>> params = net.init(jax.random.PRNGKey(0), (3,))
        >>> y = fnn.predict(net, params, np.ones((5, 3)), batch_size=2)  # batches of 2, 2 and 1
        >>> type(y).__name__, y.shape
        ('ndarray', (5, 2))
        >>> y_jit = jax.jit(lambda p, x: fnn.predict(net, p, x, batch_size=2))(params, np.ones((5, 3)))
        >>> bool(np.array_equal(y_jit, y))
        True
    """
    batch_size = integer("batch_size", 32 if batch_size is None else batch_size, 1)
    is_jax = isinstance(x, jax.Array)
    params, x = on_one_device((native_tree(params, "params"), x), ("params", "x"))
    x, _ = check_samples(x)
    # The params-vs-network and x-vs-network checks fit and evaluate make; with no targets, x
    # stands in for y (only its sample count is read, and it matches by construction).
    check_against_network(net, params, None, x, x, "x", "x")
    # in the params' dtype, as fit and evaluate compute (float64 NumPy data for float32 params
    # under x64 gave float64 outputs evaluate never scored)
    floating = [leaf.dtype for leaf in jax.tree.leaves(params) if jnp.issubdtype(leaf.dtype, jnp.floating)]
    if floating:  # a network without float params keeps x's dtype
        (x,) = to_device(floating[0], [x], ["x"], inputs=True)
    y = _compiled(for_programs(net), min(batch_size, x.shape[0]))(jax.device_put(params), x)  # explicit, as evaluate's
    if is_jax or is_traced(y):  # traced params and NumPy x (under the user's jit): no host copy yet
        return y
    return np.asarray(jax.device_get(y))  # explicit: a transfer guard allows it
