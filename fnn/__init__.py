"""fnn: fully-connected neural networks as pure JAX functions, with hand-written backpropagation.

>>> import fnn, jax
>>> net = fnn.mlp([64, 10], activation="relu")
>>> params = net.init(jax.random.PRNGKey(0), (8,))

Everything public is listed in ``__all__``; submodules (``fnn.losses``, ``fnn.optimizers``,
``fnn.callbacks``...) are public namespaces of their own.
"""
from fnn import (
    activations,
    callbacks,
    checkpoint,
    data,
    datasets,
    initializers,
    losses,
    metrics,
    optimizers,
    parallel,
    schedules,
)
from fnn.grad import GradcheckReport, gradcheck, value_and_grad, with_manual_vjp
from fnn.layers import Activation, Dense, Dropout, Flatten, Layer, LayerNorm, Network, mlp, serial
from fnn.metrics import evaluate
from fnn.many import SweepResult, fit_many, sweep
from fnn.train import FitResult, History, eval_step, fit, train_step

__version__ = "0.1.0"

__all__ = [
    # layers and networks
    "Layer", "Network", "Dense", "Activation", "Dropout", "LayerNorm", "Flatten", "serial", "mlp",
    # gradients
    "value_and_grad", "gradcheck", "GradcheckReport", "with_manual_vjp",
    # training
    "fit", "FitResult", "History", "train_step", "eval_step", "evaluate", "fit_many", "sweep", "SweepResult",
    # namespaces
    "activations", "initializers", "losses", "optimizers", "schedules", "callbacks", "metrics",
    "data", "datasets", "checkpoint", "parallel",
]
