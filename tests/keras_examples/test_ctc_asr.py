"""keras.io "Automatic Speech Recognition using CTC" (``asr_programs.py``) under onnxforge and under real Keras 3
on TensorFlow (``tf_oracle.py``): the wav / STFT / StringLookup pipeline with ``padded_batch``, the CTC loss
through ``tf.keras.backend.ctc_batch_cost``, a Conv2D + Bidirectional GRU model trained two epochs, and greedy
``ctc_decode`` back to text; the model saved with its loss function and reloaded, and Keras's file loaded here.

Tolerance: same weights, no Dropout, no shuffling: the same float32 computation. Spectrograms within 1e-4 (an FFT
against TensorFlow's, then a per-frame normalization), predictions within 1e-5 and losses within 1e-4 relative
(observed 3e-8 and 2e-7); token ids, targets and decoded texts equal.
"""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as tf
import onnxforge.keras as keras

from . import asr_programs, tf_oracle


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    tf_oracle.skip_without_tensorflow()
    return tf_oracle.start("asr_programs", ["ctc_asr"], tmp_path_factory.mktemp("asr") / "tf.npz")


def test_ctc_asr_matches_tensorflow(oracle):
    ours = asr_programs.ctc_asr(tf, keras)
    theirs = oracle.results("ctc_asr")
    assert sorted(ours) == sorted(theirs)
    for key in ["labels", "targets", "texts"]:   # ("path": each framework's own file)
        np.testing.assert_array_equal(np.asarray(ours[key]), theirs[key], err_msg=key)
    np.testing.assert_allclose(ours["spectrograms"], theirs["spectrograms"], atol=1e-4, err_msg="spectrograms")
    for key in ["before", "after", "reloaded"]:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-4, atol=1e-5, err_msg=key)
    np.testing.assert_allclose(ours["history"], theirs["history"], rtol=1e-4, err_msg="history")
    np.testing.assert_allclose(ours["reloaded"], ours["after"], rtol=1e-6, atol=1e-7, err_msg="onnxforge reload")
    # Keras's file (the loss function saved by name) loads here and predicts as Keras's reloaded model
    def CTCLoss(y_true, y_pred):   # noqa: N802 - the page's name, which the file refers to
        raise AssertionError("not called by predict")

    loaded = keras.models.load_model(str(theirs["path"]), custom_objects={"CTCLoss": CTCLoss})
    np.testing.assert_allclose(loaded.predict(theirs["spectrograms"], verbose=0), theirs["reloaded"], rtol=1e-4,
                               atol=1e-5, err_msg="Keras's file")
