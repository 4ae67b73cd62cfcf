"""fnn: fully-connected neural networks as pure JAX functions with hand-written backprop.

(Temporary lazy form while the package is assembled.)
"""
import importlib

_SOURCES = {
    "Layer": "layers", "Network": "layers", "Dense": "layers", "Activation": "layers", "Dropout": "layers",
    "LayerNorm": "layers", "Flatten": "layers", "serial": "layers", "mlp": "layers",
    "value_and_grad": "grad", "gradcheck": "grad", "GradcheckReport": "grad", "with_manual_vjp": "grad",
    "fit": "train", "FitResult": "train", "History": "train", "train_step": "train", "eval_step": "train",
    "evaluate": "metrics",
}


def __getattr__(name):
    if name in _SOURCES:
        return getattr(importlib.import_module(f"fnn.{_SOURCES[name]}"), name)
    return importlib.import_module(f"fnn.{name}")
