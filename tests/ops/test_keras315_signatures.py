"""Keras 3.15 keywords of ``keras.ops`` that onnxforge lacked (``tests/keras_oracle/signature_diff.py``):
``one_hot(sparse=)``, ``multi_hot(num_classes=None, num_tokens=)``, ``convert_to_tensor(ragged=)``, compared with
Keras 3 (torch backend)."""
from __future__ import annotations

import numpy as np
import pytest

from tests.keras_oracle.common import fkeras, keras

LABELS = np.array([[0, 2], [1, 1], [3, 0]])


def test_one_hot_takes_sparse():
    want = keras.ops.convert_to_numpy(keras.ops.one_hot(LABELS[:, 0], 4, sparse=False))
    np.testing.assert_array_equal(np.asarray(fkeras.ops.one_hot(LABELS[:, 0], 4, sparse=False)), want)


def test_multi_hot_num_tokens_and_missing_num_classes():
    want = keras.ops.convert_to_numpy(keras.ops.multi_hot(LABELS, num_tokens=5))
    np.testing.assert_array_equal(np.asarray(fkeras.ops.multi_hot(LABELS, num_tokens=5)), want)
    np.testing.assert_array_equal(np.asarray(fkeras.ops.nn.multi_hot(LABELS, 5)), want)
    for api in (keras, fkeras):
        with pytest.raises(ValueError, match="num_classes"):
            api.ops.multi_hot(LABELS)


def test_convert_to_tensor_takes_ragged():
    got = fkeras.ops.convert_to_tensor([[1.0, 2.0]], ragged=False)
    np.testing.assert_array_equal(np.asarray(got), keras.ops.convert_to_numpy(
        keras.ops.convert_to_tensor([[1.0, 2.0]], ragged=False)))
