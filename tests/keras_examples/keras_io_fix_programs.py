"""Shrunk calls of keras.io programs that onnxforge once failed, written against ``tf`` and ``keras`` so that
``tf_oracle`` runs them under TensorFlow and the tests under onnxforge (``tests/keras_oracle/test_keras_io_fixes.py``).
Each returns ``{name: array}``.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def deit_distiller(tf: Any, keras: Any) -> dict[str, np.ndarray]:
    """examples/vision/deit: a wrapper model whose ``call()`` never runs in ``fit``; its ``train_step`` trains the
    student under ``tf.GradientTape`` and calls the deprecated ``compiled_metrics.update_state`` (Keras 3's shim
    updates every metric of ``model.metrics``, its loss tracker included, from a ``compile`` given no loss)."""
    layers, classes = keras.layers, 3

    class Student(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.hidden = layers.Dense(8, activation="relu")
            self.head = layers.Dense(classes)
            self.head_dist = layers.Dense(classes)

        def call(self, inputs, training=True):
            h = self.hidden(inputs)
            x, x_dist = self.head(h), self.head_dist(h)
            return (x + x_dist) / 2 if not training else (x, x_dist)

    class DeiT(keras.Model):
        def __init__(self, student, teacher, **kwargs):
            super().__init__(**kwargs)
            self.student, self.teacher = student, teacher
            self.student_loss_tracker = keras.metrics.Mean(name="student_loss")
            self.dist_loss_tracker = keras.metrics.Mean(name="distillation_loss")

        @property
        def metrics(self):
            metrics = super().metrics
            metrics.append(self.student_loss_tracker)
            metrics.append(self.dist_loss_tracker)
            return metrics

        def compile(self, optimizer, metrics, student_loss_fn, distillation_loss_fn):
            super().compile(optimizer=optimizer, metrics=metrics)
            self.student_loss_fn, self.distillation_loss_fn = student_loss_fn, distillation_loss_fn

        def train_step(self, data):
            x, y = data
            teacher_predictions = tf.argmax(tf.nn.softmax(self.teacher(x, training=False), -1), -1)
            with tf.GradientTape() as tape:
                cls_predictions, dist_predictions = self.student(x / 255.0, training=True)
                student_loss = self.student_loss_fn(y, cls_predictions)
                distillation_loss = self.distillation_loss_fn(teacher_predictions, dist_predictions)
                loss = (student_loss + distillation_loss) / 2
            trainable_vars = self.student.trainable_variables
            self.optimizer.apply_gradients(zip(tape.gradient(loss, trainable_vars), trainable_vars))
            self.compiled_metrics.update_state(y, (cls_predictions + dist_predictions) / 2)
            self.dist_loss_tracker.update_state(distillation_loss)
            self.student_loss_tracker.update_state(student_loss)
            return {m.name: m.result() for m in self.metrics}

        def test_step(self, data):
            x, y = data
            y_prediction = self.student(x / 255.0, training=False)
            student_loss = self.student_loss_fn(y, y_prediction)
            self.compiled_metrics.update_state(y, y_prediction)
            self.student_loss_tracker.update_state(student_loss)
            return {m.name: m.result() for m in self.metrics}

        def call(self, inputs):
            return self.student(inputs / 255.0, training=False)

    rng = np.random.default_rng(0)
    x = (rng.random((16, 5)) * 255).astype("float32")
    y = np.eye(classes, dtype="float32")[rng.integers(0, classes, 16)]
    teacher = keras.Sequential([keras.Input((5,)), layers.Dense(classes)])
    teacher.set_weights([rng.normal(size=(5, classes)).astype("float32") * 0.01, np.zeros(classes, "float32")])
    student = Student()
    student(x[:1], training=False)
    student.set_weights([rng.normal(size=w.shape).astype("float32") * 0.3 for w in student.get_weights()])
    deit = DeiT(student=student, teacher=teacher)
    deit.compile(optimizer=keras.optimizers.SGD(0.1), metrics=["accuracy"],
                 student_loss_fn=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
                 distillation_loss_fn=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = deit.fit(x, y, validation_data=(x, y), epochs=2, batch_size=8, verbose=0, shuffle=False).history
    out = {f"history_{k}": np.asarray(v, np.float64) for k, v in history.items()}
    out["weights"] = np.concatenate([w.ravel() for w in student.get_weights()])
    return out
