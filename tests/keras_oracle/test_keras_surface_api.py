"""Small Keras 3.15 attributes and switches real programs touch, against Keras 3 (torch backend):
``Model.run_eagerly`` / ``jit_compile``, ``path``, ``metrics_variables``, the state tree, ``keras.name_scope``,
``keras.device``, ``keras.config.enable_unsafe_deserialization`` / ``set_backend``, ``keras.utils.Config`` and the
interactive-logging switches of ``keras.utils``."""
from __future__ import annotations

import logging

import numpy as np
import pytest

import onnxforge.layers.safe_mode as safe_mode_module
from tests.keras_oracle.common import LIBS, fkeras, keras


def _functional(k, name="fun"):
    x = k.Input((3,), name="x")
    h = k.layers.Dense(4, name="hidden")(x)
    h = k.layers.BatchNormalization(name="norm")(h)
    return k.Model(x, k.layers.Dense(2, name="out")(h), name=name)


def _data(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3)).astype("float32"), rng.normal(size=(n, 2)).astype("float32")


@pytest.mark.parametrize("kwargs", [{}, {"run_eagerly": True}, {"jit_compile": False},
                                    {"run_eagerly": True, "jit_compile": False}])
def test_run_eagerly_and_jit_compile_as_keras_stores_them(kwargs):
    got = {}
    for name, k in LIBS.items():
        model = _functional(k)
        before = (model.run_eagerly, model.jit_compile)
        model.compile(optimizer="sgd", loss="mse", **kwargs)
        got[name] = before + (model.run_eagerly, model.jit_compile)
        model.run_eagerly = not model.run_eagerly   # settable, as in Keras
        model.jit_compile = False
        got[name] += (model.run_eagerly, model.jit_compile)
    assert got["onnxforge"] == got["keras"]


def test_run_eagerly_true_still_trains_the_compiled_way():
    x, y = _data()
    weights = []
    for eager in (False, True):
        model = _functional(fkeras)
        model.set_weights([np.full(w.shape, 0.1, w.dtype) for w in model.get_weights()])
        model.compile(optimizer="sgd", loss="mse", run_eagerly=eager)
        model.fit(x, y, batch_size=4, epochs=2, verbose=0, shuffle=False)
        weights.append(model.get_weights())
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)


def test_paths_of_layers_and_models_match_keras_in_a_functional_model():
    paths = {}
    for name, k in LIBS.items():
        unbuilt = k.layers.Dense(2, name="solo")
        model = _functional(k)
        paths[name] = (unbuilt.path, model.path, [layer.path for layer in model.layers],
                       [v.path for v in model.weights])
    assert paths["onnxforge"] == paths["keras"]


def test_metrics_variables_after_fit_have_keras_paths():
    x, y = _data()
    got = {}
    for name, k in LIBS.items():
        model = _functional(k)
        model.compile(optimizer="adam", loss="mse", metrics=["mae"])
        model.fit(x, y, verbose=0)
        got[name] = [v.path for v in model.metrics_variables]
        assert k.layers.Dense(1).metrics_variables == []
    assert got["onnxforge"] == got["keras"]


def test_layer_metrics_and_their_variables():
    class Tracked(fkeras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.seen = fkeras.metrics.Mean(name="seen")

    layer = Tracked()
    assert layer.metrics == [layer.seen]
    assert [v.path for v in layer.metrics_variables] == ["seen/total", "seen/count"]


def _keys(tree):
    return {k: _keys(v) for k, v in tree.items()} if isinstance(tree, dict) else None


def test_state_tree_has_keras_structure_and_round_trips():
    x, y = _data()
    trees = {}
    for name, k in LIBS.items():
        model = _functional(k)
        model.compile(optimizer=k.optimizers.Adam(name="adam"), loss="mse", metrics=["mae"])
        model.fit(x, y, verbose=0)
        trees[name] = model.get_state_tree(value_format="numpy_array")
    mine, theirs = _keys(trees["onnxforge"]), _keys(trees["keras"])
    theirs["optimizer_variables"]["adam"].pop("learning_rate")   # a Variable in Keras, a float here
    assert mine == theirs

    model = _functional(fkeras)
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, verbose=0)
    tree = model.get_state_tree()
    tree["trainable_variables"]["out"]["kernel"] = np.ones((4, 2), np.float32)
    tree["non_trainable_variables"]["norm"]["moving_mean"] = np.full(4, 3.0, np.float32)
    tree["optimizer_variables"]["adam"]["iteration"] = np.asarray(7, np.int64)
    model.set_state_tree(tree)
    assert (model.get_layer("out").kernel.numpy() == 1).all()
    assert (model.get_layer("norm").moving_mean.numpy() == 3).all()
    assert int(model.optimizer.iterations) == 7
    with pytest.raises(ValueError, match="Unknown variable name"):
        model.set_state_tree({"weights": {}})
    with pytest.raises(ValueError, match="value_format"):
        model.get_state_tree("torch")


def test_name_scope_prefixes_variable_paths_as_keras():
    paths = {}
    for name, k in LIBS.items():
        with k.name_scope("outer"):
            with k.name_scope("inner"):
                a = k.Variable(1.0, name="a")
            b = k.Variable(np.zeros(2, "float32"), name="b")
        c = k.Variable(1.0, name="c")
        paths[name] = (a.path, b.path, c.path)
        with pytest.raises(ValueError, match="`name`"):
            k.name_scope("a/b")
    assert paths["onnxforge"] == paths["keras"] == ("outer/inner/a", "outer/b", "c")


@pytest.mark.parametrize("device_name", ["cpu", "gpu:0", "CPU:0", "/device:GPU:0", "cuda:1"])
def test_device_scope_accepts_keras_names_and_leaves_placement_alone(device_name):
    model = _functional(fkeras)
    x, _ = _data()
    want = model.predict(x, verbose=0)
    with fkeras.device(device_name):
        np.testing.assert_array_equal(model.predict(x, verbose=0), want)


@pytest.mark.parametrize("bad", ["potato", 3, "gpu:x"])
def test_device_scope_refuses_what_is_not_a_device(bad):
    with pytest.raises(ValueError, match="device_name"):
        fkeras.device(bad)


def test_enable_unsafe_deserialization_lets_load_model_read_lambdas(tmp_path, monkeypatch):
    monkeypatch.setattr(safe_mode_module, "_unsafe_everywhere", False)
    model = fkeras.Sequential([fkeras.Input((3,)), fkeras.layers.Lambda(lambda t: t * 2.0 + 1.0, name="lam")])
    path = tmp_path / "lam.keras"
    model.save(path)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    with pytest.raises(ValueError, match="safe_mode=False"):
        fkeras.models.load_model(path)
    fkeras.config.enable_unsafe_deserialization()
    loaded = fkeras.models.load_model(path)   # safe_mode=True by default, overridden as in Keras
    np.testing.assert_allclose(loaded.predict(x, verbose=0), x * 2.0 + 1.0)


def test_backend_name_and_set_backend():
    assert fkeras.config.backend() == fkeras.backend.backend() == "onnx"
    fkeras.config.set_backend("onnx")
    with pytest.raises(ValueError, match="backend='jax'"):
        fkeras.config.set_backend("jax")


def test_config_behaves_as_keras_config():
    results = {}
    for name, k in LIBS.items():
        c = k.utils.Config(learning_rate=0.1)
        c.momentum = 0.9
        c["seed"] = 3
        out = [c.learning_rate, c["momentum"], sorted(c.keys()), list(c), len(c), "seed" in c, c.to_json(),
               c.as_dict(), c.get("missing", 5), c.pop("seed")]
        c.update(extra=1)
        c.freeze()
        for action in (lambda: setattr(c, "x", 1), lambda: c.__setitem__("x", 1), lambda: c.update(x=1)):
            with pytest.raises(ValueError, match="frozen"):
                action()
        out.append(c.frozen)
        c.unfreeze()
        c.x = 2
        out.append(c.as_dict())
        with pytest.raises(AttributeError, match="Did you mean 'momentum'"):
            _ = c.momentun
        results[name] = out
    assert results["onnxforge"] == results["keras"]


def test_interactive_logging_switches_fit_between_bar_and_log_lines(capsys, caplog):
    x, y = _data()
    model = _functional(fkeras)
    model.compile(optimizer="sgd", loss="mse")
    try:
        fkeras.utils.disable_interactive_logging()
        assert fkeras.utils.is_interactive_logging_enabled() is False
        with caplog.at_level(logging.INFO):
            model.fit(x, y, batch_size=4, epochs=1, verbose=1)
        assert "loss" not in capsys.readouterr().out
        assert any("loss" in r.getMessage() for r in caplog.records)
    finally:
        fkeras.utils.enable_interactive_logging()
    assert fkeras.utils.is_interactive_logging_enabled() is True
    caplog.clear()
    model.fit(x, y, batch_size=4, epochs=1, verbose=1)
    assert "loss" in capsys.readouterr().out
