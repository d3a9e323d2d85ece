"""Calls from Keras 3's own API docstrings (``keras/src/**``) that onnxforge once got wrong, each against Keras 3
(torch backend): the docstring's call, its data, and Keras's answer on the same inputs."""
from __future__ import annotations

import numpy as np
import pytest

from .common import LIBS, copy_weights, fkeras, keras


# ------------------------------------------------------------------ regression metrics on integer lists
# keras/src/metrics/regression_metrics.py and probabilistic_metrics.py: ``m.update_state([[0, 1], [0, 0]],
# [[1, 1], [0, 0]])``. Keras takes the mean (and the log) in floatx; integer means gave 0 here, and log /
# softplus of int64 were invalid graphs.
INT_TRUE, INT_PRED = [[0, 1], [0, 0]], [[1, 1], [0, 0]]


@pytest.mark.parametrize("name", ["MeanSquaredError", "MeanAbsoluteError", "MeanSquaredLogarithmicError",
                                  "Hinge", "SquaredHinge"])
def test_regression_metric_on_integer_lists_matches_keras(name):
    results = {}
    for lib_name, lib in LIBS.items():
        m = getattr(lib.metrics, name)()
        m.update_state(INT_TRUE, INT_PRED)
        results[lib_name] = float(lib.ops.convert_to_numpy(m.result()))
    assert results["onnxforge"] == pytest.approx(results["keras"], rel=1e-5)
    assert results["onnxforge"] > 0.0   # the integer mean floored every one of these to 0


@pytest.mark.parametrize("name, documented", [("Poisson", 0.49999997), ("LogCoshError", 0.10844523),
                                              ("MeanAbsolutePercentageError", 250000000.0)])
def test_metric_on_integer_lists_gives_the_documented_value(name, documented):
    # Keras on torch answers nan / 0.8016 here (its int64 tensors meet float32 epsilons); the docstrings'
    # numbers are those of the float math that Keras's other backends do, and that onnxforge does.
    m = getattr(fkeras.metrics, name)()
    m.update_state(INT_TRUE, INT_PRED)
    assert float(m.result()) == pytest.approx(documented, rel=1e-5)


def test_loss_functions_promote_integer_predictions_like_keras():
    # (not huber: Keras casts its 0.5 to the integers' dtype, so its integer Huber is 0 everywhere; not
    # poisson: Keras on torch gives nan where the docstring says 0.5, see above)
    for fn in ("mean_squared_error", "mean_absolute_error", "mean_squared_logarithmic_error"):
        want = keras.ops.convert_to_numpy(getattr(keras.losses, fn)(INT_TRUE, INT_PRED))
        got = np.asarray(getattr(fkeras.losses, fn)(INT_TRUE, INT_PRED))
        assert got.dtype == np.float32, fn
        np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=fn)


# ------------------------------------------------------------------ targets one rank short (callbacks' docstrings)
def test_fit_broadcasts_targets_one_rank_short_for_regression_losses():
    # keras/src/callbacks/early_stopping.py and backup_and_restore.py: Dense(10), loss="mse", targets
    # np.zeros(5), batch_size=1. Keras subtracts the (1,) targets from the (1, 10) output with broadcasting;
    # a batch of 10 lines the targets up with the 10 units instead, and a batch of 5 is a shape error.
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(10, 20)).astype("float32"), rng.normal(size=10).astype("float32")
    results = {}
    models = {name: lib.models.Sequential([lib.Input((20,)), lib.layers.Dense(10)]) for name, lib in LIBS.items()}
    copy_weights(models["keras"], models["onnxforge"])
    for name, lib in LIBS.items():
        model = models[name]
        model.compile(lib.optimizers.SGD(0.05), loss="mse")
        history = model.fit(x, y, epochs=2, batch_size=1, shuffle=False, verbose=0)
        results[name] = [*history.history["loss"], model.evaluate(x, y, batch_size=10, verbose=0)]
        with pytest.raises((ValueError, RuntimeError)):
            model.evaluate(x[:5], y[:5], batch_size=5, verbose=0)
    np.testing.assert_allclose(results["onnxforge"], results["keras"], rtol=1e-4)


def test_crossentropy_keeps_the_target_shape_check():
    model = fkeras.models.Sequential([fkeras.Input((4,)), fkeras.layers.Dense(3, activation="sigmoid")])
    model.compile("sgd", loss="binary_crossentropy")
    with pytest.raises(ValueError, match=r"must have the same shape.*y\.shape=\(2,\)"):
        model.train_on_batch(np.ones((2, 4), "float32"), np.ones(2, "float32"))


# ------------------------------------------------------------------ ops.image.affine_transform on one image
@pytest.mark.parametrize("interpolation, fill_mode", [("bilinear", "constant"), ("nearest", "reflect"),
                                                      ("bilinear", "wrap")])
def test_affine_transform_of_a_single_image_matches_keras(interpolation, fill_mode):
    # keras/src/ops/image.py: ``x = np.random.uniform(size=(64, 80, 3)); affine_transform(x, transform)``.
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(12, 10, 3)).astype("float32")
    transform = np.array([0.9, 0.1, 1.0, -0.1, 1.1, 0.5, 0.0, 0.0], "float32")
    for t in (transform, transform[None]):
        want = keras.ops.convert_to_numpy(keras.ops.image.affine_transform(
            x, t, interpolation=interpolation, fill_mode=fill_mode))
        got = np.asarray(fkeras.ops.image.affine_transform(x, t, interpolation=interpolation, fill_mode=fill_mode))
        assert got.shape == want.shape == (12, 10, 3)
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_affine_transform_rank_errors_match_keras():
    for images, transform, match in [(np.zeros((4, 4)), np.zeros(8), r"Invalid images rank.*images\.shape="),
                                     (np.zeros((4, 4, 1)), np.zeros((1, 1, 8)),
                                      r"Invalid transform rank.*transform\.shape=")]:
        for lib in LIBS.values():
            with pytest.raises(ValueError, match=match):
                lib.ops.image.affine_transform(images, transform)


# ------------------------------------------------------------------ m.result().numpy()
@pytest.mark.parametrize("name", ["CategoricalHinge", "BinaryAccuracy", "AUC", "Precision"])
def test_metric_result_reads_like_a_keras_tensor(name):
    # keras/src/metrics/hinge_metrics.py: ``m.result().numpy()``, as many training loops print it.
    y_true, y_pred = [[0, 1], [1, 0]], [[0.6, 0.4], [0.3, 0.7]]
    results = {}
    for lib_name, lib in LIBS.items():
        m = getattr(lib.metrics, name)()
        m.update_state(y_true, y_pred)
        results[lib_name] = m.result().numpy()
    assert results["onnxforge"].dtype == results["keras"].dtype == np.float32
    assert results["onnxforge"].shape == results["keras"].shape == ()
    assert float(results["onnxforge"]) == pytest.approx(float(results["keras"]), rel=1e-5)


def test_array_metric_result_reads_like_a_keras_tensor():
    y_true = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1]], "float32")
    y_pred = np.array([[0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.4, 0.4, 0.2]], "float32")
    results = {}
    for lib_name, lib in LIBS.items():
        f1, precision = lib.metrics.F1Score(), lib.metrics.Precision(thresholds=[0.3, 0.5])
        f1.update_state(y_true, y_pred)
        precision.update_state(y_true, y_pred)
        results[lib_name] = [f1.result().numpy(), precision.result().numpy()]
    for ours, theirs in zip(results["onnxforge"], results["keras"]):
        assert ours.dtype == theirs.dtype == np.float32 and ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs, rtol=1e-5)


# ------------------------------------------------------------------ serialize() of losses and schedules
def test_loss_and_schedule_serialize_match_keras():
    # keras/src/optimizers/schedules/learning_rate_schedule.py: ``schedules.serialize(lr_schedule)``.
    def dicts(lib):
        class MyLoss(lib.losses.Loss):
            def call(self, y_true, y_pred):
                return y_pred

        schedule = lib.optimizers.schedules.ExponentialDecay(0.1, decay_steps=100000, decay_rate=0.96,
                                                             staircase=True)
        return [lib.optimizers.schedules.serialize(schedule), lib.losses.serialize(lib.losses.MeanSquaredError()),
                lib.losses.serialize(MyLoss())]

    ours, theirs = dicts(fkeras), dicts(keras)
    assert ours == theirs
    assert type(fkeras.optimizers.schedules.deserialize(ours[0])).__name__ == "ExponentialDecay"
    # (Huber's config keeps delta, which Keras's drops: a deliberate difference, see test_keras_conformance)
    assert fkeras.losses.deserialize(fkeras.losses.serialize(fkeras.losses.Huber(2.0))).delta == 2.0


# ------------------------------------------------------------------ CSVLogger's columns
@pytest.mark.parametrize("validation", [None, 2])
def test_csv_logger_header_matches_keras(tmp_path, validation):
    # Keras writes val_ columns from the first epoch whenever that epoch has none (no validation, or
    # validation_freq=2), so that later epochs fit the header; missing values are NA.
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 3)).astype("float32"), rng.normal(size=(8, 1)).astype("float32")
    files = {}
    for name, lib in LIBS.items():
        model = lib.Sequential([lib.Input((3,)), lib.layers.Dense(1)])
        model.compile("sgd", "mse", metrics=["mae"])
        files[name] = tmp_path / f"{name}.csv"
        extra = {} if validation is None else {"validation_data": (x, y), "validation_freq": validation}
        model.fit(x, y, epochs=2, verbose=0, callbacks=[lib.callbacks.CSVLogger(str(files[name]))], **extra)
    rows = {name: [line.split(",") for line in path.read_text().splitlines()] for name, path in files.items()}
    assert rows["onnxforge"][0] == rows["keras"][0]
    assert [[cell == "NA" for cell in row] for row in rows["onnxforge"]] == \
        [[cell == "NA" for cell in row] for row in rows["keras"]]


# ------------------------------------------------------------------ fit(validation_data=<generator>)
@pytest.mark.parametrize("validation_steps, finite", [(2, False), (3, False), (None, True)])
def test_fit_validation_generator_is_read_as_keras_reads_it(validation_steps, finite):
    # Keras's generator adapter peeks at two batches and starts every validation run with them again, then
    # goes on with the generator: with validation_steps=2 each epoch validates on the same two batches.
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 4)).astype("float32"), rng.integers(0, 2, size=(32, 1)).astype("float32")
    results = {}
    models = {name: lib.Sequential([lib.Input((4,)), lib.layers.Dense(3, activation="tanh"),
                                    lib.layers.Dense(1, activation="sigmoid")]) for name, lib in LIBS.items()}
    copy_weights(models["keras"], models["onnxforge"])
    for name, lib in LIBS.items():
        seen = []

        def batches():
            while True:
                for i in range(4):
                    seen.append(i)
                    yield x[8 * i:8 * i + 8], y[8 * i:8 * i + 8]
                if finite:
                    return

        model = models[name]
        model.compile(lib.optimizers.SGD(0.1), "binary_crossentropy")
        history = model.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0, validation_data=batches(),
                            validation_steps=validation_steps)
        results[name] = (history.history["val_loss"], seen)
    np.testing.assert_allclose(results["onnxforge"][0], results["keras"][0], rtol=1e-5)
    assert results["onnxforge"][1] == results["keras"][1]


# ------------------------------------------------------------------ compile(loss_weights=[w]) with one output
def test_single_output_loss_weights_list_matches_keras():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 4)).astype("float32"), rng.normal(size=(16, 1)).astype("float32")
    models = {name: lib.Sequential([lib.Input((4,)), lib.layers.Dense(1)]) for name, lib in LIBS.items()}
    copy_weights(models["keras"], models["onnxforge"])
    losses = {}
    for name, lib in LIBS.items():
        models[name].compile(lib.optimizers.SGD(0.05), "mse", loss_weights=[2.5])
        losses[name] = models[name].fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(losses["onnxforge"], losses["keras"], rtol=1e-5)
    model = fkeras.Sequential([fkeras.Input((4,)), fkeras.layers.Dense(1)])
    with pytest.raises(ValueError, match=r"loss_weights.*must be a number.*'2'"):
        model.compile("sgd", "mse", loss_weights=["2"])


# ------------------------------------------------------------------ ops.arctan2 at signed zeros and infinities
def test_arctan2_edges_and_axis_gradients_match_keras_and_torch():
    # keras/src/ops/numpy.py: ``arctan2([0., 0., inf], [+0., -0., inf])`` is [0, pi, pi/4].
    import torch

    edges = np.array([0.0, -0.0, 1.0, -1.0, 2.5, np.inf, -np.inf, np.nan], "float32")
    y, x = (a.ravel() for a in np.meshgrid(edges, edges, indexing="ij"))
    want = keras.ops.convert_to_numpy(keras.ops.arctan2(y, x))
    got = np.asarray(fkeras.ops.arctan2(y, x))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)   # pi vs -pi differ; the sign of 0 is not held
    # Gradients on the axes, where atan(y / x) alone has none in x: torch's atan2 gives (x, -y) / (x^2 + y^2).
    import onnxforge as tf

    y, x = np.array([0.0, 1.0, 0.0, -2.0, 0.3], "float32"), np.array([1.0, 0.0, -1.0, 0.0, -0.7], "float32")
    yv, xv = tf.Variable(y), tf.Variable(x)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(fkeras.ops.arctan2(yv, xv))
    grads = [np.asarray(g) for g in tape.gradient(total, [yv, xv])]
    ty, tx = torch.tensor(y, requires_grad=True), torch.tensor(x, requires_grad=True)
    torch.atan2(ty, tx).sum().backward()
    np.testing.assert_allclose(grads[0], ty.grad.numpy(), atol=1e-6)
    np.testing.assert_allclose(grads[1], tx.grad.numpy(), atol=1e-6)
