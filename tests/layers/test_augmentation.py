"""Random augmentation layers against real Keras 3 (torch backend): identity at inference (predict), and in
training programs Keras's transforms for the same drawn parameters (the uniforms are fed to the traced
graph, and Keras computes its own transform from the parameters they map to)."""
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
from onnxforge.graph import GraphBuilder  # noqa: E402
from onnxforge.layers.preprocessing.augmentation import affine_transform  # noqa: E402
from tests.conftest import check_full  # noqa: E402
from tests.layers.helpers import trace  # noqa: E402
from tests.layers.keras_parity import check_layer_parity  # noqa: E402

R = np.random.default_rng(9)
IMAGES = R.uniform(0, 255, size=(3, 6, 7, 2)).astype("float32")


def _np(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize("fill_mode", ["reflect", "wrap", "constant", "nearest"])
def test_affine_transform_matches_keras_backend(interpolation, fill_mode):
    import onnx
    import onnxruntime as ort

    transforms = np.array([[0.9, -0.3, 1.5, 0.2, 1.1, -2.0, 0, 0], [1.3, 0.0, -1.2, 0.0, 0.7, 2.7, 0, 0],
                           [-1.0, 0.1, 6.0, 0.0, 1.0, 0.3, 0, 0]], "float32")
    b = GraphBuilder()
    x = b.input("x", onnx.TensorProto.FLOAT, ("batch", 6, 7, 2))
    t = b.input("t", onnx.TensorProto.FLOAT, ("batch", 8))
    b.output(affine_transform(x, t, interpolation, fill_mode, 5.0), "y")
    model = check_full(b.to_model())
    got = ort.InferenceSession(model.SerializeToString()).run(None, {"x": IMAGES, "t": transforms})[0]
    expected = _np(keras.ops.image.affine_transform(IMAGES, transforms, interpolation=interpolation,
                                                    fill_mode=fill_mode, fill_value=5.0))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)


CASES = {
    "flip": (lambda K: K.RandomFlip(), 1),
    "flip_horizontal": (lambda K: K.RandomFlip("horizontal"), 1),
    "rotation": (lambda K: K.RandomRotation((-0.2, 0.3)), 1),
    "rotation_nearest_constant": (lambda K: K.RandomRotation(0.25, fill_mode="constant", interpolation="nearest",
                                                             fill_value=3.0), 1),
    "zoom": (lambda K: K.RandomZoom(0.3), 1),
    "zoom_both": (lambda K: K.RandomZoom((-0.3, 0.2), (0.1, 0.4), fill_mode="wrap"), 2),
    "translation": (lambda K: K.RandomTranslation(0.2, (-0.3, 0.1), fill_mode="nearest"), 2),
    "contrast": (lambda K: K.RandomContrast(0.4), 1),
    "brightness": (lambda K: K.RandomBrightness((-0.3, 0.2)), 1),
}


@pytest.mark.parametrize("name", list(CASES))
def test_augmentation_is_identity_at_inference_like_keras(name):
    def make(lib):
        x = lib.Input((6, 7, 2))
        return lib.Model(x, CASES[name][0](lib.layers)(x))
    check_layer_parity(make, IMAGES)


def _keras_output(name, layer, u):
    """Keras's transform of IMAGES for the parameters our uniforms ``u`` (B, k) map to."""
    ours = None
    if name.startswith("flip"):
        flips = (u[:, 0] <= 0.5).reshape(-1, 1, 1, 1)
        return _np(layer.transform_images(IMAGES, {"flips": flips, "input_shape": IMAGES.shape}))
    if name.startswith("rotation"):
        lo, hi = layer.factor
        angle = (lo * 360 + u[:, 0] * (hi - lo) * 360).astype("float32")
        t = keras.ops.convert_to_tensor
        zeros = t(np.zeros(len(u), "float32"))
        matrix = layer._compute_affine_matrix(0.5, 0.5, t(angle), zeros, zeros, t(np.ones(len(u), "float32")),
                                              zeros, zeros, 6, 7)
        return _np(layer.transform_images(IMAGES, {"rotation_matrix": matrix}))
    if name.startswith("zoom"):
        hz = 1 + layer.height_lower + u[:, :1] * (layer.height_upper - layer.height_lower)
        wz = hz if layer.width_factor is None else 1 + layer.width_lower + u[:, 1:2] * (
            layer.width_upper - layer.width_lower)
        return _np(layer.transform_images(IMAGES, {"height_zoom": hz.astype("float32"),
                                                   "width_zoom": wz.astype("float32")}))
    if name == "translation":
        dy = (layer.height_lower + u[:, :1] * (layer.height_upper - layer.height_lower)) * 6
        dx = (layer.width_lower + u[:, 1:2] * (layer.width_upper - layer.width_lower)) * 7
        return _np(layer.transform_images(IMAGES, {"translations": np.concatenate([dx, dy], 1).astype("float32")}))
    if name == "contrast":
        f = 1 - layer.factor[0] + u[:, 0] * (layer.factor[0] + layer.factor[1])
        images = keras.ops.convert_to_tensor(IMAGES)
        return _np(layer.transform_images(images, {"contrast_factor": f.reshape(-1, 1, 1, 1).astype("float32")}))
    if name == "brightness":
        d = (layer.factor[0] + u[:, 0] * (layer.factor[1] - layer.factor[0])) * 255
        images = keras.ops.convert_to_tensor(IMAGES)
        return _np(layer.transform_images(images, {"rgb_delta": d.reshape(-1, 1, 1, 1).astype("float32")}))
    return ours


@pytest.mark.parametrize("name", list(CASES))
def test_training_transform_matches_keras_for_the_same_parameters(name):
    factory, draws = CASES[name]
    ours = trace(factory(L), ((6, 7, 2), np.float32), training=True)
    assert len(ours.noise_names) == draws
    u = R.uniform(0.02, 0.98, size=(3, draws)).astype("float32")
    got = ours(IMAGES, noise=[u[:, k].reshape(3, 1, 1, 1) for k in range(draws)])
    expected = _keras_output(name, factory(keras.layers), u)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=2e-3)


def test_augmented_model_trains_and_predicts_deterministically():
    model = onnxforge.Sequential([L.Input((6, 7, 2)), L.RandomFlip(), L.RandomRotation(0.1), L.RandomZoom(0.1),
                                  L.RandomTranslation(0.1, 0.1), L.RandomContrast(0.2), L.RandomBrightness(0.1),
                                  L.Rescaling(1 / 255.0), L.Conv2D(2, 3), L.GlobalAveragePooling2D(), L.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    history = model.fit(IMAGES, np.ones((3, 1), "float32"), epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    np.testing.assert_array_equal(model.predict(IMAGES, verbose=0), model.predict(IMAGES, verbose=0))
    # Two training steps draw different transforms (the program's RNG state advances).
    step = model.compiled_programs["train_step"]
    assert any(n.op_type == "GatherND" for n in step.model.graph.node)
    assert not any(n.op_type == "GatherND" for n in model.compiled_programs["infer"].model.graph.node)
    assert math.isfinite(model.evaluate(IMAGES, np.ones((3, 1), "float32"), verbose=0))


@pytest.mark.parametrize("random", [False, True])
def test_pipeline_of_preprocessing_layers_matches_keras(random):
    def make(lib):
        x = lib.Input((6, 7, 2))
        steps = [lib.layers.Rescaling(1 / 255.0), lib.layers.CenterCrop(4, 5)]
        if random:
            steps.insert(1, lib.layers.RandomFlip())
        return lib.Model(x, lib.layers.Dense(3)(lib.layers.Pipeline(steps)(x)))
    # A random step draws other flips than Keras in training: its case compares inference only.
    check_layer_parity(make, IMAGES, train=not random)
