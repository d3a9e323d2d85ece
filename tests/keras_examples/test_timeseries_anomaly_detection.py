"""keras.io "Timeseries anomaly detection using an Autoencoder" (NAB art_daily): a pandas frame indexed by
timestamp, normalized with the training ``mean()`` / ``std()``, cut into overlapping windows by
``create_sequences``; a Sequential autoencoder of strided ``Conv1D(padding="same")`` / Dropout and
``Conv1DTranspose(strides=2, padding="same")`` layers trained on MSE with ``validation_split`` and
EarlyStopping; the largest training MAE as the threshold, test windows over it flagged, and the data points
whose every covering window is flagged reported as anomalous.

Shrunk: a period of 24 steps instead of 288, windows of 24, 10 days of training data, filters 8 / 4.

Tolerance: Keras's initial weights copied and Dropout at rate 0 for the deterministic part: predictions, one
Adam step and the reloaded model agree with Keras to float32 summation order. The page's program (rate 0.2,
six epochs, ``shuffle=False``) runs separately: Dropout masks differ between the frameworks. Over seeds 1, 2,
5, 8 the losses and the MAE threshold were 1-14% apart; bounds: within 25%. Both must flag data points, and
only data points whose windows cover the injected jump.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .equal_weights import compare, load_in_keras, predict_fit_reload
from .harness import assert_close, run_both, workdir

TIME_STEPS = 24


def nab_like(days: int, jump_at: int | None, seed: int) -> pd.DataFrame:
    """A daily pattern sampled TIME_STEPS times a day, small noise, and optionally a jump up for half a day."""
    rng = np.random.default_rng(seed)
    n = days * TIME_STEPS
    t = np.arange(n)
    day = (t % TIME_STEPS) / TIME_STEPS
    value = 20 + 60 * ((day > 0.3) & (day < 0.7)) + rng.normal(0, 2, n)
    if jump_at is not None:
        value[jump_at:jump_at + TIME_STEPS // 2] += 100
    index = pd.date_range("2014-04-01", periods=n, freq="h", name="timestamp")
    return pd.DataFrame({"value": value}, index=index)


def create_sequences(values, time_steps=TIME_STEPS):
    output = []
    for i in range(len(values) - time_steps + 1):
        output.append(values[i: (i + time_steps)])
    return np.stack(output)


def autoencoder(keras, x_train, rate):
    layers = keras.layers
    return keras.Sequential([
        layers.Input(shape=(x_train.shape[1], x_train.shape[2])),
        layers.Conv1D(filters=8, kernel_size=7, padding="same", strides=2, activation="relu"),
        layers.Dropout(rate=rate),
        layers.Conv1D(filters=4, kernel_size=7, padding="same", strides=2, activation="relu"),
        layers.Conv1DTranspose(filters=4, kernel_size=7, padding="same", strides=2, activation="relu"),
        layers.Dropout(rate=rate),
        layers.Conv1DTranspose(filters=8, kernel_size=7, padding="same", strides=2, activation="relu"),
        layers.Conv1DTranspose(filters=1, kernel_size=7, padding="same"),
    ])


def training_windows(df_small_noise):
    training_mean = df_small_noise.mean()
    training_std = df_small_noise.std()
    df_training_value = (df_small_noise - training_mean) / training_std
    return create_sequences(df_training_value.values).astype("float32"), training_mean, training_std


def anomaly_equal(keras, data, init, tmp_path):
    df_small_noise, _ = data
    x_train, _, _ = training_windows(df_small_noise)
    keras.utils.set_random_seed(8)
    model = autoencoder(keras, x_train, rate=0.0)
    init(model)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.001), loss="mse")
    return predict_fit_reload(keras, model, x_train[:32], x_train[:32], workdir(keras, tmp_path))


def anomaly_detection(keras, data, init, seed=8):
    df_small_noise, df_daily_jumpsup = data
    x_train, training_mean, training_std = training_windows(df_small_noise)
    keras.utils.set_random_seed(seed)
    model = autoencoder(keras, x_train, rate=0.2)
    init(model)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="mse")
    history = model.fit(x_train, x_train, epochs=6, batch_size=32, validation_split=0.1, shuffle=False, verbose=0,
                        callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=5, mode="min")])
    # Get train MAE loss.
    x_train_pred = model.predict(x_train, verbose=0)
    train_mae_loss = np.mean(np.abs(x_train_pred - x_train), axis=1)
    threshold = np.max(train_mae_loss)
    df_test_value = (df_daily_jumpsup - training_mean) / training_std
    x_test = create_sequences(df_test_value.values).astype("float32")
    x_test_pred = model.predict(x_test, verbose=0)
    test_mae_loss = np.mean(np.abs(x_test_pred - x_test), axis=1)
    test_mae_loss = test_mae_loss.reshape((-1))
    anomalies = test_mae_loss > threshold
    # data i is an anomaly if samples [(i - timesteps + 1) to (i)] are anomalies
    anomalous_data_indices = []
    for data_idx in range(TIME_STEPS - 1, len(df_test_value) - TIME_STEPS + 1):
        if np.all(anomalies[data_idx - TIME_STEPS + 1: data_idx]):
            anomalous_data_indices.append(data_idx)
    return {"loss": history.history["loss"][-1], "val_loss": history.history["val_loss"][-1],
            "threshold": float(threshold), "anomalies": int(np.sum(anomalies)),
            "indices": anomalous_data_indices}


def test_anomaly_autoencoder_equal_weights(tmp_path):
    x_train, _, _ = training_windows(nab_like(10, None, 0))
    want, got = run_both(anomaly_equal, (nab_like(10, None, 0), None), copy_weights=True, tmp_path=tmp_path)
    compare(want, got)
    load_in_keras(got["path"], x_train[:32], got["reloaded"])


def test_anomaly_detection():
    jump = 5 * TIME_STEPS + 6
    data = nab_like(10, None, 0), nab_like(8, jump, 1)
    want, got = run_both(anomaly_detection, data, copy_weights=True)
    assert_close(want, got, rtol=0.25, keys=["loss", "val_loss", "threshold"])
    for result in (want, got):
        assert result["anomalies"] > 0
        assert result["indices"], "no data point flagged"
        assert set(result["indices"]) <= set(range(jump - TIME_STEPS, jump + 2 * TIME_STEPS))
