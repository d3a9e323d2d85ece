"""Calls from keras.io's NLP, structured-data, timeseries and audio programs that onnxforge got wrong, each
compared with real Keras 3 (torch backend) on the same weights.

Programs run whole (shrunk, synthetic data of the page's shapes and dtypes, weights seeded from NumPy; tf-style
pages under Keras 3 on TensorFlow, Keras-3 pages under Keras on torch) and what came of each:

- structured_data/structured_data_classification_with_feature_space: works (``FeatureSpace`` with crosses,
  ``float_discretized`` / ``float_normalized``, ``get_inputs`` / ``get_encoded_features``, the end-to-end
  inference model on a dict of one-element tensors; encodings, losses and prediction agree to 1e-6).
- structured_data/tabtransformer: works (``make_csv_dataset`` with ``column_defaults`` and ``na_value``, sample
  weights popped in ``map``, ``ops.stack`` of Embeddings, MultiHeadAttention blocks, ``partial`` LayerNorm, AdamW;
  with SGD the histories agree to 1e-7; with AdamW by 1e-3, Adam's first step amplifying float noise in the
  attention key bias, whose gradient is zero in exact arithmetic).
- structured_data/movielens_recommendations_transformers (BST): works (string ``Input``s, ``tf.strings.split``
  ``.to_tensor()``, StringLookup + Embedding on sequences, a non-trainable ``Constant``-initialized Embedding,
  ``tf.unstack`` / ``tf.expand_dims`` on symbolic tensors, Adagrad). Keras 3 refuses the page's ``tf.*`` calls on
  KerasTensors; with ``keras.ops`` both run, and agree to 1e-6 with SGD. With Adagrad Keras on TensorFlow differs
  from Keras on torch (and onnxforge, which agrees with torch): TensorFlow's sparse Embedding gradient squares
  each repeated index's slice separately in the accumulator.
- structured_data/feature_space_advanced: still fails as written: ``FeatureSpace.string_hashed`` /
  ``integer_hashed`` build Keras's ``Hashing`` layer, which onnxforge refuses (FarmHash / SipHash are not ONNX
  operators; the page also puts them inside its end-to-end inference model). With those two features indexed
  instead, the rest agrees to 1e-6: ``float_rescaled``, ``one_hot`` outputs, a ``one_hot`` cross in ``dict`` mode,
  ``FeatureSpace.feature(preprocessor=TextVectorization(output_mode="tf_idf"))``, ``feature_space.save`` then
  ``keras.saving.load_model`` of it, and the inference model built from the loaded space.
- nlp/multi_label_classification: still fails as written: ``tf.ragged.constant`` for the label lists is refused
  (onnxforge has no ragged tensors, by design). With the labels binarized row by row the rest (StringLookup
  ``multi_hot``, TextVectorization ``ngrams=2, output_mode="tf_idf"``, the MLP, the inference Sequential on raw
  strings) agrees to 1e-7. Eager StringLookup ``multi_hot`` / ``count`` / ``one_hot`` give float32 here where
  Keras gives int64 (its symbolic spec says float32).
- timeseries/timeseries_traffic_forecasting (tf.keras form): works (``tf.Variable`` weight in a layer, tracked as
  tf.keras 2 tracked it, where Keras 3 leaves it untrained; ``tf.math.unsorted_segment_mean``, ``tf.gather``,
  ``tf.shape`` arithmetic in ``tf.reshape``, LSTM on ``batch * nodes`` rows; with ``add_weight`` instead, which
  Keras 3 tracks, the histories agree to 1e-7).
- timeseries/eeg_signal_classification: works (strided ``same`` Conv1D + BatchNorm, ``class_weight`` with a
  ``tf.data`` dataset, TopKCategoricalAccuracy / AUC / Precision / Recall, a legacy ``.h5`` ModelCheckpoint,
  ReduceLROnPlateau on ``val_top_k_categorical_accuracy``, Adam ``amsgrad``; histories agree to 1e-6 with Keras
  on TensorFlow).
- timeseries/eeg_bci_ssvepformer: still fails as written: it calls ``K.set_image_data_format("channels_first")``,
  which onnxforge refuses (its layers take channels_last by default). With ``data_format="channels_first"``
  passed to the Conv1D / Flatten layers the program (``ops.rfft`` with ``fft_length`` above the length, a
  ``Reshape`` made inside ``call()`` per channel, SGD with momentum and weight decay, ``jit_compile=True``)
  agrees with Keras on torch to 1e-7.
- audio/transformer_asr (tf-style): fixed (see below); then works: wav files through ``tf.io.read_file`` /
  ``tf.audio.decode_wav`` / ``tf.signal.stft``, a ``keras.Model`` with its own ``train_step`` (``GradientTape``,
  ``compute_loss(None, one_hot, preds, sample_weight=mask)``) and ``test_step``, a causal mask from ``tf.range`` /
  ``tf.tile`` by a run-time batch size, a ``LearningRateSchedule`` subclass, greedy ``generate``; losses agree
  to 1e-7 with Keras 3 on TensorFlow and the generated tokens are the same.
- audio/stft: fixed (see below). The non-trainable ``STFTSpectrogram`` Conv1D model agrees to 1e-7; the
  trainable multi-bandwidth spectrograms into MobileNet agree in the forward pass.

Fixed: ``tf.data.Dataset.from_tensor_slices`` of Python lists gave NumPy's int64 / float64 where tf.data gives
tf.constant's int32 / float32 (the ASR page's token-id lists became int64 targets).

Fixed: ``ops.conv`` / ``ops.max_pool`` with ``padding="same"`` and a stride over a spatial size unknown until run
time (``STFTSpectrogram(padding="same")`` on ``Input((None, 1))``, the stft page's 2D model) failed while
building with "unsupported operand type(s) for -: 'str' and 'int'".
"""
from __future__ import annotations

import numpy as np
import pytest

from .common import LIBS


def _strided_same_model(lib, kind: str):
    """``kind`` over an ``Input((None, 1))``: stride 3 (or 2) with 'same' padding on a length not known yet."""
    ops = lib.ops

    class Strided(lib.layers.Layer):
        def build(self, input_shape):
            if kind == "conv":
                self.kernel = self.add_weight(shape=(5, 1, 2), initializer="ones")

        def call(self, x):
            if kind == "conv":
                return ops.conv(x, self.kernel, strides=3, padding="same")
            return ops.max_pool(x, 3, strides=2, padding="same")

    inputs = lib.Input((None, 1))
    return lib.Model(inputs, Strided()(inputs))


@pytest.mark.parametrize("kind", ["conv", "max_pool"])
@pytest.mark.parametrize("length", [11, 12])
def test_strided_same_padding_over_a_run_time_length(kind, length):
    x = np.random.default_rng(0).normal(size=(2, length, 1)).astype("float32")
    got = {name: _strided_same_model(lib, kind).predict(x, verbose=0) for name, lib in LIBS.items()}
    assert got["onnxforge"].shape == got["keras"].shape
    np.testing.assert_allclose(got["onnxforge"], got["keras"], rtol=1e-5, atol=1e-6)


def test_stft_spectrogram_same_padding_on_variable_length_input():
    """The stft page's 2D front end: three ``padding="same"`` spectrograms of one signal, concatenated."""
    x = np.random.default_rng(1).normal(size=(2, 400, 1)).astype("float32")
    got = {}
    for name, lib in LIBS.items():
        layers = lib.layers
        inputs = layers.Input((None, 1))
        specs = [layers.STFTSpectrogram(mode="log", frame_length=4 * ms, frame_step=60, fft_length=256,
                                        padding="same", expand_dims=True)(inputs) for ms in (30, 40, 50)]
        got[name] = lib.Model(inputs, layers.Concatenate(axis=-1)(specs)).predict(x, verbose=0)
    assert got["onnxforge"].shape == got["keras"].shape == (2, 7, 129, 3)
    np.testing.assert_allclose(got["onnxforge"], got["keras"], rtol=1e-4, atol=1e-3)


def test_dataset_slices_python_lists_with_tf_constant_dtypes():
    """TensorFlow documents Python ints as int32 (int64 once a value needs it) and Python floats as float32;
    NumPy arrays keep their dtype."""
    from onnxforge import data

    def first(value):
        return data.Dataset.from_tensor_slices(value).as_numpy_iterator().__next__()

    assert first([[1, 2], [3, 4]]).dtype == np.int32
    assert first([1.5, 2]).dtype == np.float32
    assert first([True, False]).dtype == np.bool_
    assert first([2**40, 1]).dtype == np.int64
    assert first(np.array([1.5, 2.0])).dtype == np.float64
    assert first(np.arange(3)).dtype == np.int64
    tokens, weights = first(([[2, 5, 3], [2, 7, 3]], [0.5, 1.0]))
    assert (tokens.dtype, weights.dtype) == (np.int32, np.float32)
    assert first({"ids": [7, 8]})["ids"].dtype == np.int32
