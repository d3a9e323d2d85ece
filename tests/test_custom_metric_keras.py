"""Metrics written the Keras way (``add_variable``, ``update_state`` with ops and ``assign_add``, ``result``),
defined once against the ``keras`` API and run by real Keras 3 and by onnxforge: on arrays, and compiled
into ``evaluate`` and ``fit``."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
if keras.backend.backend() != "torch":   # pragma: no cover - another backend was chosen before us
    pytest.skip("these comparisons run Keras on its torch backend", allow_module_level=True)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

import onnxforge  # noqa: E402
import onnxforge.keras as fk  # noqa: E402
from exporters.keras_exporter import from_keras  # noqa: E402

R = np.random.default_rng(4)
X = R.normal(size=(13, 4)).astype("float32")
Y = R.integers(0, 3, 13).astype("int64")
W = R.uniform(0.2, 2.0, 13).astype("float32")


def _metrics(lib):
    ops = lib.ops

    class CategoricalTruePositives(lib.metrics.Metric):
        """The Keras guide's example: how many samples were correctly classified."""

        def __init__(self, name="categorical_true_positives", **kwargs):
            super().__init__(name=name, **kwargs)
            self.true_positives = self.add_variable(shape=(), name="ctp", initializer="zeros")

        def update_state(self, y_true, y_pred, sample_weight=None):
            # (``ops.equal`` rather than ``==``: onnxforge's graph values do not overload ``==``.)
            y_pred = ops.reshape(ops.argmax(y_pred, axis=1), (-1, 1))
            y_true = ops.reshape(y_true, (-1, 1))
            values = ops.equal(ops.cast(y_true, "int32"), ops.cast(y_pred, "int32"))
            values = ops.cast(values, "float32")
            if sample_weight is not None:
                sample_weight = ops.cast(sample_weight, "float32")
                values = ops.multiply(values, ops.reshape(sample_weight, (-1, 1)))
            self.true_positives.assign_add(ops.sum(values))

        def result(self):
            return self.true_positives

        def reset_state(self):
            self.true_positives.assign(0.0)

    class MeanConfidence(lib.metrics.Metric):
        """A ratio of two sums and a per-class vector: the highest probability, averaged, and a class count."""

        def __init__(self, name="mean_confidence", **kwargs):
            super().__init__(name=name, **kwargs)
            self.total = self.add_weight(name="total", initializer="zeros")
            self.count = self.add_weight(name="count", initializer="zeros")
            self.per_class = self.add_variable(shape=(3,), name="per_class", initializer="zeros")

        def update_state(self, y_true, y_pred, sample_weight=None):
            self.total.assign(self.total + ops.sum(ops.max(y_pred, axis=-1)))
            self.count.assign_add(ops.cast(ops.shape(y_pred)[0], "float32"))
            self.per_class.assign_add(ops.sum(ops.one_hot(ops.argmax(y_pred, axis=-1), 3), axis=0))

        def result(self):
            return self.total / self.count + 0.0 * ops.sum(self.per_class)

    return CategoricalTruePositives, MeanConfidence


def _value(x):
    return float(keras.ops.convert_to_numpy(x)) if not isinstance(x, (float, np.ndarray)) else float(x)


def test_custom_metrics_standalone_match_keras():
    p = np.asarray(keras.ops.softmax(R.normal(size=(13, 3)).astype("float32")))
    for k_cls, f_cls in zip(_metrics(keras), _metrics(fk)):
        k, f = k_cls(), f_cls()
        for lo, hi in ((0, 5), (5, 13)):
            k.update_state(Y[lo:hi, None], p[lo:hi], sample_weight=W[lo:hi])
            f.update_state(Y[lo:hi, None], p[lo:hi], sample_weight=W[lo:hi])
            assert _value(f.result()) == pytest.approx(_value(k.result()), rel=1e-5)
        k.reset_state()
        f.reset_state()
        assert _value(f.result()) == pytest.approx(_value(k.result()), rel=1e-5, nan_ok=True)


@pytest.mark.parametrize("weighted", [False, True])
def test_custom_metrics_compiled_match_keras(weighted):
    keras.utils.set_random_seed(2)
    k = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, activation="tanh"),
                          keras.layers.Dense(3, activation="softmax")])
    f = from_keras(k)
    for model, lib in ((k, keras), (f, fk)):
        ctp, conf = _metrics(lib)
        argument = "weighted_metrics" if weighted else "metrics"
        model.compile(optimizer=lib.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy",
                      **{argument: [ctp(), conf()]})
    kw = dict(batch_size=4, verbose=0, sample_weight=W if weighted else None)
    expected, got = k.evaluate(X, Y, return_dict=True, **kw), f.evaluate(X, Y, return_dict=True, **kw)
    assert sorted(got) == sorted(expected)
    for key in expected:
        assert got[key] == pytest.approx(float(expected[key]), rel=1e-5), key
    fit_kw = dict(epochs=2, shuffle=False, **kw)
    expected, got = k.fit(X, Y, **fit_kw).history, f.fit(X, Y, **fit_kw).history
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-4, err_msg=key)


def test_an_update_that_is_not_a_sum_is_refused_at_compile():
    ops = fk.ops

    class RunningMax(fk.metrics.Metric):
        def __init__(self, **kwargs):
            super().__init__(name="running_max", **kwargs)
            self.top = self.add_variable(shape=(), name="top")

        def update_state(self, y_true, y_pred, sample_weight=None):
            self.top.assign(ops.maximum(self.top, ops.max(y_pred)))

        def result(self):
            return self.top

    model = onnxforge.Sequential([onnxforge.layers.Input((4,)), onnxforge.layers.Dense(3, activation="softmax")])
    with pytest.raises(ValueError, match="variable 'top' is not a sum"):
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=[RunningMax()])
        model.evaluate(X, Y, verbose=0)
    standalone = RunningMax()     # on arrays it runs as written
    standalone.update_state(Y, np.full((2, 3), 0.25, np.float32))
    standalone.update_state(Y, np.full((2, 3), 0.75, np.float32))
    assert float(standalone.result()) == 0.75


def _tracker_model(lib):
    ops = lib.ops

    class SamplesSeen(lib.metrics.Metric):
        def __init__(self, name="seen", **kwargs):
            super().__init__(name=name, **kwargs)
            self.n = self.add_variable(shape=(), name="n", initializer="zeros")

        def update_state(self, values, sample_weight=None):
            self.n.assign_add(ops.cast(ops.shape(values)[0], "float32"))

        def result(self):
            return self.n

    class Regressor(lib.Model):
        def __init__(self):
            super().__init__()
            self.dense = lib.layers.Dense(1)
            self.loss_tracker = lib.metrics.Mean(name="loss")
            self.seen = SamplesSeen()

        def call(self, x):
            return self.dense(x)

        @property
        def metrics(self):
            return [self.loss_tracker, self.seen]

        def train_step(self, data):
            x, y = data
            if lib is keras:   # Keras's torch custom step, as its guide writes it
                import torch

                self.zero_grad()
                loss = ops.mean(ops.square(self(x, training=True) - y))
                loss.backward()
                grads = [v.value.grad for v in self.trainable_weights]
                with torch.no_grad():
                    self.optimizer.apply(grads, self.trainable_weights)
            else:
                with onnxforge.GradientTape() as tape:
                    loss = ops.mean(ops.square(self(x, training=True) - y))
                grads = tape.gradient(loss, self.trainable_weights)
                self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
            self.loss_tracker.update_state(loss)
            self.seen.update_state(x)
            return {m.name: m.result() for m in self.metrics}

    return Regressor()


def test_custom_metric_as_a_tracker_in_a_custom_train_step_matches_keras():
    y = R.normal(size=(13, 1)).astype("float32")
    k, f = _tracker_model(keras), _tracker_model(fk)
    k(X[:1])
    f(X[:1])
    f.set_weights(k.get_weights())
    for model, lib in ((k, keras), (f, fk)):
        model.compile(optimizer=lib.optimizers.SGD(0.05))
    expected = k.fit(X, y, epochs=2, batch_size=5, shuffle=False, verbose=0).history
    got = f.fit(X, y, epochs=2, batch_size=5, shuffle=False, verbose=0).history
    assert got["seen"] == [13.0, 13.0] and sorted(got) == sorted(expected)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-5, err_msg=key)
