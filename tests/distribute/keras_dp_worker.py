"""What each MPI rank runs for ``test_keras_distribution.py`` (launched by mpirun; not a test module itself).

Usage: ``python keras_dp_worker.py OUT``: Keras 3's ``keras.distribution.DataParallel()`` over
``list_devices()`` (one device per process), a small MLP trained for 4 SGD steps at global batch 32, each rank
saving its losses, weights and ``list_devices()`` to ``OUT_<rank>.npz``.
"""
from __future__ import annotations

import sys

import numpy as np

from onnxforge import keras

STEPS, BATCH = 4, 32


def build_and_train(keras_module=keras) -> tuple[list, list, int]:
    """The losses, the final weights and the number of replicas the model trained over."""
    model = keras_module.Sequential([keras_module.Input((6,)), keras_module.layers.Dense(8, activation="tanh"),
                                     keras_module.layers.Dense(3)])
    rng = np.random.default_rng(0)   # the same initial weights in every process
    model.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32) for w in model.get_weights()])
    model.compile(optimizer=keras_module.optimizers.SGD(0.1), loss="mse")
    data = np.random.default_rng(1)
    x = data.normal(size=(STEPS * BATCH, 6)).astype(np.float32)
    y = data.normal(size=(STEPS * BATCH, 3)).astype(np.float32)
    losses = [float(model.train_on_batch(x[i * BATCH:(i + 1) * BATCH], y[i * BATCH:(i + 1) * BATCH]))
              for i in range(STEPS)]
    strategy = getattr(model, "_distribute_strategy", None)
    return losses, model.get_weights(), 1 if strategy is None else strategy.num_replicas_in_sync


if __name__ == "__main__":
    distribution = keras.distribution.DataParallel()
    keras.distribution.set_distribution(distribution)
    losses, weights, replicas = build_and_train()
    rank = distribution._process_id
    np.savez(f"{sys.argv[1]}_{rank}.npz", *weights, loss=np.array(losses), replicas=replicas,
             devices=np.array(keras.distribution.list_devices()))
    print("training finished", flush=True)
