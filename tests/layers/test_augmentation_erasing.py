"""RandomErasing and RandomGaussianBlur against real Keras 3 (torch backend): for the same drawn uniforms (fed
to the traced graph, turned into Keras's transformation dict) the training output equals Keras's
``transform_images``; boxes, probabilities, fills and blurs behave per image; identity at inference; configs
equal Keras's and ``.keras`` files load both ways; every graph passes the full ONNX checker (``trace`` checks
it)."""
from __future__ import annotations

import math
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

import onnxforge  # noqa: E402
from onnxforge import layers as L  # noqa: E402
from tests.conftest import check_full  # noqa: E402
from tests.layers.helpers import trace  # noqa: E402

R = np.random.default_rng(5)
B = 6
IMAGES = R.uniform(0, 255, size=(B, 7, 9, 3)).astype("float32")


def _tensor(x):
    return keras.ops.convert_to_tensor(x)


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _lerp(u, pair):
    return u * np.float32(pair[1] - pair[0]) + np.float32(pair[0])


def _draws(n, shape, normal):
    """Per-image uniforms in the layer's draw order, then Box-Muller's two per-pixel uniforms."""
    per_image = [R.uniform(size=(n, 1, 1, 1)).astype("float32") for _ in range(6)]
    return per_image + ([R.uniform(size=(n, *shape)).astype("float32") for _ in range(2)] if normal else [])


def _keras_transformation(layer, images, noise, channels_first=False):
    """Keras's transformation dict for the uniforms ``noise`` (see RandomErasing.get_random_transformation)."""
    ux, uy, sx, sy, up, ut = (u.reshape(-1) for u in noise[:6])
    h, w = images.shape[2:] if channels_first else images.shape[1:3]
    bounds = []
    for u, start, length in ((ux, sx, w), (uy, sy, h)):
        side = np.sqrt(_lerp(u, layer.scale)) * np.float32(length)
        x0 = start * (np.float32(length) - side)
        bounds += [x0, x0 + side]
    masks = layer._generate_batch_mask(images.shape, tuple(_tensor(v) for v in bounds))
    apply = ut < _lerp(up, layer.factor)
    if layer.fill_value is None:
        u1, u2 = noise[6:8]
        normal = np.sqrt(np.log(1.0 - u1) * np.float32(-2.0)) * np.cos(u2 * np.float32(2 * math.pi))
        fill = np.clip(normal.astype("float32") * np.float32(layer.value_range[1]), *layer.value_range)
    else:
        fill = layer._get_fill_value(_tensor(images), images.shape, None)
    return {"batch_masks": masks, "apply_erasing": _tensor(apply), "fill_value": _tensor(fill)}, apply


CASES = {
    "noise": lambda K: K.RandomErasing(),
    "noise_01": lambda K: K.RandomErasing(factor=(0.3, 0.9), scale=(0.1, 0.5), value_range=(0, 1)),
    "constant": lambda K: K.RandomErasing(factor=0.8, scale=0.4, fill_value=300.0),
    "per_channel": lambda K: K.RandomErasing(scale=(0.2, 0.6), fill_value=[10.0, -5.0, 128.0]),
    "noise_cf": lambda K: K.RandomErasing(scale=(0.05, 0.7), data_format="channels_first"),
    "constant_cf": lambda K: K.RandomErasing(factor=1.0, fill_value=7, data_format="channels_first"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_training_output_equals_keras_for_the_same_draws(name):
    layer = CASES[name](keras.layers)
    images = IMAGES / 255.0 if "01" in name else IMAGES
    cf = name.endswith("_cf")
    if cf:
        images = np.ascontiguousarray(np.moveaxis(images, -1, 1))
    ours = trace(CASES[name](L), (images.shape[1:], np.float32), training=True)
    noise = _draws(B, images.shape[1:], layer.fill_value is None)
    assert len(ours.noise_names) == len(noise)
    got = ours(images, noise=noise)
    transformation, apply = _keras_transformation(layer, images, noise, cf)
    want = _np(layer.transform_images(_tensor(images), transformation))
    assert 0 < apply.sum() < B or name.startswith("constant")
    assert not np.array_equal(want, images)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-4)


def test_box_size_position_probability_and_fill_per_image():
    images = np.full((4, 10, 10, 3), 50.0, "float32")
    traced = trace(L.RandomErasing(factor=(0.3, 0.3), scale=(0.16, 0.16), fill_value=[1.0, 2.0, 3.0]),
                   ((10, 10, 3), np.float32), training=True)
    ratios = [np.full((4, 1, 1, 1), 0.5, "float32")] * 2
    starts = [np.array([0.0, 0.5, 0.99, 0.25], "float32").reshape(4, 1, 1, 1),
              np.array([0.0, 0.0, 0.99, 0.75], "float32").reshape(4, 1, 1, 1)]
    prob = np.full((4, 1, 1, 1), 0.6, "float32")   # any draw: factor is fixed at 0.3
    threshold = np.array([0.1, 0.4, 0.2, 0.9], "float32").reshape(4, 1, 1, 1)   # erase images 0 and 2
    out = traced(images, noise=ratios + starts + [prob, threshold])
    erased = (out != 50.0).all(axis=-1)
    assert erased[0, :4, :4].all() and erased[0].sum() == 16   # side sqrt(0.16) * 10 = 4 pixels
    assert erased[2, 6:, 6:].all() and erased[2].sum() == 16   # start 0.99 * 6: pixels 6..9
    assert not erased[1].any() and not erased[3].any()
    np.testing.assert_array_equal(out[0, 0, 0], [1.0, 2.0, 3.0])


def test_noise_fill_is_clipped_and_draws_vary_per_image():
    images = IMAGES / 255.0
    layer = L.RandomErasing(factor=(1.0, 1.0), scale=(0.3, 0.6), value_range=(0, 1))
    np.random.seed(1)
    first = layer(images, training=True)
    np.random.seed(1)
    np.testing.assert_array_equal(layer(images, training=True), first)
    assert first.min() >= 0.0 and first.max() <= 1.0
    changed = (first != images).any(axis=-1)
    assert all(changed[i].any() for i in range(B))
    assert len({int(changed[i].sum()) for i in range(B)}) > 1
    assert not np.array_equal(layer(images, training=True), first)
    # About half of the erased noise is clipped at 0 (N(0, 1) < 0).
    erased = first[first != images]
    assert 0.3 < (erased == 0.0).mean() < 0.7


def test_identity_at_inference_single_images_and_dicts():
    layer = L.RandomErasing(fill_value=0.0)
    np.testing.assert_array_equal(trace(layer, (IMAGES.shape[1:], np.float32))(IMAGES), IMAGES)
    np.testing.assert_array_equal(layer(IMAGES, training=False), IMAGES)
    single = L.RandomErasing(factor=(1.0, 1.0), scale=(0.5, 0.5), fill_value=0.0)(IMAGES[0], training=True)
    assert single.shape == IMAGES[0].shape and (single == 0).any()
    labels = np.eye(B, 3, dtype="float32")
    out = L.RandomErasing()({"images": IMAGES, "labels": labels}, training=True)
    np.testing.assert_array_equal(out["labels"], labels)
    assert out["images"].shape == IMAGES.shape


def test_bad_arguments_are_refused_like_keras():
    with pytest.raises(ValueError, match="factor=1.5"):
        L.RandomErasing(factor=1.5)
    with pytest.raises(ValueError, match=r"scale=\(0.2, 0.3, 0.4\)"):
        L.RandomErasing(scale=(0.2, 0.3, 0.4))
    with pytest.raises(ValueError, match="fill_value"):
        L.RandomErasing(fill_value=[1.0, 2.0])
    with pytest.raises(ValueError, match="fill_value"):
        L.RandomErasing(fill_value="red")


@pytest.mark.parametrize("name", list(CASES))
def test_config_equals_keras_and_round_trips(name):
    ours, theirs = CASES[name](L), CASES[name](keras.layers)
    config, want = ours.get_config(), theirs.get_config()
    for key in set(want) - {"name", "dtype", "trainable"}:
        assert config[key] == (list(want[key]) if isinstance(want[key], tuple) else want[key]), key
    again = type(ours).from_config(config)
    assert again.get_config() == config


def test_keras_files_load_both_ways(tmp_path):
    x = R.uniform(0, 255, size=(4, 6, 6, 3)).astype("float32")
    y = np.eye(2, dtype="float32")[np.arange(4) % 2]
    model = onnxforge.Sequential([L.Input((6, 6, 3)), L.RandomErasing(factor=0.7, fill_value=[0, 0, 0]),
                                  L.Flatten(), L.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    history = model.fit(x / 255.0, y, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    for program in model.compiled_programs.values():
        check_full(program.model)
    first = model.predict(x, verbose=0)
    model.save(tmp_path / "ours.keras")
    theirs = keras.saving.load_model(tmp_path / "ours.keras")
    assert type(theirs.layers[0]).__name__ == "RandomErasing"
    assert theirs.layers[0].get_config()["fill_value"] == [0, 0, 0]
    # Unscaled 0-255 pixels make logits of tens: float32 summation order (torch vs onnxruntime, one thread or
    # two) moves the softmax by up to ~2e-5 relative (seen once in the 2-worker suite), hence 1e-4.
    np.testing.assert_allclose(_np(theirs.predict(x, verbose=0)), first, rtol=1e-4, atol=1e-6)

    inp = keras.Input((6, 6, 3))
    kmodel = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(
        keras.layers.RandomErasing(scale=(0.1, 0.2), value_range=(0, 1))(inp))))
    kmodel.save(tmp_path / "theirs.keras")
    loaded = onnxforge.keras.saving.load_model(tmp_path / "theirs.keras")
    erasing = next(layer for layer in loaded.layers if type(layer).__name__ == "RandomErasing")
    assert erasing.scale == (0.1, 0.2) and erasing.value_range == [0, 1]
    np.testing.assert_allclose(loaded.predict(x, verbose=0), _np(kmodel.predict(x, verbose=0)), atol=1e-4)


# RandomGaussianBlur: per-image probability and threshold, then one (sigma_x, sigma_y) for the batch.

BLUR_CASES = {
    "default": lambda K: K.RandomGaussianBlur(),
    "wide": lambda K: K.RandomGaussianBlur(factor=(0.4, 0.9), kernel_size=5, sigma=(0.3, 1.0)),
    "clipped_01": lambda K: K.RandomGaussianBlur(kernel_size=7, sigma=0.8, value_range=(0.1, 0.9)),
    "cf": lambda K: K.RandomGaussianBlur(kernel_size=(5, 5), data_format="channels_first"),
}


def _blur_noise(n):
    return ([R.uniform(size=(n, 1, 1, 1)).astype("float32") for _ in range(2)]
            + [np.array(v, "float32").reshape(1, 1, 1, 1) for v in R.uniform(size=2)])


@pytest.mark.parametrize("name", list(BLUR_CASES))
def test_blur_equals_keras_for_the_same_draws(name):
    layer = BLUR_CASES[name](keras.layers)
    images = IMAGES / 255.0 if name.endswith("01") else IMAGES
    if name == "cf":
        images = np.ascontiguousarray(np.moveaxis(images, -1, 1))
    ours = trace(BLUR_CASES[name](L), (images.shape[1:], np.float32), training=True)
    noise = _blur_noise(B)
    assert len(ours.noise_names) == 4
    got = ours(images, noise=noise)
    apply = noise[1].reshape(-1) < _lerp(noise[0].reshape(-1), layer.factor)
    sigma = np.array([_lerp(noise[k].reshape(()), layer.sigma) + np.float32(1e-6) for k in (2, 3)], "float32")
    want = _np(layer.transform_images(_tensor(images),
                                      {"should_apply_blur": _tensor(apply), "blur_factor": _tensor(sigma)}))
    assert 0 < apply.sum() < B and not np.allclose(want, images)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * images.max())


def test_blur_keeps_the_mass_of_an_inner_point_and_separates_the_axes():
    image = np.zeros((1, 9, 9, 1), "float32")
    image[0, 4, 4, 0] = 100.0
    traced = trace(L.RandomGaussianBlur(factor=(1.0, 1.0), kernel_size=5, sigma=(0.0, 1.0)),
                   ((9, 9, 1), np.float32), training=True)
    fixed = [np.zeros((1, 1, 1, 1), "float32"), np.zeros((1, 1, 1, 1), "float32")]
    out = traced(image, noise=fixed + [np.full((1, 1, 1, 1), 0.9, "float32"), np.zeros((1, 1, 1, 1), "float32")])
    assert abs(out.sum() - 100.0) < 1e-3
    # sigma_y = 1e-6: the blur runs along the row only (sigma_x = 0.9).
    np.testing.assert_allclose(out[0, :, :, 0].sum(axis=1), [0, 0, 0, 0, 100, 0, 0, 0, 0], atol=1e-3)
    assert (out[0, 4, 2:7, 0] > 1).all() and out[0, 4, 4, 0] < 100


def test_blur_identity_at_inference_and_where_not_drawn():
    layer = L.RandomGaussianBlur(value_range=(0, 255))
    np.testing.assert_array_equal(trace(layer, (IMAGES.shape[1:], np.float32))(IMAGES), IMAGES)
    traced = trace(layer, (IMAGES.shape[1:], np.float32), training=True)
    never = [np.zeros((B, 1, 1, 1), "float32"), np.full((B, 1, 1, 1), 0.99, "float32")]
    out = traced(IMAGES, noise=never + [np.full((1, 1, 1, 1), 0.5, "float32")] * 2)
    np.testing.assert_array_equal(out, IMAGES)
    single = L.RandomGaussianBlur(factor=(1.0, 1.0))(IMAGES[0], training=True)
    assert single.shape == IMAGES[0].shape and not np.array_equal(single, IMAGES[0])


def test_blur_arguments_are_checked_like_keras():
    with pytest.raises(ValueError, match="kernel_size=4"):
        L.RandomGaussianBlur(kernel_size=4)
    with pytest.raises(ValueError, match="sigma=2"):
        L.RandomGaussianBlur(sigma=2)
    with pytest.raises(ValueError, match="square"):
        L.RandomGaussianBlur(kernel_size=(3, 5))


@pytest.mark.parametrize("name", list(BLUR_CASES))
def test_blur_config_equals_keras_and_round_trips(name):
    ours, theirs = BLUR_CASES[name](L), BLUR_CASES[name](keras.layers)
    config, want = ours.get_config(), theirs.get_config()
    for key in set(want) - {"name", "dtype", "trainable"}:
        assert config[key] == (list(want[key]) if isinstance(want[key], tuple) else want[key]), key
    assert type(ours).from_config(config).get_config() == config


def test_blur_keras_files_load_both_ways(tmp_path):
    x = R.uniform(0, 255, size=(4, 6, 6, 3)).astype("float32")
    model = onnxforge.Sequential([L.Input((6, 6, 3)), L.RandomGaussianBlur(kernel_size=5, sigma=(0.2, 0.7)),
                                  L.Flatten(), L.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    assert np.isfinite(model.fit(x / 255.0, np.zeros((4, 2), "float32"), verbose=0).history["loss"]).all()
    for program in model.compiled_programs.values():
        check_full(program.model)
    model.save(tmp_path / "ours.keras")
    theirs = keras.saving.load_model(tmp_path / "ours.keras")
    assert type(theirs.layers[0]).__name__ == "RandomGaussianBlur" and theirs.layers[0].kernel_size == (5, 5)
    # Outputs reach ~200 from pixel sums of 0..255: float32 rounding of the two runtimes' sums is ~2e-5 there.
    np.testing.assert_allclose(_np(theirs.predict(x, verbose=0)), model.predict(x, verbose=0), rtol=1e-5,
                               atol=1e-4)
    inp = keras.Input((6, 6, 3))
    kmodel = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(keras.layers.RandomGaussianBlur()(inp))))
    kmodel.save(tmp_path / "theirs.keras")
    loaded = onnxforge.keras.saving.load_model(tmp_path / "theirs.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), _np(kmodel.predict(x, verbose=0)), atol=1e-3)
