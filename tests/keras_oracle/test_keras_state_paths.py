"""State naming and tracking that real Keras 3 programs observe, against Keras 3 itself (torch backend):
which variables ``variables`` / ``weights`` list (seed-generator state), optimizer variable names, and
``compile`` refusing a lone metric."""
from __future__ import annotations

import re

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


# ------------------------------------------------------------------------------- seed-generator state
def _seedless(path: str) -> str:
    """A path without Keras's per-process counters (``seed_generator_3`` -> ``seed_generator``)."""
    return re.sub(r"_\d+(?=/|$)", "", path)


def _label(v) -> str:
    """A seed state by its path, a weight by its name (the paths of nested weights still differ)."""
    return _seedless(v.path) if "seed_generator" in v.path else v.name


LAYERS = {   # name: (constructor, build shape or None)
    "Dropout": (lambda L: L.Dropout(0.5), None), "Dropout0": (lambda L: L.Dropout(0.0), None),
    "SpatialDropout1D": (lambda L: L.SpatialDropout1D(0.5), None), "GaussianNoise0": (lambda L: L.GaussianNoise(0.0), None),
    "GaussianNoise": (lambda L: L.GaussianNoise(0.1), None), "GaussianDropout": (lambda L: L.GaussianDropout(0.2), None),
    "AlphaDropout": (lambda L: L.AlphaDropout(0.2), None), "RandomFlip": (lambda L: L.RandomFlip(), None),
    "RandomRotation": (lambda L: L.RandomRotation(0.1), None), "RandomCrop": (lambda L: L.RandomCrop(2, 2), None),
    "RandomColorJitter": (lambda L: L.RandomColorJitter(brightness_factor=0.1), None),
    "AutoContrast": (lambda L: L.AutoContrast(), None), "MixUp": (lambda L: L.MixUp(), None),
    "LSTM": (lambda L: L.LSTM(2, dropout=0.1), (2, 3, 4)), "GRU": (lambda L: L.GRU(2), (2, 3, 4)),
    "ConvLSTM1D": (lambda L: L.ConvLSTM1D(2, 3), (2, 3, 5, 4)), "Attention0": (lambda L: L.Attention(), None),
    "AdditiveAttention": (lambda L: L.AdditiveAttention(dropout=0.1), None),
}   # Bidirectional matches too (two states), but Keras's first one costs 3 CPU-seconds of imports


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_variables_list_seed_state_as_keras(name):
    make, shape = LAYERS[name]
    got = {}
    for lib, k in LIBS.items():
        layer = make(k.layers)
        if shape is not None:
            layer.build(shape)
        got[lib] = ([(_label(v), v.trainable) for v in layer.variables],
                    [_label(v) for v in layer.non_trainable_variables],
                    [_label(v) for v in layer.weights + layer.non_trainable_weights])
    assert got["onnxforge"] == got["keras"]


def _noisy_model(k):
    return k.Sequential([k.Input((4,)), k.layers.Dense(3, name="d1"), k.layers.Dropout(0.5, name="drop"),
                         k.layers.GaussianNoise(0.1, name="noise"), k.layers.Dense(2, name="d2")], name="s")


def test_model_variables_weights_counts_and_files_as_keras(tmp_path):
    import h5py
    got = {}
    for lib, k in LIBS.items():
        model = _noisy_model(k)
        lines: list[str] = []
        model.summary(print_fn=lambda line, **_: lines.append(line))
        totals = re.findall(r"params: ([\d,]+)", "\n".join(lines))
        path = tmp_path / f"{lib}.weights.h5"
        model.save_weights(str(path))
        with h5py.File(path) as f:
            stored = []
            f.visit(lambda key: stored.append(key) if isinstance(f[key], h5py.Dataset) else None)
        got[lib] = ([(v.name, v.trainable, tuple(v.shape)) for v in model.variables],
                    [v.name for v in model.non_trainable_variables], [v.name for v in model.weights],
                    [w.shape for w in model.get_weights()], model.count_params(), totals, sorted(stored))
    assert got["onnxforge"] == got["keras"]
    assert got["keras"][1] == ["seed_generator_state"] * 2   # the comparison has something to compare


def test_a_listed_seed_generator_leaves_numpys_global_stream_alone():
    """Building a Dropout must not shift what a program seeded with ``np.random.seed`` draws next."""
    from onnxforge import keras as fkeras
    np.random.seed(3)
    expected = np.random.rand()
    np.random.seed(3)
    fkeras.layers.Dropout(0.5)
    assert np.random.rand() == expected


def test_state_lists_pair_with_stateless_call():
    from onnxforge import keras as fkeras
    model = _noisy_model(fkeras)
    trainable = [v.numpy() for v in model.trainable_variables]
    frozen = [v.numpy() for v in model.non_trainable_variables]
    out, new_frozen = model.stateless_call(trainable, frozen, np.ones((2, 4), "float32"), training=True)
    assert np.asarray(out).shape == (2, 2) and len(new_frozen) == len(frozen) == 2


def test_a_users_seed_generator_is_listed_and_still_saved(tmp_path):
    """Built-in layers' generators are only listed: a file's saved SeedGenerator states are the user's alone,
    as in files written before they were listed, which therefore still load."""
    import onnxforge
    from onnxforge import keras as fkeras

    class Noisy(fkeras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.gen = fkeras.random.SeedGenerator(7, name="mine")

        def call(self, x):
            return x + fkeras.random.normal(fkeras.ops.shape(x), seed=self.gen)

    x = fkeras.Input((3,))
    model = fkeras.Model(x, fkeras.layers.Dropout(0.5)(Noisy()(x)))
    assert [_seedless(v.path) for v in model.non_trainable_variables] == ["mine/state", "seed_generator/seed_generator_state"]
    assert [v.path for v in model.rng_variables()] == ["mine/state"]
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.ones((4, 3), "float32"), np.ones((4, 3), "float32"), verbose=0)
    noisy = model.layers[1]
    noisy.gen.state.assign(np.asarray([7, 5], np.int64))
    model.save(str(tmp_path / "m.onnx"))
    loaded = onnxforge.saving.load_model(str(tmp_path / "m.onnx"), custom_objects={"Noisy": Noisy})
    assert [v.numpy().tolist() for v in loaded.rng_variables()[1:]] == [[7, 5]]
