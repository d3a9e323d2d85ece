"""keras.io's "Training & evaluation with the built-in methods": ``fit`` with ``validation_data`` /
``validation_split``, custom loss functions and ``Loss`` subclasses, a custom ``Metric``, ``add_loss`` in a
layer and an endpoint layer compiled without a loss, ``PyDataset``, class and sample weights, multi-input /
multi-output models with per-output losses, metrics and loss weights given as lists or dicts, and the
guide's callbacks (EarlyStopping, ModelCheckpoint, a learning-rate schedule). Same weights, same batches:
the histories must agree with Keras's.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from tests.keras_examples.harness import assert_close, fkeras, run_both, workdir

RNG = np.random.default_rng(0)
X = RNG.random((64, 12)).astype("float32")
Y = RNG.integers(0, 10, 64).astype("float32")
X_VAL = RNG.random((24, 12)).astype("float32")
Y_VAL = RNG.integers(0, 10, 24).astype("float32")


def _history(history) -> dict:
    return {f"{k}_{i}": float(v) for k, vs in history.history.items() for i, v in enumerate(vs)}


def _classifier(keras_api, init, softmax=True):
    layers = keras_api.layers
    inputs = keras_api.Input(shape=(12,), name="digits")
    x = layers.Dense(16, activation="relu", name="dense_1")(inputs)
    outputs = layers.Dense(10, activation="softmax" if softmax else None, name="predictions")(x)
    model = keras_api.Model(inputs=inputs, outputs=outputs)
    init(model)
    return model


def end_to_end(keras_api, data, init):
    model = _classifier(keras_api, init)
    model.compile(optimizer=keras_api.optimizers.RMSprop(), loss=keras_api.losses.SparseCategoricalCrossentropy(),
                  metrics=[keras_api.metrics.SparseCategoricalAccuracy()])
    out = _history(model.fit(X, Y, batch_size=16, epochs=2, validation_data=(X_VAL, Y_VAL), shuffle=False,
                             verbose=0))
    out.update({f"eval_{i}": float(v) for i, v in enumerate(model.evaluate(X_VAL, Y_VAL, batch_size=8, verbose=0))})
    out.update({f"pred_{i}": float(v) for i, v in enumerate(model.predict(X_VAL[:2], verbose=0).ravel())})
    split = _classifier(keras_api, init)
    split.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy",
                  metrics=["sparse_categorical_accuracy"])
    out.update({f"split_{k}": v for k, v in _history(split.fit(X, Y, batch_size=16, validation_split=0.25, epochs=1,
                                                                 shuffle=False, verbose=0)).items()})
    return out


def test_fit_evaluate_predict_match_keras():
    want, got = run_both(end_to_end, None, copy_weights=True)
    assert_close(want, got, rtol=2e-4, atol=1e-6)


def custom_losses_and_metrics(keras_api, data, init):
    ops = keras_api.ops

    def custom_mean_squared_error(y_true, y_pred):
        return ops.mean(ops.square(y_true - y_pred), axis=-1)

    class CustomMSE(keras_api.losses.Loss):
        def __init__(self, regularization_factor=0.1, name="custom_mse"):
            super().__init__(name=name)
            self.regularization_factor = regularization_factor

        def call(self, y_true, y_pred):
            mse = ops.mean(ops.square(y_true - y_pred), axis=-1)
            reg = ops.mean(ops.square(0.5 - y_pred), axis=-1)
            return mse + reg * self.regularization_factor

    class CategoricalTruePositives(keras_api.metrics.Metric):
        def __init__(self, name="categorical_true_positives", **kwargs):
            super().__init__(name=name, **kwargs)
            self.true_positives = self.add_variable(shape=(), name="ctp", initializer="zeros")

        def update_state(self, y_true, y_pred, sample_weight=None):
            y_pred = ops.reshape(ops.argmax(y_pred, axis=1), (-1, 1))
            values = ops.cast(ops.cast(y_true, "int32") == ops.cast(y_pred, "int32"), "float32")
            if sample_weight is not None:
                values = ops.multiply(values, ops.cast(sample_weight, "float32"))
            self.true_positives.assign_add(ops.sum(values))

        def result(self):
            return self.true_positives

        def reset_state(self):
            self.true_positives.assign(0.0)

    one_hot = np.eye(10, dtype="float32")[Y.astype(int)]
    out = {}
    for tag, loss in (("fn", custom_mean_squared_error), ("cls", CustomMSE())):
        model = _classifier(keras_api, init)
        model.compile(optimizer=keras_api.optimizers.Adam(), loss=loss)
        out.update({f"{tag}_{k}": v for k, v in _history(model.fit(X, one_hot, batch_size=16, epochs=1,
                                                                     shuffle=False, verbose=0)).items()})
    model = _classifier(keras_api, init)
    model.compile(optimizer=keras_api.optimizers.RMSprop(1e-3), loss=keras_api.losses.SparseCategoricalCrossentropy(),
                  metrics=[CategoricalTruePositives()])
    out.update(_history(model.fit(X, Y.reshape(-1, 1), batch_size=16, epochs=2, shuffle=False, verbose=0)))
    return out


def test_custom_losses_and_a_custom_metric_match_keras():
    want, got = run_both(custom_losses_and_metrics, None, copy_weights=True)
    assert_close(want, got, rtol=2e-4, atol=1e-6)


def layer_losses(keras_api, data, init):
    layers, ops = keras_api.layers, keras_api.ops

    class ActivityRegularizationLayer(layers.Layer):
        def call(self, inputs):
            self.add_loss(ops.sum(inputs) * 1e-3)
            return inputs

    inputs = keras_api.Input(shape=(12,), name="digits")
    x = layers.Dense(16, activation="relu", name="dense_1")(inputs)
    x = ActivityRegularizationLayer()(x)
    model = keras_api.Model(inputs, layers.Dense(10, name="predictions")(x))
    init(model)
    model.compile(optimizer=keras_api.optimizers.RMSprop(1e-3),
                  loss=keras_api.losses.SparseCategoricalCrossentropy(from_logits=True))
    out = _history(model.fit(X, Y, batch_size=16, epochs=1, shuffle=False, verbose=0))

    class LogisticEndpoint(layers.Layer):
        def __init__(self, name=None):
            super().__init__(name=name)
            self.loss_fn = keras_api.losses.BinaryCrossentropy(from_logits=True)

        def call(self, targets, logits, sample_weights=None):
            self.add_loss(self.loss_fn(targets, logits, sample_weights))
            return ops.softmax(logits)

    features = keras_api.Input(shape=(3,), name="inputs")
    targets = keras_api.Input(shape=(10,), name="targets")
    logits = layers.Dense(10)(features)
    endpoint = keras_api.Model(inputs=[features, targets], outputs=LogisticEndpoint(name="predictions")(logits, targets))
    init(endpoint)
    endpoint.compile(optimizer="adam")   # no loss: the endpoint adds it
    history = endpoint.fit({"inputs": data[0], "targets": data[1]}, batch_size=4, epochs=2, shuffle=False, verbose=0)
    out.update({f"endpoint_{k}": v for k, v in _history(history).items()})
    return out


def test_losses_added_by_layers_match_keras():
    data = (RNG.random((8, 3)).astype("float32"), RNG.random((8, 10)).astype("float32"))
    want, got = run_both(layer_losses, data, copy_weights=True)
    assert_close(want, got, rtol=2e-4, atol=1e-6)


def weighting_and_pydataset(keras_api, data, init):
    class Batches(keras_api.utils.PyDataset):
        def __init__(self, x, y, batch_size, **kwargs):
            super().__init__(**kwargs)
            self.x, self.y, self.batch_size = x, y, batch_size

        def __len__(self):
            return int(np.ceil(len(self.x) / self.batch_size))

        def __getitem__(self, idx):
            part = slice(idx * self.batch_size, (idx + 1) * self.batch_size)
            return self.x[part], self.y[part]

    def compiled():
        model = _classifier(keras_api, init)
        model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy",
                      metrics=["sparse_categorical_accuracy"])
        return model

    class_weight = {i: 1.0 for i in range(10)}
    class_weight[5] = 2.0
    sample_weight = np.where(Y == 5, 2.0, 1.0)
    out = {}
    runs = {"class": dict(x=X, y=Y, class_weight=class_weight, batch_size=16),
            "sample": dict(x=X, y=Y, sample_weight=sample_weight, batch_size=16),
            "pydataset": dict(x=Batches(X, Y, 16), validation_data=Batches(X_VAL, Y_VAL, 8))}
    for tag, kwargs in runs.items():
        history = compiled().fit(epochs=2, shuffle=False, verbose=0, **kwargs)
        out.update({f"{tag}_{k}": v for k, v in _history(history).items()})
    return out


def test_class_weights_sample_weights_and_pydataset_match_keras():
    want, got = run_both(weighting_and_pydataset, None, copy_weights=True)
    assert_close(want, got, rtol=2e-4, atol=1e-6)


def multi_io(keras_api, data, init):
    layers = keras_api.layers
    image_input = keras_api.Input(shape=(8, 8, 3), name="img_input")
    timeseries_input = keras_api.Input(shape=(None, 5), name="ts_input")
    x1 = layers.GlobalMaxPooling2D()(layers.Conv2D(3, 3)(image_input))
    x2 = layers.GlobalMaxPooling1D()(layers.Conv1D(3, 3)(timeseries_input))
    x = layers.concatenate([x1, x2])
    model = keras_api.Model(inputs=[image_input, timeseries_input],
                            outputs=[layers.Dense(1, name="score_output")(x), layers.Dense(5, name="class_output")(x)])
    init(model)
    start = model.get_weights()
    L, M = keras_api.losses, keras_api.metrics
    x_list, y_list = [data["img"], data["ts"]], [data["score"], data["cls"]]
    x_dict = {"img_input": data["img"], "ts_input": data["ts"]}
    y_dict = {"score_output": data["score"], "class_output": data["cls"]}
    configs = {
        "list": (dict(loss=[L.MeanSquaredError(), L.CategoricalCrossentropy()],
                      metrics=[[M.MeanAbsolutePercentageError(), M.MeanAbsoluteError()], [M.CategoricalAccuracy()]]),
                 x_list, y_list),
        "dict": (dict(loss={"score_output": L.MeanSquaredError(), "class_output": L.CategoricalCrossentropy()},
                      metrics={"score_output": [M.MeanAbsolutePercentageError(), M.MeanAbsoluteError()],
                               "class_output": [M.CategoricalAccuracy()]},
                      loss_weights={"score_output": 2.0, "class_output": 1.0}), x_dict, y_dict),
        "none": (dict(loss=[None, L.CategoricalCrossentropy()]), x_list, y_list),
    }
    out = {}
    for tag, (kwargs, xs, ys) in configs.items():
        model.set_weights(start)
        model.compile(optimizer=keras_api.optimizers.RMSprop(1e-3), **kwargs)
        history = model.fit(xs, ys, batch_size=10, epochs=1, shuffle=False, verbose=0)
        # Keras keeps a previous compile's metrics when the new one names none; compare the losses there.
        keys = history.history if tag != "none" else ["loss"]
        out.update({f"{tag}_{k}_0": float(history.history[k][0]) for k in keys})
    return out


def test_multi_input_multi_output_compile_forms_match_keras():
    data = {"img": RNG.random((20, 8, 8, 3)), "ts": RNG.random((20, 7, 5)), "score": RNG.random((20, 1)),
            "cls": RNG.random((20, 5))}
    want, got = run_both(multi_io, data, copy_weights=True)
    assert_close(want, got, rtol=2e-4, atol=1e-5)


def callbacks(keras_api, data, init, tmp_path=None):
    def compiled(optimizer="rmsprop"):
        model = _classifier(keras_api, init)
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                      metrics=["sparse_categorical_accuracy"])
        return model

    stop = keras_api.callbacks.EarlyStopping(monitor="val_loss", min_delta=1e-2, patience=2)
    history = compiled().fit(X, Y, epochs=20, batch_size=16, callbacks=[stop], validation_split=0.25, shuffle=False,
                             verbose=0)
    out = {"stopped_after": float(len(history.history["loss"])), "stopped_epoch": float(stop.stopped_epoch)}
    folder = workdir(keras_api, tmp_path)
    checkpoint = keras_api.callbacks.ModelCheckpoint(filepath=str(folder / "mymodel_{epoch}.keras"),
                                                     save_best_only=True, monitor="val_loss")
    model = compiled()
    model.fit(X, Y, epochs=2, batch_size=16, callbacks=[checkpoint], validation_split=0.25, shuffle=False, verbose=0)
    out["checkpoints"] = float(len(os.listdir(folder)))
    latest = max((str(folder / name) for name in os.listdir(folder)), key=os.path.getmtime)
    out["restored_eval"] = float(keras_api.models.load_model(latest).evaluate(X_VAL, Y_VAL, verbose=0)[0])
    schedule = keras_api.optimizers.schedules.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5, staircase=True)
    model = compiled(keras_api.optimizers.SGD(learning_rate=schedule))
    out.update({f"sched_{k}": v for k, v in _history(model.fit(X, Y, epochs=2, batch_size=16, shuffle=False,
                                                                verbose=0)).items()})
    return out


def test_guide_callbacks_and_schedules_match_keras(tmp_path):
    want, got = run_both(callbacks, None, copy_weights=True, tmp_path=tmp_path)
    assert_close(want, got, rtol=2e-4, atol=1e-6)


@pytest.mark.parametrize("bad", [0.0, 1.0])
def test_validation_split_outside_zero_one_is_refused(bad):
    model = _classifier(fkeras, lambda m: None)
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="validation_split"):
        model.fit(X, Y, validation_split=bad + (0.5 if bad else -0.5), epochs=1, verbose=0)


def user_metrics_on_class_ids(keras_api, data, init, targets=None):
    """A metric class and a metric function of the user's on sparse class ids fed as ``(n, 1)`` or ``(n,)``:
    Keras hands both the targets as fed (the regression: onnxforge squeezed ``(n, 1)`` ids to ``(n,)``, so
    the guide's ``CategoricalTruePositives`` broadcast ``(n,)`` against ``(n, 1)`` and counted 145 of 64)."""
    ops = keras_api.ops

    class TruePositives(keras_api.metrics.Metric):
        def __init__(self, name="tp", **kwargs):
            super().__init__(name=name, **kwargs)
            self.total = self.add_variable(shape=(), name="total", initializer="zeros")

        def update_state(self, y_true, y_pred, sample_weight=None):
            y_pred = ops.reshape(ops.argmax(y_pred, axis=1), (-1, 1))
            self.total.assign_add(ops.sum(ops.cast(ops.cast(y_true, "int32") == ops.cast(y_pred, "int32"),
                                                   "float32")))

        def result(self):
            return self.total

    def target_rank(y_true, y_pred):
        return ops.cast(ops.ones_like(y_pred[:, 0]), "float32") * float(len(y_true.shape))

    model = _classifier(keras_api, init)
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy",
                  metrics=[TruePositives(), target_rank, "sparse_categorical_accuracy"])
    return _history(model.fit(X, targets, batch_size=16, epochs=2, shuffle=False, verbose=0))


@pytest.mark.parametrize("column", [True, False], ids=["n_by_1", "n"])
def test_user_metrics_see_sparse_targets_as_fed_like_keras(column):
    targets = Y.reshape(-1, 1) if column else Y
    want, got = run_both(user_metrics_on_class_ids, None, copy_weights=True, targets=targets)
    assert got["target_rank_0"] == (2.0 if column else 1.0)
    assert_close(want, got, rtol=2e-4, atol=1e-6)


def test_tf_flavoured_custom_metric_matches_the_keras_one():
    """The guide's TensorFlow version of ``CategoricalTruePositives`` under ``import onnxforge as tf``
    (``add_weight``, ``tf.reshape(tf.argmax(...), shape=(-1, 1))``, ``reset_states``) counts what the Keras 3
    version counts under Keras. The regression: ``tf.reshape`` checked the element count of a traced value
    whose batch dimension is symbolic and failed with ``int('batch')``."""
    import onnxforge as tf
    from tests.keras_examples.harness import keras

    class CategoricalTruePositives(tf.keras.metrics.Metric):
        def __init__(self, name="categorical_true_positives", **kwargs):
            super().__init__(name=name, **kwargs)
            self.true_positives = self.add_weight(name="ctp", initializer="zeros")

        def update_state(self, y_true, y_pred, sample_weight=None):
            y_pred = tf.reshape(tf.argmax(y_pred, axis=1), shape=(-1, 1))
            values = tf.cast(tf.cast(y_true, "int32") == tf.cast(y_pred, "int32"), "float32")
            if sample_weight is not None:
                values = tf.multiply(values, tf.cast(sample_weight, "float32"))
            self.true_positives.assign_add(tf.reduce_sum(values))

        def result(self):
            return self.true_positives

        def reset_states(self):
            self.true_positives.assign(0.0)

    ops = keras.ops

    class KerasTruePositives(keras.metrics.Metric):   # the guide's Keras 3 version, for the oracle
        def __init__(self, name="categorical_true_positives", **kwargs):
            super().__init__(name=name, **kwargs)
            self.true_positives = self.add_variable(shape=(), name="ctp", initializer="zeros")

        def update_state(self, y_true, y_pred, sample_weight=None):
            y_pred = ops.reshape(ops.argmax(y_pred, axis=1), (-1, 1))
            self.true_positives.assign_add(ops.sum(ops.cast(ops.cast(y_true, "int32") == ops.cast(y_pred, "int32"),
                                                            "float32")))

        def result(self):
            return self.true_positives

    histories = {}
    weights = None
    for api in (keras, fkeras):
        model = _classifier(api, lambda m: None)
        weights = model.get_weights() if weights is None else weights
        model.set_weights(weights)
        metric = KerasTruePositives() if api is keras else CategoricalTruePositives()
        model.compile(optimizer=api.optimizers.RMSprop(learning_rate=1e-3),
                      loss=api.losses.SparseCategoricalCrossentropy(), metrics=[metric])
        histories[api.__name__] = _history(model.fit(X, Y.reshape(-1, 1), batch_size=16, epochs=2, shuffle=False,
                                                     verbose=0))
    want, got = histories["keras"], histories["onnxforge.keras"]
    assert max(got[k] for k in got if k.startswith("categorical_true_positives")) <= len(X)
    assert_close(want, got, rtol=2e-4, atol=1e-6)


def logged_activation(keras_api, data, init):
    """The TensorFlow-era guide's ``MetricLoggingLayer`` (``self.add_metric(std, name=..., aggregation="mean")``)
    under onnxforge; Keras 3 removed ``add_metric``, so its side logs the same value through a ``Mean`` tracker
    the layer updates in ``call()``, which Keras 3 reports the same way."""
    layers, ops = keras_api.layers, keras_api.ops

    class MetricLoggingLayer(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            if keras_api is not fkeras:
                self.tracker = keras_api.metrics.Mean(name="std_of_activation")

        def call(self, inputs):
            if keras_api is fkeras:
                self.add_metric(ops.std(inputs), name="std_of_activation", aggregation="mean")
            else:
                self.tracker.update_state(ops.std(inputs))
            return inputs

    inputs = keras_api.Input(shape=(12,), name="digits")
    x = MetricLoggingLayer()(layers.Dense(16, activation="relu", name="dense_1")(inputs))
    model = keras_api.Model(inputs, layers.Dense(10, name="predictions")(x))
    init(model)
    model.compile(optimizer=keras_api.optimizers.RMSprop(1e-3),
                  loss=keras_api.losses.SparseCategoricalCrossentropy(from_logits=True))
    out = _history(model.fit(X, Y, batch_size=16, epochs=2, shuffle=False, verbose=0))
    out.update({f"eval_{k}": float(v) for k, v in model.evaluate(X_VAL, Y_VAL, batch_size=8, verbose=0,
                                                                   return_dict=True).items()})
    return out


def test_add_metric_logs_a_layer_value_like_a_keras_tracker():
    want, got = run_both(logged_activation, None, copy_weights=True)
    assert_close(want, got, rtol=2e-4, atol=1e-6)


def test_add_metric_refuses_bad_arguments_clearly():
    layer = fkeras.layers.Dense(2)
    with pytest.raises(ValueError, match="aggregates by 'mean' only"):
        layer.add_metric(1.0, name="x", aggregation="sum")
    with pytest.raises(ValueError, match="needs the metric's name"):
        layer.add_metric(1.0)
    inputs = fkeras.Input((3,))
    model = fkeras.Model(inputs, fkeras.layers.Dense(2)(inputs))
    with pytest.raises(ValueError, match="functional-API tensor"):
        model.add_metric(fkeras.ops.mean(inputs), name="m")


def custom_schedule(keras_api, data, init, tmp_path=None):
    """A ``LearningRateSchedule`` subclass of the user's drives the optimizer, survives a ``.keras`` round trip
    with ``custom_objects`` and keeps counting steps (the regression: onnxforge's loader knew its own schedules
    only and refused the file's compile config)."""
    ops = keras_api.ops

    class WarmUp(keras_api.optimizers.schedules.LearningRateSchedule):
        def __init__(self, initial, warmup):
            self.initial, self.warmup = initial, warmup

        def __call__(self, step):
            return self.initial * ops.minimum(1.0, (ops.cast(step, "float32") + 1.0) / self.warmup)

        def get_config(self):
            return {"initial": self.initial, "warmup": self.warmup}

    model = _classifier(keras_api, init)
    model.compile(optimizer=keras_api.optimizers.SGD(learning_rate=WarmUp(0.5, 6.0)),
                  loss="sparse_categorical_crossentropy")
    out = _history(model.fit(X, Y, batch_size=16, epochs=1, shuffle=False, verbose=0))
    path = str(workdir(keras_api, tmp_path) / "warmup.keras")
    model.save(path)
    loaded = keras_api.models.load_model(path, custom_objects={"WarmUp": WarmUp})
    out.update({f"resumed_{k}": v for k, v in _history(loaded.fit(X, Y, batch_size=16, epochs=1, shuffle=False,
                                                                   verbose=0)).items()})
    out["iterations"] = float(np.asarray(keras_api.ops.convert_to_numpy(loaded.optimizer.iterations)))
    return out


def test_custom_learning_rate_schedule_trains_and_reloads_like_keras(tmp_path):
    want, got = run_both(custom_schedule, None, copy_weights=True, tmp_path=tmp_path)
    assert got["iterations"] == 8.0
    assert_close(want, got, rtol=2e-4, atol=1e-6)
