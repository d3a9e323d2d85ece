"""ResNet50V2/101V2/152V2 (onnxforge.applications.resnet_v2) against Keras 3.15's."""
from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from onnxforge.applications import resnet, resnet_v2  # noqa: E402

from . import keras_app_oracle as oracle  # noqa: E402

pytestmark = pytest.mark.filterwarnings(oracle.KERAS_TORCH_ARRAY_WARNING)
VARIANTS = ["ResNet50V2", "ResNet101V2", "ResNet152V2"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_same_layers_and_weights_as_keras(variant):
    # the unnamed 1x1 shortcut pools get automatic names: equal only because both counters start afresh
    ours, theirs = getattr(resnet_v2, variant), getattr(keras.applications, variant)
    oracle.assert_same_structure(*oracle.build_pair(keras, ours, theirs, input_shape=(32, 32, 3), classes=10))


def test_resnet50v2_outputs_match_keras_top_and_pooled():
    oracle.assert_same_outputs(keras, resnet_v2.ResNet50V2, keras.applications.ResNet50V2,
                               input_shape=(32, 32, 3), classes=5, classifier_activation=None)
    model, _ = oracle.assert_same_outputs(keras, resnet_v2.ResNet50V2, keras.applications.ResNet50V2,
                                          include_top=False, pooling="avg", input_shape=(32, 32, 3))
    assert model.output_shape == (None, 2048)


def test_fit_one_step_then_keras_loads_the_saved_file(tmp_path):
    oracle.fresh_sessions(keras)
    model = resnet_v2.ResNet50V2(weights=None, input_shape=(64, 64, 3), classes=3, classifier_activation=None)
    oracle.assert_fit_and_keras_load(keras, model, tmp_path, classes=3)


def test_keras_saved_weights_load(tmp_path):
    oracle.assert_keras_weights_file_loads(keras, resnet_v2.ResNet50V2, keras.applications.ResNet50V2, tmp_path,
                                           include_top=False, input_shape=(32, 32, 3))


def test_imagenet_weights_come_from_keras_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="resnet101v2_weights_tf_dim_ordering_tf_kernels.h5.*"
                       "does not download.*keras-applications/resnet/resnet101v2_weights"):
        resnet_v2.ResNet101V2()
    oracle.fresh_sessions(keras)
    kmodel = keras.applications.ResNet50V2(weights=None, include_top=False, input_shape=(32, 32, 3))
    oracle.randomized_weights(kmodel, seed=8)
    md5 = oracle.write_legacy_h5(kmodel, tmp_path / "models" / "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5")
    monkeypatch.setitem(resnet.WEIGHTS_HASHES, "resnet50v2", ("0" * 32, md5))
    model = resnet_v2.ResNet50V2(include_top=False, input_shape=(32, 32, 3))
    x = oracle.images()
    oracle.assert_close(model.predict(x, verbose=0), kmodel.predict(x, verbose=0))


def test_argument_errors():
    with pytest.raises(ValueError, match="classes.*1000.*Received classes=3"):
        resnet_v2.ResNet50V2(classes=3)
    with pytest.raises(ValueError, match="at least 32x32.*input_shape=\\(32, 16, 3\\)"):
        resnet_v2.ResNet50V2(weights=None, include_top=False, input_shape=(32, 16, 3))
    with pytest.raises(ValueError, match="`weights` argument.*Received: weights=imagenet21k"):
        resnet_v2.ResNet152V2(weights="imagenet21k")
    with pytest.raises(ValueError, match="`pooling`.*pooling='sum'"):
        resnet_v2.ResNet101V2(weights=None, include_top=False, pooling="sum", input_shape=(32, 32, 3))


def test_preprocess_is_kerass_tf_mode():
    x = np.random.default_rng(0).uniform(0, 255, (2, 4, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(resnet_v2.preprocess_input(x.copy()),
                               keras.applications.resnet_v2.preprocess_input(x.copy()), rtol=1e-6)
    with pytest.raises(ValueError, match="\\(samples, 1000\\)"):
        resnet_v2.decode_predictions(np.zeros((1, 10)))
