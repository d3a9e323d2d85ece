"""``keras.utils`` / ``keras.preprocessing`` helpers against real Keras 3 (torch backend): array helpers,
image files and arrays, ``smart_resize``, and ``PyDataset`` driven by ``fit`` / ``evaluate`` / ``predict``."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
if keras.backend.backend() != "torch":   # pragma: no cover - another backend was chosen before us
    pytest.skip("these comparisons run Keras on its torch backend", allow_module_level=True)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

import onnxforge  # noqa: E402
import onnxforge.keras as fk  # noqa: E402
from exporters.keras_exporter import from_keras  # noqa: E402

R = np.random.default_rng(3)


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x)) if not isinstance(x, np.ndarray) else x


# ------------------------------------------------------------------------------------- array helpers
@pytest.mark.parametrize("labels,num_classes", [([0, 2, 1, 2], None), ([[1], [0], [3]], 5),
                                                (np.arange(6).reshape(2, 3), None), (np.array([1.0, 0.0]), 2)])
def test_to_categorical_matches_keras(labels, num_classes):
    expected = _np(keras.utils.to_categorical(labels, num_classes))
    got = fk.utils.to_categorical(labels, num_classes)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


def test_to_categorical_errors_name_the_bad_id():
    with pytest.raises(ValueError, match="class id 3 is outside"):
        fk.utils.to_categorical([0, 3], num_classes=3)


@pytest.mark.parametrize("axis,order", [(-1, 2), (1, 1), (-1, 3)])
def test_normalize_matches_keras(axis, order):
    x = R.normal(size=(4, 3)).astype("float32")
    x[1] = 0.0
    np.testing.assert_allclose(fk.utils.normalize(x, axis, order), _np(keras.utils.normalize(x, axis, order)),
                               rtol=1e-6)


def test_normalize_and_squeeze_on_traced_tensors_as_in_a_custom_loss():
    """keras.io's supervised contrastive loss calls ``keras.utils.normalize`` and ``ops.squeeze(labels)`` on the
    loss's symbolic tensors: normalize stays in the graph (a tensor in, a tensor out, as in Keras) and squeeze
    drops the labels' static 1 while keeping the dynamic batch."""
    def loss_class(api):
        class Loss(api.losses.Loss):
            def __call__(self, y_true, y_pred, sample_weight=None):
                normalized = api.utils.normalize(y_pred, axis=1, order=2)
                labels = api.ops.squeeze(y_true)
                return api.ops.mean(api.ops.sum(normalized, axis=1) * labels)
        return Loss()

    x = R.normal(size=(6, 3)).astype("float32")
    y = R.integers(0, 3, (6, 1)).astype("float32")
    results = []
    for api in (keras, fk):
        inputs = api.Input((3,))
        model = api.Model(inputs, api.layers.Dense(4)(inputs))
        model.compile(loss=loss_class(api))
        if api is fk:
            model.set_weights(results[0][1])
        results.append((float(model.evaluate(x, y, batch_size=3, verbose=0)), model.get_weights()))
    assert results[1][0] == pytest.approx(results[0][0], rel=1e-5)
    eager = fk.utils.normalize(onnxforge.ops.convert_to_tensor(x))
    np.testing.assert_allclose(np.asarray(eager), x / np.linalg.norm(x, axis=-1, keepdims=True), rtol=1e-6)


def test_normalize_along_the_first_axis():
    """(Keras 3.15's NumPy path turns axis=0 into -1 and fails to broadcast; the columns are normalized here.)"""
    x = R.normal(size=(4, 3)).astype("float32")
    np.testing.assert_allclose(fk.utils.normalize(x, 0), x / np.linalg.norm(x, axis=0, keepdims=True), rtol=1e-6)


SEQUENCES = [[1, 2, 3, 4], [5], [], [6, 7]]


@pytest.mark.parametrize("kwargs", [{}, dict(maxlen=3), dict(maxlen=3, padding="post", truncating="post"),
                                    dict(maxlen=5, value=-1, dtype="float32"), dict(truncating="post", maxlen=2)])
def test_pad_sequences_matches_keras(kwargs):
    expected = keras.utils.pad_sequences(SEQUENCES, **kwargs)
    for got in (fk.utils.pad_sequences(SEQUENCES, **kwargs),
                fk.preprocessing.sequence.pad_sequences(SEQUENCES, **kwargs)):
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)


def test_pad_sequences_of_vectors_and_strings_match_keras():
    vectors = [np.ones((2, 3)), np.full((4, 3), 2.0)]
    np.testing.assert_array_equal(fk.utils.pad_sequences(vectors, dtype="float32"),
                                  keras.utils.pad_sequences(vectors, dtype="float32"))
    words = [["a", "b"], ["c"]]
    np.testing.assert_array_equal(fk.utils.pad_sequences(words, dtype=object, value="<pad>"),
                                  keras.utils.pad_sequences(words, dtype=object, value="<pad>"))
    with pytest.raises(ValueError, match="dtype=object"):
        fk.utils.pad_sequences(words, value="<pad>")


def test_keras_3_import_paths():
    from onnxforge.keras.preprocessing.image import img_to_array, load_img, smart_resize  # noqa: F401
    from onnxforge.keras.preprocessing.sequence import pad_sequences  # noqa: F401
    from onnxforge.keras.utils import PyDataset, Sequence, to_categorical  # noqa: F401
    assert Sequence is PyDataset
    for name in ("image_dataset_from_directory", "text_dataset_from_directory", "timeseries_dataset_from_array"):
        assert callable(getattr(fk.preprocessing, name)) and callable(getattr(fk.utils, name))


# ------------------------------------------------------------------------------------- images
pytest.importorskip("PIL")


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_array_to_img_and_back_match_keras(channels):
    x = R.uniform(-1, 3, (5, 6, channels)).astype("float32")
    for scale in (True, False):
        ours, theirs = fk.utils.array_to_img(x * (1 if scale else 50), scale=scale), \
            keras.utils.array_to_img(x * (1 if scale else 50), scale=scale)
        assert ours.mode == theirs.mode and ours.size == theirs.size
        np.testing.assert_array_equal(fk.utils.img_to_array(ours), keras.utils.img_to_array(theirs))
        np.testing.assert_array_equal(fk.utils.img_to_array(ours, data_format="channels_first"),
                                      keras.utils.img_to_array(theirs, data_format="channels_first"))


def test_save_and_load_img_match_keras(tmp_path):
    x = R.uniform(0, 255, (12, 9, 3)).astype("float32")
    path = str(tmp_path / "img.png")
    fk.utils.save_img(path, x)
    for kwargs in ({}, dict(target_size=(6, 4)),
                   dict(target_size=(5, 5), keep_aspect_ratio=True, interpolation="bilinear"),
                   dict(color_mode="grayscale"), dict(color_mode="rgba", target_size=(3, 7), interpolation="bicubic")):
        ours, theirs = fk.utils.load_img(path, **kwargs), keras.utils.load_img(path, **kwargs)
        np.testing.assert_array_equal(fk.utils.img_to_array(ours), keras.utils.img_to_array(theirs),
                                      err_msg=str(kwargs))
    keras.utils.save_img(str(tmp_path / "k.png"), x)
    np.testing.assert_array_equal(np.asarray(fk.utils.load_img(str(tmp_path / "k.png"))),
                                  np.asarray(fk.utils.load_img(path)))


@pytest.mark.parametrize("shape,size", [((7, 9, 3), (4, 5)), ((2, 10, 6, 3), (3, 3)), ((5, 5, 1), (8, 6))])
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_smart_resize_matches_keras(shape, size, interpolation):
    x = R.uniform(0, 255, shape).astype("float32")
    expected = _np(keras.preprocessing.image.smart_resize(x, size, interpolation=interpolation))
    got = fk.preprocessing.image.smart_resize(x, size, interpolation=interpolation)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-3)


# ------------------------------------------------------------------------------------- PyDataset
X = R.normal(size=(22, 4)).astype("float32")
Y = R.integers(0, 3, 22).astype("int64")


def _py_dataset(lib, batch_size: int = 5):
    class Batches(lib.utils.PyDataset):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.calls = []

        def __len__(self):
            return -(-len(X) // batch_size)

        def __getitem__(self, i):
            self.calls.append(i)
            sl = slice(i * batch_size, (i + 1) * batch_size)
            return X[sl], Y[sl]

        def on_epoch_begin(self):
            self.calls.append("begin")

        def on_epoch_end(self):
            self.calls.append("end")

    return Batches()


def _models():
    keras.utils.set_random_seed(1)
    k = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, activation="tanh"),
                          keras.layers.Dense(3, activation="softmax")])
    f = from_keras(k)
    for model, lib in ((k, keras), (f, onnxforge)):
        model.compile(optimizer=lib.optimizers.SGD(0.2), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return k, f


def test_py_dataset_fit_evaluate_predict_match_keras():
    k, f = _models()
    kd, fd = _py_dataset(keras), _py_dataset(onnxforge)
    expected = k.fit(kd, epochs=3, shuffle=False, verbose=0).history
    got = f.fit(fd, epochs=3, shuffle=False, verbose=0).history
    epoch = ["begin", 0, 1, 2, 3, 4, "end"]
    assert fd.calls == epoch * 3
    assert kd.calls[-len(fd.calls):] == fd.calls   # (Keras first peeks at batch 0 to build its step)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-4, atol=1e-6, err_msg=key)
    np.testing.assert_allclose(f.evaluate(fd, verbose=0), k.evaluate(kd, verbose=0), rtol=1e-5)
    np.testing.assert_allclose(f.predict(fd, verbose=0), _np(k.predict(kd, verbose=0)), rtol=1e-5, atol=1e-6)


def test_py_dataset_batches_are_reshuffled_every_epoch_when_fit_shuffles():
    """fit(shuffle=True), its default, visits the batches in a new order every epoch (Python's ``random``,
    seeded by ``set_random_seed``), as Keras 3 does; evaluate and predict keep the order."""
    _, f = _models()
    orders = []
    for _ in range(2):
        fd = _py_dataset(onnxforge)
        onnxforge.utils.set_random_seed(7)
        f.fit(fd, epochs=4, verbose=0)
        epochs = [fd.calls[i + 1:i + 6] for i in range(0, len(fd.calls), 7)]
        assert all(sorted(e) == [0, 1, 2, 3, 4] for e in epochs) and len({tuple(e) for e in epochs}) > 1
        orders.append(epochs)
    assert orders[0] == orders[1]   # seeded: the same orders again
    fd = _py_dataset(onnxforge)
    f.evaluate(fd, verbose=0)
    assert fd.calls == ["begin", 0, 1, 2, 3, 4, "end"]


def test_endless_py_dataset_needs_steps():
    class Endless(onnxforge.utils.PyDataset):
        @property
        def num_batches(self):
            return None

        def __getitem__(self, i):
            return X[:4] + i, Y[:4]

    _, f = _models()
    with pytest.raises(ValueError, match="steps_per_epoch"):
        f.fit(Endless(), epochs=1, verbose=0)
    history = f.fit(Endless(), epochs=2, steps_per_epoch=3, verbose=0).history
    assert len(history["loss"]) == 2


def test_keras_tensor_helpers_match_keras():
    """keras.KerasTensor, keras.utils.is_keras_tensor and get_source_inputs (they were missing)."""
    import onnxforge.keras as fk

    a, b = fk.Input((3,), name="a"), fk.Input((2,), name="b")
    y = fk.layers.Concatenate()([fk.layers.Dense(2)(a), b])
    assert isinstance(y, fk.KerasTensor) and fk.utils.is_keras_tensor(y)
    assert not fk.utils.is_keras_tensor(np.zeros(2))
    assert [t.name for t in fk.utils.get_source_inputs(y)] == ["a", "b"]   # Keras 3.15's order
    assert fk.utils.get_source_inputs(a)[0] is a
