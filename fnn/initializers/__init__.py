"""Weight initializers with Keras's formulas under Keras's names and PyTorch's under PyTorch's,
in the jax.nn.initializers calling style.

Each public factory returns an initializer ``init(key, shape, dtype=jnp.float32) -> Array``
(:data:`Initializer` is its type, an alias of ``Callable[..., Array]``: ``shape`` an int or a
sequence of ints, ``key`` a PRNG key, ignored by the constant initializers)::

    init = glorot_uniform()
    w = init(key, (3, 4), jnp.float32)

Fans follow Keras's ``compute_fans``: a 2-D kernel ``(in, out)`` has ``fan_in = in`` and
``fan_out = out``; a 1-D shape ``(n,)`` has both equal to ``n``; a >2-D kernel
``(*receptive_field, in, out)`` multiplies both by ``prod(receptive_field)``.

Variance scaling with ``s = scale / fan`` (``fan`` = fan_in, fan_out or their mean):

* ``uniform``: ``U(-limit, limit)``, ``limit = sqrt(3 s)``;
* ``truncated_normal``: a standard normal truncated to ``[-2, 2]``, times
  ``sqrt(s) / 0.87962566103423978`` (the std of that truncated normal), so the std is ``sqrt(s)``;
* ``untruncated_normal``: ``N(0, s)``.

glorot = (1, fan_avg), he = (2, fan_in), lecun = (1, fan_in); so glorot_uniform is
``U(±sqrt(6 / (fi + fo)))``, he_uniform ``U(±sqrt(6 / fi))``, lecun_uniform ``U(±sqrt(3 / fi))``.

The PyTorch names follow ``torch.nn.init`` (with the fans above: fnn's kernels are ``(in, out)``,
torch's ``(out, in)``, and both call ``in`` fan_in): ``xavier_uniform`` is ``U(±gain sqrt(6 /
(fi + fo)))``, ``xavier_normal`` an UNTRUNCATED ``N(0, gain^2 2 / (fi + fo))``, ``kaiming_uniform``
``U(±gain sqrt(3 / fan))`` and ``kaiming_normal`` an untruncated ``N(0, gain^2 / fan)``, with
``gain = calculate_gain(nonlinearity, a)`` (``sqrt(2)`` for torch's default ``leaky_relu``, ``a=0``).
So ``xavier_uniform() == glorot_uniform()`` and ``kaiming_uniform() == he_uniform()``, while
``xavier_normal``/``kaiming_normal`` draw the plain normal that glorot_normal/he_normal truncate.

``orthogonal(gain)`` is ``gain`` times a uniformly random orthogonal matrix: with ``rows =
prod(shape[:-1])`` and ``cols = shape[-1]``, the QR factor ``Q`` of a standard normal
``(max(rows, cols), min(rows, cols))`` matrix times the signs of ``R``'s diagonal, transposed when
``rows < cols`` (Keras's Orthogonal; PyTorch's ``orthogonal_``), so ``W^T W = gain^2 I`` for a tall
kernel and ``W W^T = gain^2 I`` for a wide one. ``identity(gain)`` is ``gain * eye(rows, cols)`` for
a 2-D shape (Keras's Identity; PyTorch's ``eye_``, named ``"eye"`` too).

Initializers are frozen dataclasses: equal arguments give equal, equally hashed initializers.
"""

from fnn.initializers._base import Initializer as Initializer, compute_fans as compute_fans
from fnn.initializers._fixed import (
    constant as constant,
    ones as ones,
    random_normal as random_normal,
    random_uniform as random_uniform,
    truncated_normal as truncated_normal,
    zeros as zeros,
)
from fnn.initializers._gain import calculate_gain as calculate_gain
from fnn.initializers._matrix import identity as identity, orthogonal as orthogonal
from fnn.initializers._registry import get as get, names as names
from fnn.initializers._variance_scaling import (
    TRUNCATED_NORMAL_STD as TRUNCATED_NORMAL_STD,
    glorot_normal as glorot_normal,
    glorot_uniform as glorot_uniform,
    he_normal as he_normal,
    he_uniform as he_uniform,
    kaiming_normal as kaiming_normal,
    kaiming_uniform as kaiming_uniform,
    lecun_normal as lecun_normal,
    lecun_uniform as lecun_uniform,
    variance_scaling as variance_scaling,
    xavier_normal as xavier_normal,
    xavier_uniform as xavier_uniform,
)

__all__ = [
    "Initializer",
    "TRUNCATED_NORMAL_STD",
    "compute_fans",
    "variance_scaling",
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "lecun_uniform",
    "lecun_normal",
    "xavier_uniform",
    "xavier_normal",
    "kaiming_uniform",
    "kaiming_normal",
    "calculate_gain",
    "orthogonal",
    "identity",
    "random_normal",
    "truncated_normal",
    "random_uniform",
    "constant",
    "zeros",
    "ones",
    "names",
    "get",
]


def __dir__() -> list[str]:
    """The public API only (implementation imports stay out of ``dir``)."""
    return sorted(__all__)
