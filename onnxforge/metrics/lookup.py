"""Metric lookup: names, classes, config dicts and functions to ``Metric`` objects, as Keras resolves them.

Example:
    >>> get("mae").name
    'mean_absolute_error'
    >>> type(get("f1_score")).__name__
    'F1Score'
"""
from __future__ import annotations

__all__ = ["ALIASES", "CLASSES", "get", "serialize", "deserialize", "resolve_accuracy"]

import inspect
from collections.abc import Callable
from typing import Any

from .. import losses as losses_module
from ..losses import _snake
from . import accuracy_metrics as acc
from . import confusion, correlation, curves, f_score, iou, probabilistic, regression
from . import hinge_metrics as hinge
from .base import Mean, MeanMetricWrapper, Metric, Sum

#: Every built-in metric class by class name.
CLASSES: dict[str, type[Metric]] = {c.__name__: c for c in (
    Mean, Sum, MeanMetricWrapper,
    acc.Accuracy, acc.BinaryAccuracy, acc.CategoricalAccuracy, acc.SparseCategoricalAccuracy,
    acc.TopKCategoricalAccuracy, acc.SparseTopKCategoricalAccuracy,
    regression.MeanSquaredError, regression.MeanAbsoluteError, regression.MeanAbsolutePercentageError,
    regression.MeanSquaredLogarithmicError, regression.RootMeanSquaredError, regression.CosineSimilarity,
    regression.LogCoshError, regression.R2Score,
    hinge.Hinge, hinge.SquaredHinge, hinge.CategoricalHinge,
    probabilistic.KLDivergence, probabilistic.Poisson, probabilistic.BinaryCrossentropy,
    probabilistic.CategoricalCrossentropy, probabilistic.SparseCategoricalCrossentropy,
    correlation.PearsonCorrelation, correlation.ConcordanceCorrelation,
    confusion.TruePositives, confusion.TrueNegatives, confusion.FalsePositives, confusion.FalseNegatives,
    confusion.Precision, confusion.Recall,
    curves.AUC, curves.SensitivityAtSpecificity, curves.SpecificityAtSensitivity, curves.PrecisionAtRecall,
    curves.RecallAtPrecision,
    f_score.FBetaScore, f_score.F1Score,
    iou.IoU, iou.BinaryIoU, iou.MeanIoU, iou.OneHotIoU, iou.OneHotMeanIoU,
)}

#: String identifiers accepted by ``get`` and ``compile(metrics=...)``: Keras's class names, their snake
#: case (``"auc"``, ``"f1_score"``, ``"mean_io_u"``, ...) and its short aliases. (``"accuracy"``/``"acc"``
#: are resolved by ``resolve_accuracy`` at compile time, as Keras does.)
ALIASES: dict[str, Callable[[], Metric]] = {
    **{_snake(name): cls for name, cls in CLASSES.items() if cls not in (Mean, Sum, MeanMetricWrapper)},
    "bce": probabilistic.BinaryCrossentropy, "BCE": probabilistic.BinaryCrossentropy,
    "mse": regression.MeanSquaredError, "MSE": regression.MeanSquaredError,
    "mae": regression.MeanAbsoluteError, "MAE": regression.MeanAbsoluteError,
    "mape": regression.MeanAbsolutePercentageError, "MAPE": regression.MeanAbsolutePercentageError,
    "msle": regression.MeanSquaredLogarithmicError, "MSLE": regression.MeanSquaredLogarithmicError,
    "mean": Mean, "sum": Sum,
    **{name: cls for name, cls in CLASSES.items() if cls is not MeanMetricWrapper},
}

# Per-sample functions (from ``onnxforge.metrics`` or ``onnxforge.losses``) that name a built-in metric.
_FUNCTIONS: dict[Callable[..., Any], Callable[[], Metric]] = {
    acc.binary_accuracy: acc.BinaryAccuracy, acc.categorical_accuracy: acc.CategoricalAccuracy,
    acc.sparse_categorical_accuracy: acc.SparseCategoricalAccuracy,
    acc.top_k_categorical_accuracy: acc.TopKCategoricalAccuracy,
    acc.sparse_top_k_categorical_accuracy: acc.SparseTopKCategoricalAccuracy, acc.accuracy: acc.Accuracy,
    losses_module.mean_squared_error: regression.MeanSquaredError,
    losses_module.mean_absolute_error: regression.MeanAbsoluteError,
    losses_module.mean_absolute_percentage_error: regression.MeanAbsolutePercentageError,
    losses_module.mean_squared_logarithmic_error: regression.MeanSquaredLogarithmicError,
    losses_module.log_cosh: regression.LogCoshError, losses_module.hinge: hinge.Hinge,
    losses_module.squared_hinge: hinge.SquaredHinge, losses_module.categorical_hinge: hinge.CategoricalHinge,
    losses_module.kl_divergence: probabilistic.KLDivergence, losses_module.poisson: probabilistic.Poisson,
    losses_module.binary_crossentropy: probabilistic.BinaryCrossentropy,
    losses_module.categorical_crossentropy: probabilistic.CategoricalCrossentropy,
    losses_module.sparse_categorical_crossentropy: probabilistic.SparseCategoricalCrossentropy,
    regression.cosine_similarity: regression.CosineSimilarity,
    correlation.pearson_correlation: correlation.PearsonCorrelation,
    correlation.concordance_correlation: correlation.ConcordanceCorrelation,
}


def _construct(factory: Callable[[], Metric], identifier: Any, argument: str) -> Metric:
    try:
        return factory()
    except TypeError as e:   # a class with required arguments (PrecisionAtRecall needs `recall`)
        required = [p.name for p in inspect.signature(factory).parameters.values()
                    if p.default is inspect.Parameter.empty and p.kind is p.POSITIONAL_OR_KEYWORD]
        example = f"{getattr(factory, '__name__', factory)}({', '.join(f'{r}=...' for r in required)})"
        raise ValueError(f"Metric {identifier!r} for argument `{argument}` needs arguments {required}: pass an "
                         f"instance such as {example}. Received: {argument}={identifier!r}") from e


def get(identifier: Any, argument: str = "metrics") -> Metric:
    """A ``Metric`` from a name, a class, a config dict, a per-sample function, or a ``Metric`` (as is).

    Loss names Keras's metric table lacks (``"huber"``, ``"log_cosh"``, ...) give the weighted mean of that
    loss; a ``Loss`` object gives the mean of its per-sample values; any other callable
    ``fn(y_true, y_pred)`` of graph ops is wrapped in a ``MeanMetricWrapper``.

    Example:
        >>> get("mae").name
        'mean_absolute_error'
    """
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        if identifier in ALIASES:
            return _construct(ALIASES[identifier], identifier, argument)
        if identifier.lower() in ("accuracy", "acc"):
            return acc.Accuracy(name=identifier)
        if identifier in losses_module.ALIASES and callable(getattr(losses_module, identifier, None)):
            return MeanMetricWrapper(getattr(losses_module, identifier), name=identifier)
        valid = sorted(set(ALIASES) | {"accuracy", "acc"})
        raise ValueError(f"Unknown metric for argument `{argument}`: {identifier!r}. Valid choices are: {valid} "
                         f"(or a Metric object or a function fn(y_true, y_pred)). Received: {argument}="
                         f"{identifier!r}")
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return _construct(identifier, identifier.__name__, argument)
    if isinstance(identifier, dict) and "class_name" in identifier:
        return deserialize(identifier, argument=argument)
    if callable(identifier) and identifier in _FUNCTIONS:
        return _FUNCTIONS[identifier]()
    if isinstance(identifier, losses_module.Loss):
        loss = identifier

        def per_sample(y_true: Any, y_pred: Any) -> Any:
            out = loss.call(y_true, y_pred)
            return out[0] if isinstance(out, tuple) else out

        return MeanMetricWrapper(per_sample, name=loss.name)
    if callable(identifier):
        return MeanMetricWrapper(identifier)
    raise ValueError(f"Could not interpret metric identifier for argument `{argument}`. "
                     f"Received: {argument}={identifier!r}")


def serialize(metric: Metric) -> dict[str, Any]:
    """``{"class_name": ..., "config": ...}`` of a built-in metric (Keras ``metrics.serialize``).

    Example:
        >>> serialize(get("auc"))["class_name"]
        'AUC'
    """
    return {"module": "keras.metrics", "class_name": type(metric).__name__, "config": metric.get_config(),
            "registered_name": None}


def deserialize(config: dict[str, Any], custom_objects: dict[str, Any] | None = None,
                argument: str = "metrics") -> Metric:
    """The metric a ``serialize`` dict describes (``custom_objects`` for classes of your own).

    Example:
        >>> deserialize({"class_name": "Precision", "config": {"thresholds": 0.3}}).thresholds.tolist()
        [0.3]
    """
    name = config["class_name"]
    cls = (custom_objects or {}).get(name) or CLASSES.get(name)
    if cls is None:
        raise ValueError(f"Unknown metric class {name!r} for argument `{argument}`. Valid choices are: "
                         f"{sorted(CLASSES)} (or pass custom_objects={{{name!r}: cls}}).")
    inner = dict(config.get("config") or {})
    if cls is MeanMetricWrapper:
        raise ValueError("A MeanMetricWrapper config names its function by reference only; build it again with "
                         "MeanMetricWrapper(fn, ...).")
    return cls.from_config(inner)


def resolve_accuracy(identifier: str, output_last_dim: Any, sparse_labels: bool) -> Metric:
    """Keras's convenience: ``"accuracy"``/``"acc"`` become binary, sparse categorical or categorical
    accuracy. Binary when the output has one unit; sparse when the labels are class indices (the loss is
    a sparse crossentropy); categorical otherwise. The metric keeps the name it was asked by.

    Example:
        >>> type(resolve_accuracy("accuracy", 10, sparse_labels=True)).__name__
        'SparseCategoricalAccuracy'
    """
    if output_last_dim == 1:
        return acc.BinaryAccuracy(name=identifier)
    if sparse_labels:
        return acc.SparseCategoricalAccuracy(name=identifier)
    return acc.CategoricalAccuracy(name=identifier)
