r"""The named optimizer :func:`muon`: Keras's Muon, orthogonalised momentum for the weight
matrices and Adam for the other parameters, with decoupled weight decay for both."""

from __future__ import annotations

from typing import Any

from fnn._validate import hyper
from fnn.optimizers._alias_args import LearningRate, active, check_learning_rate, other_names
from fnn.optimizers._base import GradientTransformation, chain
from fnn.optimizers._inject import inject_hyperparams
from fnn.optimizers._muon import NS_COEFFICIENTS, muon_leaves, scale_by_muon
from fnn.optimizers._transform import add_decayed_weights, scale_by_learning_rate


def _muon(
    learning_rate, adam_beta_1, adam_beta_2, adam_weight_decay, epsilon, weight_decay, muon_a, muon_b, muon_c,
    adam_lr_ratio, momentum, ns_steps, nesterov, rms_rate, mask,
) -> GradientTransformation:  # fmt: skip
    to_muon, to_adam = muon_leaves(mask)
    direction = scale_by_muon(
        momentum, nesterov, ns_steps, muon_a, muon_b, muon_c, rms_rate, adam_beta_1, adam_beta_2, epsilon,
        adam_lr_ratio, mask,
    )  # fmt: skip
    links = [direction]
    if weight_decay is not None:  # decoupled, each group its own λ, both times γ (not γρ), as Keras
        links.append(add_decayed_weights(weight_decay, mask=to_muon))
    if adam_weight_decay is not None:
        links.append(add_decayed_weights(adam_weight_decay, mask=to_adam))
    return chain(*links, scale_by_learning_rate(learning_rate))


def _decay(name: str, value: Any) -> Any:
    """A weight decay: None (Keras's "off") or a number ``>= 0``; off when 0 (:func:`active`)."""
    return None if value is None else active(hyper(name, value, lo=0.0))


@other_names
def muon(
    learning_rate: LearningRate = 1e-3,
    adam_beta_1: float = 0.9,
    adam_beta_2: float = 0.999,
    adam_weight_decay: float | None = 0.004,
    epsilon: float = 1e-7,
    weight_decay: float | None = 0.004,
    muon_a: float = NS_COEFFICIENTS[0],
    muon_b: float = NS_COEFFICIENTS[1],
    muon_c: float = NS_COEFFICIENTS[2],
    adam_lr_ratio: float = 1.0,
    momentum: float = 0.95,
    ns_steps: int = 5,
    nesterov: bool = True,
    rms_rate: float | None = 0.2,
    mask: Any = None,
) -> GradientTransformation:
    r"""Muon (Jordan et al. 2024), ``keras.optimizers.Muon``: each weight matrix moves along its
    momentum orthogonalised by Newton-Schulz iterations; every other parameter (biases,
    LayerNorm scales: any leaf that is not 2-D) by Adam.

    A 2-D leaf :math:`\theta` of shape :math:`(n, m)` where ``mask`` is True:

    .. math::
        B_t = \mu B_{t-1} + g_t;\quad
        \tilde B_t = g_t + \mu B_t \text{ (nesterov) else } B_t;\quad
        O_t = \mathrm{NS}^{(a,b,c)}_K(\tilde B_t);

        \theta_t \leftarrow \theta_{t-1} - \gamma\lambda\theta_{t-1}
        - \gamma\, r \sqrt{\max(n, m)}\; O_t

    and every other leaf:

    .. math::
        m_t = m_{t-1} + (g_t - m_{t-1})(1-\beta_1);\quad
        v_t = v_{t-1} + (g_t^2 - v_{t-1})(1-\beta_2);

        \theta_t \leftarrow \theta_{t-1} - \gamma\lambda_a\theta_{t-1}
        - \gamma\rho \frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\, \frac{m_t}{\sqrt{v_t} + \epsilon}

    with :math:`\mathrm{NS}_K` the :math:`K` Newton-Schulz iterations of
    :func:`scale_by_muon` (the quintic :math:`X \leftarrow aX + (bA + cA^2)X`,
    :math:`A = XX^\top`, from :math:`X_0 = \tilde B_t / (\lVert\tilde B_t\rVert_F + 10^{-7})`),
    :math:`\mu` = momentum, :math:`K` = ns_steps, :math:`(a, b, c)` = (muon_a, muon_b, muon_c),
    :math:`r` = rms_rate (the factor :math:`r\sqrt{\max(n, m)}` left out when None),
    :math:`\lambda, \lambda_a` = weight_decay, adam_weight_decay, :math:`\rho` = adam_lr_ratio.
    ``= chain(scale_by_muon(μ, nesterov, K, a, b, c, r, β1, β2, ε, ρ, mask),
    add_decayed_weights(λ, mask=Muon leaves), add_decayed_weights(λ_a, mask=Adam leaves),
    scale_by_learning_rate(γ))``.

    Keras's arguments, names and defaults, and its rule to the float32 rounding (its trajectory
    is in the tests). Where Keras reads layer paths, fnn reads shapes: Keras's
    ``exclude_layers`` (patterns of variable paths sent to Adam) and ``exclude_embeddings`` have
    no paths to match in a params pytree; ``mask`` says the same by structure (False: Adam), as
    :func:`masked` takes it. torch's ``torch.optim.Muon`` differs: it refuses leaves that are
    not 2-D (use it beside AdamW), keeps the momentum as an average (the same direction),
    iterates in bfloat16, adds ``eps`` as a floor of the norm, scales by
    :math:`\sqrt{\max(1, A/B)}` for its ``(out, in)`` weights by default (``adjust_lr_fn=
    "match_rms_adamw"`` is Keras's rule with r = 0.2), and decays by :math:`\gamma\lambda` with
    λ = 0.1.

    Args:
        learning_rate: γ, a float ``>= 0`` or a schedule ``step -> rate`` (:mod:`fnn.schedules`;
            ``step`` counts updates from 0).
        adam_beta_1: β1 in [0, 1), the decay of the Adam leaves' first moment.
        adam_beta_2: β2 in [0, 1), the decay of their second moment.
        adam_weight_decay: λ_a >= 0, the Adam leaves' decoupled weight decay, times γ (0 or
            None: the term is left out of the chain).
        epsilon: ε >= 0, added to :math:`\sqrt{v_t}` (Keras's "epsilon hat").
        weight_decay: λ >= 0, the Muon leaves' decoupled weight decay, times γ (0 or None: left
            out).
        muon_a: a, the quintic's linear coefficient.
        muon_b: b, its cubic coefficient.
        muon_c: c, its quintic coefficient.
        adam_lr_ratio: ρ >= 0, the Adam step's learning rate as a ratio of γ (not its decay's).
        momentum: μ >= 0, the Muon leaves' momentum.
        ns_steps: K, the Newton-Schulz iterations, an int in [0, 100) (a static option: not held
            in the state, and a muon of another K compiles its own programs).
        nesterov: Orthogonalise :math:`g_t + \mu B_t` rather than :math:`B_t`.
        rms_rate: r >= 0, the Muon step scaled by r·sqrt(max(n, m)) (Liu et al. 2025: about
            Adam's RMS, so Adam's learning rate and weight decay fit), or None: not scaled.
        mask: None (every 2-D leaf takes the Muon step), or a pytree of Python bools with the
            structure of params (or a prefix of it), or a function ``params -> mask``: the 2-D
            leaves marked False take the Adam step (Keras advises it for the output layer:
            ``mask=[True] * (len(params) - 1) + [False]`` for an ``mlp``). A static option.

    Returns:
        The optimizer, a :class:`GradientTransformation` with its hyperparameters held in the
        state (:func:`inject_hyperparams`).

    Raises:
        ValueError: For a value out of range (a negative learning rate, a beta outside [0, 1),
            ns_steps < 0...); at init/update, for a mask that does not fit the params.
        TypeError: For a value of the wrong type (ns_steps not an int, nesterov not a bool...).

    Examples:
        A matrix's first step is its gradient orthogonalised, times γ·r·sqrt(max(n, m)) (here
        0.5·1·2 = 1): gradients of sizes 3, 1, 0.5 and 2 all move their entries by about 1 (the
        quintic leaves every singular value in about [0.7, 1.2]), against their signs:

        >>> import fnn, jax.numpy as jnp
        >>> opt = fnn.optimizers.muon(0.5, rms_rate=1.0, weight_decay=0, nesterov=False)
        >>> params = {"w": jnp.zeros((4, 4))}
        >>> updates, _ = opt.update({"w": jnp.diag(jnp.array([3.0, -1.0, 0.5, 2.0]))}, opt.init(params), params)
        >>> [round(u, 2) for u in jnp.diag(updates["w"]).tolist()]
        [-1.11, 0.69, -0.7, -0.69]
    """
    return inject_hyperparams(_muon, static_args=("ns_steps", "mask"))(
        check_learning_rate(learning_rate), adam_beta_1, adam_beta_2, _decay("adam_weight_decay", adam_weight_decay),
        epsilon, _decay("weight_decay", weight_decay), muon_a, muon_b, muon_c, adam_lr_ratio, momentum, ns_steps,
        nesterov, rms_rate, mask,
    )  # fmt: skip
