"""Metrics and losses compiled into a model, against real Keras 3 on the same weights and data: metric
sums accumulated over an epoch inside the eval and train programs (``evaluate``, ``fit``'s History), string
aliases, ``weighted_metrics``, and two training steps with each loss Keras ships that onnxforge added.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
if keras.backend.backend() != "torch":   # pragma: no cover - another backend was chosen before us
    pytest.skip("these comparisons run Keras on its torch backend", allow_module_level=True)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

import onnxforge  # noqa: E402
from exporters.keras_exporter import from_keras  # noqa: E402

R = np.random.default_rng(11)
X = R.normal(size=(14, 5)).astype("float32")
Y_SPARSE = R.integers(0, 3, 14).astype("int64")
Y_ONEHOT = np.eye(3, dtype="float32")[Y_SPARSE]
Y_BINARY = R.integers(0, 2, (14, 1)).astype("float32")
Y_MULTI = R.integers(0, 2, (14, 3)).astype("float32")
Y_REG = R.normal(size=(14, 2)).astype("float32")
Y_POS = R.uniform(0.0, 3.0, (14, 2)).astype("float32")
W = R.uniform(0.2, 2.0, 14).astype("float32")


def _pair(units: int, activation: str | None, seed: int = 3):
    keras.utils.set_random_seed(seed)
    k = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, activation="tanh"),
                          keras.layers.Dense(units, activation=activation)])
    rng = np.random.default_rng(seed)
    k.set_weights([rng.normal(0, 0.6, w.shape).astype("float32") for w in k.get_weights()])
    return k, from_keras(k)


def _close(got: dict, expected: dict) -> None:
    assert sorted(got) == sorted(expected)
    for key in expected:
        np.testing.assert_allclose(np.asarray(got[key], np.float64),
                                   np.asarray(keras.ops.convert_to_numpy(expected[key]), np.float64),
                                   rtol=2e-5, atol=2e-6, err_msg=key)


# name: (units, activation, loss, targets, metrics(module) -> list)
CASES = {
    "binary_counts_and_curves": (1, "sigmoid", "binary_crossentropy", Y_BINARY, lambda m: [
        m.TruePositives(), m.TrueNegatives(thresholds=[0.3, 0.6]), m.FalsePositives(), m.FalseNegatives(),
        m.PrecisionAtRecall(0.5), m.RecallAtPrecision(0.6), m.SensitivityAtSpecificity(0.5, num_thresholds=50),
        m.SpecificityAtSensitivity(0.5), m.AUC(curve="PRGAIN"), m.BinaryIoU(threshold=0.4)]),
    "multilabel": (3, "sigmoid", "binary_crossentropy", Y_MULTI, lambda m: [
        m.AUC(multi_label=True), m.AUC(multi_label=True, curve="PR", label_weights=[1.0, 0.5, 2.0], name="pr"),
        m.Precision(top_k=2), m.Recall(top_k=1, class_id=0), m.F1Score(average="macro", threshold=0.5),
        m.FBetaScore(beta=2.0, average="micro", threshold=0.5), m.F1Score(threshold=0.3, name="f1_per_class"),
        m.Hinge(), m.SquaredHinge()]),
    "sparse_classes": (3, "softmax", "sparse_categorical_crossentropy", Y_SPARSE, lambda m: [
        m.SparseTopKCategoricalAccuracy(k=2), m.MeanIoU(3, sparse_y_pred=False),
        m.IoU(3, [0, 1], sparse_y_pred=False), m.SparseCategoricalCrossentropy()]),
    "onehot_classes": (3, "softmax", "categorical_crossentropy", Y_ONEHOT, lambda m: [
        m.TopKCategoricalAccuracy(k=2), m.OneHotIoU(3, [2]), m.OneHotMeanIoU(3), m.CategoricalHinge(),
        m.KLDivergence(), m.CategoricalCrossentropy(label_smoothing=0.1), m.F1Score(average="weighted")]),
    "regression": (2, None, "mse", Y_REG, lambda m: [
        m.R2Score(), m.RootMeanSquaredError(), m.MeanAbsolutePercentageError(), m.CosineSimilarity(),
        m.LogCoshError(), m.PearsonCorrelation(), m.ConcordanceCorrelation(), m.R2Score(class_aggregation=None,
                                                                                     name="r2_columns")]),
    "positive_regression": (2, "softplus", "poisson", Y_POS, lambda m: [m.Poisson(), m.MeanSquaredLogarithmicError()]),
    "binary_aliases": (1, "sigmoid", "binary_crossentropy", Y_BINARY, lambda m: [
        "auc", "true_positives", "false_negatives", "precision", "recall", "f1_score", "binary_io_u", "hinge", "bce",
        "binary_accuracy", "BinaryCrossentropy"]),
    "regression_aliases": (2, None, "mse", Y_REG, lambda m: [
        "mape", "msle", "log_cosh_error", "cosine_similarity", "root_mean_squared_error", "r2_score",
        "pearson_correlation", "concordance_correlation", "MAPE", "mean_squared_logarithmic_error"]),
    "classes_aliases": (3, "softmax", "categorical_crossentropy", Y_ONEHOT, lambda m: [
        "categorical_accuracy", "categorical_hinge", "kl_divergence", "categorical_crossentropy"]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_compiled_metrics_in_evaluate_match_keras(name):
    units, act, loss, y, make = CASES[name]
    k, f = _pair(units, act)
    keras.backend.clear_session()   # both sides name their default-named metrics from a fresh counter
    onnxforge.layers.clear_session()
    k_metrics, f_metrics = make(keras.metrics), make(onnxforge.metrics)
    k.compile(optimizer="sgd", loss=loss, metrics=k_metrics)
    f.compile(optimizer="sgd", loss=loss, metrics=f_metrics)
    _close(f.evaluate(X, y, batch_size=4, verbose=0, return_dict=True),
           k.evaluate(X, y, batch_size=4, verbose=0, return_dict=True))


@pytest.mark.parametrize("name", ["multilabel", "regression"])
def test_weighted_metrics_match_keras(name):
    units, act, loss, y, make = CASES[name]
    k, f = _pair(units, act)
    keras.backend.clear_session()
    onnxforge.layers.clear_session()
    k.compile(optimizer="sgd", loss=loss, weighted_metrics=make(keras.metrics))
    f.compile(optimizer="sgd", loss=loss, weighted_metrics=make(onnxforge.metrics))
    _close(f.evaluate(X, y, sample_weight=W, batch_size=4, verbose=0, return_dict=True),
           k.evaluate(X, y, sample_weight=W, batch_size=4, verbose=0, return_dict=True))


def test_fit_history_with_new_metrics_matches_keras():
    """The train program accumulates the sums as it trains; validation uses the eval program."""
    k, f = _pair(3, "sigmoid")
    for model, lib in ((k, keras), (f, onnxforge)):
        lib.layers.clear_session() if lib is onnxforge else keras.backend.clear_session()
        model.compile(optimizer=lib.optimizers.SGD(0.1), loss="binary_crossentropy",
                      metrics=[lib.metrics.AUC(multi_label=True), lib.metrics.F1Score(average="micro", threshold=0.5),
                               lib.metrics.Precision(top_k=1), lib.metrics.RecallAtPrecision(0.4)])
    kw = dict(epochs=2, batch_size=4, shuffle=False, verbose=0, validation_data=(X[:6], Y_MULTI[:6]))
    expected, got = k.fit(X, Y_MULTI, **kw).history, f.fit(X, Y_MULTI, **kw).history
    assert sorted(got) == sorted(expected)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-4, atol=1e-6, err_msg=key)


# The losses Keras ships that onnxforge added, each trained two steps on both sides.
LOSSES = {
    "hinge": (3, "tanh", Y_MULTI), "squared_hinge": (3, "tanh", Y_MULTI), "categorical_hinge": (3, "softmax", Y_ONEHOT),
    "log_cosh": (2, None, Y_REG), "poisson": (2, "softplus", Y_POS), "kl_divergence": (3, "softmax", Y_ONEHOT),
    "mape": (2, None, Y_REG), "msle": (2, "softplus", Y_POS), "cosine_similarity": (2, None, Y_REG),
    "binary_focal": (3, "sigmoid", Y_MULTI), "categorical_focal": (3, "softmax", Y_ONEHOT),
}


def _loss(lib, name: str):
    if name == "binary_focal":
        return lib.losses.BinaryFocalCrossentropy(apply_class_balancing=True, gamma=1.5, label_smoothing=0.1)
    if name == "categorical_focal":
        return lib.losses.CategoricalFocalCrossentropy(alpha=0.4, from_logits=False)
    return name


@pytest.mark.parametrize("name", list(LOSSES))
def test_added_losses_train_like_keras(name):
    units, act, y = LOSSES[name]
    k, f = _pair(units, act, seed=5)
    lr = 0.001 if name == "mape" else 0.1   # MAPE's gradients are 100 times larger
    k.compile(optimizer=keras.optimizers.SGD(lr), loss=_loss(keras, name))
    f.compile(optimizer=onnxforge.optimizers.SGD(lr), loss=_loss(onnxforge, name))
    for step in range(2):
        np.testing.assert_allclose(f.train_on_batch(X, y, sample_weight=W), k.train_on_batch(X, y, sample_weight=W),
                                   rtol=2e-5, err_msg=f"loss at step {step + 1}")
    for a, b in zip(k.get_weights(), f.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
