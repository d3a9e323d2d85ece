"""onnxforge.ops: keras.ops names over graph values. Eager results vs numpy, symbolic shapes with a dynamic
batch, gradients through GradientTape vs torch.autograd, and the tape's TensorFlow semantics."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import onnxforge as of
from onnxforge import ops
from onnxforge.graph.rng import CounterRng
from onnxforge.graph import GraphBuilder
from onnxforge.tracing import TraceContext
from tests.conftest import check_full

RNG = np.random.default_rng(0)
X = RNG.normal(size=(3, 4)).astype(np.float32)
Y = RNG.normal(size=(3, 4)).astype(np.float32)
P = RNG.uniform(0.05, 0.95, size=(3, 4)).astype(np.float32)

EAGER = [
    ("add", lambda: ops.add(X, Y), X + Y),
    ("subtract", lambda: ops.subtract(X, 2.0), X - 2.0),
    ("multiply", lambda: ops.multiply(X, Y), X * Y),
    ("divide", lambda: ops.divide(X, 2), X / 2),
    ("matmul", lambda: ops.matmul(X, Y.T), X @ Y.T),
    ("maximum", lambda: ops.maximum(X, 0.0), np.maximum(X, 0)),
    ("minimum", lambda: ops.minimum(X, Y), np.minimum(X, Y)),
    ("square", lambda: ops.square(X), X * X),
    ("sqrt", lambda: ops.sqrt(P), np.sqrt(P)),
    ("exp", lambda: ops.exp(X), np.exp(X)),
    ("log", lambda: ops.log(P), np.log(P)),
    ("log1p", lambda: ops.log1p(P), np.log1p(P)),
    ("abs", lambda: ops.abs(X), np.abs(X)),
    ("negative", lambda: ops.negative(X), -X),
    ("clip", lambda: ops.clip(X, -0.5, 0.5), np.clip(X, -0.5, 0.5)),
    ("where", lambda: ops.where(X > 0, X, Y), np.where(X > 0, X, Y)),
    ("sum", lambda: ops.sum(X, axis=1), X.sum(1)),
    ("mean", lambda: ops.mean(X), X.mean()),
    ("mean_keepdims", lambda: ops.mean(X, axis=(0, 1), keepdims=True), X.mean((0, 1), keepdims=True)),
    ("max", lambda: ops.max(X, axis=0), X.max(0)),
    ("min", lambda: ops.min(X, axis=-1), X.min(-1)),
    ("var", lambda: ops.var(X, axis=0), X.var(0)),
    ("std", lambda: ops.std(X), X.std()),
    ("logsumexp", lambda: ops.logsumexp(X, axis=1), np.log(np.exp(X).sum(1))),
    ("argmax", lambda: ops.argmax(X, axis=1), X.argmax(1)),
    ("argmax_flat", lambda: ops.argmax(X), X.argmax()),
    ("reshape", lambda: ops.reshape(X, (2, -1)), X.reshape(2, -1)),
    ("transpose", lambda: ops.transpose(X), X.T),
    ("expand_dims", lambda: ops.expand_dims(X, 1), X[:, None]),
    ("squeeze", lambda: ops.squeeze(X[:1]), X[0]),
    ("concatenate", lambda: ops.concatenate([X, Y], axis=0), np.concatenate([X, Y])),
    ("stack", lambda: ops.stack([X, Y], axis=1), np.stack([X, Y], axis=1)),
    ("tile", lambda: ops.tile(X, (2, 1)), np.tile(X, (2, 1))),
    ("broadcast_to", lambda: ops.broadcast_to(X[:1], (3, 4)), np.broadcast_to(X[:1], (3, 4))),
    ("take", lambda: ops.take(X, np.array([2, 0]), axis=1), X[:, [2, 0]]),
    ("take_flat", lambda: ops.take(X, np.array([5])), X.ravel()[[5]]),
    ("slice", lambda: ops.slice(X, (1, 1), (2, -1)), X[1:3, 1:]),
    ("ones", lambda: ops.ones((2, 3)), np.ones((2, 3))),
    ("zeros_like", lambda: ops.zeros_like(X), np.zeros_like(X)),
    ("full", lambda: ops.full((2,), 7.5), np.full(2, 7.5)),
    ("ones_like_int", lambda: ops.ones_like(X, dtype="int64"), np.ones((3, 4), np.int64)),
    ("arange", lambda: ops.arange(5), np.arange(5)),
    ("one_hot", lambda: ops.one_hot(np.array([0, 2]), 3), np.eye(3)[[0, 2]]),
    ("cast", lambda: ops.cast(X, "int64"), X.astype(np.int64)),
    ("sigmoid", lambda: ops.sigmoid(X), 1 / (1 + np.exp(-X))),
    ("softplus", lambda: ops.softplus(X * 50), np.logaddexp(0, X.astype(np.float64) * 50)),
    ("relu", lambda: ops.relu(X), np.maximum(X, 0)),
    ("leaky_relu", lambda: ops.leaky_relu(X), np.where(X > 0, X, 0.2 * X)),
    ("tanh", lambda: ops.tanh(X), np.tanh(X)),
    ("softmax", lambda: ops.softmax(X), np.exp(X) / np.exp(X).sum(-1, keepdims=True)),
    ("log_softmax", lambda: ops.log_softmax(X, axis=0), X - np.log(np.exp(X).sum(0, keepdims=True))),
    ("log_sigmoid", lambda: ops.log_sigmoid(X), -np.logaddexp(0, -X)),
    ("bce_logits", lambda: ops.binary_crossentropy(P.round(), X, from_logits=True),
     np.logaddexp(0, X) - P.round() * X),
    ("bce_probs", lambda: ops.binary_crossentropy(P.round(), P),
     -(P.round() * np.log(P) + (1 - P.round()) * np.log(1 - P))),
    ("sparse_cce", lambda: ops.sparse_categorical_crossentropy(np.array([1, 0, 3]), X, from_logits=True),
     -(X - np.log(np.exp(X).sum(-1, keepdims=True)))[[0, 1, 2], [1, 0, 3]]),
]


def test_ops_in_one_traced_graph_equal_numpy():
    """Inside a trace every op (numpy arguments included) emits nodes: one graph, one session for the table."""
    b = GraphBuilder()
    with TraceContext(b, training=False).active():
        values = [fn() for _, fn, _ in EAGER]
    for (name, _, _), v in zip(EAGER, values):
        assert isinstance(v, of.graph.Value), name
        b.output(v, f"case/{name}")
    model = check_full(b.to_model())
    outs = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {})
    for (name, _, expected), out in zip(EAGER, outs):
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6, err_msg=name)
        assert out.shape == np.shape(expected), name


@pytest.mark.parametrize("name", ["matmul", "where", "mean_keepdims", "argmax", "one_hot", "softplus", "reshape"])
def test_eager_ops_return_numpy(name):
    _, fn, expected = next(case for case in EAGER if case[0] == name)
    out = fn()
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    assert out.shape == np.shape(expected)


def _program(build, *inputs):
    """Trace ``build`` on symbolic inputs ((name, dtype, shape) with "batch"), return a session and outputs."""
    b = GraphBuilder()
    rng = CounterRng(lambda: b.const(np.asarray([1, 0], np.int64)))
    with TraceContext(b, training=True, random_uniform=rng.uniform).active():
        values = [b.input(name, onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dt)), shape)
                  for name, dt, shape in inputs]
        outs = build(*values)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    for k, v in enumerate(outs):
        b.output(v, f"out{k}")
    model = check_full(b.to_model())
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess, outs


def test_shapes_hold_the_dynamic_batch():
    def build(x):
        n = ops.shape(x)[0]
        assert ops.shape(x)[1] == 4 and isinstance(n, of.graph.Value)
        labels = ops.concatenate([ops.ones((n, 1)), ops.zeros((n, 1))], axis=0)
        noise = ops.random.normal((n, 2), stddev=0.1)
        flat = ops.reshape(x, (n, 2, 2))
        return labels, noise, flat

    sess, (labels, noise, flat) = _program(build, ("x", np.float32, ("batch", 4)))
    assert noise.shape == ("batch", 2) and flat.shape == ("batch", 2, 2) and labels.shape[1] == 1
    for n in (1, 5):
        out = sess.run(None, {"x": np.ones((n, 4), np.float32)})
        assert out[0].shape == (2 * n, 1) and out[0][:n].all() and not out[0][n:].any()
        assert out[1].shape == (n, 2) and out[2].shape == (n, 2, 2)


def test_numpy_arrays_meet_symbolic_values():
    def build(x):
        return np.full(4, 2.0) * x, x - np.arange(4.0), x > 0.5

    sess, outs = _program(build, ("x", np.float32, ("batch", 4)))
    assert outs[0].dtype == onnx.TensorProto.FLOAT          # the float64 array follows the tensor's type
    a, c, d = sess.run(None, {"x": X})
    np.testing.assert_allclose(a, 2 * X, rtol=1e-6)
    np.testing.assert_allclose(c, X - np.arange(4.0), rtol=1e-6)
    np.testing.assert_array_equal(d, X > 0.5)


torch = pytest.importorskip("torch")

GRADS = [
    ("sigmoid_mean", lambda x, y: ops.mean(ops.sigmoid(x) * y), lambda x, y: (torch.sigmoid(x) * y).mean()),
    ("softplus", lambda x, y: ops.sum(ops.softplus(x * 3.0) * y),
     lambda x, y: (torch.nn.functional.softplus(x * 3) * y).sum()),
    ("bce", lambda x, y: ops.mean(ops.binary_crossentropy(ops.sigmoid(y), x, from_logits=True)),
     lambda x, y: torch.nn.functional.binary_cross_entropy_with_logits(x, torch.sigmoid(y))),
    ("log_softmax", lambda x, y: ops.sum(ops.log_softmax(x) * y), lambda x, y: (torch.log_softmax(x, -1) * y).sum()),
    ("where_clip", lambda x, y: ops.sum(ops.where(x > 0, ops.clip(y, -0.3, 0.3), x * y)),
     lambda x, y: torch.where(x > 0, torch.clamp(y, -0.3, 0.3), x * y).sum()),
    ("concat_matmul", lambda x, y: ops.sum(ops.square(ops.matmul(ops.concatenate([x, y], axis=0), ops.transpose(y)))),
     lambda x, y: ((torch.cat([x, y]) @ y.T) ** 2).sum()),
    ("leaky_std", lambda x, y: ops.std(ops.leaky_relu(x * y, 0.1)),
     lambda x, y: torch.nn.functional.leaky_relu(x * y, 0.1).std(unbiased=False)),
]


@pytest.mark.parametrize("loss_fn,torch_fn", [c[1:] for c in GRADS], ids=[c[0] for c in GRADS])
def test_tape_gradients_equal_torch(loss_fn, torch_fn):
    def build(x, y):
        with of.GradientTape(persistent=True) as tape:
            loss = loss_fn(x, y)
        return [loss] + tape.gradient(loss, [x, y])

    sess, _ = _program(build, ("x", np.float32, ("batch", 4)), ("y", np.float32, ("batch", 4)))
    for n in (3, 2):
        loss, gx, gy = sess.run(None, {"x": X[:n], "y": Y[:n]})
        tx, ty = (torch.tensor(a[:n], dtype=torch.float64, requires_grad=True) for a in (X, Y))
        t_loss = torch_fn(tx, ty)
        t_loss.backward()
        np.testing.assert_allclose(loss, t_loss.item(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(gy, ty.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_tape_records_only_its_block_and_honors_stop_gradient():
    def build(x, y):
        before = x * 3.0                              # computed before the tape: a constant to it
        with of.GradientTape(persistent=True) as tape:
            loss = ops.sum(before * y + ops.stop_gradient(y * y) + x * x)
            with tape.stop_recording():
                hidden = x * y
            extra = ops.sum(hidden * y)
        g = tape.gradient(loss, {"x": x, "y": y})
        g_extra = tape.gradient(extra, [x, y])
        unconnected = tape.gradient(ops.sum(x), [y], unconnected_gradients="zero")
        assert tape.gradient(ops.sum(x), y) is None   # made after the tape closed: not recorded
        return g["x"], g["y"], g_extra[0] if g_extra[0] is not None else ops.zeros_like(x), g_extra[1], \
            unconnected[0]

    sess, _ = _program(build, ("x", np.float32, ("batch", 4)), ("y", np.float32, ("batch", 4)))
    gx, gy, gex, gey, zero = sess.run(None, {"x": X, "y": Y})
    np.testing.assert_allclose(gx, 2 * X, rtol=1e-6)              # not 3 * y + 2x: `before` is a constant
    np.testing.assert_allclose(gy, 3 * X, rtol=1e-6)              # not 3x + 2y: stop_gradient(y * y)
    np.testing.assert_allclose(gex, 0 * X)                         # hidden = x * y was not recorded
    np.testing.assert_allclose(gey, X * Y, rtol=1e-6)
    np.testing.assert_array_equal(zero, np.zeros_like(Y))


def test_symbolic_errors_name_the_fix():
    with pytest.raises(ValueError, match="one-argument form"):
        def build(x):
            return ops.where(x > 0)
        _program(build, ("x", np.float32, ("batch", 4)))
    with pytest.raises(ValueError, match="at most one dimension can be -1"):
        ops.reshape(X, (-1, -1))


def test_bincount_without_minlength_follows_the_data():
    # Keras counts up to max(x) + 1 when minlength is not given (keras.io's ops-only examples call it so).
    x = np.array([0, 1, 1, 3, 5])
    np.testing.assert_array_equal(ops.bincount(x), np.bincount(x))
    np.testing.assert_array_equal(ops.bincount(x, minlength=8), np.bincount(x, minlength=8))
    w = np.array([0.5, 1.0, 2.0, 0.25, 4.0], np.float32)
    np.testing.assert_allclose(ops.bincount(x, weights=w), np.bincount(x, weights=w))
    np.testing.assert_array_equal(ops.bincount(np.array([[0, 2], [1, 1]])), [[1, 0, 1], [0, 2, 0]])
    assert np.asarray(ops.bincount(np.zeros((0,), np.int64))).shape == (0,)
