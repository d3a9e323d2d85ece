"""keras.io "Zero-DCE for low-light image enhancement" (``vision_programs.zero_dce``) under TensorFlow and
onnxforge: PNG files read by a ``tf.data`` pipeline (``tf.io.read_file``, ``tf.image.decode_png``,
``tf.image.resize``), the DCE-Net (seven convolutions with skip concatenations, tanh curve maps) inside a
``ZeroDCE(keras.Model)`` whose ``compile`` takes a learning rate and sets its own Adam, eight curve iterations
in ``get_enhanced_image``, four zero-reference losses (``tf.shape`` arithmetic, ``tf.nn.avg_pool2d``, a
``keras.losses.Loss`` subclass with ``reduction="none"`` convolving with constant kernels via ``tf.nn.conv2d``),
``train_step`` / ``test_step`` returning a dict of losses, ``fit`` with validation data, then inference on a
PIL image (``keras.utils.img_to_array``, ``tf.cast`` to uint8, ``Image.fromarray``).

Tolerance: same seeded weights and the same PNG files, no randomness. The decoded, resized batch is
TensorFlow's exactly (seen: equal); the untrained model's enhancement agrees to 1e-5 (seen 1e-7); after two
epochs of Adam (4 steps, lr 1e-3) the loss histories agree to 1e-4 relative (seen 3e-6) and the trained
enhancement to 1e-5 absolute (seen 9e-8); the uint8 enhanced image within one level (seen equal; a value on
a rounding edge may land on either side).
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
    return tf_oracle.start("vision_programs", ["zero_dce"], tmp_path_factory.mktemp("zero_dce") / "tf.npz")


def test_zero_dce_matches_tensorflow(oracle):
    ours = vision_programs.zero_dce(tf, keras)
    theirs = oracle.results("zero_dce")
    assert sorted(ours) == sorted(theirs)
    assert ours["batch"].shape == (4, 32, 32, 3)
    np.testing.assert_allclose(ours["batch"], theirs["batch"], atol=1e-6, err_msg="decoded, resized images")
    np.testing.assert_allclose(ours["before"], theirs["before"], rtol=1e-5, atol=1e-5, err_msg="before training")
    history = [k for k in ours if k.startswith("history_")]
    assert len(history) == 10   # five losses, each also on the validation data
    for key in history:
        assert ours[key].shape == (2,)
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-4, atol=1e-9, err_msg=key)
    np.testing.assert_allclose(ours["after"], theirs["after"], atol=1e-5, err_msg="after training")
    assert np.abs(ours["after"] - ours["before"]).max() > 1e-3, "training moved the curves"
    assert ours["enhanced"].dtype == np.uint8 and ours["enhanced"].shape == (36, 40, 3)
    assert np.abs(ours["enhanced"].astype(int) - theirs["enhanced"].astype(int)).max() <= 1
