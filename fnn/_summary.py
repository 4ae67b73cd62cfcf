"""A network's summary, as Keras's ``model.summary()`` and torchinfo print it: one row per layer
(name, type, output shape, parameter count), nested networks expanded beneath their own row,
and the totals; and :func:`count_params` for any params pytree.

Shapes come from tracing (``jax.eval_shape``): nothing is allocated, run or compiled.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn import layers
from fnn._dtypes import floating_dtype
from fnn._keys import seed_key
from fnn._validate import eval_shape_or_run
from fnn._values import Static
from fnn.layers._base import as_shape

__all__ = ["LayerSummary", "Summary", "summary", "count_params"]


def count_params(params: Any) -> int:
    """The number of scalars in a params pytree: ``sum(prod(leaf.shape))`` over its leaves.

    ``len(params)`` is the number of layers of a :func:`fnn.serial` network;
    ``count_params(params)`` the number of weights (Keras's ``model.count_params()``).
    ``fnn.count_params(fnn.mlp([32, 10]).init(key, (20,)))`` is ``20*32 + 32 + 32*10 + 10 = 1002``.

    Args:
        params: A pytree of arrays (jax or NumPy, or ``jax.ShapeDtypeStruct``); Python numbers
            count one each.

    Returns:
        The total, an int (0 for a tree without leaves).

    Raises:
        TypeError: For a leaf that is neither an array nor a number.

    Examples:
        >>> import fnn, jax
        >>> params = fnn.mlp([32, 10]).init(jax.random.PRNGKey(0), (20,))
        >>> len(params), fnn.count_params(params)
        (2, 1002)
    """
    total = 0
    for leaf in jax.tree.leaves(params):
        shape = getattr(leaf, "shape", None)
        if shape is None:
            if not isinstance(leaf, (numbers.Number, np.generic)):
                raise TypeError(f"params must be a pytree of arrays; found a leaf of type {type(leaf).__name__}")
            total += 1
        else:
            total += math.prod(shape)
    return int(total)


class LayerSummary(NamedTuple):
    """One row of a :class:`Summary`.

    ``name`` is the layer's path in the network (``"dense_1"``; inside a nested network
    ``"serial_0/dense_1"``), ``kind`` its type (``"Dense"``, ``"Activation"``, ``"Dropout"``,
    ``"LayerNorm"``, ``"UnitNormalization"``, ``"Flatten"``, ``"Reshape"``, ``"Network"`` for a
    nested network, ``"Layer"`` for one of your own), ``output_shape`` its output with ``None``
    for the batch axis, ``params`` the number of scalars in its params (a nested network: all of
    its layers') and ``depth`` 0 for the network's own layers, one more per level of nesting.

    Attributes:
        name: The layer's path in the network, ``"/"``-separated.
        kind: Its type: ``"Dense"``, ``"Activation"``, ``"Dropout"``, ``"LayerNorm"``,
            ``"UnitNormalization"``, ``"Flatten"``, ``"Reshape"``, ``"Network"`` or ``"Layer"``.
        output_shape: Its output shape, ``None`` for the batch axis.
        params: The number of scalars in its params.
        depth: Its nesting level, 0 for the network's own layers.
    """

    name: str
    kind: str
    output_shape: tuple
    params: int
    depth: int


def _readable_bytes(n: float) -> str:
    """Keras's ``readable_memory_size``: ``3.91 KB`` (1024 to the unit)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024:
            return f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} PB"


@dataclasses.dataclass(frozen=True)
class Summary:
    """What :func:`summary` found; ``str()`` (and ``repr()``, so a REPL shows it) is the table.

    ``rows`` lists every layer in order (nested networks expanded after their own row). Every
    floating parameter trains (fnn has no frozen weights: freeze with
    :func:`fnn.optimizers.masked`), so ``total_params == trainable_params`` and
    ``non_trainable_params == 0`` unless a layer of your own keeps a non-floating array in its
    params (an integer mask: :func:`fnn.value_and_grad` gives it a ``float0`` gradient, and
    :func:`fnn.fit` refuses it), which counts as non-trainable, as Keras counts a weight that
    does not train. Shapes carry ``None`` for the batch axis.

    Attributes:
        name: The network's name.
        input_shape: The input shape, ``(None, *input_shape)``.
        output_shape: The network's output shape, ``(None, ...)``.
        rows: One :class:`LayerSummary` per layer, nested networks expanded.
        total_params: The number of scalars in the params.
        trainable_params: The scalars of the floating leaves (every one trains).
        non_trainable_params: The scalars of the other leaves (0 for fnn's own layers).
        param_bytes: The params' size in bytes, each leaf in its own dtype (``total_params``
            times the itemsize of ``dtype`` for fnn's own layers).
        trainable_bytes: The floating leaves' part of ``param_bytes``.
        dtype: The params' dtype, as a string (``"float32"``).
    """

    name: str
    input_shape: tuple
    output_shape: tuple
    rows: tuple[LayerSummary, ...]
    total_params: int
    trainable_params: int
    non_trainable_params: int
    param_bytes: int
    trainable_bytes: int
    dtype: str

    def __str__(self) -> str:
        """The table, as Keras prints it."""
        head = ("Layer (type)", "Output shape", "Params")
        cells = [
            ("  " * r.depth + f"{r.name.rsplit('/', 1)[-1]} ({r.kind})", str(r.output_shape), f"{r.params:,}")
            for r in self.rows
        ]
        widths = [max(len(head[i]), *(len(c[i]) for c in cells)) for i in range(3)]
        line = lambda c: f"{c[0]:<{widths[0]}}   {c[1]:<{widths[1]}}   {c[2]:>{widths[2]}}"
        rule = "=" * (sum(widths) + 6)
        body = [line(c) for c in cells]
        return "\n".join(
            [
                f'Network: "{self.name}"   input shape: {self.input_shape}   dtype: {self.dtype}',
                rule,
                line(head),
                rule,
                *body,
                rule,
                f"Total params: {self.total_params:,} ({_readable_bytes(self.param_bytes)})",
                f"Trainable params: {self.trainable_params:,} ({_readable_bytes(self.trainable_bytes)})",
                f"Non-trainable params: {self.non_trainable_params:,} "
                f"({_readable_bytes(self.param_bytes - self.trainable_bytes)})",
            ]
        )

    __repr__ = __str__


@functools.cache
def _builtin_kinds() -> dict[Any, str]:
    """The built-in layers, known by the rule their ``forward`` binds (a layer carries only a
    display name, which the user may choose)."""
    probes = {
        "Dense": layers.Dense(1),
        "Activation": layers.Activation("linear"),
        "Dropout": layers.Dropout(0.5),
        "LayerNorm": layers.LayerNorm(),
        "UnitNormalization": layers.UnitNormalization(),
        "Flatten": layers.Flatten(),
        "Reshape": layers.Reshape(1),
    }
    return {_rule(layer.forward): kind for kind, layer in probes.items()}


def _rule(forward: Any) -> Any:
    return getattr(forward, "fn", forward)  # a bound rule's function, or the function itself


def _kind(layer: Any) -> str:
    if isinstance(layer, layers.Network):
        return "Network"
    try:
        return _builtin_kinds().get(_rule(layer.forward), "Layer")
    except TypeError:  # an unhashable forward: a layer of the user's
        return "Layer"


def _walk(net: layers.Network, params: list, x: Any, prefix: str, depth: int, rows: list) -> tuple[Any, int]:
    """Appends the rows of ``net``'s layers for the (traced) input ``x`` and the params
    ``net.init_with_shape`` built; returns its output and parameter count. The network's own
    ``forward`` has run on them first, so every layer keeps the protocol here."""
    total = 0
    for name, layer, p in zip(net.names, net.layers, params, strict=True):
        path = prefix + name
        at = len(rows)
        rows.append(None)  # a nested network's own row goes before its layers'
        if isinstance(layer, layers.Network):
            x, n = _walk(layer, p, x, path + "/", depth + 1, rows)
        else:
            x, n = layer.forward(p, x, key=None, train=False)[0], count_params(p)
        rows[at] = LayerSummary(path, _kind(layer), (None, *x.shape[1:]), n, depth)
        total += n
    return x, total


def summary(net: Any, input_shape: int | Sequence[int], dtype: Any = jnp.float32) -> Summary:
    """Keras's ``model.summary()`` / torchinfo's ``summary``: the layers of ``net`` with their
    output shapes and parameter counts, for inputs of ``input_shape`` (without the batch axis).

    ``print(fnn.summary(fnn.mlp([32, 10]), (20,)))`` shows two Dense rows, ``(None, 32)`` with
    ``20*32 + 32 = 672`` params and ``(None, 10)`` with ``32*10 + 10 = 330``, and 1,002 in total.
    Nested networks get a row of their own (their layers' total) followed by their layers,
    indented; Activation, Dropout, Flatten and Reshape rows count 0. Everything is traced with
    ``jax.eval_shape``: nothing is allocated or compiled.

    Args:
        net: An :func:`fnn.serial` network (or a single :class:`fnn.Layer`).
        input_shape: The shape of one sample, an int or a tuple of ints.
        dtype: The params' dtype (it sets ``param_bytes``; float64 counts as float32 unless
            ``jax_enable_x64`` is on, as ``net.init`` would build it).

    Returns:
        A :class:`Summary`: ``str()`` is the table; ``rows``, ``total_params``... are fields.

    Raises:
        TypeError: For ``net`` not a Network or Layer; ``input_shape`` not an int or ints;
            ``dtype`` not a floating dtype; a layer that breaks the Layer protocol (its
            ``init`` or ``forward`` takes other arguments or returns something else; the
            message names the layer, as ``net.init`` and ``fit`` do).
        ValueError: For an empty ``input_shape`` or a size < 1; inputs the network does not
            fit.

    Examples:
        >>> import fnn
        >>> s = fnn.summary(fnn.mlp([32, 10]), (20,))
        >>> s.total_params, [(r.name, r.output_shape, r.params) for r in s.rows]
        (1002, [('dense_0', (None, 32), 672), ('dense_1', (None, 10), 330)])
        >>> print(s)
        Network: "serial"   input shape: (None, 20)   dtype: float32
        =======================================
        Layer (type)      Output shape   Params
        =======================================
        dense_0 (Dense)   (None, 32)        672
        dense_1 (Dense)   (None, 10)        330
        =======================================
        Total params: 1,002 (3.91 KB)
        Trainable params: 1,002 (3.91 KB)
        Non-trainable params: 0 (0.00 B)
    """
    if isinstance(net, layers.Layer):
        net = layers.Network((net,), name=net.name)
    if not isinstance(net, layers.Network):
        raise TypeError(f"net must be an fnn Network (fnn.serial, fnn.mlp) or Layer, got {type(net).__name__}")
    shape = as_shape(input_shape)
    np_dtype = floating_dtype("dtype", dtype)
    # what net.init would build: float64 is float32 unless jax_enable_x64 is on
    np_dtype = jax.dtypes.canonicalize_dtype(np_dtype)

    def trace() -> Static:
        # The key is made inside the trace: even seeding a concrete key runs (and compiles) a program.
        key = seed_key(0)
        rows: list = []
        x = jnp.zeros((1, *shape), np_dtype)  # a tracer's worth: eval_shape allocates nothing
        # net.init and net.forward's own checks first: a layer that breaks the protocol is named
        # here as fit and net.init name it
        params = net.init_with_shape(key, shape, np_dtype)[1]
        net.forward(params, x)
        y, total = _walk(net, params, x, "", 0, rows)
        # as net.init makes them: a Python number is a weakly typed array (1.5: float32)
        leaves = [(np.size(leaf), jnp.result_type(leaf)) for leaf in jax.tree.leaves(params)]
        floating = [(n, dt) for n, dt in leaves if jnp.issubdtype(dt, jnp.floating)]
        trainable, trainable_bytes = sum(n for n, _ in floating), sum(n * dt.itemsize for n, dt in floating)
        nbytes = sum(n * dt.itemsize for n, dt in leaves)
        return Static((tuple(rows), (None, *y.shape[1:]), total, trainable, nbytes, trainable_bytes))

    # a layer's init that needs concrete values runs eagerly, as Network.init runs it
    rows, out_shape, total, trainable, nbytes, trainable_bytes = eval_shape_or_run(trace).value
    return Summary(
        name=net.name,
        input_shape=(None, *shape),
        output_shape=out_shape,
        rows=rows,
        total_params=total,
        trainable_params=trainable,
        non_trainable_params=total - trainable,
        param_bytes=nbytes,
        trainable_bytes=trainable_bytes,
        dtype=str(np_dtype),
    )
