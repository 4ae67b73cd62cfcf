r"""Optimizers as compositions of ``(init, update)`` transforms, optax-style.

An optimizer is a recipe: ``adam(1e-3)`` is
``chain(scale_by_adam(), scale_by_learning_rate(1e-3))`` with its hyperparameters injected into
the state (:func:`inject_hyperparams`), so a new learning rate never recompiles and two Adams
that differ only in values share compiled programs. The rules live once, in the transforms:

* direction transforms: :func:`scale_by_adam`, :func:`scale_by_adamax`, :func:`scale_by_nadam`,
  :func:`scale_by_radam`, :func:`scale_by_rms`, :func:`scale_by_adagrad`,
  :func:`scale_by_adadelta`, :func:`scale_by_adafactor`, :func:`scale_by_rprop`,
  :func:`scale_by_lion`, :func:`scale_by_asgd` (with :func:`averaged_params`, ASGD's average of
  the parameters), :func:`scale_by_ftrl` (Keras's FTRL, the whole update), :func:`scale_by_muon`
  (Newton-Schulz-orthogonalised momentum for matrices, Keras's Adam for the other leaves) and
  :func:`trace` (momentum, Nesterov, dampening);
* :func:`add_decayed_weights` (coupled L2 before the direction, decoupled AdamW decay after it),
  :func:`scale_by_learning_rate`, :func:`scale`, :func:`scale_by_schedule`,
  :func:`scale_by_trust_ratio`, :func:`clip_by_global_norm`, :func:`clip_by_value`;
* composition: :func:`chain`, :func:`masked` (optax's semantics: masked-out leaves pass through
  untouched), :func:`freeze` (zero updates where the mask is True), :func:`inject_hyperparams`.

``update(grads, state, params=None)`` returns ``(updates, state)``; :func:`apply_updates` adds
them, keeping each leaf's dtype. Moments are kept in float32 or wider (bfloat16/float16
parameters included) and ``eps`` never rounds to zero. A new optimizer is a few lines, e.g.
the paper's LAMB, its decay inside the trust ratio (:func:`lamb` is Keras's, decay first)::

    lamb = chain(scale_by_adam(), add_decayed_weights(0.01), scale_by_trust_ratio(),
                 scale_by_learning_rate(1e-3))

The transforms hold their values in the program, as optax's do: that LAMB with another decay
compiles ``fit``'s epoch again. Written as a factory of its values and injected, its values are
state, and every value shares one program (the factory made once: functions compare by identity)::

    def lamb_of(weight_decay, learning_rate):
        return chain(scale_by_adam(), add_decayed_weights(weight_decay), scale_by_trust_ratio(),
                     scale_by_learning_rate(learning_rate))

    lamb = inject_hyperparams(lamb_of)
    lamb(0.01, 1e-3), lamb(0.1, 3e-3)  # one compiled epoch for both
"""

from fnn.optimizers._adafactor import (
    ScaleByAdafactorState as ScaleByAdafactorState,
    scale_by_adafactor as scale_by_adafactor,
)
from fnn.optimizers._adam import (
    ScaleByAdamaxState as ScaleByAdamaxState,
    ScaleByAdamState as ScaleByAdamState,
    ScaleByNadamState as ScaleByNadamState,
    ScaleByRadamState as ScaleByRadamState,
    scale_by_adam as scale_by_adam,
    scale_by_adamax as scale_by_adamax,
    scale_by_nadam as scale_by_nadam,
    scale_by_radam as scale_by_radam,
)
from fnn.optimizers._adaptive import (
    ScaleByAdadeltaState as ScaleByAdadeltaState,
    ScaleByAdagradState as ScaleByAdagradState,
    ScaleByRmsState as ScaleByRmsState,
    scale_by_adadelta as scale_by_adadelta,
    scale_by_adagrad as scale_by_adagrad,
    scale_by_rms as scale_by_rms,
)
from fnn.optimizers._alias import (
    get as get,
    names as names,
)
from fnn.optimizers._alias_adam import (
    adam as adam,
    adamax as adamax,
    adamw as adamw,
    nadam as nadam,
    radam as radam,
)
from fnn.optimizers._alias_adaptive import (
    adadelta as adadelta,
    adafactor as adafactor,
    adagrad as adagrad,
    rmsprop as rmsprop,
)
from fnn.optimizers._alias_keras import (
    ftrl as ftrl,
    lamb as lamb,
)
from fnn.optimizers._alias_muon import muon as muon
from fnn.optimizers._alias_sgd import (
    asgd as asgd,
    momentum as momentum,
    nesterov as nesterov,
    sgd as sgd,
)
from fnn.optimizers._alias_sign import (
    lion as lion,
    rprop as rprop,
)
from fnn.optimizers._asgd import (
    ScaleByAsgdState as ScaleByAsgdState,
    averaged_params as averaged_params,
    scale_by_asgd as scale_by_asgd,
)
from fnn.optimizers._base import (
    EmptyState as EmptyState,
    GradientTransformation as GradientTransformation,
    apply_updates as apply_updates,
    chain as chain,
    identity as identity,
    set_to_zero as set_to_zero,
    stateless as stateless,
)
from fnn.optimizers._ftrl import (
    ScaleByFtrlState as ScaleByFtrlState,
    scale_by_ftrl as scale_by_ftrl,
)
from fnn.optimizers._hyperparams import (
    get_hyperparams as get_hyperparams,
    set_hyperparams as set_hyperparams,
)
from fnn.optimizers._inject import (
    InjectHyperparamsState as InjectHyperparamsState,
    inject_hyperparams as inject_hyperparams,
)
from fnn.optimizers._learning_rates import (
    get_learning_rate as get_learning_rate,
    get_learning_rates as get_learning_rates,
    scale_learning_rates as scale_learning_rates,
    set_learning_rate as set_learning_rate,
    set_learning_rates as set_learning_rates,
)
from fnn.optimizers._masking import (
    MaskedNode as MaskedNode,
    MaskedState as MaskedState,
    freeze as freeze,
    masked as masked,
)
from fnn.optimizers._muon import (
    ScaleByMuonState as ScaleByMuonState,
    scale_by_muon as scale_by_muon,
)
from fnn.optimizers._sign import (
    ScaleByLionState as ScaleByLionState,
    ScaleByRpropState as ScaleByRpropState,
    scale_by_lion as scale_by_lion,
    scale_by_rprop as scale_by_rprop,
)
from fnn.optimizers._transform import (
    ScaleByScheduleState as ScaleByScheduleState,
    TraceState as TraceState,
    add_decayed_weights as add_decayed_weights,
    clip_by_global_norm as clip_by_global_norm,
    clip_by_value as clip_by_value,
    global_norm as global_norm,
    scale as scale,
    scale_by_learning_rate as scale_by_learning_rate,
    scale_by_schedule as scale_by_schedule,
    scale_by_trust_ratio as scale_by_trust_ratio,
    trace as trace,
)

__all__ = [
    # the protocol
    "GradientTransformation", "EmptyState", "apply_updates",
    # named optimizers
    "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adadelta", "adam", "adamw", "adamax",
    "nadam", "radam", "rprop", "lion", "asgd", "adafactor", "muon", "get", "names", "averaged_params",
    "lamb", "ftrl",
    # direction transforms and their states
    "scale_by_adam", "scale_by_adamax", "scale_by_nadam", "scale_by_radam", "scale_by_rms",
    "scale_by_adagrad", "scale_by_adadelta", "scale_by_rprop", "scale_by_lion", "scale_by_asgd",
    "scale_by_adafactor", "scale_by_muon", "trace", "scale_by_ftrl", "ScaleByFtrlState",
    "ScaleByAdamState", "ScaleByAdamaxState", "ScaleByNadamState", "ScaleByRadamState",
    "ScaleByRmsState", "ScaleByAdagradState", "ScaleByAdadeltaState", "ScaleByRpropState",
    "ScaleByLionState", "ScaleByAsgdState", "ScaleByAdafactorState", "ScaleByMuonState", "TraceState",
    # generic transforms
    "add_decayed_weights", "scale_by_learning_rate", "scale", "scale_by_schedule",
    "scale_by_trust_ratio", "clip_by_global_norm", "clip_by_value", "global_norm",
    "identity", "set_to_zero", "stateless", "ScaleByScheduleState",
    # composition
    "chain", "masked", "freeze", "MaskedState", "MaskedNode",
    # hyperparameters in the state
    "inject_hyperparams", "InjectHyperparamsState", "set_learning_rate", "get_learning_rate",
    "set_hyperparams", "get_hyperparams", "get_learning_rates", "set_learning_rates", "scale_learning_rates",
]  # fmt: skip


def __dir__() -> list[str]:
    """The public API only (implementation imports stay out of ``dir``)."""
    return sorted(__all__)
