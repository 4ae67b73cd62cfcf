"""Layers as ``(init, forward, backward)`` triples, and networks built from them.

* ``init(key, input_shape, dtype) -> (output_shape, params)``; shapes exclude the batch axis.
* ``forward(params, x, *, key=None, train=False) -> (y, cache)``; ``cache`` holds exactly what
  ``backward`` needs.
* ``backward(params, cache, dy) -> (dparams, dx)``; the vector-Jacobian product of ``forward``
  at the point it cached, written by hand beside it.

:func:`serial` composes layers into a :class:`Network`, itself a layer (networks nest as they
are); :func:`mlp` builds the usual stack of Dense layers. A layer of your own is a
:class:`Layer` of three such functions.
"""

from fnn.layers._base import FeatureMismatchError as FeatureMismatchError, Layer as Layer
from fnn.layers._core import (
    Activation as Activation,
    Dropout as Dropout,
    Flatten as Flatten,
    Reshape as Reshape,
)
from fnn.layers._dense import Dense as Dense, mlp as mlp
from fnn.layers._network import Network as Network, serial as serial
from fnn.layers._normalization import LayerNorm as LayerNorm, UnitNormalization as UnitNormalization

__all__ = [
    "Layer", "Network", "Dense", "Activation", "Dropout", "LayerNorm", "UnitNormalization", "Flatten", "Reshape",
    "serial", "mlp",
    "FeatureMismatchError",
]  # fmt: skip


def __dir__() -> list[str]:
    """The public API only (implementation imports stay out of ``dir``)."""
    return sorted(__all__)
