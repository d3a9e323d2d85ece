"""tf.keras 2's ImageDataGenerator against TensorFlow's tf.keras one: transforms with fixed parameters,
standardization, and batches that ``fit`` trains on."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
tf = pytest.importorskip("tensorflow")

import onnxforge  # noqa: E402
from onnxforge.keras.preprocessing.image import ImageDataGenerator  # noqa: E402

REF = tf.keras.preprocessing.image
RNG = np.random.default_rng(0)
IMAGES = RNG.uniform(0, 255, size=(6, 7, 5, 3)).astype(np.float32)

PARAMS = [{"theta": 20.0}, {"tx": 1.5, "ty": -2.0}, {"shear": 15.0}, {"zx": 0.8, "zy": 1.3},
          {"theta": -30.0, "tx": 1.0, "shear": 10.0, "zx": 1.2, "zy": 0.9, "flip_horizontal": True},
          {"flip_vertical": True, "channel_shift_intensity": 30.0}]


@pytest.mark.parametrize("fill_mode", ["nearest", "constant", "reflect", "wrap"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_apply_transform_matches_tf_keras(fill_mode, data_format):
    image = IMAGES[0] if data_format == "channels_last" else np.moveaxis(IMAGES[0], -1, 0)
    kwargs = {"fill_mode": fill_mode, "cval": 7.0, "data_format": data_format}
    ours, ref = ImageDataGenerator(**kwargs), REF.ImageDataGenerator(**kwargs)
    for params in PARAMS:
        np.testing.assert_allclose(ours.apply_transform(image, params), ref.apply_transform(image, params),
                                   rtol=1e-5, atol=1e-3, err_msg=str(params))


def test_standardize_and_fit_match_tf_keras():
    kwargs = {"featurewise_center": True, "featurewise_std_normalization": True, "rescale": 1 / 255,
              "preprocessing_function": lambda img: img + 1.0}
    ours, ref = ImageDataGenerator(**kwargs), REF.ImageDataGenerator(**kwargs)
    ours.fit(IMAGES)
    ref.fit(IMAGES)
    np.testing.assert_allclose(ours.mean, ref.mean, rtol=1e-5)
    np.testing.assert_allclose(ours.std, ref.std, rtol=1e-5)
    np.testing.assert_allclose(ours.standardize(IMAGES[1].copy()), ref.standardize(IMAGES[1].copy()), rtol=1e-4,
                               atol=1e-5)
    sample = {"samplewise_center": True, "samplewise_std_normalization": True}
    np.testing.assert_allclose(ImageDataGenerator(**sample).standardize(IMAGES[2].copy()),
                               REF.ImageDataGenerator(**sample).standardize(IMAGES[2].copy()), rtol=1e-4, atol=1e-5)
    with pytest.warns(UserWarning, match="fit"):
        np.testing.assert_array_equal(ImageDataGenerator(featurewise_center=True).standardize(IMAGES[0]), IMAGES[0])


def test_flow_batches_match_tf_keras_without_randomness_and_train():
    y = np.array([0, 1, 0, 1, 0, 1])
    kwargs = {"rescale": 1 / 255, "validation_split": 1 / 3}
    ours = ImageDataGenerator(**kwargs).flow(IMAGES, y, batch_size=3, shuffle=False, subset="training")
    ref = REF.ImageDataGenerator(**kwargs).flow(IMAGES, y, batch_size=3, shuffle=False, subset="training")
    assert len(ours) == len(ref) == 2
    for i in range(2):
        np.testing.assert_allclose(ours[i][0], ref[i][0], rtol=1e-6)
        np.testing.assert_array_equal(ours[i][1], ref[i][1])
    first = next(ours)
    np.testing.assert_array_equal(first[1], [0, 1, 0])
    augmenting = ImageDataGenerator(rotation_range=10, horizontal_flip=True, zoom_range=0.1, rescale=1 / 255)
    model = onnxforge.keras.Sequential([onnxforge.keras.Input((7, 5, 3)), onnxforge.keras.layers.Flatten(),
                                        onnxforge.keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    history = model.fit(augmenting.flow(IMAGES, y % 2, batch_size=4, seed=0), epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()


def test_unsupported_options_say_what_to_use():
    with pytest.raises(NotImplementedError, match="RandomBrightness"):
        ImageDataGenerator(brightness_range=(0.5, 1.5))
    with pytest.raises(NotImplementedError, match="image_dataset_from_directory"):
        ImageDataGenerator().flow_from_directory("somewhere")
    with pytest.raises(ValueError, match="rank 4"):
        ImageDataGenerator().flow(IMAGES[0])
    with pytest.raises(ValueError, match="different classes"):
        ImageDataGenerator(validation_split=0.5).flow(IMAGES, np.arange(6), subset="training")
    with pytest.raises(ValueError, match="zoom_range"):
        ImageDataGenerator(zoom_range=(1, 2, 3))
