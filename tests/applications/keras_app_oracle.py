"""What every keras.applications test of the ResNet/VGG/DenseNet family checks against real Keras: the same
layers and weights, the same outputs on Keras's weights, Keras's weight files loading, training one step,
and the .keras file Keras loads. Each check is small: 32x32 inputs (the smallest Keras accepts), batch 2."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable

import numpy as np

from onnxforge import layers as of_layers
from onnxforge import losses as of_losses

# Keras's torch backend converting its own tensors with numpy 2 (thousands per model, nothing of ours)
KERAS_TORCH_ARRAY_WARNING = "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"


def fresh_sessions(keras: Any) -> None:
    """Reset both name counters, so automatically named layers (``zero_padding2d``...) are named alike."""
    keras.backend.clear_session()
    of_layers.clear_session()


def build_pair(keras: Any, ours: Callable, theirs: Callable, **kwargs: Any) -> tuple[Any, Any]:
    """onnxforge's and Keras's model from the same arguments, both from fresh name counters."""
    fresh_sessions(keras)
    model = ours(weights=None, **kwargs)
    fresh_sessions(keras)
    return model, theirs(weights=None, **kwargs)


def assert_same_structure(model: Any, kmodel: Any) -> None:
    """Same layer names in the same order, same weight names and shapes in order, same parameter count."""
    assert [layer.name for layer in model.layers] == [layer.name for layer in kmodel.layers]
    assert [(w.name, w.path) for w in model.weights] == [(w.name, w.path) for w in kmodel.weights]
    assert [tuple(w.shape) for w in model.weights] == [tuple(w.shape) for w in kmodel.weights]
    assert model.count_params() == kmodel.count_params()
    assert model.name == kmodel.name


def randomized_weights(kmodel: Any, seed: int = 0) -> list[np.ndarray]:
    """Keras's initial weights with BatchNorm's statistics, scale and offset drawn at random (they start at
    0 and 1, which would hide a wrong axis or epsilon), written back into ``kmodel``."""
    rng = np.random.default_rng(seed)
    out = []
    for w, value in zip(kmodel.weights, kmodel.get_weights()):
        leaf = w.path.rsplit("/", 1)[-1]
        if leaf in ("moving_variance", "gamma"):
            value = rng.uniform(0.5, 1.5, value.shape).astype(value.dtype)
        elif leaf in ("moving_mean", "beta"):
            value = rng.normal(0.0, 0.1, value.shape).astype(value.dtype)
        out.append(value)
    kmodel.set_weights(out)
    return out


def images(seed: int = 1, shape: tuple[int, ...] = (2, 32, 32, 3)) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, shape).astype(np.float32)


def assert_close(ours: np.ndarray, theirs: np.ndarray, rtol: float = 1e-4) -> None:
    """Equal within ``rtol`` relative to the output's scale (float32 sums in another order)."""
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape
    scale = max(float(np.abs(theirs).max()), 1e-6)
    assert float(np.abs(ours - theirs).max()) <= rtol * scale, (np.abs(ours - theirs).max(), scale)


def assert_same_outputs(keras: Any, ours: Callable, theirs: Callable, **kwargs: Any) -> tuple[Any, Any]:
    """Keras's (randomized) weights copied into onnxforge's model give the same inference outputs."""
    model, kmodel = build_pair(keras, ours, theirs, **kwargs)
    assert_same_structure(model, kmodel)
    model.set_weights(randomized_weights(kmodel))
    x = images(shape=(2,) + tuple(model.input_shape[1:]))
    assert_close(model.predict(x, verbose=0), kmodel.predict(x, verbose=0))
    return model, kmodel


def assert_keras_weights_file_loads(keras: Any, ours: Callable, theirs: Callable, tmp: Path, **kwargs: Any) -> None:
    """A ``.weights.h5`` saved by Keras, loaded by onnxforge's model, predicts as Keras does."""
    model, kmodel = build_pair(keras, ours, theirs, **kwargs)
    randomized_weights(kmodel, seed=3)
    kmodel.save_weights(tmp / "w.weights.h5")
    model.load_weights(tmp / "w.weights.h5")
    x = images(seed=4, shape=(2,) + tuple(model.input_shape[1:]))
    assert_close(model.predict(x, verbose=0), kmodel.predict(x, verbose=0))


def write_legacy_h5(kmodel: Any, path: Path) -> str:
    """``kmodel``'s weights as a legacy Keras ``.h5`` (the format of Keras's ImageNet files); its md5."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, kmodel)
    return hashlib.md5(path.read_bytes()).hexdigest()


def assert_fit_and_keras_load(keras: Any, model: Any, tmp: Path, classes: int) -> None:
    """One training step gives a finite loss; the saved .keras file loads in Keras and predicts the same.
    ``model`` has logits out (``classifier_activation=None``) and an input large enough that its last
    feature map is not 1x1: a BatchNorm over two values per channel in training blows up in Keras too."""
    x = images(seed=5, shape=(2,) + tuple(model.input_shape[1:]))
    y = np.eye(classes, dtype=np.float32)[[0, 1]]
    model.compile(optimizer="sgd", loss=of_losses.CategoricalCrossentropy(from_logits=True))
    history = model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    model.save(tmp / "x.keras")
    kmodel = keras.saving.load_model(tmp / "x.keras")
    assert [layer.name for layer in kmodel.layers] == [layer.name for layer in model.layers]
    ours = model.predict(x, verbose=0)
    assert np.isfinite(ours).all()
    assert_close(ours, kmodel.predict(x, verbose=0))
