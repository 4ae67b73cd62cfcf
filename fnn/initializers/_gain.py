"""PyTorch's ``calculate_gain``: the factor a layer's weights get for the nonlinearity after it
(xavier's and kaiming's ``gain``)."""

from __future__ import annotations

import math
from typing import Any

from fnn._validate import choice, real

_NONLINEARITIES = (
    "linear", "sigmoid", "tanh", "relu", "leaky_relu", "selu",
    "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
)  # fmt: skip


def gain_squared(nonlinearity: str, param: float | None) -> float:
    """``calculate_gain(nonlinearity, param) ** 2``, formed without a square root so that the
    defaults give exact scales (``kaiming_uniform() == he_uniform()``, scale 2.0)."""
    if nonlinearity == "tanh":
        return 25.0 / 9.0
    if nonlinearity == "relu":
        return 2.0
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return 2.0 / (1.0 + slope * slope)
    if nonlinearity == "selu":
        return 9.0 / 16.0
    return 1.0  # linear, sigmoid, conv*


def check_gain_args(nonlinearity: Any, param: Any, name: str = "param") -> tuple[str, float | None]:
    nonlinearity = choice("nonlinearity", nonlinearity, _NONLINEARITIES)
    return nonlinearity, (None if param is None else real(name, param))


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """PyTorch's ``torch.nn.init.calculate_gain``: the factor the std of a layer's weights gets
    for the nonlinearity after it.

    linear, sigmoid and conv*: 1; tanh: 5/3; relu: ``sqrt(2)``; leaky_relu:
    ``sqrt(2 / (1 + slope^2))`` with ``slope = param`` (default 0.01); selu: 3/4.

    Args:
        nonlinearity: One of the names above (PyTorch's spelling).
        param: The negative slope of leaky_relu (ignored by the others; None: 0.01).

    Returns:
        The gain, a float.

    Raises:
        ValueError: For an unknown nonlinearity or a non-finite ``param``.
        TypeError: For a ``nonlinearity`` that is not a string, or a ``param`` that is not a
            real number.

    Examples:
        >>> import fnn
        >>> fnn.initializers.calculate_gain("relu") == 2**0.5, fnn.initializers.calculate_gain("tanh")
        (True, 1.6666666666666667)
    """
    nonlinearity, param = check_gain_args(nonlinearity, param)
    return math.sqrt(gain_squared(nonlinearity, param))
