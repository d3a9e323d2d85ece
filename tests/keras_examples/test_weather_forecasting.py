"""keras.io "Timeseries forecasting for weather prediction": a Jena-climate-like pandas frame (same column
names, a "Date Time" index), seven selected features normalized with the training rows' mean and std,
``features.loc`` / ``iloc`` splits, the label frame ``features.iloc[start:end][[1]]`` handed to
``keras.preprocessing.timeseries_dataset_from_array`` as a DataFrame with ``sampling_rate=step``, ``take(1)``
to read the input shape, an ``LSTM`` + ``Dense`` regressor trained with Adam on MSE with
``EarlyStopping(monitor="val_loss")`` and a weights-only ``ModelCheckpoint(save_best_only=True)``, then
``dataset_val.take(5)`` predictions. Shrunk: 800 rows, ``past=60, future=12, step=6`` (10 steps a window),
``LSTM(8)``, 3 epochs.

Tolerance: Keras's initial weights copied and the windows are not shuffled, so the whole fit is the same
computation in both frameworks; per-epoch losses, the checkpointed weights and the final predictions agree
to float32 order across 3 epochs of Adam on a recurrent net (1e-3 relative).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .harness import keras as real_keras, run_both, to_numpy, workdir

FEATURE_KEYS = ["p (mbar)", "T (degC)", "Tpot (K)", "Tdew (degC)", "rh (%)", "VPmax (mbar)", "VPact (mbar)",
                "VPdef (mbar)", "sh (g/kg)", "H2OC (mmol/mol)", "rho (g/m**3)", "wv (m/s)", "max. wv (m/s)",
                "wd (deg)"]


def jena_like(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    hours = np.arange(rows) / 6
    temperature = 8 + 6 * np.sin(2 * np.pi * hours / 24) + rng.normal(0, 0.5, rows)
    frame = {"Date Time": pd.date_range("2009-01-01 00:10", periods=rows, freq="10min").strftime("%d.%m.%Y %H:%M:%S")}
    for i, key in enumerate(FEATURE_KEYS):
        frame[key] = (temperature * (0.3 + 0.1 * i) + rng.normal(0, 1, rows) + 10 * i) if i else \
            990 + rng.normal(0, 3, rows)
    frame["T (degC)"] = temperature
    return pd.DataFrame(frame)


def weather_forecasting(keras, df, init, tmp_path):
    keras.utils.set_random_seed(7)
    folder = workdir(keras, tmp_path)
    feature_keys, date_time_key = FEATURE_KEYS, "Date Time"
    split_fraction = 0.715
    train_split = int(split_fraction * int(df.shape[0]))
    step, past, future = 6, 60, 12
    learning_rate, batch_size, epochs = 0.001, 64, 3

    def normalize(data, train_split):
        data_mean = data[:train_split].mean(axis=0)
        data_std = data[:train_split].std(axis=0)
        return (data - data_mean) / data_std

    selected_features = [feature_keys[i] for i in [0, 1, 5, 7, 8, 10, 11]]
    features = df[selected_features]
    features.index = df[date_time_key]
    features = normalize(features.values, train_split)
    features = pd.DataFrame(features)
    train_data = features.loc[0: train_split - 1]
    val_data = features.loc[train_split:]

    start = past + future
    end = start + train_split
    x_train = train_data[[i for i in range(7)]].values
    y_train = features.iloc[start:end][[1]]
    sequence_length = int(past / step)
    dataset_train = keras.preprocessing.timeseries_dataset_from_array(
        x_train, y_train, sequence_length=sequence_length, sampling_rate=step, batch_size=batch_size)

    x_end = len(val_data) - past - future
    label_start = train_split + past + future
    x_val = val_data.iloc[:x_end][[i for i in range(7)]].values
    y_val = features.iloc[label_start:][[1]]
    dataset_val = keras.preprocessing.timeseries_dataset_from_array(
        x_val, y_val, sequence_length=sequence_length, sampling_rate=step, batch_size=batch_size)

    for batch in dataset_train.take(1):
        inputs, targets = batch
    shapes = (tuple(inputs.numpy().shape), tuple(targets.numpy().shape))

    inputs = keras.layers.Input(shape=(inputs.shape[1], inputs.shape[2]))
    lstm_out = keras.layers.LSTM(8)(inputs)
    outputs = keras.layers.Dense(1)(lstm_out)
    model = keras.Model(inputs=inputs, outputs=outputs)
    init(model)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss="mse")

    path_checkpoint = str(folder / "model_checkpoint.weights.h5")
    es_callback = keras.callbacks.EarlyStopping(monitor="val_loss", min_delta=0, patience=5)
    modelckpt_callback = keras.callbacks.ModelCheckpoint(monitor="val_loss", filepath=path_checkpoint, verbose=0,
                                                         save_weights_only=True, save_best_only=True)
    history = model.fit(dataset_train, epochs=epochs, validation_data=dataset_val,
                        callbacks=[es_callback, modelckpt_callback], verbose=0)

    plots = []
    for x, y in dataset_val.take(5):
        plots.append([np.asarray(x[0][:, 1].numpy()), np.asarray(y[0].numpy()), model.predict(x, verbose=0)[0]])
    model.load_weights(path_checkpoint)
    x_first = np.asarray(next(iter(dataset_val))[0])
    return {"shapes": shapes, "history": history.history, "plots": plots, "path": path_checkpoint,
            "x": x_first, "checkpointed": np.asarray(to_numpy(model.predict(x_first, verbose=0))),
            "n_val_batches": sum(1 for _ in dataset_val)}


def test_weather_forecasting(tmp_path):
    want, got = run_both(weather_forecasting, jena_like(800), copy_weights=True, tmp_path=tmp_path)
    assert got["shapes"] == want["shapes"] == ((64, 10, 7), (64, 1))
    assert got["n_val_batches"] == want["n_val_batches"]
    assert sorted(got["history"]) == sorted(want["history"]) == ["loss", "val_loss"]
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(got["history"][key], want["history"][key], rtol=1e-3, err_msg=key)
    assert len(got["plots"]) == len(want["plots"]) == 2
    for (gx, gy, gp), (wx, wy, wp) in zip(got["plots"], want["plots"]):
        np.testing.assert_allclose(gx, wx, rtol=1e-6)
        np.testing.assert_allclose(gy, wy, rtol=1e-6)
        np.testing.assert_allclose(gp, wp, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(got["checkpointed"], want["checkpointed"], rtol=1e-3, atol=1e-4)
    # onnxforge's weights file loads into the same model built with real Keras
    inputs = real_keras.layers.Input(shape=(10, 7))
    model = real_keras.Model(inputs, real_keras.layers.Dense(1)(real_keras.layers.LSTM(8)(inputs)))
    model.load_weights(got["path"])
    np.testing.assert_allclose(to_numpy(model.predict(got["x"], verbose=0)), got["checkpointed"], rtol=1e-4,
                               atol=1e-5)
