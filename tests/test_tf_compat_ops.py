"""``import onnxforge as tf``: the tf.* math, nn, random and array functions give TensorFlow's values, dtypes
and shapes (checked against TensorFlow itself), on arrays, in a Lambda layer of a functional model and in a
traced custom train_step; arguments onnxforge cannot honour raise instead of being ignored."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as tf
from onnxforge import keras

rtf = pytest.importorskip("tensorflow")

X = np.array([[1.0, -2.0, 3.0], [4.0, 5.0, -6.0]], "float32")
I32 = np.array([[3, -2], [7, 4]], "int32")
B1, B2 = X > 0, X > 2
LOGITS = np.array([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]], "float32")
SOFT = np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]], "float32")


def _get(root, path):
    for part in path.split("."):
        root = getattr(root, part)
    return root


CASES = [
    ("math.cumsum", (X,), {"axis": 1, "exclusive": True}), ("math.cumsum", (X,), {"axis": 1, "reverse": True}),
    ("math.cumsum", (X,), {"exclusive": True, "reverse": True}), ("cumsum", (I32,), {"axis": 1}),
    ("nn.l2_normalize", (X,), {}), ("nn.l2_normalize", (X,), {"axis": 0}), ("math.l2_normalize", (X, [0, 1]), {}),
    ("tanh", (X,), {}), ("sigmoid", (X,), {}), ("pow", (I32, 2), {}), ("pow", (X, 2.0), {}),
    ("add", (X, 1.0), {}), ("multiply", (X, X), {}), ("subtract", (X, 2.0), {}), ("divide", (X, 4.0), {}),
    ("negative", (I32,), {}), ("sign", (I32,), {}), ("abs", (I32,), {}),
    ("math.rsqrt", (np.abs(X),), {}), ("math.reciprocal", (X,), {}), ("math.softplus", (X,), {}),
    ("math.log_sigmoid", (X,), {}), ("math.squared_difference", (X, 1.0), {}), ("math.log", (np.abs(X),), {}),
    ("greater", (X, 0.0), {}), ("less", (X, 0.0), {}), ("greater_equal", (X, 3.0), {}), ("less_equal", (X, 3.0), {}),
    ("logical_and", (B1, B2), {}), ("logical_or", (B1, B2), {}), ("logical_not", (B1,), {}),
    ("math.is_nan", (X,), {}), ("round", (np.array([0.5, 1.5, 2.5, -0.5], "float32"),), {}),
    ("pad", (X, [[1, 0], [0, 2]]), {}), ("pad", (X, [[1, 1], [2, 0]]), {"mode": "reflect"}),
    ("pad", (X, [[1, 1], [2, 0]]), {"mode": "SYMMETRIC"}), ("pad", (X, [[0, 1], [1, 0]]), {"constant_values": 7}),
    ("norm", (X,), {}), ("norm", (X,), {"axis": 1, "keepdims": True}), ("norm", (X,), {"ord": 1, "axis": 0}),
    ("norm", (X,), {"ord": np.inf, "axis": -1}), ("norm", (X,), {"ord": 3, "axis": 1}),
    ("norm", (X,), {"ord": 1, "axis": [0, 1]}), ("norm", (X,), {"ord": np.inf, "axis": [0, 1]}),
    ("norm", (X,), {"ord": "fro", "axis": [0, 1]}), ("linalg.norm", (X,), {"axis": 0}),
    ("size", (X,), {}), ("rank", (X,), {}), ("gather_nd", (X, [[1, 2], [0, 0]]), {}), ("gather_nd", (X, [[1]]), {}),
    ("unstack", (X,), {}), ("unstack", (X,), {"axis": 1}), ("clip_by_norm", (X, 2.0), {}),
    ("clip_by_norm", (X, 2.0), {"axes": [1]}), ("clip_by_norm", (np.zeros(3, "float32"), 1.0), {}),
    ("clip_by_global_norm", ([X, X[0]], 3.0), {}), ("clip_by_global_norm", ([X, None], 100.0), {}),
    ("linalg.global_norm", ([X, X[0]],), {}),
    ("nn.softmax_cross_entropy_with_logits", (), {"labels": SOFT, "logits": LOGITS}),
    ("nn.softmax_cross_entropy_with_logits", (SOFT.T, LOGITS.T), {"axis": 0}),
    ("nn.sparse_softmax_cross_entropy_with_logits", (), {"labels": [2, 0], "logits": LOGITS}),
    ("nn.sigmoid_cross_entropy_with_logits", (), {"labels": SOFT, "logits": LOGITS}),
    ("reduce_logsumexp", (X,), {"axis": 1}), ("math.reduce_std", (X,), {"axis": 0}),
    ("math.reduce_variance", (X,), {}), ("math.top_k", (X, 2), {}), ("sort", (X,), {"direction": "DESCENDING"}),
    ("argsort", (X,), {"axis": 0}), ("reverse", (X, [1]), {}), ("roll", (X, [1, -1], [0, 1]), {}),
    ("where", (X > 0,), {}), ("eye", (2,), {"batch_shape": [3]}), ("eye", (2, 3), {}),
    ("nn.silu", (X,), {"beta": 2.0}), ("matmul", (X, X), {"adjoint_b": True}),
    ("constant", ([1, 2],), {}), ("constant", (1.5,), {}), ("range", (5,), {}), ("range", (0.0, 2.0, 0.5), {}),
    ("convert_to_tensor", (3,), {}), ("one_hot", ([0, 2], 3), {"on_value": 5, "off_value": -1}),
    ("one_hot", ([0, 2], 3), {"axis": 0}), ("nn.softmax", (X,), {}), ("math.floordiv", (I32, 3), {}),
    ("linspace", (0.0, 250, 251), {}), ("linspace", (0, 10, 5), {}), ("linspace", (np.float64(-1), 1.0, 4), {}),
    ("linspace", ([0.0, 1.0], [1.0, 3.0], 3), {"axis": 1}), ("linspace", (X[0], X[1], 4), {}),
]


def test_integer_division_is_true_division():
    """TensorFlow divides int32 into float64; onnxforge's eager ops hand float64 arrays over as float32 (Keras's
    floatx, ``eager/executor.py``), so eagerly only the values are TensorFlow's."""
    got, want = tf.divide(I32, I32 + 10), rtf.divide(I32, I32 + 10).numpy()
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6)
    assert np.asarray(got).dtype.kind == "f"


def _compare(ours, theirs, label):
    if isinstance(theirs, (list, tuple)):
        assert isinstance(ours, (list, tuple)) and len(ours) == len(theirs), label
        for a, b in zip(ours, theirs):
            _compare(a, b, label)
        if hasattr(theirs, "_fields"):
            assert ours._fields == theirs._fields, label
        return
    if theirs is None:
        assert ours is None, label
        return
    want = theirs.numpy()
    got = np.asarray(ours)
    assert got.dtype == want.dtype, f"{label}: dtype {got.dtype} != {want.dtype}"
    assert got.shape == want.shape, f"{label}: shape {got.shape} != {want.shape}"
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-6, err_msg=label)


@pytest.mark.parametrize("path,args,kwargs", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_eager_results_match_tensorflow(path, args, kwargs):
    _compare(_get(tf, path)(*args, **kwargs), _get(rtf, path)(*args, **kwargs), f"tf.{path}{args}{kwargs}")


def test_only_tensorflow_2s_top_level_names_exist():
    """tf.log / tf.rsqrt are TensorFlow 1 names: TensorFlow 2 spells them tf.math.*, so must we."""
    for name in ("log", "rsqrt", "softplus", "is_nan"):
        assert not hasattr(rtf, name) and not hasattr(tf, name) and hasattr(tf.math, name)


# Each takes the module (onnxforge or TensorFlow) and a tensor: onnxforge's runs as a Lambda layer's graph.
GRAPH_FNS = [
    lambda t, x: t.math.cumsum(x, axis=1, exclusive=True, reverse=True),
    lambda t, x: t.nn.l2_normalize(x),
    lambda t, x: t.math.top_k(x, 2).values + t.cast(t.math.top_k(x, 2).indices, "float32"),
    lambda t, x: t.pow(t.tanh(x), 2.0) + t.sigmoid(x) - t.divide(t.multiply(x, 2.0), t.add(t.abs(x), 1.0)),
    lambda t, x: t.math.rsqrt(t.abs(x) + 1.0) * t.math.reciprocal(t.subtract(t.abs(x), -1.0)) + t.math.softplus(x),
    lambda t, x: t.cast(t.logical_or(t.logical_and(t.greater(x, 0.0), t.less(x, 4.0)), t.logical_not(x > -3.0)),
                     "float32"),
    lambda t, x: t.pad(x, [[0, 0], [1, 2]], mode="REFLECT"),
    lambda t, x: t.norm(x, axis=1, keepdims=True) + t.cast(t.size(x), "float32"),
    lambda t, x: t.gather_nd(x, [[0, 1], [1, 2]]),
    lambda t, x: t.stack(t.unstack(x, axis=1)[::-1], axis=1),
    lambda t, x: t.clip_by_norm(x, 1.0, axes=[1]) + t.clip_by_global_norm([x], 2.0)[0][0],
    lambda t, x: t.nn.softmax_cross_entropy_with_logits(labels=t.nn.softmax(x * 0.5), logits=x),
    lambda t, x: t.nn.sparse_softmax_cross_entropy_with_logits(labels=t.argmax(x, axis=1), logits=x),
    lambda t, x: t.reduce_logsumexp(x, axis=1),
]


@pytest.mark.parametrize("index", range(len(GRAPH_FNS)))
def test_functions_in_a_lambda_layer_match_tensorflow(index):
    fn = GRAPH_FNS[index]
    x = np.array([[1.0, -2.0, 3.0], [0.5, 2.0, -1.0]], "float32")
    inp = keras.Input((3,))
    model = keras.Model(inp, keras.layers.Lambda(lambda v: fn(tf, v))(inp))
    want = fn(rtf, rtf.constant(x)).numpy()
    np.testing.assert_allclose(np.asarray(model.predict(x, verbose=0)), want, rtol=2e-5, atol=1e-6)


def test_integer_arithmetic_and_reductions_keep_int32():
    for got, want in ((tf.add(I32, 1), rtf.add(I32, 1)), (tf.reduce_sum(I32, axis=0), rtf.reduce_sum(I32, axis=0)),
                      (tf.reduce_mean(I32), rtf.reduce_mean(I32)), (tf.maximum(I32, 0), rtf.maximum(I32, 0))):
        _compare(got, want, "int32")


def test_a_train_step_with_clipping_and_softmax_crossentropy_matches_tensorflow():
    """One SGD step of a custom train_step (GradientTape, sparse/soft crossentropy, clip_by_global_norm,
    tf.Variable) moves the weights exactly as the same step in TensorFlow."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 3)).astype("float32"), rng.integers(0, 4, size=(8,)).astype("int32")
    w0 = rng.normal(size=(3, 4)).astype("float32")

    def loss_of(t, logits, labels):
        soft = t.one_hot(labels, 4) * 0.9 + 0.025
        return t.reduce_mean(t.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
                             + t.nn.softmax_cross_entropy_with_logits(labels=soft, logits=logits))

    class Model(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(4, use_bias=False)
            self.scale = tf.Variable(1.0, trainable=False)

        def call(self, inputs):
            return self.dense(inputs) * self.scale

        def train_step(self, data):
            xb, yb = data
            with tf.GradientTape() as tape:
                loss = loss_of(tf, self(xb), yb)
            grads, _ = tf.clip_by_global_norm(tape.gradient(loss, self.trainable_weights), 0.5)
            self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
            return {"loss": loss}

    model = Model()
    model.build((None, 3))
    model.dense.kernel.assign(w0)
    model.compile(optimizer=keras.optimizers.SGD(1.0))
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)

    w = rtf.Variable(w0)
    with rtf.GradientTape() as tape:
        loss = loss_of(rtf, rtf.matmul(x, w), y)
    (g,), _ = rtf.clip_by_global_norm(tape.gradient(loss, [w]), 0.5)
    np.testing.assert_allclose(model.dense.kernel.numpy(), (w - g).numpy(), rtol=1e-5, atol=1e-6)


def test_random_categorical_and_shuffle_have_tensorflows_distribution():
    logits = np.log(np.array([[0.1, 0.6, 0.3], [1.0, 0.0, 0.0]], "float32") + 1e-30)
    draws = np.asarray(tf.random.categorical(logits, 4000, seed=3))
    assert draws.shape == (2, 4000) and draws.dtype == np.int64
    np.testing.assert_allclose(np.bincount(draws[0], minlength=3) / 4000, [0.1, 0.6, 0.3], atol=0.03)
    assert (draws[1] == 0).all()
    assert np.asarray(tf.random.categorical(logits, 2, dtype="int32")).dtype == np.int32
    rows = np.arange(12).reshape(6, 2)
    firsts = [np.asarray(tf.random.shuffle(rows, seed=s))[0, 0] for s in range(60)]
    assert sorted(np.asarray(tf.random.shuffle(rows, seed=1)).tolist()) == rows.tolist()
    assert len(set(firsts)) == 6


def test_a_random_draw_in_a_lambda_layer():
    inp = keras.Input((5,))
    model = keras.Model(inp, keras.layers.Lambda(lambda v: tf.cast(tf.random.categorical(v, 3), "float32"))(inp))
    out = model.predict(np.log(np.eye(5, dtype="float32") + 1e-30), verbose=0)
    np.testing.assert_array_equal(out, np.repeat(np.arange(5.0)[:, None], 3, axis=1))


def test_arguments_onnxforge_cannot_honour_raise():
    with pytest.raises(NotImplementedError, match="batch_dims"):
        tf.gather_nd(X, [[0]], batch_dims=1)
    with pytest.raises(NotImplementedError, match="output_type"):
        tf.matmul(X, X.T, output_type="int32")
    with pytest.raises(NotImplementedError, match="decay"):
        tf.keras.optimizers.legacy.Adam(decay=0.01)
    with pytest.raises(ValueError, match="maxval"):
        tf.random.uniform((2,), dtype="int32")
    with pytest.raises(ValueError, match="constraint=3"):
        tf.Variable(1.0, constraint=3)


def test_variable_takes_tensorflows_arguments():
    v = tf.Variable([1.0, 2.0])
    assert v.dtype == np.float32 and v.trainable and v.name != tf.Variable(0).name
    assert tf.Variable(3).dtype == np.int32 and tf.Variable(np.zeros(2)).dtype == np.float64
    assert not tf.Variable(1.0, trainable=False).trainable
    assert isinstance(keras.layers.Dense(1).add_weight(shape=(1,), name="w"), tf.Variable)
    assert tf.keras.optimizers.legacy.SGD(0.1).learning_rate == 0.1


def test_old_lr_argument():
    """tf.keras 2 took ``lr=``: the legacy classes still do; the current ones raise as Keras 3 does, naming
    ``learning_rate``."""
    sgd = tf.keras.optimizers.legacy.SGD(lr=0.05, momentum=0.9)
    assert sgd.learning_rate == pytest.approx(0.05) and sgd.momentum == 0.9
    with pytest.raises(ValueError, match="not both"):
        tf.keras.optimizers.legacy.Adam(lr=0.1, learning_rate=0.2)
    with pytest.raises(ValueError, match=r"not recognized.*'lr': 0.01.*learning_rate="):
        tf.keras.optimizers.Adam(lr=0.01)


def test_linspace_rejects_a_bad_count():
    with pytest.raises(ValueError, match=r"num must be a non-negative integer. Received: num=2.5"):
        tf.linspace(0.0, 1.0, 2.5)


@pytest.mark.parametrize("fn,shape", [("depth_to_space", (2, 3, 2, 8)), ("space_to_depth", (2, 4, 6, 3))])
def test_sub_pixel_rearrangements_match_tensorflow(fn, shape):
    # ESPCN-style super-resolution ends with tf.nn.depth_to_space; TensorFlow runs NCHW on GPU only, so the
    # NCHW layout is checked as the transpose of the NHWC answer.
    x = np.random.default_rng(1).normal(size=shape).astype("float32")
    want = getattr(rtf.nn, fn)(x, 2).numpy()
    np.testing.assert_array_equal(np.asarray(getattr(tf.nn, fn)(x, 2)), want)
    nchw = getattr(tf.nn, fn)(x.transpose(0, 3, 1, 2), 2, data_format="NCHW")
    np.testing.assert_array_equal(np.asarray(nchw), want.transpose(0, 3, 1, 2))
    with pytest.raises(ValueError, match="data_format must be 'NHWC' or 'NCHW'.*NCHW_VECT_C"):
        getattr(tf.nn, fn)(x, 2, data_format="NCHW_VECT_C")
