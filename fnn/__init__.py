"""fnn: fully-connected neural networks as pure JAX functions, with hand-written backpropagation.

>>> import fnn, jax
>>> net = fnn.mlp([64, 10], activation="relu")
>>> params = net.init(jax.random.PRNGKey(0), (8,))

Everything public is listed in ``__all__``; the namespaces (``fnn.layers``, ``fnn.losses``,
``fnn.optimizers``, ``fnn.train``, ``fnn.callbacks``...) are public too and list their own.
"""

from importlib.metadata import PackageNotFoundError as _PackageNotFoundError, version as _version

from fnn import (
    activations as activations,
    callbacks as callbacks,
    checkpoint as checkpoint,
    data as data,
    datasets as datasets,
    grad as grad,
    initializers as initializers,
    layers as layers,
    losses as losses,
    metrics as metrics,
    optimizers as optimizers,
    parallel as parallel,
    schedules as schedules,
    train as train,
)
from fnn._summary import (
    LayerSummary as LayerSummary,
    Summary as Summary,
    count_params as count_params,
    summary as summary,
)
from fnn.grad import (
    GradcheckReport as GradcheckReport,
    gradcheck as gradcheck,
    value_and_grad as value_and_grad,
    with_manual_vjp as with_manual_vjp,
)
from fnn.layers import (
    Activation as Activation,
    Dense as Dense,
    Dropout as Dropout,
    Flatten as Flatten,
    Layer as Layer,
    LayerNorm as LayerNorm,
    Network as Network,
    mlp as mlp,
    serial as serial,
)
from fnn.train import (
    FitResult as FitResult,
    History as History,
    SweepResult as SweepResult,
    eval_step as eval_step,
    evaluate as evaluate,
    fit as fit,
    fit_many as fit_many,
    predict as predict,
    sweep as sweep,
    train_step as train_step,
)

try:  # the version lives in one place: pyproject.toml
    __version__ = _version("fnn")
except _PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    # layers and networks
    "Layer", "Network", "Dense", "Activation", "Dropout", "LayerNorm", "Flatten", "serial", "mlp",
    "summary", "Summary", "LayerSummary", "count_params",
    # gradients
    "value_and_grad", "gradcheck", "GradcheckReport", "with_manual_vjp",
    # training
    "fit", "FitResult", "History", "train_step", "eval_step", "evaluate", "predict", "fit_many", "sweep", "SweepResult",
    # namespaces
    "activations", "initializers", "layers", "losses", "grad", "optimizers", "schedules", "train",
    "callbacks", "metrics", "data", "datasets", "checkpoint", "parallel",
]  # fmt: skip


def __dir__() -> list[str]:
    return sorted([*__all__, "__version__"])
