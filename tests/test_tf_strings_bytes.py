"""String tensors as TensorFlow hands them out (``.numpy()`` gives ``bytes``) and the ``tf.strings`` functions
that read characters (``onnxforge/tf_compat/strings_fns.py``), ``tf.SparseTensor`` / ``tf.sparse.to_dense``,
each compared with TensorFlow 2.21 where it is installed."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as tf


@pytest.fixture(scope="module")
def rtf():
    return pytest.importorskip("tensorflow")


def _same(mine, theirs):
    """``.numpy()`` results equal in value, type, dtype and shape."""
    assert type(mine) is type(theirs), (mine, theirs)
    if isinstance(theirs, np.ndarray):
        assert mine.dtype == theirs.dtype and mine.shape == theirs.shape, (mine, theirs)
        assert mine.tolist() == theirs.tolist()
    else:
        assert mine == theirs


# ------------------------------------------------------------------------------------------ .numpy()
def test_numpy_of_string_tensors_gives_bytes():
    assert tf.constant("abc").numpy() == b"abc"
    words = tf.constant(["a", "héllo"])
    got = words.numpy()
    assert got.dtype == object and got.tolist() == [b"a", "héllo".encode()]
    assert words[1].numpy().decode("utf-8") == "héllo"
    assert [w.numpy() for w in words] == [b"a", "héllo".encode()]
    # Inside, the text stays str: NumPy, comparisons and the text layers see the same arrays as before.
    assert np.asarray(words).tolist() == ["a", "héllo"]
    assert (words == "a").tolist() == [True, False]
    # ... and compare equal to the bytes their .numpy() gave, as TensorFlow's do.
    assert (words == "a".encode()).tolist() == [True, False] and (words != words.numpy()).tolist() == [False, False]
    assert tf.constant(b"caf\xc3\xa9").numpy() == "café".encode() and np.asarray(tf.constant(b"x")).dtype.kind == "U"
    assert tf.constant(["a"], dtype=tf.string).numpy().tolist() == [b"a"]
    # An op's result (an object array from onnxruntime) too, and numbers are unchanged.
    assert tf.strings.upper(tf.constant(["ab"]))[0].numpy() == b"AB"
    assert tf.constant([1.5]).numpy().dtype == np.float32


def test_string_tensors_concat_and_stack(rtf):
    # ONNX Concat takes strings; the dtype promotion had no entry for them and refused.
    for t in (tf, rtf):
        pair = [t.constant(["a"]), t.constant(["bc"])]
        assert t.concat(pair, 0).numpy().tolist() == [b"a", b"bc"]
        assert t.stack([t.constant("a"), t.constant("b")]).numpy().tolist() == [b"a", b"b"]
        assert t.fill([2], "x").numpy().tolist() == [b"x", b"x"]
    with pytest.raises(ValueError, match="No implicit dtype promotion between"):
        tf.concat([tf.constant(["a"]), tf.constant([1.0])], 0)


def test_bytes_fed_back_into_layers_ops_and_predict():
    # .numpy() gives bytes; fed back, onnxruntime would read str(b"the cat") = "b'the cat'" (and fail on S arrays).
    texts = tf.constant(["the cat", "the café"])
    layer = tf.keras.layers.TextVectorization(output_sequence_length=3)
    layer.adapt(texts.numpy())
    assert layer.get_vocabulary() == ["", "[UNK]", "the", "cat", "café"]
    want = np.asarray(layer(texts)).tolist()
    assert want == [[2, 3, 0], [2, 4, 0]]
    for fed in (texts.numpy(), texts.numpy().astype("S")):
        assert np.asarray(layer(fed)).tolist() == want
    model = tf.keras.Sequential([tf.keras.Input((), dtype="string"), layer])
    assert model.predict(texts.numpy(), verbose=0).tolist() == want
    lookup = tf.keras.layers.StringLookup(vocabulary=[b"a", b"b"])
    assert np.asarray(lookup(np.array([b"b", b"z"], dtype=object))).tolist() == [2, 0]
    assert tf.strings.upper(tf.constant(["ab"]).numpy()).numpy().tolist() == [b"AB"]
    assert tf.strings.length(tf.constant("é").numpy()).numpy() == 2


def test_numpy_matches_tensorflow(rtf):
    for value in ("abc", ["a", "bc"], [["é", ""]], b"\xff"):
        _same(tf.constant(value).numpy(), rtf.constant(value).numpy())


def test_dataset_of_strings_yields_bytes_as_tf_data(rtf):
    texts = ["good film", "bad plöt", "x"]
    for t in (tf, rtf):
        ds = t.data.Dataset.from_tensor_slices((texts, [1, 0, 1]))
        assert [x.numpy() for x, _ in ds] == [s.encode() for s in texts]
        assert [x for x, _ in ds.as_numpy_iterator()] == [s.encode() for s in texts]
        batch = next(iter(ds.batch(2)))[0].numpy()
        assert batch.dtype == object and batch.tolist() == [s.encode() for s in texts[:2]]


def _mapped(t):
    ds = t.data.Dataset.from_tensor_slices(["ab", "cd", "éf"])
    upper = ds.map(lambda s: (t.strings.unicode_split(s, "UTF-8"), t.strings.length(s),
                              t.strings.reduce_join(t.strings.unicode_split(s, "UTF-8"), separator="-")))
    return [(chars.numpy().tolist(), int(n), joined.numpy()) for chars, n, joined in upper]


def test_string_functions_inside_dataset_map(rtf):
    assert _mapped(tf) == _mapped(rtf)
    assert _mapped(tf)[2] == (["é".encode(), b"f"], 3, "é-f".encode())


# ------------------------------------------------------------------------------------------ tf.strings
X = [["ab", "c", "dé"], ["e", "", "fgh"]]
CASES = {
    "reduce_join_all": lambda s, t: s.reduce_join(X),
    "reduce_join_0": lambda s, t: s.reduce_join(X, axis=0, separator="|"),
    "reduce_join_last_keepdims": lambda s, t: s.reduce_join(X, axis=-1, keepdims=True),
    "reduce_join_01": lambda s, t: s.reduce_join(X, axis=[0, 1], separator=","),
    "reduce_join_10": lambda s, t: s.reduce_join(X, axis=[1, 0], separator=","),
    "reduce_join_scalar": lambda s, t: s.reduce_join("abc"),
    "unicode_split_scalar": lambda s, t: s.unicode_split("héllo", "UTF-8"),
    "unicode_split_2d": lambda s, t: s.unicode_split([["ab", "cé"], ["xy", "zz"]], "UTF-8"),
    "unicode_decode": lambda s, t: s.unicode_decode(["hé", "ab"], "UTF-8"),
    "unicode_encode_2d": lambda s, t: s.unicode_encode([[104, 233], [97, 98]], "UTF-8"),
    "unicode_encode_1d": lambda s, t: s.unicode_encode([104, 233, 0x1F600], "UTF-8"),
    "bytes_split": lambda s, t: s.bytes_split(["ab", "cd"]),
    "bytes_split_utf8": lambda s, t: s.bytes_split("hé"),
    "length_bytes": lambda s, t: s.length([["a", "é"], ["", "abc"]]),
    "length_chars": lambda s, t: s.length(["😀a", ""], unit="UTF8_CHAR"),
    "substr": lambda s, t: s.substr(["hello", "world"], [1, -3], [2, 2]),
    "substr_chars": lambda s, t: s.substr("héllo", 1, 2, unit="UTF8_CHAR"),
    "substr_past_end": lambda s, t: s.substr("hello", 3, 10),
    "strip": lambda s, t: s.strip([" \ta b\n ", "x"]),
    "to_number": lambda s, t: s.to_number(["1.5", " 2", "-3e2"]),
    "to_number_int64": lambda s, t: s.to_number(["12", "-3"], out_type=t.int64),
    "as_string_float": lambda s, t: s.as_string([1.5, -2.25]),
    "as_string_int": lambda s, t: s.as_string([[3, -4]]),
    "as_string_precision": lambda s, t: s.as_string([3.14159], precision=2),
    "as_string_scientific": lambda s, t: s.as_string([1234.5], scientific=True),
    "as_string_shortest": lambda s, t: s.as_string([0.1, 100000.0, 1e7], shortest=True),
    "as_string_width_zero": lambda s, t: s.as_string([7, 42], width=5, fill="0"),
    "as_string_width": lambda s, t: s.as_string([7.5], width=10),
    "as_string_bool": lambda s, t: s.as_string([True, False]),
    "format": lambda s, t: s.format("x={} y={}", (t.constant(1), t.constant([1.5, 2.0]))),
    "format_strings": lambda s, t: s.format("s={}", t.constant(["ab", "c"])),
    "format_summarize": lambda s, t: s.format("{}", t.range(10), summarize=2),
    "join": lambda s, t: s.join([["a", "b"], ["c", "d"]], separator="-"),
    "upper": lambda s, t: s.upper(["abc"]),
    "regex_replace": lambda s, t: s.regex_replace(["a<br />b"], "<br />", " "),
    # Patterns without an ONNX formulation run through Python's re on concrete tensors.
    "regex_replace_whitespace": lambda s, t: s.regex_replace(["a  b\tc", " x"], r"\s+", " "),
    "regex_replace_groups": lambda s, t: s.regex_replace([["ab12cd"]], r"([a-z]+)(\d+)", r"\2-\1\\\0"),
    "regex_replace_first": lambda s, t: s.regex_replace("a1b22c", r"\d+", "#", replace_global=False),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_strings_function_matches_tensorflow(case, rtf):
    fn = CASES[case]
    _same(fn(tf.strings, tf).numpy(), fn(rtf.strings, rtf).numpy())


def test_strings_functions_without_tensorflow():
    # The tutorials' uses, written out (TensorFlow's documented results).
    assert tf.strings.reduce_join([["a", "b"], ["c", "d"]], axis=-1).numpy().tolist() == [b"ab", b"cd"]
    assert tf.strings.unicode_split("aé", "UTF-8").numpy().tolist() == [b"a", "é".encode()]
    assert tf.strings.length("aé").numpy() == 3 and tf.strings.length("aé", unit="UTF8_CHAR").numpy() == 2
    assert tf.strings.to_number(["2.5"]).numpy().tolist() == [2.5]


def test_bad_arguments_are_refused_by_name():
    with pytest.raises(ValueError, match="different lengths.*RaggedTensor"):
        tf.strings.unicode_split(["abc", "de"], "UTF-8")
    with pytest.raises(NotImplementedError, match="only UTF-8.*input_encoding='UTF-16-BE'"):
        tf.strings.unicode_split("ab", "UTF-16-BE")
    with pytest.raises(ValueError, match="unit.*'CHAR'"):
        tf.strings.length("ab", unit="CHAR")
    with pytest.raises(tf.errors.InvalidArgumentError, match="pos 7 out of range"):
        tf.strings.substr("hello", 7, 1)
    with pytest.raises(tf.errors.InvalidArgumentError, match="could not correctly convert string: abc"):
        tf.strings.to_number(["abc"])
    with pytest.raises(TypeError, match="must be a string tensor.*float"):
        tf.strings.reduce_join(np.ones(2))
    with pytest.raises(tf.errors.InvalidArgumentError, match="axis 2 is out of range"):
        tf.strings.reduce_join(["a"], axis=2)
    with pytest.raises(tf.errors.InvalidArgumentError, match="2 placeholders.*1 inputs"):
        tf.strings.format("{} {}", [tf.constant(1)])


def test_traced_tensor_is_refused_with_the_gap_named():
    @tf.function
    def f(x):
        return tf.strings.as_string(x)

    with pytest.raises(NotImplementedError, match="as_string.*traced into an ONNX graph.*concrete"):
        f(np.ones(2, np.float32))


def test_function_with_string_arguments_retraces_on_their_values():
    # The strings are constants of the trace; keyed by id, an array freed after one call could give its id to
    # the next one's, whose call then ran the old trace and returned the old string's length.
    @tf.function
    def f(s):
        return tf.strings.length(s)

    assert [int(f(tf.constant([w]))[0]) for w in ("ab", "abcd", "abcdef", "x", "ab")] == [2, 4, 6, 1, 2]
    assert len(f._traces) == 4


def test_dense_result_has_to_tensor():
    ids = tf.keras.layers.StringLookup(vocabulary=list("abc"))(tf.strings.unicode_split(["ab", "ca"], "UTF-8"))
    assert ids.to_tensor().tolist() == [[1, 2], [3, 1]]


def test_string_lookup_of_a_scalar_is_a_scalar(rtf):
    for t in (tf, rtf):
        chars_from_ids = t.keras.layers.StringLookup(vocabulary=list("abc"), invert=True, mask_token=None)
        ids_from_chars = t.keras.layers.StringLookup(vocabulary=list("abc"))
        assert chars_from_ids(t.constant(2)).numpy() == b"b"
        assert chars_from_ids(t.constant([[2, 9]])).numpy().tolist() == [[b"b", b"[UNK]"]]
        assert int(ids_from_chars(t.constant("b"))) == 2 and ids_from_chars(t.constant("b")).shape == ()


# ------------------------------------------------------------------------------------------ tf.sparse
def test_sparse_to_dense_matches_tensorflow(rtf):
    for kwargs in ({"indices": [[0, 1], [2, 0]], "values": [5.0, 7.0], "dense_shape": [3, 2]},
                   {"indices": np.array([[1]]), "values": [-float("inf")], "dense_shape": [4]}):
        mine = tf.sparse.to_dense(tf.SparseTensor(**kwargs))
        theirs = rtf.sparse.to_dense(rtf.SparseTensor(**kwargs))
        _same(mine.numpy(), theirs.numpy())
    sp = tf.SparseTensor(indices=[[1]], values=[3], dense_shape=[3])
    assert tf.sparse.to_dense(sp, default_value=-1).numpy().tolist() == [-1, 3, -1] and sp.shape == (3,)


def test_sparse_bad_arguments():
    with pytest.raises(ValueError, match=r"indices.*shape \(N, 2\)"):
        tf.SparseTensor(indices=[0, 1], values=[1.0, 2.0], dense_shape=[2, 2])
    with pytest.raises(ValueError, match=r"values.*\(1,\)"):
        tf.SparseTensor(indices=[[0]], values=[1.0, 2.0], dense_shape=[2])
    with pytest.raises(tf.errors.InvalidArgumentError, match="out of bounds"):
        tf.sparse.to_dense(tf.SparseTensor(indices=[[5]], values=[1.0], dense_shape=[2]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="repeated"):
        tf.sparse.to_dense(tf.SparseTensor(indices=[[1], [1]], values=[1.0, 2.0], dense_shape=[2]))


def test_string_tensors_have_tf_string_dtype():
    """``t.dtype == tf.string`` holds for string tensors (eager, ``.numpy()``, traced) and for nothing else, while
    ``tf.string`` still works wherever the name "string" does."""
    text = tf.constant(["a", "bc"])
    assert text.dtype == tf.string and not (text.dtype != tf.string)
    assert text.numpy().dtype == tf.string
    assert tf.constant([1.0]).dtype != tf.string and tf.constant([1]).dtype != tf.string
    assert tf.string == "string" and {"string": 1}[tf.string] == 1 and tf.string.name == "string"

    @tf.function
    def is_text(x):
        return x.dtype == tf.string, x.dtype == tf.float32

    assert is_text(text) == (True, False)
    assert is_text(np.float32([1.0])) == (False, True)
    assert tf.constant(["x"], dtype=tf.string).numpy().tolist() == [b"x"]
