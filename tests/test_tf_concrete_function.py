"""``tf.function`` introspection (``tf_compat/concrete_function.py``) and its retracing rules, as TensorFlow's
tf.function guide shows them with a print counter, checked against TensorFlow itself."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as tf


@pytest.fixture(scope="module")
def rtf():
    return pytest.importorskip("tensorflow")


def _traces(t, calls, **options):
    """How many times ``f`` is traced over ``calls`` (each a tuple of arguments)."""
    count = [0]

    @t.function(**options)
    def f(x):
        count[0] += 1
        return x
    for args in calls:
        f(*args)
    return count[0], f.experimental_get_tracing_count()


def test_retracing_rules_match_tensorflow(rtf):
    calls = [lambda t: (1,), lambda t: (2,), lambda t: (1,), lambda t: (1.5,),
             lambda t: (t.constant([1, 2]),), lambda t: (t.constant([3, 4]),), lambda t: (t.constant([1, 2, 3]),),
             lambda t: (t.constant([1.0, 2.0]),), lambda t: (np.int32(4),), lambda t: (np.int32(5),),
             lambda t: (np.array([1.0, 2.0], np.float32),), lambda t: (np.array([3.0, 4.0], np.float32),)]
    assert _traces(tf, [c(tf) for c in calls]) == _traces(rtf, [c(rtf) for c in calls]) == (7, 7)


@pytest.mark.parametrize("option", ["reduce_retracing", "experimental_relax_shapes"])
def test_reduce_retracing_traces_one_shape_with_unknown_dims(rtf, option):
    def program(t):
        seen = []

        @t.function(**{option: True})
        def g(x):
            seen.append(str(x.shape))
            return x * 2
        out = [g(t.constant(v)) for v in ([1, 2], [1, 2, 3], [1, 2, 3, 4, 5], [[1, 2]])]
        return [np.asarray(o).tolist() for o in out], seen

    ours, theirs = program(tf), program(rtf)
    assert ours[0] == theirs[0]
    assert ours[1][:2] == theirs[1][:2] == ["(2,)", "(None,)"]
    assert len(ours[1]) == 3   # a new rank is traced exactly here (TensorFlow relaxes it to an unknown rank)


def test_get_concrete_function_with_specs_and_tensors(rtf):
    def program(t):
        @t.function
        def double(a):
            return a + a
        by_spec = double.get_concrete_function(t.TensorSpec(shape=[None], dtype=t.float32))
        by_value = double.get_concrete_function(t.constant(2))
        by_python = double.get_concrete_function(3)
        results = [by_spec(t.constant([1.0, 2.0])), by_spec(a=t.constant([3.0])), by_value(t.constant(5)),
                   by_python(), double(t.constant([7.0, 8.0, 9.0]))]
        signatures = [c.structured_input_signature for c in (by_spec, by_value, by_python)]
        return results, signatures, double.experimental_get_tracing_count(), by_spec

    ours, theirs = program(tf), program(rtf)
    for g, w in zip(ours[0], theirs[0]):
        w = w.numpy()
        assert np.asarray(g).dtype == w.dtype and np.asarray(g).shape == w.shape
        np.testing.assert_allclose(g, w)
    for g, w in zip(ours[1], theirs[1]):
        assert repr(g[0]).replace("tf.", "") == repr(w[0]).replace("tf.", "") and g[1] == w[1] == {}
    assert ours[2] == theirs[2] == 3   # the [None] spec trace serves the later 3-element call
    with pytest.raises(tf.errors.InvalidArgumentError, match="argument 'a' was traced for.*int32"):
        ours[3](tf.constant([1, 2]))
    with pytest.raises(rtf.errors.InvalidArgumentError):
        theirs[3](rtf.constant([1, 2]))


def test_concrete_function_graph_and_outputs():
    @tf.function
    def f(x, scale):
        return {"y": x * scale, "n": 3}

    c = f.get_concrete_function(tf.TensorSpec([None, 2], tf.float32), 2.0)
    ops = [node.op_type for node in c.graph.as_graph_def().node]
    assert "Mul" in ops and c.graph.inputs and c.graph.get_operations()
    out = c.structured_outputs
    assert out["n"] == 3 and out["y"].dtype in ("float32", tf.float32) and out["y"].shape[-1] == 2
    np.testing.assert_allclose(c(np.ones((3, 2), np.float32))["y"], 2 * np.ones((3, 2)))
    with pytest.raises(tf.errors.InvalidArgumentError, match="shape \\(3,\\)"):
        c(np.ones(3, np.float32))
    with pytest.raises(TypeError, match="missing the tensor argument 'x'"):
        c()


def test_input_signature_concrete_function():
    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32)])
    def inc(x):
        return x + 1
    c = inc.get_concrete_function()
    assert c(np.array([1, 2], np.int32)).tolist() == [2, 3]
    assert inc(np.array([5], np.int32)).tolist() == [6] and inc.experimental_get_tracing_count() == 1


def test_eager_tensor_shape_is_a_tensor_shape(rtf):
    def program(t):
        x = t.constant([[1.0, 2.0, 3.0]])
        s = t.TensorShape([None, 3])
        return [x.shape.as_list(), x.shape.rank, x.shape.num_elements(), str(x.shape), x.shape == (1, 3),
                s.is_compatible_with([4, 3]), s.is_compatible_with([4, 2]), s.merge_with([4, None]).as_list(),
                t.TensorShape(None).is_compatible_with([1]), isinstance(x.shape, t.TensorShape)]

    assert program(tf) == program(rtf)
    with pytest.raises(ValueError, match="not compatible"):
        tf.TensorShape([2]).merge_with([3])
    x = tf.constant([1.0, 2.0])
    x.shape = (2, 1)   # numpy's in-place reshape still works
    assert x.shape.as_list() == [2, 1]


def test_guide_double_with_numbers_and_strings(rtf):
    """The tf.function guide's first cells: one trace per dtype for numbers; strings concatenate (a string
    argument is a constant of its trace here, keyed by value: tf.strings runs on the host)."""
    def program(t):
        @t.function
        def double(a):
            return a + a
        out = [double(t.constant(1)), double(t.constant(1.1)), double(t.constant(2))]
        count = double.experimental_get_tracing_count()
        out += [double(t.constant("a")), double(t.constant("bc"))]
        strings = double.get_concrete_function(t.TensorSpec(shape=[], dtype=t.string))
        out += [strings(t.constant("c")), strings(a=t.constant("d"))]
        return [np.asarray(o).tolist() for o in out], count, strings

    ours, theirs = program(tf), program(rtf)
    decode = lambda v: v.decode() if isinstance(v, bytes) else v  # noqa: E731
    assert [decode(v) for v in ours[0]] == [decode(v) for v in theirs[0]]
    assert ours[1] == theirs[1] == 2
    with pytest.raises(tf.errors.InvalidArgumentError, match="dtype=tf.string"):
        ours[2](tf.constant(1))
