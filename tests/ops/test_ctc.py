"""CTC: ``ops.ctc_loss`` / ``losses.CTC`` / ``ops.ctc_decode`` / ``keras.backend.ctc_batch_cost`` against Keras 3's
TensorFlow backend (``keras.src.backend.tensorflow.nn``, i.e. ``tf.nn.ctc_loss`` and TF's decoders) and torch's
``ctc_loss``; gradients by float64 finite differences; training through ``fit``."""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto

from onnxforge import keras, losses, ops
from onnxforge.autodiff import check_gradients, gradient_model
from onnxforge.autodiff.gradcheck import LOSS, upstream_wrapped
from onnxforge.graph import GraphBuilder
from onnxforge.losses.ctc import ctc_loss_values
from tests.conftest import check_full

tf = pytest.importorskip("tensorflow")
knn = pytest.importorskip("keras.src.backend.tensorflow.nn")
torch = pytest.importorskip("torch")

B, T, C = 3, 12, 6
# repeated labels (1 1), a run of three (2 2 2), unequal label and time lengths, padding with 0
LABELS = np.array([[1, 2, 3, 0, 0], [1, 1, 4, 0, 0], [2, 2, 2, 5, 5]], np.int64)
LABEL_LEN = np.array([3, 2, 5], np.int64)
TIME_LEN = np.array([12, 7, 11], np.int64)


def _logits(seed: int = 0, dtype=np.float32) -> np.ndarray:
    return (np.random.default_rng(seed).normal(size=(B, T, C)) * 1.5).astype(dtype)


def _loss_model(labels: np.ndarray, label_len: np.ndarray, time_len: np.ndarray, mask_index: int,
                elem: int) -> onnx.ModelProto:
    b = GraphBuilder()
    x = b.input("x", elem, ("B", "T", labels.shape and C))
    loss = ctc_loss_values(b.const(labels), x, b.const(label_len), b.const(time_len), mask_index=mask_index)
    b.output(loss, "loss")
    return check_full(b.to_model())


def _ours(x: np.ndarray, labels, label_len, time_len, mask_index: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Loss and d(sum loss)/dx, by onnxforge's gradient graph run in onnxruntime."""
    model = _loss_model(labels, label_len, time_len, mask_index, TensorProto.FLOAT)
    grad = check_full(gradient_model(upstream_wrapped(model, ["loss"]), LOSS, ["x"]))
    sess = ort.InferenceSession(grad.SerializeToString(), providers=["CPUExecutionProvider"])
    loss, dx = sess.run(["loss", "x_grad"], {"x": x, "__upstream_loss": np.ones(len(x), np.float32)})
    return loss, dx


def _keras_tf(x: np.ndarray, labels, label_len, time_len, mask_index: int = 0) -> tuple[np.ndarray, np.ndarray]:
    xt = tf.Variable(x)
    with tf.GradientTape() as tape:
        loss = knn.ctc_loss(labels, xt, label_len, time_len, mask_index=mask_index)
    return loss.numpy(), tape.gradient(loss, xt).numpy()


def _torch(x: np.ndarray, labels, label_len, time_len, blank: int) -> tuple[np.ndarray, np.ndarray]:
    xt = torch.tensor(x, requires_grad=True)
    log_probs = torch.log_softmax(xt, -1).transpose(0, 1)   # torch wants (T, B, C) log-probabilities
    loss = torch.nn.functional.ctc_loss(log_probs, torch.tensor(labels), torch.tensor(time_len),
                                        torch.tensor(label_len), blank=blank, reduction="none")
    loss.sum().backward()
    return loss.detach().numpy(), xt.grad.numpy()


@pytest.mark.parametrize("mask_index", [0, 3])
def test_loss_and_gradients_match_keras_tf_and_torch(mask_index):
    x = _logits()
    labels = LABELS if mask_index == 0 else np.where(LABELS == 3, 0, LABELS)   # 3 is the blank: use 0 instead
    ours, d_ours = _ours(x, labels, LABEL_LEN, TIME_LEN, mask_index)
    ref, d_ref = _keras_tf(x, labels, LABEL_LEN, TIME_LEN, mask_index)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(d_ours, d_ref, atol=2e-5)
    t_loss, t_grad = _torch(x, labels, LABEL_LEN, TIME_LEN, blank=mask_index)
    np.testing.assert_allclose(ours, t_loss, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(d_ours, t_grad, atol=2e-5)
    # steps past output_length get no gradient at all
    assert np.all(d_ours[1, TIME_LEN[1]:] == 0)


def test_impossible_alignment_is_finite_like_tensorflow():
    """Label 1 1 1 needs 5 steps: with 4, TF returns ~707 plus a partial path's cost (not inf), and gradients."""
    x = _logits(1)[:, :4]
    labels = np.array([[1, 1, 1], [1, 2, 0], [3, 0, 0]], np.int64)
    label_len, time_len = np.array([3, 2, 1], np.int64), np.array([4, 1, 0], np.int64)
    ours, d_ours = _ours(x, labels, label_len, time_len)
    ref, d_ref = _keras_tf(x, labels, label_len, time_len)
    assert np.all(np.isfinite(ours)) and np.all(np.isfinite(d_ours))
    np.testing.assert_allclose(ours, ref, rtol=1e-6)
    assert ours.min() > 700
    # rows 0 and 2 agree with TF's gradient; in row 1 (one step for two labels) TF's hand-written gradient uses
    # a forward pass that may start in any state, which is not the derivative of the value it returns: ours is
    # (the float64 check below covers the exact derivative)
    np.testing.assert_allclose(d_ours[[0, 2]], d_ref[[0, 2]], atol=1e-4)


def test_float64_numeric_gradients_with_dynamic_time():
    x = _logits(2, np.float64)
    model = _loss_model(LABELS, LABEL_LEN, TIME_LEN, 0, TensorProto.DOUBLE)
    check_gradients(model, {"x": x}, ["x"], rtol=1e-5, atol=1e-7, directions=3)
    # the same graph runs at another number of time steps (T is a run-time dim of the Scan)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    short = x[:, :9]
    lens = np.minimum(TIME_LEN, 9)
    ref = _torch(short, LABELS, LABEL_LEN, lens, blank=0)[0]
    model9 = _loss_model(LABELS, LABEL_LEN, lens, 0, TensorProto.DOUBLE)
    got = ort.InferenceSession(model9.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": short})[0]
    np.testing.assert_allclose(got, ref, rtol=1e-10)
    assert sess.run(None, {"x": x})[0].shape == (B,)


def test_ops_ctc_loss_eager_and_keras_loss_functions():
    x = _logits(3)
    got = ops.ctc_loss(LABELS, x, LABEL_LEN, TIME_LEN)
    ref = knn.ctc_loss(LABELS, x, LABEL_LEN, TIME_LEN, mask_index=0).numpy()
    np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-5)
    assert ops.nn.ctc_loss is ops.ctc_loss and keras.ops.ctc_loss is ops.ctc_loss
    # keras.losses.ctc: every sample uses all T steps, label length counted as the non-zero labels
    from keras.src.losses.losses import ctc as keras_ctc   # Keras's own function over its tf backend ops
    with_tf = knn.ctc_loss(LABELS, x, (LABELS != 0).sum(-1), np.full(B, T), mask_index=0).numpy()
    np.testing.assert_allclose(np.asarray(losses.ctc(LABELS, x)), with_tf, rtol=1e-5)
    assert callable(keras_ctc)
    loss = keras.losses.CTC()
    np.testing.assert_allclose(float(loss(LABELS, x)), with_tf.mean(), rtol=1e-5)
    assert float(keras.losses.CTC(reduction="sum")(LABELS, x)) == pytest.approx(with_tf.sum(), rel=1e-5)
    config = loss.get_config()
    assert config == {"name": "ctc", "reduction": "sum_over_batch_size"}
    assert isinstance(keras.losses.CTC.from_config(config), keras.losses.CTC)
    assert isinstance(keras.losses.get("ctc"), keras.losses.CTC)
    assert keras.losses.deserialize(keras.losses.serialize(loss)).name == "ctc"


def test_fit_with_ctc_loss_trains():
    keras.utils.set_random_seed(1)   # fixed initial weights: seed 0's draw ends at 0.601x after 6 epochs
    rng = np.random.default_rng(0)
    n, steps, feats, classes = 48, 10, 8, 5
    y = rng.integers(1, classes, size=(n, 4))
    for row in y:
        row[rng.integers(1, 5):] = 0                          # labels padded with the blank, as in the OCR example
    x = rng.normal(size=(n, steps, feats)).astype(np.float32)
    x[np.arange(n)[:, None], np.arange(4)[None, :] * 2, y] += 3.0   # the label shows in its step's features
    inputs = keras.Input((steps, feats))
    hidden = keras.layers.Dense(16, activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(classes)(hidden))
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss=keras.losses.CTC())
    history = model.fit(x, y, batch_size=16, epochs=6, verbose=0).history["loss"]
    assert history[-1] < 0.6 * history[0], history
    assert np.isfinite(history).all()
    decoded, _ = ops.ctc_decode(model.predict(x, verbose=0), np.full(n, steps))
    assert np.asarray(decoded).shape == (1, n, steps)
    with pytest.raises(ValueError, match="max_length"):
        model.fit(x, y[:, :, None], verbose=0)


@pytest.mark.parametrize("mask_index", [0, 2, None])
@pytest.mark.parametrize("merge_repeated", [True, False])
def test_greedy_decode_matches_keras_tf(mask_index, merge_repeated):
    x = _logits(4)
    lens = np.array([12, 5, 9])
    got = ops.ctc_decode(x, lens, merge_repeated=merge_repeated, mask_index=mask_index)
    ref = knn.ctc_decode(x, lens, merge_repeated=merge_repeated, mask_index=mask_index)
    np.testing.assert_array_equal(np.asarray(got[0]), ref[0].numpy())
    np.testing.assert_allclose(np.asarray(got[1]), ref[1].numpy(), rtol=1e-6)
    assert np.asarray(got[0]).dtype == np.int32


@pytest.mark.parametrize("beam_width,top_paths,mask_index", [(1, 1, 0), (4, 3, 0), (100, 2, 3), (8, 2, None)])
def test_beam_search_matches_keras_tf(beam_width, top_paths, mask_index):
    x = _logits(5)
    lens = np.array([12, 6, 10])
    got = ops.ctc_decode(x, lens, strategy="beam_search", beam_width=beam_width, top_paths=top_paths,
                         mask_index=mask_index)
    ref = knn.ctc_decode(x, lens, strategy="beam_search", beam_width=beam_width, top_paths=top_paths,
                         mask_index=mask_index)
    np.testing.assert_array_equal(got[0], ref[0].numpy())
    np.testing.assert_allclose(got[1], ref[1].numpy(), rtol=1e-5, atol=1e-5)


def test_backend_ctc_batch_cost_and_decode_match_tf_keras_2():
    x = _logits(6)
    probs = tf.nn.softmax(x).numpy()
    labels = np.where(LABELS == 0, 7, LABELS - 1)          # tf.keras 2: the last class (5) is the blank
    got = keras.backend.ctc_batch_cost(labels, probs, TIME_LEN[:, None], LABEL_LEN[:, None])
    index = np.argwhere(np.arange(5)[None, :] < LABEL_LEN[:, None])   # tf.keras 2's ctc_label_dense_to_sparse
    sparse = tf.SparseTensor(index, labels[index[:, 0], index[:, 1]].astype(np.int32), (B, 5))
    ref = tf.compat.v1.nn.ctc_loss(sparse, np.log(probs.transpose(1, 0, 2) + 1e-7), TIME_LEN)
    assert np.asarray(got).shape == (B, 1)
    np.testing.assert_allclose(np.asarray(got)[:, 0], ref.numpy(), rtol=1e-4)
    logp = np.log(probs.transpose(1, 0, 2) + 1e-7)
    decoded, scores = keras.backend.ctc_decode(probs, TIME_LEN)
    ref_d, ref_s = tf.nn.ctc_greedy_decoder(logp, TIME_LEN)
    np.testing.assert_array_equal(np.asarray(decoded[0]), tf.sparse.to_dense(
        tf.SparseTensor(ref_d[0].indices, ref_d[0].values, (B, T)), default_value=-1).numpy())
    np.testing.assert_allclose(np.asarray(scores), ref_s.numpy(), rtol=1e-5)
    decoded, scores = keras.backend.ctc_decode(probs, TIME_LEN, greedy=False, beam_width=5, top_paths=2)
    ref_d, ref_s = tf.compat.v1.nn.ctc_beam_search_decoder(logp, TIME_LEN, beam_width=5, top_paths=2)
    for ours, theirs in zip(decoded, ref_d):
        np.testing.assert_array_equal(ours, tf.sparse.to_dense(
            tf.SparseTensor(theirs.indices, theirs.values, (B, T)), default_value=-1).numpy())
    np.testing.assert_allclose(scores, ref_s.numpy(), rtol=1e-5, atol=1e-5)


def test_bad_arguments_raise_clear_errors():
    x = _logits()
    with pytest.raises(TypeError, match="mask_index"):
        ops.ctc_loss(LABELS, x, LABEL_LEN, TIME_LEN, mask_index=0.5)
    with pytest.raises(ValueError, match="target"):
        ops.ctc_loss(LABELS[0], x, LABEL_LEN, TIME_LEN)
    with pytest.raises(ValueError, match="same first dimension"):
        ops.ctc_loss(LABELS[:2], x, LABEL_LEN[:2], TIME_LEN)
    with pytest.raises(ValueError, match="strategy"):
        ops.ctc_decode(x, TIME_LEN, strategy="prefix")
    with pytest.raises(ValueError, match="top_paths"):
        ops.ctc_decode(x, TIME_LEN, strategy="beam_search", beam_width=2, top_paths=3)
    with pytest.raises(ValueError, match="y_pred"):
        losses.ctc(LABELS, x[0])
    b = GraphBuilder()
    v = b.input("x", TensorProto.FLOAT, (B, T, C))
    with pytest.raises(ValueError, match="beam_search"):
        ops.ctc_decode(v, TIME_LEN, strategy="beam_search")
