"""A DCGAN on the 5,000 real MNIST digits, trained by onnxruntime on ONE onnxforge training graph per step.

The modern way (default) is Keras's DCGAN example: a ``Model`` subclass whose ``train_step`` updates the
discriminator and then the generator, each with a gradient tape and its own optimizer. onnxforge traces
that step once into a single ONNX training graph (both updates, the noise draws and both optimizers' state
inside), and ``fit`` runs it with onnxruntime. ``--classic`` trains the same networks the tf.keras 2 way:
compile the discriminator, freeze it, compile ``Model(z, discriminator(generator(z)))`` and alternate
``train_on_batch`` calls (the two compiled programs share the discriminator's weights).

Every ``--grid-every`` epochs a PNG grid of generated digits is saved. At the end 1,000 samples are scored
with the seed CNN of ``examples/mnist_cnn.py`` (its exported ``mnist_cnn.onnx`` when present, otherwise the
CNN is trained here for a few epochs): the mean top-class probability and how many of the 10 classes
appear among the predictions.

Run: ``python examples/dcgan_mnist.py [--classic] [--epochs 30] [--out examples/output]``
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import onnxforge as of
from onnxforge import layers, ops

LATENT = 64


# ------------------------------------------------------------------------------------------ the networks
def build_generator(latent_dim: int = LATENT) -> of.Model:
    return of.Sequential([
        of.Input((latent_dim,)),
        layers.Dense(7 * 7 * 64),
        layers.LeakyReLU(0.2),
        layers.Reshape((7, 7, 64)),
        layers.Conv2DTranspose(32, 4, strides=2, padding="same"),    # 14 x 14
        layers.LeakyReLU(0.2),
        layers.Conv2DTranspose(1, 4, strides=2, padding="same", activation="sigmoid"),   # 28 x 28
    ], name="generator")


def build_discriminator() -> of.Model:
    return of.Sequential([
        of.Input((28, 28, 1)),
        layers.Conv2D(32, 4, strides=2, padding="same"),
        layers.LeakyReLU(0.2),
        layers.Conv2D(64, 4, strides=2, padding="same"),
        layers.LeakyReLU(0.2),
        layers.Flatten(),
        layers.Dense(1),   # a logit: the losses below use from_logits=True
    ], name="discriminator")


# ------------------------------------------------------------------------------------------ modern way
class GAN(of.Model):
    """Keras's DCGAN ``train_step`` (fake = 1, real = 0, noisy labels), traced into one ONNX graph."""

    def __init__(self, discriminator: of.Model, generator: of.Model, latent_dim: int):
        super().__init__()
        self.discriminator = discriminator
        self.generator = generator
        self.latent_dim = latent_dim
        self.seed_generator = ops.random.SeedGenerator(1337)

    def compile(self, d_optimizer, g_optimizer, loss_fn, **kwargs):
        super().compile(**kwargs)
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.loss_fn = loss_fn

    def train_step(self, real_images):
        batch_size = ops.shape(real_images)[0]
        noise = ops.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)
        generated = self.generator(noise)
        combined = ops.concatenate([generated, real_images], axis=0)
        labels = ops.concatenate([ops.ones((batch_size, 1)), ops.zeros((batch_size, 1))], axis=0)
        labels = labels + 0.05 * ops.random.uniform(ops.shape(labels), seed=self.seed_generator)
        with of.GradientTape() as tape:
            d_loss = self.loss_fn(labels, self.discriminator(combined))
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))

        noise = ops.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)
        misleading = ops.zeros((batch_size, 1))
        with of.GradientTape() as tape:
            g_loss = self.loss_fn(misleading, self.discriminator(self.generator(noise)))
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))
        return {"d_loss": d_loss, "g_loss": g_loss}


class GridEvery(of.callbacks.Callback):
    def __init__(self, generator: of.Model, every: int, out: str, prefix: str, z: np.ndarray):
        super().__init__()
        self.generator, self.every, self.out, self.prefix, self.z = generator, every, out, prefix, z
        self.saved: list[str] = []

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every == 0:
            self.saved.append(save_grid(self.generator.predict(self.z, verbose=0), self.out,
                                        f"{self.prefix}_epoch{epoch + 1:03d}.png", f"epoch {epoch + 1}"))


def train_modern(x: np.ndarray, args: argparse.Namespace, z_grid: np.ndarray) -> tuple[of.Model, list[str]]:
    generator, discriminator = build_generator(args.latent_dim), build_discriminator()
    gan = GAN(discriminator, generator, args.latent_dim)
    gan.compile(d_optimizer=of.optimizers.Adam(args.lr, beta_1=0.5),
                g_optimizer=of.optimizers.Adam(args.lr, beta_1=0.5),
                loss_fn=of.losses.BinaryCrossentropy(from_logits=True), seed=args.seed)
    grids = GridEvery(generator, args.grid_every, args.out, "dcgan_modern", z_grid)
    gan.fit(x, batch_size=args.batch_size, epochs=args.epochs, callbacks=[grids], verbose=2)
    program = gan.compiled_programs["train_step"].model
    print(f"one training graph: {len(program.graph.node)} nodes, {len(program.graph.input)} inputs, "
          f"{len(program.graph.output)} outputs (both updates, noise and optimizer state inside)")
    return generator, grids.saved


# ------------------------------------------------------------------------------------------ classic way
def train_classic(x: np.ndarray, args: argparse.Namespace, z_grid: np.ndarray) -> tuple[of.Model, list[str]]:
    generator, discriminator = build_generator(args.latent_dim), build_discriminator()
    discriminator.compile(optimizer=of.optimizers.Adam(args.lr, beta_1=0.5),
                          loss=of.losses.BinaryCrossentropy(from_logits=True), seed=args.seed)
    discriminator.trainable = False          # captured at compile time: the discriminator's program still trains it
    z = of.Input((args.latent_dim,))
    gan = of.Model(z, discriminator(generator(z)), name="gan")
    gan.compile(optimizer=of.optimizers.Adam(args.lr, beta_1=0.5), loss=of.losses.BinaryCrossentropy(from_logits=True),
                seed=args.seed)
    rng = np.random.default_rng(args.seed)
    n, bs = len(x), args.batch_size
    fake_labels, real_labels = np.ones((bs, 1), np.float32), np.zeros((bs, 1), np.float32)
    saved = []
    for epoch in range(args.epochs):
        start, d_losses, g_losses = time.perf_counter(), [], []
        order = rng.permutation(n)
        for i in range(0, n - bs + 1, bs):
            real = x[order[i:i + bs]]
            fake = generator.predict_on_batch(rng.normal(size=(bs, args.latent_dim)).astype(np.float32))
            labels = np.concatenate([fake_labels, real_labels])
            labels += 0.05 * rng.random(labels.shape).astype(np.float32)
            d_losses.append(discriminator.train_on_batch(np.concatenate([fake, real]), labels))
            discriminator.reset_metrics()
            g_losses.append(gan.train_on_batch(rng.normal(size=(bs, args.latent_dim)).astype(np.float32),
                                               real_labels))
            gan.reset_metrics()
        print(f"Epoch {epoch + 1}/{args.epochs} - {time.perf_counter() - start:.0f}s - d_loss: "
              f"{np.mean(d_losses):.4f} - g_loss: {np.mean(g_losses):.4f}")
        if (epoch + 1) % args.grid_every == 0:
            saved.append(save_grid(generator.predict(z_grid, verbose=0), args.out,
                                   f"dcgan_classic_epoch{epoch + 1:03d}.png", f"epoch {epoch + 1}"))
    return generator, saved


# ------------------------------------------------------------------------------------------ grids and scores
def save_grid(images: np.ndarray, out: str, name: str, title: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = int(np.ceil(len(images) / 10))
    fig, axes = plt.subplots(rows, 10, figsize=(10, rows + 0.4))
    for ax, img in zip(axes.ravel(), images):
        ax.imshow(img[..., 0], cmap="gray", vmin=0, vmax=1)
    for ax in axes.ravel():
        ax.axis("off")
    fig.suptitle(f"DCGAN on 5,000 MNIST digits (onnxforge + onnxruntime), {title}", fontsize=9)
    fig.tight_layout()
    path = os.path.join(out, name)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def classifier(x_train: np.ndarray, y_train: np.ndarray, out: str, epochs: int):
    """A function images -> class probabilities: the exported seed CNN if there is one, else trained here."""
    import onnxruntime as ort

    path = os.path.join(out, "mnist_cnn.onnx")
    if not os.path.exists(path):
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from mnist_cnn import build_model   # the seed CNN, exactly as examples/mnist_cnn.py builds it

        print(f"no {path}: training the seed CNN for {epochs} epochs to score the samples")
        cnn = build_model()
        cnn.fit(x_train, y_train, batch_size=128, epochs=epochs, verbose=2)
        cnn.export(path)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def probabilities(images: np.ndarray) -> np.ndarray:
        logits = np.concatenate([session.run(None, {name: images[i:i + 250]})[0] for i in range(0, len(images), 250)])
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    return probabilities


def score(generator: of.Model, probabilities, latent_dim: int, seed: int) -> tuple[float, int, np.ndarray]:
    z = np.random.default_rng(seed + 1).normal(size=(1000, latent_dim)).astype(np.float32)
    p = probabilities(generator.predict(z, batch_size=250, verbose=0))
    classes = np.bincount(p.argmax(axis=1), minlength=10)
    return float(p.max(axis=1).mean()), int((classes > 0).sum()), classes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classic", action="store_true", help="compile/freeze/train_on_batch instead of train_step")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-4, help="Adam learning rate of both networks")
    parser.add_argument("--latent-dim", type=int, default=LATENT)
    parser.add_argument("--grid-every", type=int, default=5)
    parser.add_argument("--classifier-epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "output"))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    np.random.seed(args.seed)

    (x_train, y_train), (x_test, y_test) = of.datasets.mnist_5k.load_data()
    x = np.concatenate([x_train, x_test]).reshape(-1, 28, 28, 1).astype("float32") / 255.0
    y = np.concatenate([y_train, y_test])
    print(f"data: {len(x)} real MNIST digits; {'classic' if args.classic else 'modern'} GAN, {args.epochs} epochs")
    probabilities = classifier(x, y, args.out, args.classifier_epochs)
    real_p = probabilities(x[:1000])
    print(f"classifier on 1,000 real digits: mean top-class probability {real_p.max(axis=1).mean():.3f}, "
          f"accuracy {np.mean(real_p.argmax(axis=1) == y[:1000]):.3f}")

    z_grid = np.random.default_rng(args.seed).normal(size=(50, args.latent_dim)).astype(np.float32)
    start = time.perf_counter()
    generator, grids = (train_classic if args.classic else train_modern)(x, args, z_grid)
    seconds = time.perf_counter() - start
    mean_top, n_classes, counts = score(generator, probabilities, args.latent_dim, args.seed)
    final = save_grid(generator.predict(z_grid, verbose=0), args.out,
                      f"dcgan_{'classic' if args.classic else 'modern'}_final.png", f"after {args.epochs} epochs")
    print(f"trained in {seconds:.0f} s ({seconds / max(args.epochs, 1):.1f} s/epoch); grids: {grids + [final]}")
    print(f"1,000 generated digits scored by the seed CNN: mean top-class probability {mean_top:.3f}; "
          f"{n_classes} of 10 classes appear; per-class counts {counts.tolist()}")


if __name__ == "__main__":
    main()
