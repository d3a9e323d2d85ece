"""The DCGAN step of ``examples/dcgan_mnist.py`` (Keras's ``train_step`` override: discriminator then generator
update, each with its own Adam, noise drawn in the step): onnxforge against Keras 3 on the torch backend.

Both peers run the same networks (``build_generator`` / ``build_discriminator`` of the example: Dense,
Conv2DTranspose, Conv2D, LeakyReLU) and the same step through ``fit`` on random 28x28x1 images, each in its
own process, and report wall and CPU ms per step and peak RSS. Keras's step is the torch-backend form of
keras.io's "customizing fit() with PyTorch" GAN (``loss.backward()``, ``optimizer.apply``).

Usage: ``python bench/train_dcgan.py [--batch 64] [--steps 60] [--threads 2] [--rounds 2] [--markdown]``
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE, os.path.join(os.path.dirname(HERE), "examples")]

import numpy as np  # noqa: E402

from harness import _peak_rss_mb, machine  # noqa: E402

LATENT = 64


def _images(n: int) -> np.ndarray:
    return np.random.default_rng(0).random((n, 28, 28, 1), dtype=np.float32)


def _fit_timed(gan, x, args) -> dict:
    warm = x[: args.batch * 4]
    gan.fit(warm, batch_size=args.batch, epochs=1, verbose=0)
    start, cpu = time.perf_counter(), time.process_time()
    gan.fit(x, batch_size=args.batch, epochs=1, verbose=0, shuffle=True)
    steps = -(-len(x) // args.batch)
    return {"ms_per_step": 1e3 * (time.perf_counter() - start) / steps,
            "cpu_ms_per_step": 1e3 * (time.process_time() - cpu) / steps}


def run_onnxforge(args) -> dict:
    if args.threads:
        os.environ["ONNXFORGE_INTRA_OP_THREADS"] = str(args.threads)
    import dcgan_mnist as ex
    import onnxforge as of

    gan = ex.GAN(ex.build_discriminator(), ex.build_generator(LATENT), LATENT)
    gan.compile(d_optimizer=of.optimizers.Adam(2e-4, beta_1=0.5), g_optimizer=of.optimizers.Adam(2e-4, beta_1=0.5),
                loss_fn=of.losses.BinaryCrossentropy(from_logits=True), seed=0)
    return _fit_timed(gan, _images(args.batch * args.steps), args)


def run_keras_torch(args) -> dict:
    os.environ["KERAS_BACKEND"] = "torch"
    import keras
    import torch
    from keras import layers

    if args.threads:
        torch.set_num_threads(args.threads)
    generator = keras.Sequential([
        keras.Input((LATENT,)), layers.Dense(7 * 7 * 64), layers.LeakyReLU(0.2), layers.Reshape((7, 7, 64)),
        layers.Conv2DTranspose(32, 4, strides=2, padding="same"), layers.LeakyReLU(0.2),
        layers.Conv2DTranspose(1, 4, strides=2, padding="same", activation="sigmoid")])
    discriminator = keras.Sequential([
        keras.Input((28, 28, 1)), layers.Conv2D(32, 4, strides=2, padding="same"), layers.LeakyReLU(0.2),
        layers.Conv2D(64, 4, strides=2, padding="same"), layers.LeakyReLU(0.2), layers.Flatten(), layers.Dense(1)])

    class GAN(keras.Model):
        def __init__(self):
            super().__init__()
            self.discriminator, self.generator = discriminator, generator
            self.seed_generator = keras.random.SeedGenerator(1337)

        def compile(self, d_optimizer, g_optimizer, loss_fn):
            super().compile()
            self.d_optimizer, self.g_optimizer, self.loss_fn = d_optimizer, g_optimizer, loss_fn

        def call(self, images):  # Keras builds a subclassed model by calling it once
            return self.discriminator(images)

        def train_step(self, real_images):
            if isinstance(real_images, tuple):
                real_images = real_images[0]
            n = real_images.shape[0]
            generated = self.generator(keras.random.normal((n, LATENT), seed=self.seed_generator))
            combined = torch.concat([generated, real_images], axis=0)
            labels = torch.concat([torch.ones((n, 1)), torch.zeros((n, 1))], axis=0)
            labels = labels + 0.05 * keras.random.uniform(labels.shape, seed=self.seed_generator)
            self.zero_grad()
            d_loss = self.loss_fn(labels, self.discriminator(combined))
            d_loss.backward()
            grads = [v.value.grad for v in self.discriminator.trainable_weights]
            with torch.no_grad():
                self.d_optimizer.apply(grads, self.discriminator.trainable_weights)
            self.zero_grad()
            noise = keras.random.normal((n, LATENT), seed=self.seed_generator)
            g_loss = self.loss_fn(torch.zeros((n, 1)), self.discriminator(self.generator(noise)))
            g_loss.backward()
            grads = [v.value.grad for v in self.generator.trainable_weights]
            with torch.no_grad():
                self.g_optimizer.apply(grads, self.generator.trainable_weights)
            return {"d_loss": d_loss, "g_loss": g_loss}

    gan = GAN()
    gan.compile(keras.optimizers.Adam(2e-4, beta_1=0.5), keras.optimizers.Adam(2e-4, beta_1=0.5),
                keras.losses.BinaryCrossentropy(from_logits=True))
    return _fit_timed(gan, _images(args.batch * args.steps), args)


RUNNERS = {"onnxforge": run_onnxforge, "keras (torch)": run_keras_torch}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--worker", choices=sorted(RUNNERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        res = RUNNERS[args.worker](args)
        print("RESULT " + json.dumps(dict(res, peak_rss_mb=_peak_rss_mb())), flush=True)
        return
    info, best = machine(), {}
    for r in range(args.rounds):
        for peer in (list(RUNNERS) if r % 2 == 0 else list(RUNNERS)[::-1]):
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", peer, "--batch", str(args.batch),
                   "--steps", str(args.steps), "--threads", str(args.threads)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode or not lines:
                print(f"{peer} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
                continue
            res = json.loads(lines[-1][7:])
            if peer not in best or res["ms_per_step"] < best[peer]["ms_per_step"]:
                best[peer] = res
    load = f"{info['load_before'][0]:.1f} -> {os.getloadavg()[0]:.1f}"
    print(f"DCGAN step (examples/dcgan_mnist.py nets), batch {args.batch}, {args.steps} timed steps, "
          f"{args.threads or 'default'} threads; {info['cpu']}, SIMD {' '.join(info['simd'])}; load {load}; "
          f"best of {args.rounds}")
    rows = [(p, r) for p, r in best.items()]
    if args.markdown:
        print("| peer | ms/step | CPU ms/step | peak RSS |\n|---|---|---|---|")
    for peer, r in rows:
        cells = [peer, f"{r['ms_per_step']:.1f}", f"{r['cpu_ms_per_step']:.1f}", f"{r['peak_rss_mb']:,.0f} MB"]
        print("| " + " | ".join(cells) + " |" if args.markdown else "  ".join(c.ljust(14) for c in cells))
    if len(best) == 2:
        ours, theirs = best["onnxforge"], best["keras (torch)"]
        print(f"onnxforge / Keras on torch, step time: {ours['ms_per_step'] / theirs['ms_per_step']:.2f}x "
              f"(CPU time {ours['cpu_ms_per_step'] / theirs['cpu_ms_per_step']:.2f}x; below 1 is faster)")


if __name__ == "__main__":
    main()
