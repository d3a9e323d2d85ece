"""keras.io "Denoising Diffusion Implicit Models" (``generative_programs.ddim``), under TensorFlow and onnxforge:
a tf.data pipeline (center crop, antialiased ``tf.image.resize``, cache / repeat / shuffle / batch /
prefetch) adapted into a ``Normalization`` layer, a U-Net with a sinusoidal-embedding ``Lambda`` (registered
serializable, as ``clone_model`` needs), ``clone_model`` for the EMA network, a ``DiffusionModel`` with its
own ``train_step`` (``GradientTape``, AdamW) and ``test_step`` (reverse diffusion inside the step), EMA
weights written with ``assign`` after every step, a ``KID`` metric that feeds an inner ``Mean``, a
``LambdaCallback`` generating images, ``ModelCheckpoint(save_weights_only, save_best_only, monitor="val_kid")``
and ``load_weights``. KID's encoder is a small seeded conv net instead of ImageNet's InceptionV3 (weights
we cannot fetch, seconds per call); the rest of the metric is the page's.

Tolerance: from the same seeded weights, the pipeline's first image, the adapted mean and variance, the
network, the embedding, a three-step reverse diffusion and KID on fixed images are the same computation
in both (rtol 1e-4; the reverse diffusion divides by signal rates down to 0.02, so 1e-3 there, and the
embedding's sines of arguments up to 5e3 radians carry float32 rounding of ~3e-4). Training draws noise
and diffusion times from each framework's generator: over four seeds (onnxforge) and three (TensorFlow)
the second epoch's noise loss lay in 1.31-1.35, the first's in 1.67-1.85, validation noise loss in
2.5-3.2, val_kid in 0.38-0.49 and the generated images' mean in 0.69-0.74; the bands are those spreads.
Within each run, exact properties: the EMA weights equal the recurrence over the weights each step left
(5e-6), and ``load_weights`` restores the checkpointed epoch's EMA weights exactly.
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
    return tf_oracle.start("generative_programs", ["ddim"], tmp_path_factory.mktemp("ddim") / "tf.npz")


def test_ddim_train_step_ema_and_sampling_match_tensorflow(oracle):
    ours = generative_programs.ddim(tf, keras)
    theirs = oracle.results("ddim")
    assert sorted(ours) == sorted(theirs)

    def same(key, rtol=1e-4, atol=1e-5):
        np.testing.assert_allclose(ours[key], theirs[key], rtol=rtol, atol=atol, err_msg=key)

    same("first_image", 1e-5, 1e-6)
    same("norm_mean", 1e-5)
    same("norm_variance", 1e-4)
    same("network", atol=1e-4)
    same("embedding", atol=1e-3)
    same("reverse", 1e-3, 1e-2)
    same("kid_fixed")

    for run in (ours, theirs):
        assert int(run["steps"]) == 12
        assert float(run["ema_error"]) < 5e-6 and float(run["ema_moved"]) > 1e-3
        assert float(run["loaded_error"]) == 0.0
        assert run["plotted"].shape == (2, 6, 16, 16, 3)
        assert 0.0 <= run["plotted"].min() and run["plotted"].max() <= 1.0
        assert np.isfinite(run["i_loss"]).all() and (run["i_loss"] > 0).all()
        assert run["n_loss"][1] < run["n_loss"][0]

    def band(key, width, value=lambda r: r):
        a, b = np.asarray(value(ours[key])), np.asarray(value(theirs[key]))
        assert np.all(np.abs(a - b) <= width), f"{key}: onnxforge {a} vs tensorflow {b} (band {width})"

    band("n_loss", np.array([0.25, 0.1]))
    band("val_n_loss", 0.8)
    band("val_kid", 0.12)
    band("plotted", 0.08, np.mean)
