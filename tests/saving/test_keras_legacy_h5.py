"""Keras's legacy HDF5 model files: written by Keras 3's legacy path (``keras.saving.save_model(m, "x.h5")``)
and loaded by onnxforge with Keras's predictions and optimizer state; written by onnxforge and loaded by
Keras; tf.keras 2-style configs (no modules, list-form nodes, ``:0`` weight names); ``load_weights``."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.saving.keras_oracle import h5py, inputs_for, keras, max_diff, randomize
from tests.saving.test_keras_archive import MODELS, _targets

import onnxforge as of  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5 file")]
L = keras.layers


def _keras_legacy(name, folder, steps=2):
    kmodel = MODELS[name]()
    randomize(kmodel)
    multi = len(kmodel.outputs) > 1
    kmodel.compile(optimizer=keras.optimizers.Adam(0.01),
                   loss=[keras.losses.MeanSquaredError(), keras.losses.CategoricalCrossentropy()] if multi
                   else keras.losses.MeanSquaredError())
    x, y = inputs_for(kmodel), _targets(kmodel)
    kmodel.fit(x, y, batch_size=4, epochs=steps, shuffle=False, verbose=0)
    keras.saving.save_model(kmodel, folder / "k.h5")
    return kmodel, x, y


@pytest.mark.parametrize("name", sorted(MODELS))
def test_keras_legacy_h5_loads_with_keras_predictions(name, tmp_path):
    kmodel, x, _ = _keras_legacy(name, tmp_path)
    model = of.load_model(tmp_path / "k.h5")
    assert max_diff(kmodel.predict(x, verbose=0), model.predict(x, verbose=0)) <= 1e-6
    assert int(model.optimizer.iterations.numpy()) == 2


def test_legacy_h5_optimizer_state_continues_training(tmp_path):
    kmodel, x, y = _keras_legacy("seq_cnn", tmp_path)
    model = of.load_model(tmp_path / "k.h5")
    kmodel.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(kmodel.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, atol=2e-5)


def test_onnxforge_legacy_h5_loads_in_keras(tmp_path):
    kmodel, x, y = _keras_legacy("functional_multi_io", tmp_path, steps=0)
    model = of.load_model(tmp_path / "k.h5", compile=False)
    model.compile(optimizer=of.optimizers.Adam(0.01),
                  loss=[of.losses.MeanSquaredError(), of.losses.CategoricalCrossentropy()], device="cpu")
    model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    with pytest.warns(UserWarning, match="legacy"):
        model.save(tmp_path / "ours.h5")
    loaded = keras.saving.load_model(tmp_path / "ours.h5")
    assert max_diff(model.predict(x, verbose=0), loaded.predict(x, verbose=0)) <= 1e-6
    assert loaded.compiled
    # Keras 3.15 builds a legacy file's optimizer for no variables (its own files too), so it cannot take the
    # stored state; onnxforge does: reading our file back resumes training exactly.
    again = of.load_model(tmp_path / "ours.h5")
    assert int(again.optimizer.iterations.numpy()) == 2
    for a, b in zip(again.optimizer.get_weights(), model.optimizer.get_weights()):
        np.testing.assert_array_equal(a, b)
    again.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(again.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_load_weights_from_legacy_h5_in_order_and_by_name(tmp_path):
    kmodel, x, _ = _keras_legacy("nested", tmp_path, steps=0)
    model = of.load_model(tmp_path / "k.h5", compile=False)
    model.set_weights([np.zeros_like(w) for w in model.get_weights()])
    model.load_weights(tmp_path / "k.h5")
    assert max_diff(kmodel.predict(x, verbose=0), model.predict(x, verbose=0)) <= 1e-6
    model.set_weights([np.zeros_like(w) for w in model.get_weights()])
    model.load_weights(tmp_path / "k.h5", by_name=True)
    assert max_diff(kmodel.predict(x, verbose=0), model.predict(x, verbose=0)) <= 1e-6
    smaller = of.Sequential([of.layers.Input((4,)), of.layers.Dense(2)])
    with pytest.raises(ValueError, match="Layer count mismatch when loading weights from file"):
        smaller.load_weights(tmp_path / "k.h5")


# ------------------------------------------------------------------------------------------ tf.keras 2 files
def _attr_names(names):
    return np.asarray([n.encode() for n in names]) if names else np.asarray([])


def _write_tf2_file(path, model_config, layers, training_config=None):
    """An HDF5 file laid out as tf.keras 2 wrote it: weight names with ``:0``, no module keys."""
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = json.dumps(model_config)
        if training_config is not None:
            f.attrs["training_config"] = json.dumps(training_config)
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = _attr_names([name for name, _ in layers])
        for name, weights in layers:
            lg = g.create_group(name)
            lg.attrs["weight_names"] = _attr_names([w for w, _ in weights])
            for w, value in weights:
                lg.create_dataset(w, data=value)


def test_tf_keras_2_functional_file(tmp_path):
    rng = np.random.default_rng(0)
    k1, b1 = rng.normal(size=(3, 4)).astype("float32"), rng.normal(size=4).astype("float32")
    k2, b2 = rng.normal(size=(4, 1)).astype("float32"), rng.normal(size=1).astype("float32")
    dense = lambda name, units, act: {"class_name": "Dense", "config": {  # noqa: E731
        "name": name, "trainable": True, "dtype": "float32", "units": units, "activation": act, "use_bias": True,
        "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
        "bias_initializer": {"class_name": "Zeros", "config": {}}, "kernel_regularizer": None,
        "bias_regularizer": None, "activity_regularizer": None, "kernel_constraint": None, "bias_constraint": None}}
    config = {"class_name": "Functional", "config": {"name": "model", "layers": [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 3], "dtype": "float32", "sparse": False,
                                                "ragged": False, "name": "input_1"}, "name": "input_1",
         "inbound_nodes": []},
        {**dense("dense", 4, "relu"), "name": "dense", "inbound_nodes": [[["input_1", 0, 0, {}]]]},
        {**dense("dense_1", 1, "linear"), "name": "dense_1", "inbound_nodes": [[["dense", 0, 0, {}]]]}],
        "input_layers": [["input_1", 0, 0]], "output_layers": [["dense_1", 0, 0]]}}
    training = {"loss": "mse", "metrics": [[{"class_name": "MeanMetricWrapper", "config": {
        "name": "mae", "dtype": "float32", "fn": "mean_absolute_error"}}]], "weighted_metrics": None,
        "loss_weights": None, "optimizer_config": {"class_name": "Adam", "config": {
            "name": "Adam", "learning_rate": 0.01, "decay": 0.0, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-07,
            "amsgrad": False, "jit_compile": True, "is_legacy_optimizer": False}}}
    _write_tf2_file(tmp_path / "tf2.h5", config, [
        ("dense", [("dense/kernel:0", k1), ("dense/bias:0", b1)]),
        ("dense_1", [("dense_1/kernel:0", k2), ("dense_1/bias:0", b2)]), ("input_1", [])], training)
    model = of.load_model(tmp_path / "tf2.h5")
    x = rng.normal(size=(5, 3)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), np.maximum(x @ k1 + b1, 0) @ k2 + b2, atol=1e-5)
    assert model.optimizer.learning_rate == pytest.approx(0.01)
    assert "mae" in model.evaluate(x, np.zeros((5, 1), np.float32), verbose=0, return_dict=True)
