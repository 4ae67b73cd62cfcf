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

from fnn.layers._base import (
    FeatureMismatchError as FeatureMismatchError,
)
from fnn.layers._base import (
    Layer as Layer,
)
from fnn.layers._base import (
    Network as Network,
)
from fnn.layers._base import (
    serial as serial,
)
from fnn.layers._core import (
    Activation as Activation,
)
from fnn.layers._core import (
    Dense as Dense,
)
from fnn.layers._core import (
    Dropout as Dropout,
)
from fnn.layers._core import (
    Flatten as Flatten,
)
from fnn.layers._core import (
    LayerNorm as LayerNorm,
)
from fnn.layers._core import (
    mlp as mlp,
)

__all__ = [
    "Layer", "Network", "Dense", "Activation", "Dropout", "LayerNorm", "Flatten", "serial", "mlp",
    "FeatureMismatchError",
]  # fmt: skip
