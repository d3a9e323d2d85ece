"""RepeatVector, Cropping/ZeroPadding/UpSampling in 1-D and 3-D, Identity, Dot and the lowercase merge
functions against real Keras 3 (torch backend): outputs, configs and one training step."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
pytest.importorskip("keras")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

from tests.layers.keras_parity import check_layer_parity  # noqa: E402

R = np.random.default_rng(1)


def _single(layer_fn, shape, dense=True):
    """Input -> layer -> (Dense, so the step has weights and gradients flow through the layer)."""
    def make(keras):
        x = keras.Input(shape)
        y = layer_fn(keras.layers)(x)
        return keras.Model(x, keras.layers.Dense(2)(y) if dense else y)
    return make


CASES = {
    "repeat_vector": (lambda L: L.RepeatVector(3), (4,)),
    "cropping1d": (lambda L: L.Cropping1D((1, 2)), (6, 3)),
    "cropping2d": (lambda L: L.Cropping2D(((1, 0), (2, 1))), (5, 6, 2)),
    "cropping2d_first": (lambda L: L.Cropping2D(1, data_format="channels_first"), (2, 5, 6)),
    "cropping3d": (lambda L: L.Cropping3D(((1, 0), (0, 1), (1, 1))), (3, 4, 5, 2)),
    "zero_padding1d": (lambda L: L.ZeroPadding1D((2, 1)), (4, 3)),
    "zero_padding3d": (lambda L: L.ZeroPadding3D(((1, 0), (0, 2), (1, 1))), (2, 3, 2, 2)),
    "up_sampling1d": (lambda L: L.UpSampling1D(3), (4, 3)),
    "up_sampling3d": (lambda L: L.UpSampling3D((2, 1, 3)), (2, 3, 2, 2)),
    "up_sampling3d_first": (lambda L: L.UpSampling3D(2, data_format="channels_first"), (2, 2, 3, 2)),
    "identity": (lambda L: L.Identity(), (4,)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_reshaping_layer_matches_keras_and_passes_gradients(name):
    factory, shape = CASES[name]
    check_layer_parity(_single(factory, shape), R.normal(size=(3, *shape)).astype("float32"), train=True)


@pytest.mark.parametrize("axes,normalize,shapes", [
    (1, False, [(4,), (4,)]),
    (1, True, [(4,), (4,)]),
    ((2, 2), False, [(3, 4), (5, 4)]),
    ((1, 2), True, [(3, 4), (5, 3)]),
    (-1, False, [(2, 3, 4), (4,)]),
])
def test_dot_matches_keras(axes, normalize, shapes):
    def make(keras):
        a, b = keras.Input(shapes[0]), keras.Input(shapes[1])
        d = keras.layers.Dot(axes=axes, normalize=normalize)([keras.layers.Dense(shapes[0][-1])(a), b])
        return keras.Model([a, b], d)
    check_layer_parity(make, [R.normal(size=(3, *s)).astype("float32") for s in shapes], train=True)


@pytest.mark.parametrize("fn,kwargs", [("add", {}), ("subtract", {}), ("multiply", {}), ("average", {}),
                                       ("maximum", {}), ("minimum", {}), ("concatenate", {"axis": 1}),
                                       ("dot", {"axes": 1})])
def test_lowercase_merge_functions_build_the_layers(fn, kwargs):
    def make(keras):
        a, b = keras.Input((4,)), keras.Input((4,))
        return keras.Model([a, b], getattr(keras.layers, fn)([keras.layers.Dense(4)(a), b], **kwargs))
    check_layer_parity(make, [R.normal(size=(3, 4)).astype("float32") for _ in range(2)], train=True)


def test_repeat_vector_in_a_seq2seq_autoencoder_trains_like_keras():
    def make(keras):
        x = keras.Input((5, 3))
        h = keras.layers.LSTM(4)(x)
        h = keras.layers.RepeatVector(5)(h)
        h = keras.layers.LSTM(4, return_sequences=True)(h)
        return keras.Model(x, keras.layers.TimeDistributed(keras.layers.Dense(3))(h))
    check_layer_parity(make, R.normal(size=(4, 5, 3)).astype("float32"), train=True)


def test_bad_arguments_name_the_layer_and_value():
    from onnxforge import layers

    with pytest.raises(ValueError, match="cropping"):
        layers.Cropping2D(((1, -1), (0, 0)))
    with pytest.raises(TypeError, match="integer value for `n`"):
        layers.RepeatVector(2.5)
    with pytest.raises(ValueError, match="leaves nothing"):
        layers.Cropping1D((2, 2))(layers.Input((4, 3)))
    with pytest.raises(ValueError, match="Incompatible input shapes"):
        layers.Dot(axes=1)([layers.Input((3,)), layers.Input((4,))])


@pytest.mark.parametrize("kwargs", [dict(), dict(tie_weights=False), dict(logit_soft_cap=2.0)])
def test_reversible_embedding_matches_keras_and_trains(kwargs):
    def make(keras):
        t = keras.Input((5,), dtype="int32")
        emb = keras.layers.ReversibleEmbedding(12, 4, **kwargs)
        h = keras.layers.Dense(4, activation="tanh")(emb(t))
        return keras.Model(t, emb(h, reverse=True))
    tokens = R.integers(0, 12, size=(3, 5)).astype("int32")
    check_layer_parity(make, tokens, train=True)
