"""DenseNet121/169/201 (onnxforge.applications.densenet) against Keras 3.15's."""
from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from onnxforge import backend_config  # noqa: E402
from onnxforge.applications import densenet  # noqa: E402

from . import keras_app_oracle as oracle  # noqa: E402

pytestmark = pytest.mark.filterwarnings(oracle.KERAS_TORCH_ARRAY_WARNING)
VARIANTS = ["DenseNet121", "DenseNet169", "DenseNet201"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_same_layers_and_weights_as_keras(variant):
    ours, theirs = getattr(densenet, variant), getattr(keras.applications, variant)
    oracle.assert_same_structure(*oracle.build_pair(keras, ours, theirs, input_shape=(32, 32, 3), classes=10))


def test_densenet121_outputs_match_keras_top_and_pooled():
    oracle.assert_same_outputs(keras, densenet.DenseNet121, keras.applications.DenseNet121,
                               input_shape=(32, 32, 3), classes=4, classifier_activation=None)
    model, _ = oracle.assert_same_outputs(keras, densenet.DenseNet121, keras.applications.DenseNet121,
                                          include_top=False, pooling="avg", input_shape=(32, 32, 3))
    assert model.output_shape == (None, 1024) and model.layers[-1].name == "avg_pool"


def test_fit_one_step_then_keras_loads_the_saved_file(tmp_path):
    oracle.fresh_sessions(keras)
    model = densenet.DenseNet121(weights=None, input_shape=(64, 64, 3), classes=3, classifier_activation=None)
    oracle.assert_fit_and_keras_load(keras, model, tmp_path, classes=3)


def test_keras_saved_weights_load(tmp_path):
    oracle.assert_keras_weights_file_loads(keras, densenet.DenseNet121, keras.applications.DenseNet121, tmp_path,
                                           input_shape=(32, 32, 3), classes=3)


def test_imagenet_weights_come_from_keras_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="densenet169_weights_tf_dim_ordering_tf_kernels.h5.*"
                       "does not download.*keras-applications/densenet/densenet169_weights"):
        densenet.DenseNet169()
    oracle.fresh_sessions(keras)
    kmodel = keras.applications.DenseNet121(weights=None, include_top=False, input_shape=(32, 32, 3))
    oracle.randomized_weights(kmodel, seed=9)
    file_name = "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5"
    md5 = oracle.write_legacy_h5(kmodel, tmp_path / "models" / file_name)
    blocks = (6, 12, 24, 16)
    monkeypatch.setitem(densenet.WEIGHTS_HASHES, blocks, (densenet.WEIGHTS_HASHES[blocks][0], "0" * 32, md5))
    model = densenet.DenseNet121(include_top=False, input_shape=(32, 32, 3))
    x = oracle.images()
    oracle.assert_close(model.predict(x, verbose=0), kmodel.predict(x, verbose=0))


def test_argument_errors(monkeypatch):
    with pytest.raises(ValueError, match="classes.*1000.*Received classes=10"):
        densenet.DenseNet121(classes=10)
    with pytest.raises(ValueError, match="at least 32x32.*input_shape=\\(30, 30, 3\\)"):
        densenet.DenseNet169(weights=None, include_top=False, input_shape=(30, 30, 3))
    with pytest.raises(ValueError, match="`weights` argument.*Received: weights=imagenet1k"):
        densenet.DenseNet201(weights="imagenet1k")
    with pytest.raises(ValueError, match="`pooling`.*pooling='AVG'"):
        densenet.DenseNet121(weights=None, include_top=False, pooling="AVG", input_shape=(32, 32, 3))
    monkeypatch.setattr(backend_config, "image_data_format", lambda: "channels_first")
    with pytest.raises(ValueError, match="channels_first"):
        densenet.DenseNet121(weights=None)


def test_preprocess_is_kerass_torch_mode():
    x = np.random.default_rng(0).uniform(0, 255, (2, 4, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(densenet.preprocess_input(x.copy()),
                               keras.applications.densenet.preprocess_input(x.copy()), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="\\(samples, 1000\\)"):
        densenet.decode_predictions(np.zeros((1, 10)))
