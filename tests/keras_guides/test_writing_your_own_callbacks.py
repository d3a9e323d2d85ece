"""keras.io's "Writing your own callbacks": every hook of ``fit`` / ``evaluate`` / ``predict`` in Keras's order
with the keys of its logs, per-batch and per-epoch logs, early stopping through ``model.stop_training`` and
``get_weights`` / ``set_weights``, and a learning-rate scheduler that assigns ``model.optimizer.learning_rate``.
"""
from __future__ import annotations

import numpy as np

from tests.keras_examples.harness import assert_close, keras, run_both, to_numpy

RNG = np.random.default_rng(0)
X = RNG.random((40, 6)).astype("float32")
Y = RNG.random((40, 1)).astype("float32")

EPOCH_HOOKS = ["on_epoch_begin", "on_epoch_end", "on_train_batch_begin", "on_train_batch_end",
               "on_test_batch_begin", "on_test_batch_end", "on_predict_batch_begin", "on_predict_batch_end"]
RUN_HOOKS = ["on_train_begin", "on_train_end", "on_test_begin", "on_test_end", "on_predict_begin", "on_predict_end"]


def _model(keras_api, init):
    model = keras_api.Sequential([keras_api.Input((6,)), keras_api.layers.Dense(1)])
    init(model)
    model.compile(optimizer=keras_api.optimizers.RMSprop(learning_rate=0.1), loss="mean_squared_error",
                  metrics=["mean_absolute_error"])
    return model


def hooks(keras_api, data, init):
    events = []

    class CustomCallback(keras_api.callbacks.Callback):
        pass

    def run_hook(name):
        return lambda self, logs=None: events.append((name, tuple(sorted(logs or {}))))

    def batch_hook(name):
        return lambda self, index, logs=None: events.append((name, index, tuple(sorted(logs or {}))))

    for name in RUN_HOOKS:
        setattr(CustomCallback, name, run_hook(name))
    for name in EPOCH_HOOKS:
        setattr(CustomCallback, name, batch_hook(name))
    model = _model(keras_api, init)
    model.fit(X, Y, batch_size=16, epochs=1, validation_split=0.5, callbacks=[CustomCallback()], shuffle=False,
              verbose=0)
    model.evaluate(X, Y, batch_size=16, callbacks=[CustomCallback()], verbose=0)
    model.predict(X, batch_size=16, callbacks=[CustomCallback()], verbose=0)
    return {f"{i}:{event}": 1.0 for i, event in enumerate(events)}


def test_callback_hooks_run_in_keras_order_with_keras_logs():
    run_both(hooks, None, copy_weights=True)   # run_both asserts the same keys: the same events in order


def logged_values(keras_api, data, init):
    seen = {}

    class LossAndErrorPrintingCallback(keras_api.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen[f"train_batch_{len(seen)}"] = logs["loss"]

        def on_test_batch_end(self, batch, logs=None):
            seen[f"test_batch_{len(seen)}"] = logs["loss"]

        def on_epoch_end(self, epoch, logs=None):
            seen[f"epoch_{epoch}_loss"] = logs["loss"]
            seen[f"epoch_{epoch}_mae"] = logs["mean_absolute_error"]

    model = _model(keras_api, init)
    model.fit(X, Y, batch_size=16, epochs=2, callbacks=[LossAndErrorPrintingCallback()], shuffle=False, verbose=0)
    model.evaluate(X, Y, batch_size=16, callbacks=[LossAndErrorPrintingCallback()], verbose=0)
    return {k: float(v) for k, v in seen.items()}


def test_logged_values_match_keras():
    want, got = run_both(logged_values, None, copy_weights=True)
    assert_close(want, got, rtol=1e-5)


def early_stopping_and_schedule(keras_api, data, init):
    class EarlyStoppingAtMinLoss(keras_api.callbacks.Callback):
        def __init__(self, patience=0):
            super().__init__()
            self.patience = patience
            self.best_weights = None

        def on_train_begin(self, logs=None):
            self.wait, self.stopped_epoch, self.best = 0, 0, np.inf

        def on_epoch_end(self, epoch, logs=None):
            current = logs.get("loss")
            if np.less(current, self.best):
                self.best, self.wait = current, 0
                self.best_weights = self.model.get_weights()
            else:
                self.wait += 1
                if self.wait >= self.patience:
                    self.stopped_epoch = epoch
                    self.model.stop_training = True
                    self.model.set_weights(self.best_weights)

    model = _model(keras_api, init)
    stopper = EarlyStoppingAtMinLoss(patience=1)
    history = model.fit(X, Y, batch_size=8, steps_per_epoch=2, epochs=30, callbacks=[stopper], shuffle=False,
                        verbose=0)
    out = {"epochs_run": float(len(history.history["loss"])), "stopped_epoch": float(stopper.stopped_epoch),
           "best": float(stopper.best), "restored_kernel": float(model.get_weights()[0].sum())}

    schedule = [(1, 0.05), (2, 0.01), (3, 0.005)]

    def lr_schedule(epoch, lr):
        return dict(schedule).get(epoch, lr)

    class CustomLearningRateScheduler(keras_api.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            lr = self.model.optimizer.learning_rate
            self.model.optimizer.learning_rate = lr_schedule(epoch, lr)
            out[f"lr_{epoch}"] = float(to_numpy(self.model.optimizer.learning_rate))

    model = _model(keras_api, init)
    history = model.fit(X, Y, batch_size=8, epochs=5, callbacks=[CustomLearningRateScheduler()], shuffle=False,
                        verbose=0)
    out.update({f"sched_loss_{i}": float(v) for i, v in enumerate(history.history["loss"])})
    return out


def test_early_stopping_and_learning_rate_callbacks_match_keras():
    want, got = run_both(early_stopping_and_schedule, None, copy_weights=True)
    assert_close(want, got, rtol=2e-4, atol=1e-6)
    assert keras is not None


def steps_per_epoch_on_arrays(keras_api, data, init):
    """The guide's ``fit(..., steps_per_epoch=5)`` on arrays: epochs walk on through one pass of the data, and
    the epoch that reaches its end stops there (Keras 3 warns); the next epoch starts a new pass. (The
    regression: onnxforge wrapped around into the next pass, tf.keras 2's repeated dataset, so every later
    batch, loss and early stop differed from Keras.)"""
    counts = []

    class BatchesPerEpoch(keras_api.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            counts.append(0)

        def on_train_batch_end(self, batch, logs=None):
            counts[-1] += 1

    model = _model(keras_api, init)
    history = model.fit(X, Y, batch_size=8, steps_per_epoch=2, epochs=6, callbacks=[BatchesPerEpoch()],
                        shuffle=False, verbose=0)
    out = {f"batches_{i}": float(c) for i, c in enumerate(counts)}
    out.update({f"loss_{i}": float(v) for i, v in enumerate(history.history["loss"])})
    return out


def test_steps_per_epoch_on_arrays_stops_an_epoch_where_the_data_ends_like_keras():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want, got = run_both(steps_per_epoch_on_arrays, None, copy_weights=True)
    assert [got[f"batches_{i}"] for i in range(6)] == [2, 2, 1, 2, 2, 1]
    assert_close(want, got, rtol=2e-4, atol=1e-6)
