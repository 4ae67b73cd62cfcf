"""Gradients of ``loss(y, net(params, x))``: hand-written backprop, ``jax.grad``, and a check of both.

* :func:`value_and_grad` gives ``(params, x, y) -> (loss, grads)`` computed either by the
  network's hand-written reverse pass (``mode="manual"``: forward with caches, the loss's own
  gradient w.r.t. ``y_pred``, then ``net.backward``) or by ``jax.value_and_grad`` of the same
  composition (``mode="autodiff"``).
* :func:`gradcheck` compares the two, and both against central finite differences, in float64,
  leaf by leaf, and names the layer where they disagree.
* :func:`with_manual_vjp` turns the hand-written backward into a ``jax.custom_vjp`` rule, so any
  JAX code that differentiates through the network runs our reverse pass.
"""

from fnn.grad._gradcheck import gradcheck
from fnn.grad._report import GradcheckReport, GradcheckRow
from fnn.grad._value_and_grad import MODES, value_and_grad, with_manual_vjp

__all__ = ["value_and_grad", "gradcheck", "GradcheckReport", "GradcheckRow", "with_manual_vjp", "MODES"]


def __dir__() -> list[str]:
    """The public API only (implementation imports stay out of ``dir``)."""
    return sorted(__all__)
