"""Eager calls: ``model(x)`` on numpy arrays, onnxforge (a cached ONNX program per signature) vs Keras 3 on
its torch backend, on the same small models and weights.

Models: an MLP (784 -> 256 -> 10) and a DCGAN-style generator (latent 64 -> Dense 7*7*32 -> Conv2DTranspose
x2 -> Conv2D). Each side is called on the same batch; the first call (compile for onnxforge) is timed
apart, then the median of interleaved runs (A B A B ...) of each side, in CPU time of this process, plus
``predict_on_batch`` as onnxforge's own reference. Outputs are checked to agree before timing.
Usage: ``KERAS_BACKEND=torch python bench/eager_call.py [--runs 200] [--batch 1 16]``.

What it shows: the per-call overhead of the eager path (signature key, binding, one session run, the
result wrapped as an ``EagerTensor``), that it stays flat across calls (no rebuild, no weight copies) and
how it compares with Keras's own eager call. Measure on a quiet machine; the ratios are what travels.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "torch")


def _models(api):
    mlp = api.Sequential([api.Input((784,)), api.layers.Dense(256, activation="relu"), api.layers.Dense(10)])
    gen = api.Sequential([api.Input((64,)), api.layers.Dense(7 * 7 * 32), api.layers.Reshape((7, 7, 32)),
                          api.layers.Conv2DTranspose(32, 4, strides=2, padding="same", activation="relu"),
                          api.layers.Conv2DTranspose(16, 4, strides=2, padding="same", activation="relu"),
                          api.layers.Conv2D(1, 5, padding="same", activation="sigmoid")])
    return {"mlp": (mlp, 784), "generator": (gen, 64)}


def _cpu_ms(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.process_time()
        fn()
        out.append((time.process_time() - t) * 1e3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 16])
    args = parser.parse_args()
    import keras
    import torch

    import onnxforge.keras as fkeras

    torch.set_num_threads(2)
    ks, fs = _models(keras), _models(fkeras)
    for name in ks:
        (k, width), (f, _) = ks[name], fs[name]
        f.set_weights(k.get_weights())
        for n in args.batch:
            x = np.random.default_rng(0).normal(size=(n, width)).astype("float32")
            t = time.perf_counter()
            got = f(x)
            first = (time.perf_counter() - t) * 1e3
            np.testing.assert_allclose(got, keras.ops.convert_to_numpy(k(x)), rtol=1e-4, atol=1e-4)
            a, b, c = [], [], []
            for _ in range(args.runs // 10):   # interleaved: load changes hit both sides alike
                a += _cpu_ms(lambda: f(x), 10)
                b += _cpu_ms(lambda: k(x), 10)
                c += _cpu_ms(lambda: f.predict_on_batch(x), 10)
            fa, kb, pc = statistics.median(a), statistics.median(b), statistics.median(c)
            print(f"{name:9s} batch {n:3d}: onnxforge model(x) {fa:7.3f} ms | keras/torch {kb:7.3f} ms | "
                  f"ratio {kb / fa:5.2f}x | onnxforge predict_on_batch {pc:7.3f} ms | first call {first:6.1f} ms")


if __name__ == "__main__":
    main()
