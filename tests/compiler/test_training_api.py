"""TrainingMixin: compile errors, the batch methods, host-side checks, Keras logs, and real-layer training."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from onnxforge import losses, metrics, optimizers
from onnxforge.layers import Dense, Input
from onnxforge.models import Sequential
from onnxforge.optimizers import schedules
from onnxforge.utils import set_random_seed

from .standin import MLP


def _xy(n=12, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)).astype(np.float32), rng.integers(0, classes, n)


@pytest.fixture(scope="module")
def model():
    m = MLP()
    m.compile(optimizer=optimizers.SGD(learning_rate=0.05), loss=losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy", metrics.SparseTopKCategoricalAccuracy(k=2)], device="cpu")
    return m


# ------------------------------------------------------------------ compile
def test_calling_before_compile_is_an_error():
    with pytest.raises(RuntimeError, match=r"You must call `compile\(\)` before calling `train_on_batch\(\)`"):
        MLP().train_on_batch(*_xy())
    with pytest.raises(RuntimeError, match="compile"):
        MLP().test_on_batch(*_xy())
    out = MLP().predict_on_batch(_xy()[0])        # prediction needs no compile, as in Keras
    assert out.shape == (12, 3)


@pytest.mark.parametrize("kwargs,pattern", [
    (dict(optimizer="adamm"), r"optimizer.*'adamm'.*Valid choices"),
    (dict(loss="categorical_crossentopy"), r"`loss`.*'categorical_crossentopy'.*Valid choices"),
    (dict(loss="mse", metrics=["acuracy"]), r"`metrics`.*'acuracy'.*Valid choices"),
    (dict(loss={"nope": "mse"}), r"`loss` dict has key\(s\) \['nope'\].*\['dense_1'\]"),
    (dict(loss="mse", device="tpu"), r"device.*'tpu'"),
    (dict(loss="mse", steps_per_execution=0), "steps_per_execution"),
])
def test_compile_errors_name_argument_value_and_choices(kwargs, pattern):
    kwargs.setdefault("optimizer", "sgd")
    with pytest.raises(ValueError, match=pattern):
        MLP().compile(**kwargs)


def test_linear_output_with_probability_loss_warns_once_naming_the_layer():
    """The seed bug: Dense(10) + 'sparse_categorical_crossentropy' (from_logits=False)."""
    set_random_seed(3)   # weights whose scores sum to a positive number (else both sides are NaN)
    model = Sequential([Input(shape=(4,)), Dense(8, activation="relu"), Dense(10, name="scores")])
    with pytest.warns(UserWarning, match=r"'scores'.*linear activation.*from_logits=True") as record:
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", device="cpu")
    assert len([w for w in record if "linear activation" in str(w.message)]) == 1
    # Keras semantics are kept: the scores are treated as probabilities (renormalized, clipped).
    x, y = _xy(classes=10)
    scores = model.predict_on_batch(x)
    want = float(np.mean(losses.sparse_categorical_crossentropy(y, scores)))
    assert np.isfinite(want)
    assert model.test_on_batch(x, y) == pytest.approx(want, rel=1e-5)
    for fixed in (dict(loss=losses.SparseCategoricalCrossentropy(from_logits=True)), dict(loss="mse")):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            model.compile(optimizer="adam", device="cpu", **fixed)
    softmax = Sequential([Input(shape=(4,)), Dense(10, activation="softmax")])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        softmax.compile(optimizer="adam", loss="sparse_categorical_crossentropy", device="cpu")


# ------------------------------------------------------------------ host-side checks
def test_wrong_input_shape_rank_and_dtype_name_the_input(model):
    x, y = _xy()
    with pytest.raises(ValueError, match=r'Input 0 \("features"\).*expected shape=\(None, 4\), found shape=\(12, 5\)'):
        model.train_on_batch(np.zeros((12, 5), np.float32), y)
    with pytest.raises(ValueError, match=r"expected shape=\(None, 4\), found shape=\(12, 4, 2\)"):
        model.test_on_batch(np.repeat(x[..., None], 2, axis=-1), y)
    # Keras's functional rule: a trailing axis of size 1 too many is dropped, one too few is added.
    assert model.test_on_batch(x[..., None], y) == pytest.approx(model.test_on_batch(x, y), rel=1e-6)
    with pytest.raises(TypeError, match="dtype"):
        model.predict_on_batch(np.array([["a"] * 4] * 2))


def test_labels_out_of_range_and_one_hot_labels_for_sparse_loss(model):
    x, y = _xy()
    bad = y.copy()
    bad[3] = 3
    with pytest.raises(ValueError, match=r"label value of 3 .*outside the valid range of \[0, 3\)"):
        model.train_on_batch(x, bad)
    bad[3] = -1
    with pytest.raises(ValueError, match=r"label value of -1"):
        model.test_on_batch(x, bad)
    with pytest.raises(ValueError, match="one-hot labels.*categorical_crossentropy"):
        model.train_on_batch(x, np.eye(3)[y])
    # Fractional float ids are Keras's too (truncated by the loss): tests/keras_oracle/test_keras_io_fixes.py.
    with pytest.raises(ValueError, match=r"label value of 3"):
        model.train_on_batch(x, np.where(np.arange(len(y)) == 3, 3.5, y + 0.5))


def test_mismatched_sample_counts(model):
    x, y = _xy()
    with pytest.raises(ValueError, match=r"cardinality.*x: 12 samples.*y: 11 samples"):
        model.train_on_batch(x, y[:11])
    with pytest.raises(ValueError, match=r"cardinality.*sample_weight: 5 samples"):
        model.test_on_batch(x, y, sample_weight=np.ones(5))
    with pytest.raises(ValueError, match="cardinality"):
        model._train_batch([x], [y[:3]], None)       # the loops' entry point checks too


def test_dense_target_shape_errors_hint_at_sparse_loss():
    m = MLP()
    m.compile(optimizer="sgd", loss=losses.CategoricalCrossentropy(from_logits=True), device="cpu")
    x, y = _xy()
    with pytest.raises(ValueError, match=r"target.*output.*same shape.*sparse_categorical_crossentropy"):
        m.train_on_batch(x, y)


# ------------------------------------------------------------------ batch methods and logs
def test_batch_methods_return_keras_values_of_their_batch_alone(model):
    x, y = _xy()
    assert model.metrics_names == ["loss", "compile_metrics"]   # Keras 3: one entry for the compiled metrics
    first = model.test_on_batch(x, y, return_dict=True)
    logits = model.predict_on_batch(x)
    assert first["accuracy"] == pytest.approx(float((logits.argmax(-1) == y).mean()))
    again = model.test_on_batch(x[:6], y[:6], return_dict=True)
    acc6 = float((logits[:6].argmax(-1) == y[:6]).mean())
    assert again["accuracy"] == pytest.approx(acc6)   # Keras 3 resets the metrics before each batch call
    values = model.test_on_batch(x, y)
    assert isinstance(values, list) and values[0] == pytest.approx(first["loss"], rel=1e-6)
    loss, acc, top2 = model.train_on_batch(x, y)
    assert loss == pytest.approx(first["loss"], rel=1e-5)   # the loss before the update, this batch only
    assert model.test_on_batch(x, y)[0] != pytest.approx(first["loss"], rel=1e-6)


def test_sums_api_for_the_loops(model):
    x, y = _xy()
    sums = model._eval_batch([x[:5]], [y[:5]], None)
    more = model._eval_batch([x[5:]], [y[5:]], None)
    total = {k: sums[k] + more[k] for k in sums}
    assert set(total) == {"loss/total", "loss/count", "accuracy/total", "accuracy/count",
                          "sparse_top_k_categorical_accuracy/total", "sparse_top_k_categorical_accuracy/count"}
    assert total["loss/count"] == 12
    model.reset_metrics()
    whole = model.test_on_batch(x, y, return_dict=True)
    results = model._metric_results(total)
    assert list(results) == ["loss", "accuracy", "sparse_top_k_categorical_accuracy"]
    for k in whole:
        assert results[k] == pytest.approx(whole[k], rel=1e-6)
    assert [a.shape for a in model._predict_batch([x])] == [(12, 3)]


def test_sample_and_class_weights(model):
    x, y = _xy()
    cw = {0: 2.0, 1: 0.5, 2: 1.0}
    model.reset_metrics()
    by_class = model.test_on_batch(x, y, sample_weight=np.array([cw[c] for c in y]), return_dict=True)
    model.reset_metrics()
    plain = model.test_on_batch(x, y, return_dict=True)
    assert by_class["loss"] != pytest.approx(plain["loss"])
    assert by_class["accuracy"] == pytest.approx(plain["accuracy"])     # `metrics` are not weighted (Keras 3)
    m = MLP()
    m.compile(optimizer=optimizers.SGD(learning_rate=0.1), loss=losses.SparseCategoricalCrossentropy(from_logits=True),
              device="cpu")
    twin = MLP()
    twin.compile(optimizer=optimizers.SGD(learning_rate=0.1), device="cpu",
                 loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    a = m.train_on_batch(x, y, class_weight=cw)
    b = twin.train_on_batch(x, y, sample_weight=np.array([cw[c] for c in y]))
    assert a == pytest.approx(b, rel=1e-6)
    np.testing.assert_allclose(m.k1.numpy(), twin.k1.numpy(), rtol=1e-6)


def test_weighted_metrics_use_sample_weights():
    m = MLP()
    m.compile(optimizer="sgd", loss=losses.SparseCategoricalCrossentropy(from_logits=True), device="cpu",
              metrics=["accuracy"], weighted_metrics=["accuracy"])
    x, y = _xy()
    w = np.linspace(0, 1, 12).astype(np.float32)
    logs = m.test_on_batch(x, y, sample_weight=w, return_dict=True)
    hits = (m.predict_on_batch(x).argmax(-1) == y).astype(np.float64)
    assert list(logs) == ["accuracy", "loss", "weighted_accuracy"]   # sorted, as Keras returns them
    assert logs["accuracy"] == pytest.approx(hits.mean())
    assert logs["weighted_accuracy"] == pytest.approx((hits * w).sum() / w.sum(), rel=1e-6)


def test_schedules_are_fed_per_step():
    m = MLP()
    m.compile(optimizer=optimizers.SGD(learning_rate=schedules.PiecewiseConstantDecay([1], [0.1, 0.0])),
              loss=losses.SparseCategoricalCrossentropy(from_logits=True), device="cpu")
    x, y = _xy()
    snapshots = []
    for _ in range(4):
        m.train_on_batch(x, y)
        snapshots.append(m.k1.numpy().copy())
    assert not np.allclose(snapshots[0], snapshots[1])
    np.testing.assert_array_equal(snapshots[2], snapshots[1])
    np.testing.assert_array_equal(snapshots[3], snapshots[2])
    assert int(m.optimizer.iterations.numpy()) == 4


# ------------------------------------------------------------------ real layers through fit / evaluate / predict
def test_fit_evaluate_predict_with_real_layers_learns():
    from onnxforge.initializers import set_random_seed

    set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64) + 2 * (x[:, 2] > 0.5)
    model = Sequential([Input(shape=(4,)), Dense(16, activation="relu"), Dense(4, activation="softmax")])
    model.compile(optimizer=optimizers.Adam(learning_rate=0.02), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], device="cpu", seed=1)
    history = model.fit(x, y, epochs=8, batch_size=32, validation_split=0.2, verbose=0)
    assert sorted(history.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert history.history["loss"][-1] < history.history["loss"][0] * 0.5
    assert history.history["accuracy"][-1] > 0.85
    loss, acc = model.evaluate(x, y, verbose=0)
    probs = model.predict(x, verbose=0)
    assert acc == pytest.approx(float((probs.argmax(-1) == y).mean()), abs=1e-6)
    assert loss == pytest.approx(float(np.mean(losses.sparse_categorical_crossentropy(y, probs))), rel=1e-4)


def test_compile_config_round_trip():
    m = MLP()
    m.compile(optimizer=optimizers.Adam(learning_rate=0.02, amsgrad=True), device="cpu", seed=3,
              loss=losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy", metrics.SparseTopKCategoricalAccuracy(k=2, name="top2")])
    config = m.get_compile_config()
    import json
    json.dumps(config)
    again = MLP()
    again.compile_from_config(json.loads(json.dumps(config)), device="cpu")
    assert again.optimizer.amsgrad and again.optimizer.learning_rate == 0.02
    assert again.metrics_names == ["loss", "compile_metrics"]
    assert [n for n, _ in again.compiled_metrics] == ["loss", "accuracy", "top2"]
    assert again.compiled_metrics[2][1].k == 2
    x, y = _xy()
    assert again.test_on_batch(x, y) == pytest.approx(m.test_on_batch(x, y), rel=1e-6)
    assert MLP().get_compile_config() is None


def test_confusion_metrics_reject_sparse_labels_at_compile():
    with pytest.raises(ValueError, match=r"AUC, Precision, Recall.*y_true.shape=\('batch',\).*y_pred.shape"):
        MLP().compile(optimizer="sgd", loss=losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=[metrics.AUC()], device="cpu")
