"""Dataset utilities (``split_dataset``, ``image_dataset_from_directory``, ``text_dataset_from_directory``,
``timeseries_dataset_from_array``), ``plot_model`` and ``get_file``.

Keras builds its datasets with tf.data: where TensorFlow is installed the results are compared element by
element with Keras's (same files, same order, same pixels); the rest checks behaviour directly.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tarfile

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

import onnxforge  # noqa: E402
import onnxforge.keras as fk  # noqa: E402
from onnxforge.utils import Dataset  # noqa: E402

R = np.random.default_rng(8)


def _tf():
    return pytest.importorskip("tensorflow")


def _np(x):
    return x.numpy() if hasattr(x, "numpy") else np.asarray(x)


# ------------------------------------------------------------------------------------- Dataset
def test_dataset_pipeline_like_tf_data():
    ds = Dataset.from_tensor_slices({"a": np.arange(7.0), "b": np.arange(7) * 10})
    batches = list(ds.map(lambda e: {"a": e["a"] * 2, "b": e["b"]}).batch(3, drop_remainder=True))
    assert [b["a"].tolist() for b in batches] == [[0.0, 2.0, 4.0], [6.0, 8.0, 10.0]]
    pairs = Dataset.from_tensor_slices((np.arange(5), np.arange(5) % 2))
    assert [int(x) for x, _ in pairs.filter(lambda x, y: y == 1)] == [1, 3]
    assert len(pairs.skip(1).take(3)) == 3 and len(pairs.batch(2).repeat(2)) == 6
    shuffled = pairs.shuffle(10, seed=3)
    first, second = [int(x) for x, _ in shuffled], [int(x) for x, _ in shuffled]
    assert sorted(first) == [0, 1, 2, 3, 4] and first != second          # reshuffled each pass
    assert [int(x) for x, _ in pairs.shuffle(10, seed=3)] == first      # seeded: reproducible
    assert [b[0].tolist() for b in pairs.batch(2).unbatch().batch(4)] == [[0, 1, 2, 3], [4]]
    with pytest.raises(TypeError, match="unknown"):
        len(pairs.filter(lambda x, y: True))


def test_fit_accepts_a_dataset_and_matches_arrays():
    x = R.normal(size=(12, 3)).astype("float32")
    y = R.integers(0, 2, (12, 1)).astype("float32")
    histories = []
    for data in ((x, y), Dataset.from_tensor_slices((x, y)).batch(4)):
        onnxforge.utils.set_random_seed(0)
        model = onnxforge.Sequential([onnxforge.layers.Input((3,)), onnxforge.layers.Dense(1, activation="sigmoid")])
        model.compile(optimizer="sgd", loss="binary_crossentropy")
        kwargs = dict(batch_size=4, shuffle=False) if isinstance(data, tuple) else {}
        histories.append(model.fit(*(data if isinstance(data, tuple) else (data,)), epochs=2, verbose=0,
                                   **kwargs).history["loss"])
    np.testing.assert_allclose(histories[1], histories[0], rtol=1e-6)


# ------------------------------------------------------------------------------------- split_dataset
@pytest.mark.parametrize("kwargs", [dict(left_size=0.8), dict(right_size=3), dict(left_size=4, right_size=0.25),
                                    dict(left_size=0.6, shuffle=True, seed=5)])
def test_split_dataset_matches_keras_tf_semantics(kwargs):
    _tf()
    x, y = np.arange(20.0).reshape(10, 2), np.arange(10)
    theirs = keras.utils.split_dataset((x, y), preferred_backend="tensorflow", **kwargs)
    ours = fk.utils.split_dataset((x, y), **kwargs)
    for o, t in zip(ours, theirs):
        expected = [(a.numpy(), b.numpy()) for a, b in t]
        got = list(o)
        assert len(o) == len(expected)
        for (ga, gb), (ea, eb) in zip(got, expected):
            np.testing.assert_array_equal(ga, ea)
            assert int(gb) == int(eb)


def test_split_dataset_of_one_array_and_errors():
    left, right = fk.utils.split_dataset(np.arange(10), left_size=0.8)
    assert [int(v) for v in left] == list(range(8)) and [int(v) for v in right] == [8, 9]
    with pytest.raises(ValueError, match="left_size"):
        fk.utils.split_dataset(np.arange(10), left_size=1.5)
    with pytest.raises(ValueError, match="At least one"):
        fk.utils.split_dataset(np.arange(10))


# ------------------------------------------------------------------------------------- directories
@pytest.fixture
def image_dir(tmp_path):
    PIL = pytest.importorskip("PIL.Image")
    root = tmp_path / "images"
    for cls, n in (("cats", 4), ("dogs", 3), ("zebras", 2)):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            size = (6 + i, 5 + 2 * i)
            pixels = R.integers(0, 256, (size[1], size[0], 3)).astype("uint8")
            PIL.fromarray(pixels).save(root / cls / f"{i}.png")
    (root / "dogs" / "notes.txt").write_text("not an image")
    return str(root)


@pytest.mark.parametrize("kwargs", [
    dict(shuffle=False, image_size=(4, 5)),
    dict(shuffle=False, image_size=(8, 8), label_mode="categorical", color_mode="grayscale", batch_size=2),
    dict(shuffle=False, image_size=(3, 4), interpolation="nearest", crop_to_aspect_ratio=True, batch_size=None),
    dict(shuffle=True, seed=11, validation_split=0.34, subset="validation", image_size=(5, 5)),
])
def test_image_dataset_from_directory_matches_keras(image_dir, kwargs):
    _tf()
    theirs = keras.utils.image_dataset_from_directory(image_dir, verbose=False, **kwargs)
    ours = fk.utils.image_dataset_from_directory(image_dir, verbose=False, **kwargs)
    assert ours.class_names == theirs.class_names == ["cats", "dogs", "zebras"]
    assert ours.file_paths == theirs.file_paths
    if kwargs.get("shuffle"):
        return   # the per-epoch buffer shuffle differs between tf.data and onnxforge; the files are the same
    # RGB files read as grayscale: TensorFlow's PNG decoder rounds its luma differently from Pillow's (ITU-R
    # 601-2 both), by at most one level before resizing.
    atol = 1.0 if kwargs.get("color_mode") == "grayscale" else 1e-3
    for (gx, gy), (ex, ey) in zip(ours, theirs):
        np.testing.assert_allclose(gx, _np(ex), rtol=1e-5, atol=atol)
        np.testing.assert_array_equal(gy, _np(ey))
        assert gx.dtype == np.float32 and gy.dtype == _np(ey).dtype


def test_image_dataset_trains_and_splits_both(image_dir):
    train, val = fk.utils.image_dataset_from_directory(image_dir, image_size=(6, 6), batch_size=3, seed=2,
                                                       validation_split=0.3, subset="both", verbose=False)
    assert len(set(train.file_paths) & set(val.file_paths)) == 0 and len(train.file_paths) + len(val.file_paths) == 9
    model = onnxforge.Sequential([onnxforge.layers.Input((6, 6, 3)), onnxforge.layers.Flatten(),
                                  onnxforge.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(train, validation_data=val, epochs=2, verbose=0).history
    assert sorted(history) == ["accuracy", "loss", "val_accuracy", "val_loss"]


def test_text_dataset_from_directory_matches_keras(tmp_path):
    _tf()
    for cls, texts in (("neg", ["bad film", "awful"]), ("pos", ["great", "loved it, ünïcode", "fine"])):
        (tmp_path / cls).mkdir()
        for i, t in enumerate(texts):
            (tmp_path / cls / f"{i}.txt").write_text(t, encoding="utf-8")
    for kwargs in (dict(shuffle=False, batch_size=2), dict(shuffle=False, max_length=4, label_mode="binary")):
        theirs = keras.utils.text_dataset_from_directory(str(tmp_path), verbose=False, **kwargs)
        ours = fk.utils.text_dataset_from_directory(str(tmp_path), verbose=False, **kwargs)
        assert ours.class_names == theirs.class_names
        for (gx, gy), (ex, ey) in zip(ours, theirs):
            expected = [v.decode("utf-8", errors="replace") for v in _np(ex)]
            if "max_length" not in kwargs:   # Keras cuts bytes, onnxforge characters: compare whole texts only
                assert gx.tolist() == expected
            np.testing.assert_array_equal(gy, _np(ey))


def test_label_mode_none_is_an_unlabelled_dataset_like_keras(tmp_path, image_dir):
    # Keras: label_mode=None is labels=None: files indexed from the top folder down (a loose file included),
    # no class_names; onnxforge kept the sub-folders as classes and skipped the loose file.
    _tf()
    root = tmp_path / "texts"   # beside image_dir, which is also in tmp_path
    for cls, texts in (("neg", ["bad film", "awful"]), ("pos", ["great"])):
        (root / cls).mkdir(parents=True)
        for i, t in enumerate(texts):
            (root / cls / f"{i}.txt").write_text(t)
    (root / "loose.txt").write_text("no class")
    theirs = keras.utils.text_dataset_from_directory(str(root), label_mode=None, shuffle=False, verbose=False)
    ours = fk.utils.text_dataset_from_directory(str(root), label_mode=None, shuffle=False, verbose=False)
    assert ours.class_names is None and getattr(theirs, "class_names", None) is None
    assert [x.tolist() for x in ours] == [[v.decode() for v in _np(x)] for x in theirs]
    kwargs = dict(label_mode=None, shuffle=False, image_size=(4, 4), verbose=False)
    theirs = keras.utils.image_dataset_from_directory(image_dir, **kwargs)
    ours = fk.utils.image_dataset_from_directory(image_dir, **kwargs)
    assert ours.class_names is None and getattr(theirs, "class_names", None) is None
    assert ours.file_paths == theirs.file_paths


@pytest.mark.parametrize("kwargs", [dict(sequence_length=3, batch_size=4), dict(sequence_length=2, sequence_stride=2,
                                    sampling_rate=2, batch_size=3), dict(sequence_length=4, start_index=2, end_index=15,
                                                                         batch_size=None)])
def test_timeseries_dataset_matches_keras(kwargs):
    _tf()
    data = np.arange(40.0).reshape(20, 2)
    targets = np.arange(20) * 10
    theirs = keras.utils.timeseries_dataset_from_array(data, targets, **kwargs)
    ours = fk.utils.timeseries_dataset_from_array(data, targets, **kwargs)
    got, expected = list(ours), list(theirs)
    assert len(got) == len(expected)
    for (gx, gy), (ex, ey) in zip(got, expected):
        np.testing.assert_array_equal(gx, _np(ex))
        np.testing.assert_array_equal(gy, _np(ey))


# ------------------------------------------------------------------------------------- plot_model
def _functional():
    L = onnxforge.layers
    a, b = L.Input((3,), name="a"), L.Input((2,), name="b")
    out = L.Dense(1, name="head", activation="sigmoid")(L.Concatenate(name="merge")([a, b]))
    return onnxforge.Model([a, b], out, name="two_inputs")


def test_plot_model_writes_dot_without_graphviz(tmp_path, monkeypatch):
    model = _functional()
    monkeypatch.setattr(shutil, "which", lambda name: None)
    path = tmp_path / "model.dot"
    fk.utils.plot_model(model, to_file=str(path), show_shapes=True, show_layer_activations=True)
    text = path.read_text()
    for expected in ("merge (Concatenate)", "head (Dense)", "sigmoid", "(None, 5)", "->"):
        assert expected in text
    with pytest.raises(ImportError, match="Graphviz"):
        fk.utils.plot_model(model, to_file=str(tmp_path / "model.png"))


def test_plot_model_renders_png_with_graphviz(tmp_path):
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot program is not installed")
    path = tmp_path / "model.png"
    fk.utils.plot_model(_functional(), to_file=str(path), show_shapes=True, rankdir="LR")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------------- get_file
def test_get_file_from_a_local_origin_with_hash_and_extraction(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("alpha")
    archive = tmp_path / "data.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src / "a.txt", arcname="data/a.txt")
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    cache = tmp_path / "cache"
    path = fk.utils.get_file("data.tar.gz", origin=archive.as_uri(), file_hash=sha, cache_dir=str(cache))
    assert open(path, "rb").read() == archive.read_bytes()
    folder = fk.utils.get_file("data.tar.gz", origin=archive.as_uri(), extract=True, cache_dir=str(cache))
    assert open(os.path.join(folder, "data", "a.txt")).read() == "alpha"
    # Cached: a remote origin is not needed any more.
    assert fk.utils.get_file("data.tar.gz", origin="https://example.invalid/data.tar.gz",
                             cache_dir=str(cache)) == path
    with pytest.raises(ValueError, match="does not match the expected"):
        fk.utils.get_file("data.tar.gz", origin=archive.as_uri(), file_hash="0" * 64, cache_dir=str(cache))
    with pytest.raises(FileNotFoundError, match="does not download"):
        fk.utils.get_file("other.npz", origin="https://example.invalid/other.npz", cache_dir=str(cache))
