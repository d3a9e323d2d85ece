"""The small SpectralNormalization models built the same way with Keras and with onnxforge."""
from __future__ import annotations


def build(keras, kind: str):
    """``kind``: ``"dense"`` (SpectralNormalization(Dense) twice) or ``"conv"`` (over a Conv2D)."""
    layers = keras.layers
    if kind == "dense":
        return keras.Sequential([keras.Input((4,)), layers.SpectralNormalization(layers.Dense(5)),
                                 layers.Activation("tanh"),
                                 layers.SpectralNormalization(layers.Dense(2), power_iterations=2)])
    return keras.Sequential([keras.Input((5, 5, 2)), layers.SpectralNormalization(layers.Conv2D(3, 3)),
                             layers.Flatten(), layers.Dense(2)])
