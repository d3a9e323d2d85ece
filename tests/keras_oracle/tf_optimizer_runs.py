"""Keras 3 on the TensorFlow backend, run in a child process by ``tests/test_optimizers_lamb_adafactor_ftrl.py``.

Usage: ``python tf_optimizer_runs.py <inputs.npz> <cases.json> <outputs.npz>``. It reads the same initial
weights, gradients and data the test hands onnxforge, and writes what Keras computes from them: the
parameters after every ``apply`` call, the weights after ``fit`` (and those seen during evaluation with
``SwapEMAWeights``), and the optimizer variables of ``.keras`` files onnxforge wrote.
"""
from __future__ import annotations

import json
import os
import sys

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402


def make_optimizer(spec: dict) -> keras.optimizers.Optimizer:
    kwargs = dict(spec["kwargs"])
    if "schedule" in spec:
        kwargs["learning_rate"] = keras.optimizers.schedules.deserialize(spec["schedule"])
    return getattr(keras.optimizers, spec["name"])(**kwargs)


def apply_steps(spec: dict, data: dict, out: dict) -> None:
    params = [data[f"{spec['id']}/p{i}"] for i in range(spec["n_params"])]
    variables = [keras.Variable(p, name=f"w{i}") for i, p in enumerate(params)]
    opt = make_optimizer(spec)
    for step in range(spec["steps"]):
        grads = [data[f"{spec['id']}/g{step}_{i}"] for i in range(len(params))]
        opt.apply(grads, variables)
        for i, v in enumerate(variables):
            out[f"{spec['id']}/step{step}_{i}"] = keras.ops.convert_to_numpy(v)


class Recorder(keras.callbacks.Callback):
    """The weights seen at the first evaluation batch of every evaluation."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def on_test_batch_begin(self, batch, logs=None):
        if batch == 0:
            self.seen.append(self.model.get_weights())


def fit_run(spec: dict, data: dict, out: dict) -> None:
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="tanh"), keras.layers.Dense(2)])
    model.set_weights([data[f"{spec['id']}/w{i}"] for i in range(4)])
    model.compile(optimizer=make_optimizer(spec), loss="mse", jit_compile=False)
    x, y = data["x"], data["y"]
    recorder = Recorder()
    callbacks = [recorder]
    if spec.get("swap") is not None:
        callbacks.insert(0, keras.callbacks.SwapEMAWeights(swap_on_epoch=spec["swap"]))
    history = model.fit(x, y, batch_size=4, epochs=spec["epochs"], shuffle=False, verbose=0,
                        validation_data=(x, y) if spec.get("validate") else None, callbacks=callbacks)
    for i, w in enumerate(model.get_weights()):
        out[f"{spec['id']}/final{i}"] = w
    for k, seen in enumerate(recorder.seen):
        for i, w in enumerate(seen):
            out[f"{spec['id']}/eval{k}_{i}"] = w
    for key, values in history.history.items():
        out[f"{spec['id']}/history/{key}"] = np.asarray(values)
    if spec.get("evaluate_after"):
        out[f"{spec['id']}/evaluate"] = np.asarray(model.evaluate(x, y, verbose=0, callbacks=callbacks))
        for i, w in enumerate(model.get_weights()):
            out[f"{spec['id']}/after_evaluate{i}"] = w
    if spec.get("save"):
        model.save(spec["save"])


def load_run(spec: dict, out: dict) -> None:
    model = keras.models.load_model(spec["path"])
    out[f"{spec['id']}/class"] = np.asarray(type(model.optimizer).__name__)
    for i, v in enumerate(model.optimizer.variables):
        out[f"{spec['id']}/opt{i}"] = keras.ops.convert_to_numpy(v)
    out[f"{spec['id']}/n_opt"] = np.asarray(len(model.optimizer.variables))


def main() -> None:
    data = dict(np.load(sys.argv[1]))
    cases = json.load(open(sys.argv[2]))
    out: dict = {}
    for spec in cases:
        {"apply": lambda s: apply_steps(s, data, out), "fit": lambda s: fit_run(s, data, out),
         "load": lambda s: load_run(s, out)}[spec["kind"]](spec)
    np.savez(sys.argv[3], **out)


if __name__ == "__main__":
    main()
