"""Activation functions, each beside its hand-written derivative.

Elementwise activations come as a pair ``f(x)`` / ``f_grad(x, y=None)``: ``f_grad`` is the
derivative ``f'(x)`` elementwise; ``y = f(x)`` may be passed in when the caller already has it
(sigmoid, tanh, silu reuse it). softmax and log_softmax are not elementwise, so they come with a
vector-Jacobian product ``f_vjp(x, y, dy)`` instead. Every function maps an array of any shape to
an array of the same shape and floating dtype (integer inputs become the default float dtype);
softmax/log_softmax act along ``axis`` (default: the last). No derivative uses jax's autodiff.

Kinks take the value that ``jax.grad`` gives of the same forward function, which is also what
``jax.nn`` (Keras 3's JAX backend) gives: relu'(0) = 0, relu6'(0) = relu6'(6) = 0,
hard_sigmoid'(-3) = hard_sigmoid'(3) = 0, leaky_relu'(0) = 1 (the x >= 0 branch) and
elu'(0) = alpha (the x <= 0 branch).

The layers consume activations only through :func:`get`, which returns an :class:`Activation`
``(name, fn, vjp)``; equal names and hyperparameters give equal, equally hashed Activations,
because jitted training functions are cached on them.
"""

from fnn.activations._rectifiers import (
    SELU_ALPHA as SELU_ALPHA,
    SELU_SCALE as SELU_SCALE,
    elu as elu,
    elu_grad as elu_grad,
    hard_sigmoid as hard_sigmoid,
    hard_sigmoid_grad as hard_sigmoid_grad,
    leaky_relu as leaky_relu,
    leaky_relu_grad as leaky_relu_grad,
    linear as linear,
    linear_grad as linear_grad,
    relu as relu,
    relu6 as relu6,
    relu6_grad as relu6_grad,
    relu_grad as relu_grad,
    selu as selu,
    selu_grad as selu_grad,
)
from fnn.activations._registry import (
    Activation as Activation,
    derivative as derivative,
    get as get,
    names as names,
)
from fnn.activations._smooth import (
    gelu as gelu,
    gelu_grad as gelu_grad,
    gelu_tanh as gelu_tanh,
    gelu_tanh_grad as gelu_tanh_grad,
    mish as mish,
    mish_grad as mish_grad,
    sigmoid as sigmoid,
    sigmoid_grad as sigmoid_grad,
    silu as silu,
    silu_grad as silu_grad,
    softplus as softplus,
    softplus_grad as softplus_grad,
    softsign as softsign,
    softsign_grad as softsign_grad,
    swish as swish,
    swish_grad as swish_grad,
    tanh as tanh,
    tanh_grad as tanh_grad,
)
from fnn.activations._softmax import (
    log_softmax as log_softmax,
    log_softmax_vjp as log_softmax_vjp,
    softmax as softmax,
    softmax_vjp as softmax_vjp,
)

__all__ = [
    "Activation",
    "get",
    "names",
    "derivative",
    "SELU_ALPHA",
    "SELU_SCALE",
    "swish",
    "softmax",
    "softmax_vjp",
    "log_softmax",
    "log_softmax_vjp",
    "linear",
    "linear_grad",
    "sigmoid",
    "sigmoid_grad",
    "tanh",
    "tanh_grad",
    "relu",
    "relu_grad",
    "relu6",
    "relu6_grad",
    "leaky_relu",
    "leaky_relu_grad",
    "elu",
    "elu_grad",
    "selu",
    "selu_grad",
    "gelu",
    "gelu_grad",
    "gelu_tanh",
    "gelu_tanh_grad",
    "silu",
    "silu_grad",
    "softplus",
    "softplus_grad",
    "softsign",
    "softsign_grad",
    "hard_sigmoid",
    "hard_sigmoid_grad",
    "mish",
    "mish_grad",
]


def __dir__() -> list[str]:
    """The public API only (implementation imports stay out of ``dir``)."""
    return sorted(__all__)
