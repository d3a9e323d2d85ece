"""tf.keras 2's ``keras.backend`` tensor functions (``K.mean``, ``K.square`` ...) against TensorFlow's
``tf.keras.backend`` (Keras 3's legacy shim), eagerly and inside a compiled custom metric."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
tf = pytest.importorskip("tensorflow")

import onnxforge as of  # noqa: E402

K = of.keras.backend
TK = tf.keras.backend
X = np.array([[0.5, -1.0, 2.0], [3.0, 0.25, -0.75]], np.float32)
P = np.array([[0.2, 0.5, 0.3], [0.7, 0.1, 0.2]], np.float32)
T = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], np.float32)

CASES = {
    "sum": lambda B: B.sum(X, axis=1, keepdims=True),
    "max": lambda B: B.max(X, axis=0),
    "prod": lambda B: B.prod(X),
    "square": lambda B: B.square(X),
    "clip": lambda B: B.clip(X, -0.5, 1.0),
    "clip_inverted": lambda B: B.clip(X, 1.0, 0.5),
    "concatenate": lambda B: B.concatenate([B.constant(X), B.constant(X)], axis=0),
    "binary_crossentropy": lambda B: B.binary_crossentropy(T, P),
    "binary_crossentropy_logits": lambda B: B.binary_crossentropy(T, X, from_logits=True),
    "categorical_crossentropy": lambda B: B.categorical_crossentropy(T, P * 2.0),
    "sparse_categorical_crossentropy": lambda B: B.sparse_categorical_crossentropy(np.array([1, 0]), P),
    "softmax": lambda B: B.softmax(B.constant(X)),
    "hard_sigmoid": lambda B: B.hard_sigmoid(X * 3.0),
    "relu_leaky_capped": lambda B: B.relu(X, alpha=0.1, max_value=1.5),
    "relu_threshold": lambda B: B.relu(X, threshold=0.4),
    "l2_normalize": lambda B: B.l2_normalize(X, axis=-1),
    "dot": lambda B: B.dot(B.constant(X), B.constant(X.T)),
    "dot_3d": lambda B: B.dot(B.constant(X), B.constant(np.ones((2, 3, 4), np.float32))),
    "switch": lambda B: B.switch(B.greater(X, 0.0), B.constant(X), B.constant(-X)),
    "argmax": lambda B: B.argmax(X),
    "any": lambda B: B.any(X > 2.5, axis=1),
    "batch_flatten": lambda B: B.batch_flatten(np.ones((2, 3, 4), np.float32)),
    "gather": lambda B: B.gather(X, [1, 1]),
    "permute_dimensions": lambda B: B.permute_dimensions(X, (1, 0)),
    "cumsum": lambda B: B.cumsum(X, axis=1),
    "one_hot": lambda B: B.one_hot(np.array([2, 0]), 3),
    "bias_add": lambda B: B.bias_add(X, np.array([1.0, 2.0, 3.0], np.float32)),
    "pow": lambda B: B.pow(np.abs(X), 1.5),
    "int_shape": lambda B: np.array(B.int_shape(B.variable(X))),
    "count_params": lambda B: B.count_params(B.variable(X)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_backend_function_matches_tf_keras(name):
    got, want = CASES[name](K), CASES[name](TK)
    np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want, np.float64), rtol=1e-5, atol=1e-6)


def test_variable_helpers_and_shapes():
    v = K.variable(X)
    assert K.dtype(v) == "float32" and K.ndim(v) == 2
    np.testing.assert_array_equal(K.eval(v), X)
    K.update_add(v, np.ones_like(X))
    np.testing.assert_array_equal(K.get_value(v), X + 1)
    assert K.int_shape(of.keras.Input((3,))) == (None, 3)
    assert K.cast_to_floatx([1, 2]).dtype == np.float32


@pytest.mark.parametrize("name", ["function", "learning_phase", "placeholder", "in_train_phase"])
def test_names_keras3_removed_say_what_replaces_them(name):
    with pytest.raises(AttributeError, match="removed in Keras 3"):
        getattr(K, name)


def test_custom_metric_written_with_K_trains_and_matches_numpy():
    """The tf.keras 2 idiom: a metric function built from ``K.mean``/``K.square``/``K.epsilon``."""
    def r2(y_true, y_pred):
        ss_res = K.sum(K.square(y_true - y_pred))
        ss_tot = K.sum(K.square(y_true - K.mean(y_true)))
        return 1 - ss_res / (ss_tot + K.epsilon())

    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 3)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5]], np.float32)
    model = of.keras.Sequential([of.keras.Input((3,)), of.keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", metrics=[r2])
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    _, got = model.evaluate(x, y, batch_size=16, verbose=0)
    pred = model.predict(x, verbose=0)
    want = 1 - ((y - pred) ** 2).sum() / (((y - y.mean()) ** 2).sum() + 1e-7)
    np.testing.assert_allclose(got, want, rtol=1e-4)
