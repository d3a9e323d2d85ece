"""API inputs that leaked onnxruntime errors or passed silently (issue 11): each now fails in Python with
an error naming the layer or argument, and where Keras 3 (torch backend) refuses the same input, it is
the oracle that the input is bad."""
from __future__ import annotations

import os

import numpy as np
import pytest

import onnxforge as tf

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

L = tf.keras.layers


def _embedder(dtype="int32"):
    model = tf.keras.Sequential([L.Input((2,), dtype=dtype), L.Embedding(10, 3, name="words"), L.Flatten(),
                                 L.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", device="cpu")
    return model


def _keras_embedder():
    return keras.Sequential([keras.Input((2,), dtype="int32"), keras.layers.Embedding(10, 3)])


@pytest.mark.parametrize("ids", [[[1, 10]], [[1, 10**6]], np.array([[1, 1e19]]), np.array([[0, 2**63]], np.uint64)])
def test_embedding_ids_past_the_table(ids):
    with pytest.raises(Exception, match="index out of range"):     # the oracle refuses them too
        _keras_embedder().predict(np.asarray(ids).astype(np.float64).clip(-1, 1e6).astype(np.int64), verbose=0)
    model = _embedder()
    y = np.zeros((1, 1), np.float32)
    for call in (lambda: model.predict(np.asarray(ids), verbose=0), lambda: model.evaluate(ids, y, verbose=0),
                 lambda: model.fit(np.asarray(ids), y, verbose=0), lambda: model.train_on_batch(ids, y)):
        with pytest.raises(ValueError, match=r"Embedding layer 'words'.*input_dim=10"):
            call()
    assert int(model.optimizer.iterations.numpy()) == 0


@pytest.mark.parametrize("dtype", ["int32", "int64", "float32"])
def test_negative_embedding_ids_are_refused_not_wrapped(dtype):
    """ONNX Gather wraps -1 to the last row; onnxforge refuses it (Keras's contract: ids in [0, input_dim))."""
    model = _embedder(dtype)
    with pytest.raises(ValueError, match=r"Embedding layer 'words'.*Received: -1"):
        model.predict(np.array([[1, -1]], dtype), verbose=0)
    with pytest.raises(ValueError, match=r"Embedding layer 'words'"):
        model.predict(np.array([[1, np.nan if dtype == "float32" else 10]], dtype), verbose=0)
    ok = model.predict(np.array([[0, 9]], dtype), verbose=0)   # the edges of the table are fine
    assert ok.shape == (1, 1) and np.isfinite(ok).all()


def test_embedding_check_in_a_functional_model_with_two_inputs():
    ids = L.Input((3,), dtype="int64", name="ids")
    other = L.Input((2,), name="other")
    h = L.Concatenate()([L.Flatten()(L.Embedding(5, 2, name="table")(ids)), other])
    model = tf.keras.Model([ids, other], L.Dense(1)(h))
    with pytest.raises(ValueError, match=r"Embedding layer 'table'.*Received: 5 in input 'ids'"):
        model.predict([np.array([[0, 1, 5]]), np.zeros((1, 2), np.float32)], verbose=0)


def test_conv_window_larger_than_a_dynamic_input():
    x = keras.Input((None, None, 1))
    oracle = keras.Model(x, keras.layers.Conv2D(2, 5)(x))
    with pytest.raises(Exception, match="Kernel size can't be greater than actual input size"):
        oracle.predict(np.zeros((1, 3, 3, 1), np.float32), verbose=0)
    x = L.Input((None, None, 1))
    model = tf.keras.Model(x, L.Conv2D(2, 5, name="conv")(x))
    with pytest.raises(ValueError, match=r"Layer 'conv' \(Conv2D\).*at least 5.*Received: input '\w+' of shape "
                                         r"\(1, 3, 3, 1\)"):
        model.predict(np.zeros((1, 3, 3, 1), np.float32), verbose=0)
    assert model.predict(np.zeros((1, 5, 6, 1), np.float32), verbose=0).shape == (1, 1, 2, 2)
    pool = tf.keras.Sequential([L.Input((None, 2)), L.MaxPooling1D(3, name="pool")])
    with pytest.raises(ValueError, match=r"Layer 'pool' \(MaxPooling1D\).*at least 3"):
        pool.predict(np.zeros((1, 2, 2), np.float32), verbose=0)


def test_train_on_batch_on_an_empty_batch_fails_and_does_not_step():
    oracle = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    oracle.compile(optimizer="sgd", loss="mse")
    with pytest.raises(Exception):
        oracle.train_on_batch(np.zeros((0, 3), np.float32), np.zeros((0, 2), np.float32))
    model = tf.keras.Sequential([L.Input((3,)), L.Dense(2)])
    model.compile(optimizer="sgd", loss="mse", device="cpu")
    before = model.get_weights()
    with pytest.raises(ValueError, match="train_on_batch.*empty batch"):
        model.train_on_batch(np.zeros((0, 3), np.float32), np.zeros((0, 2), np.float32))
    assert int(model.optimizer.iterations.numpy()) == 0
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_model_of_no_inputs_or_outputs_is_refused():
    with pytest.raises(ValueError, match="`inputs` argument cannot be empty"):
        keras.Model(inputs=[], outputs=[])
    with pytest.raises(ValueError, match="`inputs` argument cannot be empty"):
        tf.keras.Model(inputs=[], outputs=[])
    x = L.Input((2,))
    with pytest.raises(ValueError, match="`outputs` argument cannot be empty"):
        tf.keras.Model(inputs=x, outputs=[])


@pytest.mark.parametrize("weights", ["abc", ["a", "b"], [1.0, None], [1.0, np.inf]])
def test_sample_weight_that_is_not_numbers(weights):
    model = tf.keras.Sequential([L.Input((3,)), L.Dense(2)])
    model.compile(optimizer="sgd", loss="mse", device="cpu")
    x, y = np.zeros((2, 3), np.float32), np.zeros((2, 2), np.float32)
    for call in (lambda: model.train_on_batch(x, y, sample_weight=weights),
                 lambda: model.fit(x, y, sample_weight=weights, verbose=0),
                 lambda: model.evaluate(x, y, sample_weight=weights, verbose=0)):
        with pytest.raises((TypeError, ValueError), match=r"sample_weight must hold (finite )?numbers"):
            call()
    assert int(model.optimizer.iterations.numpy()) == 0


@pytest.mark.parametrize("class_weight, fragment", [({"cat": 2}, "keys must be class indices"),
                                                    ({-1: 2.0}, "keys must be class indices"),
                                                    ({0: "x"}, "values must be finite numbers"),
                                                    ([1.0, 2.0], "must be a dict")])
def test_class_weight_that_is_not_index_to_weight(class_weight, fragment):
    model = tf.keras.Sequential([L.Input((3,)), L.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", device="cpu")
    x, y = np.zeros((2, 3), np.float32), np.array([0, 1])
    for call in (lambda: model.fit(x, y, class_weight=class_weight, verbose=0),
                 lambda: model.train_on_batch(x, y, class_weight=class_weight)):
        with pytest.raises((TypeError, ValueError), match=fragment):
            call()
    model.fit(x, y, class_weight={np.int64(1): 2}, verbose=0)   # numpy integer keys are indices too
