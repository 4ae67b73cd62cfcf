"""The network a compiled program is keyed on: :func:`for_programs`.

Programs other than init (the epoch, the evaluation pass, predict's, a train or eval step,
gradcheck's) run the layers' ``forward`` and ``backward`` on params they are given: how those
params were drawn does not enter them. Networks that differ only in their Dense layers'
initializers (an initializer study: ``kernel_initializer="he_normal"`` against the default)
compute the same programs, and key them alike through this view, so they share one.

Functions are compared as Python compares them, by identity, and never by what they hold: a
closure or lambda made anew reads its module's globals and the objects it holds as they are
when a cached program is traced again, so two made alike can compute differently (a lambda
reading a loop's variable at a module's top level; an object changed between calls).
"""

from __future__ import annotations

from typing import Any

from fnn._values import bound
from fnn.layers._base import Layer
from fnn.layers._dense import default_initializers, dense_init
from fnn.layers._network import Network


def _drawn_alike(layer: Layer) -> Layer:
    """A Dense layer with Keras's default initializers in place of its own; any other as it is.
    The shapes and dtypes its init gives are unchanged (an initializer must give the shape
    asked, cast to the dtype asked), so a program that checks params against ``init`` while it
    is traced checks them as before."""
    init = layer.init
    if not (isinstance(init, bound) and init.fn is dense_init):
        return layer
    units, kernel, bias, use_bias = init.args
    if (kernel, bias) == default_initializers():
        return layer
    return layer._replace(init=bound(dense_init, units, *default_initializers(), use_bias))


def _drawn_alike_net(net: Network) -> Network:
    layers = tuple(
        _drawn_alike_net(layer) if isinstance(layer, Network) else _drawn_alike(layer) for layer in net.layers
    )
    if all(a is b for a, b in zip(layers, net.layers, strict=True)):
        return net
    return Network(layers, net.names, net.name)


def for_programs(net: Any) -> Any:
    """``net`` as compiled programs key on it: an :class:`fnn.Network` whose Dense layers (nested
    ones too) hold the default initializers, its names and everything else kept (the names
    enter the messages a program's trace raises); ``net`` itself where nothing changes, and any
    other network object as it is."""
    if not isinstance(net, Network):
        return net
    return _drawn_alike_net(net)
