"""What the named optimizers share (their conventions are in ``_alias.py``): the learning rate
(a rate or a schedule), a term switched off, coupled L2 weight decay, and Adam's betas.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import jax

from fnn._validate import hyper
from fnn.optimizers._base import GradientTransformation, Schedule
from fnn.optimizers._direction import check_beta
from fnn.optimizers._transform import add_decayed_weights

LearningRate = float | Schedule


def check_learning_rate(value: Any) -> Any:
    return value if callable(value) else hyper("learning_rate", value, lo=0.0)


def active(value: Any) -> Any:
    """A term switched off (a number equal to 0) is left out of the chain and the state. An
    array is always on: it is a value held in a state, which must keep one structure."""
    return None if not isinstance(value, jax.Array) and float(value) == 0.0 else value


def coupled_l2(weight_decay: Any) -> list[GradientTransformation]:
    return [] if weight_decay is None else [add_decayed_weights(weight_decay)]


def check_betas(b1: Any, b2: Any) -> tuple[Any, Any]:
    return check_beta("b1", b1), check_beta("b2", b2)


F = TypeVar("F", bound=Callable[..., GradientTransformation])

# Other libraries' spellings of these arguments, and fnn's (optax's) names for them.
OTHER_NAMES = {"lr": "learning_rate=", "epsilon": "eps=", "beta_1": "b1=", "beta_2": "b2=", "betas": "b1= and b2="}


class NamedOptimizer(GradientTransformation):
    """What a named optimizer returns: a :class:`GradientTransformation` (equal to, and hashed
    as, the plain tuple of its functions) that shows as the call that built it,
    ``adam(learning_rate=0.001, b1=0.9, ...)``, where the tuple would show its functions."""

    def __repr__(self) -> str:
        # set by other_names; a copy JAX rebuilds from the tuple's fields has none
        return self.__dict__.get("call") or super().__repr__()


def other_names(fn: F) -> F:
    """``fn`` saying which argument is meant when called with Keras's or PyTorch's spelling
    (``lr=``, ``epsilon=``, ``betas=``...) rather than Python's bare "unexpected keyword", and
    returning a :class:`NamedOptimizer` that shows its arguments, defaults included."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> GradientTransformation:
        for name, ours in OTHER_NAMES.items():
            if name in kwargs and name not in signature.parameters:  # muon takes Keras's epsilon=
                raise TypeError(f"{fn.__name__}() takes {ours}, not {name}= (Keras's or PyTorch's name for it)")
        opt = NamedOptimizer(*fn(*args, **kwargs))
        arguments = signature.bind(*args, **kwargs)  # fn took them
        arguments.apply_defaults()
        # the values as given (a jax array's read to show it: a transfer fnn makes on purpose,
        # which a caller's transfer guard does not refuse)
        with jax.transfer_guard_device_to_host("allow"):
            shown = ", ".join(f"{k}={v!r}" for k, v in arguments.arguments.items())
        opt.__dict__["call"] = f"{fn.__name__}({shown})"
        return opt

    return wrapper  # type: ignore[return-value]
