r"""The named optimizers: each a short :func:`chain` of public transforms, with its
hyperparameters injected into the state (:func:`inject_hyperparams`).

Each follows the update rule ``torch.optim`` documents for the same name (Lion follows its
paper); the docstring writes the rule out with :math:`g_t` the gradient, :math:`\theta` the
parameters, :math:`t` the step counting from 1 and :math:`\gamma` the learning rate, and shows
the chain. ``weight_decay`` in the non-W optimizers is L2 coupled into the gradient, as in
PyTorch: :func:`add_decayed_weights` BEFORE the direction transform. A term switched off at
construction (``momentum=0``, ``weight_decay=0``) is left out of the chain and of ``hparams``:
it costs nothing and cannot be switched on later.

They live by family in ``_alias_sgd.py``, ``_alias_adaptive.py``, ``_alias_adam.py`` and
``_alias_sign.py`` (what they share: ``_alias_args.py``); this module looks them up by name
(:func:`get`, :func:`names`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fnn._registry import Registry
from fnn.optimizers._alias_adam import adam, adamax, adamw, nadam, radam
from fnn.optimizers._alias_adaptive import adadelta, adagrad, rmsprop
from fnn.optimizers._alias_sgd import momentum, nesterov, sgd
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
    },
    known="optimizers",
)


def names() -> list[str]:
    """The optimizer names :func:`get` knows.

    Returns:
        The optimizer names :func:`get` knows, sorted.
    """
    return _REGISTRY.names()


def get(name: str | GradientTransformation, **kwargs: Any) -> GradientTransformation:
    """The optimizer called ``name`` (``"adam"``, ``"Adam"``, ``"RMSprop"``...) built with
    ``kwargs``; a transformation passes through.

    Names ignore case and underscores, so Keras's and PyTorch's class names resolve.

    Args:
        name: An optimizer name (:func:`names`), or a built optimizer (returned as it is).
        **kwargs: The optimizer's arguments (``learning_rate``, ``momentum``...).

    Returns:
        The optimizer.

    Raises:
        ValueError: For an unknown name (listing the known ones).
        TypeError: For keywords given with an already built optimizer, or ones the optimizer
            does not take.

    Examples:
        >>> import fnn
        >>> opt = fnn.optimizers.get("RMSprop", learning_rate=0.5)
        >>> fnn.optimizers.get_learning_rate(opt.init([0.0])).item()
        0.5
    """
    if isinstance(name, GradientTransformation):
        if kwargs:
            raise TypeError("keyword arguments cannot be applied to an already built optimizer")
        return name
    factory: Callable[..., GradientTransformation] = _REGISTRY.lookup(name)
    return factory(**kwargs)
