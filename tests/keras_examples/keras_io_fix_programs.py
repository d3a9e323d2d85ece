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


def combined_nms(tf: Any, keras: Any) -> dict[str, np.ndarray]:
    """examples/vision/retinanet: ``tf.image.combined_non_max_suppression`` on shared (``q=1``) and per-class
    boxes, with the score threshold, unclipped corners in any order, ``pad_per_class``; and the page's
    ``DecodePredictions`` layer in a functional model whose ``predict`` returns the result's namedtuple."""
    rng = np.random.default_rng(0)
    batch, n, classes = 2, 12, 3
    corners = rng.uniform(-0.1, 1.1, size=(batch, n, classes, 4)).astype("float32")
    scores = rng.uniform(size=(batch, n, classes)).astype("float32")
    out: dict[str, np.ndarray] = {}
    cases = {"plain": (3, {}), "threshold": (3, {"score_threshold": 0.8, "clip_boxes": False}),
             "per_class_pad": (2, {"pad_per_class": True}), "tight": (3, {"iou_threshold": 0.1})}
    for q, boxes in (("shared", corners[:, :, :1]), ("own", corners)):
        for case, (per_class, kwargs) in cases.items():
            result = tf.image.combined_non_max_suppression(boxes, scores, per_class, 7, **kwargs)
            for field, value in zip(result._fields, result):
                out[f"{q}_{case}_{field}"] = np.asarray(value)

    class DecodePredictions(keras.layers.Layer):
        def call(self, images, predictions):
            boxes = tf.sigmoid(predictions[:, :, :4])
            scores = tf.nn.sigmoid(predictions[:, :, 4:])
            return tf.image.combined_non_max_suppression(tf.expand_dims(boxes, axis=2), scores, 4, 6, 0.5, 0.5,
                                                         clip_boxes=False)

    image = keras.Input(shape=[None, None, 3], name="image")
    predictions = keras.layers.Reshape((-1, 7))(keras.layers.Conv2D(7, 3, padding="same")(image))
    model = keras.Model(inputs=image, outputs=DecodePredictions()(image, predictions))
    model.set_weights([rng.normal(size=w.shape).astype("float32") for w in model.get_weights()])
    detections = model.predict(rng.normal(size=(2, 5, 6, 3)).astype("float32"), verbose=0)
    out["model_namedtuple"] = np.asarray(type(detections).__name__ == "CombinedNonMaxSuppression")
    out["model_valid"], out["model_scores"] = detections.valid_detections, detections.nmsed_scores
    out["model_boxes"], out["model_classes"] = detections.nmsed_boxes, detections.nmsed_classes
    return out


def distorted_boxes(tf: Any, keras: Any) -> dict[str, np.ndarray]:
    """examples/vision/fixres (and the Inception-style crops): ``tf.image.sample_distorted_bounding_box`` drawn
    400 times (crop sizes, offsets, returned boxes), plus which of TensorFlow's argument checks refuse."""
    keras.utils.set_random_seed(0)
    image = np.zeros((40, 60, 3), "float32")
    box = np.array([[[0.1, 0.2, 0.7, 0.9]]], "float32")
    draws = []
    for _ in range(400):
        begin, size, bbox = tf.image.sample_distorted_bounding_box(tf.shape(image), box, min_object_covered=0.6,
                                                                   area_range=(0.1, 1.0))
        draws.append(np.concatenate([np.asarray(begin), np.asarray(size), np.asarray(bbox).ravel()]))
    ok_box = np.array([[[0.1, 0.1, 0.5, 0.5]]], "float32")
    bad = [dict(bounding_boxes=np.zeros((1, 0, 4), "float32")),
           dict(bounding_boxes=np.array([[[0.1, 0.1, 1.2, 0.5]]], "float32")),
           dict(bounding_boxes=ok_box, area_range=(0.0, 1.0)), dict(bounding_boxes=ok_box, area_range=(0.1, 1.5)),
           dict(bounding_boxes=ok_box, aspect_ratio_range=(-1.0, 1.5)), dict(bounding_boxes=ok_box, max_attempts=0),
           dict(bounding_boxes=ok_box, min_object_covered=-0.5),
           dict(bounding_boxes=np.zeros((1, 0, 4), "float32"), use_image_if_no_bounding_boxes=True)]
    refused = []
    for kwargs in bad:
        try:
            tf.image.sample_distorted_bounding_box(np.array([40, 60, 3], "int32"), **kwargs)
            refused.append(0)
        except tf.errors.InvalidArgumentError:
            refused.append(1)
    # Nothing fits: a crop of at most 2% of the image never covers the whole box, so the image comes back.
    result = tf.image.sample_distorted_bounding_box(np.array([40, 60, 3], "int32"), ok_box, min_object_covered=1.0,
                                                    area_range=(0.01, 0.02))
    return {"draws": np.asarray(draws, np.float64), "refused": np.asarray(refused),
            "whole_image": np.concatenate([np.asarray(v, np.float64).ravel() for v in result]),
            "dtypes": np.asarray([str(np.asarray(v).dtype) for v in (begin, size, bbox)])}
