"""State naming and tracking that real Keras 3 programs observe, against Keras 3 itself (torch backend):
which variables ``variables`` / ``weights`` list (seed-generator state), optimizer variable names, and
``compile`` refusing a lone metric."""
from __future__ import annotations

import numpy as np
import pytest

from tests.keras_oracle.common import LIBS


def _refusal(k, **compile_args) -> str:
    x = k.Input((3,))
    model = k.Model(x, k.layers.Dense(1, activation="sigmoid")(x))
    with pytest.raises(ValueError) as info:
        model.compile(optimizer="sgd", loss="binary_crossentropy", **compile_args)
    return str(info.value).split(" of type ")[0]   # the type's module path differs between the libraries


@pytest.mark.parametrize("arg", ["metrics", "weighted_metrics"])
@pytest.mark.parametrize("metric", ["accuracy", "auc_object"])
def test_a_lone_metric_is_refused_as_in_keras(arg, metric):
    got = {}
    for lib, k in LIBS.items():
        value = k.metrics.AUC(name="auc") if metric == "auc_object" else metric
        got[lib] = _refusal(k, **{arg: value})
    assert got["onnxforge"].replace("'auc'", "auc") == got["keras"]


def test_empty_metrics_are_accepted_as_in_keras():
    for k in LIBS.values():
        x = k.Input((3,))
        model = k.Model(x, k.layers.Dense(1)(x))
        model.compile(optimizer="sgd", loss="mse", metrics=[], weighted_metrics=None)
        logs = model.evaluate(np.ones((2, 3), "float32"), np.ones((2, 1), "float32"), verbose=0, return_dict=True)
        assert list(logs) == ["loss"]


def test_a_saved_lone_metric_still_loads():
    """Files written before compile refused a lone metric hold one in their compile config."""
    from onnxforge import keras as fkeras
    x = fkeras.Input((3,))
    model = fkeras.Model(x, fkeras.layers.Dense(1, activation="sigmoid")(x))
    model.compile_from_config({"optimizer": "sgd", "loss": "binary_crossentropy", "metrics": "accuracy"})
    logs = model.evaluate(np.ones((2, 3), "float32"), np.ones((2, 1), "float32"), verbose=0, return_dict=True)
    assert sorted(logs) == ["accuracy", "loss"]
