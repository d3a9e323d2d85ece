"""``tf.data.experimental.make_csv_dataset`` (onnxforge/tf_compat/csv_dataset.py) against TensorFlow's own on
the same files, unshuffled: column names from the header or given, types from ``column_defaults`` or inferred,
``na_value`` and empty fields, ``select_columns``, the label column, ``num_epochs``, gzip; and ``tf.cast`` to
string, which keras.io's GRN/VSN example applies to the string columns it reads."""
from __future__ import annotations

import gzip

import numpy as np
import pytest

import onnxforge
from onnxforge.tf_compat.errors import UnimplementedError

TABLE = ("age,job,score,city,label\n"
         "39,Private,1.5,Oslo,1\n"
         "50, Federal,,\"Rome, IT\",0\n"
         "38,NA,2.25,Oslo,0\n"
         "3000000000,Private,-4,,1\n"
         "41,Private,7,Lima,1\n")


@pytest.fixture()
def csv_file(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text(TABLE)
    return str(path)


def _elements(ds):
    out = []
    for element in ds:
        features, label = element if isinstance(element, tuple) else (element, None)
        out.append(({k: np.asarray(v) for k, v in features.items()},
                    None if label is None else np.asarray(label)))
    return out


def _text(a):
    """TensorFlow's string tensors are object arrays of bytes; onnxforge's are ``str`` arrays."""
    if a.dtype != object:
        return a
    return np.array([v.decode() for v in a.flat]).reshape(a.shape)


def _compare(want, got):
    assert len(got) == len(want)
    for (wf, wl), (gf, gl) in zip(want, got):
        assert list(gf) == list(wf)
        for key in wf:
            w = _text(wf[key])
            assert gf[key].dtype == w.dtype or (w.dtype.kind == "U" and gf[key].dtype.kind == "U"), key
            np.testing.assert_array_equal(gf[key], w, err_msg=key)
        if wl is not None:
            np.testing.assert_array_equal(gl, _text(wl))
            assert gl.dtype == _text(wl).dtype or gl.dtype.kind == "U"


CASES = {
    "defaults": dict(column_defaults=[[0.0], ["NA"], [0.0], [""], [0]], label_name="label", na_value="NA"),
    "inferred": dict(label_name="label"),
    "selected": dict(select_columns=["score", "age", "label"], column_defaults=[[0.0], [0.0], [0]],
                     label_name="label"),
    "named_no_header": dict(column_names=["a", "b", "c", "d", "e"], header=False, column_defaults=[
        ["x"], ["x"], ["x"], ["x"], ["x"]]),
    "two_epochs": dict(label_name="city", num_epochs=2, column_defaults=[[0.0], [""], [0.0], ["?"], [0]]),
    "forever": dict(label_name="label", num_epochs=None),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_make_csv_dataset_matches_tensorflow(case, csv_file):
    tf = pytest.importorskip("tensorflow")
    kwargs = {"batch_size": 2, "shuffle": False, "num_epochs": 1, **CASES[case]}
    want = tf.data.experimental.make_csv_dataset(csv_file, **kwargs)
    got = onnxforge.data.experimental.make_csv_dataset(csv_file, **kwargs)
    if case == "forever":
        want, got = want.take(5), got.take(5)
    _compare(_elements(want), _elements(got))


def test_gzip_and_shuffled_batches_hold_every_row(tmp_path):
    path = str(tmp_path / "t.csv.gz")
    with gzip.open(path, "wt") as f:
        f.write(TABLE)
    ds = onnxforge.data.experimental.make_csv_dataset(path, batch_size=5, compression_type="GZIP", num_epochs=1,
                                                      shuffle_seed=3, label_name="label", column_defaults=[[0.0], [""], [0.0], [""], [0]])
    (features, label), = list(ds)
    assert sorted(np.asarray(features["age"]).tolist()) == [38.0, 39.0, 41.0, 50.0, 3e9]
    assert sorted(np.asarray(label).tolist()) == [0, 0, 1, 1, 1]


def test_bad_arguments_and_records_are_named(csv_file, tmp_path):
    make = onnxforge.data.experimental.make_csv_dataset
    with pytest.raises(ValueError, match="label_name"):
        make(csv_file, 2, label_name="income")
    with pytest.raises(ValueError, match="select_columns"):
        make(csv_file, 2, select_columns=["nope"])
    with pytest.raises(ValueError, match="no files match"):
        make(str(tmp_path / "missing*.csv"), 2)
    with pytest.raises(ValueError, match="column_defaults has 2 items"):
        make(csv_file, 2, column_defaults=[[0], [0]])
    with pytest.raises(ValueError, match="field 2 is required"):
        make(csv_file, 2, column_defaults=["int32", "string", "float32", "string", "int32"])
    with pytest.raises(ValueError, match="not a valid int32: 'Private'"):
        make(csv_file, 2, column_defaults=[[0], [0], [0.0], [""], [0]])
    rows = make(csv_file, 10, column_defaults=[[0], [""], [0.0], [""], [0]], ignore_errors=True, num_epochs=1,
                shuffle=False)
    assert np.asarray(next(iter(rows))["age"]).tolist() == [39, 50, 38, 41]   # 3e9 overflows int32: skipped
    with pytest.raises(ValueError, match="compression_type"):
        make(csv_file, 2, compression_type="ZLIB")



@pytest.mark.parametrize("content, fragment", [
    (b"a,b\n1," + b"9" * 200_000 + b"\n", r"near line 2 \(Error: field larger than field limit"),
    (b"a,b\n1,caf\xe9\n", r"near line 1 \(UnicodeDecodeError"),
    ("gzip", r"BadGzipFile|EOFError"),
])
def test_files_csv_cannot_read_are_named_with_the_line(tmp_path, content, fragment):
    # csv.Error and UnicodeDecodeError named neither the file nor the line; csv.Error is not a ValueError.
    path = tmp_path / "bad.csv"
    path.write_bytes(gzip.compress(b"a,b\n" + b"1,2\n" * 5000)[:-12] if content == "gzip" else content)
    with pytest.raises(ValueError, match=r"cannot read '.*bad\.csv' .*" + fragment):
        onnxforge.data.experimental.make_csv_dataset(str(path), 2, num_epochs=1,
                                                     compression_type="GZIP" if content == "gzip" else None)

def test_cast_to_string_keeps_strings_and_refuses_numbers():
    words = np.array(["a", "b"])
    assert onnxforge.cast(words, "string") is words
    assert onnxforge.cast(np.str_("a"), onnxforge.string) == "a"
    with pytest.raises(UnimplementedError, match="int64 to string"):
        onnxforge.cast(np.array([1, 2]), "string")


@pytest.mark.parametrize("kwargs", [{}, {"select_cols": [0, 2]}, {"header": True, "exclude_cols": [1]}])
def test_csv_dataset_matches_tensorflow(kwargs, tmp_path):
    """``CsvDataset`` as the overfit-and-underfit tutorial reads HIGGS: gzip, ``[float()] * n`` defaults, then
    ``batch(...).map(pack_row).unbatch()``."""
    tf = pytest.importorskip("tensorflow")
    path = str(tmp_path / "higgs.csv.gz")
    with gzip.open(path, "wt") as f:
        f.write("1.000000e+00,8.692932e-01,-6.350818e-01\n0.0,,2.5\n1,3,-4.75e-1\n")
    width = 2 if "select_cols" in kwargs or "exclude_cols" in kwargs else 3
    defaults = [float()] * width if "select_cols" not in kwargs else [float(), 0.0]

    def pack_row(*row):
        return lib.stack(row[1:], 1), row[0]

    outs = []
    for lib in (tf, onnxforge):
        ds = lib.data.experimental.CsvDataset(path, defaults, compression_type="GZIP", **kwargs)
        outs.append([(np.asarray(f), np.asarray(y)) for f, y in ds.batch(2).map(pack_row).unbatch()])
    want, got = outs
    assert len(got) == len(want)
    for (wf, wy), (gf, gy) in zip(want, got):
        np.testing.assert_array_equal(gf, wf)
        np.testing.assert_array_equal(gy, wy)
        assert gf.dtype == wf.dtype == np.float32
