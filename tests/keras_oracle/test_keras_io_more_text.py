"""More keras.io NLP / timeseries / structured-data / RL pages run under onnxforge, and the fixes they needed.

Pages run whole (shrunk, synthetic data of the page's shapes and dtypes, the same weights set from NumPy on
both sides; tf-style pages against Keras 3 on TensorFlow, Keras-3 pages against Keras on torch):

- timeseries/event_classification_for_payment_card_fraud_detection (the Keras part; Temporian's feature
  engineering replaced by a dict of normalized float columns): fixed (see below); then works: a
  ``tf.data`` pipeline ``shuffle().rejection_resample(class_func, target_dist, initial_dist)
  .map(lambda _, x: x).batch().map(extract_features_and_label)``, a ``Model`` on a *list* of named
  ``Input(shape=(1,))`` fed a *dict* dataset, ``concatenate``, sigmoid Dense layers, Adam with
  ``Accuracy`` and ``AUC``. On the deterministic validation pipeline the evaluation, two epochs of history
  and the predictions agree with Keras 3 on TensorFlow to 1e-7; the resampled training runs.
- structured_data/customer_lifetime_value (keras_hub's ``TransformerEncoder`` replaced by the same post-norm block
  of MultiHeadAttention / LayerNormalization / Dense; the UCI download by random rows of the page's shapes):
  fixed (see below); then works: an Embedding over a ``StringLookup(output_mode="one_hot")`` encoding fed as
  an int32 ``Input``, Flatten + RepeatVector, Concatenate, an LSTM encoder and a ``RepeatVector`` -> LSTM
  decoder with ``recurrent_regularizer=L1L2``, Adam on MSE with an ``"mse"`` metric, NumPy metrics on
  ``ops.cast`` results; history (val_loss included), predictions and metrics agree with Keras on torch to
  1e-6. Left as it is: eager ``StringLookup(output_mode="one_hot")`` gives float32 where Keras on torch gives
  int64 (already reported with multi_label_classification).
- timeseries/lstm_vs_cnn_timeseries_classification: works (two-layer LSTM with ``dropout`` /
  ``recurrent_dropout``, the Conv1D / BatchNorm / MaxPooling1D / Dropout CNN, ``validation_split``,
  ``ModelCheckpoint(save_best_only=True)`` + ``EarlyStopping(restore_best_weights=True)``, ``load_model`` of the
  best ``.keras`` file and ``evaluate``; with the dropout rates at 0 histories and test metrics agree with Keras
  on torch to 1e-6, with them both train).
- timeseries/multivariate_timeseries_forecasting_using_lstm (tf-style): fixed (see below); then works
  (``TimeseriesGenerator`` batches into ``fit(validation_data=...)`` / ``evaluate`` / ``predict``, stacked LSTMs
  with ``LeakyReLU(alpha=0.5)``, ``tf.losses.MeanSquaredError`` / ``tf.optimizers.Adam`` /
  ``tf.metrics.MeanAbsoluteError`` and its ``mean_absolute_error`` history key; with the Dropout rates at 0 the
  history, evaluation and predictions agree with Keras 3 on TensorFlow to 1e-7).
- timeseries/timeseries_forecasting_with_lstm_for_temperature_prediction (tf-style): works
  (``tf.keras.preprocessing.timeseries_dataset_from_array`` on pandas int64 features with float64 targets, a
  validation batch of ``len - 10``, ``.numpy()`` on a batch, LSTM + Dense with Adam; histories and predictions
  agree with Keras 3 on TensorFlow to 1e-6).
- structured_data/regression_boston_housing (tf-style; the dataset replaced by random rows): works
  (``Dense(input_shape=[13])`` first in a Sequential, ``metrics=["mae", "mse"]``, EarlyStopping,
  ``validation_split``; agrees with Keras 3 on TensorFlow to 1e-6).
- nlp/imdb_lstm_sentiment (tf-style; Kaggle data replaced by random reviews): as written, both onnxforge and Keras
  fail on the label column, which pandas 2's ``replace({"positive": 1, ...})`` leaves of object dtype
  (onnxforge: "fit(): y must hold numbers. Received an array of dtype object"; Keras: "Invalid dtype: object").
  With the column cast to int64 it works (``Tokenizer(num_words)`` / ``texts_to_sequences`` /
  ``pad_sequences``, ``Embedding(input_shape=(200,))``, ``LSTM(dropout=0.2)``, a pandas Series as ``y``,
  ``predict_sentiment``); with dropout 0 it agrees with Keras on torch to 1e-7 (Keras on TensorFlow differs
  by 1e-4 after the first Adam epoch: its sparse Embedding gradient).
- structured_data/feature_preprocessing_layer (tf-style): onnxforge runs the subclassed ``FeaturePreprocessor``
  Model (dicts of Normalization / StringLookup / ``IntegerLookup(output_mode="binary")`` / Discretization
  layers adapted eagerly, a Sequential made in ``adapt`` with ``InputLayer(input_shape=(1,), dtype=string)``),
  the functional preprocessing model on a dict of string / number Inputs and the training; Keras 3 on TensorFlow
  stops earlier, at the symbolic call of the IntegerLookup inside the subclassed Model ("you must set the
  layer's vocabulary before calling it"), so nothing could be compared. ``save_model`` / ``load_model`` of the
  inference model fails here ("An input shape must be a list of dimensions": the nested Model's dict input
  shape); Keras could not load it either, the page's ``embedding`` being made in ``adapt``, not ``__init__``.

Not run: pages needing keras_hub / transformers / TF Hub weights (most of nlp/), JAX-only code
(rl/rlhf_dummy_demo, rl/rlhf_demo), tf.feature_column (structured_data/advanced_techniques_for_structured_data,
a draft of the covered wide-deep-cross page), TF 2.1 graph internals (timeseries/
dimension_adaptive_neural_architecture), TF Decision Forests and Temporian beyond its Keras part.

Fixed: ``tf.keras.preprocessing.sequence.TimeseriesGenerator`` (which TensorFlow still ships under ``tf.keras``)
was missing (ImportError).

Fixed: recurrent layers (LSTM, GRU, SimpleRNN, Bidirectional, stacked cells) added their cells' weight penalties
to the training loss only, and ConvLSTM1D/2D/3D to no loss at all; Keras 3 adds them to every loss, so
``evaluate`` and ``val_loss`` came out lower (the customer-lifetime-value page's decoder LSTM has a
``recurrent_regularizer``).

Fixed: ``Dataset.rejection_resample`` / ``tf.data.experimental.rejection_resample`` were missing
(AttributeError). They now sample as tf.data does: ``(class, element)`` pairs, mixing the original stream
(probability ``min(target / initial)``) with a rejection-filtered one, the initial distribution estimated on
the fly when not given.
"""
from __future__ import annotations

import numpy as np
import pytest


def _labelled(n_ones: int, n: int):
    from onnxforge import data

    labels = np.zeros(n, np.int64)
    labels[np.random.default_rng(0).permutation(n)[:n_ones]] = 1
    return data.Dataset.from_tensor_slices({"x": np.arange(n, dtype=np.float32), "y": labels}), labels


def test_rejection_resample_keeps_only_the_classes_the_target_wants():
    """target [0, 1]: min ratio 0, so nothing comes from the original stream and class 0 is never accepted;
    what is left is exactly the class-1 elements, in order, as ``(class, element)`` pairs."""
    ds, labels = _labelled(30, 100)
    out = list(ds.rejection_resample(lambda e: e["y"], target_dist=[0.0, 1.0], initial_dist=[0.7, 0.3], seed=1)
               .as_numpy_iterator())
    assert [float(e["x"]) for _, e in out] == [float(i) for i in np.flatnonzero(labels == 1)]
    assert all(int(c) == 1 for c, _ in out)


def test_rejection_resample_matching_target_passes_every_element_with_its_class():
    ds, labels = _labelled(30, 100)
    pairs = ds.rejection_resample(lambda e: e["y"], [0.7, 0.3], initial_dist=[0.7, 0.3])
    got = [(int(c), float(e["x"])) for c, e in pairs.map(lambda c, e: (c, e)).as_numpy_iterator()]
    assert got == [(int(y), float(i)) for i, y in enumerate(labels)]


@pytest.mark.parametrize("initial", [[0.8, 0.2], None])
def test_rejection_resample_reaches_the_target_distribution(initial):
    """20% ones resampled to 50%: with the initial distribution given or estimated on the fly."""
    ds, _ = _labelled(800, 4000)
    classes = np.array([int(c) for c, _ in ds.rejection_resample(lambda e: e["y"], [0.5, 0.5], initial,
                                                                   seed=3).as_numpy_iterator()])
    assert len(classes) > 1000
    assert abs(classes.mean() - 0.5) < 0.05


def test_rejection_resample_as_an_experimental_transformation_and_in_fit():
    """The page's pipeline: resample, drop the class copy, batch, split features and labels, then ``fit``."""
    import onnxforge as tf
    import onnxforge.keras as keras

    ds, _ = _labelled(16, 64)
    pipeline = (ds.shuffle(64).apply(tf.data.experimental.rejection_resample(
        lambda e: tf.cast(e["y"], tf.int32), target_dist=[0.5, 0.5], initial_dist=[0.75, 0.25], seed=0))
        .map(lambda _, e: e).batch(8).map(lambda e: ({"x": e["x"]}, tf.cast(e["y"], tf.int32))))
    inputs = [keras.Input(shape=(1,), name="x")]
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(keras.layers.concatenate(inputs * 2)))
    model.compile("adam", "binary_crossentropy")
    assert len(model.fit(pipeline, epochs=1, verbose=0).history["loss"]) == 1


@pytest.mark.parametrize("kwargs, message", [
    ({"target_dist": [0.5, 0.6]}, "target_dist"),
    ({"target_dist": [0.5, 0.5], "initial_dist": [0.2, 0.3, 0.5]}, "initial_dist"),
    ({"target_dist": [0.5, 0.5], "class_func": lambda e: e["x"]}, "class_func"),
    ({"target_dist": [1.0], "initial_dist": [1.0]}, "class_func"),   # class 1 is outside [0, 1)
])
def test_rejection_resample_bad_arguments_are_named(kwargs, message):
    ds, _ = _labelled(3, 10)
    kwargs = {"class_func": lambda e: e["y"], **kwargs}
    with pytest.raises(ValueError, match=message):
        list(ds.rejection_resample(**kwargs).as_numpy_iterator())


def test_recurrent_weight_penalties_join_every_loss():
    """Keras 3 adds a recurrent layer's kernel / recurrent-kernel penalties to ``evaluate`` and ``val_loss`` as
    well as the training loss (ConvLSTM's to neither, before): LSTM, GRU, SimpleRNN, ConvLSTM1D, Bidirectional
    and stacked cells side by side in one model."""
    from .common import LIBS

    x = np.linspace(-1, 1, 48, dtype=np.float32).reshape(4, 3, 4)
    reg = {"kernel_regularizer": "l2", "recurrent_regularizer": {"class_name": "L1L2",
                                                                 "config": {"l1": 0.01, "l2": 0.02}}}
    got = {}
    for name, lib in LIBS.items():
        L = lib.layers
        seq, grid = lib.Input((3, 4)), lib.Input((3, 4, 1))
        outs = [L.LSTM(3, **reg)(seq), L.GRU(3, **reg)(seq), L.SimpleRNN(3, **reg)(seq),
                L.Flatten()(L.ConvLSTM1D(2, 2, **reg)(grid)), L.Bidirectional(L.GRU(2, **reg))(seq),
                L.RNN(L.StackedRNNCells([L.LSTMCell(2, **reg), L.GRUCell(2, **reg)]))(seq)]
        model = lib.Model([seq, grid], L.Concatenate()(outs))
        model.set_weights([np.full(w.shape, 0.3, np.float32) for w in model.get_weights()])
        model.compile("sgd", "mse")
        data, target = [x, x[..., None]], np.ones((4, model.output.shape[-1]), np.float32)
        got[name] = [model.evaluate(data, target, verbose=0), model.test_on_batch(data, target),
                     model.train_on_batch(data, target)]
    np.testing.assert_allclose(got["onnxforge"], got["keras"], rtol=1e-5)


@pytest.mark.parametrize("kwargs", [
    {"length": 4, "batch_size": 5},
    {"length": 6, "sampling_rate": 2, "stride": 3, "batch_size": 4},
    {"length": 3, "start_index": 5, "end_index": 20, "reverse": True, "batch_size": 7},
])
def test_timeseries_generator_matches_tf_keras(kwargs):
    from keras.src.legacy.preprocessing.sequence import TimeseriesGenerator as Reference

    from onnxforge.keras.preprocessing.sequence import TimeseriesGenerator

    data = np.arange(60, dtype=np.float64).reshape(30, 2)
    targets = np.arange(30) * 10
    ours, ref = TimeseriesGenerator(data, targets, **kwargs), Reference(data, targets, **kwargs)
    assert len(ours) == len(ref)
    for i in range(len(ref)):
        for got, want in zip(ours[i], ref[i]):
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)


def test_timeseries_generator_feeds_fit_and_refuses_bad_lengths():
    import onnxforge as tf
    from onnxforge.keras.preprocessing.sequence import TimeseriesGenerator

    series = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    gen = TimeseriesGenerator(series, series[:, 0], length=5, batch_size=8)
    model = tf.keras.Sequential([tf.keras.Input((5, 3)), tf.keras.layers.LSTM(2), tf.keras.layers.Dense(1)])
    model.compile("adam", "mse")
    model.fit(gen, epochs=1, verbose=0)
    assert model.predict(gen, verbose=0).shape == (35, 1)
    with pytest.raises(ValueError, match="same length"):
        TimeseriesGenerator(series, series[:-1, 0], length=5)
    with pytest.raises(ValueError, match="start_index\\+length=45 > end_index=39"):
        TimeseriesGenerator(series, series[:, 0], length=45)
