"""Activation functions, each beside its hand-written derivative.

Elementwise activations come as a pair ``f(x)`` / ``f_grad(x, y=None)``: ``f_grad`` is the
derivative ``f'(x)`` elementwise; ``y = f(x)`` may be passed in when the caller already has it
(sigmoid, tanh, silu, exponential reuse it). softmax, log_softmax and sparsemax are not
elementwise, so they come with a vector-Jacobian product ``f_vjp(x, y, dy)`` instead. Every
function maps an array of any shape to an array of the same shape and floating dtype (integer
inputs become the default float dtype); softmax/log_softmax/sparsemax act along ``axis``
(default: the last). No derivative uses jax's autodiff. The names, options and defaults are
Keras 3's (its ``glu``, which halves its axis, is not here: a layer's activation keeps the shape).

Kinks take the value that ``jax.grad`` gives of the same forward function, which is also what
``jax.nn`` (Keras 3's JAX backend) gives: relu'(0) = 0, relu6'(0) = relu6'(6) = 0,
hard_sigmoid'(-3) = hard_sigmoid'(3) = 0, leaky_relu'(0) = 1 (the x >= 0 branch),
elu'(0) = alpha (the x <= 0 branch), hard_tanh'(±1) = 1, hard_silu'(-3) = 0, hard_silu'(3) = 1,
sparse_sigmoid'(±1) = 1/4 (jax.nn's clip splits the kink in halves), hard_shrink'(±threshold) =
soft_shrink'(±threshold) = threshold'(threshold) = 0 (the small-input branch); sparsemax's
support leaves out an input exactly at its threshold.

The layers consume activations only through :func:`get`, which returns an :class:`Activation`
``(name, fn, vjp)``; equal names and hyperparameters give equal, equally hashed Activations,
because jitted training functions are cached on them.
"""

from fnn.activations._rectifiers import (
    SELU_ALPHA as SELU_ALPHA,
    SELU_SCALE as SELU_SCALE,
    celu as celu,
    celu_grad as celu_grad,
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
from fnn.activations._shrink import (
    hard_shrink as hard_shrink,
    hard_shrink_grad as hard_shrink_grad,
    soft_shrink as soft_shrink,
    soft_shrink_grad as soft_shrink_grad,
    tanh_shrink as tanh_shrink,
    tanh_shrink_grad as tanh_shrink_grad,
    threshold as threshold,
    threshold_grad as threshold_grad,
)
from fnn.activations._smooth import (
    exponential as exponential,
    exponential_grad as exponential_grad,
    gelu as gelu,
    gelu_grad as gelu_grad,
    gelu_tanh as gelu_tanh,
    gelu_tanh_grad as gelu_tanh_grad,
    log_sigmoid as log_sigmoid,
    log_sigmoid_grad as log_sigmoid_grad,
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
    sparsemax as sparsemax,
    sparsemax_vjp as sparsemax_vjp,
)
from fnn.activations._surrogates import (
    hard_silu as hard_silu,
    hard_silu_grad as hard_silu_grad,
    hard_swish as hard_swish,
    hard_swish_grad as hard_swish_grad,
    hard_tanh as hard_tanh,
    hard_tanh_grad as hard_tanh_grad,
    sparse_plus as sparse_plus,
    sparse_plus_grad as sparse_plus_grad,
    sparse_sigmoid as sparse_sigmoid,
    sparse_sigmoid_grad as sparse_sigmoid_grad,
    squareplus as squareplus,
    squareplus_grad as squareplus_grad,
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
    "sparsemax",
    "sparsemax_vjp",
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
    "celu",
    "celu_grad",
    "exponential",
    "exponential_grad",
    "log_sigmoid",
    "log_sigmoid_grad",
    "hard_tanh",
    "hard_tanh_grad",
    "hard_silu",
    "hard_silu_grad",
    "hard_swish",
    "hard_swish_grad",
    "sparse_sigmoid",
    "sparse_sigmoid_grad",
    "sparse_plus",
    "sparse_plus_grad",
    "squareplus",
    "squareplus_grad",
    "hard_shrink",
    "hard_shrink_grad",
    "soft_shrink",
    "soft_shrink_grad",
    "tanh_shrink",
    "tanh_shrink_grad",
    "threshold",
    "threshold_grad",
]


def __dir__() -> list[str]:
    """The public API only (implementation imports stay out of ``dir``)."""
    return sorted(__all__)
