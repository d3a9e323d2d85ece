"""The benchmarked models, written once for Keras-style modules (``onnxforge`` or ``tensorflow``) and once for
PyTorch, with their random data.

* ``cnn``: the seed's CNN on 28x28x1 (Conv2D 32 - relu - MaxPool - Conv2D 64 - relu - MaxPool - Flatten -
  Dense 128 - relu - Dense 10);
* ``mlp``: Dense-only MNIST classifier, 784 - 512 - 512 - 10 with relu;
* ``resbn``: a small residual CNN with BatchNormalization on CIFAR-sized 32x32x3 data: a 3x3 stem of 16
  channels, then three residual blocks (16, 32 stride 2, 64 stride 2; two 3x3 convs each, a 1x1 projection
  where the shape changes; every conv without bias and followed by BatchNormalization), global average
  pooling and Dense 10.

All compile with ``optimizer="adam"``, ``SparseCategoricalCrossentropy(from_logits=True)`` and
``metrics=["accuracy"]``; the PyTorch twins use ``Adam(eps=1e-7)``, ``CrossEntropyLoss`` and BatchNorm with
Keras's momentum and epsilon. Channels-first in PyTorch, as its users write it; the data are converted once,
outside the timing.
"""
from __future__ import annotations

import numpy as np

__all__ = ["MODELS", "make_data", "keras_model", "torch_model"]

CLASSES = 10
MODELS = {  # name: (input shape, channels-last; default samples; description)
    "cnn": ((28, 28, 1), 15360, "seed CNN (2 conv + 2 max-pool + 2 dense), 28x28x1"),
    "mlp": ((784,), 30720, "MLP 784-512-512-10"),
    "resbn": ((32, 32, 3), 3840, "residual CNN with BatchNorm (3 blocks, 16/32/64 ch), 32x32x3"),
}


def make_data(name: str, samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = MODELS[name][0]
    return rng.random((samples, *shape), dtype=np.float32), rng.integers(0, CLASSES, samples)


# ------------------------------------------------------------------------------------------ Keras
def _keras_cnn(tf):
    L = tf.keras.layers
    return tf.keras.Sequential([
        L.Conv2D(32, 3, padding="same", input_shape=(28, 28, 1)), L.Activation("relu"),
        L.MaxPooling2D(pool_size=(2, 2)), L.Conv2D(64, 3, padding="same"), L.Activation("relu"),
        L.MaxPooling2D(pool_size=(2, 2)), L.Flatten(), L.Dense(128), L.Activation("relu"), L.Dense(10)])


def _keras_mlp(tf):
    L = tf.keras.layers
    return tf.keras.Sequential([tf.keras.Input((784,)), L.Dense(512, activation="relu"),
                                L.Dense(512, activation="relu"), L.Dense(10)])


def _keras_resbn(tf):
    L = tf.keras.layers

    def conv_bn(h, ch, kernel, stride=1):
        return L.BatchNormalization()(L.Conv2D(ch, kernel, strides=stride, padding="same", use_bias=False)(h))

    def block(h, ch, stride):
        r = conv_bn(L.Activation("relu")(conv_bn(h, ch, 3, stride)), ch, 3)
        if stride != 1 or h.shape[-1] != ch:
            h = conv_bn(h, ch, 1, stride)
        return L.Activation("relu")(L.Add()([h, r]))

    x = tf.keras.Input((32, 32, 3))
    h = L.Activation("relu")(conv_bn(x, 16, 3))
    for ch, stride in ((16, 1), (32, 2), (64, 2)):
        h = block(h, ch, stride)
    return tf.keras.Model(x, L.Dense(10)(L.GlobalAveragePooling2D()(h)))


def keras_model(name: str, tf):
    """The compiled model for ``tf`` = ``onnxforge`` or ``tensorflow``."""
    model = {"cnn": _keras_cnn, "mlp": _keras_mlp, "resbn": _keras_resbn}[name](tf)
    model.compile(optimizer="adam", loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


# ------------------------------------------------------------------------------------------ PyTorch
def torch_model(name: str):
    """``(module, channels_first)`` for PyTorch."""
    import torch
    nn = torch.nn
    if name == "cnn":
        return nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, CLASSES)), True
    if name == "mlp":
        return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                             nn.Linear(512, CLASSES)), False

    def conv_bn(cin, cout, kernel, stride=1):
        return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, bias=False),
                             nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01))

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.body = nn.Sequential(conv_bn(cin, cout, 3, stride), nn.ReLU(), conv_bn(cout, cout, 3))
            self.skip = conv_bn(cin, cout, 1, stride) if stride != 1 or cin != cout else nn.Identity()

        def forward(self, x):
            return torch.relu(self.skip(x) + self.body(x))

    return nn.Sequential(conv_bn(3, 16, 3), nn.ReLU(), Block(16, 16, 1), Block(16, 32, 2), Block(32, 64, 2),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, CLASSES)), True
