"""MixUp, CutMix, RandomShear, RandomColorJitter and RandAugment against real Keras 3 (torch backend): for the
same drawn parameters the images and labels equal Keras's ``transform_images`` / ``transform_labels``; the
Beta draws have Beta's moments; configs load in Keras from a ``.keras`` file; and a small CNN with
RandAugment and RandomColorJitter as its first layers trains with ``fit`` through programs that pass the full
ONNX checker."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

import onnxforge  # noqa: E402
from onnxforge import layers as L  # noqa: E402
from onnxforge.layers.preprocessing.mixing import _candidates  # noqa: E402
from tests.conftest import check_full  # noqa: E402
from tests.layers.helpers import trace  # noqa: E402

R = np.random.default_rng(11)
B = 6
IMAGES = R.uniform(0, 255, size=(B, 5, 7, 3)).astype("float32")
LABELS = np.eye(B, 4, dtype="float32")[R.permutation(B)]


def _tensor(x):
    return keras.ops.convert_to_tensor(x)


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _johnk(u, v, alpha):
    """numpy's reading of the candidates fed to the graph (see mixing.beta_draw)."""
    x, y = np.log(u + 1e-30) / alpha, np.log(v + 1e-30) / alpha
    top = np.maximum(x, y)
    lse = top + np.log1p(np.exp(np.minimum(x, y) - top))
    ok = lse <= 0
    first = np.argmax(ok, axis=1)
    w = np.exp(x - lse)[np.arange(len(u)), first]
    return np.where(ok.any(axis=1), w, 0.5).astype("float32")


def _swap_pairs_noise(n):
    """Permutation uniforms whose sort order (descending) pairs image i with image i ^ 1."""
    return np.array([(n - (i ^ 1)) / n for i in range(n)], "float32").reshape(n, 1)


def _mix_trace(layer, shape=IMAGES.shape[1:]):
    def call(values):
        out = layer({"images": values[0], "labels": values[1]})
        return [out["images"], out["labels"]]
    return trace(call, [(shape, np.float32), ((4,), np.float32)], training=True)


def test_mixup_mixes_images_and_labels_with_keras_weights():
    traced = _mix_trace(L.MixUp(alpha=0.4))
    n = _candidates(0.4)
    u, v = R.uniform(size=(B, n)).astype("float32"), R.uniform(size=(B, n)).astype("float32")
    images, labels = traced(IMAGES, LABELS, noise=[u, v, _swap_pairs_noise(B)])
    order = np.array([i ^ 1 for i in range(B)])
    transformation = {"mix_weight": _tensor(_johnk(u, v, 0.4)), "permutation_order": _tensor(order)}
    layer = keras.layers.MixUp(alpha=0.4)
    np.testing.assert_allclose(images, _np(layer.transform_images(_tensor(IMAGES), transformation)), rtol=1e-5,
                               atol=1e-3)
    np.testing.assert_allclose(labels, _np(layer.transform_labels(_tensor(LABELS), transformation)), rtol=1e-5,
                               atol=1e-6)


def test_mixup_on_a_plain_tensor_mixes_images_only_and_is_identity_at_inference():
    layer = L.MixUp()
    traced = trace(layer, (IMAGES.shape[1:], np.float32), training=True)
    assert len(traced.noise_names) == 3
    np.testing.assert_array_equal(trace(layer, (IMAGES.shape[1:], np.float32))(IMAGES), IMAGES)


def test_beta_draws_have_betas_moments():
    n_images, alpha = 4000, 0.2
    images = (np.arange(n_images) % 2).astype("float32").reshape(n_images, 1, 1, 1)
    traced = trace(L.MixUp(alpha=alpha), ((1, 1, 1), np.float32), training=True)
    rng = np.random.default_rng(0)
    noise = [rng.uniform(size=(n_images, _candidates(alpha))) for _ in range(2)] + [_swap_pairs_noise(n_images)]
    w = 1.0 - traced(images, noise=noise)[0::2].ravel()   # even images are 0, mixed with an odd 1
    assert abs(w.mean() - 0.5) < 0.02
    assert abs(w.var() - 1 / (4 * (2 * alpha + 1))) < 0.01   # Beta(a, a)'s variance
    # U-shaped for a < 1: P(w < 0.05) = I_0.05(0.2, 0.2) = 0.289
    assert abs((w < 0.05).mean() - 0.289) < 0.03 and abs((w > 0.95).mean() - 0.289) < 0.03


def test_cutmix_matches_keras_for_the_same_draws():
    layer = keras.layers.CutMix(factor=(0.3, 0.9))
    traced = _mix_trace(L.CutMix(factor=(0.3, 0.9)))
    n = _candidates(0.9 + 1e-6)
    u_alpha = np.array([[0.4]], "float32")
    u, v = R.uniform(size=(B, n)).astype("float32"), R.uniform(size=(B, n)).astype("float32")
    ux, uy = R.uniform(size=(B, 1)).astype("float32"), R.uniform(size=(B, 1)).astype("float32")
    images, labels = traced(IMAGES, LABELS, noise=[u_alpha, u, v, ux, uy, _swap_pairs_noise(B)])
    alpha = np.float32(0.3) + u_alpha[0, 0] * np.float32(0.6) + np.float32(1e-6)
    ratio = np.sqrt(1 - _johnk(u, v, alpha))
    h, w = IMAGES.shape[1:3]
    x0 = ux[:, 0] * (w - ratio * w)
    y0 = uy[:, 0] * (h - ratio * h)
    masks, weight = layer._generate_batch_mask(IMAGES.shape, tuple(_tensor(a) for a in
                                                                   (x0, x0 + ratio * w, y0, y0 + ratio * h)))
    transformation = {"permutation_order": _tensor(np.array([i ^ 1 for i in range(B)])), "batch_masks": masks,
                      "mix_weight": weight}
    np.testing.assert_allclose(images, _np(layer.transform_images(_tensor(IMAGES), transformation)), atol=1e-4)
    np.testing.assert_allclose(labels, _np(layer.transform_labels(_tensor(LABELS), transformation)), atol=1e-5)
    assert not np.allclose(images, IMAGES)


def test_shear_matches_keras_for_the_same_draws():
    ours = trace(L.RandomShear(0.3, (0.1, 0.5), fill_mode="constant"), (IMAGES.shape[1:], np.float32),
                 training=True)
    u = R.uniform(size=(B, 3)).astype("float32")
    got = ours(IMAGES, noise=[u[:, k].reshape(B, 1, 1, 1) for k in range(3)])
    layer = keras.layers.RandomShear(0.3, (0.1, 0.5), fill_mode="constant")
    sign = np.where(u[:, 0] > 0.5, -1.0, 1.0).astype("float32")
    sy = np.float32(0.1) + u[:, 1] * np.float32(0.4)
    sx = np.float32(-0.3) + u[:, 2] * np.float32(0.6)
    shear = np.stack([sx * sign, sy * sign], axis=1)
    want = _np(layer.transform_images(_tensor(IMAGES), {"shear_factor": _tensor(shear), "input_shape": IMAGES.shape}))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-2)


def test_color_jitter_with_fixed_factors_equals_keras():
    def make(K):
        return K.RandomColorJitter(value_range=(0, 1), brightness_factor=(0.1, 0.1), contrast_factor=0.0,
                                   saturation_factor=(0.3, 0.3))
    images = IMAGES / 255.0
    got = make(L)(images, training=True)
    want = _np(make(keras.layers)(images, training=True))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(make(L)(images, training=False), images)


@pytest.mark.parametrize("picks", [(9, 10), (10, 7), (4, 6)])
def test_rand_augment_applies_the_drawn_ops_like_keras(picks):
    ours = trace(L.RandAugment(value_range=(0, 1), num_ops=2, factor=(0.0, 0.0)), (IMAGES.shape[1:], np.float32),
                 training=True)
    images = np.round(IMAGES / 255.0 * 8) / 8
    choice = (np.array(picks, "float32").reshape(1, 2) + 0.5) / 11
    rest = [np.full((B, 1, 1, 1), 0.3, "float32") for _ in ours.noise_names[1:]]
    got = ours(images, noise=[choice] + rest)
    layer = keras.layers.RandAugment(value_range=(0, 1), num_ops=2, factor=(0.0, 0.0))
    transformation = layer.get_random_transformation(images, training=True)
    transformation["layer_idxes"] = _tensor(np.array(picks))
    want = _np(layer.transform_images(_tensor(images), transformation))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_random_draws_vary_and_reproduce_with_numpys_seed():
    images = IMAGES / 255.0
    for layer in (L.RandAugment(value_range=(0, 1)), L.MixUp(), L.CutMix(), L.RandomShear(0.3, 0.3),
                  L.RandomColorJitter(value_range=(0, 1), brightness_factor=0.3, hue_factor=0.2)):
        np.random.seed(3)
        first = layer(images, training=True)
        np.random.seed(3)
        np.testing.assert_array_equal(layer(images, training=True), first)
        assert not np.array_equal(layer(images, training=True), first), type(layer).__name__
        assert np.isfinite(first).all() and first.min() >= -1e-5 and first.max() <= 1 + 1e-5


def test_bad_arguments_are_refused_with_the_argument_named():
    with pytest.raises(ValueError, match="alpha=-1"):
        L.MixUp(alpha=-1)
    with pytest.raises(ValueError, match=r"factor=2"):
        L.CutMix(2)
    with pytest.raises(ValueError, match="x_factor=1.5"):
        L.RandomShear(1.5)
    with pytest.raises(ValueError, match="num_ops=-1"):
        L.RandAugment(num_ops=-1)


LAYERS = {
    "MixUp": lambda K: K.MixUp(alpha=0.3, seed=2),
    "CutMix": lambda K: K.CutMix((0.2, 0.8)),
    "RandomShear": lambda K: K.RandomShear(0.2, (0.1, 0.3), fill_mode="nearest"),
    "RandomColorJitter": lambda K: K.RandomColorJitter(value_range=[0, 1], brightness_factor=0.2, hue_factor=0.1),
    "RandAugment": lambda K: K.RandAugment(value_range=[0, 1], num_ops=3, factor=0.4, interpolation="nearest"),
    "RandomHue": lambda K: K.RandomHue(0.3, value_range=[0, 1]),
    "RandomSaturation": lambda K: K.RandomSaturation(0.3),
    "RandomColorDegeneration": lambda K: K.RandomColorDegeneration(0.3),
    "RandomSharpness": lambda K: K.RandomSharpness(0.3),
    "Solarization": lambda K: K.Solarization(0.2, 0.4),
    "RandomPosterization": lambda K: K.RandomPosterization(5),
    "AutoContrast": lambda K: K.AutoContrast(value_range=[0, 1]),
    "Equalization": lambda K: K.Equalization(bins=128),
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_config_equals_keras_and_round_trips(name):
    ours, theirs = LAYERS[name](L), LAYERS[name](keras.layers)
    config = ours.get_config()
    want = theirs.get_config()
    # Keras writes RandomShear's ranges, which its constructor refuses again; onnxforge writes the arguments.
    skip = {"x_factor", "y_factor"} if name == "RandomShear" else set()
    for key in set(want) - {"name", "dtype"} - skip:
        assert config[key] == (list(want[key]) if isinstance(want[key], tuple) else want[key]), key
    again = type(ours).from_config(config)
    assert again.get_config() == config


def test_model_with_rand_augment_and_jitter_trains_predicts_and_loads_in_keras(tmp_path):
    x = R.uniform(0, 1, size=(8, 12, 12, 3)).astype("float32")
    y = np.eye(2, dtype="float32")[np.arange(8) % 2]
    model = onnxforge.Sequential([L.Input((12, 12, 3)), L.RandAugment(value_range=(0, 1), factor=0.3),
                                  L.RandomColorJitter(value_range=(0, 1), brightness_factor=0.2,
                                                      contrast_factor=0.2, saturation_factor=0.3, hue_factor=0.1),
                                  L.Conv2D(4, 3, activation="relu"), L.GlobalAveragePooling2D(),
                                  L.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    for program in model.compiled_programs.values():
        check_full(program.model)
    first = model.predict(x, verbose=0)
    np.testing.assert_array_equal(model.predict(x, verbose=0), first)
    model.save(tmp_path / "aug.keras")
    theirs = keras.saving.load_model(tmp_path / "aug.keras")
    assert [type(layer).__name__ for layer in theirs.layers][:2] == ["RandAugment", "RandomColorJitter"]
    np.testing.assert_allclose(_np(theirs.predict(x, verbose=0)), first, rtol=1e-5, atol=1e-6)


def test_keras_files_with_the_new_layers_load_and_predict_alike(tmp_path):
    inp = keras.Input((12, 12, 3))
    x = keras.layers.RandAugment(value_range=(0, 1))(inp)
    x = keras.layers.RandomColorJitter(value_range=(0, 1), hue_factor=0.1)(x)
    x = keras.layers.MixUp()(keras.layers.Solarization()(x))
    x = keras.layers.RandomShear(0.2)(keras.layers.CutMix()(x))   # Keras writes (-0.2, 0.2) for 0.2
    x = keras.layers.RandomPosterization(4)(keras.layers.AutoContrast(value_range=(0, 1))(x))
    theirs = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
    theirs.save(tmp_path / "theirs.keras")
    ours = onnxforge.keras.saving.load_model(tmp_path / "theirs.keras")
    images = R.uniform(size=(2, 12, 12, 3)).astype("float32")
    np.testing.assert_allclose(ours.predict(images, verbose=0), _np(theirs.predict(images, verbose=0)), atol=1e-5)
