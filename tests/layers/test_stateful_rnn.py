"""``stateful=True`` recurrent layers against Keras 3: states carried across ``predict`` batches, eager calls
and ``fit`` steps, ``reset_states``, the batch-size checks, and ``.keras`` files both ways (before, the
argument raised)."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as of

keras = pytest.importorskip("keras")


def _build(lib, batch: int = 4):
    L = lib.layers
    return lib.Sequential([lib.Input(batch_shape=(batch, 5, 2)), L.LSTM(3, stateful=True, return_sequences=True),
                           L.GRU(2, stateful=True), L.Dense(1)])


def _run(lib, weights, x, y):
    model = _build(lib)
    model.set_weights(weights)
    out = {"p1": model.predict(x[:4], batch_size=4, verbose=0), "p2": model.predict(x[:4], batch_size=4, verbose=0)}
    for layer in model.layers:
        if getattr(layer, "stateful", False):
            layer.reset_states()
    out["reset"] = model.predict(x[:4], batch_size=4, verbose=0)
    out["eager"] = np.array(lib.ops.convert_to_numpy(model(x[4:])))
    model.compile(optimizer=lib.optimizers.SGD(0.1), loss="mse")
    out["loss"] = np.asarray(model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0).history["loss"])
    out["state"] = np.array(lib.ops.convert_to_numpy(model.layers[1].states[0]))
    out["weights"] = [w.name for w in model.weights]
    return out


_KERAS_TF_RUN = """
import os, sys
os.environ["KERAS_BACKEND"] = "tensorflow"
sys.path.insert(0, sys.argv[2])
import numpy as np, keras
from test_stateful_rnn import _run
data = np.load(sys.argv[1])
weights = [data[f"w{k}"] for k in range(int(data["n"]))]
out = _run(keras, weights, data["x"], data["y"])
np.savez(sys.argv[1], **{k: v for k, v in out.items() if k != "weights"})
"""


def test_states_carry_over_like_keras(tmp_path):
    """Against Keras 3 on TensorFlow, in a child process (Keras's torch backend cannot fit a stateful RNN:
    autograd sees the states modified in place)."""
    from pathlib import Path

    from tests import tf_server

    pytest.importorskip("tensorflow")
    rng = np.random.default_rng(0)
    weights = [rng.normal(0, 0.5, w.shape).astype(np.float32) for w in _build(of.keras).get_weights()]
    x, y = rng.random((8, 5, 2), dtype=np.float32), rng.random((8, 1), dtype=np.float32)
    ours = _run(of.keras, weights, x, y)
    data = tmp_path / "run.npz"
    np.savez(data, x=x, y=y, n=len(weights), **{f"w{k}": w for k, w in enumerate(weights)})
    tf_server.run(["-c", _KERAS_TF_RUN, str(data), str(Path(__file__).parent)], check=True, timeout=300)
    theirs = np.load(data)
    assert not np.allclose(ours["p1"], ours["p2"])       # the second batch starts from the first's states
    for key in ("p1", "p2", "reset", "eager", "loss", "state"):
        np.testing.assert_allclose(ours[key], theirs[key], rtol=2e-5, atol=1e-6, err_msg=key)
    assert len(ours["weights"]) == 8   # the states are not weights (Keras: 8 too)


def test_model_reset_states_and_batch_size_errors():
    model = _build(of.keras, batch=2)
    x = np.ones((2, 5, 2), np.float32)
    model.predict(x, verbose=0)
    assert np.abs(model.layers[0].states[0].numpy()).sum() > 0
    model.reset_states()
    assert all(np.all(s.numpy() == 0) for layer in model.layers[:2] for s in layer.states)
    with pytest.raises(ValueError, match="batch size"):
        model(np.ones((3, 5, 2), np.float32))
    inputs = of.keras.Input((5, 2))
    with pytest.raises(ValueError, match="batch size must be static"):
        of.keras.layers.SimpleRNN(2, stateful=True)(inputs)
    with pytest.raises(ValueError, match=r"expected shape=\(2, 5, 2\)"):
        model.predict(np.ones((3, 5, 2), np.float32), batch_size=3, verbose=0)


def test_keras_files_keep_stateful_both_ways(tmp_path):
    model = _build(of.keras, batch=2)
    model.save(tmp_path / "ours.keras")
    loaded = keras.saving.load_model(tmp_path / "ours.keras")
    assert [getattr(layer, "stateful", None) for layer in loaded.layers[:2]] == [True, True]
    reference = _build(keras, batch=2)
    reference.save(tmp_path / "keras.keras")
    back = of.keras.models.load_model(tmp_path / "keras.keras")
    assert back.layers[0].stateful and back.layers[0].states[0].shape == (2, 3)
    x = np.random.default_rng(1).random((2, 5, 2), dtype=np.float32)
    np.testing.assert_allclose(back.predict(x, verbose=0), reference.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
