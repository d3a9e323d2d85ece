"""keras.io "Neural style transfer" (``generative_programs.neural_style_transfer``) under TensorFlow and
onnxforge: images read with ``load_img(target_size=...)`` / ``img_to_array`` / ``vgg19.preprocess_input``, a
feature extractor made from a VGG-shaped network's layer outputs as a dict (a small seeded network with
VGG19's layer names and any-size input instead of ImageNet's VGG19), Gram-matrix style losses, content and
total variation losses (``tf.pow(a + b, 1.25)``), a ``@tf.function`` that takes the loss's gradient with
respect to a ``tf.Variable`` image, and SGD with an ``ExponentialDecay`` schedule updating that image through
``apply_gradients([(grads, combination_image)])``; every tenth image saved with ``save_img``.

Tolerance: nothing random, the same weights: the preprocessed image to float32 rounding, the first
gradient (entries ~1e-5 to 5e-4) to rtol 1e-4, twenty losses to rtol 1e-5 and the final image to 1e-3
(pixel values of +-150 after twenty steps of learning rate ~100), and the saved PNG to one grey level
where the rounding of a value at .5 may go either way.
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
    return tf_oracle.start("generative_programs", ["neural_style_transfer"],
                           tmp_path_factory.mktemp("style") / "tf.npz")


def test_style_transfer_gradient_descent_on_an_image_variable_matches_tensorflow(oracle):
    ours = generative_programs.neural_style_transfer(tf, keras)
    theirs = oracle.results("neural_style_transfer")
    assert sorted(ours) == sorted(theirs)
    np.testing.assert_allclose(ours["base"], theirs["base"], rtol=1e-6, atol=1e-4, err_msg="preprocessed image")
    np.testing.assert_allclose(ours["first_grads"], theirs["first_grads"], rtol=1e-4, atol=1e-9,
                               err_msg="d loss / d image")
    np.testing.assert_allclose(ours["losses"], theirs["losses"], rtol=1e-5, err_msg="losses")
    assert ours["losses"][-1] < ours["losses"][0]
    np.testing.assert_allclose(ours["final"], theirs["final"], atol=1e-3, err_msg="final image")
    assert np.abs(ours["final"] - ours["base"]).max() > 0.5, "the image variable was updated"
    assert ours["saved"].shape == (32, 40, 3)
    assert np.abs(ours["saved"] - theirs["saved"]).max() <= 1
