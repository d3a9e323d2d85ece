"""``keras.wrappers``: ``onnxforge.wrappers`` (scikit-learn estimators), imported on first use."""
from __future__ import annotations

from ..wrappers import SKLearnClassifier, SKLearnRegressor, SKLearnTransformer

__all__ = ["SKLearnClassifier", "SKLearnRegressor", "SKLearnTransformer"]
