"""Keras 3's colour and tone augmentations (RandomHue, RandomSaturation, RandomColorDegeneration,
RandomSharpness, Solarization, RandomPosterization, AutoContrast, Equalization) against real Keras 3: for the
same drawn parameters (the uniforms are fed to the traced graph and turned into Keras's transformation dict),
the training transform equals Keras's ``transform_images``; identity at inference; configs load in Keras."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

from onnxforge import layers as L  # noqa: E402
from tests.layers.helpers import trace  # noqa: E402

R = np.random.default_rng(7)
IMAGES = R.uniform(0, 255, size=(4, 5, 6, 3)).astype("float32")
U = np.array([[0.1, 0.7], [0.9, 0.2], [0.55, 0.45], [0.3, 0.95]], "float32")


def _lerp(u, pair):
    return np.float32(pair[0]) + u * np.float32(pair[1] - pair[0])


def _keras_transformation(name, layer, u):
    """Keras's transformation dict for the uniforms ``u`` (one column per draw, in the layer's draw order)."""
    b = len(u)
    if name.startswith("hue"):
        sign = np.where(u[:, 0] > 0.5, -1.0, 1.0).astype("float32")
        return {"factor": sign * _lerp(u[:, 1], layer.factor) * 0.5}
    if name.startswith("saturation"):
        f = _lerp(u[:, 0], layer.factor)
        return {"factor": f / (1 - f + keras.backend.epsilon())}
    if name.startswith("degeneration"):
        return {"factor": _lerp(u[:, 0], layer.factor).reshape(b, 1, 1, 1)}
    if name.startswith("sharpness"):
        return {"factor": _lerp(u[:, 0], layer.factor)}
    if name.startswith("solarization"):
        lo_a, hi_a = layer.addition_factor
        lo_t, hi_t = layer.threshold_factor
        return {"additions": _lerp(u[:, 0], (lo_a, hi_a * 255)).reshape(b, 1, 1, 1),
                "thresholds": _lerp(u[:, 1], (lo_t, hi_t * 255)).reshape(b, 1, 1, 1)}
    if name.startswith("posterization"):
        lo, hi = layer.factor
        bits = np.full(b, lo) if lo == hi else np.floor(u[:, 0] * (hi - lo)) + lo
        return {"shift_factor": (8 - bits).astype("uint8")}
    return None


CASES = {
    "hue": lambda K: K.RandomHue(0.6),
    "hue_fixed_01": lambda K: K.RandomHue((0.3, 0.3), value_range=(0, 1)),
    "saturation": lambda K: K.RandomSaturation((0.2, 0.8)),
    "saturation_fixed": lambda K: K.RandomSaturation((0.5, 0.5)),
    "degeneration": lambda K: K.RandomColorDegeneration(0.7),
    "sharpness": lambda K: K.RandomSharpness(0.9),
    "sharpness_cf": lambda K: K.RandomSharpness(0.9, data_format="channels_first"),
    "solarization": lambda K: K.Solarization(addition_factor=0.3, threshold_factor=(0.2, 0.8)),
    "solarization_fixed": lambda K: K.Solarization(threshold_factor=(0.5, 0.5), value_range=(0, 1)),
    "posterization": lambda K: K.RandomPosterization(6),
    "posterization_fixed": lambda K: K.RandomPosterization((3, 3), value_range=(0, 1)),
    "auto_contrast": lambda K: K.AutoContrast(),
    "auto_contrast_01": lambda K: K.AutoContrast(value_range=(0, 1)),
    "equalization": lambda K: K.Equalization(),
    "equalization_bins": lambda K: K.Equalization(value_range=(0, 1), bins=64),
}


def _images(name, layer):
    x = IMAGES / 255.0 if list(getattr(layer, "value_range", (0, 255))) == [0, 1] else IMAGES
    if name.endswith("_cf"):
        x = np.moveaxis(x, -1, 1).copy()
    if name.startswith("equalization"):   # a few distinct levels, and one constant channel
        x = np.round(x * 4) / 4
        x[..., 0] = x[0, 0, 0, 0]
    if name.startswith("auto_contrast"):
        x = x.copy()
        x[1, ..., 2] = 7.0 if x.max() > 1 else 0.25   # a constant channel stays as it is
    return np.ascontiguousarray(x, dtype="float32")


@pytest.mark.parametrize("name", list(CASES))
def test_training_transform_matches_keras_for_the_same_draws(name):
    layer = CASES[name](keras.layers)
    images = _images(name, layer)
    ours = trace(CASES[name](L), (images.shape[1:], np.float32), training=True)
    draws = len(ours.noise_names)
    got = ours(images, noise=[U[:, k].reshape(4, 1, 1, 1) for k in range(draws)])
    transformation = _keras_transformation(name, layer, U[:, :draws])
    if transformation is not None:
        transformation = {k: keras.ops.convert_to_tensor(v) for k, v in transformation.items()}
    expected = keras.ops.convert_to_numpy(layer.transform_images(keras.ops.convert_to_tensor(images),
                                                                 transformation))
    assert not np.allclose(expected, images)
    scale = 1.0 if images.max() <= 1.0 else 255.0
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=2e-5 * scale)


@pytest.mark.parametrize("name", [n for n in CASES if not n.startswith("auto_contrast")])
def test_identity_at_inference(name):
    layer = CASES[name](L)
    images = _images(name, layer)
    np.testing.assert_array_equal(trace(layer, (images.shape[1:], np.float32))(images), images)


def test_auto_contrast_applies_at_inference_like_keras():
    images = _images("auto_contrast", L.AutoContrast())
    got = trace(L.AutoContrast(), (images.shape[1:], np.float32))(images)
    want = keras.ops.convert_to_numpy(keras.layers.AutoContrast()(images, training=False))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(got[1, ..., 2], images[1, ..., 2])


def test_random_draws_vary_per_image_and_stay_in_range():
    images = IMAGES / 255.0
    for layer in (L.RandomHue(0.5, value_range=(0, 1)), L.RandomSaturation(0.9, value_range=(0, 1)),
                  L.RandomColorDegeneration(1.0, value_range=(0, 1)), L.RandomSharpness(1.0, value_range=(0, 1)),
                  L.Solarization(0.5, 0.5, value_range=(0, 1)), L.RandomPosterization(8, value_range=(0, 1))):
        traced = trace(layer, (images.shape[1:], np.float32), training=True)
        noise = [R.uniform(size=(4, 1, 1, 1)) for _ in traced.noise_names]
        out = traced(images, noise=noise)
        assert out.min() >= -1e-6 and out.max() <= 1 + 1e-6, type(layer).__name__
        changes = [np.abs(out[i] - images[i]).mean() for i in range(4)]
        assert len(set(np.round(changes, 6))) > 1, type(layer).__name__


def test_bad_arguments_are_refused_like_keras():
    with pytest.raises(ValueError, match=r"factor=1.5"):
        L.RandomHue(1.5)
    with pytest.raises(ValueError, match=r"value_range=\(0, 1, 2\)"):
        L.RandomSaturation(0.5, value_range=(0, 1, 2))
    with pytest.raises(ValueError, match="addition_factor"):
        L.Solarization(addition_factor=2.0)
    with pytest.raises(ValueError, match=r"factor=9"):
        L.RandomPosterization(9)
    with pytest.raises(ValueError, match="value_range"):
        L.AutoContrast(value_range=5)
