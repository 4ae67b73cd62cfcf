"""fnn: fully-connected neural networks as pure JAX functions, with hand-written backpropagation.

A network is a pair of pure functions over a params pytree (:func:`mlp`, :func:`serial`); each
layer, activation and loss carries its hand-written derivative beside its forward rule, which
:func:`gradcheck` compares with ``jax.grad`` and finite differences. Optimizers are optax-style
chains (:mod:`fnn.optimizers`), and :func:`fit` trains with Keras's semantics, one compiled
program per epoch (:mod:`fnn.train`, :mod:`fnn.callbacks`, :mod:`fnn.checkpoint`).

>>> import fnn, jax
>>> net = fnn.mlp([64, 10], activation="relu")
>>> params = net.init(jax.random.PRNGKey(0), (8,))
>>> fnn.count_params(params)  # 8*64 + 64 + 64*10 + 10
1226

With ``loss = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)`` (the last
layer is linear: it outputs logits), ``result = fnn.fit(net, params, "adam", loss, x, y,
epochs=10)`` trains it on ``x`` of shape ``(N, 8)`` and integer labels ``y`` of shape ``(N,)``,
and ``fnn.predict(net, result.params, x)`` runs it.

Everything public is listed in ``__all__``; the namespaces (``fnn.layers``, ``fnn.losses``,
``fnn.optimizers``, ``fnn.train``, ``fnn.callbacks``...) are public too and list their own.
"""

from importlib.metadata import PackageNotFoundError as _PackageNotFoundError, version as _version

from fnn._import_guard import ctrl_c_kept as _ctrl_c_kept

# A Ctrl-C that lands in JAX's gc callback while these import is raised once they are done
# (Python would print it as ignored and go on).
with _ctrl_c_kept():
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
    from fnn._cache import clear_caches as clear_caches
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
        Reshape as Reshape,
        UnitNormalization as UnitNormalization,
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
    "Layer", "Network", "Dense", "Activation", "Dropout", "LayerNorm", "UnitNormalization", "Flatten", "Reshape",
    "serial", "mlp",
    "summary", "Summary", "LayerSummary", "count_params",
    # gradients
    "value_and_grad", "gradcheck", "GradcheckReport", "with_manual_vjp",
    # training
    "fit", "FitResult", "History", "train_step", "eval_step", "evaluate", "predict", "fit_many", "sweep", "SweepResult",
    "clear_caches",
    # namespaces
    "activations", "initializers", "layers", "losses", "grad", "optimizers", "schedules", "train",
    "callbacks", "metrics", "data", "datasets", "checkpoint", "parallel",
]  # fmt: skip


def __dir__() -> list[str]:
    return sorted([*__all__, "__version__"])
