"""``keras.wrappers``: Keras models as scikit-learn estimators (see ``sklearn_estimators``)."""
from __future__ import annotations

from .sklearn_estimators import SKLearnClassifier, SKLearnRegressor, SKLearnTransformer

__all__ = ["SKLearnClassifier", "SKLearnRegressor", "SKLearnTransformer"]
