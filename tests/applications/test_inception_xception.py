"""InceptionV3 and Xception (onnxforge.applications.inception_v3, .xception) against Keras 3.15's."""
from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from onnxforge.applications import inception_v3, xception  # noqa: E402

from . import keras_app_oracle as oracle  # noqa: E402

pytestmark = pytest.mark.filterwarnings(oracle.KERAS_TORCH_ARRAY_WARNING)
# module, builder, the smallest input Keras accepts, the ImageNet notop file
VARIANTS = [(inception_v3, "InceptionV3", 75, "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"),
            (xception, "Xception", 71, "xception_weights_tf_dim_ordering_tf_kernels_notop.h5")]


@pytest.mark.parametrize("module, variant, size, _", VARIANTS)
def test_same_layers_weights_and_outputs_as_keras(module, variant, size, _):
    # their unnamed convs and BatchNorms get automatic names: equal only in Keras's creation order
    ours, theirs = getattr(module, variant), getattr(keras.applications, variant)
    oracle.assert_same_outputs(keras, ours, theirs, input_shape=(size, size, 3), classes=4,
                               classifier_activation=None)
    model, _ = oracle.assert_same_outputs(keras, ours, theirs, include_top=False, pooling="avg",
                                          input_shape=(size, size, 3))
    assert model.output_shape == (None, 2048)


def test_fit_one_step_then_keras_loads_the_saved_file(tmp_path):
    oracle.fresh_sessions(keras)
    model = xception.Xception(weights=None, input_shape=(71, 71, 3), classes=3, classifier_activation=None)
    oracle.assert_fit_and_keras_load(keras, model, tmp_path, classes=3)


def test_keras_saved_weights_load(tmp_path):
    oracle.assert_keras_weights_file_loads(keras, inception_v3.InceptionV3, keras.applications.InceptionV3,
                                           tmp_path, include_top=False, input_shape=(75, 75, 3))


@pytest.mark.parametrize("module, variant, size, file_name", VARIANTS)
def test_imagenet_weights_come_from_keras_cache(tmp_path, monkeypatch, module, variant, size, file_name):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=f"{file_name}.*does not download.*keras-applications/"):
        getattr(module, variant)(include_top=False)
    oracle.fresh_sessions(keras)
    kmodel = getattr(keras.applications, variant)(weights=None, include_top=False, input_shape=(size, size, 3))
    oracle.randomized_weights(kmodel, seed=11)
    md5 = oracle.write_legacy_h5(kmodel, tmp_path / "models" / file_name)
    monkeypatch.setattr(module, "WEIGHTS", (module.WEIGHTS[0], (file_name, md5)))
    model = getattr(module, variant)(include_top=False, input_shape=(size, size, 3))
    x = oracle.images(shape=(2, size, size, 3))
    oracle.assert_close(model.predict(x, verbose=0), kmodel.predict(x, verbose=0))


def test_argument_errors():
    with pytest.raises(ValueError, match="classes.*1000.*Received classes=10"):
        inception_v3.InceptionV3(classes=10)
    with pytest.raises(ValueError, match="at least 75x75.*input_shape=\\(74, 80, 3\\)"):
        inception_v3.InceptionV3(weights=None, include_top=False, input_shape=(74, 80, 3))
    with pytest.raises(ValueError, match="at least 71x71.*input_shape=\\(70, 71, 3\\)"):
        xception.Xception(weights=None, include_top=False, input_shape=(70, 71, 3))
    with pytest.raises(ValueError, match="should be \\(299, 299, 3\\)"):
        xception.Xception(input_shape=(224, 224, 3))
    with pytest.raises(ValueError, match="`weights` argument.*Received: weights=noisy-student"):
        xception.Xception(weights="noisy-student")
    with pytest.raises(ValueError, match="`pooling`.*pooling='min'"):
        inception_v3.InceptionV3(weights=None, include_top=False, pooling="min", input_shape=(75, 75, 3))


def test_preprocess_is_kerass_tf_mode():
    x = np.random.default_rng(0).uniform(0, 255, (2, 4, 4, 3)).astype(np.float32)
    for ours, theirs in ((inception_v3, keras.applications.inception_v3), (xception, keras.applications.xception)):
        np.testing.assert_allclose(ours.preprocess_input(x.copy()), theirs.preprocess_input(x.copy()), rtol=1e-6)
        with pytest.raises(ValueError, match="\\(samples, 1000\\)"):
            ours.decode_predictions(np.zeros((1, 10)))
