"""``RandomPerspective``, ``RandomElasticTransform`` and ``AugMix`` against real Keras 3: for the same drawn
parameters (uniforms fed to the traced graph) the transforms compute Keras's images; with their own draws they
keep shapes, types and ranges, vary between calls, reproduce under NumPy's seed and pass through at inference;
configs equal Keras's and round-trip; the layers train inside a Sequential and save to ``.keras``."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

import onnxforge  # noqa: E402
from onnxforge import layers as L  # noqa: E402
from onnxforge.layers.preprocessing.aug_mix import gamma_draw  # noqa: E402
from tests.conftest import check_full  # noqa: E402
from tests.layers.helpers import trace  # noqa: E402

R = np.random.default_rng(21)
B = 3
IMAGES = R.uniform(0, 255, size=(B, 7, 9, 3)).astype("float32")


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _tensor(x):
    return keras.ops.convert_to_tensor(x)


def test_perspective_matches_keras_for_the_same_draws():
    ours = trace(L.RandomPerspective(factor=(0.2, 0.9), scale=0.6), (IMAGES.shape[1:], np.float32), training=True)
    assert len(ours.noise_names) == 10
    u = R.uniform(size=(10, B)).astype("float32")
    got = ours(IMAGES, noise=[u[k].reshape(B, 1, 1, 1) for k in range(10)])
    apply = u[1] < np.float32(0.2) + u[0] * np.float32(0.7)
    factors = (np.float32(-0.3) + u[2:].T * np.float32(0.6)).reshape(B, 4, 2)
    h, w = IMAGES.shape[1:3]
    start = np.repeat(np.float32([[[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]]]), B, axis=0)
    end = start + start * factors
    layer = keras.layers.RandomPerspective(factor=(0.2, 0.9), scale=0.6)
    want = _np(layer.transform_images(_tensor(IMAGES), {"apply_perspective": _tensor(apply),
                                                        "start_points": _tensor(start),
                                                        "end_points": _tensor(end.astype("float32")),
                                                        "input_shape": IMAGES.shape}))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=2e-2)
    assert apply.any() and not apply.all()   # both branches of the per-image choice are exercised
    np.testing.assert_array_equal(got[~apply], IMAGES[~apply])


def test_perspective_with_zero_scale_and_elastic_with_zero_scale_are_identities_like_keras():
    for make in (lambda K: K.RandomPerspective(factor=(1.0, 1.0), scale=0.0),
                 lambda K: K.RandomElasticTransform(factor=1.0, scale=0.0, value_range=(0, 100))):
        got = make(L)(IMAGES, training=True)
        want = _np(make(keras.layers)(IMAGES, training=True))
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)
        np.testing.assert_allclose(got, IMAGES, rtol=1e-5, atol=1e-3)


def test_elastic_transform_with_the_strength_fed_warps_within_range():
    layer = L.RandomElasticTransform(factor=(1.0, 1.0), scale=(0.5, 1.0), value_range=(0, 255))
    ours = trace(layer, (IMAGES.shape[1:], np.float32), training=True)
    shapes = {i.name: [d.dim_value or B for d in i.type.tensor_type.shape.dim] for i in ours.model.graph.input}
    noise = [R.uniform(size=shapes[n]).astype("float32") for n in ours.noise_names]
    got = ours(IMAGES, noise=noise)
    assert got.shape == IMAGES.shape and got.dtype == np.float32
    assert not np.allclose(got, IMAGES) and got.min() >= 0 and got.max() <= 255
    # Smooth displacements: the warped image keeps the original's mean roughly.
    assert abs(float(got.mean()) - float(IMAGES.mean())) < 25


def test_aug_mix_chains_of_deterministic_steps_match_keras():
    layer = L.AugMix(value_range=(0, 255), num_chains=2, chain_depth=2, factor=0.2)
    keras_layer = keras.layers.AugMix(value_range=(0, 255), num_chains=2, chain_depth=2, factor=0.2)
    names = ["random_shear", "random_translation", "random_rotation", "random_posterization", "solarization",
             "auto_contrast", "equalization", "random_brightness", "random_color_degeneration", "random_contrast",
             "random_sharpness"]
    picks = [[5, 11], [6, 5]]                 # auto-contrast then nothing; equalization then auto-contrast
    weights, blend = np.float32([0.3, 0.7]), np.float32([0.25])

    def call(x):
        b = x.builder
        steps = [[[op._draw(x) for op in layer._augmentations] for _ in range(2)] for _ in range(2)]
        params = (b.const(weights), b.const(blend), b.const(np.float32(sum(picks, []))), steps)
        return layer._transform(x, params)

    ours = trace(call, (IMAGES.shape[1:], np.float32), training=True)
    shapes = {i.name: [d.dim_value or B for d in i.type.tensor_type.shape.dim] for i in ours.model.graph.input}
    got = ours(IMAGES, noise=[R.uniform(size=shapes[n]).astype("float32") for n in ours.noise_names])
    chains = [[{"layer_name": names[k], "transformation": None} for k in chain if k < len(names)] for chain in picks]
    want = _np(keras_layer.transform_images(_tensor(IMAGES), {"chain_mixing_weights": _tensor(weights),
                                                              "weight_sample": _tensor(blend[0]),
                                                              "chain_transforms": chains}))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=2e-2)


def test_gamma_draws_have_gammas_moments():
    for alpha in (0.4, 1.0, 3.0):
        ours = trace(lambda x: gamma_draw(x, alpha), ((4000,), np.float32), training=True)
        shapes = {i.name: [d.dim_value or 1 for d in i.type.tensor_type.shape.dim] for i in ours.model.graph.input}
        rng = np.random.default_rng(5)
        got = ours(np.zeros((1, 4000), np.float32),
                   noise=[rng.uniform(size=shapes[n]).astype("float32") for n in ours.noise_names])
        assert got.min() > 0
        assert abs(got.mean() - alpha) < 0.08 * alpha + 0.02, alpha
        assert abs(got.var() - alpha) < 0.15 * alpha + 0.03, alpha


@pytest.mark.parametrize("make", [lambda K: K.RandomPerspective(factor=(0.6, 1.0), scale=0.5),
                                  lambda K: K.RandomElasticTransform(factor=(1.0, 1.0), scale=0.5),
                                  lambda K: K.AugMix(num_chains=2, chain_depth=1, factor=0.3)])
def test_random_draws_vary_reproduce_and_pass_through_at_inference(make):
    layer = make(L)
    np.random.seed(4)
    first = layer(IMAGES, training=True)
    np.random.seed(4)
    np.testing.assert_array_equal(layer(IMAGES, training=True), first)
    assert not np.array_equal(layer(IMAGES, training=True), first)
    assert first.shape == IMAGES.shape and first.dtype == np.float32 and np.isfinite(first).all()
    assert first.min() >= 0 and first.max() <= 255 + 1e-3
    np.testing.assert_array_equal(layer(IMAGES, training=False), IMAGES)
    single = layer(IMAGES[0], training=True)
    assert single.shape == IMAGES.shape[1:]
    chw = make(L).__class__.from_config({**layer.get_config(), "data_format": "channels_first"})
    assert chw(IMAGES.transpose(0, 3, 1, 2), training=True).shape == (B, 3, 7, 9)


def test_bad_arguments_are_refused_with_the_argument_named():
    with pytest.raises(ValueError, match="scale=1.5"):
        L.RandomPerspective(scale=1.5)
    with pytest.raises(ValueError, match="factor=2"):
        L.RandomPerspective(factor=2)
    with pytest.raises(NotImplementedError, match="bicubic"):
        L.RandomElasticTransform(interpolation="bicubic")
    with pytest.raises(NotImplementedError, match="fill_mode"):
        L.RandomElasticTransform(fill_mode="edge")
    with pytest.raises(ValueError, match="scale=3"):
        L.RandomElasticTransform(scale=3)
    with pytest.raises(ValueError, match="num_chains=0"):
        L.AugMix(num_chains=0)
    with pytest.raises(ValueError, match="value_range"):
        L.AugMix(value_range=5)


LAYERS = {
    "RandomPerspective": lambda K: K.RandomPerspective(factor=0.7, scale=0.4, interpolation="nearest",
                                                       fill_value=2.0, seed=3),
    "RandomElasticTransform": lambda K: K.RandomElasticTransform(factor=(0.2, 0.6), scale=0.3, fill_mode="wrap",
                                                                 value_range=[0, 1]),
    "AugMix": lambda K: K.AugMix(value_range=[0, 1], num_chains=2, chain_depth=4, factor=0.5, alpha=0.5,
                                 all_ops=False, interpolation="nearest"),
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_config_equals_keras_and_round_trips(name):
    ours, theirs = LAYERS[name](L), LAYERS[name](keras.layers)
    config, want = ours.get_config(), theirs.get_config()
    for key in set(want) - {"name", "dtype"}:
        assert config[key] == (list(want[key]) if isinstance(want[key], tuple) else want[key]), key
    again = type(ours).from_config(config)
    assert again.get_config() == config
    assert type(theirs).from_config(config).get_config()["factor"] == want["factor"]


def test_model_with_the_new_augmentations_trains_predicts_and_loads_in_keras(tmp_path):
    x = R.uniform(0, 1, size=(4, 8, 8, 3)).astype("float32")
    y = np.eye(2, dtype="float32")[np.arange(4) % 2]
    model = onnxforge.Sequential([L.Input((8, 8, 3)), L.RandomPerspective(scale=0.3),
                                  L.RandomElasticTransform(scale=0.5, value_range=(0, 1)),
                                  L.AugMix(value_range=(0, 1), num_chains=2, chain_depth=1),
                                  L.Conv2D(2, 3, activation="relu"), L.GlobalAveragePooling2D(),
                                  L.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    for program in model.compiled_programs.values():
        check_full(program.model)
    first = model.predict(x, verbose=0)
    model.save(tmp_path / "warps.keras")
    theirs = keras.saving.load_model(tmp_path / "warps.keras")
    assert [type(layer).__name__ for layer in theirs.layers][:3] == ["RandomPerspective", "RandomElasticTransform",
                                                                    "AugMix"]
    np.testing.assert_allclose(_np(theirs.predict(x, verbose=0)), first, rtol=1e-5, atol=1e-6)
    back = onnxforge.keras.models.load_model(tmp_path / "warps.keras")
    np.testing.assert_allclose(back.predict(x, verbose=0), first, rtol=1e-5, atol=1e-6)
