"""``Model.compute_loss`` overrides (keras.io's knowledge distillation) and ``super().compute_loss`` against
Keras 3 on torch: the same loss values, the same weights after SGD steps, compiled metrics still reported."""
from __future__ import annotations

import numpy as np
import pytest

from tests.keras_oracle.common import LIBS


def _distiller_class(k):
    ops = k.ops

    class Distiller(k.Model):
        def __init__(self, student, teacher):
            super().__init__()
            self.teacher = teacher
            self.student = student

        def compile(self, optimizer, metrics, student_loss_fn, distillation_loss_fn, alpha=0.1, temperature=3):
            super().compile(optimizer=optimizer, metrics=metrics)
            self.student_loss_fn = student_loss_fn
            self.distillation_loss_fn = distillation_loss_fn
            self.alpha = alpha
            self.temperature = temperature

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, allow_empty=False):
            teacher_pred = self.teacher(x, training=False)
            student_loss = self.student_loss_fn(y, y_pred)
            distillation_loss = self.distillation_loss_fn(
                ops.softmax(teacher_pred / self.temperature, axis=1),
                ops.softmax(y_pred / self.temperature, axis=1)) * (self.temperature ** 2)
            return self.alpha * student_loss + (1 - self.alpha) * distillation_loss

        def call(self, x):
            return self.student(x)

    return Distiller


def _net(k, width, name):
    return k.Sequential([k.Input((6,)), k.layers.Dense(width, activation="relu"), k.layers.Dense(4)], name=name)


def test_distillation_compute_loss_matches_keras():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 6)).astype("float32")
    y = rng.integers(0, 4, 16)
    weights = {}
    results = {}
    for lib, k in LIBS.items():
        teacher, student = _net(k, 12, "teacher"), _net(k, 5, "student")
        if not weights:
            weights = {"teacher": teacher.get_weights(), "student": student.get_weights()}
        teacher.set_weights(weights["teacher"])
        student.set_weights(weights["student"])
        distiller = _distiller_class(k)(student=student, teacher=teacher)
        distiller.compile(optimizer=k.optimizers.SGD(learning_rate=0.1),
                          metrics=[k.metrics.SparseCategoricalAccuracy()],
                          student_loss_fn=k.losses.SparseCategoricalCrossentropy(from_logits=True),
                          distillation_loss_fn=k.losses.KLDivergence(), alpha=0.3, temperature=4)
        logs = [distiller.train_on_batch(x, y, return_dict=True) for _ in range(3)]
        evaluated = distiller.evaluate(x, y, return_dict=True, verbose=0)
        results[lib] = (logs, evaluated, student.get_weights(), teacher.get_weights())
    (k_logs, k_eval, k_student, k_teacher), (f_logs, f_eval, f_student, f_teacher) = results["keras"], \
        results["onnxforge"]
    for a, b in zip(k_logs + [k_eval], f_logs + [f_eval]):
        assert sorted(a) == sorted(b)
        for key in a:
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-5), key
    # Keras differentiates with respect to every trainable weight the loss reads: the teacher's too.
    for a, b in zip(k_student + k_teacher, f_student + f_teacher):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)


def test_super_compute_loss_adds_a_term_like_keras():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(8, 3)).astype("float32")
    y = rng.normal(size=(8, 2)).astype("float32")
    out = {}
    for lib, k in LIBS.items():
        class Penalized(k.Model):
            def __init__(self, **kwargs):
                super().__init__(**kwargs)
                self.dense = k.layers.Dense(2, kernel_initializer="ones")

            def call(self, inputs):
                return self.dense(inputs)

            def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
                base = super().compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training)
                return base + 0.5 * k.ops.mean(k.ops.abs(y_pred))

        model = Penalized()
        model.compile(k.optimizers.SGD(0.05), loss="mse", metrics=["mae"])
        history = model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0).history
        out[lib] = (history, model.get_weights())
    for key in out["keras"][0]:
        np.testing.assert_allclose(out["onnxforge"][0][key], out["keras"][0][key], rtol=1e-4)
    for a, b in zip(out["keras"][1], out["onnxforge"][1]):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)


def test_compute_loss_must_return_a_scalar():
    from onnxforge import keras as fk

    class PerSample(fk.Model):
        def __init__(self):
            super().__init__()
            self.dense = fk.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None):
            return fk.ops.mean(fk.ops.square(y - y_pred), axis=-1)

    model = PerSample()
    model.compile("sgd")
    with pytest.raises(ValueError, match="compute_loss.*scalar"):
        model.fit(np.ones((4, 3), "float32"), np.ones((4, 2), "float32"), verbose=0)


def test_token_loss_with_sparse_ids_weights_per_token_and_its_own_tracker_like_keras():
    """keras.io's masked language model: compile() with an optimizer only, a compute_loss reading ``(batch,
    steps)`` token ids against ``(batch, steps, vocab)`` probabilities with ``(batch, steps)`` sample weights,
    and a ``metrics`` property listing only the Mean it updates, named "loss": Keras logs just that tracker.
    onnxforge built its steps on output-shaped targets (ONNX shape inference failed on the OneHot), refused the
    per-token weights, and logged its own "loss" beside the user's as "loss_1"."""
    rng = np.random.default_rng(3)
    x = rng.integers(1, 7, (8, 5))
    y = rng.integers(1, 7, (8, 5))
    w = (rng.random((8, 5)) < 0.4).astype("float32")
    out = {}
    for lib, k in LIBS.items():
        loss_fn = k.losses.SparseCategoricalCrossentropy(reduction=None)
        loss_tracker = k.metrics.Mean(name="loss")

        class TokenModel(k.Model):
            def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None):
                loss = loss_fn(y, y_pred, sample_weight)
                loss_tracker.update_state(loss, sample_weight=sample_weight)
                return k.ops.sum(loss)

            def compute_metrics(self, x, y, y_pred, sample_weight):
                return {"loss": loss_tracker.result()}

            @property
            def metrics(self):
                return [loss_tracker]

        inputs = k.Input((5,), dtype="int64")
        probs = k.layers.Dense(7, activation="softmax", kernel_initializer="ones")(
            k.layers.Embedding(7, 3, embeddings_initializer="ones")(inputs))
        model = TokenModel(inputs, probs)
        model.compile(optimizer=k.optimizers.SGD(0.01))
        history = model.fit(x, y, sample_weight=w, batch_size=4, epochs=2, shuffle=False, verbose=0).history
        out[lib] = (history, model.get_weights())
    assert sorted(out["onnxforge"][0]) == sorted(out["keras"][0]) == ["loss"]
    np.testing.assert_allclose(out["onnxforge"][0]["loss"], out["keras"][0]["loss"], rtol=1e-5)
    for a, b in zip(out["keras"][1], out["onnxforge"][1]):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)
