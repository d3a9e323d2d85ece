"""Losses by name: ``get`` (a string, a function, a config or a ``Loss``) and ``serialize``."""
from __future__ import annotations

__all__ = ["get", "serialize", "deserialize"]

from collections.abc import Callable
from typing import Any

from .classes import (BinaryCrossentropy, BinaryFocalCrossentropy, CategoricalCrossentropy,
                      CategoricalFocalCrossentropy, CategoricalHinge, CosineSimilarity, Hinge, Huber, KLDivergence,
                      LogCosh, MeanAbsoluteError, MeanAbsolutePercentageError, MeanSquaredError,
                      MeanSquaredLogarithmicError, Poisson, SparseCategoricalCrossentropy, SquaredHinge)
from .loss import Loss, LossFunctionWrapper
from .ctc import CTC, ctc
from .metric_learning import Circle, circle
from .overlap import CategoricalGeneralizedCrossEntropy, Dice, Tversky, dice, tversky
from .functions import (binary_crossentropy, binary_focal_crossentropy, categorical_crossentropy,
                        categorical_focal_crossentropy, categorical_hinge, cosine_similarity, hinge, huber,
                        kl_divergence, log_cosh, mean_absolute_error, mean_absolute_percentage_error,
                        mean_squared_error, mean_squared_logarithmic_error, poisson, sparse_categorical_crossentropy,
                        squared_hinge)


_CLASSES: dict[str, type[Loss]] = {
    c.__name__: c for c in (SparseCategoricalCrossentropy, CategoricalCrossentropy, BinaryCrossentropy,
                            MeanSquaredError, MeanAbsoluteError, Huber, Hinge, SquaredHinge, CategoricalHinge,
                            LogCosh, Poisson, KLDivergence, MeanAbsolutePercentageError, MeanSquaredLogarithmicError,
                            CosineSimilarity, BinaryFocalCrossentropy, CategoricalFocalCrossentropy, Dice, Tversky,
                            CategoricalGeneralizedCrossEntropy, CTC, Circle)
}
#: String identifiers accepted by ``get`` (and ``compile(loss=...)``), as in Keras.
ALIASES: dict[str, Callable[[], Loss]] = {
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError, "MSE": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError, "MAE": MeanAbsoluteError,
    "huber": Huber, "huber_loss": Huber,
    "hinge": Hinge, "squared_hinge": SquaredHinge, "categorical_hinge": CategoricalHinge,
    "log_cosh": LogCosh, "logcosh": LogCosh, "poisson": Poisson,
    "kl_divergence": KLDivergence, "kld": KLDivergence, "KLD": KLDivergence,
    "mean_absolute_percentage_error": MeanAbsolutePercentageError, "mape": MeanAbsolutePercentageError,
    "MAPE": MeanAbsolutePercentageError,
    "mean_squared_logarithmic_error": MeanSquaredLogarithmicError, "msle": MeanSquaredLogarithmicError,
    "MSLE": MeanSquaredLogarithmicError,
    "cosine_similarity": CosineSimilarity,
    "binary_focal_crossentropy": BinaryFocalCrossentropy,
    "categorical_focal_crossentropy": CategoricalFocalCrossentropy,
    "dice": Dice, "tversky": Tversky, "categorical_generalized_cross_entropy": CategoricalGeneralizedCrossEntropy,
    "ctc": CTC,
    "circle": Circle,
    **_CLASSES,
}
_FUNCTIONS: dict[Callable[..., Any], Callable[[], Loss]] = {
    sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
    categorical_crossentropy: CategoricalCrossentropy,
    binary_crossentropy: BinaryCrossentropy,
    mean_squared_error: MeanSquaredError,
    mean_absolute_error: MeanAbsoluteError,
    huber: Huber,
    hinge: Hinge, squared_hinge: SquaredHinge, categorical_hinge: CategoricalHinge, log_cosh: LogCosh,
    poisson: Poisson, kl_divergence: KLDivergence, mean_absolute_percentage_error: MeanAbsolutePercentageError,
    mean_squared_logarithmic_error: MeanSquaredLogarithmicError, cosine_similarity: CosineSimilarity,
    binary_focal_crossentropy: BinaryFocalCrossentropy, categorical_focal_crossentropy: CategoricalFocalCrossentropy,
    dice: Dice, tversky: Tversky, ctc: CTC, circle: Circle,
}


def get(identifier: Any, argument: str = "loss") -> Loss | None:
    """A ``Loss`` from a name, a config dict, a loss function or a ``Loss`` (returned as is).

    Keras's own loss functions map to their classes (so ``'mse'`` and ``keras.losses.mse`` behave the
    same); other callables ``fn(y_true, y_pred)`` are wrapped. Unknown names raise a ``ValueError`` that
    lists the valid ones.

    Example:
        >>> get("mse").name
        'mean_squared_error'
    """
    if identifier is None or isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        factory = ALIASES.get(identifier)
        if factory is None:
            raise ValueError(f"Unknown loss for argument `{argument}`: {identifier!r}. Valid choices are: "
                             f"{sorted(ALIASES)} (or a keras-style Loss object or a function "
                             f"fn(y_true, y_pred)). Received: {argument}={identifier!r}")
        return factory()
    if isinstance(identifier, dict) and "class_name" in identifier:
        cls = _CLASSES.get(identifier["class_name"])
        if cls is None:
            raise ValueError(f"Unknown loss class {identifier['class_name']!r} for argument `{argument}`. "
                             f"Valid choices are: {sorted(_CLASSES)}.")
        return cls.from_config(identifier.get("config", {}))
    if identifier in _FUNCTIONS:
        return _FUNCTIONS[identifier]()
    if callable(identifier):
        return LossFunctionWrapper(identifier)
    raise ValueError(f"Could not interpret loss identifier for argument `{argument}`. "
                     f"Received: {argument}={identifier!r}")


def deserialize(name: Any, custom_objects: dict | None = None) -> Loss:
    """Keras's ``keras.losses.deserialize``: the loss a config dict or a name (Keras's argument ``name``)
    describes; ``custom_objects`` classes first.

    Example:
        >>> deserialize({"class_name": "Huber", "config": {"delta": 2.0}}).delta
        2.0
    """
    if isinstance(name, dict) and name.get("class_name") in (custom_objects or {}):
        return custom_objects[name["class_name"]].from_config(name.get("config") or {})
    return get(name, "name")


def serialize(loss: Loss) -> dict[str, Any]:
    """Keras 3's ``{"module", "class_name", "config", "registered_name"}`` of a loss (``"keras.losses"`` and
    ``None`` for a built-in one; where a class of the program's own is defined and its registered name).

    Example:
        >>> sorted(serialize(get("mse")).items())[:2]
        [('class_name', 'MeanSquaredError'), ('config', {'name': 'mean_squared_error', 'reduction': 'sum_over_batch_size'})]
    """
    from ..keras_objects import object_config

    return object_config(loss, "keras.losses")
