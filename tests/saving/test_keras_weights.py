"""save_weights / load_weights with Keras 3's ``.weights.h5`` (both ways, against real Keras), load_weights of
a ``.keras`` archive, Keras's suffix rules and messages, and ModelCheckpoint writing ``.keras`` and
``.weights.h5`` files that Keras reads."""
from __future__ import annotations

import os

import numpy as np
import pytest

from tests.saving.keras_oracle import h5_layout, inputs_for, keras, max_diff, randomize

import onnxforge as of  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
L = keras.layers


def _keras_model():
    model = keras.Sequential([keras.Input((6, 3)), L.Conv1D(4, 2, activation="relu"), L.BatchNormalization(),
                              L.LSTM(3), L.Dense(2)])
    randomize(model)
    return model


def _twin(kmodel, folder):
    kmodel.save(folder / "twin.keras")
    return of.load_model(folder / "twin.keras", compile=False)


def test_keras_weights_file_loads_into_onnxforge(tmp_path):
    kmodel = _keras_model()
    model = _twin(kmodel, tmp_path)
    randomize(kmodel, seed=5)                       # new weights, saved by Keras only
    kmodel.save_weights(tmp_path / "k.weights.h5")
    x = inputs_for(kmodel)
    assert max_diff(kmodel.predict(x, verbose=0), model.predict(x, verbose=0)) > 1e-2
    model.load_weights(tmp_path / "k.weights.h5")
    assert max_diff(kmodel.predict(x, verbose=0), model.predict(x, verbose=0)) <= 1e-6


def test_onnxforge_weights_file_loads_into_keras_with_keras_layout(tmp_path):
    kmodel = _keras_model()
    model = _twin(kmodel, tmp_path)
    model.set_weights([w * 1.5 for w in model.get_weights()])
    model.save_weights(tmp_path / "o.weights.h5")
    kmodel.save_weights(tmp_path / "k.weights.h5")
    assert h5_layout(str(tmp_path / "o.weights.h5")) == h5_layout(str(tmp_path / "k.weights.h5"))
    kmodel.load_weights(tmp_path / "o.weights.h5")
    x = inputs_for(kmodel)
    assert max_diff(kmodel.predict(x, verbose=0), model.predict(x, verbose=0)) <= 1e-6


def test_weights_file_carries_optimizer_state_as_in_keras(tmp_path):
    kmodel = _keras_model()
    kmodel.compile(optimizer="adam", loss="mse")
    x, y = inputs_for(kmodel), np.ones((4, 2), np.float32)
    kmodel.fit(x, y, epochs=2, batch_size=4, verbose=0)
    kmodel.save_weights(tmp_path / "k.weights.h5")
    assert "optimizer/vars" in h5_layout(str(tmp_path / "k.weights.h5"))
    model = _twin(_keras_model(), tmp_path)
    model.compile(optimizer="adam", loss="mse", device="cpu")
    model.load_weights(tmp_path / "k.weights.h5")
    assert int(model.optimizer.iterations.numpy()) == 2
    kmodel.fit(x, y, epochs=1, batch_size=4, shuffle=False, verbose=0)
    model.fit(x, y, epochs=1, batch_size=4, shuffle=False, verbose=0)
    for a, b in zip(kmodel.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, atol=2e-5)


def test_load_weights_from_a_keras_archive(tmp_path):
    kmodel = _keras_model()
    model = _twin(kmodel, tmp_path)
    randomize(kmodel, seed=9)
    kmodel.save(tmp_path / "k.keras")
    model.load_weights(tmp_path / "k.keras")
    x = inputs_for(kmodel)
    assert max_diff(kmodel.predict(x, verbose=0), model.predict(x, verbose=0)) <= 1e-6


def test_weights_suffix_rules_and_mismatch_errors(tmp_path):
    model = of.Sequential([of.layers.Input((3,)), of.layers.Dense(2), of.layers.Dense(1)])
    with pytest.raises(ValueError, match=r"The filename must end in `\.weights\.h5`\. .*Received: filepath=.*w\.h5"):
        model.save_weights(tmp_path / "w.h5")
    with pytest.raises(ValueError, match="File format not supported: filepath=.*w.bin"):
        model.load_weights(tmp_path / "w.bin")
    with pytest.raises(ValueError, match="`by_name` only supports loading legacy '.h5'"):
        model.load_weights(tmp_path / "w.weights.h5", by_name=True)
    with pytest.raises(FileNotFoundError):
        model.load_weights(tmp_path / "missing.weights.h5")
    model.save_weights(tmp_path / "w.weights.h5")
    with pytest.raises(FileExistsError):
        model.save_weights(tmp_path / "w.weights.h5", overwrite=False)
    other = of.Sequential([of.layers.Input((4,)), of.layers.Dense(2), of.layers.Dense(1)])
    before = other.get_weights()
    with pytest.raises(ValueError, match=r"dense.*expects \(4, 2\), the file holds \(3, 2\)"):
        other.load_weights(tmp_path / "w.weights.h5")
    for a, b in zip(other.get_weights(), before):     # a failed load assigns nothing
        np.testing.assert_array_equal(a, b)
    with pytest.warns(UserWarning, match="could not be loaded"):
        other.load_weights(tmp_path / "w.weights.h5", skip_mismatch=True)
    np.testing.assert_array_equal(other.get_weights()[0], before[0])      # the mismatched layer is untouched
    np.testing.assert_array_equal(other.get_weights()[2], model.get_weights()[2])   # the rest loaded
    assert not np.array_equal(before[2], model.get_weights()[2])
    deeper = of.Sequential([of.layers.Input((3,)), of.layers.Dense(2), of.layers.Dense(1), of.layers.Dense(1)])
    with pytest.raises(ValueError, match=r"expected 2 variables, but received 0 variables"):
        deeper.load_weights(tmp_path / "w.weights.h5")
    with pytest.raises(ValueError, match="not yet been built"):
        of.Sequential([of.layers.Dense(2)]).save_weights(tmp_path / "u.weights.h5")


# ------------------------------------------------------------------------------------------ ModelCheckpoint
def test_model_checkpoint_paths_follow_keras_rules(tmp_path):
    with pytest.raises(ValueError, match=r"save_weights_only=True.*must end in `\.weights\.h5`.*Received: "
                                         r"filepath=.*w\.h5"):
        of.callbacks.ModelCheckpoint(str(tmp_path / "w.h5"), save_weights_only=True)
    with pytest.raises(ValueError, match=r"The filepath provided must end in `\.keras`.*Received: filepath=.*m\.bin"):
        of.callbacks.ModelCheckpoint(str(tmp_path / "m.bin"))
    for ok in ("m.keras", "m.h5", "m.onnx"):
        of.callbacks.ModelCheckpoint(str(tmp_path / ok))
    for ok in ("w.weights.h5", "w.weights.onnx", "w.npz"):
        of.callbacks.ModelCheckpoint(str(tmp_path / ok), save_weights_only=True)


def test_model_checkpoint_writes_files_keras_reads(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype("float32")
    y = (x @ rng.normal(size=(4, 1))).astype("float32")
    model = of.Sequential([of.layers.Input((4,)), of.layers.Dense(8, activation="relu"), of.layers.Dense(1)])
    model.compile(optimizer=of.optimizers.Adam(0.01), loss="mse", device="cpu")
    best = of.callbacks.ModelCheckpoint(str(tmp_path / "best_model.keras"), monitor="loss", save_best_only=True)
    weights = of.callbacks.ModelCheckpoint(str(tmp_path / "w-{epoch:02d}-{loss:.3f}.weights.h5"),
                                           save_weights_only=True)
    history = model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[best, weights], shuffle=False)
    names = sorted(os.listdir(tmp_path))
    expected = [f"w-{e + 1:02d}-{loss:.3f}.weights.h5" for e, loss in enumerate(history.history["loss"])]
    assert names == sorted(["best_model.keras", *expected])
    loaded = keras.saving.load_model(tmp_path / "best_model.keras")      # the last epoch had the lowest loss
    assert max_diff(loaded.predict(x, verbose=0), model.predict(x, verbose=0)) <= 1e-6
    assert int(np.asarray(loaded.optimizer.iterations)) == 12
    kmodel = keras.Sequential([keras.Input((4,)), L.Dense(8, activation="relu"), L.Dense(1)])
    kmodel.load_weights(tmp_path / expected[-1])
    assert max_diff(kmodel.predict(x, verbose=0), model.predict(x, verbose=0)) <= 1e-6
