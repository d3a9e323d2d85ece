"""Losses and metrics of a model whose output carries a Keras mask (padded sequences), against Keras 3.

Keras 3 weights each loss entry by the prediction's mask and divides by the number of valid entries;
``MeanMetricWrapper`` metrics (accuracy, mae, ...) count valid entries only. Before, onnxforge averaged
over the padding too: ``evaluate`` and ``fit`` reported other numbers and trained on other gradients.
"""
from __future__ import annotations

import numpy as np
import pytest

from .common import LIBS, copy_weights, fkeras, keras, random_weights

SEQUENCES = [[1, 2, 3], [4, 5], [6], [7, 8, 9, 1], [2, 2], [3]]


def _model(lib, loss: str):
    inputs = lib.Input(shape=(None,), dtype="int32")
    x = lib.layers.Embedding(input_dim=10, output_dim=4, mask_zero=True)(inputs)
    x = lib.layers.LSTM(3, return_sequences=True)(x)
    outputs = lib.layers.Dense(2)(x)
    model = lib.Model(inputs, outputs)
    if loss == "sparse":
        model.compile(optimizer=lib.optimizers.SGD(0.1),
                      loss=lib.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["sparse_categorical_accuracy"])
    else:
        model.compile(optimizer=lib.optimizers.SGD(0.1), loss="mse", metrics=["mae"])
    return model


def _data(loss: str):
    x = keras.utils.pad_sequences(SEQUENCES, padding="post")
    if loss == "sparse":
        return x, (np.arange(24).reshape(6, 4) % 2).astype("int32")
    return x, np.random.default_rng(1).normal(size=(6, 4, 2)).astype("float32")


def _run(lib, loss: str, weights=None) -> tuple[dict, list]:
    model = _model(lib, loss)
    if weights is None:
        random_weights(model, scale=0.3)
    else:
        model.set_weights(weights)
    x, y = _data(loss)
    results = {f"evaluate b{b}": model.evaluate(x, y, batch_size=b, verbose=0) for b in (3, 6)}
    history = model.fit(x, y, epochs=2, batch_size=2, shuffle=False, verbose=0).history
    return results, history, model


@pytest.mark.parametrize("loss", ["sparse", "mse"])
def test_masked_loss_and_metrics_match_keras(loss):
    k_results, k_history, k_model = _run(keras, loss)
    init = _model(keras, loss)
    random_weights(init, scale=0.3)
    f_results, f_history, f_model = _run(fkeras, loss, init.get_weights())
    for key in k_results:
        np.testing.assert_allclose(f_results[key], k_results[key], rtol=2e-5, atol=1e-6, err_msg=key)
    assert sorted(f_history) == sorted(k_history)
    for key in k_history:
        np.testing.assert_allclose(f_history[key], k_history[key], rtol=2e-5, atol=1e-6, err_msg=key)
    for a, b in zip(f_model.get_weights(), k_model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_masked_loss_by_hand_with_sample_weights():
    """Independent of Keras: the masked mean over valid steps, a per-sample weight spread over its steps (Keras
    itself fails on this unless the batch happens to equal the sequence length)."""
    model = _model(fkeras, "mse")
    random_weights(model, scale=0.3)
    x, y = _data("mse")
    sw = np.array([1.0, 2.0, 0.5, 1.0, 0.0, 3.0], np.float32)
    pred = model.predict(x, verbose=0)
    valid = (x != 0).astype(np.float64)
    per_step = ((pred - y) ** 2).mean(-1)
    loss, mae = model.evaluate(x, y, sample_weight=sw, batch_size=6, verbose=0)
    expected = (per_step * valid * sw[:, None]).sum() / valid.sum()
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    expected_mae = (np.abs(pred - y).mean(-1) * valid).sum() / valid.sum()   # unweighted metric: mask only
    np.testing.assert_allclose(mae, expected_mae, rtol=1e-5)


def test_all_padding_batch_gives_zero_loss_not_nan():
    """A batch of empty sequences has no valid entry: Keras's divide_no_nan makes its loss 0."""
    model = _model(fkeras, "mse")
    x = np.zeros((2, 3), np.int32)
    loss, mae = model.evaluate(x, np.ones((2, 3, 2), np.float32), verbose=0)
    assert loss == 0.0 and mae == 0.0


__all__ = ["LIBS", "copy_weights"]
