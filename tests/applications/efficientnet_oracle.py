"""What the EfficientNet, EfficientNetV2 and ConvNeXt tests share: a Keras model and ours built side by side,
weights that make the comparison mean something, and the checks against Keras."""
from __future__ import annotations

import hashlib
import inspect
import json

import numpy as np

from onnxforge import layers, optimizers


def build_pair(keras, ours, name: str, **kwargs):
    """Keras's ``name`` and ours with the same arguments (``weights=None``), each session's names fresh so
    the unnamed layers (``rescaling``, ``normalization``...) are numbered alike."""
    keras.backend.clear_session()
    layers.clear_session()
    return getattr(keras.applications, name)(weights=None, **kwargs), getattr(ours, name)(weights=None, **kwargs)


def assert_same_structure(km, om) -> None:
    """Same layer names in the same order, same weight shapes in order, same parameter count."""
    assert [layer.name for layer in om.layers] == [layer.name for layer in km.layers]
    assert [tuple(w.shape) for w in om.weights] == [tuple(w.shape) for w in km.weights]
    assert om.count_params() == km.count_params()


def perturbed_weights(km, seed: int = 0) -> list[np.ndarray]:
    """Keras's weights with BatchNorm / LayerNorm statistics and affine terms and the biases drawn away from
    their trivial initial values, so that every one of them counts in the outputs. The in-model
    ``Normalization`` statistics are left alone: Keras's ``set_weights`` does not refresh the values its
    ``call`` reads from them (only ``load_weights`` does), so they are tested through weight files."""
    rng = np.random.default_rng(seed)
    out = []
    for var, w in zip(km.weights, km.get_weights()):
        leaf = var.path.rsplit("/", 1)[-1]
        if leaf in ("moving_variance", "gamma"):
            w = rng.uniform(0.5, 1.5, w.shape).astype(w.dtype)
        elif leaf in ("moving_mean", "beta", "bias"):
            w = (0.1 * rng.standard_normal(w.shape)).astype(w.dtype)
        out.append(w)
    return out


def images(km, batch: int = 2, seed: int = 1) -> np.ndarray:
    """Pixels in [0, 255] for the model's input."""
    shape = (batch,) + tuple(km.input_shape[1:])
    return np.random.default_rng(seed).uniform(0.0, 255.0, shape).astype("float32")


def assert_close(actual, expected, rtol: float = 1e-4) -> None:
    """Equal within ``rtol`` of the largest expected magnitude (float32 through a deep network)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    scale = max(float(np.max(np.abs(expected))), 1e-6)
    assert float(np.max(np.abs(actual - expected))) <= rtol * scale


def fingerprint(ours, name: str, **kwargs) -> tuple[str, int, int]:
    """Our ``name`` built in a fresh session (``weights=None``): a short digest of its layer names and weight
    shapes in order, its parameter count and its number of layers. What ``assert_same_structure`` compares,
    for variants too large to build in Keras too in a test."""
    layers.clear_session()
    model = getattr(ours, name)(weights=None, **kwargs)
    names = [layer.name for layer in model.layers]
    shapes = [[int(d) for d in w.shape] for w in model.weights]
    digest = hashlib.sha256(json.dumps([names, shapes]).encode()).hexdigest()[:16]
    return digest, model.count_params(), len(names)


def check_outputs_and_weight_files(km, om, tmp_path, set_extra=None) -> None:
    """Keras's (perturbed) weights copied with ``set_weights`` give Keras's outputs; so does a
    ``.weights.h5`` file saved by Keras; a legacy ``.h5`` weights file written by Keras (the layout of its
    ImageNet files: a group per layer, weights in order) gives Keras's weights exactly. ``set_extra(weights)``
    may change weights only a file carries into Keras's outputs."""
    x = images(km)
    weights = perturbed_weights(km)
    km.set_weights(weights)
    om.set_weights(weights)
    expected = km.predict(x, verbose=0)
    assert_close(om.predict(x, verbose=0), expected)
    if set_extra is not None:
        set_extra(weights)
        km.set_weights(weights)
    km.save_weights(tmp_path / "w.weights.h5")
    om.set_weights([np.zeros_like(w) for w in weights])
    om.load_weights(tmp_path / "w.weights.h5")
    if set_extra is not None:
        km.load_weights(tmp_path / "w.weights.h5")
        expected = km.predict(x, verbose=0)
    assert_close(om.predict(x, verbose=0), expected)
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(tmp_path / "legacy.h5", "w") as f:   # how Keras's ImageNet files were written
        legacy_h5_format.save_weights_to_hdf5_group(f, km)
    om.set_weights([np.zeros_like(w) for w in weights])
    om.load_weights(tmp_path / "legacy.h5")
    for mine, theirs in zip(om.get_weights(), km.get_weights()):
        np.testing.assert_array_equal(mine, theirs)


def check_pooled_outputs(km, om) -> None:
    """``include_top=False`` models give Keras's features for the same weights."""
    weights = perturbed_weights(km, seed=2)
    km.set_weights(weights)
    om.set_weights(weights)
    x = images(km, seed=3)
    assert_close(om.predict(x, verbose=0), km.predict(x, verbose=0))


def check_fit_then_keras_load(keras, model, tmp_path) -> None:
    """One training step of a 3-class model has a finite loss; the saved ``.keras`` file loads in Keras,
    with the same layers and the same predictions."""
    # A small step: randomly initialized EfficientNets on [0, 255] pixels sit near float32 overflow, and
    # one step at SGD's default 0.01 can carry some initializations (and dropout masks) past it, in Keras too.
    model.compile(optimizer=optimizers.SGD(learning_rate=1e-4), loss="sparse_categorical_crossentropy")
    x = images(model, batch=4)
    history = model.fit(x, np.array([0, 1, 2, 1]), batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    model.save(tmp_path / "x.keras")
    loaded = keras.saving.load_model(tmp_path / "x.keras")
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert_close(model.predict(x, verbose=0), loaded.predict(x, verbose=0))


def assert_same_signatures(keras, ours, names) -> None:
    """Each builder takes Keras's arguments, in Keras's order, with Keras's defaults."""
    for name in names:
        theirs = inspect.signature(getattr(keras.applications, name)).parameters.values()
        mine = inspect.signature(getattr(ours, name)).parameters.values()
        assert [(p.name, p.default) for p in mine] == [(p.name, p.default) for p in theirs], name
