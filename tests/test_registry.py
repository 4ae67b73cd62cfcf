"""One name rule for every registry: case and underscores are ignored (Keras's and PyTorch's
class names resolve), and an unknown name lists the known ones."""

from __future__ import annotations

import pytest

import fnn
from fnn._registry import Registry, normalize

CLASS_NAMES = [
    (fnn.activations.get, "ReLU", "relu"),
    (fnn.activations.get, "LeakyReLU", "leaky_relu"),
    (fnn.activations.get, "Swish", "silu"),
    (fnn.initializers.get, "GlorotUniform", fnn.initializers.glorot_uniform()),
    (fnn.initializers.get, "KaimingNormal", fnn.initializers.kaiming_normal()),  # torch names follow torch
    (fnn.initializers.get, "HeNormal", fnn.initializers.he_normal()),
    (fnn.losses.get, "MeanSquaredError", "mean_squared_error"),
    (fnn.losses.get, "KLDivergence", "kl_divergence"),
    (fnn.losses.get, "SparseCategoricalCrossentropy", "sparse_categorical_crossentropy"),
    (fnn.metrics.get, "SparseCategoricalAccuracy", "sparse_categorical_accuracy"),
    (fnn.metrics.get, "RootMeanSquaredError", "rmse"),
]


@pytest.mark.parametrize("get,name,want", CLASS_NAMES, ids=[c[1] for c in CLASS_NAMES])
def test_class_names_resolve(get, name, want):
    got = get(name)
    if isinstance(want, str):
        assert getattr(got, "name", None) == want or getattr(got, "scores", None) is fnn.metrics.get(want).scores
    else:
        assert got == want


def test_optimizer_and_schedule_names():
    assert fnn.optimizers.get("Adam", learning_rate=0.5).update == fnn.optimizers.adam(0.5).update
    assert fnn.optimizers.get("RMSprop").update == fnn.optimizers.rmsprop().update
    assert fnn.optimizers.get("AdamW").update == fnn.optimizers.adamw().update
    s = fnn.schedules.get("CosineDecay", init_value=1.0, decay_steps=4)
    assert float(s(4)) == pytest.approx(0.0, abs=1e-7)
    assert float(fnn.schedules.get("PiecewiseConstantDecay", boundaries=[1], values=[1.0, 0.5])(2)) == 0.5
    assert float(fnn.schedules.get("OneCycleLR", total_steps=10, peak_value=1.0)(0)) == pytest.approx(0.04)


@pytest.mark.parametrize(
    "get,kind",
    [
        (fnn.activations.get, "activation"),
        (fnn.initializers.get, "initializer"),
        (fnn.losses.get, "loss"),
        (fnn.metrics.get, "metric"),
        (fnn.optimizers.get, "optimizer"),
        (fnn.schedules.get, "schedule"),
        (fnn.datasets.info, "data set"),
    ],
)
def test_unknown_names_list_the_known_ones(get, kind):
    with pytest.raises(ValueError, match=f"unknown {kind} 'nosuch'; known [a-z ]+: .+, .+"):
        get("nosuch")


def test_registry_rules():
    r = Registry("thing", {"foo_bar": 1, "baz": 2}, aliases={"fb": "foo_bar"})
    assert normalize("Foo_Bar") == normalize("FOOBAR") == "foobar"
    assert r.lookup("FooBar") == r.lookup("fb") == 1 and "foo-bar" in r and 3 not in r
    assert r.names() == ["baz", "fb", "foo_bar"]
    with pytest.raises(TypeError, match="thing name must be a str"):
        r.lookup(3)
    with pytest.raises(KeyError):
        Registry("thing", {"a": 1}, aliases={"b": "c"})
