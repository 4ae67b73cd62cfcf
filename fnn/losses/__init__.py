"""Losses with Keras 3's names, argument order ``(y_true, y_pred)``, numerics and defaults.

Every loss ``name(y_true, y_pred, ..., sample_weight=None) -> scalar`` sits beside its
hand-written gradient ``name_grad(...)`` with respect to ``y_pred`` (same shape as ``y_pred``).
No gradient here uses jax's autodiff. The kernels that compute both (each per-sample loss
beside its derivative) are in ``_kernels.py`` (``_focal.py``: categorical focal and generalized
CE; ``_overlap.py``: Dice and Tversky), the checks of their inputs in ``_checks.py``, the
reduction they share in ``_reduction.py``.

Reduction (Keras's ``"sum_over_batch_size"``): the elementwise loss is first reduced over the
feature/class axis to per-sample values ``l_i`` (shape ``y_pred.shape`` without that axis), then
``loss = sum_i w_i l_i / n`` with ``n`` the number of per-sample values and ``w`` the optional
``sample_weight`` (default 1; shape ``(N,)``, scalar, or the per-sample shape). A rank-1
``y_pred`` of shape ``(N,)`` is N samples of one output each for the elementwise losses (the
value equals Keras's); for the class-axis losses (categorical CE and focal CE, sparse CE,
generalized CE, KL divergence, categorical hinge, cosine similarity) it is one sample.
``y_true`` of shape ``(N,)`` pairs with ``y_pred`` of shape ``(N, 1)`` and vice versa (Keras's
``squeeze_or_expand_to_same_rank``).
(Keras reduces a rank-1 batch to one scalar first, so it would scale a weighted one by mean(w).)
Dice and Tversky, with Keras's default ``axis=None``, are ONE ratio of sums over the whole batch
(``Loss.per_sample`` gives that one value); sample weights scale it by their mean (Keras's
reduction of a scalar), and fit's padded last batch leaves the padding out of the sums. With
``axis`` naming axes of each sample (``-1``) they are per-sample values like the others.
Circle's per-sample values each depend on the whole batch (the pairs of its rows, in
``_circle.py``): its kernel's derivative takes the reduction's coefficients, fit's padding is in
no pair, and its mean is Keras's ``Circle`` class's, over the samples of a loss > 0.
CTC (``_ctc.py``) scores padded integer label sequences ``(N, L)`` against logits ``(N, T, C)``
(class 0 the blank): one value per sample, its gradient from the forward-backward recursion.

Numerics follow Keras 3 (``keras/src/losses/losses.py`` and the JAX backend's ``nn.py``):
``EPSILON = 1e-7``; probabilities are clipped to ``[EPSILON, 1 - EPSILON]``; categorical CE
renormalises ``y_pred`` to sum 1 along the class axis before clipping; logits go through
log-sigmoid / log-softmax. Documented departures: binary focal CE with ``from_logits=True``
takes the log-sigmoid form (Keras clips ``sigmoid(z)``, so the two differ only for |z| > ~16,
where Keras's gradient vanishes), and so does categorical focal CE (log-softmax; Keras clips
``softmax(z)`` to ``[1e-7, 1 - 1e-7]``: the two differ only where a class's probability is
outside that range); sparse CE's ignored samples get their label replaced by 0
instead of Keras's ``y_pred * mask`` (same value, but no NaN in the gradient); categorical and
sparse CE from logits leave out the classes of target 0, so a logit of -inf there costs nothing
(``[-inf, 1, 2]`` with label 1: 1.3133, as torch and optax give; Keras: NaN from 0 * -inf);
log_cosh is ``|e| + softplus(-2|e|) - log 2`` (Keras's ``e + softplus(-2e) - log 2`` is inf
for e < -1.7e38 in float32 and NaN at e = -inf; equal elsewhere up to rounding). MSLE uses
``log1p(x)`` for Keras's ``log(x + 1)`` (equal up to rounding, exact for small x). Generalized CE
takes labels of shape ``(N, 1)`` as ``(N,)`` (Keras one-hots them to ``(N, 1, C)`` and
broadcasts an ``(N, N)`` matrix of values), refuses labels outside ``[0, C)`` (Keras's one-hot
of them is 0, a loss of ``1/q``), and its function has the class's default ``q=0.5`` (Keras's
function has none); like Keras's it neither clips nor renormalises ``y_pred``, so a true class's
probability of 0 has an infinite gradient. Dice and Tversky refuse an ``axis`` that includes the
batch axis 0 (Keras would sum over it but not over the others: ``axis=None`` is the whole batch).
Categorical focal CE's ``alpha`` and Tversky's ``alpha``/``beta`` must be >= 0, generalized CE's
``q`` in (0, 1) (Keras checks only ``q``, in its class).

At a kink any slope between the two one-sided derivatives is a valid derivative, and fnn's
choices (below) depart from Keras's (``jax.grad`` of its formulas: whatever jax's primitives
choose) and torch's, on exact ties only: MAE and MAPE at ``y_pred == y_true`` take the slope of
``y_pred > y_true`` (+1 per element before the mean; Keras -1, jax's ``|x|' = 1`` at 0 applied
to ``y_true - y_pred``; torch 0); hinge and categorical hinge at a margin of exactly 1 take 0
(Keras half the slope, ``jnp.maximum`` splitting the tie; torch 0); a probability exactly at a
clip bound (1e-7 or 1 - 1e-7) passes the whole gradient (Keras half, ``jnp.clip`` splitting
the tie; torch 0); circle at a similarity of exactly 1 between two samples (duplicated
embeddings) passes the whole slope of its distance ``max(1 - s, 0)`` (Keras half).

Kinks and clips: ``jax.grad`` of every loss value (with respect to ``y_pred``) IS the
hand-written gradient, attached with ``jax.custom_jvp``, so autodiff, ``gradcheck``'s reference
and your own ``jax.grad`` agree with it at every point: clips pass the gradient on the closed
interval (``x == bound`` counts as inside) and give 0 outside; ``|y_pred - y_true|`` has
derivative +1 at 0; hinge terms ``max(m, 0)`` have derivative 0 at ``m = 0``; the max in
categorical hinge splits its gradient evenly among ties; binary CE from logits has
``sigmoid(z) - t`` at ``z = 0``; the focal CEs stay finite at saturated logits for every gamma.
The gradients are checked against finite differences and NumPy references.

Softmax or sigmoid then cross-entropy: with ``from_logits=True`` the loss takes the logits
``z`` and its gradient is the fused ``softmax(z) - y`` (``sigmoid(z) - t``), finite at logits
of +-1e4. A network whose last layer applies the softmax (``Dense(C, activation="softmax")``)
with ``from_logits=False`` is differentiated as written, through the probability clip, as
Keras's JAX backend does: the softmax's Jacobian times the clipped loss's gradient equals
``softmax(z) - y`` while no probability is clipped, and is 0 for a sample once its true class's
probability falls below 1e-7 (a confidently wrong sample stops learning). Keep the output
linear and pass ``from_logits=True`` (what :func:`fnn.mlp` and ``fnn compare`` do) to train on
the fused form everywhere.

Sample weights: ``(N,)``, a scalar, the per-sample loss shape, or that shape with axes of 1
that broadcast over it (``(N, 1)`` for a loss per sample and step, as Keras broadcasts them).

Half precision: float16 / bfloat16 predictions are computed in float32, as Keras's losses are (in
half precision ``1 - 1e-7`` rounds to 1 and the clip would not keep ``log`` finite); the value is
float32 and the gradient comes back in the predictions' dtype.
"""

from fnn.losses._circle import (
    circle as circle,
    circle_grad as circle_grad,
)
from fnn.losses._crossentropy import (
    binary_crossentropy as binary_crossentropy,
    binary_crossentropy_grad as binary_crossentropy_grad,
    binary_focal_crossentropy as binary_focal_crossentropy,
    binary_focal_crossentropy_grad as binary_focal_crossentropy_grad,
    categorical_crossentropy as categorical_crossentropy,
    categorical_crossentropy_grad as categorical_crossentropy_grad,
    sparse_categorical_crossentropy as sparse_categorical_crossentropy,
    sparse_categorical_crossentropy_grad as sparse_categorical_crossentropy_grad,
)
from fnn.losses._ctc import ctc as ctc, ctc_grad as ctc_grad
from fnn.losses._custom import custom as custom
from fnn.losses._focal import (
    categorical_focal_crossentropy as categorical_focal_crossentropy,
    categorical_focal_crossentropy_grad as categorical_focal_crossentropy_grad,
    categorical_generalized_cross_entropy as categorical_generalized_cross_entropy,
    categorical_generalized_cross_entropy_grad as categorical_generalized_cross_entropy_grad,
)
from fnn.losses._hinge import (
    categorical_hinge as categorical_hinge,
    categorical_hinge_grad as categorical_hinge_grad,
    hinge as hinge,
    hinge_grad as hinge_grad,
    squared_hinge as squared_hinge,
    squared_hinge_grad as squared_hinge_grad,
)
from fnn.losses._kernels import EPSILON as EPSILON
from fnn.losses._loss import (
    Loss as Loss,
    get as get,
    names as names,
)
from fnn.losses._overlap import (
    dice as dice,
    dice_grad as dice_grad,
    tversky as tversky,
    tversky_grad as tversky_grad,
)
from fnn.losses._probabilistic import (
    kl_divergence as kl_divergence,
    kl_divergence_grad as kl_divergence_grad,
    poisson as poisson,
    poisson_grad as poisson_grad,
)
from fnn.losses._regression import (
    cosine_similarity as cosine_similarity,
    cosine_similarity_grad as cosine_similarity_grad,
    huber as huber,
    huber_grad as huber_grad,
    log_cosh as log_cosh,
    log_cosh_grad as log_cosh_grad,
    mean_absolute_error as mean_absolute_error,
    mean_absolute_error_grad as mean_absolute_error_grad,
    mean_absolute_percentage_error as mean_absolute_percentage_error,
    mean_absolute_percentage_error_grad as mean_absolute_percentage_error_grad,
    mean_squared_error as mean_squared_error,
    mean_squared_error_grad as mean_squared_error_grad,
    mean_squared_logarithmic_error as mean_squared_logarithmic_error,
    mean_squared_logarithmic_error_grad as mean_squared_logarithmic_error_grad,
)
from fnn.losses._targets import check_targets as check_targets

__all__ = [
    "EPSILON", "Loss", "get", "custom", "names", "check_targets",
    "mean_squared_error", "mean_squared_error_grad",
    "mean_absolute_error", "mean_absolute_error_grad",
    "mean_absolute_percentage_error", "mean_absolute_percentage_error_grad",
    "mean_squared_logarithmic_error", "mean_squared_logarithmic_error_grad",
    "huber", "huber_grad",
    "log_cosh", "log_cosh_grad",
    "binary_crossentropy", "binary_crossentropy_grad",
    "binary_focal_crossentropy", "binary_focal_crossentropy_grad",
    "categorical_crossentropy", "categorical_crossentropy_grad",
    "sparse_categorical_crossentropy", "sparse_categorical_crossentropy_grad",
    "categorical_focal_crossentropy", "categorical_focal_crossentropy_grad",
    "categorical_generalized_cross_entropy", "categorical_generalized_cross_entropy_grad",
    "kl_divergence", "kl_divergence_grad",
    "poisson", "poisson_grad",
    "hinge", "hinge_grad",
    "squared_hinge", "squared_hinge_grad",
    "categorical_hinge", "categorical_hinge_grad",
    "cosine_similarity", "cosine_similarity_grad",
    "dice", "dice_grad",
    "tversky", "tversky_grad",
    "circle", "circle_grad",
    "ctc", "ctc_grad",
]  # fmt: skip


def __dir__() -> list[str]:
    """The public API only (implementation imports stay out of ``dir``)."""
    return sorted(__all__)
