"""InceptionResNetV2 (onnxforge.applications.inception_resnet_v2) against Keras 3.15's, at 75x75 (the
smallest input Keras accepts): the whole network is 55M parameters, so each model is built once."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from onnxforge import layers as of_layers  # noqa: E402
from onnxforge import losses  # noqa: E402
from onnxforge.applications import inception_resnet_v2  # noqa: E402
from onnxforge.models import Model  # noqa: E402

from . import keras_app_oracle as oracle  # noqa: E402

pytestmark = pytest.mark.filterwarnings(oracle.KERAS_TORCH_ARRAY_WARNING)
SHAPE = (75, 75, 3)


def test_same_layers_weights_and_outputs_as_keras_then_keras_loads_and_fit(tmp_path):
    # the unnamed convs, BatchNorms, ReLUs and CustomScaleLayers get automatic names: equal only in
    # Keras's creation order
    ours, theirs = inception_resnet_v2.InceptionResNetV2, keras.applications.InceptionResNetV2
    model, _ = oracle.assert_same_outputs(keras, ours, theirs, include_top=False, pooling="avg", input_shape=SHAPE)
    assert model.output_shape == (None, 1536)
    model, _ = oracle.assert_same_outputs(keras, ours, theirs, input_shape=SHAPE, classes=4,
                                          classifier_activation=None)
    # the .keras file loads in Keras, which finds its own CustomScaleLayer; the structure is the same, so equal
    # weights mean equal outputs (a second Keras predict would cost seconds)
    model.save(tmp_path / "x.keras")
    kmodel = keras.saving.load_model(tmp_path / "x.keras")
    assert [layer.name for layer in kmodel.layers] == [layer.name for layer in model.layers]
    from keras.src.applications.inception_resnet_v2 import CustomScaleLayer as KerasCustomScaleLayer

    scales = [layer for layer in kmodel.layers if isinstance(layer, KerasCustomScaleLayer)]
    assert [layer.scale for layer in scales] == [0.17] * 10 + [0.1] * 20 + [0.2] * 9 + [1.0]
    for mine, theirs_w in zip(model.get_weights(), kmodel.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs_w)
    with zipfile.ZipFile(tmp_path / "x.keras") as z:
        saved = json.loads(z.read("config.json"))["config"]["layers"]
    scale = next(entry for entry in saved if entry["class_name"] == "CustomScaleLayer")
    assert scale["module"] == "keras.src.applications.inception_resnet_v2"
    assert scale["registered_name"] == "CustomScaleLayer"
    assert scale["config"]["name"] == "custom_scale_layer" and scale["config"]["scale"] == 0.17
    # one training step: finite loss. Only that: at 75x75 the last feature map is 1x1, and a BatchNorm over
    # two values per channel in training blows the weights up (in Keras too), so no prediction after it.
    x = oracle.images(seed=5, shape=(2,) + SHAPE)
    model.compile(optimizer="sgd", loss=losses.CategoricalCrossentropy(from_logits=True))
    history = model.fit(x, np.eye(4, dtype=np.float32)[[0, 1]], batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_custom_scale_layer_matches_kerass():
    from keras.src.applications.inception_resnet_v2 import CustomScaleLayer as KerasCustomScaleLayer

    layer = inception_resnet_v2.CustomScaleLayer(0.2, name="s")
    rebuilt = KerasCustomScaleLayer.from_config(layer.get_config())
    assert rebuilt.name == "s" and rebuilt.scale == 0.2
    a, b = np.ones((1, 2, 2, 3), np.float32), np.full((1, 2, 2, 3), 2.0, np.float32)
    inputs = [of_layers.Input((2, 2, 3)), of_layers.Input((2, 2, 3))]
    model = Model(inputs, layer(inputs))
    np.testing.assert_allclose(model.predict([a, b], verbose=0), a + 0.2 * b, rtol=1e-6)
    np.testing.assert_allclose(model.predict([a, b], verbose=0), rebuilt([a, b]).detach().numpy(), rtol=1e-6)


def test_argument_errors():
    irv2 = inception_resnet_v2.InceptionResNetV2
    with pytest.raises(ValueError, match="classes.*1000.*Received classes=10"):
        irv2(classes=10)
    with pytest.raises(ValueError, match="at least 75x75.*input_shape=\\(74, 80, 3\\)"):
        irv2(weights=None, include_top=False, input_shape=(74, 80, 3))
    with pytest.raises(ValueError, match="should be \\(299, 299, 3\\)"):
        irv2(input_shape=(224, 224, 3))
    with pytest.raises(ValueError, match="`weights` argument.*Received: weights=noisy-student"):
        irv2(weights="noisy-student")
    with pytest.raises(ValueError, match="`pooling`.*pooling='min'"):
        irv2(weights=None, include_top=False, pooling="min", input_shape=SHAPE)
    with pytest.raises(ValueError, match="Only `None` and `softmax`"):
        irv2(classifier_activation="relu")
    with pytest.raises(ValueError, match="Unknown Inception-ResNet block type.*block99"):
        inception_resnet_v2.inception_resnet_block(None, 0.1, "block99", 1)


def test_imagenet_weights_come_from_keras_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    file_name = "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5"
    with pytest.raises(FileNotFoundError, match=f"{file_name}.*does not download.*keras-applications/"):
        inception_resnet_v2.InceptionResNetV2(include_top=False)
    assert inception_resnet_v2.WEIGHTS[0] == ("inception_resnet_v2_weights_tf_dim_ordering_tf_kernels.h5",
                                              "e693bd0210a403b3192acc6073ad2e96")


def test_preprocess_is_kerass_tf_mode():
    x = np.random.default_rng(0).uniform(0, 255, (2, 4, 4, 3)).astype(np.float32)
    theirs = keras.applications.inception_resnet_v2
    np.testing.assert_allclose(inception_resnet_v2.preprocess_input(x.copy()), theirs.preprocess_input(x.copy()),
                               rtol=1e-6)
    with pytest.raises(ValueError, match="\\(samples, 1000\\)"):
        inception_resnet_v2.decode_predictions(np.zeros((1, 10)))
