"""Fine-tune a model with nothing but onnxruntime and numpy, from the training graph onnxforge exported.

``model.export_training()`` writes the training step: forward pass, loss, gradients (onnxforge's autodiff)
and the Adam update, in standard ``ai.onnx`` ops. Every piece of state (weights, optimizer slots, step
counter, RNG) is a graph input and, as ``<name>:new``, an output; ``metadata_props["onnxforge.state"]``
lists the pairs. Its starting values are a second model, ``train_step.init.onnx`` (named in
``metadata_props["onnxforge.init_model"]``), with no inputs: running it once gives the state by input
name. Any onnxruntime program -- C, C++, C#, Java, JavaScript, Python -- can train with the two files.
This script shows it in Python (``examples/train_in_node`` and ``examples/train_in_browser`` in JavaScript):

1. ``--make`` (run for you in a child process when the files are missing): onnxforge builds a small
   digit classifier, exports ``train_step.onnx`` and ``eval_step.onnx``, and writes the data to ``.npz``.
2. The training loop below imports onnxruntime and numpy only (it checks that onnxforge was never
   imported): it feeds batches and the learning rate, feeds each step's ``:new`` outputs back as the
   next step's state, prints the falling loss, and evaluates the trained state with the eval graph.

Run: ``python examples/train_with_plain_onnxruntime.py [--out examples/output] [--epochs 10]``
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort


def make(folder: str) -> None:
    """The only part that uses onnxforge: define, compile and export (runs in its own process)."""
    import onnxforge as tf
    from onnxforge.datasets import digits

    (x_train, y_train), (x_test, y_test) = digits.load_data()
    np.savez(os.path.join(folder, "digits.npz"), x_train=(x_train[..., None] / 16.0).astype(np.float32),
             y_train=y_train.astype(np.int64), x_test=(x_test[..., None] / 16.0).astype(np.float32),
             y_test=y_test.astype(np.int64))
    tf.initializers.set_random_seed(0)
    model = tf.keras.Sequential([
        tf.keras.layers.Input((8, 8, 1), name="image"),
        tf.keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
        tf.keras.layers.MaxPooling2D(),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dropout(0.2),
        tf.keras.layers.Dense(10, activation="softmax", name="digit")])
    model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate=0.003), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], seed=0)
    model.export_training(os.path.join(folder, "train_step.onnx"))
    model.export_eval(os.path.join(folder, "eval_step.onnx"))
    print(f"onnxforge exported {folder}/train_step.onnx, eval_step.onnx and their .init.onnx companions")


# ------------------------------------------------------------------ from here on: onnxruntime + numpy only
def session(path: str) -> ort.InferenceSession:
    return ort.InferenceSession(path, providers=["CPUExecutionProvider"])


def initial_state(sess: ort.InferenceSession, folder: str) -> dict[str, np.ndarray]:
    """Run the companion model the graph names: no inputs; its outputs, by name, start every state input."""
    init = session(os.path.join(folder, sess.get_modelmeta().custom_metadata_map["onnxforge.init_model"]))
    return dict(zip([o.name for o in init.get_outputs()], init.run(None, {})))


def evaluate(sess: ort.InferenceSession, state: dict, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Loss and accuracy of the weights in ``state`` (a training loop's state holds them under the same names)."""
    io = json.loads(sess.get_modelmeta().custom_metadata_map["onnxforge.io"])["inputs"]
    feeds = {io["data"][0]: x, io["targets"][0]: y, io["sample_weights"][0]: np.ones(len(x), np.float32)}
    feeds.update({name: state[name] for name in io["params"]})
    sums = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    return (float(sums["sums/loss/total"] / sums["sums/loss/count"]),
            float(sums["sums/accuracy/total"] / sums["sums/accuracy/count"]))


def train(folder: str, epochs: int, batch_size: int) -> None:
    data = np.load(os.path.join(folder, "digits.npz"))
    x, y, x_test, y_test = data["x_train"], data["y_train"], data["x_test"], data["y_test"]
    step = session(os.path.join(folder, "train_step.onnx"))
    meta = step.get_modelmeta().custom_metadata_map
    pairs = json.loads(meta["onnxforge.state"])                 # [[state input, state output], ...]
    io = json.loads(meta["onnxforge.io"])["inputs"]
    learning_rate = np.asarray(float(meta["onnxforge.learning_rate"]), np.float32)
    outputs = [o.name for o in step.get_outputs()]
    print(f"training graph: {len(pairs)} state tensors, inputs {io['data'] + io['targets'] + io['sample_weights']} "
          f"+ {io['learning_rate']}")
    evaluation = session(os.path.join(folder, "eval_step.onnx"))
    state = initial_state(step, folder)                          # every state input, by name
    loss, accuracy = evaluate(evaluation, state, x_test, y_test)
    print(f"before training: test loss {loss:.4f}, accuracy {accuracy:.3f}")

    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        total = count = correct = 0.0
        for start in range(0, len(x), batch_size):
            batch = order[start:start + batch_size]
            feeds = {io["data"][0]: x[batch], io["targets"][0]: y[batch],
                     io["sample_weights"][0]: np.ones(len(batch), np.float32),
                     io["learning_rate"]: learning_rate, **state}
            out = dict(zip(outputs, step.run(None, feeds)))
            state.update({i: out[o] for i, o in pairs})        # the new state feeds the next step
            total += float(out["sums/loss/total"])
            count += float(out["sums/loss/count"])
            correct += float(out["sums/accuracy/total"])
            if epoch == 0 and start // batch_size in (0, 4, 9, 19):
                print(f"  step {start // batch_size + 1:3d}: batch loss "
                      f"{float(out['sums/loss/total'] / out['sums/loss/count']):.4f}")
        print(f"epoch {epoch + 1}: loss {total / count:.4f}, accuracy {correct / count:.3f}")
    loss, accuracy = evaluate(evaluation, state, x_test, y_test)
    steps = int(state[next(i for i, _ in pairs if i.endswith("/iteration"))])
    print(f"after {steps} steps ({time.perf_counter() - started:.1f} s): test loss {loss:.4f}, accuracy {accuracy:.3f}")
    np.savez(os.path.join(folder, "trained_state.npz"), **{f"s{k}": state[i] for k, (i, _) in enumerate(pairs)})
    assert "onnxforge" not in sys.modules, "the training loop must not need onnxforge"
    print("trained with onnxruntime and numpy only (onnxforge was never imported by this process)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "output"))
    parser.add_argument("--make", action="store_true", help="only export the graphs (uses onnxforge)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.make:
        make(args.out)
        return
    needed = ("train_step.onnx", "train_step.init.onnx", "eval_step.onnx", "digits.npz")
    if not all(os.path.exists(os.path.join(args.out, f)) for f in needed):
        subprocess.run([sys.executable, os.path.abspath(__file__), "--make", "--out", args.out], check=True)
    train(args.out, args.epochs, args.batch_size)


if __name__ == "__main__":
    main()
