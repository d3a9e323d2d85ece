"""Every Keras 3 metric against real Keras (torch backend): used standalone on arrays, batch after batch,
with and without sample weights (``update_state`` / ``result`` / ``reset_state``), and compiled into a
model, where its sums accumulate inside the eval and train programs over an epoch.

Each standalone case builds the same metric in both libraries from one lambda, feeds both the same
batches and compares ``result()`` after every batch and after ``reset_state``.
"""
from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
if keras.backend.backend() != "torch":   # pragma: no cover - another backend was chosen before us
    pytest.skip("these comparisons run Keras on its torch backend", allow_module_level=True)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

import onnxforge  # noqa: E402
from onnxforge.layers.base import clear_session  # noqa: E402


@pytest.fixture(autouse=True)
def fresh_names():
    """Both sides number default names (``precision``, ``precision_1``) from process-wide counters: start
    each test from zero on both, whatever ran before it in this process."""
    keras.backend.clear_session(free_memory=False)  # the names only: no garbage collection per test
    clear_session()

R = np.random.default_rng(7)
N = 10


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).astype("float32")


def _data() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    labels4 = R.integers(0, 4, N)
    scores4 = _softmax(R.normal(size=(N, 4)) + 2 * np.eye(4)[labels4] * (R.uniform(size=(N, 1)) > 0.4))
    seq_labels = R.integers(0, 4, (N, 5))
    seg_true = R.integers(0, 3, (N, 4, 4))
    seg_scores = _softmax(R.normal(size=(N, 4, 4, 3)) + 1.5 * np.eye(3)[seg_true])
    y_reg = R.normal(size=(N, 3)).astype("float32")
    return {
        "binary": (R.integers(0, 2, (N, 1)).astype("float32"), R.uniform(size=(N, 1)).astype("float32")),
        "binary_flat": (R.integers(0, 2, N).astype("float32"), R.uniform(size=N).astype("float32")),
        "multilabel": (R.integers(0, 2, (N, 3)).astype("float32"), R.uniform(size=(N, 3)).astype("float32")),
        "logits": (R.integers(0, 2, (N, 3)).astype("float32"), R.normal(0, 2, (N, 3)).astype("float32")),
        "onehot": (np.eye(4, dtype="float32")[labels4], scores4),
        "sparse": (labels4.astype("int64"), scores4),
        "sparse_col": (labels4[:, None].astype("int64"), scores4),
        "sequence": (seq_labels.astype("int64"), _softmax(R.normal(size=(N, 5, 4)))),
        "sequence_onehot": (np.eye(4, dtype="float32")[seq_labels], _softmax(R.normal(size=(N, 5, 4)))),
        "regression": (y_reg, (y_reg + R.normal(0, 0.7, (N, 3))).astype("float32")),
        "regression_col": (y_reg[:, :1], (y_reg[:, :1] + R.normal(0, 0.5, (N, 1))).astype("float32")),
        "positive": (R.uniform(0, 3, (N, 3)).astype("float32"), R.uniform(0.1, 3, (N, 3)).astype("float32")),
        "signed": (R.choice([-1.0, 1.0], (N, 3)).astype("float32"), R.normal(size=(N, 3)).astype("float32")),
        "distribution": (_softmax(R.normal(size=(N, 4))), _softmax(R.normal(size=(N, 4)))),
        "segmentation_ids": (seg_true.astype("int64"), seg_scores.argmax(-1).astype("int64")),
        "segmentation_scores": (seg_true.astype("int64"), seg_scores),
        "segmentation_onehot": (np.eye(3, dtype="float32")[seg_true], seg_scores),
        "binary_mask": (R.integers(0, 2, (N, 6)).astype("float32"), R.uniform(size=(N, 6)).astype("float32")),
    }


DATA = _data()
WEIGHTS = R.uniform(0.0, 2.0, N).astype("float32")
# Keras's IoU family wants one weight per entry (pixel) and truncates weights to its default int dtype.
PIXEL_INT_WEIGHTS = R.integers(0, 3, (N, 4, 4)).astype("float32")
PIXEL_WEIGHTS = R.uniform(0.0, 2.0, (N, 4, 4)).astype("float32")

# name: (data kind, make(metrics module) -> metric, weights)
CASES = {
    # confusion counts
    "true_positives": ("multilabel", lambda m: m.TruePositives(), WEIGHTS),
    "true_negatives_list": ("multilabel", lambda m: m.TrueNegatives(thresholds=[0.2, 0.5, 0.8]), WEIGHTS),
    "false_positives_even": ("binary", lambda m: m.FalsePositives(thresholds=[0.0, 0.25, 0.5, 0.75, 1.0]), WEIGHTS),
    "false_negatives": ("binary_flat", lambda m: m.FalseNegatives(thresholds=0.3), WEIGHTS),
    "precision_top_k": ("multilabel", lambda m: m.Precision(top_k=2), WEIGHTS),
    "precision_top_k_threshold": ("multilabel", lambda m: m.Precision(top_k=2, thresholds=0.4), None),
    "recall_top_k_class_id": ("multilabel", lambda m: m.Recall(top_k=1, class_id=2), WEIGHTS),
    "recall_thresholds_list": ("binary", lambda m: m.Recall(thresholds=[0.3, 0.6]), WEIGHTS),
    "precision_one_in_list": ("binary", lambda m: m.Precision(thresholds=[0.3]), None),
    # curves
    "precision_at_recall": ("binary", lambda m: m.PrecisionAtRecall(0.6), WEIGHTS),
    "recall_at_precision": ("multilabel", lambda m: m.RecallAtPrecision(0.55, num_thresholds=40), WEIGHTS),
    "sensitivity_at_specificity": ("binary_flat", lambda m: m.SensitivityAtSpecificity(0.5), WEIGHTS),
    "specificity_at_sensitivity": ("multilabel", lambda m: m.SpecificityAtSensitivity(0.4, class_id=1), WEIGHTS),
    "specificity_at_sensitivity_one": ("binary", lambda m: m.SpecificityAtSensitivity(0.3, num_thresholds=1), None),
    "auc_multi_label": ("multilabel", lambda m: m.AUC(multi_label=True), WEIGHTS),
    "auc_multi_label_pr_weights": ("multilabel", lambda m: m.AUC(multi_label=True, curve="PR",
                                                                 label_weights=[0.2, 1.0, 0.5]), WEIGHTS),
    "auc_multi_label_minoring": ("multilabel", lambda m: m.AUC(multi_label=True, num_labels=3, num_thresholds=30,
                                                               summation_method="minoring"), None),
    "auc_label_weights": ("multilabel", lambda m: m.AUC(label_weights=[0.3, 1.0, 2.0]), WEIGHTS),
    "auc_prgain": ("binary", lambda m: m.AUC(curve="PRGAIN"), WEIGHTS),
    "auc_logits_uneven": ("logits", lambda m: m.AUC(thresholds=[0.1, 0.4, 0.45, 0.9], from_logits=True), WEIGHTS),
    # scores
    "f1": ("onehot", lambda m: m.F1Score(), WEIGHTS),
    "f1_macro_threshold": ("multilabel", lambda m: m.F1Score(average="macro", threshold=0.4), WEIGHTS),
    "fbeta_weighted": ("multilabel", lambda m: m.FBetaScore(beta=2.0, average="weighted", threshold=0.5), WEIGHTS),
    "fbeta_micro": ("onehot", lambda m: m.FBetaScore(beta=0.5, average="micro"), None),
    "iou_ids": ("segmentation_ids", lambda m: m.IoU(num_classes=3, target_class_ids=[0, 2]), PIXEL_INT_WEIGHTS),
    "mean_iou_scores": ("segmentation_scores", lambda m: m.MeanIoU(num_classes=3, sparse_y_pred=False), None),
    "mean_iou_ignore": ("segmentation_ids", lambda m: m.MeanIoU(num_classes=3, ignore_class=1), None),
    "binary_iou": ("binary_mask", lambda m: m.BinaryIoU(threshold=0.3), None),
    "binary_iou_one_class": ("binary_mask", lambda m: m.BinaryIoU(target_class_ids=[1]), None),
    "one_hot_iou": ("segmentation_onehot", lambda m: m.OneHotIoU(num_classes=3, target_class_ids=[1]), None),
    "one_hot_mean_iou": ("segmentation_onehot", lambda m: m.OneHotMeanIoU(num_classes=3), None),
    "mean_iou_float_weights": ("segmentation_ids", lambda m: m.MeanIoU(num_classes=3, dtype="float32"), PIXEL_WEIGHTS),
    "one_hot_mean_iou_weighted": ("segmentation_onehot", lambda m: m.OneHotMeanIoU(num_classes=3), PIXEL_INT_WEIGHTS),
    "r2": ("regression", lambda m: m.R2Score(), WEIGHTS),
    "r2_raw": ("regression", lambda m: m.R2Score(class_aggregation=None), None),
    "r2_variance_adjusted": ("regression", lambda m: m.R2Score("variance_weighted_average", num_regressors=2),
                             WEIGHTS),
    "r2_column": ("regression_col", lambda m: m.R2Score(), None),
    # accuracies
    "top_k": ("onehot", lambda m: m.TopKCategoricalAccuracy(k=2), WEIGHTS),
    "sparse_top_k": ("sparse", lambda m: m.SparseTopKCategoricalAccuracy(k=2), WEIGHTS),
    "sparse_top_k_column": ("sparse_col", lambda m: m.SparseTopKCategoricalAccuracy(k=1), None),
    "sparse_top_k_sequence": ("sequence", lambda m: m.SparseTopKCategoricalAccuracy(k=2), WEIGHTS),
    "top_k_sequence": ("sequence_onehot", lambda m: m.TopKCategoricalAccuracy(k=3), None),
    "accuracy": ("binary", lambda m: m.Accuracy(), None),
    "binary_accuracy": ("binary_flat", lambda m: m.BinaryAccuracy(threshold=0.7), WEIGHTS),
    "categorical_accuracy": ("onehot", lambda m: m.CategoricalAccuracy(), WEIGHTS),
    "sparse_categorical_accuracy": ("sparse_col", lambda m: m.SparseCategoricalAccuracy(), WEIGHTS),
    "sparse_categorical_accuracy_sequence": ("sequence", lambda m: m.SparseCategoricalAccuracy(), WEIGHTS),
    # means of per-sample errors
    "mse": ("regression", lambda m: m.MeanSquaredError(), WEIGHTS),
    "mae": ("regression", lambda m: m.MeanAbsoluteError(), None),
    "mape": ("regression", lambda m: m.MeanAbsolutePercentageError(), WEIGHTS),
    "msle": ("positive", lambda m: m.MeanSquaredLogarithmicError(), WEIGHTS),
    "rmse": ("regression", lambda m: m.RootMeanSquaredError(), WEIGHTS),
    "cosine": ("regression", lambda m: m.CosineSimilarity(), WEIGHTS),
    "cosine_axis0": ("regression", lambda m: m.CosineSimilarity(axis=0), None),
    "logcosh": ("regression", lambda m: m.LogCoshError(), WEIGHTS),
    "hinge": ("binary_mask", lambda m: m.Hinge(), WEIGHTS),
    "hinge_signed": ("signed", lambda m: m.Hinge(), None),
    "squared_hinge": ("binary_mask", lambda m: m.SquaredHinge(), WEIGHTS),
    "categorical_hinge": ("onehot", lambda m: m.CategoricalHinge(), WEIGHTS),
    "kl_divergence": ("distribution", lambda m: m.KLDivergence(), WEIGHTS),
    "poisson": ("positive", lambda m: m.Poisson(), WEIGHTS),
    "binary_crossentropy": ("logits", lambda m: m.BinaryCrossentropy(from_logits=True, label_smoothing=0.1),
                            WEIGHTS),
    "categorical_crossentropy": ("onehot", lambda m: m.CategoricalCrossentropy(label_smoothing=0.2), WEIGHTS),
    "sparse_categorical_crossentropy": ("sparse", lambda m: m.SparseCategoricalCrossentropy(), WEIGHTS),
    "pearson": ("regression", lambda m: m.PearsonCorrelation(), WEIGHTS),
    "pearson_axis0": ("regression", lambda m: m.PearsonCorrelation(axis=0), None),
    "concordance": ("regression", lambda m: m.ConcordanceCorrelation(), WEIGHTS),
}


def _batches(y: np.ndarray, p: np.ndarray, w: np.ndarray | None):
    for lo, hi in ((0, 4), (4, 7), (7, N)):
        yield y[lo:hi], p[lo:hi], None if w is None else w[lo:hi]


def _same(got, expected, what: str) -> None:
    expected = np.asarray(keras.ops.convert_to_numpy(expected), np.float64)
    np.testing.assert_allclose(np.asarray(got, np.float64), expected, rtol=2e-5, atol=2e-6, err_msg=what)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("name", list(CASES))
def test_standalone_metric_matches_keras(name, weighted):
    kind, make, weights = CASES[name]
    if weighted and weights is None:
        pytest.skip("this case runs unweighted only")
    y, p = DATA[kind]
    k, f = make(keras.metrics), make(onnxforge.metrics)
    assert f.name == k.name
    w = weights if weighted else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for step, (yb, pb, wb) in enumerate(_batches(y, p, w)):
            k.update_state(yb, pb, sample_weight=wb)
            f.update_state(yb, pb, sample_weight=wb)
            _same(f.result(), k.result(), f"{name} after batch {step}")
        k.reset_state()
        f.reset_state()
        k.update_state(y, p, sample_weight=w)
        f.update_state(y, p, sample_weight=w)
        _same(f.result(), k.result(), f"{name} after reset and one update")


def test_mean_and_sum_match_keras():
    values = R.normal(size=(N, 3)).astype("float32")
    for cls in ("Mean", "Sum"):
        k, f = getattr(keras.metrics, cls)(), getattr(onnxforge.metrics, cls)()
        for vb, _, wb in _batches(values, values, WEIGHTS):
            k.update_state(vb, sample_weight=wb)
            f.update_state(vb, sample_weight=wb)
        _same(f.result(), k.result(), cls)
        assert f(values[:2]) == pytest.approx(float(k(values[:2])), rel=1e-5)   # __call__: update, then result


def test_state_attributes_read_as_keras_names_them():
    # The VAE example's trackers are Means; Keras programs read their `total` / `count` (and AUC's counts).
    values = np.array([1.0, 2.0, 4.0], np.float32)
    k, f = keras.metrics.Mean(), onnxforge.metrics.Mean()
    k.update_state(values)
    f.update_state(values)
    for name in ("total", "count"):
        assert float(getattr(f, name)) == pytest.approx(float(np.asarray(getattr(k, name))))
    k_auc, f_auc = keras.metrics.AUC(num_thresholds=7), onnxforge.metrics.AUC(num_thresholds=7)
    k_auc.update_state([0, 1, 1], [0.2, 0.6, 0.9])
    f_auc.update_state([0, 1, 1], [0.2, 0.6, 0.9])
    np.testing.assert_allclose(np.asarray(f_auc.true_positives), np.asarray(k_auc.true_positives))
    with pytest.raises(AttributeError, match="no attribute 'totals'"):
        f.totals


def test_iou_spreads_a_per_sample_weight_over_its_pixels():
    """Keras refuses one weight per image for segmentation IoU; onnxforge applies it to every pixel, which
    gives what Keras gives for the weights spread out by hand."""
    y, p = DATA["segmentation_ids"]
    k, f = keras.metrics.MeanIoU(3, dtype="float32"), onnxforge.metrics.MeanIoU(3, dtype="float32")
    k.update_state(y, p, sample_weight=np.broadcast_to(WEIGHTS[:, None, None], y.shape))
    f.update_state(y, p, sample_weight=WEIGHTS)
    _same(f.result(), k.result(), "MeanIoU with per-image weights")


def test_metric_functions_match_keras():
    for name, kind in (("binary_accuracy", "binary"), ("categorical_accuracy", "onehot"),
                       ("sparse_categorical_accuracy", "sparse"), ("top_k_categorical_accuracy", "onehot"),
                       ("sparse_top_k_categorical_accuracy", "sparse"), ("pearson_correlation", "regression"),
                       ("concordance_correlation", "regression"), ("hinge", "binary_mask"),
                       ("squared_hinge", "signed"), ("categorical_hinge", "onehot"), ("kl_divergence", "distribution"),
                       ("poisson", "positive"), ("log_cosh", "regression"), ("mean_absolute_percentage_error",
                                                                            "regression"),
                       ("mean_squared_logarithmic_error", "positive")):
        y, p = DATA[kind]
        kwargs = {"k": 2} if "top_k" in name else {}
        _same(getattr(onnxforge.metrics, name)(y, p, **kwargs), getattr(keras.metrics, name)(y, p, **kwargs), name)


def test_eager_updates_reuse_one_program_per_signature():
    m = onnxforge.metrics.AUC()
    y, p = DATA["binary"]
    for _ in range(3):
        m.update_state(y[:4], p[:4])
    m.update_state(y[:3], p[:3])
    assert len(m._eager._cache) == 2


def test_unbuildable_string_names_the_missing_arguments():
    with pytest.raises(ValueError, match=r"precision_at_recall.*\['recall'\]"):
        onnxforge.metrics.get("precision_at_recall")
