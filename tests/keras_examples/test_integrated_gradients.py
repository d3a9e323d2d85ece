"""keras.io "Model interpretability with Integrated Gradients" (``vision_programs.integrated_gradients``) under
TensorFlow and onnxforge: ``keras.preprocessing.image.load_img`` / ``img_to_array``,
``xception.preprocess_input``, ``tf.GradientTape`` with ``tape.watch`` on an input tensor and the gradient of
one class score (an index from ``tf.argmax``) with respect to it, once per interpolated image, then
``tf.convert_to_tensor`` of a Python list of those gradients, the trapezoidal average and two random
baselines averaged; the page's visualizer's attribution overlay on the result.

Tolerance: same seeded weights, image and baselines; no training. Predictions agree to float32 order (1e-5;
seen 6e-8), input gradients and integrated gradients to 1e-5 of their largest entry (each integrated one
sums 9 backward passes; seen 2e-7), the 0-255 overlay within 1 level (seen 5e-5).
"""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as tf
import onnxforge.keras as keras

from . import tf_oracle, vision_programs


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    tf_oracle.skip_without_tensorflow()
    return tf_oracle.start("vision_programs", ["integrated_gradients"], tmp_path_factory.mktemp("ig") / "tf.npz")


def test_integrated_gradients_match_tensorflow(oracle):
    ours = vision_programs.integrated_gradients(tf, keras)
    theirs = oracle.results("integrated_gradients")
    assert sorted(ours) == sorted(theirs)
    np.testing.assert_allclose(ours["preds"], theirs["preds"], rtol=1e-5, atol=1e-6)
    assert int(ours["top"]) == int(theirs["top"])
    for key in ("grads", "igrads"):
        assert ours[key].shape == (24, 24, 3) and np.abs(theirs[key]).max() > 0
        np.testing.assert_allclose(ours[key], theirs[key], atol=1e-5 * np.abs(theirs[key]).max(), err_msg=key)
    assert np.abs(ours["overlay"] - theirs["overlay"]).max() <= 1
