"""``keras.wrappers`` (SKLearnClassifier / Regressor / Transformer) against Keras 3's own wrappers (torch
backend), and inside scikit-learn's machinery (Pipeline, clone, cross_val_score, GridSearchCV).

The builder sets the same deterministic weights in both frameworks and fit does not shuffle, so Keras and
onnxforge see identical SGD steps: outputs agree to float32 summation order (1e-5).
"""
from __future__ import annotations

import os

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import make_classification, make_regression  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import onnxforge.keras as fkeras  # noqa: E402

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

FIT = {"epochs": 3, "batch_size": 16, "shuffle": False, "verbose": 0}


def _builder(k, activation=None, loss="mse"):
    def build(X, y, hidden=8):
        model = k.Sequential([k.Input((X.shape[1],)), k.layers.Dense(hidden, activation="relu"),
                              k.layers.Dense(y.shape[1] if y.ndim > 1 else 1, activation=activation)])
        rng = np.random.default_rng(0)
        model.set_weights([rng.normal(0, 0.4, tuple(w.shape)).astype("float32") for w in model.weights])
        model.compile(optimizer=k.optimizers.SGD(0.05), loss=loss)
        return model
    return build


def _classification(n_classes=3):
    X, y = make_classification(n_samples=48, n_features=5, n_informative=3, n_redundant=0, n_classes=n_classes,
                               random_state=0)
    return X.astype("float32"), np.array(["cat", "dog", "emu"])[y]   # string labels round trip too


def test_classifier_matches_keras():
    X, y = _classification()
    theirs = keras.wrappers.SKLearnClassifier(_builder(keras, "softmax", "categorical_crossentropy"),
                                              fit_kwargs=FIT).fit(X, y)
    ours = fkeras.wrappers.SKLearnClassifier(_builder(fkeras, "softmax", "categorical_crossentropy"),
                                             fit_kwargs=FIT).fit(X, y)
    np.testing.assert_array_equal(ours.classes_, theirs.classes_)
    np.testing.assert_allclose(ours.decision_function(X), np.asarray(theirs.decision_function(X)), atol=1e-5)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    assert set(ours.predict(X)) <= {"cat", "dog", "emu"}
    assert ours.n_features_in_ == 5 and ours.epoch_ == 3
    assert ours.score(X, y) == pytest.approx(theirs.score(X, y))


def test_regressor_and_transformer_match_keras():
    X, y = make_regression(n_samples=40, n_features=4, noise=0.1, random_state=0)
    X, y = X.astype("float32"), (y / 100).astype("float32")
    theirs = keras.wrappers.SKLearnRegressor(_builder(keras), model_kwargs={"hidden": 6}, fit_kwargs=FIT).fit(X, y)
    ours = fkeras.wrappers.SKLearnRegressor(_builder(fkeras), model_kwargs={"hidden": 6}, fit_kwargs=FIT).fit(X, y)
    assert ours.predict(X).shape == (40,)
    np.testing.assert_allclose(ours.predict(X), np.asarray(theirs.predict(X)), rtol=1e-5, atol=1e-5)
    assert ours.score(X, y) == pytest.approx(theirs.score(X, y), rel=1e-4, abs=1e-5)
    theirs_t = keras.wrappers.SKLearnTransformer(_builder(keras), fit_kwargs=FIT).fit(X, y)
    ours_t = fkeras.wrappers.SKLearnTransformer(_builder(fkeras), fit_kwargs=FIT).fit(X, y)
    assert ours_t.transform(X).shape == (40, 1)   # the model's outputs, untouched
    np.testing.assert_allclose(ours_t.transform(X), np.asarray(theirs_t.transform(X)), rtol=1e-5, atol=1e-5)


def test_scikit_learn_machinery():
    X, y = _classification()
    est = fkeras.wrappers.SKLearnClassifier(_builder(fkeras, "softmax", "categorical_crossentropy"),
                                            fit_kwargs={"epochs": 1, "verbose": 0})
    copy = clone(est)
    assert copy is not est and copy.get_params()["model"] is est.model and not hasattr(copy, "model_")
    pipe = make_pipeline(StandardScaler(), est).fit(X, y)
    assert pipe.predict(X).shape == (48,)
    scores = cross_val_score(clone(est), X, y, cv=2)
    assert scores.shape == (2,) and np.all((0 <= scores) & (scores <= 1))
    search = GridSearchCV(clone(est), {"model_kwargs": [{"hidden": 2}, {"hidden": 4}]}, cv=2).fit(X, y)
    assert search.best_params_["model_kwargs"]["hidden"] in (2, 4)


def test_a_compiled_model_is_cloned_and_warm_start_continues():
    X, y = make_regression(n_samples=32, n_features=3, random_state=1)
    X, y = X.astype("float32"), (y / 100).astype("float32")
    model = _builder(fkeras)(X, y)
    before = [w.copy() for w in model.get_weights()]
    est = fkeras.wrappers.SKLearnRegressor(model, fit_kwargs={"epochs": 1, "verbose": 0}).fit(X, y)
    assert est.model_ is not model
    for a, b in zip(before, model.get_weights()):   # the given model is left as it was
        np.testing.assert_array_equal(a, b)
    warm = fkeras.wrappers.SKLearnRegressor(_builder(fkeras), warm_start=True, fit_kwargs={"epochs": 1, "verbose": 0})
    first = warm.fit(X, y).model_
    weights = [w.copy() for w in first.get_weights()]
    assert warm.fit(X, y).model_ is first
    assert any(not np.array_equal(a, b) for a, b in zip(weights, first.get_weights()))


def test_bad_models_and_targets_are_refused():
    X, y = _classification()

    def uncompiled(X, y):
        return fkeras.Sequential([fkeras.Input((5,)), fkeras.layers.Dense(3)])

    with pytest.raises(RuntimeError, match="must be compiled"):
        fkeras.wrappers.SKLearnClassifier(uncompiled).fit(X, y)
    build = _builder(fkeras, "sigmoid", "binary_crossentropy")
    with pytest.raises(ValueError, match="only binary and multiclass targets.*'continuous'"):
        fkeras.wrappers.SKLearnClassifier(build).fit(X, X[:, 0])
    with pytest.raises(ValueError, match="only one class"):
        fkeras.wrappers.SKLearnClassifier(build).fit(X, np.zeros(48))
    with pytest.raises(TypeError, match="compiled keras Model or a callable"):
        fkeras.wrappers.SKLearnRegressor(model="mlp").fit(X, np.zeros(48))
    fitted = fkeras.wrappers.SKLearnRegressor(_builder(fkeras), fit_kwargs={"epochs": 1, "verbose": 0}) \
        .fit(X, np.zeros(48, "float32"))
    with pytest.raises(ValueError, match="features"):
        fitted.predict(X[:, :4])
