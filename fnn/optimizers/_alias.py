r"""The named optimizers: each a short :func:`chain` of public transforms, with its
hyperparameters injected into the state (:func:`inject_hyperparams`).

Each follows the update rule ``torch.optim`` documents for the same name (Lion follows its
paper); the docstring writes the rule out with :math:`g_t` the gradient, :math:`\theta` the
parameters, :math:`t` the step counting from 1 and :math:`\gamma` the learning rate, and shows
the chain. ``weight_decay`` in the non-W optimizers is L2 coupled into the gradient, as in
PyTorch: :func:`add_decayed_weights` BEFORE the direction transform. A term switched off at
construction (``momentum=0``, ``weight_decay=0``) is left out of the chain and of ``hparams``:
it costs nothing and cannot be switched on later.

They live by family in ``_alias_sgd.py``, ``_alias_adaptive.py``, ``_alias_adam.py``,
``_alias_sign.py``, ``_alias_muon.py`` and ``_alias_keras.py`` (Keras's own; what they share:
``_alias_args.py``); this module looks them up by name (:func:`get`, :func:`names`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fnn._registry import Registry
from fnn.optimizers._alias_adam import adam, adamax, adamw, nadam, radam
from fnn.optimizers._alias_adaptive import adadelta, adafactor, adagrad, rmsprop
from fnn.optimizers._alias_keras import ftrl, lamb
from fnn.optimizers._alias_muon import muon
from fnn.optimizers._alias_sgd import asgd, momentum, nesterov, sgd
from fnn.optimizers._alias_sign import lion, rprop
from fnn.optimizers._base import GradientTransformation

# The registry: the CLI's names; Keras's and PyTorch's class names resolve too.
_REGISTRY: Registry[Callable[..., GradientTransformation]] = Registry(
    "optimizer",
    {
        "sgd": sgd,
        "momentum": momentum,
        "nesterov": nesterov,
        "adagrad": adagrad,
        "rmsprop": rmsprop,
        "adadelta": adadelta,
        "adam": adam,
        "adamw": adamw,
        "adamax": adamax,
        "nadam": nadam,
        "radam": radam,
        "rprop": rprop,
        "lion": lion,
        "asgd": asgd,
        "adafactor": adafactor,
        "muon": muon,
        "lamb": lamb,
        "ftrl": ftrl,
    },
    known="optimizers",
)


def names() -> list[str]:
    """The optimizer names :func:`get` knows.

    Returns:
        The optimizer names :func:`get` knows, sorted.
    """
    return _REGISTRY.names()


def as_optimizer(opt: Any, argname: str = "name") -> Any:
    """``opt`` if it is an optimizer, by duck typing as optax's own code treats one: an object
    with callable ``init`` and ``update`` (a GradientTransformation, fnn's or optax's,
    ``optax.MultiSteps``, a user's class) as it is; a pair ``(init, update)`` of callables as a
    :class:`GradientTransformation`. Anything else is a TypeError naming ``argname``."""
    if callable(getattr(opt, "init", None)) and callable(getattr(opt, "update", None)):
        return opt
    if isinstance(opt, (tuple, list)) and len(opt) == 2 and all(callable(f) for f in opt):
        return GradientTransformation(*opt)
    got = f"a {type(opt).__name__} of length {len(opt)}" if isinstance(opt, (tuple, list)) else type(opt).__name__
    raise TypeError(
        f"{argname} must be an optimizer (a GradientTransformation, a pair (init, update) of callables, or an "
        f"object with init and update methods) or an optimizer name, got {got} (e.g. "
        f'{argname}=fnn.optimizers.adam(learning_rate=1e-3), {argname}="adam"; names: fnn.optimizers.names())'
    )


def get(name: str | object, **kwargs: Any) -> GradientTransformation:
    """The optimizer called ``name`` (``"adam"``, ``"Adam"``, ``"RMSprop"``...) built with
    ``kwargs``; a built optimizer passes through.

    Names ignore case and underscores, so Keras's and PyTorch's class names resolve. A built
    optimizer is anything ``fnn.fit`` trains with: an object with callable ``init`` and
    ``update`` (fnn's or optax's GradientTransformation, ``optax.MultiSteps``), returned as it
    is, or a pair ``(init, update)`` of callables, returned as a :class:`GradientTransformation`.

    Args:
        name: An optimizer name (:func:`names`), or a built optimizer.
        **kwargs: The optimizer's arguments (``learning_rate``, ``momentum``...).

    Returns:
        The optimizer.

    Raises:
        ValueError: For an unknown name (listing the known ones).
        TypeError: For something neither a name nor an optimizer, keywords given with an
            already built optimizer, or ones the optimizer does not take.

    Examples:
        >>> import fnn
        >>> opt = fnn.optimizers.get("RMSprop", learning_rate=0.5)
        >>> fnn.optimizers.get_learning_rate(opt.init([0.0])).item()
        0.5
        >>> fnn.optimizers.get(opt) is opt
        True
    """
    if isinstance(name, str):
        factory: Callable[..., GradientTransformation] = _REGISTRY.lookup(name)
        return factory(**kwargs)
    opt = as_optimizer(name)
    if kwargs:
        raise TypeError("keyword arguments cannot be applied to an already built optimizer")
    return opt
