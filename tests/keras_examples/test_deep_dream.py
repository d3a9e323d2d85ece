"""keras.io "Deep Dream" (``generative_programs.deep_dream``) under TensorFlow and onnxforge: ``load_img`` and
``inception_v3.preprocess_input``, a feature extractor over four ``get_layer("mixedN")`` outputs as a dict
(a small seeded any-size network with InceptionV3's mixed-layer names instead of ImageNet's InceptionV3), a
loss on the activations' interior scaled by ``reduce_prod(cast(shape(...)))``, a ``@tf.function`` ascent
step that watches the image tensor and divides the gradient by its mean magnitude, run on three octave
sizes (a trace per size), ``tf.image.resize`` between octaves with the lost detail added back, and the
page's ``deprocess_image`` writing into ``img.numpy()`` in place before ``save_img``.

Tolerance: nothing random, the same weights: losses to rtol 1e-4, the dreamed image to 1e-4 absolute
(values within +-3 after fourteen steps of 0.01 times a unit-mean gradient), the saved PNG to one grey level.
``dream`` is read after ``deprocess_image`` ran on ``img.numpy()``: it must still be the image, not its
deprocessed pixels (onnxforge's ``numpy()`` was a view of the tensor).
"""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as tf
import onnxforge.keras as keras

from . import generative_programs, tf_oracle


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    tf_oracle.skip_without_tensorflow()
    return tf_oracle.start("generative_programs", ["deep_dream"], tmp_path_factory.mktemp("dream") / "tf.npz")


def test_deep_dream_octaves_of_gradient_ascent_match_tensorflow(oracle):
    ours = generative_programs.deep_dream(tf, keras)
    theirs = oracle.results("deep_dream")
    assert sorted(ours) == sorted(theirs)
    np.testing.assert_array_equal(ours["shapes"], [[20, 26], [28, 37], [40, 52]])
    np.testing.assert_array_equal(ours["shapes"], theirs["shapes"])
    np.testing.assert_allclose(ours["original"], theirs["original"], atol=1e-6)
    assert ours["losses"].shape == theirs["losses"].shape == (14,)   # the last step passed max_loss: break
    np.testing.assert_allclose(ours["losses"], theirs["losses"], rtol=1e-4, err_msg="losses")
    assert ours["losses"][4] > ours["losses"][0], "gradient ascent raises the loss"
    np.testing.assert_allclose(ours["dream"], theirs["dream"], atol=1e-4, err_msg="dreamed image")
    assert np.abs(ours["dream"]).max() < 10.0, "the image (~[-3, 3]), not its deprocessed pixels (0-255)"
    assert np.abs(ours["saved"] - theirs["saved"]).max() <= 1
