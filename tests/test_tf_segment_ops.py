"""``tf.math.unsorted_segment_mean`` (keras.io's traffic-forecasting GraphConv aggregates neighbours with it),
``unsorted_segment_min`` / ``unsorted_segment_sqrt_n`` and the sorted ``segment_mean`` / ``segment_min``:
values, dtypes and gradients against TensorFlow, on arrays and inside ``tf.function``; empty segments give 0
(mean, sqrt_n, and the sorted min / max, which before held the dtype's extreme) or the dtype's extreme (unsorted
min / max), as in TensorFlow."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as tf

rtf = pytest.importorskip("tensorflow")

DATA = np.random.default_rng(0).normal(size=(5, 2, 3)).astype("float32")
IDS = [3, 0, 3, 1, 0]   # segment 2 is empty, and so is 4 with num_segments=5


@pytest.mark.parametrize("name", ["unsorted_segment_mean", "unsorted_segment_min", "unsorted_segment_sqrt_n",
                                  "unsorted_segment_sum", "unsorted_segment_max"])
@pytest.mark.parametrize("data", [DATA, DATA[:, 0, 0]], ids=["rank3", "rank1"])
def test_unsorted_segments_match_tensorflow(name, data):
    want = getattr(rtf.math, name)(data, IDS, num_segments=5).numpy()
    got = getattr(tf.math, name)(data, IDS, num_segments=5)
    assert np.asarray(got).dtype == want.dtype and np.shape(got) == want.shape
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6)
    traced = tf.function(lambda x: getattr(tf.math, name)(x, np.array(IDS), num_segments=5))(data)
    np.testing.assert_allclose(np.asarray(traced), want, rtol=1e-6)


@pytest.mark.parametrize("name", ["segment_mean", "segment_min", "segment_max"])
def test_sorted_segments_match_tensorflow(name):
    ids = [0, 0, 1, 3, 3]
    want = getattr(rtf.math, name)(DATA, ids).numpy()
    got = np.asarray(getattr(tf.math, name)(DATA, ids))
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_segment_mean_gradient_matches_tensorflow():
    weights = DATA[:, 0, :]
    outs = []
    for lib in (rtf, tf):
        x = lib.Variable(weights)
        with lib.GradientTape() as tape:
            y = lib.math.unsorted_segment_mean(x * x, IDS, num_segments=5)
            loss = lib.reduce_sum(y * np.arange(15, dtype="float32").reshape(5, 3))
        outs.append(np.asarray(tape.gradient(loss, x)))
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-5)
