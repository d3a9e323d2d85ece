"""Conv3D, Conv1DTranspose, Conv3DTranspose, DepthwiseConv1D, SeparableConv1D, 3-D pooling and adaptive
pooling against real Keras 3 (torch backend): weight layouts, outputs, configs and one training step."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
pytest.importorskip("keras")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

from tests.layers.keras_parity import check_layer_parity  # noqa: E402

R = np.random.default_rng(3)

CASES = {
    "conv3d": (lambda L: L.Conv3D(3, 2, activation="relu"), (4, 4, 3, 2)),
    "conv3d_same_strided": (lambda L: L.Conv3D(2, (3, 2, 2), strides=2, padding="same"), (5, 4, 3, 2)),
    "conv3d_groups_first": (lambda L: L.Conv3D(4, 2, groups=2, data_format="channels_first"), (4, 3, 3, 3)),
    "conv1d_transpose": (lambda L: L.Conv1DTranspose(3, 3, strides=2), (5, 2)),
    "conv1d_transpose_same_op": (lambda L: L.Conv1DTranspose(2, 3, strides=2, padding="same",
                                                             output_padding=1), (4, 3)),
    "conv3d_transpose": (lambda L: L.Conv3DTranspose(2, 2, strides=(2, 1, 2), padding="same"), (3, 2, 3, 2)),
    "depthwise_conv1d": (lambda L: L.DepthwiseConv1D(3, depth_multiplier=2, padding="same"), (6, 3)),
    "separable_conv1d": (lambda L: L.SeparableConv1D(4, 3, depth_multiplier=2, activation="tanh"), (7, 3)),
    "max_pooling3d": (lambda L: L.MaxPooling3D(2), (4, 4, 4, 2)),
    "average_pooling3d_same": (lambda L: L.AveragePooling3D((2, 2, 3), strides=2, padding="same"), (5, 4, 4, 2)),
    "average_pooling2d_uneven_same": (lambda L: L.AveragePooling2D(2, strides=2, padding="same"), (5, 4, 2)),
    "average_pooling1d_uneven_same": (lambda L: L.AveragePooling1D(3, strides=2, padding="same"), (6, 2)),
    "global_average_pooling3d": (lambda L: L.GlobalAveragePooling3D(), (3, 3, 3, 2)),
    "global_max_pooling3d_keepdims": (lambda L: L.GlobalMaxPooling3D(keepdims=True), (3, 3, 3, 2)),
    "adaptive_avg1d": (lambda L: L.AdaptiveAveragePooling1D(3), (7, 2)),
    "adaptive_avg2d": (lambda L: L.AdaptiveAveragePooling2D((2, 3)), (5, 7, 2)),
    "adaptive_avg3d_first": (lambda L: L.AdaptiveAveragePooling3D(2, data_format="channels_first"), (2, 5, 3, 4)),
    "adaptive_max1d": (lambda L: L.AdaptiveMaxPooling1D(4), (7, 2)),
    "adaptive_max2d": (lambda L: L.AdaptiveMaxPooling2D(3), (5, 7, 2)),
    "adaptive_max3d": (lambda L: L.AdaptiveMaxPooling3D((2, 1, 3)), (3, 4, 5, 2)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_layer_matches_keras_and_trains(name):
    factory, shape = CASES[name]

    def make(keras):
        x = keras.Input(shape)
        y = factory(keras.layers)(keras.layers.Dense(shape[-1])(x))  # weights before: gradients flow through
        return keras.Model(x, y)
    check_layer_parity(make, R.normal(size=(2, *shape)).astype("float32"), train=True)


def test_adaptive_pooling_refuses_unknown_spatial_sizes():
    from onnxforge import layers

    with pytest.raises(ValueError, match="known spatial sizes"):
        layers.AdaptiveAveragePooling1D(2)(layers.Input((None, 3)))
