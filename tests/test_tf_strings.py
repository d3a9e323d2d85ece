"""``tf.strings`` (``onnxforge.ops.strings``) and ``TextVectorization(standardize=<function>)``: the
``custom_standardization`` of TensorFlow's text tutorials, traced into the graph."""
from __future__ import annotations

import re
import string

import numpy as np
import onnx
import pytest

import onnxforge as tf
from onnxforge import keras

TEXTS = np.array(["This movie was <br />GREAT!", "Terrible, awful film.", "", "<br /><br />a-b", "I loved it"])


def custom_standardization(input_data):
    lowercase = tf.strings.lower(input_data)
    stripped_html = tf.strings.regex_replace(lowercase, "<br />", " ")
    return tf.strings.regex_replace(stripped_html, f"[{re.escape(string.punctuation)}]", "")


def _reference(text: str) -> str:
    text = "".join(c.lower() if "A" <= c <= "Z" else c for c in text)
    text = text.replace("<br />", " ")
    return re.sub(f"[{re.escape(string.punctuation)}]", "", text)


@pytest.mark.parametrize("pattern, rewrite, replace_global", [
    ("<br />", " ", True), ("<br />", "", False), ("ab", "abab", True), ("[,.!]", "", True), ("a|b|-", "_", True),
    ("[a-c]", "#", True)])
def test_regex_replace_matches_re_sub(pattern, rewrite, replace_global):
    texts = np.array(["ab,ab.!", "", "xaby", "<br /><br />abc", "a-b-c"])
    got = tf.strings.regex_replace(texts, pattern, rewrite, replace_global=replace_global)
    expected = [re.sub(pattern, rewrite, t, count=0 if replace_global else 1) for t in texts]
    assert np.asarray(got).tolist() == expected


def test_case_join_and_full_match():
    assert np.asarray(tf.strings.lower(TEXTS)).tolist() == [t.lower() for t in TEXTS]
    assert np.asarray(tf.strings.upper(TEXTS[:2].reshape(2, 1))).tolist() == [[TEXTS[0].upper()], [TEXTS[1].upper()]]
    assert np.asarray(tf.strings.join([TEXTS, TEXTS], separator="|")).tolist() == [f"{t}|{t}" for t in TEXTS]
    assert np.asarray(tf.strings.regex_full_match(TEXTS, ".*movie.*")).tolist() == [True, False, False, False, False]


def test_unsupported_patterns_are_refused_by_name():
    # The graph op refuses them; tf.strings.regex_replace runs them through Python's re on concrete tensors
    # only (tests/test_tf_strings_bytes.py), so inside a graph they are refused too.
    from onnxforge.ops import strings as string_ops

    with pytest.raises(NotImplementedError, match=r"\\\\s\+"):
        string_ops.regex_replace(TEXTS, r"\s+", " ")
    with pytest.raises(NotImplementedError, match="holding a character"):
        string_ops.regex_replace(TEXTS, "[ab]", "b")
    layer = keras.layers.TextVectorization(standardize=lambda x: tf.strings.regex_replace(x, r"\s+", " "))
    with pytest.raises(NotImplementedError, match=r"\\\\s\+"):
        layer.adapt(TEXTS)
        layer(TEXTS)
    assert np.asarray(tf.strings.regex_replace(TEXTS[:2], r"\s+", "_")).tolist() == [
        re.sub(r"\s+", "_", t) for t in TEXTS[:2]]
    with pytest.raises(ValueError, match="non-empty"):
        tf.strings.regex_replace(TEXTS, "", " ")


def _vectorizer():
    layer = keras.layers.TextVectorization(standardize=custom_standardization, max_tokens=50,
                                           output_sequence_length=6)
    layer.adapt(tf.data.Dataset.from_tensor_slices(TEXTS).batch(2))
    return layer


def test_text_vectorization_with_a_custom_standardization(tmp_path):
    layer = _vectorizer()
    tokens = [w for t in TEXTS for w in _reference(t).split()]
    counts = {w: tokens.count(w) for w in tokens}
    # Keras's order (checked against Keras on TensorFlow): by count, ties by the token, both descending.
    expected_vocab = [w for w, _ in sorted(counts.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)]
    assert layer.get_vocabulary() == ["", "[UNK]"] + expected_vocab
    vocab = layer.get_vocabulary()
    ids = np.asarray(layer(TEXTS[:2].reshape(2, 1)))
    expected = [[vocab.index(w) for w in _reference(t).split()][:6] for t in TEXTS[:2]]
    assert ids.tolist() == [row + [0] * (6 - len(row)) for row in expected]

    # As the tutorial's export model: the standardization runs inside the ONNX graph.
    model = keras.Sequential([layer, keras.layers.Embedding(51, 4), keras.layers.GlobalAveragePooling1D(),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy")
    model.fit(TEXTS, np.array([1, 0, 0, 1, 1], np.float32), epochs=1, verbose=0)
    predicted = model.predict(np.array(["I LOVED it!", "awful."]), verbose=0)
    assert predicted.shape == (2, 1)
    onnx.checker.check_model(model.compiled_programs["infer"].model, full_check=True)

    path = str(tmp_path / "text.keras")
    model.save(path)
    loaded = keras.models.load_model(path, custom_objects={"custom_standardization": custom_standardization})
    np.testing.assert_allclose(loaded.predict(np.array(["I LOVED it!", "awful."]), verbose=0), predicted, rtol=1e-6)
    assert model.layers[0].get_config()["standardize"]["config"] == "custom_standardization"
    with pytest.raises(ValueError, match="custom_standardization"):
        keras.models.load_model(path)


def _graph_split(text: str, sep, maxsplit) -> list:
    """``tf.strings.split`` of a traced string (a graph input): ONNX StringSplit run by onnxruntime."""
    import onnxruntime as ort

    from onnxforge.graph import GraphBuilder
    from onnxforge.tracing import TraceContext
    from tests.conftest import check_full

    b = GraphBuilder()
    with TraceContext(b, training=False).active():
        s = b.input("s", onnx.TensorProto.STRING, ())
        b.output(tf.strings.split(s, sep, maxsplit), "pieces")
        b.output(tf.strings.to_number(tf.strings.split(s), out_type=tf.float32) if text[0].isdigit()
                 else tf.strings.split(s), "numbers")
    model = check_full(b.to_model())
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return [o.tolist() for o in session.run(None, {"s": np.array(text, dtype=object)})]


@pytest.mark.parametrize("text, sep, maxsplit", [("hello  world foo", None, -1), ("1 10 100", " ", -1),
                                                 ("a,b,,c", ",", -1), ("a,b,,c", ",", 2), (" x ", None, -1)])
def test_split_of_a_traced_scalar_string(text, sep, maxsplit):
    rtf = pytest.importorskip("tensorflow")
    want = [p.decode() for p in rtf.strings.split(rtf.constant(text), sep, maxsplit).numpy().tolist()]
    pieces, numbers = _graph_split(text, sep, maxsplit)
    assert pieces == want == text.split(sep, maxsplit)
    if text[0].isdigit():
        assert numbers == rtf.strings.to_number(rtf.strings.split(rtf.constant(text))).numpy().tolist()


def test_split_of_a_traced_tensor_of_strings_names_the_ragged_gap():
    from onnxforge.graph import GraphBuilder
    from onnxforge.tracing import TraceContext

    b = GraphBuilder()
    with TraceContext(b, training=False).active():
        s = b.input("s", onnx.TensorProto.STRING, (2,))
        with pytest.raises(NotImplementedError, match="RaggedTensor.*Split each string"):
            tf.strings.split(s)
