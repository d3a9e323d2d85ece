"""keras.io examples whose models take strings (``string_programs.py``), under onnxforge and under real Keras 3
on TensorFlow (``tf_oracle.py``; Keras on torch has no string tensors):

- "Structured data learning with Wide, Deep, and Cross networks" (covertype): CSV files through
  ``make_csv_dataset``, scalar ``float32`` / ``string`` Inputs, StringLookup to multi-hot (wide) or to indices
  into an Embedding (deep), the cross layers ``x0 * Dense(x) + cross`` on KerasTensors; the baseline, wide &
  deep and deep & cross models each trained, evaluated, saved and reloaded (the baseline
  model, made of the same layers, is left out for time).
- "Text classification from scratch" (IMDB): review files through ``text_dataset_from_directory`` with a
  validation split, a TextVectorization whose ``standardize`` is a function of ``tf.strings.lower`` and
  ``tf.strings.regex_replace``, adapted on ``dataset.map(lambda x, y: x)`` and applied in ``Dataset.map``; a
  Conv1D / GlobalMaxPooling1D model on the indices; then the end-to-end model taking raw strings.

Differences from the pages, for a deterministic comparison: no shuffling (``shuffle=False``, the pages shuffle
with tf.data's own random stream), Dropout at rate 0, weights set from their shapes, small synthetic files.

Tolerance: before training the two frameworks compute the same float32 numbers (1e-5). Training uses Adam,
whose step ``lr * m / (sqrt(v) + eps)`` turns float32 noise in near-zero gradients (saturated softmax rows of
the untrained wide and cross parts) into steps of up to ``lr``; with SGD the same models agree to 1e-7 after
several steps (checked while writing this test). So after two epochs losses are compared within 1e-3, predictions
within 5e-3, and accuracies within two samples.
"""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as tf
import onnxforge.keras as keras

from . import string_programs, tf_oracle

PROGRAMS = ["wide_deep_cross", "text_classification_from_scratch"]


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    tf_oracle.skip_without_tensorflow()
    pytest.importorskip("pandas")
    return tf_oracle.start("string_programs", PROGRAMS, tmp_path_factory.mktemp("strings") / "tf.npz")


def compare(ours, theirs, samples):
    assert sorted(ours) == sorted(theirs)
    for key in sorted(ours):
        got, want = np.asarray(ours[key]), theirs[key]
        if want.dtype.kind not in "fc":   # vocabularies, token ids
            np.testing.assert_array_equal(got, want, err_msg=key)
        elif key.endswith("before"):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=key)
        elif "evaluate" in key or key == "history":   # [loss, accuracy] rows
            np.testing.assert_allclose(got, want, rtol=1e-3, atol=max(1e-3, 2.0 / samples), err_msg=key)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-3, atol=5e-3, err_msg=key)


def test_wide_deep_cross_matches_tensorflow(oracle):
    compare(string_programs.wide_deep_cross(tf, keras), oracle.results("wide_deep_cross"), samples=80)


def test_text_classification_from_scratch_matches_tensorflow(oracle):
    compare(string_programs.text_classification_from_scratch(tf, keras),
            oracle.results("text_classification_from_scratch"), samples=24)
