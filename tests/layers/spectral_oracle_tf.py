"""Keras 3 on TensorFlow, run in a child process by ``test_spectral_normalization.py``: the reference values of
SpectralNormalization, OrthogonalRegularizer and Circle for the arrays the test wrote (``argv[1]``, an npz file,
rewritten with the results)."""
from __future__ import annotations

import os
import sys

os.environ["KERAS_BACKEND"] = "tensorflow"

import numpy as np  # noqa: E402
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, sys.argv[2])
from spectral_models import build  # noqa: E402


def spectral(data: dict, kind: str, out: dict) -> None:
    x, y = data[f"{kind}_x"], data[f"{kind}_y"]
    weights = [data[f"{kind}_w{k}"] for k in range(int(data[f"{kind}_n"]))]

    def fresh():
        model = build(keras, kind)
        model.set_weights(weights)
        return model

    model = fresh()
    out[f"{kind}_infer"] = model(x, training=False).numpy()
    out[f"{kind}_train"] = model(x, training=True).numpy()
    out[f"{kind}_after_call"] = [w.numpy() for w in model.weights]
    model = fresh()
    with tf.GradientTape() as tape:
        loss = keras.losses.MeanSquaredError()(y, model(x, training=True))
    grads = tape.gradient(loss, model.trainable_weights)
    out[f"{kind}_grads"] = [g.numpy() for g in grads]
    model = fresh()
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    model.fit(x, y, batch_size=len(x), epochs=3, shuffle=False, verbose=0)
    out[f"{kind}_fit"] = [w.numpy() for w in model.weights]
    out[f"{kind}_fit_predict"] = model.predict(x, verbose=0)


def penalties(data: dict, out: dict) -> None:
    """OrthogonalRegularizer and Circle: values and gradients with respect to their float input."""
    for mode in ("rows", "columns"):
        w = tf.Variable(data["ortho_w"])
        with tf.GradientTape() as tape:
            value = keras.regularizers.OrthogonalRegularizer(0.3, mode)(w)
        out[f"ortho_{mode}"] = value.numpy()
        out[f"ortho_{mode}_grad"] = tape.gradient(value, w).numpy()
    e = tf.Variable(data["circle_e"])
    with tf.GradientTape() as tape:
        value = keras.losses.Circle(gamma=20.0, margin=0.3)(data["circle_y"], e)
    out["circle"] = value.numpy()
    out["circle_grad"] = tape.gradient(value, e).numpy()
    out["circle_fn"] = keras.losses.circle(data["circle_y"], e.numpy(), ref_labels=data["circle_ref_y"],
                                           ref_embeddings=data["circle_ref_e"], remove_diagonal=False).numpy()


def main() -> None:
    path = sys.argv[1]
    data = dict(np.load(path))
    out: dict = {}
    for kind in ("dense", "conv"):
        spectral(data, kind, out)
    penalties(data, out)
    flat = {}
    for key, value in out.items():
        if isinstance(value, list):
            flat[f"{key}_n"] = len(value)
            flat.update({f"{key}_{k}": v for k, v in enumerate(value)})
        else:
            flat[key] = value
    np.savez(path, **flat)


main()
