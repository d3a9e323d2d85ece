"""``import onnxforge as tf``: the scatter / index functions (``tf.tensor_scatter_nd_*``, ``tf.unravel_index``,
``tf.histogram_fixed_width``, ``tf.unique_with_counts``, ``tf.reverse_sequence``) and the ``tf.math`` /
``tf.nn`` / ``tf.linalg`` functions added with them give TensorFlow's values, dtypes and shapes (checked
against TensorFlow itself) on arrays, in a functional model (exported and fully checked) and under a
``GradientTape`` in a ``tf.function``; bad indices raise ``tf.errors.InvalidArgumentError`` as TensorFlow's do."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

import onnxforge as tf
from onnxforge import keras

rtf = pytest.importorskip("tensorflow")

T = np.arange(12, dtype="float32").reshape(4, 3)
I32 = np.array([1, 5, 3, -2], "int32")
IMG = np.linspace(-1.0, 1.0, 2 * 5 * 5 * 3, dtype="float32").reshape(2, 5, 5, 3)
DW = np.linspace(-0.5, 0.5, 3 * 3 * 3 * 2, dtype="float32").reshape(3, 3, 3, 2)
PW = np.linspace(-1.0, 1.0, 6 * 4, dtype="float32").reshape(1, 1, 6, 4)
GAMMA_X = np.array([-2.5, -1.3, -0.5, 1e-4, 0.1, 0.5, 1.0, 1.5, 2.0, 3.7, 10.0, 50.0, 1e3], "float32")
BOXES = np.array([[0, 0, 1, 1], [0, 0.1, 1, 1.1], [0, -0.1, 1, 0.9], [0, 10, 1, 11], [1, 1, 0, 0],
                  [0, 10.1, 1, 11.1], [5, 5, 6, 6]], "float32")
SCORES = np.array([0.9, 0.75, 0.6, 0.95, 0.5, 0.8, 0.3], "float32")
A3 = np.arange(24, dtype="int32").reshape(2, 3, 4)
UPK = np.linspace(-0.5, 0.5, 3 * 3 * 4 * 3, dtype="float32").reshape(3, 3, 4, 3)


def _get(root, path):
    for part in path.split("."):
        root = getattr(root, part)
    return root


CASES = [
    ("tensor_scatter_nd_update", (T, [[1], [3]], np.ones((2, 3), "float32")), {}),
    ("tensor_scatter_nd_update", (T, [[0, 2], [2, 1]], [7.0, 8.0]), {}),
    ("tensor_scatter_nd_update", (I32, np.array([[0], [3]], "int64"), [9, 9]), {}),
    ("tensor_scatter_nd_add", (T, [[1, 1], [1, 1], [3, 0]], [5.0, 2.0, -1.0]), {}),
    ("tensor_scatter_nd_add", (T, [[2]], [[1, 2, 3]]), {}),
    ("tensor_scatter_nd_sub", (I32, [[1], [1], [2]], [1, 2, 3]), {}),
    ("tensor_scatter_nd_max", (I32, [[0], [1], [3]], [4, 4, 4]), {}),
    ("tensor_scatter_nd_min", (T, [[0], [3]], [[5.0, 0.0, 1.0], [0.0, 20.0, 10.0]]), {}),
    ("unravel_index", ([1, 5, 7, 11], [3, 4]), {}), ("unravel_index", (5, [3, 4]), {}),
    ("unravel_index", (np.array([0, 23, 7, 12], "int64"), [2, 3, 4]), {}),
    ("histogram_fixed_width", ([-1.0, 0.0, 1.5, 2.0, 5.0, 15.0], [0.0, 5.0]), {"nbins": 5}),
    ("histogram_fixed_width", (T, [2.0, 8.0]), {"nbins": 4, "dtype": "int64"}),
    ("histogram_fixed_width_bins", ([-1.0, 0.0, 1.5, 2.0, 5.0, 15.0], [0.0, 5.0]), {"nbins": 5}),
    ("unique_with_counts", ([1, 1, 2, 4, 4, 4, 7, 8, 8],), {}),
    ("unique_with_counts", (np.array([3.0, 1.0, 3.0], "float32"),), {"out_idx": "int64"}),
    ("reverse_sequence", ([[1, 2, 3], [4, 5, 6]], [2, 3]), {"seq_axis": 1, "batch_axis": 0}),
    ("reverse_sequence", (np.arange(24).reshape(2, 3, 4), [2, 4, 1]), {"seq_axis": 2, "batch_axis": 1}),
    ("reverse_sequence", (np.arange(6).reshape(3, 2), [0, 3]), {"seq_axis": 0, "batch_axis": 1}),
    ("math.rint", (np.array([0.5, 1.5, -2.5, 2.7], "float32"),), {}),
    ("math.erfc", (np.array([-1.0, 0.5, 3.0], "float32"),), {}),
    ("math.xlog1py", (np.array([0.0, 2.0, 1.5], "float32"), np.array([-1.0, 1.0, 0.5], "float32")), {}),
    ("math.polyval", ([1.0, 2.0, 3.0], np.array([1.0, 2.0, -0.5], "float32")), {}),
    ("math.zero_fraction", ([0, 1, 0, 3],), {}), ("math.zero_fraction", (T,), {}),
    ("math.invert_permutation", ([3, 4, 0, 2, 1],), {}),
    ("math.is_non_decreasing", ([1, 2, 2],), {}), ("math.is_strictly_increasing", ([1, 2, 2],), {}),
    ("math.is_strictly_increasing", (T,), {}),
    ("math.confusion_matrix", ([1, 2, 4], [2, 2, 4]), {}),
    ("math.confusion_matrix", ([1, 0, 1], [1, 1, 1]), {"num_classes": 3, "weights": [0.5, 1.0, 2.0],
                                                      "dtype": "float32"}),
    ("scalar_mul", (2, I32), {}), ("math.scalar_mul", (0.5, T), {}),
    ("truncatediv", (I32, np.int32(-2)), {}), ("truncatemod", (I32, np.int32(3)), {}),
    ("math.add_n", ([T, T, T],), {}),
    ("linalg.normalize", (T,), {"axis": 1}), ("linalg.normalize", (T,), {"ord": 1}),
    ("nn.batch_normalization", (T, 2.0, 4.0, None, None, 1e-3), {}),
    ("nn.batch_normalization", (T, T.mean(0), T.var(0), np.ones(3, "float32"), np.full(3, 2.0, "float32"), 0.01),
     {}),
    ("nn.l2_loss", (T,), {}),
    ("nn.weighted_cross_entropy_with_logits", (), {"labels": T / 12.0, "logits": T - 6.0, "pos_weight": 2.0}),
    ("nn.crelu", (T - 5.0,), {}), ("nn.crelu", (T - 5.0,), {"axis": 0}),
    ("nn.lrn", (IMG,), {"depth_radius": 1, "bias": 2.0, "alpha": 0.5, "beta": 0.75}),
    ("nn.local_response_normalization", (IMG,), {}),
    ("nn.top_k", (T, 2), {}), ("nn.in_top_k", (), {"targets": [0, 2], "predictions": T[:2], "k": 1}),
    ("nn.depthwise_conv2d", (IMG, DW, [1, 1, 1, 1], "SAME"), {}),
    ("nn.depthwise_conv2d", (IMG, DW, [1, 2, 2, 1], "VALID"), {}),
    ("nn.conv2d_transpose", (IMG, UPK, [2, 10, 10, 4], [1, 2, 2, 1]), {}),
    ("nn.conv2d_transpose", (IMG, UPK, [2, 11, 11, 4], 2), {"padding": "VALID"}),
    ("strided_slice", (A3, [0, 1, -1], [2, 3, 0], [1, 1, -2]), {"begin_mask": 1}),
    ("strided_slice", (A3, [1, 0], [2, 0], [1, 1]), {"ellipsis_mask": 2, "shrink_axis_mask": 1}),
    ("strided_slice", (A3, [0, 0, 1], [0, 0, 3]), {"new_axis_mask": 2, "end_mask": 1}),
    ("ensure_shape", (T, [None, 3]), {}), ("get_static_value", (I32,), {}), ("get_static_value", ([1, 2],), {}),
    ("broadcast_dynamic_shape", ([3, 1], [1, 4]), {}), ("shape_n", ([T, I32],), {}),
    ("saturate_cast", (np.array([-300.0, 5.5, 300.0], "float32"), "uint8"), {}),
    ("vectorized_map", (lambda r: r * 2.0, T), {}),
    ("math.cumulative_logsumexp", (np.array([1.0, 2.0, 3.0], "float32"),), {"exclusive": True}),
    ("math.cumulative_logsumexp", (T * 10.0,), {"axis": 1, "reverse": True}),
    ("signal.hamming_window", (5,), {}), ("signal.hamming_window", (6,), {}),
    ("signal.hamming_window", (6,), {"periodic": False}), ("signal.fftshift", (np.arange(5),), {}),
    ("signal.ifftshift", (A3,), {"axes": [1, 2]}), ("image.transpose", (IMG,), {}),
    ("image.transpose", (IMG[0],), {}),
    ("nn.separable_conv2d", (IMG, DW, PW, [1, 1, 1, 1], "SAME"), {}),
    ("nn.compute_average_loss", (T[:, 0],), {}),
    ("nn.compute_average_loss", (T[:, 0],), {"sample_weight": [1.0, 0.0, 2.0, 1.0], "global_batch_size": 8}),
    ("nn.scale_regularization_loss", (T,), {}),
    ("nn.log_poisson_loss", (T / 4.0, T / 10.0 - 0.5), {}),
    ("nn.log_poisson_loss", (T / 4.0, T / 10.0 - 0.5), {"compute_full_loss": True}),
    ("nn.sufficient_statistics", (T, [0]), {}), ("nn.sufficient_statistics", (T, [0, 1], 2.0, True), {}),
    ("nn.normalize_moments", (4.0, T[0], T[1] * 10.0, None), {}),
    ("nn.normalize_moments", (4.0, T[0], T[1] * 10.0, 0.5), {}),
    ("nn.weighted_moments", (T, [0], np.array([[1.0], [0.0], [2.0], [1.0]], "float32")), {}),
    ("nn.weighted_moments", (T, [0, 1], np.zeros((4, 3), "float32")), {"keepdims": True}),
    ("math.lgamma", (GAMMA_X,), {}), ("math.lgamma", (GAMMA_X.astype("float64"),), {}),
    ("math.lgamma", (np.array([0.0, -1.0, -2.0], "float32"),), {}),
    ("math.digamma", (GAMMA_X,), {}), ("math.digamma", (np.array([0.0, -3.0], "float32"),), {}),
    ("math.lbeta", ([[1.0, 2.0], [3.0, 0.5]],), {}),
    ("space_to_batch_nd", (IMG[:, :4, :4], [2, 2], [[0, 0], [0, 0]]), {}),
    ("space_to_batch_nd", (IMG, [2, 3], [[1, 0], [0, 1]]), {}), ("space_to_batch", (IMG, [2], [[0, 1]]), {}),
    ("batch_to_space", (IMG[:, :4, :4], [2], [[1, 2]]), {}),
    ("nn.zero_fraction", (T,), {}), ("nn.space_to_batch", (IMG, [2], [[0, 1]]), {}),
    ("math.accumulate_n", ([T, T],), {}),
    ("image.non_max_suppression", (BOXES, SCORES, 10), {}),
    ("image.non_max_suppression", (BOXES, SCORES, 2), {"iou_threshold": 0.3}),
    ("image.non_max_suppression", (BOXES, SCORES, 10), {"iou_threshold": 0.9, "score_threshold": 0.5}),
    ("batch_to_space", (np.arange(2 * 3 * 4, dtype="int32").reshape(6, 2, 2), [3, 2], [[0, 1], [1, 0]]), {}),
]


def _compare(ours, theirs, label):
    if isinstance(theirs, (list, tuple)):
        assert isinstance(ours, (list, tuple)) and len(ours) == len(theirs), label
        if hasattr(theirs, "_fields"):
            assert ours._fields == theirs._fields, label
        for a, b in zip(ours, theirs):
            _compare(a, b, label)
        return
    if not hasattr(theirs, "numpy"):   # get_static_value's NumPy arrays
        assert np.asarray(ours).dtype == np.asarray(theirs).dtype, label
        assert np.array_equal(np.asarray(ours), np.asarray(theirs)), label
        return
    want, got = theirs.numpy(), np.asarray(ours)
    assert got.dtype == want.dtype, f"{label}: dtype {got.dtype} != {want.dtype}"
    assert got.shape == want.shape, f"{label}: shape {got.shape} != {want.shape}"
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6, err_msg=label)


@pytest.mark.parametrize("path,args,kwargs", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_eager_results_match_tensorflow(path, args, kwargs):
    _compare(_get(tf, path)(*args, **kwargs), _get(rtf, path)(*args, **kwargs), f"tf.{path}")


BAD = [
    ("tensor_scatter_nd_update", (T, [[5]], np.ones((1, 3), "float32")), "does not index into shape"),
    ("tensor_scatter_nd_add", (T, [[-1]], np.ones((1, 3), "float32")), "does not index into shape"),
    ("tensor_scatter_nd_update", (T, [[1]], np.ones((1, 2), "float32")), r"updates.shape=\[1, 2\]"),
    ("tensor_scatter_nd_update", (T, [[1, 1, 1]], [1.0]), "at most the rank"),
    ("tensor_scatter_nd_update", (T, [[1.0]], np.ones((1, 3), "float32")), "indices of dtype float32"),
    ("unravel_index", ([12], [3, 4]), "out of bound"),
    ("unravel_index", ([[1, 2]], [3, 4]), "scalar or vector"),
    ("math.invert_permutation", ([0, 0, 1],), "permutation"),
    ("nn.l2_loss", (np.array([1, 2], "int32"),), "dtype int32"),
    ("ensure_shape", (T, [4]), r"\[4,3\] is not compatible with expected shape \[4\]"),
    ("ensure_shape", (T, [4, 2]), "not compatible"),
    ("space_to_batch_nd", (IMG, [2, 2], [[0, 0], [0, 0]]), "divisible"),
    ("image.non_max_suppression", (BOXES, SCORES, 3, 1.5), "iou_threshold"),
]


@pytest.mark.parametrize("path,args,match", BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_bad_arguments_raise_invalid_argument_as_tensorflow(path, args, match):
    with pytest.raises(rtf.errors.InvalidArgumentError):
        _get(rtf, path)(*args)
    with pytest.raises(tf.errors.InvalidArgumentError, match=match):
        _get(tf, path)(*args)


def _program(t, x):
    """Functions a model's graph holds, written once for both modules (x: a (batch, 4, 3) float tensor)."""
    labels = t.tensor_scatter_nd_update(x, [[0, 0, 0], [1, 2, 1]], [10.0, -10.0])
    added = t.tensor_scatter_nd_add(x, [[0, 3], [0, 3]], t.ones((2, 3)))
    capped = t.tensor_scatter_nd_min(t.tensor_scatter_nd_max(x, [[1, 0]], [[0.5, 0.5, 0.5]]), [[0, 1]],
                                     [[-0.5, -0.5, -0.5]])
    rev = t.reverse_sequence(x, [2, 4], seq_axis=1, batch_axis=0)
    normed = t.nn.batch_normalization(x, 0.5, 2.0, 0.1, 3.0, 1e-3) + t.nn.crelu(x)[..., :3]
    hist = t.cast(t.histogram_fixed_width(x, [-1.0, 1.0], nbins=3), "float32")
    sliced = t.strided_slice(x, [0, 3, 0], [0, 0, 3], [1, -1, 1], begin_mask=1, end_mask=5)
    shifted = t.signal.fftshift(t.ensure_shape(x, [None, 4, 3]), axes=1)
    blocks = t.space_to_batch_nd(x, [2], [[1, 1]]) * t.reshape(t.range(36.0), (4, 3, 3)) / 100.0
    merged = t.batch_to_space(x, [2], [[0, 1]]) * t.reshape(t.range(7.0), (7, 1)) / 10.0
    shifted = shifted + t.reduce_sum(blocks) + t.reduce_sum(merged)
    return (labels + added + capped + rev + normed + t.math.xlog1py(x, t.abs(x)) + t.reduce_sum(hist)
            + t.pad(sliced, [[0, 0], [0, 1], [0, 0]]) + shifted + t.math.cumulative_logsumexp(x, axis=1))


def test_static_shapes_broadcast_as_tensorflow():
    for a, b in (([3, 1], [1, 4]), ([None, 1], [5]), ([2, None], [1]), ([None], [None, 1])):
        assert list(tf.broadcast_static_shape(tf.TensorShape(a), tf.TensorShape(b))) == \
            rtf.broadcast_static_shape(rtf.TensorShape(a), rtf.TensorShape(b)).as_list()
    with pytest.raises(ValueError, match="Incompatible shapes"):
        tf.broadcast_static_shape(tf.TensorShape([3, 2]), tf.TensorShape([1, 4]))
    assert tf.get_static_value(tf.Variable(1.0)) is None is rtf.get_static_value(rtf.Variable(1.0))


def test_in_a_functional_model_the_graph_matches_tensorflow_and_checks(tmp_path, checked):
    x = np.linspace(-1.5, 1.5, 24, dtype="float32").reshape(2, 4, 3)
    inp = keras.Input((4, 3), batch_size=2)
    model = keras.Model(inp, keras.layers.Lambda(lambda v: _program(tf, v))(inp))
    want = _program(rtf, rtf.constant(x)).numpy()
    np.testing.assert_allclose(np.asarray(model.predict(x, verbose=0)), want, rtol=2e-5, atol=2e-5)
    model.export(tmp_path / "m.onnx")
    exported = checked(onnx.load(tmp_path / "m.onnx"))
    assert {"ScatterND", "GatherElements"} <= {n.op_type for n in exported.graph.node}


def _gradients(t, x, u):
    with t.GradientTape() as tape:
        tape.watch([x, u])
        y = t.tensor_scatter_nd_update(x, [[1], [3]], u * 2.0)
        y = t.tensor_scatter_nd_add(y, [[0, 0], [0, 0]], t.reduce_sum(u, axis=1))
        y = t.tensor_scatter_nd_max(y, [[2]], u[:1] * 5.0)
        y = t.nn.batch_normalization(y, t.reduce_mean(y), 2.0, None, 1.5, 1e-3)
        loss = t.reduce_sum(y * y) + t.nn.l2_loss(t.nn.depthwise_conv2d(
            t.reshape(y, (1, 2, 6, 1)), t.ones((2, 2, 1, 2)), [1, 1, 1, 1], "SAME"))
    return tape.gradient(loss, [x, u])


def test_gradients_in_a_tf_function_match_tensorflow():
    x = np.linspace(-1.0, 1.0, 12, dtype="float32").reshape(4, 3)
    u = np.array([[0.3, -0.2, 0.5], [1.0, 0.1, -0.7]], "float32")
    want = rtf.function(lambda a, b: _gradients(rtf, a, b))(x, u)
    got = tf.function(lambda a, b: _gradients(tf, a, b))(x, u)
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), w.numpy(), rtol=1e-4, atol=1e-5)


def _lgamma_gradient(t, x):
    with t.GradientTape() as tape:
        tape.watch(x)
        y = t.reduce_sum(t.math.lgamma(x) + t.math.cumulative_logsumexp(x))
    return tape.gradient(y, x)


def test_lgammas_gradient_is_digamma_as_in_tensorflow():
    x = np.array([-1.5, 0.3, 1.0, 2.5, 7.0], "float32")
    want = rtf.function(lambda v: _lgamma_gradient(rtf, v))(x).numpy()
    np.testing.assert_allclose(np.asarray(tf.function(lambda v: _lgamma_gradient(tf, v))(x)), want, rtol=1e-5)


def _control(t, i, x):
    picked = t.switch_case(i, [lambda: x * 2.0, lambda: x + 1.0, lambda: -x])
    chosen = t.case([(t.reduce_sum(x) > 0, lambda: x), (t.reduce_sum(x) < -5, lambda: x * 0.0)],
                    default=lambda: x * 3.0)
    with t.control_dependencies([t.no_op()]):
        folded = t.foldl(lambda a, r: a * r, t.reshape(x, (2, 3))) + t.foldr(lambda a, r: a - r, t.reshape(x, (2, 3)),
                                                                           initializer=t.ones(3))
    return picked + chosen + t.tile(folded, [2])


@pytest.mark.parametrize("index,sign", [(0, 1.0), (2, -1.0), (7, 1.0)])
def test_switch_case_case_and_folds_match_tensorflow_eagerly_and_traced(index, sign):
    x = sign * np.linspace(0.5, 3.0, 6, dtype="float32")
    want = _control(rtf, rtf.constant(index), rtf.constant(x)).numpy()
    np.testing.assert_allclose(np.asarray(_control(tf, np.int32(index), x)), want, rtol=1e-6)
    got = tf.function(lambda i, v: _control(tf, i, v))(np.int32(index), x)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6)
    assert tf.group(tf.no_op()) is None and tf.tuple([x])[0] is x


def test_non_max_suppression_in_a_tf_function_matches_tensorflow():
    fn = lambda t, b, s: t.image.non_max_suppression(b, s, 4, iou_threshold=0.4)  # noqa: E731
    want = rtf.function(lambda b, s: fn(rtf, b, s))(BOXES, SCORES).numpy()
    got = np.asarray(tf.function(lambda b, s: fn(tf, b, s))(BOXES, SCORES))
    assert got.dtype == want.dtype and got.tolist() == want.tolist()
