"""Keras 3.15's ``keras.distillation``: a ``Distiller`` of a Functional teacher and a Sequential student with
a ``LogitsDistillation`` (KL divergence of temperature-softened softmaxes) and a ``FeatureDistillation`` between
two hidden layers picked by name, compiled with the student's sparse crossentropy and an accuracy metric;
``evaluate``, one ``fit`` step (the whole set as one batch), ``predict``, then the distilled student saved to ``.keras`` and
loaded back; a whole ``Distiller`` saved by either framework loads in the other; argument errors as Keras's.

Tolerance: Keras's initial weights copied to all three models (teacher, student), no Dropout: nothing is
random, so the losses and the student's predictions after one Adam step agree to float32 summation order
(1e-4 relative; Adam's first step moves each weight by ~lr whatever the gradient's size, so 1e-4 on outputs of
order 1 leaves room for that). The reloaded student equals the trained one to 1e-6.
"""
from __future__ import annotations

import numpy as np
import pytest

from .harness import fkeras, keras as real_keras, run_both, to_numpy, workdir


def distill_program(keras, data, init, tmp_path):
    x, y = data
    layers = keras.layers
    keras.utils.set_random_seed(3)
    inputs = keras.Input((6,))
    h = layers.Dense(16, activation="relu", name="t_dense")(inputs)
    h = layers.Dense(8, activation="tanh", name="t_feature")(h)
    teacher = keras.Model(inputs, layers.Dense(4, name="t_logits")(h), name="teacher")
    student = keras.Sequential([keras.Input((6,)), layers.Dense(8, activation="tanh", name="s_feature"),
                                layers.Dense(4, name="s_logits")], name="student")
    init(teacher)
    init(student)
    distiller = keras.distillation.Distiller(
        teacher=teacher, student=student,
        distillation_losses=[keras.distillation.LogitsDistillation(temperature=2.0),
                             keras.distillation.FeatureDistillation(loss="mse", teacher_layer_name="t_feature",
                                                                    student_layer_name="s_feature")],
        distillation_loss_weights=[1.0, 0.5], student_loss_weight=0.3)
    distiller.compile(optimizer=keras.optimizers.Adam(0.01),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=[keras.metrics.SparseCategoricalAccuracy(name="acc")])
    out = {"teacher_trainable": teacher.trainable,
           "trainable_weights": len(distiller.trainable_weights)}
    out["teacher_before"] = np.asarray(to_numpy(teacher.predict(x, verbose=0)))
    out["evaluate"] = distiller.evaluate(x, y, batch_size=len(x), return_dict=True, verbose=0)
    history = distiller.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0).history
    out["step"] = {k: float(v[-1]) for k, v in history.items()}   # one step: the batch is the whole set
    out["predict"] = np.asarray(to_numpy(distiller.predict(x, verbose=0)))
    out["teacher_predict"] = np.asarray(to_numpy(teacher.predict(x, verbose=0)))
    path = str(workdir(keras, tmp_path) / "student.keras")
    distiller.student.save(path)
    out["reloaded"] = np.asarray(to_numpy(keras.models.load_model(path).predict(x, verbose=0)))
    out["path"] = path
    return out


def test_distiller_matches_keras(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 6)).astype("float32")
    y = rng.integers(0, 4, size=(16,))
    want, got = run_both(distill_program, (x, y), copy_weights=True, tmp_path=tmp_path)
    assert got["teacher_trainable"] is False and want["teacher_trainable"] is False
    assert got["trainable_weights"] == want["trainable_weights"] == 4   # the student's kernels and biases only
    assert sorted(got["evaluate"]) == sorted(want["evaluate"])
    for key in want["evaluate"]:
        assert got["evaluate"][key] == pytest.approx(want["evaluate"][key], rel=1e-4, abs=1e-6), key
    assert sorted(got["step"]) == sorted(want["step"])
    for key in want["step"]:
        assert got["step"][key] == pytest.approx(want["step"][key], rel=1e-4, abs=1e-6), key
    np.testing.assert_allclose(got["teacher_before"], want["teacher_before"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(want["teacher_predict"], want["teacher_before"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got["teacher_predict"], got["teacher_before"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got["predict"], want["predict"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got["reloaded"], got["predict"], rtol=1e-6, atol=1e-6)
    # The student onnxforge saved is an ordinary Keras 3 file.
    np.testing.assert_allclose(to_numpy(real_keras.models.load_model(got["path"]).predict(x, verbose=0)),
                               got["predict"], rtol=1e-5, atol=1e-6)


def _mlp(keras, name):
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(6, activation="relu", name="h"),
                             keras.layers.Dense(3)], name=name)


def test_a_saved_distiller_loads_in_either_framework(tmp_path):
    """The whole Distiller (teacher, student and losses in its config) saved by one framework and loaded by the
    other predicts as the saved one (its custom ``compile`` is skipped on load, with Keras's warning)."""
    x = np.random.default_rng(1).normal(size=(5, 4)).astype("float32")
    y = np.array([0, 1, 2, 1, 0])
    for saver, loader in ((fkeras, real_keras), (real_keras, fkeras)):
        saver.utils.set_random_seed(0)
        distiller = saver.distillation.Distiller(_mlp(saver, "teacher"), _mlp(saver, "student"),
                                                 [saver.distillation.LogitsDistillation(temperature=4.0),
                                                  saver.distillation.FeatureDistillation("mae", "h", "h")],
                                                 student_loss_weight=0.2)
        distiller.compile(optimizer="sgd", loss=saver.losses.SparseCategoricalCrossentropy(from_logits=True))
        distiller.train_on_batch(x, y)
        path = str(tmp_path / f"distiller_{saver.__name__}.keras")
        distiller.save(path)
        with pytest.warns(UserWarning, match="compile\\(\\)` was not called"):
            loaded = loader.models.load_model(path)
        assert type(loaded).__name__ == "Distiller" and loaded.student_loss_weight == 0.2
        assert [type(l).__name__ for l in loaded.distillation_losses] == ["LogitsDistillation", "FeatureDistillation"]
        assert loaded.distillation_losses[0].temperature == 4.0
        np.testing.assert_allclose(to_numpy(loaded.predict(x, verbose=0)), to_numpy(distiller.predict(x, verbose=0)),
                                   rtol=1e-5, atol=1e-6)


def test_distiller_argument_errors_match_keras():
    for keras in (real_keras, fkeras):
        d = keras.distillation
        with pytest.raises(ValueError, match="Teacher must be a keras.Model"):
            d.Distiller("teacher", _mlp(keras, "s"), d.LogitsDistillation())
        with pytest.raises(ValueError, match="In teacher model: No such layer: nope"):
            d.Distiller(_mlp(keras, "t"), _mlp(keras, "s"), d.FeatureDistillation(teacher_layer_name="nope"))
        with pytest.raises(ValueError, match="student_loss_weight must be between 0.0 and 1.0"):
            d.Distiller(_mlp(keras, "t"), _mlp(keras, "s"), d.LogitsDistillation(), student_loss_weight=1.5)
        with pytest.raises(ValueError, match="temperature must be positive"):
            d.LogitsDistillation(temperature=0.0)
        with pytest.raises(ValueError, match="must match number of distillation_losses"):
            d.Distiller(_mlp(keras, "t"), _mlp(keras, "s"), [d.LogitsDistillation()], distillation_loss_weights=[1, 2])
        distiller = d.Distiller(_mlp(keras, "t"), _mlp(keras, "s"), d.LogitsDistillation())
        with pytest.raises(ValueError, match="'loss' cannot be `None`"):
            distiller.compile(optimizer="adam")
