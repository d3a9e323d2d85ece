"""ConvLSTM1D / ConvLSTM2D against Keras 3 (torch): the same weights give the same outputs and states (every
return mode, strides, go_backwards, an initial state), one SGD step trains the same weights, and the config
and weight layout match."""
from __future__ import annotations

import numpy as np
import pytest

from tests.keras_oracle.common import LIBS, fkeras, keras, max_diff


def _pair(build, x_shape, seed=0):
    rng = np.random.default_rng(seed)
    models = {}
    for lib, k in LIBS.items():
        inp = k.Input(x_shape)
        models[lib] = k.Model(inp, build(k, inp))
    weights = [rng.normal(0, 0.3, w.shape).astype("float32") for w in models["keras"].get_weights()]
    for m in models.values():
        m.set_weights(weights)
    return models, rng.normal(size=(2, *x_shape)).astype("float32")


CASES = {
    "seq_same": ((4, 6, 6, 2), lambda k, x: k.layers.ConvLSTM2D(3, 3, padding="same", return_sequences=True)(x)),
    "last_valid_strided": ((3, 7, 7, 2), lambda k, x: k.layers.ConvLSTM2D(2, (3, 2), strides=2)(x)),
    "states_backwards": ((3, 5, 5, 1), lambda k, x: k.layers.ConvLSTM2D(2, 3, padding="same", return_state=True,
                                                                        go_backwards=True,
                                                                        return_sequences=True)(x)),
    "conv1d_relu": ((4, 8, 3), lambda k, x: k.layers.ConvLSTM1D(2, 3, activation="relu", dilation_rate=2)(x)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_outputs_match_keras(case):
    shape, build = CASES[case]
    models, x = _pair(build, shape)
    ours, theirs = models["onnxforge"].predict(x, verbose=0), models["keras"].predict(x, verbose=0)
    ours = list(ours) if isinstance(ours, (list, tuple)) else [ours]
    theirs = list(theirs) if isinstance(theirs, (list, tuple)) else [theirs]
    assert [o.shape for o in ours] == [t.shape for t in theirs]
    assert max_diff(ours, theirs) < 1e-5


def test_initial_state_matches_keras():
    outs = {}
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 3, 4, 4, 1)).astype("float32")
    h0, c0 = (rng.normal(size=(2, 4, 4, 2)).astype("float32") for _ in range(2))
    weights = None
    for lib, k in LIBS.items():
        inp, h, c = k.Input((3, 4, 4, 1)), k.Input((4, 4, 2)), k.Input((4, 4, 2))
        model = k.Model([inp, h, c], k.layers.ConvLSTM2D(2, 3, padding="same")(inp, initial_state=[h, c]))
        weights = weights or model.get_weights()
        model.set_weights(weights)
        outs[lib] = model.predict([x, h0, c0], verbose=0)
    np.testing.assert_allclose(outs["onnxforge"], outs["keras"], atol=1e-5)


def test_one_training_step_matches_keras(checked):
    build = lambda k, x: k.layers.Dense(1)(k.layers.Flatten()(  # noqa: E731
        k.layers.ConvLSTM2D(2, 3, padding="same", return_sequences=True)(x)))
    models, x = _pair(build, (3, 4, 4, 1), seed=1)
    y = np.random.default_rng(2).normal(size=(2, 1)).astype("float32")
    for lib, model in models.items():
        k = LIBS[lib]
        model.compile(k.optimizers.SGD(0.1), "mse")
        model.train_on_batch(x, y)
    assert max_diff(models["onnxforge"].get_weights(), models["keras"].get_weights()) < 1e-5
    for program in models["onnxforge"].compiled_programs.values():
        checked(program.model)


def test_config_weights_and_errors():
    layers = {lib: k.layers.ConvLSTM2D(4, 3, strides=(1, 2), name="clstm") for lib, k in LIBS.items()}
    for layer in layers.values():
        layer.build((None, 2, 6, 8, 3))
    assert [tuple(w.shape) for w in layers["onnxforge"].get_weights()] == \
        [tuple(w.shape) for w in layers["keras"].get_weights()]
    np.testing.assert_array_equal(layers["onnxforge"].get_weights()[2], layers["keras"].get_weights()[2])
    ours, theirs = layers["onnxforge"].get_config(), layers["keras"].get_config()
    for key in ("filters", "kernel_size", "strides", "padding", "dilation_rate", "return_sequences",
                "unit_forget_bias", "go_backwards"):
        assert ours[key] == theirs[key], key
    clone = fkeras.layers.ConvLSTM2D.from_config(ours)
    assert clone.kernel_size == (3, 3) and clone.strides == (1, 2)
    with pytest.raises(NotImplementedError, match="dropout"):
        fkeras.layers.ConvLSTM2D(2, 3, dropout=0.1)
    with pytest.raises(ValueError, match="ndim=5"):
        fkeras.layers.ConvLSTM2D(2, 3)(fkeras.Input((4, 4, 1)))
    assert keras.layers.ConvLSTM2D.__name__ == fkeras.layers.ConvLSTM2D.__name__


def test_keras_files_move_both_ways(tmp_path):
    pytest.importorskip("h5py")
    x = np.random.default_rng(4).random((2, 3, 6, 6, 1)).astype("float32")
    inp = fkeras.Input((3, 6, 6, 1))
    ours = fkeras.Model(inp, fkeras.layers.ConvLSTM2D(2, 3, padding="same")(inp))
    ours.save(tmp_path / "ours.keras")
    np.testing.assert_allclose(keras.saving.load_model(tmp_path / "ours.keras").predict(x, verbose=0),
                               ours.predict(x, verbose=0), atol=1e-6)
    kin = keras.Input((3, 6, 6, 1))
    theirs = keras.Model(kin, keras.layers.ConvLSTM2D(2, 3, return_sequences=True)(kin))
    theirs.save(tmp_path / "theirs.keras")
    np.testing.assert_allclose(fkeras.saving.load_model(tmp_path / "theirs.keras").predict(x, verbose=0),
                               theirs.predict(x, verbose=0), atol=1e-6)
