"""keras.io "CycleGAN" (``generative_programs.cyclegan``) under TensorFlow and onnxforge: a tf.data pipeline
with random flips and crops zipped over two domains, ``ReflectionPadding2D`` (``tf.pad`` REFLECT), instance
normalization as ``GroupNormalization(groups=-1)``, two ResNet generators and two PatchGAN discriminators in
a ``CycleGan(keras.Model)`` whose ``call`` returns four outputs while its ``train_step`` unpacks
``(horses, zebras)`` batches, takes four gradients from one persistent ``GradientTape`` and applies them with
four Adam optimizers; a PNG-saving monitor, per-epoch ``ModelCheckpoint(save_weights_only=True)`` and
``load_weights`` into a second model.

Tolerance: the program is deterministic here (mirror-symmetric images make the random flip a no-op, the
crop takes the whole image, a shuffle buffer of 1) and both start from the same seeded weights, so the
eight steps' losses and the generators' outputs agree to float32 order: rtol 1e-4 on the first outputs;
after eight Adam steps through six generator passes per step, 1e-3 on losses and 2e-3 absolute on
images (observed 1e-4 and 1e-4). The reloaded model equals the trained one in each framework (to 1e-5:
onnxforge's eager programs for the two models differ in float32 order by ~4e-6).
TensorFlow runs the step eagerly (``run_eagerly``: its trace alone takes over a minute on this CPU).
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
    return tf_oracle.start("generative_programs", ["cyclegan"], tmp_path_factory.mktemp("cyclegan") / "tf.npz")


def test_cyclegan_persistent_tape_four_optimizers_match_tensorflow(oracle):
    ours = generative_programs.cyclegan(tf, keras)
    theirs = oracle.results("cyclegan")
    assert sorted(ours) == sorted(theirs)
    np.testing.assert_allclose(ours["before"], theirs["before"], rtol=1e-4, atol=1e-5, err_msg="before")
    assert ours["losses"].shape == (8, 4)
    np.testing.assert_allclose(ours["losses"], theirs["losses"], rtol=1e-3, err_msg="G, F, D_X, D_Y losses")
    for key in ("monitor", "after", "restored", "disc", "restored_disc"):
        np.testing.assert_allclose(ours[key], theirs[key], atol=2e-3, err_msg=key)
    for run in (ours, theirs):
        np.testing.assert_allclose(run["restored"], run["after"], atol=1e-5)
        np.testing.assert_allclose(run["restored_disc"], run["disc"], atol=1e-5)
        assert np.abs(run["after"] - run["before"]).max() > 1e-2, "training moved the generator"
        assert int(run["pngs"]) == 4
