"""Preprocessing layers against real Keras 3 (torch backend): Normalization (adapt on arrays, lists of batches
and generators), Rescaling, Resizing, CenterCrop, CategoryEncoding, Discretization, IntegerLookup,
StringLookup and TextVectorization: learned state, outputs (through from_keras and built natively) and
configs."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

import onnxforge.keras as fkeras  # noqa: E402
from exporters.keras_exporter import from_keras  # noqa: E402
from onnxforge import layers as L  # noqa: E402
from tests.layers.keras_parity import check_layer_parity  # noqa: E402
from tests.layers.required_args import KERAS_TF_MISSING, KERAS_TF_REASON  # noqa: E402

needs_keras_tf = pytest.mark.skipif(KERAS_TF_MISSING, reason=KERAS_TF_REASON)

R = np.random.default_rng(8)
DATA = (R.normal(size=(40, 3, 4)) * [1.0, 5.0, 0.1, 2.0] + [0.0, 3.0, -1.0, 10.0]).astype("float32")


def _predict_both(make, x, native=False):
    keras.utils.set_random_seed(0)
    k = make(keras)
    f = make(fkeras) if native else from_keras(k)
    if native:
        f.set_weights(k.get_weights())
    return k.predict(x, verbose=0), f.predict(x, verbose=0), k, f


# ----------------------------------------------------------------------------------------- Normalization
@needs_keras_tf
@pytest.mark.parametrize("kind", ["array", "list_of_batches", "generator"])
@pytest.mark.parametrize("axis", [-1, None, (1, 2)])
def test_normalization_adapt_matches_keras(kind, axis):
    feeds = {"array": lambda: DATA, "list_of_batches": lambda: [DATA[:15], DATA[15:]],
             "generator": lambda: (DATA[i:i + 7] for i in range(0, 40, 7))}
    k, f = keras.layers.Normalization(axis=axis), L.Normalization(axis=axis)
    k.adapt(feeds[kind]())
    f.adapt(feeds[kind]())
    np.testing.assert_allclose(f.adapt_mean.numpy(), keras.ops.convert_to_numpy(k.adapt_mean), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(f.adapt_variance.numpy(), keras.ops.convert_to_numpy(k.adapt_variance), rtol=1e-4)
    assert [tuple(w.shape) for w in f.weights] == [tuple(w.shape) for w in k.weights]


@needs_keras_tf
@pytest.mark.parametrize("kwargs", [dict(), dict(axis=None), dict(axis=(1, 2)), dict(mean=[1.0, 2.0, 3.0, 4.0],
                                                                                   variance=[1.0, 4.0, 0.25, 9.0])])
def test_normalization_mean_and_variance_attributes_match_keras(kwargs):
    """The TF regression tutorial prints ``normalizer.mean.numpy()``: broadcast to the input's rank."""
    k, f = keras.layers.Normalization(**kwargs), L.Normalization(**kwargs)
    assert f.mean is None and k.mean is None
    for layer in (k, f):
        layer.build(DATA.shape) if "mean" in kwargs else layer.adapt(DATA)
    for name in ("mean", "variance"):
        want = keras.ops.convert_to_numpy(getattr(k, name))
        got = getattr(f, name).numpy()
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kwargs", [dict(), dict(invert=True), dict(axis=None)])
def test_adapted_normalization_model_matches_keras(kwargs):
    def make(lib):
        x = lib.Input((3, 4))
        norm = lib.layers.Normalization(**kwargs)
        norm.adapt(DATA)
        return lib.Model(x, lib.layers.Dense(2)(norm(x)))
    expected, got, _, _ = _predict_both(make, DATA[:5])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_normalization_with_given_statistics_matches_keras_and_trains():
    def make(lib):
        x = lib.Input((3, 4))
        h = lib.layers.Normalization(mean=[1.0, 2.0, 3.0, 4.0], variance=[1.0, 4.0, 0.25, 9.0])(x)
        return lib.Model(x, lib.layers.Dense(2)(h))
    check_layer_parity(make, DATA[:6], train=True)


# -------------------------------------------------------------------------------------- image layers
IMAGES = R.uniform(0, 255, size=(2, 7, 9, 3)).astype("float32")
IMAGE_CASES = {
    "rescaling": lambda K: K.Rescaling(1 / 127.5, offset=-1.0),
    "rescaling_per_channel": lambda K: K.Rescaling([0.5, 1.0, 2.0]),
    "resizing_bilinear_up": lambda K: K.Resizing(13, 11),
    "resizing_bilinear_down": lambda K: K.Resizing(4, 5),
    "resizing_nearest": lambda K: K.Resizing(10, 4, interpolation="nearest"),
    "resizing_bicubic": lambda K: K.Resizing(5, 12, interpolation="bicubic"),
    "resizing_crop_to_aspect": lambda K: K.Resizing(4, 4, crop_to_aspect_ratio=True),
    "resizing_pad_to_aspect": lambda K: K.Resizing(6, 3, pad_to_aspect_ratio=True, fill_value=2.0),
    "resizing_antialias_bilinear": lambda K: K.Resizing(3, 4, antialias=True),
    "resizing_antialias_bicubic": lambda K: K.Resizing(4, 5, interpolation="bicubic", antialias=True),
    "center_crop": lambda K: K.CenterCrop(4, 5),
    "center_crop_smaller_resizes": lambda K: K.CenterCrop(8, 6),
}


@pytest.mark.parametrize("name", list(IMAGE_CASES))
def test_image_layer_matches_keras(name):
    def make(lib):
        x = lib.Input((7, 9, 3))
        return lib.Model(x, IMAGE_CASES[name](lib.layers)(x))
    check_layer_parity(make, IMAGES, rtol=1e-4, atol=1e-3)


def test_resizing_uint8_images_round_and_saturate_like_keras():
    x = R.integers(0, 256, size=(2, 5, 6, 3)).astype("uint8")

    def make(lib):
        i = lib.Input((5, 6, 3), dtype="uint8")
        return lib.Model(i, lib.layers.Resizing(7, 4, interpolation="bicubic")(i))
    expected, got, _, _ = _predict_both(make, x)
    assert got.dtype == np.uint8
    assert np.abs(got.astype(int) - np.asarray(expected).astype(int)).max() <= 1  # float rounding at .5


def test_resizing_trains_through_its_gradient():
    def make(lib):
        x = lib.Input((4, 5, 2))
        h = lib.layers.Conv2D(2, 1)(x)
        return lib.Model(x, lib.layers.Flatten()(lib.layers.Resizing(6, 3)(h)))
    check_layer_parity(make, R.normal(size=(2, 4, 5, 2)).astype("float32"), train=True)


# --------------------------------------------------------------------------------- categorical layers
IDS = np.array([[0, 2, 2], [3, 1, 0], [4, 4, 1]], "int64")


@pytest.mark.parametrize("mode", ["one_hot", "multi_hot", "count"])
def test_category_encoding_matches_keras(mode):
    x = IDS[:, :1] if mode == "one_hot" else IDS

    def make(lib):
        i = lib.Input(x.shape[1:], dtype="int64")
        return lib.Model(i, lib.layers.CategoryEncoding(num_tokens=5, output_mode=mode)(i))
    expected, got, _, _ = _predict_both(make, x)
    np.testing.assert_array_equal(got, expected)


@needs_keras_tf
@pytest.mark.parametrize("make, x", [
    (lambda lib: lib.layers.CategoryEncoding(num_tokens=4, output_mode="one_hot"), np.array([3, 2, 0, 1])),
    (lambda lib: lib.layers.StringLookup(vocabulary=list("abcd"), output_mode="one_hot"), np.array(["a", "z"])),
    (lambda lib: lib.layers.IntegerLookup(vocabulary=[12, 36], output_mode="one_hot"), np.array([12, 36, 99])),
    (lambda lib: lib.layers.Discretization(bin_boundaries=[0.0, 1.0], output_mode="one_hot"),
     np.array([-1.0, 0.5, 2.0], "float32")),
])
def test_one_hot_of_a_rank_1_input_is_one_row_per_element_like_keras(make, x):
    """(N,) one-hot encodes to (N, depth) as an (N, 1) input does; it came out (N, 1, depth)."""
    expected = keras.ops.convert_to_numpy(make(keras)(x))
    np.testing.assert_array_equal(np.asarray(make(fkeras)(x)), expected)


@needs_keras_tf
@pytest.mark.parametrize("mode", ["int", "one_hot", "multi_hot", "count"])
def test_discretization_matches_keras(mode):
    values = R.normal(size=(300, 2)).astype("float32")
    k = keras.layers.Discretization(num_bins=4, output_mode=mode, epsilon=0.05)
    f = L.Discretization(num_bins=4, output_mode=mode, epsilon=0.05)
    k.adapt(values)
    f.adapt(values)
    np.testing.assert_allclose(f.bin_boundaries, k.bin_boundaries, rtol=1e-6)
    x = values[:6, :1] if mode == "one_hot" else values[:6]

    def make(lib):
        i = lib.Input(x.shape[1:])
        layer = lib.layers.Discretization(bin_boundaries=k.bin_boundaries, output_mode=mode)
        return lib.Model(i, layer(i))
    expected, got, _, _ = _predict_both(make, x)
    np.testing.assert_array_equal(got, expected)


INTS = np.array([[12, 36, 7], [1138, 12, -5], [36, 36, 0]], "int64")


@needs_keras_tf
@pytest.mark.parametrize("kwargs", [
    dict(vocabulary=[12, 36, 1138]),
    dict(vocabulary=[12, 36, 1138], mask_token=0),
    dict(vocabulary=[12, 36, 1138], num_oov_indices=3),
    dict(vocabulary=[12, 36, 1138], output_mode="multi_hot"),
    dict(vocabulary=[12, 36, 1138], output_mode="count", num_oov_indices=0),
    dict(vocabulary=list(range(100, 140)), output_mode="one_hot"),   # compact range: a dense table
    dict(vocabulary=[12, 36, 1138], output_mode="tf_idf", idf_weights=[0.5, 1.0, 2.0]),
])
def test_integer_lookup_matches_keras(kwargs):
    x = INTS[:, :1] if kwargs.get("output_mode") == "one_hot" else INTS
    if kwargs.get("output_mode") == "count" and kwargs.get("num_oov_indices") == 0:
        x = np.array([[12, 36, 12], [1138, 1138, 36]], "int64")   # Keras asserts there is no OOV

    def make(lib):
        i = lib.Input(x.shape[1:], dtype="int64")
        return lib.Model(i, lib.layers.IntegerLookup(**kwargs)(i))
    expected, got, _, _ = _predict_both(make, x)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


TEXT_TOKENS = np.array([["a", "b", "zz"], ["c", "a", "a"], ["", "b", "d"]], dtype=object)


def _ours(layer_fn, x):
    """A one-layer onnxforge model on string inputs, predicted (Keras on torch runs string layers eagerly
    only: its models cannot take string tensors)."""
    i = fkeras.Input(x.shape[1:], dtype="string")
    return fkeras.Model(i, layer_fn(i)).predict(x, verbose=0)


@needs_keras_tf
@pytest.mark.parametrize("kwargs", [dict(), dict(mask_token=""), dict(output_mode="multi_hot"),
                                    dict(output_mode="count"), dict(output_mode="tf_idf"), dict(max_tokens=4)])
def test_adapted_string_lookup_matches_keras(kwargs):
    corpus = np.array([["a", "b", "a"], ["c", "a", "d"], ["b", "b", "e"]], dtype=object)
    k, f = keras.layers.StringLookup(**kwargs), L.StringLookup(**kwargs)
    k.adapt(corpus)
    f.adapt(corpus)
    assert f.get_vocabulary() == k.get_vocabulary()
    expected = keras.ops.convert_to_numpy(k(TEXT_TOKENS))
    np.testing.assert_allclose(_ours(f, TEXT_TOKENS), expected, rtol=1e-5)


def test_string_lookup_invert_maps_indices_back():
    vocab = ["[UNK]", "x", "y", "z"]
    i = fkeras.Input((3,), dtype="int64")
    model = fkeras.Model(i, L.StringLookup(vocabulary=vocab, invert=True)(i))
    got = model.predict(np.array([[3, 0, 1], [2, 7, -1]]), verbose=0)
    # Keras on TensorFlow predicts string outputs as bytes (this test expected str before).
    assert got.tolist() == [[b"z", b"[UNK]", b"x"], [b"y", b"[UNK]", b"[UNK]"]]
    i4 = fkeras.Input((4,), dtype="int64")
    masked = fkeras.Model(i4, L.StringLookup(vocabulary=["x", "y"], mask_token="", invert=True)(i4))
    assert masked.predict(np.array([[0, 1, 3, 2]]), verbose=0).tolist() == [[b"", b"[UNK]", b"y", b"x"]]


@needs_keras_tf
@pytest.mark.parametrize("kwargs", [dict(output_sequence_length=6), dict(output_sequence_length=3),
                                    dict(), dict(output_mode="multi_hot"),
                                    dict(output_mode="count", standardize="lower"),
                                    dict(output_mode="tf_idf", max_tokens=6),
                                    dict(standardize=None, split=None, output_sequence_length=1)])
def test_text_vectorization_matches_keras(kwargs):
    corpus = ["The cat sat on the mat.", "The dog ate my homework!", "Don't panic: the cat's fine, (really)."]
    texts = np.array([["the Cat, ATE... the dog's hat"], ["Nothing here?!"], ["mat"]], dtype=object)
    k, f = keras.layers.TextVectorization(**kwargs), L.TextVectorization(**kwargs)
    k.adapt(corpus)
    f.adapt(corpus)
    assert f.get_vocabulary() == k.get_vocabulary()
    expected = keras.ops.convert_to_numpy(k(texts))
    np.testing.assert_allclose(_ours(f, texts), expected, rtol=1e-5)


def test_string_model_saves_and_loads_its_vocabulary(tmp_path):
    layer = L.TextVectorization(output_sequence_length=4)
    layer.adapt(["b b a", "a c"])
    i = fkeras.Input((1,), dtype="string")
    model = fkeras.Model(i, layer(i))
    x = np.array([["a b"], ["c d e f g"]], dtype=object)
    before = model.predict(x, verbose=0)
    from tests.conftest import check_full
    for program in model.compiled_programs.values():  # string ops pass the full checker too
        check_full(program.model)
    model.save(tmp_path / "text.onnx")
    again = fkeras.saving.load_model(tmp_path / "text.onnx")
    np.testing.assert_array_equal(again.predict(x, verbose=0), before)


def test_string_lookup_hashing_oov_buckets_is_refused_with_a_clear_reason():
    with pytest.raises(NotImplementedError, match="FarmHash"):
        L.StringLookup(vocabulary=["a"], num_oov_indices=2)
