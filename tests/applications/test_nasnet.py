"""NASNetMobile against Keras 3.15 at 32x32. Keras refuses ``NASNetMobile`` on its torch backend (a torch-side
bug), so the oracle is Keras's own builder under it, ``keras.src.applications.nasnet.NASNet``, with the Mobile
arguments; it builds and runs there. Built once per module: Keras takes seconds for NASNet's 771 layers.
(NASNetLarge was checked the same way by hand, names and weights only: Keras needs 13 s to build it. Training
is checked on MobileNet in test_mobilenet.py and on NASNet's one unusual gradient, its factorized reduction,
in tests/autodiff/test_slice_grad_transposed.py: NASNet's whole train step takes 17 s to build.)"""
from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from onnxforge import applications  # noqa: E402
from onnxforge.applications import nasnet  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
SHAPE = (32, 32, 3)
MOBILE = dict(penultimate_filters=1056, num_blocks=4, stem_block_filters=32, skip_reduction=False,
              filter_multiplier=2, default_size=224, name="nasnet_mobile")


@pytest.fixture(scope="module")
def theirs():
    """Keras's NASNet-A Mobile (5 classes, logits) with its weights moved off their initial values."""
    from keras.src.applications.nasnet import NASNet

    keras.backend.clear_session()   # fresh name counters: automatically named layers compare alike
    model = NASNet(SHAPE, weights=None, classes=5, classifier_activation=None, **MOBILE)
    rng = np.random.default_rng(0)
    model.set_weights([np.abs(w) + rng.random(w.shape).astype(np.float32) if "moving_variance" in v.path
                       else w + np.float32(0.1) * rng.standard_normal(w.shape).astype(np.float32)
                       for v, w in zip(model.weights, model.get_weights())])
    return model


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(1).uniform(-1, 1, (2,) + SHAPE).astype(np.float32)


@pytest.fixture(scope="module")
def expected(theirs, images):
    return theirs.predict(images, verbose=0)


def _close(a, b, rtol=1e-4):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and np.abs(a - b).max() <= rtol * max(np.abs(b).max(), 1e-6)


def test_same_layers_weights_and_predictions_as_keras(theirs, images, expected):
    from onnxforge import layers as of_layers

    of_layers.clear_session()
    ours = applications.NASNetMobile(input_shape=SHAPE, weights=None, classes=5, classifier_activation=None)
    assert [layer.name for layer in ours.layers] == [layer.name for layer in theirs.layers]
    # Weight paths differ only by Keras's name scopes (onnxforge has none); names and shapes are Keras's.
    assert [w.path.rsplit("/", 2)[-2:] for w in ours.weights] == [w.path.rsplit("/", 2)[-2:] for w in theirs.weights]
    assert [tuple(w.shape) for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]
    assert ours.count_params() == theirs.count_params() and ours.name == theirs.name
    ours.set_weights(theirs.get_weights())
    _close(ours.predict(images, verbose=0), expected)


def test_pooled_features_match_keras(theirs, images):
    ours = applications.NASNetMobile(input_shape=SHAPE, weights=None, include_top=False, pooling="avg")
    assert ours.output.shape == (None, 1056)
    ours.set_weights(theirs.get_weights()[:-2])   # all but the classifier's kernel and bias
    features = keras.Model(theirs.inputs, theirs.get_layer("predictions").input)
    _close(ours.predict(images, verbose=0), features.predict(images, verbose=0))


def test_load_weights_saved_by_keras(theirs, images, expected, tmp_path):
    theirs.save_weights(tmp_path / "w.weights.h5")
    ours = applications.NASNetMobile(input_shape=SHAPE, weights=str(tmp_path / "w.weights.h5"), classes=5,
                                     classifier_activation=None)
    _close(ours.predict(images, verbose=0), expected)
    # ... and Keras reads it back from onnxforge's .keras file (Cropping2D, SeparableConv2D, concatenate...).
    ours.save(tmp_path / "x.keras")
    _close(keras.saving.load_model(tmp_path / "x.keras").predict(images, verbose=0), expected)


def test_argument_errors_and_offline_imagenet(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="classes.*10"):
        nasnet.NASNetMobile(classes=10)
    with pytest.raises(ValueError, match="at least 32x32.*16"):
        nasnet.NASNetMobile(input_shape=(16, 16, 3), weights=None, include_top=False)
    with pytest.raises(ValueError, match="pooling.*'sum'"):
        nasnet.NASNetMobile(input_shape=SHAPE, weights=None, include_top=False, pooling="sum")
    with pytest.raises(ValueError, match="weights.*nowhere"):
        nasnet.NASNetMobile(weights=str(tmp_path / "nowhere.h5"))
    with pytest.raises(ValueError, match="static.*None"):
        nasnet.NASNetMobile(input_shape=(None, None, 3), include_top=False)
    with pytest.raises(ValueError, match="classifier_activation.*relu"):
        nasnet.NASNetMobile(classifier_activation="relu")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="nasnet_mobile_no_top.h5"):
        nasnet.NASNetMobile(input_shape=SHAPE, include_top=False)


def test_family_functions():
    x = np.array([[0.0, 127.5, 255.0]], np.float32)
    np.testing.assert_allclose(nasnet.preprocess_input(x.copy()), [[-1.0, 0.0, 1.0]])
    with pytest.raises(ValueError, match="1000"):
        nasnet.decode_predictions(np.zeros((1, 10)))
