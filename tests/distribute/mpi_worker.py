"""What each MPI rank runs for ``test_mpi.py`` (launched by mpirun; not a test module itself).

Usage: ``python mpi_worker.py exact OUT`` (the seed CNN and an LSTM, 5 Adam steps at global batch 128,
each rank saving its History losses and weights to ``OUT_<kind>_<rank>.npz``), ``kill`` (rank 1 kills itself
with SIGKILL at step 3) or ``hang`` (rank 1 stops answering at step 3; the others' deadline is 15 s).
"""
from __future__ import annotations

import os
import signal
import sys
import time

import numpy as np

import onnxforge as tf

STEPS, BATCH = 5, 128


def build(kind: str):
    if kind == "cnn":   # the seed's Keras MNIST CNN
        model = tf.keras.Sequential([
            tf.keras.layers.Conv2D(32, 3, padding="same", input_shape=(28, 28, 1)),
            tf.keras.layers.Activation("relu"),
            tf.keras.layers.MaxPooling2D(pool_size=(2, 2)),
            tf.keras.layers.Conv2D(64, 3, padding="same"),
            tf.keras.layers.Activation("relu"),
            tf.keras.layers.MaxPooling2D(pool_size=(2, 2)),
            tf.keras.layers.Flatten(),
            tf.keras.layers.Dense(128),
            tf.keras.layers.Activation("relu"),
            tf.keras.layers.Dense(10)])
    elif kind == "lstm":
        model = tf.keras.Sequential([tf.keras.layers.LSTM(32, input_shape=(12, 8)), tf.keras.layers.Dense(10)])
    else:
        model = tf.keras.Sequential([tf.keras.layers.Dense(16, activation="relu", input_shape=(8,)),
                                     tf.keras.layers.Dense(10)])
    rng = np.random.default_rng(0)   # the same initial weights in every process
    model.set_weights([rng.normal(0, 0.1, w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def compile_model(model) -> None:
    model.compile(optimizer="adam", loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])


def data(kind: str):
    rng = np.random.default_rng(1)
    n = STEPS * BATCH
    shape = {"cnn": (28, 28, 1), "lstm": (12, 8)}.get(kind, (8,))
    return rng.random((n,) + shape, np.float32), rng.integers(0, 10, n)


def train(model, kind: str, callbacks=()):
    x, y = data(kind)
    # One step per epoch: History then holds every step's loss.
    history = model.fit(x, y, batch_size=BATCH, epochs=STEPS, steps_per_epoch=1, shuffle=False, verbose=0,
                        callbacks=list(callbacks))
    return history.history


class AtStep(tf.callbacks.Callback):
    def __init__(self, rank: int, action):
        super().__init__()
        self.rank, self.action, self.steps = rank, action, 0

    def on_train_batch_begin(self, batch, logs=None):
        self.steps += 1
        if self.rank == 1 and self.steps == 3:
            self.action()


def main() -> None:
    mode = sys.argv[1]
    strategy = tf.distribute.MPIStrategy(timeout=15 if mode == "hang" else None)
    if mode == "exact":
        for kind in ("cnn", "lstm"):
            with strategy.scope():
                model = build(kind)
                compile_model(model)
            history = train(model, kind)
            np.savez(f"{sys.argv[2]}_{kind}_{strategy.rank}.npz", loss=np.asarray(history["loss"]),
                     *model.get_weights())
        return
    with strategy.scope():
        model = build("dense")
        compile_model(model)
    if mode == "kill":
        action = lambda: os.kill(os.getpid(), signal.SIGKILL)   # noqa: E731
    else:
        action = lambda: time.sleep(300)   # noqa: E731  (stuck: alive, but no longer in the collectives)
    model.fit(*data("dense"), batch_size=BATCH, epochs=50, verbose=0, callbacks=[AtStep(strategy.rank, action)])
    print(f"rank {strategy.rank}: training finished, which it should not have", flush=True)


if __name__ == "__main__":
    main()
