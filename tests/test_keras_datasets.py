"""``keras.datasets`` loaders against Keras 3's own, on tiny synthetic files in Keras's cache formats.

Each test writes files where Keras keeps them (a temporary ``KERAS_HOME``) and runs both Keras's loader and
onnxforge's on them. Keras checks the hash of most files and would download the real ones; its
``validate_file`` is patched to accept the synthetic files and its ``urlretrieve`` to fail, so that Keras
reads exactly what onnxforge reads. CIFAR-10's Keras loader assumes batches of exactly 10,000 images, so
there the small batches are checked against Keras's own ``load_batch`` plus a numpy assembly instead.
"""
from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import tarfile
import warnings

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
from keras.src.backend import config as keras_config  # noqa: E402
from keras.src.datasets import cifar as keras_cifar  # noqa: E402
from keras.src.utils import file_utils as keras_file_utils  # noqa: E402

import onnxforge as tf  # noqa: E402
from onnxforge.datasets import _restricted_pickle, _untrusted_files  # noqa: E402
from onnxforge.keras import datasets  # noqa: E402

R = np.random.default_rng(5)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh Keras home for both libraries; returns its ``datasets`` folder."""
    home = tmp_path / "keras_home"
    (home / "datasets").mkdir(parents=True)
    monkeypatch.setenv("KERAS_HOME", str(home))
    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(home))
    monkeypatch.setattr(keras_file_utils, "validate_file", lambda *a, **k: True)

    def no_download(url, *a, **k):
        raise AssertionError(f"Keras tried to download {url}: the synthetic file was not where it looks")
    monkeypatch.setattr(keras_file_utils, "urlretrieve", no_download)
    return home / "datasets"


def _same(ours, theirs):
    """Nested tuples of arrays equal in structure, dtype, shape and values (object arrays element-wise)."""
    assert type(ours) is type(theirs)
    if isinstance(ours, tuple):
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            _same(a, b)
        return
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    if ours.dtype == object:
        assert [list(v) if isinstance(v, (list, np.ndarray)) else v for v in ours.ravel()] == \
               [list(v) if isinstance(v, (list, np.ndarray)) else v for v in theirs.ravel()]
    else:
        np.testing.assert_array_equal(ours, theirs)


# ------------------------------------------------------------------------------------------ numeric npz
def test_mnist_from_cache_matches_keras(cache):
    np.savez(cache / "mnist.npz", x_train=R.integers(0, 256, (9, 28, 28), dtype=np.uint8),
             y_train=R.integers(0, 10, 9, dtype=np.uint8), x_test=R.integers(0, 256, (4, 28, 28), dtype=np.uint8),
             y_test=R.integers(0, 10, 4, dtype=np.uint8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # a cached file: no fallback warning
        ours = datasets.mnist.load_data()
    _same(ours, keras.datasets.mnist.load_data())
    assert tf.keras.datasets.mnist.load_data is datasets.mnist.load_data


def test_mnist_without_cache_falls_back_to_the_bundled_digits_with_a_warning(cache):
    with pytest.warns(UserWarning, match=r"'mnist.npz' is not in Keras's dataset cache .*5,000 MNIST digits"):
        (x_train, y_train), (x_test, y_test) = datasets.mnist.load_data()
    assert x_train.shape == (4000, 28, 28) and x_test.shape == (1000, 28, 28) and y_train.dtype == np.uint8


@pytest.mark.parametrize("kwargs", [{}, {"test_split": 0.35, "seed": 7}, {"test_split": 0.0}])
def test_boston_housing_matches_keras(cache, kwargs):
    np.savez(cache / "boston_housing.npz", x=R.normal(size=(23, 13)), y=R.uniform(10, 50, 23))
    _same(datasets.boston_housing.load_data(**kwargs), keras.datasets.boston_housing.load_data(**kwargs))


@pytest.mark.parametrize("kwargs", [{}, {"version": "small"}, {"version": "small", "test_split": 0.5, "seed": 3}])
def test_california_housing_matches_keras(cache, kwargs):
    np.savez(cache / "california_housing.npz", x=R.normal(size=(640, 8)).astype("float32"),
             y=R.uniform(2e4, 5e5, 640).astype("float32"))
    _same(datasets.california_housing.load_data(**kwargs), keras.datasets.california_housing.load_data(**kwargs))


def test_housing_argument_errors_like_keras(cache):
    for bad in (1.0, -0.1):
        with pytest.raises(ValueError, match="test_split"):
            keras.datasets.boston_housing.load_data(test_split=bad)
        with pytest.raises(ValueError, match=r"Invalid `test_split` argument"):
            datasets.boston_housing.load_data(test_split=bad)
    np.savez(cache / "california_housing.npz", x=np.zeros((3, 8)), y=np.zeros(3))
    with pytest.raises(ValueError, match="version"):
        keras.datasets.california_housing.load_data(version="medium")
    with pytest.raises(ValueError, match=r"`version` must be one of 'small', 'large'. Received: version='medium'"):
        datasets.california_housing.load_data(version="medium")


# ------------------------------------------------------------------------------------------ fashion-mnist
def _idx(payload: bytes, header: bytes) -> bytes:
    return gzip.compress(header + payload)


def test_fashion_mnist_matches_keras(cache):
    folder = cache / "fashion-mnist"
    folder.mkdir()
    for split, n in (("train", 7), ("t10k", 3)):
        labels = R.integers(0, 10, n, dtype=np.uint8)
        images = R.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        (folder / f"{split}-labels-idx1-ubyte.gz").write_bytes(
            _idx(labels.tobytes(), np.array([2049, n], ">u4").tobytes()))
        (folder / f"{split}-images-idx3-ubyte.gz").write_bytes(
            _idx(images.tobytes(), np.array([2051, n, 28, 28], ">u4").tobytes()))
    _same(datasets.fashion_mnist.load_data(), keras.datasets.fashion_mnist.load_data())
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(_idx(b"\0" * 100, b"\0" * 16))
    with pytest.raises(ValueError, match="3 labels"):
        datasets.fashion_mnist.load_data()


# ------------------------------------------------------------------------------------------ cifar
def _batch(n: int, label_keys: tuple[str, ...], protocol: int) -> bytes:
    batch = {b"batch_label": b"synthetic", b"data": R.integers(0, 256, (n, 3072), dtype=np.uint8),
             b"filenames": [f"img_{i}.png".encode() for i in range(n)]}
    for key in label_keys:
        batch[key.encode()] = [int(v) for v in R.integers(0, 100 if key != "labels" else 10, n)]
    return pickle.dumps(batch, protocol=protocol)


def _py2_batch(data: np.ndarray, labels: list[int]) -> bytes:
    """A batch pickled as CIFAR's real files are: Python 2's cPickle, protocol 2, ``str`` for every string."""
    def string(b: bytes) -> bytes:
        return b"U" + bytes([len(b)]) + b
    rows, cols = data.shape
    array = (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + string(b"b") + b"\x87R"
             + b"(K\x01M" + rows.to_bytes(2, "little") + b"M" + cols.to_bytes(2, "little") + b"\x86"
             + b"cnumpy\ndtype\n" + string(b"u1") + b"K\x00K\x01\x87R"
             + b"(K\x03" + string(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
             + b"\x89T" + len(data.tobytes()).to_bytes(4, "little") + data.tobytes() + b"tb")
    label_list = b"](" + b"".join(b"K" + bytes([v]) for v in labels) + b"e"
    return (b"\x80\x02}(" + string(b"data") + array + string(b"labels") + label_list
            + string(b"batch_label") + string(b"training batch 1 of 5") + b"u.")


def test_python2_cifar_pickle_reads_like_keras(tmp_path):
    data = R.integers(0, 256, (3, 3072), dtype=np.uint8)
    path = tmp_path / "data_batch_1"
    path.write_bytes(_py2_batch(data, [4, 0, 9]))
    from onnxforge.datasets._cifar import load_batch
    x, labels = load_batch(str(path), "test")
    keras_x, keras_labels = keras_cifar.load_batch(str(path))
    np.testing.assert_array_equal(x, keras_x)
    np.testing.assert_array_equal(x, data.reshape(3, 3, 32, 32))
    assert labels == keras_labels == [4, 0, 9]


def _tarball(path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _cifar100_members() -> dict[str, bytes]:
    keys = ("fine_labels", "coarse_labels")
    return {"cifar-100-python/train": _batch(6, keys, 3), "cifar-100-python/test": _batch(4, keys, 4),
            "cifar-100-python/meta": pickle.dumps({b"fine_label_names": [b"apple"]})}


@pytest.mark.parametrize("label_mode", ["fine", "coarse"])
def test_cifar100_from_keras315_archive_matches_keras(cache, label_mode):
    # Keras 3.15 keeps the download as `<fname>_archive` and extracts it into `<fname>/`.
    _tarball(cache / "cifar-100-python-target_archive", _cifar100_members())
    ours = datasets.cifar100.load_data(label_mode=label_mode)
    assert (cache / "cifar-100-python-target" / "cifar-100-python" / "train").is_file()
    _same(ours, keras.datasets.cifar100.load_data(label_mode=label_mode))
    assert ours[0][0].shape == (6, 32, 32, 3) and ours[0][1].shape == (6, 1)


def test_cifar100_other_layouts_and_label_mode_error(cache):
    members = _cifar100_members()
    _tarball(cache / "cifar-100-python.tar.gz", members)   # the origin's own file name, as a manual download
    from_origin_name = datasets.cifar100.load_data()
    _tarball(cache / "cifar-100-python-target_archive", members)
    _same(from_origin_name, keras.datasets.cifar100.load_data())
    # tf.keras 2's layout: the batches extracted straight into datasets/cifar-100-python/.
    for path in list(cache.iterdir()):
        if path.is_file():
            path.unlink()
    os.rename(cache / "cifar-100-python-target" / "cifar-100-python", cache / "cifar-100-python")
    os.rmdir(cache / "cifar-100-python-target")
    _same(datasets.cifar100.load_data(), from_origin_name)
    with pytest.raises(ValueError, match=r'`label_mode` must be one of "fine", "coarse". Received: label_mode'):
        datasets.cifar100.load_data(label_mode="medium")


def test_cifar10_batches_read_like_keras_load_batch(cache):
    folder = cache / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    sizes = [3, 5, 2, 4, 1, 6]
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name, n, protocol in zip(names, sizes, (3, 4, 3, 4, 3, 4)):
        (folder / name).write_bytes(_batch(n, ("labels",), protocol))
    (x_train, y_train), (x_test, y_test) = datasets.cifar10.load_data()
    parts = [keras_cifar.load_batch(str(folder / name)) for name in names]
    expect_x = np.concatenate([p[0] for p in parts[:5]]).transpose(0, 2, 3, 1)
    expect_y = np.concatenate([np.asarray(p[1]) for p in parts[:5]]).astype(np.uint8).reshape(-1, 1)
    _same((x_train, y_train), (expect_x, expect_y))
    _same((x_test, y_test), (parts[5][0].transpose(0, 2, 3, 1), np.reshape(parts[5][1], (-1, 1)).astype(np.uint8)))
    assert x_train.dtype == np.uint8 and x_train.shape == (15, 32, 32, 3) and y_test.shape == (6, 1)


def test_missing_files_name_the_file_the_folder_and_the_fix(cache):
    for load, name in ((datasets.imdb.load_data, "imdb.npz"), (datasets.reuters.get_word_index, "reuters_word_index"),
                       (datasets.cifar10.load_data, "cifar-10-python.tar.gz"),
                       (datasets.fashion_mnist.load_data, "train-labels-idx1-ubyte.gz"),
                       (datasets.california_housing.load_data, "california_housing.npz")):
        with pytest.raises(FileNotFoundError, match=name) as info:
            load()
        assert str(cache) in str(info.value) and "does not download" in str(info.value)
    with pytest.raises(ValueError, match="paths are not accepted"):
        datasets.boston_housing.load_data(path="sub/boston.npz")


# ------------------------------------------------------------------------------------------ imdb / reuters
def _sequences(n: int) -> np.ndarray:
    seqs = np.empty(n, dtype=object)
    for i in range(n):
        seqs[i] = [int(w) for w in R.integers(1, 60, int(R.integers(1, 30)))]
    return seqs


OPTIONS = [{}, {"num_words": 20, "skip_top": 3}, {"maxlen": 15}, {"start_char": None, "index_from": 0},
           {"oov_char": None, "num_words": 25}, {"seed": 7, "index_from": 5, "start_char": 9, "oov_char": 4},
           {"num_words": 30, "skip_top": 2, "maxlen": 20, "oov_char": None, "start_char": None}]


@pytest.mark.parametrize("options", OPTIONS)
def test_imdb_matches_keras(cache, options):
    np.savez(cache / "imdb.npz", x_train=_sequences(25), y_train=R.integers(0, 2, 25),
             x_test=_sequences(17), y_test=R.integers(0, 2, 17))
    _same(datasets.imdb.load_data(**options), keras.datasets.imdb.load_data(**options))


@pytest.mark.parametrize("options", OPTIONS + [{"test_split": 0.35}, {"test_split": 0.0, "maxlen": 25}])
def test_reuters_matches_keras(cache, options):
    np.savez(cache / "reuters.npz", x=_sequences(40), y=R.integers(0, 46, 40))
    _same(datasets.reuters.load_data(**options), keras.datasets.reuters.load_data(**options))


def test_word_indices_and_label_names_match_keras(cache):
    for name in ("imdb_word_index.json", "reuters_word_index.json"):
        (cache / name).write_text(json.dumps({"the": 1, "and": 2, "film": 17, "naïve": 900}))
    assert datasets.imdb.get_word_index() == keras.datasets.imdb.get_word_index()
    assert datasets.reuters.get_word_index() == keras.datasets.reuters.get_word_index()
    assert datasets.reuters.get_label_names() == keras.datasets.reuters.get_label_names()


def test_imdb_option_errors(cache):
    np.savez(cache / "imdb.npz", x_train=_sequences(5), y_train=np.zeros(5, int), x_test=_sequences(5),
             y_test=np.zeros(5, int))
    with pytest.raises(ValueError, match="no sequence was kept"):
        datasets.imdb.load_data(maxlen=1)
    with pytest.raises(ValueError, match=r"`num_words` must be None or an integer >= 0. Received: num_words='10'"):
        datasets.imdb.load_data(num_words="10")


def test_submodule_imports_like_keras():
    from onnxforge.keras.datasets.imdb import get_word_index
    from onnxforge.keras.datasets import cifar100, fashion_mnist
    assert get_word_index is datasets.imdb.get_word_index
    assert tf.keras.datasets.cifar100 is cifar100 and fashion_mnist.load_data is tf.datasets.fashion_mnist.load_data


# ------------------------------------------------------------------------------------------ hostile files
class _RunsShell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _MismatchedObjectArray:
    """The object-array state that crashes numpy's own ``__setstate__`` (a million items declared, one given)."""

    def __reduce__(self):
        from numpy._core.multiarray import _reconstruct
        return (_reconstruct, (np.ndarray, (0,), b"b"), (1, (10**6,), np.dtype("O"), False, [1]))


class _HugeArray:
    def __reduce__(self):
        from numpy._core.multiarray import _reconstruct
        return (_reconstruct, (np.ndarray, (10**12,), b"b"))


def test_hostile_cifar_batch_is_refused_and_runs_nothing(cache, tmp_path):
    marker = tmp_path / "pwned"
    folder = cache / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(_batch(2, ("labels",), 4))
    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": _RunsShell(marker), b"labels": [1, 2]}))
    with pytest.raises(pickle.UnpicklingError, match=r"data_batch_3.*`posix.system`"):
        datasets.cifar10.load_data()
    assert not marker.exists()
    for payload in (_MismatchedObjectArray(), _HugeArray(), [b"x", print]):
        (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": payload, b"labels": [1, 2]}, protocol=3))
        with pytest.raises(pickle.UnpicklingError, match="data_batch_3"):
            datasets.cifar10.load_data()


def test_hostile_imdb_npz_is_refused(cache, tmp_path):
    marker = tmp_path / "pwned"
    for payload in (_RunsShell(marker), _MismatchedObjectArray()):
        members = {"x_train.npy": None, "y_train.npy": np.zeros(2), "x_test.npy": _sequences(2),
                   "y_test.npy": np.zeros(2)}
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {"descr": "|O", "fortran_order": False, "shape": (2,)})
        members["x_train.npy"] = header.getvalue() + pickle.dumps(payload, protocol=3)
        import zipfile
        with zipfile.ZipFile(cache / "imdb.npz", "w") as archive:
            for name, value in members.items():
                if isinstance(value, np.ndarray):
                    buffer = io.BytesIO()
                    np.lib.format.write_array(buffer, value, allow_pickle=True)
                    value = buffer.getvalue()
                archive.writestr(name, value)
        with pytest.raises(pickle.UnpicklingError, match="x_train"):
            datasets.imdb.load_data()
    assert not marker.exists()


def test_object_arrays_refused_where_keras_reads_numbers_and_bounds_hold(cache, monkeypatch):
    np.savez(cache / "mnist.npz", x_train=_sequences(3), y_train=np.zeros(3), x_test=np.zeros((1, 28, 28)),
             y_test=np.zeros(1))
    with pytest.raises(ValueError, match="holds Python objects"):
        datasets.mnist.load_data()
    np.savez(cache / "boston_housing.npz", x=np.zeros((50, 13)), y=np.zeros(50))
    monkeypatch.setattr(_untrusted_files, "MAX_FILE_BYTES", 1000)
    with pytest.raises(ValueError, match="more than the 1000 a dataset file may take"):
        datasets.boston_housing.load_data()
    folder = cache / "fashion-mnist"
    folder.mkdir()
    for name in ("train-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz"):
        (folder / name).write_bytes(gzip.compress(b"\0" * 100_000))   # a small gzip bomb
    with pytest.raises(ValueError, match="decompressed"):
        datasets.fashion_mnist.load_data()


@pytest.mark.parametrize("member", ["../escaped", "/tmp/onnxforge_abs_escape", "cifar-10-batches-py/../../escaped",
                                    "link"])
def test_hostile_tarball_is_refused_and_writes_nothing(cache, tmp_path, member):
    with tarfile.open(cache / "cifar-10-python.tar.gz", "w:gz") as tar:
        good = _batch(2, ("labels",), 4)
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        info.size = len(good)
        tar.addfile(info, io.BytesIO(good))
        info = tarfile.TarInfo(member)
        if member == "link":
            info.type, info.linkname = tarfile.SYMTYPE, "../../../../etc/passwd"
            tar.addfile(info)
        else:
            info.size = 4
            tar.addfile(info, io.BytesIO(b"evil"))
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(ValueError, match=rf"{member!r}.*nothing was extracted"):
        datasets.cifar10.load_data()
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    assert not os.path.exists("/tmp/onnxforge_abs_escape")


def test_restricted_unpickler_reads_every_protocol_numpy_writes():
    # Keras's own unpickler refuses protocols 2 (`_codecs.encode`) and 5 (`_frombuffer`); Python writes both.
    value = {b"a": np.arange(6, dtype=">i4").reshape(2, 3), "b": [np.int64(3), np.float32(1.5), (1, "x")],
             "c": np.asfortranarray(np.ones((2, 2))), "d": np.array([[1, 2], [3]], dtype=object)}
    for protocol in range(2, 6):
        got = _restricted_pickle.loads(pickle.dumps(value, protocol=protocol), "test")
        for key in (b"a", "c"):
            assert got[key].dtype == value[key].dtype and got[key].flags.f_contiguous == value[key].flags.f_contiguous
            np.testing.assert_array_equal(got[key], value[key])
        assert got["b"] == value["b"] and type(got["b"][0]) is np.int64
        assert [list(v) for v in got["d"]] == [[1, 2], [3]]
