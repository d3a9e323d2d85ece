"""MobileNet, MobileNetV2, MobileNetV3Small/Large against Keras 3.15: layer names and order, weight shapes,
parameter counts, predictions on Keras's weights, training, .keras files real Keras loads, Keras-saved weights,
ImageNet files from Keras's cache, and argument errors. All at 32x32 (the smallest size Keras accepts)."""
from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import onnxforge as of  # noqa: E402
from onnxforge import applications  # noqa: E402
from onnxforge.applications import mobilenet, mobilenet_v2, mobilenet_v3  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore:`input_shape` is undefined:UserWarning")]
SHAPE = (32, 32, 3)
VARIANTS = [
    ("MobileNet", dict(alpha=0.25)), ("MobileNet", dict(alpha=0.5, depth_multiplier=2, include_top=False)),
    ("MobileNetV2", dict(alpha=0.35)), ("MobileNetV2", dict(alpha=1.3, include_top=False, pooling="max")),
    ("MobileNetV3Small", dict()), ("MobileNetV3Small", dict(alpha=0.75, minimalistic=True)),
    ("MobileNetV3Large", dict(alpha=0.75, include_preprocessing=False)),
    ("MobileNetV3Large", dict(minimalistic=True, include_top=False, pooling="avg")),
]


def _pair(fn, **kw):
    """Both models from fresh name counters, so automatically named layers are named alike whatever ran before."""
    from onnxforge import layers as of_layers

    kw = dict(input_shape=SHAPE, weights=None, **kw)
    keras.backend.clear_session()
    of_layers.clear_session()
    return getattr(applications, fn)(**kw), getattr(keras.applications, fn)(**kw)


def _randomized(kmodel, seed=0):
    """Keras's weights moved off their initial values (moving variances kept positive), so that batch
    normalization and every bias take part in the comparison."""
    rng = np.random.default_rng(seed)
    weights = []
    for var, w in zip(kmodel.weights, kmodel.get_weights()):
        noise = rng.standard_normal(w.shape).astype(np.float32)
        weights.append(np.abs(w) + rng.random(w.shape).astype(np.float32) if "moving_variance" in var.path
                       else w + np.float32(0.1) * noise)
    kmodel.set_weights(weights)
    return kmodel


def _images(n=2, seed=1):
    return (np.random.default_rng(seed).random((n,) + SHAPE) * 255).astype(np.float32)


def _close(a, b, rtol=1e-4):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    assert np.abs(a - b).max() <= rtol * max(np.abs(b).max(), 1e-6)


@pytest.mark.parametrize("fn,kw", VARIANTS, ids=[f"{f}-{i}" for i, (f, _) in enumerate(VARIANTS)])
def test_same_layers_and_weights_as_keras(fn, kw):
    ours, theirs = _pair(fn, **kw)
    assert [layer.name for layer in ours.layers] == [layer.name for layer in theirs.layers]
    assert [w.path for w in ours.weights] == [w.path for w in theirs.weights]
    assert [tuple(w.shape) for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]
    assert ours.count_params() == theirs.count_params()
    assert ours.name == theirs.name and ours.output.shape == tuple(theirs.output.shape)


@pytest.mark.parametrize("fn,kw", [
    ("MobileNet", dict(alpha=0.25, classifier_activation=None)),
    ("MobileNet", dict(alpha=0.25, include_top=False, pooling="avg")),
    ("MobileNetV2", dict(alpha=0.35, classes=7, classifier_activation=None)),
    ("MobileNetV3Small", dict(classifier_activation=None)),
    ("MobileNetV3Small", dict(classes=5, classifier_activation="softmax")),
    ("MobileNetV3Large", dict(minimalistic=True, include_top=False, pooling="avg")),
])
def test_predictions_match_keras(fn, kw):
    ours, theirs = _pair(fn, **kw)
    ours.set_weights(_randomized(theirs).get_weights())
    x = _images()
    _close(ours.predict(x, verbose=0), theirs.predict(x, verbose=0))


def test_hard_swish_and_rescaling_match_keras():
    """MobileNetV3's pieces alone, over the range where hard-swish / hard-sigmoid bend (-3..3)."""
    x = np.linspace(-5, 5, 2 * 4 * 4 * 3, dtype=np.float32).reshape(2, 4, 4, 3)
    ours = of.layers.Activation("hard_swish")(x)
    _close(np.asarray(ours), keras.ops.convert_to_numpy(keras.layers.Activation("hard_swish")(x)), 1e-6)
    inp = of.layers.Input((4, 4, 3))
    sig = of.models.Model(inp, mobilenet_v3._hard_sigmoid(inp))
    _close(sig.predict(x, verbose=0), keras.ops.convert_to_numpy(keras.activations.hard_sigmoid(x)), 1e-6)
    rescale = of.layers.Rescaling(scale=1.0 / 127.5, offset=-1.0)
    _close(np.asarray(rescale(x * 50)), keras.ops.convert_to_numpy(
        keras.layers.Rescaling(scale=1.0 / 127.5, offset=-1.0)(x * 50)), 1e-6)


@pytest.mark.parametrize("fn,kw", [("MobileNet", dict(alpha=0.25)), ("MobileNetV3Small", dict(minimalistic=False))])
def test_fit_then_keras_loads_the_keras_file(fn, kw, tmp_path):
    model = getattr(applications, fn)(input_shape=SHAPE, weights=None, classes=3, **kw)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    history = model.fit(_images(4), np.array([0, 1, 2, 1]), batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    model.save(tmp_path / "x.keras")
    loaded = keras.saving.load_model(tmp_path / "x.keras")
    x = _images(seed=3)
    _close(loaded.predict(x, verbose=0), model.predict(x, verbose=0), 1e-5)


def test_mobilenet_v3_keras_file_loads_in_keras(tmp_path):
    """MobileNetV3's squeeze-excite applies ops on tensors (``relu6(x + 3) * (1 / 6)``): Keras op nodes."""
    ours, theirs = _pair("MobileNetV3Small", minimalistic=False, classes=4)
    ours.set_weights(_randomized(theirs).get_weights())
    ours.save(tmp_path / "v3.keras")
    loaded = keras.saving.load_model(tmp_path / "v3.keras")
    x = _images()
    _close(loaded.predict(x, verbose=0), theirs.predict(x, verbose=0))


@pytest.mark.parametrize("fn,kw", [("MobileNetV2", dict(alpha=0.35, classes=3)),
                                   ("MobileNetV3Large", dict(alpha=0.75, classes=3))])
def test_load_weights_saved_by_keras(fn, kw, tmp_path):
    ours, theirs = _pair(fn, **kw)
    _randomized(theirs).save_weights(tmp_path / "w.weights.h5")
    ours.load_weights(tmp_path / "w.weights.h5")
    x = _images()
    _close(ours.predict(x, verbose=0), theirs.predict(x, verbose=0))
    again = getattr(applications, fn)(input_shape=SHAPE, weights=str(tmp_path / "w.weights.h5"), **kw)
    _close(again.predict(x, verbose=0), theirs.predict(x, verbose=0))


def test_imagenet_weights_come_from_keras_cache(tmp_path, monkeypatch):
    """weights="imagenet" reads Keras's file name from $KERAS_HOME/models (a legacy .h5, like Keras's own)."""
    h5py = pytest.importorskip("h5py")
    from keras.src.legacy.saving import legacy_h5_format

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="mobilenet_2_5_224_tf_no_top.h5"):
        with pytest.warns(UserWarning, match="224"):
            applications.MobileNet(input_shape=SHAPE, alpha=0.25, include_top=False)
    for fn, file_name in [("MobileNetV2", "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5"),
                          ("MobileNetV3Small", "weights_mobilenet_v3_small_224_1.0_float.h5")]:
        with pytest.raises(FileNotFoundError, match=file_name):
            getattr(applications, fn)()
    theirs = _randomized(keras.applications.MobileNet(input_shape=SHAPE, alpha=0.25, include_top=False,
                                                      weights=None))
    (tmp_path / "models").mkdir(exist_ok=True)
    with h5py.File(tmp_path / "models" / "mobilenet_2_5_224_tf_no_top.h5", "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, theirs)
    with pytest.warns(UserWarning, match="224"):
        ours = applications.MobileNet(input_shape=SHAPE, alpha=0.25, include_top=False)
    assert ours.name == "mobilenet_0.25_224"   # Keras names it after the weights' size
    x = _images()
    _close(ours.predict(x, verbose=0), theirs.predict(x, verbose=0))


@pytest.mark.parametrize("fn", ["MobileNet", "MobileNetV2", "MobileNetV3Small", "MobileNetV3Large"])
def test_argument_errors(fn, tmp_path):
    build = getattr(applications, fn)
    with pytest.raises(ValueError, match="classes.*10"):
        build(weights="imagenet", include_top=True, classes=10)
    with pytest.raises(ValueError, match="at least 32x32.*16"):
        build(input_shape=(16, 16, 3), weights=None, include_top=False)
    with pytest.raises(ValueError, match="pooling.*'sum'"):
        build(input_shape=SHAPE, weights=None, include_top=False, pooling="sum")
    with pytest.raises(ValueError, match="weights.*nowhere"):
        build(weights=str(tmp_path / "nowhere.h5"))
    with pytest.raises(ValueError, match="alpha.*0.3"):
        build(weights="imagenet", alpha=0.3, include_top=False, input_shape=SHAPE)
    with pytest.raises(ValueError, match="classifier_activation.*relu"):
        build(weights="imagenet", classifier_activation="relu")


@pytest.mark.parametrize("fn", ["MobileNetV2", "MobileNetV3Small"])
def test_input_tensor(fn):
    """A model on an existing tensor takes the inputs that tensor comes from; a contradicting shape is refused."""
    source = of.layers.Input((32, 32, 3))
    image = of.layers.Rescaling(1.0)(source)
    model = getattr(applications, fn)(input_tensor=image, weights=None, include_top=False, pooling="avg")
    assert model.inputs == [source]
    with pytest.raises(ValueError, match="input_shape.*40"):
        getattr(applications, fn)(input_tensor=of.layers.Input((40, 40, 3)), input_shape=SHAPE, weights=None)


def test_family_functions():
    x = np.array([[0.0, 127.5, 255.0]], np.float32)
    np.testing.assert_allclose(mobilenet.preprocess_input(x.copy()), [[-1.0, 0.0, 1.0]])
    np.testing.assert_allclose(mobilenet_v2.preprocess_input(x.copy()), [[-1.0, 0.0, 1.0]])
    assert mobilenet_v3.preprocess_input(x) is x   # the model rescales (include_preprocessing)
    for mod in (mobilenet, mobilenet_v2, mobilenet_v3):
        with pytest.raises(ValueError, match="1000"):
            mod.decode_predictions(np.zeros((1, 10)))
