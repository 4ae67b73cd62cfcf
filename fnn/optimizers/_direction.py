r"""What the direction transforms (``_adam.py``, ``_adaptive.py``, ``_sign.py``) share: the
checks of their common hyperparameters, and a transform made of an ``(init, update)`` pair with
its configuration bound.

A direction transform is the per-element rule of an optimizer, as ``torch.optim`` writes it,
without the learning rate (that is :func:`scale_by_learning_rate`, the last link of every
chain) and without weight decay (:func:`add_decayed_weights`). In the formulas of their
docstrings :math:`u_t` is the incoming update (the gradient, or whatever the previous link made
of it), :math:`t` counts updates from 1 and the output is the direction the learning rate then
scales. Buffers are kept in float32 or wider.
"""

from __future__ import annotations

from typing import Any

from fnn._validate import hyper
from fnn._values import bound
from fnn.optimizers._base import GradientTransformation


def check_beta(name: str, value: Any) -> Any:
    """A decay rate in [0, 1)."""
    return hyper(name, value, 0.0, 1.0, hi_open=True)


def check_eps(value: Any) -> Any:
    """``eps >= 0``, added to a denominator."""
    return hyper("eps", value, lo=0.0)


def nonnegative(**values: Any) -> tuple[Any, ...]:
    """Each of ``values`` checked ``>= 0``, in the order given."""
    return tuple(hyper(name, value, lo=0.0) for name, value in values.items())


def bound_transform(init, update, *config: Any) -> GradientTransformation:
    """``(init, update)`` with the hyperparameters ``config`` bound as their first arguments."""
    return GradientTransformation(bound(init, *config), bound(update, *config))
