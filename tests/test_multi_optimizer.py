"""MultiOptimizer and OptimizerMap against real Keras 3 (torch backend): ``fit`` side by side from the same weights
(a schedule on one sub-optimizer, a learning rate changed between fits), the ``.keras`` file Keras reads and its
layout, resuming from ``.keras`` and ``.onnx``, the map's lookup rules, configs and errors."""
from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from onnxforge import optimizers
from onnxforge.variables import Variable
from tests.keras_oracle.common import copy_weights, fkeras, keras


def _model(lib):
    return lib.Sequential([lib.Input((4,)), lib.layers.Dense(5, activation="tanh", name="encoder"),
                           lib.layers.Dense(2, name="head")])


def _multi(lib, pattern=".*encoder/.*"):
    o = lib.optimizers
    sgd = o.SGD(o.schedules.ExponentialDecay(0.1, 2, 0.5), momentum=0.5)
    return o.MultiOptimizer(o.OptimizerMap(sgd, {pattern: o.Adam(0.05)}))


def _h5_names(path):
    h5py = pytest.importorskip("h5py")
    with zipfile.ZipFile(path) as z, h5py.File(io.BytesIO(z.read("model.weights.h5"))) as h:
        names = []
        h.visititems(lambda n, o: names.append((n, o.shape)) if isinstance(o, h5py.Dataset) else None)
    return sorted(names)


@pytest.fixture
def data(rng):
    return rng.normal(size=(12, 4)).astype(np.float32), rng.normal(size=(12, 2)).astype(np.float32)


def test_fit_save_and_resume_match_real_keras(tmp_path, data):
    x, y = data
    km, fm = _model(keras), _model(fkeras)
    copy_weights(km, fm)
    km.compile(optimizer=_multi(keras), loss="mse")
    fm.compile(optimizer=_multi(fkeras), loss="mse")
    for model in (km, fm):
        model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    for got, want in zip(fm.get_weights(), km.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert [(o.name, int(o.iterations)) for o in fm.optimizer.optimizers] == [("adam", 6), ("sgd", 6)]
    assert int(fm.optimizer.iterations) == 6

    fm.save(tmp_path / "f.keras")
    km.save(tmp_path / "k.keras")
    assert _h5_names(tmp_path / "f.keras") == _h5_names(tmp_path / "k.keras")
    loaded = keras.saving.load_model(tmp_path / "f.keras")
    assert type(loaded.optimizer).__name__ == "MultiOptimizer"
    for got, want in zip(loaded.optimizer.variables, km.optimizer.variables):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(got), keras.ops.convert_to_numpy(want), rtol=1e-5,
                                   atol=1e-6)

    fm.save(tmp_path / "f.onnx")
    resumed = [fkeras.models.load_model(tmp_path / "f.keras"), fkeras.models.load_model(tmp_path / "f.onnx")]
    # The learning rate of a sub-optimizer changed between fits reaches the next step, in both libraries.
    for model in [km] + resumed:
        model.optimizer.optimizers[0].learning_rate = 0.01
        model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    for model in resumed:
        assert [type(o).__name__ for o in model.optimizer.optimizers] == ["Adam", "SGD"]
        for got, want in zip(model.get_weights(), km.get_weights()):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_callable_selector_and_unused_optimizer(data):
    x, y = data
    adam, sgd, unused = optimizers.Adam(0.05), optimizers.SGD(0.1), optimizers.RMSprop()
    opt = optimizers.MultiOptimizer(optimizers.OptimizerMap(sgd, {"nothing/.*": unused, "encoder/.*": adam}))
    model = _model(fkeras)
    model.compile(optimizer=opt, loss="mse")
    model.fit(x, y, batch_size=6, verbose=0)
    assert [int(o.iterations) for o in opt.optimizers] == [0, 2, 2]   # RMSprop updated nothing
    picked = optimizers.MultiOptimizer(lambda v: adam if "head" in v.path else sgd)
    kernel = Variable(np.zeros((2, 2), np.float32), name="head/kernel")
    assert picked.optimizer_for(kernel) is adam
    with pytest.raises(ValueError, match="cannot be serialized"):
        picked.get_config()


def test_optimizer_map_lookup_matches_keras():
    for lib in (keras, fkeras):
        o = lib.optimizers
        m = o.OptimizerMap(o.RMSprop())
        m["encoder/layer_0/dense"] = o.Adam()
        m["encoder/.*"] = o.SGD()
        m["decoder"] = o.Adam()
        got = [type(m[k]).__name__ for k in ("decoder", "encoder/layer_0/dense", "encoder/layer_0/attention/query",
                                              "decoder/layer_0/dense")]
        assert got == ["Adam", "Adam", "SGD", "RMSprop"], lib
        m["enc.*"] = o.Adam()
        with pytest.raises(ValueError, match="Multiple optimizers"):
            m["encoder/x"]
        with pytest.raises(ValueError, match="already exists"):
            m["decoder"] = o.SGD()
        with pytest.raises(ValueError, match="LossScaleOptimizer"):
            m["other"] = o.LossScaleOptimizer(o.SGD())
    with pytest.raises(TypeError, match="default_optimizer"):
        optimizers.OptimizerMap("sgd")


def test_learning_rate_is_refused_and_config_round_trips():
    mine, theirs = _multi(fkeras), _multi(keras)
    with pytest.raises(AttributeError, match="sub-optimizers"):
        mine.learning_rate
    with pytest.raises(AttributeError, match="sub-optimizers"):
        mine.learning_rate = 0.1
    for config in (optimizers.serialize(mine), keras.optimizers.serialize(theirs)):
        again = optimizers.deserialize(config)
        assert isinstance(again, optimizers.MultiOptimizer)
        assert [type(o).__name__ for o in again.optimizers] == ["Adam", "SGD"]
        assert again.optimizers[1].get_config()["momentum"] == 0.5
    rebuilt = keras.optimizers.deserialize(optimizers.serialize(mine))
    assert [type(o).__name__ for o in rebuilt.optimizers] == ["Adam", "SGD"]
    with pytest.raises(TypeError, match="optimizer_map"):
        optimizers.MultiOptimizer({"encoder": optimizers.SGD()})
