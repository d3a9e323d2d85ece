"""The fewest constructor arguments of the layers added for the Keras 3 API surface (issue 12), so the
default-config conformance test (``tests/test_keras_conformance.py``) can build each on both sides."""
from __future__ import annotations

import importlib.util
from typing import Any

#: Keras builds its lookup, text and discretization layers (and adapt() on anything but an array) on TensorFlow
#: whatever the backend; the test extra installs tensorflow-cpu, the oracle for ours.
KERAS_TF_MISSING = importlib.util.find_spec("tensorflow") is None
KERAS_TF_REASON = "the Keras oracle for this layer runs on TensorFlow (the test extra installs tensorflow-cpu)"


def _double(x):
    return x * 2.0


def extra_required_args(lib: Any) -> dict:
    """``{class name: kwargs}`` for ``lib.layers`` (Keras or onnxforge)."""
    return {
        "EinsumDense": dict(equation="ab,bc->ac", output_shape=4),
        "MultiHeadAttention": dict(num_heads=2, key_dim=3),
        "GroupQueryAttention": dict(head_dim=3, num_query_heads=4, num_key_value_heads=2),
        "Lambda": dict(function=_double), "Wrapper": dict(layer=lib.layers.Dense(2)),
        "StackedRNNCells": dict(cells=[lib.layers.LSTMCell(3), lib.layers.GRUCell(2)]),
        "Pipeline": dict(layers=[lib.layers.Rescaling(0.5), lib.layers.RandomFlip()]), "ReversibleEmbedding": dict(input_dim=10, output_dim=3),
        "Dot": dict(axes=1), "RepeatVector": dict(n=2), "MaxNumBoundingBoxes": dict(max_number=4),
        **{n: dict(filters=2, kernel_size=3) for n in (
            "Conv3D", "Convolution3D", "Conv1DTranspose", "Convolution1DTranspose", "Conv3DTranspose",
            "Convolution3DTranspose", "SeparableConv1D", "SeparableConvolution1D")},
        "DepthwiseConv1D": dict(kernel_size=3),
        "Rescaling": dict(scale=0.5), "Resizing": dict(height=4, width=5), "CenterCrop": dict(height=3, width=3),
        "RandomCrop": dict(height=3, width=3, seed=1),   # Keras draws a seed when given none
        "CategoryEncoding": dict(num_tokens=3), "HashedCrossing": dict(num_bins=4), "Hashing": dict(num_bins=4), "RandomRotation": dict(factor=0.1), "RandomZoom": dict(height_factor=0.1),
        "RandomTranslation": dict(height_factor=0.1, width_factor=0.2), "RandomContrast": dict(factor=0.2),
        "RandomBrightness": dict(factor=0.2), "Discretization": dict(bin_boundaries=[0.0, 1.0]),
        **{n: dict(factor=0.5, seed=1) for n in ("RandomHue", "RandomSaturation", "RandomSharpness",
                                                  "RandomColorDegeneration")},
        "RandomPosterization": dict(factor=4, seed=1),
        **{n: dict(rate=0.2) for n in ("AlphaDropout", "GaussianDropout", "SpatialDropout1D", "SpatialDropout2D",
                                       "SpatialDropout3D")}, "AveragePooling3D": dict(pool_size=2),
        "AvgPool3D": dict(pool_size=2),
        **{n: dict(output_size=3) for n in (
            "AdaptiveAveragePooling1D", "AdaptiveAveragePooling2D", "AdaptiveAveragePooling3D",
            "AdaptiveMaxPooling1D", "AdaptiveMaxPooling2D", "AdaptiveMaxPooling3D")},
    }
