"""``import onnxforge as tf``, continued from ``test_tf_compat_more2.py``: the ``tf.signal`` audio functions,
``tf.strings.ngrams``, ``tf.random.poisson``, the framework helpers, ``sobel_edges`` /
``max_pool_with_argmax``, ``ndtri`` / ``erfcinv``, the ``tf.linalg`` additions, ``tf.hessians`` and the padded
/ scored non-max suppressions give TensorFlow's values, dtypes, shapes and errors (checked against
TensorFlow itself), eagerly and in a ``tf.function``."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as tf

rtf = pytest.importorskip("tensorflow")


def _same_arrays(ours, theirs):
    got, want = np.asarray(ours), theirs.numpy()
    assert got.dtype == want.dtype and got.shape == want.shape and got.tolist() == want.tolist()


SIG_X = np.random.default_rng(3).normal(size=(3, 8)).astype("float32")
SIG_FRAMES = np.random.default_rng(4).normal(size=(2, 5, 6)).astype("float32")
SIGNAL_CASES = [
    ("linear_to_mel_weight_matrix", (), {}), ("linear_to_mel_weight_matrix", (8, 33, 16000, 20.0, 8000.0), {}),
    ("linear_to_mel_weight_matrix", (8, 33, 16000, 20.0, 8000.0), {"dtype": "float64"}),
    *[(fn, (SIG_X,), {"type": t, "norm": norm}) for fn in ("dct", "idct") for t in (1, 2, 3, 4)
      for norm in (None, "ortho") if not (t == 1 and norm)],
    ("dct", (SIG_X,), {"n": 5}), ("dct", (SIG_X,), {"n": 11}),
    ("mfccs_from_log_mel_spectrograms", (SIG_X,), {}),
    ("overlap_and_add", (SIG_FRAMES, 2), {}), ("overlap_and_add", (SIG_FRAMES, 7), {}),
    ("kaiser_window", (1,), {}), ("kaiser_window", (8,), {}), ("kaiser_window", (7, 3.0), {"dtype": "float64"}),
    ("kaiser_bessel_derived_window", (8,), {}), ("kaiser_bessel_derived_window", (9, 4.0), {}),
    ("vorbis_window", (8,), {}), ("vorbis_window", (5,), {}),
]


@pytest.mark.parametrize("fn,args,kwargs", SIGNAL_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(SIGNAL_CASES)])
def test_signal_functions_match_tensorflow(fn, args, kwargs):
    theirs = {**kwargs, "dtype": rtf.float64} if kwargs.get("dtype") == "float64" else kwargs
    want = getattr(rtf.signal, fn)(*args, **theirs).numpy()
    got = np.asarray(getattr(tf.signal, fn)(*args, **kwargs))
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("frame_length,fft_length,inverse_window", [(64, None, False), (64, None, True), (60, 64, False)])
def test_inverse_stft_and_its_window_match_tensorflow(frame_length, fft_length, inverse_window):
    spectrum = rtf.signal.stft(np.sin(np.arange(400) * 0.1).astype("float32"), 64, 16).numpy()
    kwargs = {"fft_length": fft_length}
    want = rtf.signal.inverse_stft(spectrum, frame_length, 16, window_fn=rtf.signal.inverse_stft_window_fn(16)
                                   if inverse_window else rtf.signal.hann_window, **kwargs).numpy()
    got = np.asarray(tf.signal.inverse_stft(spectrum, frame_length, 16, window_fn=tf.signal.inverse_stft_window_fn(16)
                                            if inverse_window else tf.signal.hann_window, **kwargs))
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(tf.signal.inverse_stft_window_fn(3)(10)),
                               rtf.signal.inverse_stft_window_fn(3)(10, rtf.float32).numpy(), rtol=1e-6)


def _mfcc_program(t, spectrum):
    with t.GradientTape() as tape:
        tape.watch(spectrum)
        mel = t.matmul(spectrum, t.signal.linear_to_mel_weight_matrix(4, 8, 8000, 100.0, 4000.0))
        mfccs = t.signal.mfccs_from_log_mel_spectrograms(t.math.log(mel + 1e-3))[..., :3]
        y = t.signal.overlap_and_add(mfccs, 1)
        loss = t.reduce_sum(y * y)
    return y, tape.gradient(loss, spectrum)


def test_mel_mfcc_and_overlap_add_in_a_tf_function_match_tensorflow_with_gradients():
    spectrum = np.abs(np.random.default_rng(5).normal(size=(2, 5, 8))).astype("float32")
    want = rtf.function(lambda s: _mfcc_program(rtf, s))(spectrum)
    got = tf.function(lambda spec: _mfcc_program(tf, spec))(spectrum)
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), w.numpy(), rtol=1e-4, atol=1e-4)


def test_signal_arguments_tensorflow_refuses_are_refused():
    for t in (rtf, tf):
        with pytest.raises(ValueError, match="Nyquist"):
            t.signal.linear_to_mel_weight_matrix(8, 33, 8000, 20.0, 5000.0)
        with pytest.raises(ValueError, match="Normalization"):
            t.signal.dct(SIG_X, type=1, norm="ortho")


TOKENS = [["a", "b", "c", "d"], ["e", "f", "g", "h"]]
NGRAMS = [((TOKENS, 2), {}), ((TOKENS, [1, 3]), {"separator": "_"}),
          ((["a", "b", "c"], 2), {"pad_values": ("<s>", "</s>")}),
          ((["a", "b", "c"], 4), {"pad_values": "#", "padding_width": 2}), ((["a", "b"], 3), {}),
          ((["a", "b"], 3), {"preserve_short_sequences": True})]


@pytest.mark.parametrize("args,kwargs", NGRAMS)
def test_strings_ngrams_match_tensorflow(args, kwargs):
    want, got = rtf.strings.ngrams(*args, **kwargs).numpy(), tf.strings.ngrams(*args, **kwargs).numpy()
    assert got.shape == want.shape and got.tolist() == want.tolist()
    for t in (rtf, tf):
        with pytest.raises(ValueError, match="greater than 0"):
            t.strings.ngrams(["a"], 0)


def test_random_poisson_has_tensorflows_shapes_dtypes_and_distribution():
    import math

    rates = [0.0, 0.5, 3.0, 40.0]
    want, got = rtf.random.poisson([20000], rates, seed=3).numpy(), np.asarray(tf.random.poisson([20000], rates, seed=3))
    assert got.shape == want.shape and got.dtype == want.dtype
    assert np.all(got == np.round(got)) and got[:, 0].max() == 0.0
    for i, lam in enumerate(rates[1:], 1):   # mean and variance both lam, within 5 standard errors
        assert abs(got[:, i].mean() - lam) < 5 * math.sqrt(lam / 20000)
        assert abs(got[:, i].var() / lam - 1.0) < 5 * math.sqrt(2.0 / 20000) + 5 / math.sqrt(20000 * lam)
    pmf = np.array([math.exp(-3.0) * 3.0 ** k / math.factorial(k) for k in range(12)])
    assert np.abs(np.bincount(got[:, 2].astype(int), minlength=12)[:12] / 20000 - pmf).max() < 0.01
    for dtype in ("int32", "int64", "float64"):
        assert tf.random.poisson([3], 2.0, dtype=dtype).dtype == rtf.random.poisson([3], 2.0, dtype=dtype).dtype
    assert tf.random.poisson([2, 3], [[1.0, 2.0]]).shape == tuple(rtf.random.poisson([2, 3], [[1.0, 2.0]]).shape)
    traced = np.asarray(tf.function(lambda x: x + tf.random.poisson([5], 2.0, seed=1))(np.zeros(5, "float32")))
    assert traced.shape == (5,) and np.all(traced >= 0)


def _pass_through(t, v):
    with t.GradientTape() as tape:
        tape.watch(v)
        y = t.grad_pass_through(t.round)(v * 3.0)
        z = t.recompute_grad(lambda a: t.sin(a) * a)(v)
        loss = t.reduce_sum(y * y) + t.reduce_sum(z)
    # TensorFlow has no gradient for parallel_stack or guarantee_const
    return y, tape.gradient(loss, v), t.parallel_stack([v, t.guarantee_const(y)])


def test_framework_helpers_match_tensorflow():
    x = np.array([0.3, 1.7, -2.2], "float32")
    want = rtf.function(lambda v: _pass_through(rtf, v))(x)
    got = tf.function(lambda value: _pass_through(tf, value))(x)
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), w.numpy(), rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(tf.realdiv(x, np.float32(2.0))), rtf.realdiv(x, np.float32(2.0)).numpy())
    assert tf.as_string(np.array([1, 2])).numpy().tolist() == rtf.as_string(np.array([1, 2])).numpy().tolist()
    for t in (rtf, tf):
        with pytest.raises(RuntimeError, match="not compatible with eager execution"):
            t.parallel_stack([x, x])
    assert tf.inside_function() is rtf.inside_function() is False
    assert np.asarray(tf.function(lambda v: v * float(tf.inside_function()))(x)).tolist() == x.tolist()
    assert tf.get_logger() is rtf.get_logger()   # Python's logging.getLogger("tensorflow") for both
    assert np.asarray(tf.timestamp()).dtype == rtf.timestamp().numpy().dtype
    assert tf.is_symbolic_tensor(x) is rtf.is_symbolic_tensor(rtf.constant(x)) is False


WINDOW_IMAGES = np.random.default_rng(6).normal(size=(2, 5, 6, 3)).astype("float32")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sobel_edges_match_tensorflow(dtype):
    image = WINDOW_IMAGES.astype(dtype)
    want, got = rtf.image.sobel_edges(rtf.constant(image)).numpy(), np.asarray(tf.image.sobel_edges(image))
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    with pytest.raises(tf.errors.InvalidArgumentError, match="float"):
        tf.image.sobel_edges(image.astype("uint8"))


@pytest.mark.parametrize("args,kwargs", [((2, 2, "VALID"), {}), ((3, 2, "SAME"), {}),
                                         (([1, 2, 3, 1], [1, 1, 2, 1], "SAME"), {"include_batch_in_index": True}),
                                         ((2, 1, "VALID"), {"output_dtype": "int32"})])
def test_max_pool_with_argmax_matches_tensorflow(args, kwargs):
    theirs = {**kwargs, "output_dtype": rtf.int32} if "output_dtype" in kwargs else kwargs
    want, got = rtf.nn.max_pool_with_argmax(WINDOW_IMAGES, *args, **theirs), \
        tf.nn.max_pool_with_argmax(WINDOW_IMAGES, *args, **kwargs)
    for g, w in zip(got, want):
        assert np.asarray(g).dtype == w.numpy().dtype
        np.testing.assert_array_equal(np.asarray(g), w.numpy())


def _window_gradients(t, image):
    with t.GradientTape() as tape:
        tape.watch(image)
        pooled, where = t.nn.max_pool_with_argmax(image, 2, 2, "SAME")
        loss = t.reduce_sum(t.square(t.image.sobel_edges(image))) + t.reduce_sum(pooled * pooled)
    return where, tape.gradient(loss, image)


def test_sobel_and_argmax_pool_in_a_tf_function_match_tensorflow_with_gradients():
    want = rtf.function(lambda i: _window_gradients(rtf, i))(WINDOW_IMAGES)
    got = tf.function(lambda image: _window_gradients(tf, image))(WINDOW_IMAGES)
    np.testing.assert_array_equal(np.asarray(got[0]), want[0].numpy())
    np.testing.assert_allclose(np.asarray(got[1]), want[1].numpy(), rtol=1e-4, atol=1e-4)


PROBS = np.array([1e-30, 1e-6, 1e-3, 0.02, 0.0243, 0.0245, 0.3, 0.5, 0.77, 0.98, 0.999, 1 - 1e-6, 0.0, 1.0, -0.1],
                 "float32")


@pytest.mark.parametrize("dtype,rtol", [("float32", 3e-7), ("float64", 3e-9)])
def test_ndtri_and_erfcinv_match_tensorflow_into_the_tails(dtype, rtol):
    want, got = rtf.math.ndtri(PROBS.astype(dtype)).numpy(), np.asarray(tf.math.ndtri(PROBS.astype(dtype)))
    assert got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=rtol)   # inf, -inf and NaN in the same places too
    x = np.array([1e-6, 0.1, 0.5, 1.0, 1.5, 1.9, 2.0, 0.0], dtype)
    np.testing.assert_allclose(np.asarray(tf.math.erfcinv(x)), rtf.math.erfcinv(x).numpy(), rtol=rtol * 10)


def _probit_gradient(t, v):
    with t.GradientTape() as tape:
        tape.watch(v)
        y = t.reduce_sum(t.math.ndtri(v))
    return tape.gradient(y, v)


def test_ndtri_gradient_matches_tensorflow_in_a_tf_function():
    v = np.array([0.01, 0.3, 0.5, 0.9, 0.999], "float32")
    want = rtf.function(lambda p: _probit_gradient(rtf, p))(v).numpy()
    np.testing.assert_allclose(np.asarray(tf.function(lambda x: _probit_gradient(tf, x))(v)), want, rtol=1e-5)


_A = np.random.default_rng(7).normal(size=(2, 4, 3)).astype("float32")
_A[1, :, 2] = _A[1, :, 0] * 2.0
_SPD = np.array([[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]], "float32")
LINALG = [("matrix_rank", (_A,)), ("matrix_rank", (_A.astype("float64"),)), ("matrix_rank", (_A, 0.5)),
          ("matrix_rank", (np.zeros((3, 3), "float32"),)),
          ("cholesky_solve", (np.linalg.cholesky(_SPD).astype("float32"), _A[0, :3])),
          ("tensor_diag", (np.arange(1.0, 7.0, dtype="float32").reshape(2, 3),)), ("tensor_diag", ([1, 2],)),
          ("tensor_diag_part", (np.arange(36, dtype="int32").reshape(2, 3, 2, 3),))]


@pytest.mark.parametrize("fn,args", LINALG, ids=[f"{c[0]}-{i}" for i, c in enumerate(LINALG)])
def test_linalg_additions_match_tensorflow(fn, args):
    want, got = getattr(rtf.linalg, fn)(*args).numpy(), np.asarray(getattr(tf.linalg, fn)(*args))
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def _second_derivatives(t, x, w):
    y = t.reduce_sum(t.sin(x) * x * x) + t.reduce_sum(t.tanh(x[:2] * x[1:])) + t.reduce_sum(t.square(w) * x[:2])
    return t.hessians(y, [x, w])


def test_hessians_in_a_tf_function_match_tensorflow():
    x, w = np.array([0.3, -1.2, 0.7], "float32"), np.array([[1.0, 2.0]], "float32")
    want = rtf.function(lambda a, b: _second_derivatives(rtf, a, b))(x, w)
    got = tf.function(lambda xs, ws: _second_derivatives(tf, xs, ws))(x, w)
    for g, e in zip(got, want):
        assert np.asarray(g).shape == tuple(e.shape)
        np.testing.assert_allclose(np.asarray(g), e.numpy(), rtol=1e-5, atol=1e-6)


NMS_BOXES = np.array([[0, 0, 1, 1], [0, 0.1, 1, 1.1], [0, -0.1, 1, 0.9], [0, 10, 1, 11], [0, 10.1, 1, 11.1],
                      [5, 5, 6, 6], [0.2, 0.1, 0.9, 1.0]], "float32")
NMS_SCORES = np.array([0.9, 0.75, 0.6, 0.95, 0.8, 0.3, 0.5], "float32")


@pytest.mark.parametrize("args,kwargs", [
    ((NMS_BOXES, NMS_SCORES, 5), {}), ((NMS_BOXES, NMS_SCORES, 5), {"pad_to_max_output_size": True}),
    ((NMS_BOXES, NMS_SCORES, 2), {"pad_to_max_output_size": True}),
    ((NMS_BOXES, NMS_SCORES, 5, 0.3, 0.55), {"pad_to_max_output_size": True}),
    ((np.stack([NMS_BOXES, NMS_BOXES[::-1]]), np.stack([NMS_SCORES, NMS_SCORES]), 5),
     {"pad_to_max_output_size": True})])
def test_non_max_suppression_padded_matches_tensorflow(args, kwargs):
    want = rtf.image.non_max_suppression_padded(*[rtf.constant(a) if isinstance(a, np.ndarray) else a for a in args],
                                                **kwargs)
    got = tf.image.non_max_suppression_padded(*args, **kwargs)
    for g, w in zip(got, want):
        _same_arrays(g, w)


def test_non_max_suppression_with_scores_matches_tensorflow_also_traced():
    for args in ((NMS_BOXES, NMS_SCORES, 5, 0.5), (NMS_BOXES, NMS_SCORES, 5, 0.5, 0.7)):
        for g, w in zip(tf.image.non_max_suppression_with_scores(*args),
                        rtf.image.non_max_suppression_with_scores(*args)):
            _same_arrays(g, w)
    with pytest.raises(NotImplementedError, match="soft_nms_sigma"):
        tf.image.non_max_suppression_with_scores(NMS_BOXES, NMS_SCORES, 5, soft_nms_sigma=0.5)
    batch = (np.stack([NMS_BOXES, NMS_BOXES[::-1]]), np.stack([NMS_SCORES, NMS_SCORES]))
    padded = lambda t, b, s: t.image.non_max_suppression_padded(b, s, 4, pad_to_max_output_size=True)  # noqa: E731
    want = rtf.function(lambda b, s: padded(rtf, b, s))(*batch)
    for g, w in zip(tf.function(lambda bx, sc: padded(tf, bx, sc))(*batch), want):
        _same_arrays(g, w)
