"""Seed CNN on CUDA vs CPU (loss curves) and training samples/s vs PyTorch on the same GPU.

Run by ``bench/gpu_check.sh`` on a GPU machine (torch imported before onnxruntime). Prints the card's
name with every figure.
"""
from __future__ import annotations

import time

import numpy as np
import torch

import onnxforge as tf

STEPS, BATCH = 300, 128


def seed_cnn():
    model = tf.keras.Sequential([
        tf.keras.layers.Conv2D(32, 3, padding="same", input_shape=(28, 28, 1)), tf.keras.layers.Activation("relu"),
        tf.keras.layers.MaxPooling2D(2), tf.keras.layers.Conv2D(64, 3, padding="same"),
        tf.keras.layers.Activation("relu"), tf.keras.layers.MaxPooling2D(2), tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(128), tf.keras.layers.Activation("relu"), tf.keras.layers.Dense(10)])
    return model


def train(device: str, x: np.ndarray, y: np.ndarray) -> tuple[list[float], float]:
    tf.initializers.set_random_seed(0)
    model = seed_cnn()
    model.compile(optimizer="adam", loss=tf.losses.SparseCategoricalCrossentropy(from_logits=True),
                  device=device)
    losses = []
    model.train_on_batch(x[:BATCH], y[:BATCH])  # warm-up: sessions, allocations
    start = time.perf_counter()
    for step in range(STEPS):
        i = (step * BATCH) % (len(x) - BATCH)
        losses.append(float(model.train_on_batch(x[i:i + BATCH], y[i:i + BATCH])))
    return losses, STEPS * BATCH / (time.perf_counter() - start)


def torch_samples_per_second(x: np.ndarray, y: np.ndarray) -> float:
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(3136, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)).cuda()
    opt = torch.optim.Adam(net.parameters(), 1e-3, eps=1e-7)
    xt = torch.tensor(x.transpose(0, 3, 1, 2)).cuda()
    yt = torch.tensor(y, dtype=torch.long).cuda()
    for step in range(STEPS + 10):
        if step == 10:
            torch.cuda.synchronize()
            start = time.perf_counter()
        i = (step * BATCH) % (len(x) - BATCH)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt[i:i + BATCH]), yt[i:i + BATCH]).backward()
        opt.step()
    torch.cuda.synchronize()
    return STEPS * BATCH / (time.perf_counter() - start)


def main() -> None:
    card = torch.cuda.get_device_name(0)
    (x, y), _ = tf.keras.datasets.mnist.load_data()
    x = x.reshape(-1, 28, 28, 1).astype(np.float32) / 255.0
    gpu_losses, gpu_rate = train("cuda", x, y)
    cpu_losses, cpu_rate = train("cpu", x, y)
    gap = max(abs(a - b) for a, b in zip(gpu_losses, cpu_losses))
    print(f"[{card}] loss after {STEPS} steps: cuda {gpu_losses[-1]:.4f}, cpu {cpu_losses[-1]:.4f}; "
          f"max |cuda - cpu| over the curve {gap:.2e}")
    torch_rate = torch_samples_per_second(x, y)
    print(f"[{card}] training samples/s: onnxforge cuda {gpu_rate:,.0f}, PyTorch cuda {torch_rate:,.0f} "
          f"(ratio {gpu_rate / torch_rate:.2f}); onnxforge cpu {cpu_rate:,.0f}")


if __name__ == "__main__":
    main()
