"""``keras.layers.Hashing`` against Keras 3 (which hashes with TensorFlow on the CPU whatever its backend): the
same bins for strings, integers and floats, FarmHash and salted SipHash, mask values and every output mode; the
layer in a data pipeline and in FeatureSpace's hashed features; inside a compiled model it is refused clearly.
"""
from __future__ import annotations

import numpy as np
import pytest

from onnxforge.layers.preprocessing.hashing import hash_buckets, siphash24

from .common import fkeras, keras

pytest.importorskip("tensorflow")   # Keras's Hashing needs it

_RNG = np.random.default_rng(0)
WORDS = np.array([["".join(_RNG.choice(list("abcdéfgh"), size=_RNG.integers(0, 19))) for _ in range(3)]
                  for _ in range(12)])
INTS = _RNG.integers(-1000, 10 ** 12, size=(12, 3))
FLOATS = _RNG.normal(size=(12, 3)) * 100


_DATA = {"words": WORDS, "ints": INTS, "floats": FLOATS, "column": WORDS[:, :1], "row": INTS[0]}
_KWARGS = [dict(num_bins=7), dict(num_bins=7, salt=133), dict(num_bins=7, salt=[12345678901, 987]),
           dict(num_bins=5, mask_value=""), dict(num_bins=3, mask_value=0), dict(num_bins=5, output_mode="multi_hot"),
           dict(num_bins=5, output_mode="count"), dict(num_bins=5, output_mode="one_hot")]


def _meaningful(kwargs: dict, values: np.ndarray) -> bool:
    """A string mask for strings, an integer one for numbers; one_hot of one value per sample."""
    if "mask_value" in kwargs and isinstance(kwargs["mask_value"], str) != (values.dtype.kind == "U"):
        return False
    return not (kwargs.get("output_mode") == "one_hot" and values.ndim == 2 and values.shape[-1] != 1)


@pytest.mark.parametrize("kwargs,data", [(k, d) for k in _KWARGS for d in _DATA if _meaningful(k, _DATA[d])])
def test_bins_and_encodings_equal_keras(kwargs, data):
    values = _DATA[data]
    want = keras.ops.convert_to_numpy(keras.layers.Hashing(**kwargs)(values))
    got = fkeras.layers.Hashing(**kwargs)(values).numpy()
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_siphash_reference_vector_and_tensorflow_strong_buckets():
    import tensorflow as tf

    # The SipHash paper's test vector: key 00..0f, message 00..0e.
    assert siphash24((0x0706050403020100, 0x0F0E0D0C0B0A0908), bytes(range(15))) == 0xA129CA6149BE45E5
    words = WORDS.ravel()
    np.testing.assert_array_equal(hash_buckets(words, 1000, (3, 2 ** 62 + 5)),
                                  tf.strings.to_hash_bucket_strong(words, 1000, [3, 2 ** 62 + 5]).numpy())
    np.testing.assert_array_equal(hash_buckets(words, 1000), tf.strings.to_hash_bucket_fast(words, 1000).numpy())
    import onnxforge

    grid = WORDS[:4]
    np.testing.assert_array_equal(onnxforge.strings.to_hash_bucket_fast(grid, 9).numpy(),
                                  tf.strings.to_hash_bucket_fast(grid, 9).numpy())
    np.testing.assert_array_equal(onnxforge.strings.to_hash_bucket_strong(grid, 9, [7, 11]).numpy(),
                                  tf.strings.to_hash_bucket_strong(grid, 9, [7, 11]).numpy())
    with pytest.raises(TypeError, match="to_hash_bucket_fast"):
        onnxforge.strings.to_hash_bucket_fast(np.arange(3), 9)


def test_config_and_argument_errors_as_keras():
    assert fkeras.layers.Hashing(num_bins=3, salt=133, name="h").get_config() == \
        keras.layers.Hashing(num_bins=3, salt=133, name="h").get_config()
    for kwargs in (dict(num_bins=0), dict(num_bins=3, output_mode="tf_idf"), dict(num_bins=3, salt="x"),
                   dict(num_bins=3, sparse=True), dict(num_bins=3, dtype="float32")):
        with pytest.raises(ValueError) as want:
            keras.layers.Hashing(**kwargs)
        with pytest.raises(ValueError) as got:
            fkeras.layers.Hashing(**kwargs)
        assert str(got.value) == str(want.value)


def test_in_a_data_pipeline_and_refused_inside_a_model():
    layer = fkeras.layers.Hashing(num_bins=4, name="tags")
    import onnxforge as tf

    pairs = tf.data.Dataset.from_tensor_slices((WORDS[:, 0], np.arange(12))).batch(4).map(lambda x, y: (layer(x), y))
    got = np.concatenate([np.asarray(x) for x, _ in pairs])
    np.testing.assert_array_equal(got, keras.ops.convert_to_numpy(keras.layers.Hashing(num_bins=4)(WORDS[:, 0])))
    inputs = fkeras.Input((1,), dtype="string")
    outputs = layer(inputs)
    assert tuple(outputs.shape) == (None, 1) and outputs.dtype == "int64"
    model = fkeras.Model(inputs, outputs)
    with pytest.raises(NotImplementedError, match="Hashing 'tags'.*data pipeline"):
        model.predict(WORDS[:, :1], verbose=0)


def test_feature_space_hashed_features():
    space = fkeras.utils.FeatureSpace(features={"s": fkeras.utils.FeatureSpace.string_hashed(num_bins=8),
                                                "i": fkeras.utils.FeatureSpace.integer_hashed(num_bins=4)})
    data = {"s": WORDS[:, 0], "i": (np.arange(12) % 5).astype("int32")}
    space.adapt({k: v for k, v in data.items()})
    encoded = np.asarray(space(data))
    want_s = keras.ops.convert_to_numpy(keras.layers.Hashing(num_bins=8, output_mode="one_hot")(WORDS[:, 0]))
    want_i = keras.ops.convert_to_numpy(keras.layers.Hashing(num_bins=4, output_mode="one_hot")(data["i"]))
    np.testing.assert_array_equal(encoded, np.concatenate([want_i, want_s], axis=-1))
    assert tuple(space.get_encoded_features().shape) == (None, 12)
