"""Keras metrics, split the way a compiled program needs them.

A metric's state is a few tensors of *sums*; ``batch_sums(y_true, y_pred, sample_weight)`` emits graph
ops for one batch's contribution, the host adds them up across batches (in float64) and
``result_from(states)`` turns them into the number Keras would report (see ``onnxforge.metrics.base``).
The Keras stateful API (``update_state``, ``result``, ``reset_state``) works on arrays too, by running the
same ops with onnxruntime.

One module per family: ``base`` (Metric, Mean, Sum, MeanMetricWrapper), ``accuracy_metrics``, ``regression``,
``hinge_metrics``, ``probabilistic``, ``correlation``, ``confusion`` (counts, Precision, Recall), ``curves`` (AUC
and the at-constraint metrics), ``f_score``, ``iou``, and ``lookup`` (names and configs).

Example:
    >>> import numpy as np
    >>> m = SparseCategoricalAccuracy()
    >>> m.update_state(np.array([2, 1]), np.array([[0.1, 0.6, 0.3], [0.05, 0.95, 0.0]], np.float32))
    >>> m.result()
    0.5
"""
from __future__ import annotations

from ..losses import (
    binary_crossentropy, binary_focal_crossentropy, categorical_crossentropy, categorical_focal_crossentropy,
    categorical_hinge, hinge, huber, kl_divergence, log_cosh, mean_absolute_error, mean_absolute_percentage_error,
    mean_squared_error, mean_squared_logarithmic_error, poisson, sparse_categorical_crossentropy, squared_hinge,
)
from .accuracy_metrics import (
    Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy, SparseTopKCategoricalAccuracy,
    TopKCategoricalAccuracy, accuracy, binary_accuracy, categorical_accuracy, sparse_categorical_accuracy,
    sparse_top_k_categorical_accuracy, top_k_categorical_accuracy,
)
from ..layers.layer_metrics import register_mean_factory as _register_mean_factory
from .base import Mean, MeanMetricWrapper, Metric, Sum, mean_sums
from .confusion import (
    FalseNegatives, FalsePositives, Precision, Recall, TrueNegatives, TruePositives, confusion_sums,
)
from .correlation import ConcordanceCorrelation, PearsonCorrelation, concordance_correlation, pearson_correlation
from .curves import (
    AUC, PrecisionAtRecall, RecallAtPrecision, SensitivityAtSpecificity, SpecificityAtSensitivity,
)
from .f_score import F1Score, FBetaScore
from .hinge_metrics import CategoricalHinge, Hinge, SquaredHinge
from .iou import BinaryIoU, IoU, MeanIoU, OneHotIoU, OneHotMeanIoU
from .lookup import ALIASES, CLASSES, deserialize, get, resolve_accuracy, serialize
from .probabilistic import (
    BinaryCrossentropy, CategoricalCrossentropy, KLDivergence, Poisson, SparseCategoricalCrossentropy,
)
from .regression import (
    CosineSimilarity, LogCoshError, MeanAbsoluteError, MeanAbsolutePercentageError, MeanSquaredError,
    MeanSquaredLogarithmicError, R2Score, RootMeanSquaredError, cosine_similarity,
)

__all__ = [
    # base
    "Metric", "Mean", "Sum", "MeanMetricWrapper",
    # accuracy
    "Accuracy", "BinaryAccuracy", "CategoricalAccuracy", "SparseCategoricalAccuracy", "TopKCategoricalAccuracy",
    "SparseTopKCategoricalAccuracy",
    # regression
    "MeanSquaredError", "MeanAbsoluteError", "MeanAbsolutePercentageError", "MeanSquaredLogarithmicError",
    "RootMeanSquaredError", "CosineSimilarity", "LogCoshError", "R2Score",
    # hinge, probabilistic, correlation
    "Hinge", "SquaredHinge", "CategoricalHinge", "KLDivergence", "Poisson", "BinaryCrossentropy",
    "CategoricalCrossentropy", "SparseCategoricalCrossentropy", "PearsonCorrelation", "ConcordanceCorrelation",
    # confusion counts and curves
    "TruePositives", "TrueNegatives", "FalsePositives", "FalseNegatives", "Precision", "Recall", "AUC",
    "PrecisionAtRecall", "RecallAtPrecision", "SensitivityAtSpecificity", "SpecificityAtSensitivity",
    # scores
    "F1Score", "FBetaScore", "IoU", "BinaryIoU", "MeanIoU", "OneHotIoU", "OneHotMeanIoU",
    # functions
    "accuracy", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
    "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy", "binary_crossentropy",
    "binary_focal_crossentropy", "categorical_crossentropy", "categorical_focal_crossentropy",
    "sparse_categorical_crossentropy", "categorical_hinge", "hinge", "squared_hinge", "huber", "kl_divergence",
    "log_cosh", "mean_absolute_error", "mean_absolute_percentage_error", "mean_squared_error",
    "mean_squared_logarithmic_error", "poisson", "pearson_correlation", "concordance_correlation",
    "cosine_similarity", "confusion_sums", "mean_sums",
    # lookup
    "get", "serialize", "deserialize", "resolve_accuracy", "ALIASES", "CLASSES",
]

_register_mean_factory(Mean)   # Layer.add_metric's trackers (layers/ sits below metrics/)
