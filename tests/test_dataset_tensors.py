"""Dataset elements behave like tf.data's tensors: ``.numpy()`` works on them (keras.io's weather forecast and
text classification print ``inputs.numpy().shape`` from ``for batch in ds.take(1)``), with Keras's values."""
from __future__ import annotations

import numpy as np
import pytest

from tests.keras_oracle.common import fkeras, keras


def test_timeseries_batches_have_numpy_like_keras():
    pytest.importorskip("tensorflow")
    data = np.arange(60, dtype="float32").reshape(30, 2)
    targets = np.arange(30, dtype="float32")[:, None]
    got = []
    for k in (keras, fkeras):
        ds = k.utils.timeseries_dataset_from_array(data, targets, sequence_length=4, sampling_rate=2, batch_size=5)
        for x, y in ds.take(1):
            got.append((x.numpy(), y.numpy()))
    np.testing.assert_array_equal(got[1][0], got[0][0])
    np.testing.assert_array_equal(got[1][1], got[0][1])
    assert type(got[1][0]) is np.ndarray


def test_as_numpy_iterator_gives_plain_arrays_and_structures_keep_numpy():
    ds = fkeras.utils.Dataset.from_tensor_slices({"a": np.arange(4.0), "b": np.arange(4)}).batch(2)
    first = next(iter(ds))
    assert first["a"].numpy().tolist() == [0.0, 1.0] and first["b"].numpy().dtype == np.arange(1).dtype
    plain = next(ds.as_numpy_iterator())
    assert type(plain["a"]) is np.ndarray
