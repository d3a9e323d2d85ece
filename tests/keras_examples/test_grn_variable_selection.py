"""keras.io "Classification with Gated Residual and Variable Selection Networks" (census income): CSV files
read with ``tf.data.experimental.make_csv_dataset`` (column names and defaults given, a label column, an
instance-weight column returned as the sample weight), ``tf.cast(..., "string")`` and ``StringLookup`` inside
``Dataset.map``, scalar ``Input(shape=())`` per feature, subclassed GLU / GRN / VSN layers (``Embedding`` and
``Dense`` held in dicts, GRNs in a list, ``def build(self)`` without a shape argument), EarlyStopping with
``restore_best_weights``, ``evaluate``.

The example combines the VSN weights per backend (``torch.sum`` under torch, ``tf.matmul(...,
transpose_a=True)`` under TensorFlow); onnxforge takes the TensorFlow line with its ``tf``.

Tolerance: Keras's initial weights copied and the files read unshuffled, so the metrics before training are
the same float32 computation (1e-4); training draws its own Dropout masks (rate 0.15), so the losses after
two epochs are compared within 10% and the accuracies within 0.1.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import onnxforge

from .harness import assert_band, assert_close, fkeras, run_both, workdir

tensorflow = pytest.importorskip("tensorflow")

CSV_HEADER = ["age", "class_of_worker", "education", "wage_per_hour", "sex", "instance_weight", "year",
              "income_level"]
NUMERIC = ["age", "wage_per_hour"]
TARGET, WEIGHT = "income_level", "instance_weight"


def census(n: int, seed: int) -> pd.DataFrame:
    """Census-like rows; the income level follows education and age (strings keep the file's leading space)."""
    rng = np.random.default_rng(seed)
    data = pd.DataFrame({
        "age": rng.integers(18, 90, n), "class_of_worker": rng.choice([" Private", " Federal", " NA"], n),
        "education": rng.choice([" Bachelors", " HS-grad", " Masters", " Doctorate"], n),
        "wage_per_hour": rng.integers(0, 50, n) / 10, "sex": rng.choice([" Male", " Female"], n),
        "instance_weight": rng.uniform(0.5, 2.0, n).round(2), "year": rng.choice([94, 95], n)})
    rich = data["education"].isin([" Masters", " Doctorate"]) & (data["age"] > 30)
    data["income_level"] = np.where(rich, " 50000+.", " - 50000.")
    return data


def grn_vsn(keras, data, init, tmp_path):
    tf = onnxforge if keras is fkeras else tensorflow
    layers = keras.layers
    train, test = data
    keras.utils.set_random_seed(3)
    folder = workdir(keras, tmp_path)
    for frame in (train, test):
        frame[TARGET] = frame[TARGET].apply(lambda x: 0 if x == " - 50000." else 1)
    train.to_csv(folder / "train_data.csv", index=False, header=False)
    test.to_csv(folder / "test_data.csv", index=False, header=False)
    vocabulary = {name: sorted([str(value) for value in list(train[name].unique())])
                  for name in CSV_HEADER if name not in NUMERIC + [WEIGHT, TARGET]}
    feature_names = NUMERIC + list(vocabulary)
    column_defaults = [[0.0] if name in NUMERIC + [TARGET, WEIGHT] else ["NA"] for name in CSV_HEADER]

    def process(features, target):
        for name in features:
            if name in vocabulary:
                features[name] = tf.cast(features[name], "string")
                index = layers.StringLookup(vocabulary=vocabulary[name], mask_token=None, num_oov_indices=0,
                                            output_mode="int")
                features[name] = index(features[name])
        weight = features.pop(WEIGHT)
        return dict(features), target, weight

    def get_dataset_from_csv(path, shuffle=False, batch_size=64):
        return tf.data.experimental.make_csv_dataset(
            str(path), batch_size=batch_size, column_names=CSV_HEADER, column_defaults=column_defaults,
            label_name=TARGET, num_epochs=1, header=False, shuffle=shuffle).map(process)

    class GatedLinearUnit(layers.Layer):
        def __init__(self, units):
            super().__init__()
            self.linear = layers.Dense(units)
            self.sigmoid = layers.Dense(units, activation="sigmoid")

        def call(self, inputs):
            return self.linear(inputs) * self.sigmoid(inputs)

    class GatedResidualNetwork(layers.Layer):
        def __init__(self, units, dropout_rate):
            super().__init__()
            self.units = units
            self.elu_dense = layers.Dense(units, activation="elu")
            self.linear_dense = layers.Dense(units)
            self.dropout = layers.Dropout(dropout_rate)
            self.gated_linear_unit = GatedLinearUnit(units)
            self.layer_norm = layers.LayerNormalization()
            self.project = layers.Dense(units)

        def call(self, inputs):
            x = self.dropout(self.linear_dense(self.elu_dense(inputs)))
            if inputs.shape[-1] != self.units:
                inputs = self.project(inputs)
            return self.layer_norm(inputs + self.gated_linear_unit(x))

    class VariableSelection(layers.Layer):
        def __init__(self, num_features, units, dropout_rate):
            super().__init__()
            self.units = units
            self.embeddings = dict()
            for name in vocabulary:
                self.embeddings[name] = layers.Embedding(input_dim=len(vocabulary[name]), output_dim=units,
                                                         name=name)
            self.proj_layer = dict()
            for name in NUMERIC:
                self.proj_layer[name] = layers.Dense(units=units)
            self.grns = list()
            for _ in range(num_features):
                self.grns.append(GatedResidualNetwork(units, dropout_rate))
            self.grn_concat = GatedResidualNetwork(units, dropout_rate)
            self.softmax = layers.Dense(units=num_features, activation="softmax")

        def call(self, inputs):
            concat_inputs = []
            for name in inputs:
                if name in vocabulary:
                    max_index = self.embeddings[name].input_dim - 1
                    concat_inputs.append(self.embeddings[name](keras.ops.clip(inputs[name], 0, max_index)))
                else:
                    concat_inputs.append(self.proj_layer[name](keras.ops.expand_dims(inputs[name], -1)))
            v = self.grn_concat(layers.concatenate(concat_inputs))
            v = keras.ops.expand_dims(self.softmax(v), axis=-1)
            x = keras.ops.stack([self.grns[i](inp) for i, inp in enumerate(concat_inputs)], axis=1)
            if keras.backend.backend() == "torch":
                import torch
                return torch.sum(v * x, dim=1)
            return keras.ops.squeeze(tf.matmul(v, x, transpose_a=True), axis=1)

        def build(self):
            self.built = True

    inputs = {name: layers.Input(name=name, shape=(), dtype="int64" if name in vocabulary else "float32")
              for name in feature_names}
    features = VariableSelection(len(inputs), 8, 0.15)(inputs)
    outputs = layers.Dense(units=1, activation="sigmoid")(features)
    model = keras.Model(inputs=inputs, outputs=outputs)
    init(model)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss=keras.losses.BinaryCrossentropy(),
                  metrics=[keras.metrics.BinaryAccuracy(name="accuracy")])
    train_dataset = get_dataset_from_csv(folder / "train_data.csv")
    test_dataset = get_dataset_from_csv(folder / "test_data.csv")
    loss0, accuracy0 = model.evaluate(test_dataset, verbose=0)
    early_stopping = keras.callbacks.EarlyStopping(monitor="val_loss", patience=5, restore_best_weights=True)
    history = model.fit(train_dataset, epochs=2, validation_data=test_dataset, callbacks=[early_stopping],
                        verbose=0)
    loss, accuracy = model.evaluate(test_dataset, verbose=0)
    return {"initial_loss": float(loss0), "initial_accuracy": float(accuracy0),
            "loss": history.history["loss"][-1], "test_loss": float(loss), "test_accuracy": float(accuracy)}


def test_grn_variable_selection(tmp_path):
    def data():
        return census(300, seed=0), census(120, seed=1)

    frames = data()
    want, got = run_both(lambda keras, _, init, **kw: grn_vsn(keras, data(), init, **kw), frames, copy_weights=True,
                         tmp_path=tmp_path)
    assert_close(want, got, rtol=1e-4, atol=1e-5, keys=["initial_loss", "initial_accuracy"])
    assert_close(want, got, rtol=0.1, keys=["loss", "test_loss"])
    assert_band(want, got, 0.1, ["test_accuracy"])
