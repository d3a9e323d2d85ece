"""Adaptive average pooling builds a length x output_size bin matrix; sizes that come from a config are
bounded (a few KB of checkpoint must not ask for gigabytes), with an error naming the layer."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as of

MAX_BIN_MATRIX_BYTES = 64 * 2**20   # onnxforge.layers.pooling_nd's limit


def test_a_bin_matrix_over_the_limit_is_refused_when_built():
    side = int((MAX_BIN_MATRIX_BYTES / 4) ** 0.5) + 1
    with pytest.raises(ValueError, match=rf"Layer 'big': averaging {side} steps into {side} bins .* over the 64 MiB"):
        of.Sequential([of.layers.Input((side, 1)), of.layers.AdaptiveAveragePooling1D(side, name="big")])


def test_a_loaded_layer_called_on_longer_inputs_than_it_was_built_for_is_refused():
    # A checkpoint's build config may say 4 steps while its Input layer says thousands: checked at the call too.
    layer = of.layers.AdaptiveAveragePooling1D(5000, name="pool")
    layer.build((None, 4, 1))
    model = of.Sequential([of.layers.Input((3400, 1)), layer])
    with pytest.raises(ValueError, match=r"Layer 'pool': averaging 3400 steps into 5000 bins"):
        model.predict(np.zeros((1, 3400, 1), np.float32), verbose=0)


def test_sizes_under_the_limit_still_pool():
    model = of.Sequential([of.layers.Input((6, 1)), of.layers.AdaptiveAveragePooling1D(3)])
    out = model.predict(np.arange(6, dtype=np.float32).reshape(1, 6, 1), verbose=0)
    np.testing.assert_allclose(out.reshape(-1), [0.5, 2.5, 4.5])
