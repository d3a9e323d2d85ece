"""keras.io "Review Classification using Active Learning" (``nlp_programs.active_learning``) under onnxforge
and under Keras 3 on TensorFlow, whose ``tf.data`` pipeline it uses throughout: stratified splits joined with
``tf.concat``, ``Dataset.from_tensor_slices`` pools whose single reviews a ``TextVectorization`` (a
``tf.strings`` standardization) vectorizes in ``map`` before batching, a Bidirectional LSTM classifier with
BinaryAccuracy / FalseNegatives / FalsePositives, ``ModelCheckpoint(save_best_only=True)`` to a legacy
``.h5`` file and EarlyStopping, then rounds that sample the pools in the ratio of the test set's false
negatives and positives (``take`` / ``skip`` / ``concatenate``, ``cache().shuffle().batch()``), recompile,
fit and reload the best checkpoint.

Tolerance: the same seeded weights, but the page shuffles every round's training set and keeps its Dropout
0.5, each drawn differently by each framework, and the sampled counts follow each run's own errors. So the
splits, vocabulary, epoch counts and the logged metric names must be the same; the learning in a band: both
reach a final test accuracy of 0.85 or more (seen: 1.0 in both), the last validation loss is under 0.4 (seen
0.04-0.2) and the training sets grew by the sampling size give or take the rounding of the ratios.
"""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as tf
import onnxforge.keras as keras

from . import nlp_programs, tf_oracle


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    tf_oracle.skip_without_tensorflow()
    return tf_oracle.start("nlp_programs", ["active_learning"], tmp_path_factory.mktemp("al") / "tf.npz")


def test_active_learning(oracle):
    ours = nlp_programs.active_learning(tf, keras)
    theirs = oracle.results("active_learning")
    print({k: (ours[k], theirs[k]) for k in ("final_keys", "final", "sampled_sizes", "evaluations", "val_losses")})
    assert sorted(ours) == sorted(theirs)
    np.testing.assert_array_equal(ours["sizes"], theirs["sizes"])
    assert ours["vocabulary"].tolist() == theirs["vocabulary"].tolist()
    assert ours["final_keys"].tolist() == theirs["final_keys"].tolist()
    for key in ("losses", "val_losses", "accuracies", "val_accuracies"):
        assert len(ours[key]) == len(theirs[key]) == 10, key
    for side in (ours, theirs):
        final = dict(zip(side["final_keys"].tolist(), side["final"].tolist()))
        assert final["binary_accuracy"] >= 0.85
        assert side["val_losses"][-1] < 0.4
        assert side["losses"][-1] < side["losses"][0]
        grown = np.diff(np.concatenate([[60], side["sampled_sizes"]]))
        assert ((grown >= 39) & (grown <= 40)).all(), grown
