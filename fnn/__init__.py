"""fnn: fully-connected neural networks as pure JAX functions, with hand-written backpropagation.

>>> import fnn, jax
>>> net = fnn.mlp([64, 10], activation="relu")
>>> params = net.init(jax.random.PRNGKey(0), (8,))

Everything public is listed in ``__all__``; the namespaces (``fnn.layers``, ``fnn.losses``,
``fnn.optimizers``, ``fnn.train``, ``fnn.callbacks``...) are public too and list their own.
"""

from importlib.metadata import PackageNotFoundError as _PackageNotFoundError
from importlib.metadata import version as _version

from fnn import (
    activations as activations,
)
from fnn import (
    callbacks as callbacks,
)
from fnn import (
    checkpoint as checkpoint,
)
from fnn import (
    data as data,
)
from fnn import (
    datasets as datasets,
)
from fnn import (
    grad as grad,
)
from fnn import (
    initializers as initializers,
)
from fnn import (
    layers as layers,
)
from fnn import (
    losses as losses,
)
from fnn import (
    metrics as metrics,
)
from fnn import (
    optimizers as optimizers,
)
from fnn import (
    parallel as parallel,
)
from fnn import (
    schedules as schedules,
)
from fnn import (
    train as train,
)
from fnn.grad import (
    GradcheckReport as GradcheckReport,
)
from fnn.grad import (
    gradcheck as gradcheck,
)
from fnn.grad import (
    value_and_grad as value_and_grad,
)
from fnn.grad import (
    with_manual_vjp as with_manual_vjp,
)
from fnn.layers import (
    Activation as Activation,
)
from fnn.layers import (
    Dense as Dense,
)
from fnn.layers import (
    Dropout as Dropout,
)
from fnn.layers import (
    Flatten as Flatten,
)
from fnn.layers import (
    Layer as Layer,
)
from fnn.layers import (
    LayerNorm as LayerNorm,
)
from fnn.layers import (
    Network as Network,
)
from fnn.layers import (
    mlp as mlp,
)
from fnn.layers import (
    serial as serial,
)
from fnn.train import (
    FitResult as FitResult,
)
from fnn.train import (
    History as History,
)
from fnn.train import (
    SweepResult as SweepResult,
)
from fnn.train import (
    eval_step as eval_step,
)
from fnn.train import (
    evaluate as evaluate,
)
from fnn.train import (
    fit as fit,
)
from fnn.train import (
    fit_many as fit_many,
)
from fnn.train import (
    sweep as sweep,
)
from fnn.train import (
    train_step as train_step,
)

try:  # the version lives in one place: pyproject.toml
    __version__ = _version("fnn")
except _PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    # layers and networks
    "Layer", "Network", "Dense", "Activation", "Dropout", "LayerNorm", "Flatten", "serial", "mlp",
    # gradients
    "value_and_grad", "gradcheck", "GradcheckReport", "with_manual_vjp",
    # training
    "fit", "FitResult", "History", "train_step", "eval_step", "evaluate", "fit_many", "sweep", "SweepResult",
    # namespaces
    "activations", "initializers", "layers", "losses", "grad", "optimizers", "schedules", "train",
    "callbacks", "metrics", "data", "datasets", "checkpoint", "parallel",
]  # fmt: skip


def __dir__() -> list[str]:
    return sorted([*__all__, "__version__"])
