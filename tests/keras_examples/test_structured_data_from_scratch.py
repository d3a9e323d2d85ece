"""keras.io "Structured data classification from scratch" (heart disease, the backend-agnostic version): a
pandas frame to ``tf.data.Dataset.from_tensor_slices((dict(frame), labels))``, each row's categorical columns
encoded inside ``Dataset.map`` by ``IntegerLookup`` / ``StringLookup(output_mode="binary")`` on one scalar, a
``Normalization`` adapted on ``dataset.map(lambda x, y: x[name]).map(lambda x: tf.expand_dims(x, -1))``, a
subclassed ``Classifier`` layer taking the dict of features, a ``Model`` on those tensors, ``fit`` with
validation data and ``predict`` on a dict of ``tf.convert_to_tensor([value])``.

Differences from the example, for a deterministic comparison: the rows are not shuffled, and the lookup class
is chosen from the vocabulary's type, not with ``features[name].dtype == "string"`` (onnxforge's string
tensors have NumPy's ``<U`` dtype, which does not compare equal to "string"; see the report).

Tolerance: Keras's initial weights copied, so the metrics before training and the first prediction are the
same float32 computation (1e-4); training draws its own Dropout masks (rate 0.5), so after three epochs the
losses are compared within 15% and the accuracies within 0.15.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import onnxforge

from .harness import assert_band, assert_close, fkeras, run_both

tensorflow = pytest.importorskip("tensorflow")

NUMERIC = ["age", "trestbps", "thalach", "oldpeak", "slope", "chol"]


def heart(n: int, seed: int = 0) -> pd.DataFrame:
    """Heart-disease-like rows: the target follows thal, cp and a scaled age."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "age": rng.integers(30, 77, n), "sex": rng.integers(0, 2, n), "cp": rng.integers(0, 5, n),
        "trestbps": rng.integers(94, 200, n) / 100, "chol": rng.integers(126, 564, n) / 100,
        "fbs": rng.integers(0, 2, n), "restecg": rng.integers(0, 3, n), "thalach": rng.integers(71, 202, n) / 100,
        "exang": rng.integers(0, 2, n), "oldpeak": rng.uniform(0, 6, n).round(1), "slope": rng.integers(1, 4, n),
        "ca": rng.integers(0, 4, n), "thal": rng.choice(["fixed", "normal", "reversible"], n)})
    frame["age"] = frame["age"] / 10
    frame["target"] = ((frame["thal"] != "normal") & (frame["cp"] > 1)).astype("int64")
    return frame


def from_scratch(keras, dataframe, init):
    tf = onnxforge if keras is fkeras else tensorflow
    layers = keras.layers
    keras.utils.set_random_seed(5)
    val_dataframe = dataframe.sample(frac=0.2, random_state=1337)
    train_dataframe = dataframe.drop(val_dataframe.index)
    vocabulary = {name: sorted([value if dataframe[name].dtype == "int64" else str(value)
                                for value in list(dataframe[name].unique())])
                  for name in dataframe.columns if name not in NUMERIC + ["target"]}
    feature_names = NUMERIC + list(vocabulary)

    def encode_categorical(features, target):
        for name in features:
            if name in vocabulary:
                lookup_class = layers.StringLookup if isinstance(vocabulary[name][0], str) else layers.IntegerLookup
                index = lookup_class(vocabulary=vocabulary[name], mask_token=None, num_oov_indices=0,
                                     output_mode="binary")
                features[name] = index(features[name])
        return dict(features), target

    def encode_numerical_feature(feature, name, dataset):
        normalizer = layers.Normalization()
        feature_ds = dataset.map(lambda x, y: x[name])
        feature_ds = feature_ds.map(lambda x: tf.expand_dims(x, -1))
        normalizer.adapt(feature_ds)
        return normalizer(feature)

    def dataframe_to_dataset(frame):
        frame = frame.copy()
        labels = frame.pop("target")
        return tf.data.Dataset.from_tensor_slices((dict(frame), labels)).map(encode_categorical)

    train_ds = dataframe_to_dataset(train_dataframe).batch(32)
    val_ds = dataframe_to_dataset(val_dataframe).batch(32)

    inputs = {}
    for name in feature_names:
        if name in vocabulary:
            inputs[name] = layers.Input(name=name, shape=(len(vocabulary[name]),), dtype="int64")
        else:
            inputs[name] = encode_numerical_feature(layers.Input(name=name, shape=(1,), dtype="float32"), name,
                                                    train_ds)

    class Classifier(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.dense_1 = layers.Dense(32, activation="relu")
            self.dropout = layers.Dropout(0.5)
            self.dense_2 = layers.Dense(1, activation="sigmoid")

        def call(self, inputs):
            x = self.dense_1(layers.concatenate(list(inputs.values())))
            return self.dense_2(self.dropout(x))

        def build(self, input_shape):
            self.built = True

    model = keras.Model(inputs, Classifier()(inputs))
    init(model)
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    loss0, _ = model.evaluate(val_ds, verbose=0)
    sample = {"age": 6.0, "sex": 1, "cp": 1, "trestbps": 1.45, "chol": 2.33, "fbs": 1, "restecg": 2,
              "thalach": 1.5, "exang": 0, "oldpeak": 2.3, "slope": 3, "ca": 0, "thal": "fixed"}
    for name, value in list(sample.items()):
        if name in vocabulary:
            encoding = [0] * len(vocabulary[name])
            if value in vocabulary[name]:
                encoding[vocabulary[name].index(value)] = 1
            sample[name] = encoding
    input_dict = {name: tf.convert_to_tensor([value]) for name, value in sample.items()}
    before = float(np.asarray(model.predict(input_dict, verbose=0))[0][0])
    history = model.fit(train_ds, epochs=3, validation_data=val_ds, verbose=0)
    return {"initial_val_loss": float(loss0), "initial_prediction": before, "loss": history.history["loss"][-1],
            "val_loss": history.history["val_loss"][-1], "val_accuracy": history.history["val_accuracy"][-1]}


def test_structured_data_from_scratch():
    want, got = run_both(lambda keras, frame, init: from_scratch(keras, frame.copy(), init), heart(200),
                         copy_weights=True)
    assert_close(want, got, rtol=1e-4, atol=1e-6, keys=["initial_val_loss", "initial_prediction"])
    assert_close(want, got, rtol=0.15, keys=["loss", "val_loss"])
    assert_band(want, got, 0.15, ["val_accuracy"])
