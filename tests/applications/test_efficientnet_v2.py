"""EfficientNetV2 B0-B3/S/M/L against Keras 3.15: layers, weights, outputs, weight files, training, .keras files."""
from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from onnxforge.applications import efficientnet_v2  # noqa: E402
from tests.applications.efficientnet_oracle import (assert_same_signatures, assert_same_structure,  # noqa: E402
                                                    build_pair, check_fit_then_keras_load,
                                                    check_outputs_and_weight_files, check_pooled_outputs,
                                                    fingerprint)

SMALL = (32, 32, 3)   # the smallest input Keras accepts

#: ``fingerprint`` of Keras 3.15's ``keras.applications.<name>(weights=None, input_shape=(32, 32, 3),
#: classes=7)``, recorded once: building these in Keras too would cost most of this file's time budget.
#: (V2L matched too when recorded; it is left out here for its 3 s build.)
KERAS_FINGERPRINTS = {
    "EfficientNetV2B1": ("0640cf1ae9a714ea", 6940091, 337),
    "EfficientNetV2B3": ("f4025b5596547246", 12941381, 412),
    "EfficientNetV2S": ("12d4d602840de16c", 20340327, 516),
    "EfficientNetV2M": ("f4bcc9a235948181", 53159355, 743),
}


def test_signatures_match_keras():
    assert_same_signatures(keras, efficientnet_v2, [n for n in efficientnet_v2.__all__ if n.startswith("EfficientNet")])


@pytest.mark.parametrize("name, kwargs", [
    ("EfficientNetV2B0", dict(input_shape=SMALL, classes=10)),
    ("EfficientNetV2B0", dict(input_shape=SMALL, include_top=False, pooling="max", include_preprocessing=False)),
    ("EfficientNetV2B2", dict(input_shape=SMALL, include_top=False)),   # width 1.1: the channel rounding
])
def test_structure_matches_keras(name, kwargs):
    assert_same_structure(*build_pair(keras, efficientnet_v2, name, **kwargs))


@pytest.mark.parametrize("name", sorted(KERAS_FINGERPRINTS))
def test_larger_variants_match_keras_fingerprint(name):
    assert fingerprint(efficientnet_v2, name, input_shape=SMALL, classes=7) == KERAS_FINGERPRINTS[name]


def test_outputs_and_weight_files_match_keras(tmp_path):
    km, om = build_pair(keras, efficientnet_v2, "EfficientNetV2B0", input_shape=SMALL, classes=10,
                        classifier_activation=None)
    check_outputs_and_weight_files(km, om, tmp_path)


def test_pooled_features_match_keras():
    km, om = build_pair(keras, efficientnet_v2, "EfficientNetV2B0", input_shape=SMALL, include_top=False,
                        pooling="avg")
    assert om.layers[-1].name == "avg_pool"
    check_pooled_outputs(km, om)


def test_s_m_l_scale_pixels_to_minus_one_one():
    model = efficientnet_v2.EfficientNetV2S(weights=None, input_shape=SMALL, include_top=False)
    rescaling = model.layers[1]
    assert (type(rescaling).__name__, rescaling.scale, rescaling.offset) == ("Rescaling", 1.0 / 128.0, -1)


def test_fit_step_then_keras_loads_the_saved_model(tmp_path):
    model = efficientnet_v2.EfficientNetV2B0(weights=None, input_shape=SMALL, classes=3)
    check_fit_then_keras_load(keras, model, tmp_path)


def test_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="classes"):
        efficientnet_v2.EfficientNetV2B0(weights="imagenet", classes=10)
    with pytest.raises(ValueError, match="at least 32x32"):
        efficientnet_v2.EfficientNetV2B0(weights=None, input_shape=(16, 16, 3), include_top=False)
    with pytest.raises(ValueError, match="weights"):
        efficientnet_v2.EfficientNetV2B0(weights="no_such_file.h5")
    with pytest.raises(ValueError, match="pooling"):
        efficientnet_v2.EfficientNetV2B0(weights=None, input_shape=SMALL, include_top=False, pooling="sum")


def test_imagenet_weights_missing_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="efficientnetv2-b0_notop.h5"):
        efficientnet_v2.EfficientNetV2B0(input_shape=SMALL, include_top=False)


def test_preprocess_input_passes_through_and_decode_checks_shape():
    x = np.full((1, 2, 2, 3), 255.0, "float32")
    assert efficientnet_v2.preprocess_input(x) is x
    with pytest.raises(ValueError, match="shape"):
        efficientnet_v2.decode_predictions(np.zeros((1, 10)))
