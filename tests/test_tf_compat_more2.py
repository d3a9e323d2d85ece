"""``import onnxforge as tf``: ``tf.debugging``'s assertions, ``tf.gradients``, ``tf.nn.ctc_loss`` /
``ctc_greedy_decoder``, ``tf.image.crop_and_resize`` and the other functions added with them pass and fail
where TensorFlow's do (the same error types), give TensorFlow's values, dtypes and shapes (checked against
TensorFlow itself), and work inside a ``tf.function``."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as tf

rtf = pytest.importorskip("tensorflow")

V = np.array([1.0, 2.0, 3.0], "float32")
M = np.arange(6, dtype="int32").reshape(2, 3)
NAN = np.array([1.0, np.nan], "float32")


def _same_in_tf_functions(program, *args, rtol=1e-4, atol=1e-4) -> int:
    """``program(t, *args)``, a list of tensors, run in a ``t.function`` of TensorFlow and of onnxforge: the same
    within the tolerances. Returns how many tensors it gave."""
    want = rtf.function(lambda *a: program(rtf, *a))(*args)
    got = tf.function(lambda *a: program(tf, *a))(*args)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), w.numpy(), rtol=rtol, atol=atol)
    return len(got)


def _get(root, path):
    for part in path.split("."):
        root = getattr(root, part)
    return root


# (function, args, kwargs, the error both raise or None)
ASSERTIONS = [
    ("debugging.assert_equal", (V, V), {}, None), ("debugging.assert_equal", (V, [1.0, 2.0, 4.0]), {}, "invalid"),
    ("assert_equal", (M, 1), {}, "invalid"), ("debugging.assert_equal", (V, [1.0, 2.0]), {}, "invalid"),
    ("debugging.assert_none_equal", (V, [0.0, 2.0, 0.0]), {}, "invalid"),
    ("debugging.assert_none_equal", (V, 0.0), {}, None),
    ("assert_less", (V, 3.5), {}, None), ("debugging.assert_less", (V, 3.0), {}, "invalid"),
    ("debugging.assert_less_equal", (V, 3.0), {}, None), ("assert_greater", (M, -1), {}, None),
    ("assert_greater", (M, 0), {}, "invalid"), ("debugging.assert_greater_equal", (M, 0), {}, None),
    ("debugging.assert_near", (V, V + 1e-7), {}, None), ("debugging.assert_near", (V, V + 1e-3), {}, "invalid"),
    ("debugging.assert_near", (V, V + 1e-3), {"atol": 1e-2}, None),
    ("debugging.assert_positive", (V,), {}, None), ("debugging.assert_positive", (V - 1.0,), {}, "invalid"),
    ("debugging.assert_negative", (-V,), {}, None), ("debugging.assert_non_negative", (M,), {}, None),
    ("debugging.assert_non_positive", (M,), {}, "invalid"),
    ("assert_rank", (M, 2), {}, None), ("assert_rank", (V, 2), {}, ValueError),
    ("debugging.assert_rank_at_least", (M, 1), {}, None), ("debugging.assert_rank_at_least", (V, 2), {}, ValueError),
    ("debugging.assert_rank_in", (V, [0, 1]), {}, None), ("debugging.assert_rank_in", (M, [0, 1]), {}, ValueError),
    ("debugging.assert_scalar", (V,), {}, ValueError), ("debugging.assert_integer", (V,), {}, TypeError),
    ("debugging.assert_integer", (M,), {}, None), ("debugging.assert_type", (M, "int32"), {}, None),
    ("debugging.assert_type", (V, "int32"), {}, TypeError),
    ("debugging.assert_shapes", ([(V, ("N",)), (M, (2, "N"))],), {}, None),
    ("debugging.assert_shapes", ([(V, ("N",)), (M, ("N", 3))],), {}, ValueError),
    ("debugging.assert_shapes", ([(M, ("N",))],), {}, ValueError),
    ("debugging.assert_shapes", ([(M, (".", 3)), (V, (3,))],), {}, None),
    ("debugging.check_numerics", (NAN, "bad"), {}, "invalid"), ("debugging.check_numerics", (V, "ok"), {}, None),
    ("debugging.check_numerics", (M, "ints"), {}, "invalid"),
    ("debugging.assert_all_finite", (np.array([np.inf], "float32"), "inf"), {}, "invalid"),
    ("Assert", (False, [V]), {}, "invalid"), ("debugging.Assert", (True, [V]), {}, None),
    ("debugging.assert_proper_iterable", ("abc",), {}, TypeError),
    ("debugging.assert_proper_iterable", ([V],), {}, None),
]


@pytest.mark.parametrize("path,args,kwargs,error", ASSERTIONS, ids=[f"{a[0]}-{i}" for i, a in enumerate(ASSERTIONS)])
def test_assertions_pass_and_fail_as_tensorflows_eagerly(path, args, kwargs, error):
    if error is None:
        want = _get(rtf, path)(*args, **kwargs)
        got = _get(tf, path)(*args, **kwargs)
        if want is None:
            assert got is None, path
        else:   # check_numerics returns its tensor
            np.testing.assert_array_equal(np.asarray(got), want.numpy())
        return
    ours, theirs = (tf.errors.InvalidArgumentError, rtf.errors.InvalidArgumentError) if error == "invalid" \
        else (error, error)
    with pytest.raises(theirs):
        _get(rtf, path)(*args, **kwargs)
    with pytest.raises(ours):
        _get(tf, path)(*args, **kwargs)


def test_assertion_messages_carry_the_callers_message_and_tensorflows_wording():
    with pytest.raises(tf.errors.InvalidArgumentError, match="(?s)labels.*Condition x == y did not hold"):
        tf.debugging.assert_equal(M, 0, message="labels")
    with pytest.raises(tf.errors.InvalidArgumentError, match="bad : Tensor had NaN values"):
        tf.debugging.check_numerics(NAN, "bad")
    with pytest.raises(ValueError, match=r"must have rank 3.  Received rank 1"):
        tf.debugging.assert_rank(V, 3)


def test_in_a_tf_function_static_checks_run_at_trace_time_and_run_time_values_pass_through():
    def checked(t, x):
        t.debugging.assert_rank(x, 1)
        t.debugging.assert_shapes([(x, ("N",))])
        t.debugging.assert_equal(t.constant(2), 2)
        with t.control_dependencies([t.debugging.assert_non_negative(x)]):
            return t.debugging.check_numerics(x * 2.0, "doubled")

    want = rtf.function(lambda v: checked(rtf, v))(V).numpy()
    np.testing.assert_array_equal(np.asarray(tf.function(lambda v: checked(tf, v))(V)), want)

    def wrong_rank(t, x):
        t.debugging.assert_rank(x, 2)
        return x

    with pytest.raises(ValueError, match="must have rank 2"):
        rtf.function(lambda v: wrong_rank(rtf, v))(V)
    with pytest.raises(ValueError, match="must have rank 2"):
        tf.function(lambda v: wrong_rank(tf, v))(V)

    def known_values(t, x):
        t.debugging.assert_equal(t.constant([1, 2]), [1, 3])
        return x

    with pytest.raises(rtf.errors.InvalidArgumentError):
        rtf.function(lambda v: known_values(rtf, v))(V)
    with pytest.raises(tf.errors.InvalidArgumentError):
        tf.function(lambda v: known_values(tf, v))(V)


def _symbolic_gradients(t, x, w):
    h = t.tanh(x * w)
    y1, y2 = t.reduce_sum(h * h), h * 3.0
    both = t.gradients([y1, y2], [x, w], grad_ys=[None, t.ones_like(y2) * 0.5])
    unconnected = t.gradients(y1, [x, t.constant(1.0)], unconnected_gradients="zero")
    z = x * 2.0
    stopped = t.gradients(t.reduce_sum(z * x), x, stop_gradients=[z])
    return [*both, *unconnected, *stopped]


def test_gradients_in_a_tf_function_match_tensorflow_and_refuse_eager_tensors():
    x, w = np.array([0.5, -1.0, 2.0], "float32"), np.array([1.5, 0.2, -0.3], "float32")
    assert _same_in_tf_functions(_symbolic_gradients, x, w, rtol=1e-5, atol=1e-6) == 5
    with pytest.raises(RuntimeError, match="not supported when eager execution is enabled"):
        rtf.gradients(rtf.constant(x), rtf.constant(x))
    with pytest.raises(RuntimeError, match="not supported when eager execution is enabled"):
        tf.gradients(x, x)


CTC_LOGITS = np.random.default_rng(0).normal(size=(6, 2, 5)).astype("float32")   # time-major
CTC_LABELS = np.array([[1, 2, 2], [3, 1, 0]], "int32")
CTC_LENGTHS = (np.array([3, 2], "int32"), np.array([6, 4], "int32"))


def _sparse_labels(t):
    return t.SparseTensor([[0, 0], [0, 1], [0, 2], [1, 0], [1, 1]], [1, 2, 2, 3, 1], [2, 3])


@pytest.mark.parametrize("kwargs", [{}, {"blank_index": 4}, {"blank_index": -1}, {"logits_time_major": False},
                                    {"sparse": True, "blank_index": 0}, {"sparse": True, "blank_index": -1}])
def test_ctc_loss_matches_tensorflow(kwargs):
    kwargs = dict(kwargs)
    logits = CTC_LOGITS if kwargs.get("logits_time_major", True) else CTC_LOGITS.transpose(1, 0, 2)
    labels = np.where(CTC_LABELS == 0, 3, CTC_LABELS) if kwargs.get("blank_index") in (4, -1) else CTC_LABELS
    results = []
    for t in (rtf, tf):
        args = (_sparse_labels(t), logits, None) if kwargs.get("sparse") else (labels, logits, CTC_LENGTHS[0])
        results.append(t.nn.ctc_loss(*args, CTC_LENGTHS[1], **{k: v for k, v in kwargs.items() if k != "sparse"}))
    want, got = results[0].numpy(), np.asarray(results[1])
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_ctc_loss_gradients_in_a_tf_function_match_tensorflow_and_sparse_labels_need_a_blank():
    def grads(t, logits):
        with t.GradientTape() as tape:
            tape.watch(logits)
            loss = t.reduce_mean(t.nn.ctc_loss(CTC_LABELS, logits, CTC_LENGTHS[0], CTC_LENGTHS[1]))
        return loss, tape.gradient(loss, logits)

    _same_in_tf_functions(grads, CTC_LOGITS, atol=1e-6)
    for t in (rtf, tf):
        with pytest.raises(ValueError, match="blank_index"):
            t.nn.ctc_loss(_sparse_labels(t), CTC_LOGITS, None, CTC_LENGTHS[1])


def _same_sparse(ours, theirs):
    assert ours.indices.tolist() == theirs.indices.numpy().tolist()
    assert ours.values.dtype == theirs.values.numpy().dtype
    assert ours.values.tolist() == theirs.values.numpy().tolist()
    assert ours.dense_shape.tolist() == theirs.dense_shape.numpy().tolist()


@pytest.mark.parametrize("kwargs", [{}, {"merge_repeated": False, "blank_index": 0}])
def test_ctc_greedy_decoder_matches_tensorflow(kwargs):
    (want,), want_scores = rtf.nn.ctc_greedy_decoder(CTC_LOGITS, CTC_LENGTHS[1], **kwargs)
    (got,), scores = tf.nn.ctc_greedy_decoder(CTC_LOGITS, CTC_LENGTHS[1], **kwargs)
    _same_sparse(got, want)
    np.testing.assert_allclose(np.asarray(scores), want_scores.numpy(), rtol=1e-6)


def test_ctc_beam_search_decoder_matches_tensorflow():
    want, want_scores = rtf.nn.ctc_beam_search_decoder(CTC_LOGITS, CTC_LENGTHS[1], beam_width=4, top_paths=2)
    got, scores = tf.nn.ctc_beam_search_decoder(CTC_LOGITS, CTC_LENGTHS[1], beam_width=4, top_paths=2)
    assert len(got) == len(want) == 2
    for g, w in zip(got, want):
        _same_sparse(g, w)
    np.testing.assert_allclose(np.asarray(scores), want_scores.numpy(), rtol=1e-5)


IMAGES = np.random.default_rng(1).normal(size=(2, 5, 6, 3)).astype("float32")
BOXES = np.array([[0, 0, 1, 1], [0.11, 0.23, 0.77, 0.91], [0.93, 0.81, 0.13, 0.37], [-0.2, -0.1, 1.2, 0.5],
                  [0.33, 0.31, 0.37, 0.39]], "float32")
BOX_INDICES = np.array([0, 1, 1, 0, 1], "int32")


@pytest.mark.parametrize("image,crop_size,kwargs", [
    (IMAGES, [3, 4], {}), (IMAGES, [1, 1], {}), (IMAGES, [4, 3], {"method": "nearest"}),
    (IMAGES, [3, 3], {"extrapolation_value": -1.0}),
    (np.arange(60, dtype="uint8").reshape(2, 5, 6, 1), [2, 5], {})])
def test_crop_and_resize_matches_tensorflow(image, crop_size, kwargs):
    want = rtf.image.crop_and_resize(image, BOXES, BOX_INDICES, crop_size, **kwargs).numpy()
    got = np.asarray(tf.image.crop_and_resize(image, BOXES, BOX_INDICES, crop_size, **kwargs))
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("args,kwargs,error", [
    ((IMAGES, BOXES, BOX_INDICES + 1, [2, 2]), {}, "OutOfRangeError"),
    ((IMAGES, BOXES, BOX_INDICES, [0, 2]), {}, "InvalidArgumentError"),
    ((IMAGES, BOXES[:, :3], BOX_INDICES, [2, 2]), {}, "InvalidArgumentError"),
    ((IMAGES[0], BOXES, BOX_INDICES, [2, 2]), {}, "InvalidArgumentError"),
    ((IMAGES, BOXES, BOX_INDICES, [2, 2]), {"method": "bicubic"}, "InvalidArgumentError")])
def test_crop_and_resize_refuses_bad_arguments_as_tensorflow(args, kwargs, error):
    with pytest.raises(getattr(rtf.errors, error)):
        rtf.image.crop_and_resize(*args, **kwargs)
    with pytest.raises(getattr(tf.errors, error), match="tf.image.crop_and_resize"):
        tf.image.crop_and_resize(*args, **kwargs)


def _crop_gradients(t, image, boxes):
    with t.GradientTape() as tape:
        tape.watch([image, boxes])
        loss = t.reduce_sum(t.square(t.image.crop_and_resize(image, boxes, BOX_INDICES, [3, 4])))
    return tape.gradient(loss, [image, boxes])


def test_crop_and_resize_gradients_for_image_and_boxes_match_tensorflow_in_a_tf_function():
    _same_in_tf_functions(_crop_gradients, IMAGES, BOXES)


def test_crop_and_resize_in_a_functional_model_exports_standard_onnx(tmp_path, checked):
    import onnx

    from onnxforge import keras

    inp = keras.Input((5, 6, 3), batch_size=2)
    crop = keras.layers.Lambda(lambda v: tf.image.crop_and_resize(v, BOXES, BOX_INDICES, [3, 2],
                                                                  method="nearest"))(inp)
    model = keras.Model(inp, crop)
    want = rtf.image.crop_and_resize(IMAGES, BOXES, BOX_INDICES, [3, 2], method="nearest").numpy()
    np.testing.assert_allclose(np.asarray(model.predict(IMAGES, verbose=0)), want, rtol=1e-5, atol=1e-6)
    model.export(tmp_path / "m.onnx")
    assert "Einsum" in {n.op_type for n in checked(onnx.load(tmp_path / "m.onnx")).graph.node}


_R = np.random.default_rng(2)
X1, K1 = _R.normal(size=(2, 5, 3)).astype("float32"), _R.normal(size=(3, 4, 3)).astype("float32")
X2, K2 = _R.normal(size=(1, 4, 5, 2)).astype("float32"), _R.normal(size=(3, 3, 3, 2)).astype("float32")
X3, K3 = _R.normal(size=(1, 3, 4, 2, 2)).astype("float32"), _R.normal(size=(2, 3, 2, 3, 2)).astype("float32")
TRANSPOSED = [
    ("conv1d_transpose", (X1, K1, [2, 10, 4], 2), {}), ("conv1d_transpose", (X1, K1, [2, 9, 4], 2), {}),
    ("conv1d_transpose", (X1, K1, [2, 12, 4], 2), {"padding": "VALID"}),
    ("conv1d_transpose", (X1.transpose(0, 2, 1), K1, [2, 4, 11], [1, 1, 2]), {"padding": "VALID",
                                                                                "data_format": "NCW"}),
    ("conv3d_transpose", (X3, K3, [1, 6, 8, 4, 3], [1, 2, 2, 2, 1]), {}),
    ("conv3d_transpose", (X3, K3, [1, 5, 7, 3, 3], 2), {}),
    ("conv_transpose", (X2, K2, [1, 8, 9, 3], 2), {}), ("conv2d_transpose", (X2, K2, [1, 7, 10, 3], 2), {}),
    ("atrous_conv2d", (X2, K2.transpose(0, 1, 3, 2), 2, "SAME"), {}),
    ("atrous_conv2d_transpose", (X2, K2, [1, 8, 9, 3], 2, "VALID"), {}),
]


@pytest.mark.parametrize("fn,args,kwargs", TRANSPOSED, ids=[f"{c[0]}-{i}" for i, c in enumerate(TRANSPOSED)])
def test_transposed_convolutions_match_tensorflow_for_every_output_size_it_accepts(fn, args, kwargs):
    want = getattr(rtf.nn, fn)(*args, **kwargs).numpy()
    got = np.asarray(getattr(tf.nn, fn)(*args, **kwargs))
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("args", [(X1, K1, [2, 8, 4], 2), (X1, K1, [2, 13, 4], 2, "VALID")])
def test_conv1d_transpose_refuses_output_sizes_tensorflow_refuses(args):
    with pytest.raises(rtf.errors.OpError):   # InvalidArgumentError, or AbortedError from the oneDNN kernels
        rtf.nn.conv1d_transpose(*args)
    with pytest.raises(tf.errors.InvalidArgumentError, match="is not one a"):
        tf.nn.conv1d_transpose(*args)


def _transposed_gradients(t, x, k):
    with t.GradientTape() as tape:
        tape.watch([x, k])
        y = t.nn.conv1d_transpose(x, k, [2, 9, 4], 2)   # an output_padding of 1 in ONNX's terms
        loss = t.reduce_sum(y * y)
    return tape.gradient(loss, [x, k])


def test_conv1d_transpose_gradients_match_tensorflow_in_a_tf_function():
    _same_in_tf_functions(_transposed_gradients, X1, K1)


PART_DATA, PART_IDS = np.arange(12, dtype="float32").reshape(6, 2), np.array([1, 0, 2, 1, 1, 0], "int32")
PARTITIONS = [(PART_DATA, PART_IDS, 3), (PART_DATA, PART_IDS, 4), (np.arange(6).reshape(2, 3), [[0, 1, 0], [1, 1, 0]], 2),
              (np.float32(5.0), 1, 2)]
STITCHES = [([[0, 2], [1, 3]], [np.array([1.0, 3.0], "float32"), np.array([2.0, 4.0], "float32")]),
            ([[0, 5], [1, 0]], [np.array([[1, 2], [3, 4]], "int32"), np.array([[5, 6], [7, 8]], "int32")]),
            ([np.array([[4, 1], [0, 2]]), [2]], [np.arange(8, dtype="float32").reshape(2, 2, 2),
                                                 np.array([[9.0, 9.0]], "float32")])]


def _same_arrays(ours, theirs):
    got, want = np.asarray(ours), theirs.numpy()
    assert got.dtype == want.dtype and got.shape == want.shape and got.tolist() == want.tolist()


@pytest.mark.parametrize("args", PARTITIONS)
def test_dynamic_partition_matches_tensorflow(args):
    want, got = rtf.dynamic_partition(*args), tf.dynamic_partition(*args)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        _same_arrays(g, w)


@pytest.mark.parametrize("args", STITCHES)
def test_dynamic_stitch_matches_tensorflow_repeated_indices_included(args):
    _same_arrays(tf.dynamic_stitch(*args), rtf.dynamic_stitch(*args))


def _route(t, x, p):
    with t.GradientTape() as tape:
        tape.watch(x)
        parts = t.dynamic_partition(x, p, 2)
        rows = t.dynamic_partition(t.range(6), p, 2)
        y = t.dynamic_stitch(rows, [parts[0] * 2.0, parts[1] * 3.0])
        loss = t.reduce_sum(y * y)
    return y, tape.gradient(loss, x)


def test_partition_then_stitch_in_a_tf_function_matches_tensorflow_with_gradients():
    x, p = np.arange(6, dtype="float32"), PART_IDS % 2
    _same_in_tf_functions(_route, x, p, rtol=1e-7, atol=0)
    with pytest.raises(rtf.errors.InvalidArgumentError):
        rtf.dynamic_partition(PART_DATA, PART_IDS, 2)
    with pytest.raises(tf.errors.InvalidArgumentError, match="not in \\[0, 2\\)"):
        tf.dynamic_partition(PART_DATA, PART_IDS, 2)


def _model_program(t, v):
    _, where = t.nn.max_pool_with_argmax(v, 2, 2, "SAME", include_batch_in_index=True)
    edges = t.image.sobel_edges(v)[..., 0]
    stitched = t.dynamic_stitch([t.range(3)], [t.reduce_sum(edges, axis=[0, 1, 2])])
    mel = t.signal.mfccs_from_log_mel_spectrograms(t.image.crop_and_resize(v, BOXES, BOX_INDICES, [2, 3]))
    return (t.reduce_sum(t.cast(where, "float32")) * 1e-3 + t.reduce_sum(stitched) + t.reduce_sum(mel)
            + t.reduce_sum(t.nn.conv1d_transpose(v[:, 0], K1[..., :3], [2, 14, 4], 2, "VALID"))) * v[:, 0, 0, 0]


def test_the_new_functions_in_a_functional_model_export_checked_standard_onnx(tmp_path, checked):
    import onnx

    from onnxforge import keras

    inp = keras.Input((5, 6, 3), batch_size=2)
    model = keras.Model(inp, keras.layers.Lambda(lambda v: _model_program(tf, v))(inp))
    want = _model_program(rtf, rtf.constant(IMAGES)).numpy()
    np.testing.assert_allclose(np.asarray(model.predict(IMAGES, verbose=0)), want, rtol=1e-4)
    model.export(tmp_path / "m.onnx")
    ops = {n.op_type for n in checked(onnx.load(tmp_path / "m.onnx")).graph.node}
    assert {"MaxPool", "ConvTranspose", "Einsum"} <= ops
