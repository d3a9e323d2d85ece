"""Keras 3's scikit-learn estimators (``keras.wrappers``): a compiled model as a classifier, regressor or
transformer that ``Pipeline``, ``GridSearchCV``, ``cross_val_score`` and ``sklearn.base.clone`` accept.

``model`` is a compiled ``Model`` (cloned, compile configuration included, before each fit) or a callable
``model(X=..., y=..., **model_kwargs)`` that returns a compiled one, built for the data it is given. Targets
are shaped for Keras the way the Keras wrappers shape them: a 1-D ``y`` becomes a column, and the classifier
one-hot encodes its classes (``classes_``), so ``predict`` returns labels and ``decision_function`` the
model's outputs. scikit-learn is needed (``pip install scikit-learn``) only when an estimator is made.

Example:
    >>> import numpy as np
    >>> import onnxforge.keras as keras
    >>> from onnxforge.wrappers import SKLearnRegressor
    >>> def build(X, y):
    ...     model = keras.Sequential([keras.Input((X.shape[1],)), keras.layers.Dense(1)])
    ...     model.compile(optimizer="sgd", loss="mse")
    ...     return model
    >>> X = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    >>> est = SKLearnRegressor(build, fit_kwargs={"epochs": 2, "verbose": 0}).fit(X, X.sum(axis=1))
    >>> est.predict(X).shape, est.n_features_in_
    ((32,), 3)
"""
from __future__ import annotations

__all__ = ["SKLearnClassifier", "SKLearnRegressor", "SKLearnTransformer", "TargetReshaper"]

import copy
from typing import Any

import numpy as np

try:
    import sklearn
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, TransformerMixin
except ImportError:   # the classes still import; making an estimator says what is missing
    sklearn = None

    class BaseEstimator:   # type: ignore[no-redef]
        pass

    class ClassifierMixin:   # type: ignore[no-redef]
        pass

    class RegressorMixin:   # type: ignore[no-redef]
        pass

    class TransformerMixin:   # type: ignore[no-redef]
        pass


def _require_sklearn(name: str) -> None:
    if sklearn is None:
        raise ImportError(f"{name} needs scikit-learn, which is not installed. Run `pip install scikit-learn`.")


def _validate(estimator: Any, X: Any, y: Any = None, reset: bool = True) -> Any:
    """scikit-learn's input checks (2-D numeric ``X``, ``n_features_in_`` recorded on fit, checked after)."""
    try:
        from sklearn.utils.validation import validate_data   # scikit-learn >= 1.6
    except ImportError:   # pragma: no cover - older scikit-learn
        return estimator._validate_data(X, y, reset=reset) if y is not None else \
            estimator._validate_data(X, reset=reset)
    if y is None:
        return validate_data(estimator, X, reset=reset)
    return validate_data(estimator, X, y, reset=reset)


def _target_type(y: Any) -> str:
    from sklearn.utils.multiclass import type_of_target

    kind = type_of_target(y)
    if kind == "unknown":
        raise ValueError(f"Unknown label type for the targets: {y!r}")
    return kind


class TargetReshaper(TransformerMixin, BaseEstimator):
    """1-D targets as a column for Keras, and predictions of such targets back to 1-D."""

    def fit(self, y: np.ndarray) -> TargetReshaper:
        self.ndim_ = np.ndim(y)
        return self

    def transform(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y)
        return y.reshape(-1, 1) if y.ndim == 1 else y

    def inverse_transform(self, y: np.ndarray) -> np.ndarray:
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        y = np.asarray(y)
        return y[:, 0] if self.ndim_ == 1 and y.ndim == 2 and y.shape[1] == 1 else y


class _SKLBase(BaseEstimator):
    """What the three estimators share: the model (cloned or built per fit), fit, predict, cloning."""

    def __init__(self, model: Any, warm_start: bool = False, model_kwargs: dict | None = None,
                 fit_kwargs: dict | None = None):
        _require_sklearn(type(self).__name__)
        self.model = model
        self.warm_start = warm_start
        self.model_kwargs = model_kwargs
        self.fit_kwargs = fit_kwargs

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.non_deterministic = True   # weights start at random and training draws batches at random
        return tags

    def __sklearn_clone__(self) -> _SKLBase:
        # scikit-learn's clone deep-copies every parameter; the model (a builder, or a compiled Model that
        # each fit clones anyway) is shared instead, as Keras's wrappers do.
        return type(self)(model=self.model, warm_start=self.warm_start,
                          model_kwargs=copy.deepcopy(self.model_kwargs), fit_kwargs=copy.deepcopy(self.fit_kwargs))

    @property
    def epoch_(self) -> int:
        """How many epochs the last fit ran."""
        history = getattr(self, "history_", None)
        return len(getattr(history, "epoch", ())) if history is not None else 0

    def _get_model(self, X: np.ndarray, y: np.ndarray) -> Any:
        if self.warm_start and hasattr(self, "model_"):
            return self.model_
        if _is_model(self.model):
            from ..models.cloning import clone_model

            return clone_model(self.model)
        if not callable(self.model):
            raise TypeError(f"{type(self).__name__}: `model` must be a compiled keras Model or a callable "
                            f"returning one. Received: model={self.model!r}")
        return self.model(X=X, y=y, **(self.model_kwargs or {}))

    def fit(self, X: Any, y: Any, **kwargs: Any) -> _SKLBase:
        """Fit the model on ``X`` (``(n_samples, n_features)``) and ``y``; ``kwargs`` go to ``model.fit``
        (over ``fit_kwargs``)."""
        X, y = _validate(self, X, y, reset=True)
        y = self._process_target(y, reset=True)
        model = self._get_model(X, y)
        _check_compiled(type(self).__name__, model)
        fit_kwargs = {**(self.fit_kwargs or {}), **kwargs}
        self.history_ = model.fit(X, y, **fit_kwargs)
        self.model_ = model
        return self

    def predict(self, X: Any) -> np.ndarray:
        """The model's predictions for ``X``, in the targets' own form (labels for the classifier)."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        X = _validate(self, X, reset=False)
        return self._target_encoder.inverse_transform(self.model_.predict(X, verbose=0))

    def _process_target(self, y: np.ndarray, reset: bool = False) -> np.ndarray:
        _target_type(y)
        if reset:
            self._target_encoder = TargetReshaper().fit(y)
        return self._target_encoder.transform(y)


def _is_model(obj: Any) -> bool:
    from ..models import Model

    return isinstance(obj, Model)


def _check_compiled(owner: str, model: Any) -> None:
    if not _is_model(model):
        raise TypeError(f"{owner}: `model` must give a keras Model. Received: {type(model).__name__}")
    if not getattr(model, "compiled", False) or not getattr(model, "loss", None) or \
            getattr(model, "optimizer", None) is None:
        raise RuntimeError(f"{owner}: the model {getattr(model, 'name', '')!r} must be compiled, with a loss and an "
                           "optimizer, before the estimator fits it (call model.compile(optimizer=..., loss=...)).")


class SKLearnClassifier(ClassifierMixin, _SKLBase):
    """A compiled Keras classifier as a scikit-learn classifier: targets are one-hot encoded for the model (so
    its loss is ``categorical_crossentropy`` and its last layer gives one output per class), ``predict``
    returns the class labels, ``classes_`` lists them and ``decision_function`` gives the model's outputs."""

    def _process_target(self, y: np.ndarray, reset: bool = False) -> np.ndarray:
        kind = _target_type(y)
        if kind not in ("binary", "multiclass"):
            raise ValueError(f"{type(self).__name__}: only binary and multiclass targets are supported. "
                             f"Received targets of type {kind!r}")
        if reset:
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import OneHotEncoder

            self.classes_ = np.unique(y)
            if len(self.classes_) == 1:
                raise ValueError(f"{type(self).__name__}: the classifier can't train when only one class is "
                                 f"present. Received: classes {self.classes_.tolist()}")
            self._target_encoder = make_pipeline(TargetReshaper(), OneHotEncoder(sparse_output=False)).fit(y)
        return self._target_encoder.transform(y)

    def decision_function(self, X: Any) -> np.ndarray:
        """The model's raw outputs for ``X`` (one column per class)."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        return self.model_.predict(_validate(self, X, reset=False), verbose=0)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.poor_score = True
        return tags


class SKLearnRegressor(RegressorMixin, _SKLBase):
    """A compiled Keras regression model as a scikit-learn regressor (``score`` is R^2)."""

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.regressor_tags.poor_score = True
        return tags


class SKLearnTransformer(TransformerMixin, _SKLBase):
    """A compiled Keras model as a scikit-learn transformer: ``transform(X)`` is ``model.predict(X)`` (an
    embedding step in a ``Pipeline``, say)."""

    def transform(self, X: Any) -> np.ndarray:
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        return self.model_.predict(_validate(self, X, reset=False), verbose=0)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = []
        return tags
