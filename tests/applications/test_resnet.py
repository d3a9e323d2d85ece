"""ResNet50/101/152 (onnxforge.applications.resnet, .resnet50) against Keras 3.15's."""
from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from onnxforge.applications import resnet, resnet50  # noqa: E402

from . import keras_app_oracle as oracle  # noqa: E402

pytestmark = pytest.mark.filterwarnings(oracle.KERAS_TORCH_ARRAY_WARNING)
VARIANTS = ["ResNet50", "ResNet101", "ResNet152"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_same_layers_and_weights_as_keras(variant):
    ours, theirs = getattr(resnet, variant), getattr(keras.applications, variant)
    oracle.assert_same_structure(*oracle.build_pair(keras, ours, theirs, input_shape=(32, 32, 3), classes=10))


def test_resnet50_outputs_match_keras_top_and_pooled():
    oracle.assert_same_outputs(keras, resnet.ResNet50, keras.applications.ResNet50, input_shape=(32, 32, 3),
                               classes=7, classifier_activation=None)
    model, _ = oracle.assert_same_outputs(keras, resnet.ResNet50, keras.applications.ResNet50, include_top=False,
                                          pooling="avg", input_shape=(32, 32, 3))
    assert model.output_shape == (None, 2048) and model.layers[-1].name == "avg_pool"
    maxed = resnet.ResNet50(weights=None, include_top=False, pooling="max", input_shape=(32, 32, 3))
    assert maxed.layers[-1].name == "max_pool"   # Keras names both poolings of ResNet and DenseNet


def test_fit_one_step_then_keras_loads_the_saved_file(tmp_path):
    oracle.fresh_sessions(keras)
    model = resnet.ResNet50(weights=None, input_shape=(64, 64, 3), classes=3, classifier_activation=None)
    oracle.assert_fit_and_keras_load(keras, model, tmp_path, classes=3)


def test_keras_saved_weights_load(tmp_path):
    oracle.assert_keras_weights_file_loads(keras, resnet.ResNet50, keras.applications.ResNet50, tmp_path,
                                           include_top=False, input_shape=(32, 32, 3))


def test_imagenet_weights_come_from_keras_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5.*"
                       "does not download.*storage.googleapis.com/tensorflow/keras-applications/resnet/"):
        resnet.ResNet50(include_top=False, input_shape=(32, 32, 3))
    # A legacy .h5 (the ImageNet files' format) under Keras's file name loads through the same path
    oracle.fresh_sessions(keras)
    kmodel = keras.applications.ResNet50(weights=None, include_top=False, input_shape=(32, 32, 3))
    oracle.randomized_weights(kmodel, seed=7)
    md5 = oracle.write_legacy_h5(kmodel, tmp_path / "models" / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5")
    monkeypatch.setitem(resnet.WEIGHTS_HASHES, "resnet50", ("0" * 32, md5))
    model = resnet50.ResNet50(include_top=False, input_shape=(32, 32, 3))
    x = oracle.images()
    oracle.assert_close(model.predict(x, verbose=0), kmodel.predict(x, verbose=0))


def test_argument_errors():
    with pytest.raises(ValueError, match="classes.*1000.*Received classes=10"):
        resnet.ResNet50(classes=10)
    with pytest.raises(ValueError, match="at least 32x32.*input_shape=\\(31, 40, 3\\)"):
        resnet.ResNet50(weights=None, include_top=False, input_shape=(31, 40, 3))
    with pytest.raises(ValueError, match="`weights` argument.*Received: weights=nowhere.h5"):
        resnet.ResNet101(weights="nowhere.h5")
    with pytest.raises(ValueError, match="`pooling`.*'avg' or 'max'.*pooling='mean'"):
        resnet.ResNet152(weights=None, include_top=False, pooling="mean", input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="classifier_activation.*Received: classifier_activation=relu"):
        resnet.ResNet50(classifier_activation="relu")
    with pytest.raises(ValueError, match="should be \\(224, 224, 3\\).*input_shape=\\(32, 32, 3\\)"):
        resnet.ResNet50(input_shape=(32, 32, 3))


def test_preprocess_and_decode_are_kerass():
    x = np.random.default_rng(0).uniform(0, 255, (2, 4, 4, 3)).astype(np.float32)
    for ours, theirs in ((resnet, keras.applications.resnet), (resnet50, keras.applications.resnet50)):
        np.testing.assert_allclose(ours.preprocess_input(x.copy()), theirs.preprocess_input(x.copy()), rtol=1e-6)
        with pytest.raises(ValueError, match="\\(samples, 1000\\)"):
            ours.decode_predictions(np.zeros((1, 10)))
