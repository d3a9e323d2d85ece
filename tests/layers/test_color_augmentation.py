"""RandomGrayscale and RandomInvert against real Keras 3: identity at inference, and in training programs
Keras's transform for the same draws (the uniforms are fed to the traced graph)."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

import onnxforge  # noqa: E402
from onnxforge import layers as L  # noqa: E402
from tests.layers.helpers import trace  # noqa: E402
from tests.layers.keras_parity import check_layer_parity  # noqa: E402

R = np.random.default_rng(4)
IMAGES = R.uniform(0, 255, size=(4, 5, 6, 3)).astype("float32")
CASES = {
    "grayscale": lambda K: K.RandomGrayscale(0.6),
    "invert": lambda K: K.RandomInvert(),
    "invert_range": lambda K: K.RandomInvert((0.2, 0.9), value_range=(0, 1)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_identity_at_inference_like_keras(name):
    def make(lib):
        x = lib.Input((5, 6, 3))
        return lib.Model(x, CASES[name](lib.layers)(x))
    check_layer_parity(make, IMAGES)


@pytest.mark.parametrize("name", list(CASES))
def test_training_transform_matches_keras_for_the_same_draws(name):
    ours = trace(CASES[name](L), ((5, 6, 3), np.float32), training=True)
    draws = len(ours.noise_names)
    u = np.array([[0.1, 0.7], [0.9, 0.2], [0.5, 0.45], [0.3, 0.95]], "float32")[:, :draws]
    got = ours(IMAGES, noise=[u[:, k].reshape(4, 1, 1, 1) for k in range(draws)])
    layer = CASES[name](keras.layers)
    if name == "grayscale":
        assert draws == 1
        apply = (u[:, 0] < layer.factor).reshape(-1, 1, 1, 1)
        expected = layer.transform_images(keras.ops.convert_to_tensor(IMAGES), apply)
    else:
        assert draws == 2
        lo, hi = layer.factor
        probability, threshold = lo + u[:, 0] * (hi - lo), u[:, 1]
        expected = layer.transform_images(keras.ops.convert_to_tensor(IMAGES),
                                          {"apply_inversion": keras.ops.convert_to_tensor(threshold < probability)})
    expected = keras.ops.convert_to_numpy(expected)
    assert not np.allclose(expected, IMAGES)  # the draws above change some images
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-3)


def test_grayscale_op_matches_keras():
    for fmt, images in (("channels_last", IMAGES), ("channels_first", np.moveaxis(IMAGES, -1, 1))):
        got = np.asarray(onnxforge.ops.image.rgb_to_grayscale(images, data_format=fmt))
        want = keras.ops.convert_to_numpy(keras.ops.image.rgb_to_grayscale(images, data_format=fmt))
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-4)
    with pytest.raises(ValueError, match="Invalid channel size"):
        onnxforge.ops.image.rgb_to_grayscale(np.ones((1, 2, 2, 2), np.float32))


def test_bad_arguments_are_refused_like_keras():
    with pytest.raises(ValueError, match="between 0 and 1"):
        L.RandomGrayscale(1.5)
    with pytest.raises(ValueError, match="range"):
        L.RandomInvert(2.0)
    with pytest.raises(ValueError, match="value_range"):
        L.RandomInvert(value_range=(0, 1, 2))


def test_model_with_color_augmentation_trains():
    model = onnxforge.Sequential([L.Input((5, 6, 3)), L.RandomGrayscale(), L.RandomInvert(), L.Rescaling(1 / 255.0),
                                  L.Conv2D(2, 3), L.GlobalAveragePooling2D(), L.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    history = model.fit(IMAGES, np.ones((4, 1), "float32"), epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    np.testing.assert_array_equal(model.predict(IMAGES, verbose=0), model.predict(IMAGES, verbose=0))
