"""Keras losses, emitted as ONNX graph ops.

Every loss function takes ``y_true`` and ``y_pred`` and returns the per-sample loss (the last axis
reduced), exactly as ``keras.losses.<name>`` does. With symbolic ``Value`` arguments it emits graph ops
(that is how compiled programs use it); with arrays it runs the same ops once through onnxruntime, so
losses can be called eagerly like in Keras.

``Loss`` objects add Keras's reduction (default ``"sum_over_batch_size"``) and sample weights.

Example:
    >>> import numpy as np
    >>> float(SparseCategoricalCrossentropy()(np.array([1, 2]),
    ...       np.array([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]], np.float32)))  # doctest: +ELLIPSIS
    1.176...
    >>> mean_squared_error(np.array([[0.0, 1.0]]), np.array([[1.0, 1.0]], np.float32)).tolist()
    [0.5]

One module per concern: ``values`` (helpers on graph values the metrics share), ``functions`` (the loss
functions), ``loss`` (the ``Loss`` base and its reduction), ``classes`` (the loss classes), ``overlap`` (Dice,
Tversky and the generalized crossentropy), ``ctc`` (``CTC``), ``metric_learning`` (the Circle loss) and ``lookup``
(``get`` / ``serialize``). Every name, private helpers included, stays importable from ``onnxforge.losses``.
"""
from __future__ import annotations

__all__ = [
    "Loss", "LossFunctionWrapper", "SparseCategoricalCrossentropy", "CategoricalCrossentropy",
    "BinaryCrossentropy", "MeanSquaredError", "MeanAbsoluteError", "Huber",
    "sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy",
    "mean_squared_error", "mean_absolute_error", "huber", "mse", "mae", "get", "serialize",
    "EPSILON", "Hinge", "SquaredHinge", "CategoricalHinge", "LogCosh", "Poisson", "KLDivergence",
    "MeanAbsolutePercentageError", "MeanSquaredLogarithmicError", "CosineSimilarity", "BinaryFocalCrossentropy",
    "CategoricalFocalCrossentropy", "hinge", "squared_hinge", "categorical_hinge", "log_cosh", "poisson",
    "kl_divergence", "mean_absolute_percentage_error", "mean_squared_logarithmic_error", "cosine_similarity",
    "binary_focal_crossentropy", "categorical_focal_crossentropy", "mape", "msle", "kld", "logcosh", "deserialize",
    "Dice", "Tversky", "CategoricalGeneralizedCrossEntropy", "dice", "tversky", "categorical_generalized_cross_entropy",
    "CTC", "ctc", "Circle", "circle",
]

from .values import (EPSILON, _FLOAT, _axes, _drop, _elem_type, _is_symbolic, _like, _num_classes, _probabilities,
                     _rank, batch_size, cast, elementwise, expand_dims, reduce, run_eagerly, squeeze,
                     squeeze_or_expand_to_same_rank)
from .functions import (KLD, MAE, MAPE, MSE, MSLE, _INT64, _f, _hinge_labels, _margin, _sparse_cce, binary_crossentropy,
                        binary_focal_crossentropy, categorical_crossentropy, categorical_focal_crossentropy,
                        categorical_hinge, cosine_similarity, hinge, huber, kl_divergence, kld, l2_normalize, log_cosh,
                        logcosh, mae, mape, mean_absolute_error, mean_absolute_percentage_error, mean_squared_error,
                        mean_squared_logarithmic_error, mse, msle, poisson, sparse_categorical_crossentropy,
                        squared_hinge)
from .loss import (Loss, LossFunctionWrapper, _REDUCTIONS, _broadcast_shape, _divide_no_nan, _snake,
                   _standardize_reduction, mask_sample_weight, reduce_weighted_values)
from .classes import (BinaryCrossentropy, BinaryFocalCrossentropy, CategoricalCrossentropy,
                      CategoricalFocalCrossentropy, CategoricalHinge, CosineSimilarity, Hinge, Huber, KLDivergence,
                      LogCosh, MeanAbsoluteError, MeanAbsolutePercentageError, MeanSquaredError,
                      MeanSquaredLogarithmicError, Poisson, SparseCategoricalCrossentropy, SquaredHinge,
                      _ProbabilisticLoss, _simple_loss)
from .overlap import (CategoricalGeneralizedCrossEntropy, Dice, Tversky, categorical_generalized_cross_entropy, dice,
                      tversky)
from .ctc import CTC, ctc
from .metric_learning import Circle, circle
from .lookup import ALIASES, _CLASSES, _FUNCTIONS, deserialize, get, serialize
