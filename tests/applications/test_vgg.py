"""VGG16 and VGG19 (onnxforge.applications.vgg16, .vgg19) against Keras 3.15's."""
from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from onnxforge.applications import vgg16, vgg19  # noqa: E402

from . import keras_app_oracle as oracle  # noqa: E402

pytestmark = pytest.mark.filterwarnings(oracle.KERAS_TORCH_ARRAY_WARNING)
VARIANTS = [(vgg16, "VGG16"), (vgg19, "VGG19")]


@pytest.mark.parametrize("module, variant", VARIANTS)
def test_same_layers_and_weights_as_keras(module, variant):
    ours, theirs = getattr(module, variant), getattr(keras.applications, variant)
    oracle.assert_same_structure(*oracle.build_pair(keras, ours, theirs, input_shape=(32, 32, 3), classes=10))


@pytest.mark.parametrize("module, variant", VARIANTS)
def test_outputs_match_keras_top_and_pooled(module, variant):
    ours, theirs = getattr(module, variant), getattr(keras.applications, variant)
    oracle.assert_same_outputs(keras, ours, theirs, input_shape=(32, 32, 3), classes=6, classifier_activation=None)
    model, _ = oracle.assert_same_outputs(keras, ours, theirs, include_top=False, pooling="avg",
                                          input_shape=(32, 32, 3))
    assert model.output_shape == (None, 512)


def test_fit_one_step_then_keras_loads_the_saved_file(tmp_path):
    oracle.fresh_sessions(keras)
    model = vgg16.VGG16(weights=None, input_shape=(32, 32, 3), classes=3, classifier_activation=None)
    oracle.assert_fit_and_keras_load(keras, model, tmp_path, classes=3)


def test_keras_saved_weights_load(tmp_path):
    oracle.assert_keras_weights_file_loads(keras, vgg19.VGG19, keras.applications.VGG19, tmp_path,
                                           include_top=False, input_shape=(32, 32, 3))


def test_imagenet_weights_come_from_keras_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5.*"
                       "does not download.*keras-applications/vgg19/vgg19_weights"):
        vgg19.VGG19(include_top=False)
    oracle.fresh_sessions(keras)
    kmodel = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    name = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    md5 = oracle.write_legacy_h5(kmodel, tmp_path / "models" / name)
    monkeypatch.setitem(vgg16.WEIGHTS, "vgg16", (vgg16.WEIGHTS["vgg16"][0], (name, md5)))
    model = vgg16.VGG16(include_top=False, input_shape=(32, 32, 3))
    x = oracle.images()
    oracle.assert_close(model.predict(x, verbose=0), kmodel.predict(x, verbose=0))


def test_argument_errors():
    with pytest.raises(ValueError, match="classes.*1000.*Received classes=2"):
        vgg16.VGG16(classes=2)
    with pytest.raises(ValueError, match="at least 32x32.*input_shape=\\(8, 8, 3\\)"):
        vgg19.VGG19(weights=None, include_top=False, input_shape=(8, 8, 3))
    with pytest.raises(ValueError, match="`weights` argument.*Received: weights=None.h5"):
        vgg16.VGG16(weights="None.h5")
    with pytest.raises(ValueError, match="`pooling`.*pooling='flatten'"):
        vgg19.VGG19(weights=None, include_top=False, pooling="flatten", input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="static `input_shape`.*\\(None, None, 3\\)"):
        vgg16.VGG16(weights=None, input_shape=(None, None, 3))


def test_preprocess_is_kerass_caffe_mode():
    x = np.random.default_rng(0).uniform(0, 255, (2, 4, 4, 3)).astype(np.float32)
    for ours, theirs in ((vgg16, keras.applications.vgg16), (vgg19, keras.applications.vgg19)):
        np.testing.assert_allclose(ours.preprocess_input(x.copy()), theirs.preprocess_input(x.copy()), rtol=1e-6)
        with pytest.raises(ValueError, match="\\(samples, 1000\\)"):
            ours.decode_predictions(np.zeros((1, 10)))
