"""ConvNeXt Tiny-XLarge against Keras 3.15: layers, weights, outputs, weight files, training, .keras files, and
Keras's LayerScale / StochasticDepth layers."""
from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from onnxforge import layers, models  # noqa: E402
from onnxforge.applications import convnext  # noqa: E402
from tests.applications.efficientnet_oracle import (assert_close, assert_same_signatures,  # noqa: E402
                                                    assert_same_structure, build_pair,
                                                    check_fit_then_keras_load,
                                                    check_outputs_and_weight_files, check_pooled_outputs,
                                                    fingerprint)

SMALL = (32, 32, 3)   # the smallest input Keras accepts

#: ``fingerprint`` of Keras 3.15's ``keras.applications.<name>(weights=None, input_shape=(32, 32, 3),
#: classes=7)``, recorded once. (Large and XLarge matched too when recorded; their 200M-350M weights take
#: seconds to initialize, so they are left out here.)
KERAS_FINGERPRINTS = {
    "ConvNeXtSmall": ("ccf99ca4cfd91411", 49460071, 261),
    "ConvNeXtBase": ("a54bb774e747368e", 87573639, 261),
}


def test_signatures_match_keras():
    assert_same_signatures(keras, convnext, [n for n in convnext.__all__ if n.startswith("ConvNeXt")])


@pytest.mark.parametrize("kwargs", [
    dict(input_shape=SMALL, classes=10),
    dict(input_shape=SMALL, include_top=False, pooling="max"),
    dict(input_shape=SMALL, include_top=False, include_preprocessing=False),
])
def test_structure_matches_keras(kwargs):
    assert_same_structure(*build_pair(keras, convnext, "ConvNeXtTiny", **kwargs))


@pytest.mark.parametrize("name", sorted(KERAS_FINGERPRINTS))
def test_larger_variants_match_keras_fingerprint(name):
    assert fingerprint(convnext, name, input_shape=SMALL, classes=7) == KERAS_FINGERPRINTS[name]


def test_outputs_and_weight_files_match_keras(tmp_path):
    # The legacy .h5 file also checks the nested stem / downsampling Sequentials, one group each.
    km, om = build_pair(keras, convnext, "ConvNeXtTiny", input_shape=SMALL, classes=10, classifier_activation=None)
    check_outputs_and_weight_files(km, om, tmp_path)


def test_pooled_features_match_keras():
    km, om = build_pair(keras, convnext, "ConvNeXtTiny", input_shape=SMALL, include_top=False, pooling="avg")
    check_pooled_outputs(km, om)


def test_fit_step_then_keras_loads_the_saved_model(tmp_path):
    model = convnext.ConvNeXtTiny(weights=None, input_shape=SMALL, classes=3)
    check_fit_then_keras_load(keras, model, tmp_path)


def test_layer_scale_and_stochastic_depth_are_keras_s_layers(tmp_path):
    from keras.src.applications import convnext as keras_convnext

    inputs = layers.Input(shape=(2, 2, 4))
    x = convnext.LayerScale(0.5, 4, name="scale")(inputs)
    outputs = convnext.StochasticDepth(0.25, name="drop")(x)
    model = models.Model(inputs, outputs)
    entries = {e["config"]["name"]: e for e in layers.serialize(model)["config"]["layers"]}
    for name, cls in (("scale", "LayerScale"), ("drop", "StochasticDepth")):
        assert (entries[name]["module"], entries[name]["class_name"]) == ("keras.src.applications.convnext", cls)
    model.save(tmp_path / "s.keras")
    loaded = keras.saving.load_model(tmp_path / "s.keras")
    assert isinstance(loaded.get_layer("scale"), keras_convnext.LayerScale)
    assert isinstance(loaded.get_layer("drop"), keras_convnext.StochasticDepth)
    x = np.random.default_rng(0).standard_normal((8, 2, 2, 4)).astype("float32")
    assert_close(model.predict(x, verbose=0), 0.5 * x)
    assert_close(loaded.predict(x, verbose=0), 0.5 * x)
    # Training drops whole samples: each row is 0 or scaled by 1 / (1 - rate).
    dropped = np.asarray(model(x, training=True))
    for row, row_in in zip(dropped, 0.5 * x):
        assert np.allclose(row, 0.0) or np.allclose(row, row_in / 0.75, rtol=1e-5)


def test_keras_saved_layer_scale_loads_here(tmp_path):
    from keras.src.applications import convnext as keras_convnext

    from onnxforge.saving import load_model

    inputs = keras.Input(shape=(2, 2, 4))
    x = keras_convnext.LayerScale(1e-6, 4, name="scale")(inputs)
    km = keras.Model(inputs, inputs + keras_convnext.StochasticDepth(0.1, name="drop")(x))
    km.set_weights([np.array([1.0, 2.0, 3.0, 4.0], "float32")])
    km.save(tmp_path / "k.keras")
    loaded = load_model(tmp_path / "k.keras")
    assert type(loaded.get_layer("scale")) is convnext.LayerScale
    assert type(loaded.get_layer("drop")) is convnext.StochasticDepth
    x = np.random.default_rng(0).standard_normal((3, 2, 2, 4)).astype("float32")
    assert_close(loaded.predict(x, verbose=0), km.predict(x, verbose=0))


def test_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="classes"):
        convnext.ConvNeXtTiny(weights="imagenet", classes=10)
    with pytest.raises(ValueError, match="at least 32x32"):
        convnext.ConvNeXtTiny(weights=None, input_shape=(16, 16, 3), include_top=False)
    with pytest.raises(ValueError, match="weights"):
        convnext.ConvNeXtTiny(weights="no_such_file.h5")
    with pytest.raises(ValueError, match="pooling"):
        convnext.ConvNeXtTiny(weights=None, input_shape=SMALL, include_top=False, pooling="sum")
    with pytest.raises(ValueError, match="name"):
        convnext.ConvNeXtTiny(weights="imagenet", name="mine")


def test_imagenet_weights_missing_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="convnext_tiny_notop.h5"):
        convnext.ConvNeXtTiny(input_shape=SMALL, include_top=False)


def test_preprocess_input_passes_through_and_decode_checks_shape():
    x = np.full((1, 2, 2, 3), 255.0, "float32")
    assert convnext.preprocess_input(x) is x
    with pytest.raises(ValueError, match="shape"):
        convnext.decode_predictions(np.zeros((1, 10)))
