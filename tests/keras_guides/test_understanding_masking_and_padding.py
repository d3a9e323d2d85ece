"""keras.io's "Understanding masking & padding": ``pad_sequences``, the masks of ``Embedding(mask_zero=True)``
and ``Masking``, a mask passed by hand to an LSTM, ``compute_mask`` in custom layers (splitting a mask,
making one from ids), opting in to propagation with ``supports_masking``, a custom layer that drops the mask,
and a mask consumer (``call(..., mask=None)``).
"""
from __future__ import annotations

import numpy as np

from tests.keras_examples.harness import assert_close, run_both, to_numpy

IDS = np.array([[1, 2, 0, 0], [3, 4, 5, 0]], "int32")


def _flat(prefix, value) -> dict:
    return {f"{prefix}_{i}": float(v) for i, v in enumerate(to_numpy(value).astype("float64").ravel())}


def padding_and_masks(keras_api, data, init):
    layers, ops = keras_api.layers, keras_api.ops
    raw = [[711, 632, 71], [73, 8, 3215, 55, 927], [83, 91, 1, 645, 1253, 927]]
    out = _flat("post", keras_api.utils.pad_sequences(raw, padding="post"))
    out.update(_flat("pre", keras_api.utils.pad_sequences(raw, maxlen=4, truncating="post", value=-1)))
    padded = keras_api.utils.pad_sequences(raw, padding="post")
    out.update(_flat("emb", layers.Embedding(input_dim=5000, output_dim=4, mask_zero=True)(padded)._keras_mask))
    tiled = ops.cast(ops.tile(ops.expand_dims(padded, axis=-1), [1, 1, 3]), dtype="float32")
    masked = layers.Masking()(tiled)
    out.update(_flat("masking", masked._keras_mask))

    class TemporalSplit(layers.Layer):
        def call(self, inputs):
            return ops.split(inputs, 2, axis=1)

        def compute_mask(self, inputs, mask=None):
            return None if mask is None else ops.split(mask, 2, axis=1)

    first, second = TemporalSplit()(masked)
    out.update(_flat("first", first._keras_mask))
    out.update(_flat("second", second._keras_mask))

    class CustomEmbedding(layers.Layer):
        def __init__(self, input_dim, output_dim, mask_zero=False, **kwargs):
            super().__init__(**kwargs)
            self.input_dim, self.output_dim, self.mask_zero = input_dim, output_dim, mask_zero

        def build(self, input_shape):
            self.embeddings = self.add_weight(shape=(self.input_dim, self.output_dim), initializer="random_normal")

        def call(self, inputs):
            return ops.take(self.embeddings, ops.cast(inputs, "int32"))

        def compute_mask(self, inputs, mask=None):
            return ops.not_equal(inputs, 0) if self.mask_zero else None

    custom = CustomEmbedding(10, 3, mask_zero=True)
    y = custom(IDS)
    out.update(_flat("custom", custom.compute_mask(IDS)))
    out.update(_flat("custom_out", y._keras_mask))
    return out


def test_padding_and_mask_generation_match_keras():
    want, got = run_both(padding_and_masks, None, copy_weights=False)
    assert_close(want, got, rtol=0)


def mask_consumers(keras_api, data, init):
    layers, ops = keras_api.layers, keras_api.ops

    class MyLayer(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.embedding = layers.Embedding(input_dim=20, output_dim=4, mask_zero=True)
            self.lstm = layers.LSTM(3)

        def call(self, inputs):
            x = self.embedding(inputs)
            return self.lstm(x, mask=self.embedding.compute_mask(inputs))

    class MyActivation(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.supports_masking = True

        def call(self, inputs):
            return ops.relu(inputs)

    class NoMask(layers.Layer):
        def call(self, inputs):
            return ops.relu(inputs)

    class TemporalSoftmax(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.supports_masking = True

        def call(self, inputs, mask=None):
            float_mask = ops.expand_dims(ops.cast(mask, "float32"), -1)
            inputs_exp = ops.exp(inputs) * float_mask
            return inputs_exp / ops.sum(inputs_exp * float_mask, axis=1, keepdims=True)

    by_hand = MyLayer()
    by_hand(IDS)
    init(by_hand)
    out = _flat("by_hand", by_hand(IDS))
    out.update(_flat("by_hand_cut", by_hand(IDS[:1, :2])))
    for tag, middle in (("kept", MyActivation), ("dropped", NoMask)):
        inputs = keras_api.Input(shape=(None,), dtype="int32")
        x = middle()(layers.Embedding(input_dim=20, output_dim=4, mask_zero=True)(inputs))
        out[f"{tag}_has_mask"] = float(getattr(x, "_keras_mask", None) is not None)
        model = keras_api.Model(inputs, layers.LSTM(3)(x))
        init(model)
        out.update(_flat(tag, model(IDS)))
    inputs = keras_api.Input(shape=(None,), dtype="int32")
    x = layers.Dense(1)(layers.Embedding(input_dim=10, output_dim=4, mask_zero=True)(inputs))
    model = keras_api.Model(inputs, TemporalSoftmax()(x))
    init(model)
    out.update(_flat("softmax", model(np.array([[1, 2, 3, 0], [3, 4, 0, 0]]))))
    return out


def test_mask_consumers_and_propagation_match_keras():
    want, got = run_both(mask_consumers, None, copy_weights=True)
    assert got["kept_has_mask"] == 1.0 and got["dropped_has_mask"] == 0.0
    assert_close(want, got, rtol=1e-5, atol=1e-6)
