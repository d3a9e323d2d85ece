"""keras.io programs that onnxforge once failed, each fixed call compared with real Keras 3 (torch backend).

- examples/vision/fully_convolutional_network: bilinearly resized segmentation masks reach
  ``SparseCategoricalCrossentropy`` as fractional float class ids. Keras takes them silently: the loss truncates
  them to integers, ``MeanIoU`` does too, ``SparseCategoricalAccuracy`` compares them as floats (so a fractional
  id matches no class).
- guides/customizing_saving_and_serialization: a ``Dense(1)`` subclass whose ``call()`` scales by a ``(10,)``
  variable. The model's ``output_shape`` stays ``Dense``'s ``(None, 1)``, but the loss sees the ``(batch, 10)``
  that runs: targets are checked against that, and same-rank ``(batch, 1)`` targets broadcast as in Keras's MSE.

The tf.keras-style calls run under TensorFlow through ``tf_oracle`` (``keras_examples/keras_io_fix_programs.py``):

- examples/vision/deit: a distillation wrapper compiled with metrics and no loss, whose ``train_step`` calls
  ``compiled_metrics.update_state``: Keras 3 logs its loss tracker too (fed the predictions by that shim).
- examples/vision/retinanet: ``tf.image.combined_non_max_suppression`` (values equal to TensorFlow's), also as a
  layer's result in a functional model, whose ``predict`` keeps the namedtuple.
- examples/vision/temporal_latent_bottleneck (and ConvLSTM-style cells): ``keras.layers.RNN`` over
  ``(batch, time, rows, cols)`` sequences with a custom cell whose ``get_initial_state`` makes
  ``(batch, rows, cols)`` states, as Keras 3 runs it (compared with Keras on torch: outputs, masked sequences,
  training losses and trained weights); tf.keras 2's ``state_size=tf.TensorShape([rows, cols])`` runs too.
- examples/vision/fixres: ``tf.image.sample_distorted_bounding_box``, random: the mean crop offsets and sizes of
  400 draws agree within 4 standard errors (seen under 2), every draw obeys the op's invariants, the argument
  checks refuse what TensorFlow's refuse, and the whole image comes back when no crop fits.
"""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as tf

from ..keras_examples import keras_io_fix_programs as programs
from ..keras_examples import tf_oracle
from .common import copy_weights, keras, fkeras

_TF_PROGRAMS = ["deit_distiller", "combined_nms", "distorted_boxes"]


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    tf_oracle.skip_without_tensorflow()
    return tf_oracle.start("keras_io_fix_programs", _TF_PROGRAMS, tmp_path_factory.mktemp("fixes") / "tf.npz")


def _segmenter(api):
    inputs = api.Input((16, 3))   # pixels flattened: Keras on torch fails the 4-D backward
    model = api.Model(inputs, api.layers.Dense(4, activation="softmax")(inputs))
    model.compile(optimizer=api.optimizers.SGD(0.5), loss=api.losses.SparseCategoricalCrossentropy(),
                  metrics=[api.metrics.MeanIoU(num_classes=4, sparse_y_pred=False),
                           api.metrics.SparseCategoricalAccuracy()])
    return model


def test_fractional_float_class_ids_are_truncated_by_the_loss_and_compared_as_floats_by_accuracy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 16, 3)).astype("float32")
    y = rng.integers(0, 4, size=(6, 16, 1)).astype("float32")
    y[:, ::2] += 0.5   # half the ids fractional, as a bilinear resize leaves them between classes
    y = np.minimum(y, 3.0)
    theirs, ours = _segmenter(keras), _segmenter(fkeras)
    keras.utils.set_random_seed(1)
    copy_weights(theirs, ours)
    want = theirs.evaluate(x, y, verbose=0, batch_size=3)
    np.testing.assert_allclose(ours.evaluate(x, y, verbose=0, batch_size=3), want, rtol=1e-5)
    assert 0 < want[2] < 0.5   # the fractional ids count as misses: a truncating accuracy would differ
    theirs_fit = theirs.fit(x, y, epochs=2, batch_size=3, verbose=0, shuffle=False).history
    ours_fit = ours.fit(x, y, epochs=2, batch_size=3, verbose=0, shuffle=False).history
    for key, values in theirs_fit.items():
        np.testing.assert_allclose(ours_fit[key], values, rtol=1e-4, err_msg=key)
    # Integer ids still feed the same steps; a truncated id outside the classes is still refused.
    ours.train_on_batch(x, np.round(y))
    with pytest.raises(ValueError, match=r"label value of 4 .*\[0, 4\)"):
        ours.train_on_batch(x, y + 1.0)


def _scaled_dense_model(api):
    class ScaledDense(api.layers.Dense):
        def __init__(self, units, **kwargs):
            super().__init__(units, **kwargs)
            self.scale = api.Variable(np.linspace(0.1, 1.0, 10), name="special_arr", dtype="float32")

        def call(self, inputs):
            return super().call(inputs) * self.scale

    model = api.Sequential([ScaledDense(1)])
    model.compile(optimizer=api.optimizers.SGD(0.1), loss="mean_squared_error")
    model.build((None, 10))
    return model


@pytest.mark.parametrize("target_shape", [(8, 10), (8, 1)])
def test_subclass_call_that_changes_the_output_shape_trains_on_the_traced_shape(target_shape):
    rng = np.random.default_rng(0)
    x = rng.random((8, 10)).astype("float32")
    y = rng.random(target_shape).astype("float32")
    theirs, ours = _scaled_dense_model(keras), _scaled_dense_model(fkeras)
    copy_weights(theirs, ours)
    assert ours.output_shape == theirs.output_shape == (None, 1)   # Keras's symbolic shape, kept
    want = theirs.fit(x, y, epochs=2, batch_size=4, verbose=0, shuffle=False).history["loss"]
    got = ours.fit(x, y, epochs=2, batch_size=4, verbose=0, shuffle=False).history["loss"]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    np.testing.assert_allclose(ours.predict(x, verbose=0), keras.ops.convert_to_numpy(theirs(x)), rtol=1e-5)
    with pytest.raises(ValueError, match=r"y.shape=\(4, 3\), output .* shape=\(None, 10\)"):
        ours.fit(x, y[:, :1] + np.zeros((8, 3), "float32"), batch_size=4, verbose=0)


def test_distillation_wrapper_step_with_compiled_metrics_logs_as_tensorflow(oracle):
    ours, theirs = programs.deit_distiller(tf, fkeras), oracle.results("deit_distiller")
    assert sorted(ours) == sorted(theirs)   # "history_loss" and "history_val_loss" included
    for key, value in theirs.items():
        np.testing.assert_allclose(ours[key], value, rtol=1e-5, atol=1e-6, err_msg=key)


def test_combined_non_max_suppression_matches_tensorflow(oracle):
    ours, theirs = programs.combined_nms(tf, fkeras), oracle.results("combined_nms")
    assert sorted(ours) == sorted(theirs)
    assert bool(theirs["model_namedtuple"]) and bool(ours["model_namedtuple"])
    # The cases reach what they are for: padding, a size of min(2 * 3, 7), suppression that changes the ranking.
    assert 0 < theirs["own_threshold_valid_detections"].min() < 7
    assert theirs["shared_per_class_pad_nmsed_scores"].shape == (2, 6)
    assert not np.array_equal(theirs["shared_tight_nmsed_scores"], theirs["shared_plain_nmsed_scores"])
    for key, value in theirs.items():
        assert ours[key].dtype == value.dtype and ours[key].shape == value.shape, key
        np.testing.assert_allclose(ours[key], value, rtol=1e-6, atol=1e-6, err_msg=key)


def test_sample_distorted_bounding_box_draws_as_tensorflow(oracle):
    ours, theirs = programs.distorted_boxes(tf, fkeras), oracle.results("distorted_boxes")
    np.testing.assert_array_equal(ours["refused"], theirs["refused"])
    np.testing.assert_array_equal(ours["whole_image"], theirs["whole_image"])
    np.testing.assert_array_equal(ours["dtypes"], theirs["dtypes"])
    mine, tf_draws = ours["draws"], theirs["draws"]
    for draws in (mine, tf_draws):
        y, x, z, h, w, minus_one = draws[:, :6].T
        assert (z == 0).all() and (minus_one == -1).all() and (h > 0).all() and (w > 0).all()
        assert (y + h <= 40).all() and (x + w <= 60).all()
        np.testing.assert_allclose(draws[:, 6:], np.stack([y / 40, x / 60, (y + h) / 40, (x + w) / 60], 1),
                                   rtol=1e-6)
        # The box in pixels is rows [4, 28), columns [12, 54): every crop covers 60% of it.
        cover = (np.minimum(y + h, 28) - np.maximum(y, 4)).clip(0) * (np.minimum(x + w, 54) - np.maximum(x, 12)).clip(0)
        assert (cover >= 0.6 * 24 * 42).all()
    spread = np.sqrt(mine[:, :5].var(0) / len(mine) + tf_draws[:, :5].var(0) / len(tf_draws)) + 1e-9
    assert (np.abs(mine[:, :5].mean(0) - tf_draws[:, :5].mean(0)) <= 4 * spread).all()


def test_combined_non_max_suppression_in_an_exported_graph_is_standard_onnx(tmp_path, checked):
    import onnx

    rng = np.random.default_rng(1)
    boxes, scores = rng.uniform(size=(2, 6, 2, 4)).astype("float32"), rng.uniform(size=(2, 6, 2)).astype("float32")
    class Suppress(fkeras.layers.Layer):   # in a layer's call(), as Keras 3 on TensorFlow requires
        def call(self, boxes, scores):
            return tf.image.combined_non_max_suppression(boxes, scores, 2, 5)

    box_in, score_in = fkeras.Input((6, 2, 4)), fkeras.Input((6, 2))
    model = fkeras.Model([box_in, score_in], Suppress()(box_in, score_in))
    want = tf.image.combined_non_max_suppression(boxes, scores, 2, 5)
    for got, expected in zip(model.predict([boxes, scores], verbose=0), want):
        np.testing.assert_array_equal(got, np.asarray(expected))
    model.export(tmp_path / "nms.onnx")
    checked(onnx.load(tmp_path / "nms.onnx"))


def _grid_cell(api, tensor_shape: bool = False):
    """A cell on ``(batch, rows, cols)`` steps and states: Keras 3's form (``get_initial_state``), or tf.keras 2's
    (``state_size`` / ``output_size`` given as a shape)."""
    ops = api.ops

    class GridCell(api.layers.Layer):
        def __init__(self, rows, cols, **kwargs):
            super().__init__(**kwargs)
            self.rows, self.cols = rows, cols
            self.state_size = tf.TensorShape([rows, cols]) if tensor_shape else -1
            if tensor_shape:
                self.output_size = tf.TensorShape([rows, cols])
            self.mix = api.layers.Dense(cols)
            self.norm = api.layers.LayerNormalization()   # its statistics are saved per step for the gradient

        def get_initial_state(self, batch_size=None):
            return [ops.zeros((batch_size, self.rows, self.cols))]

        def call(self, inputs, states):
            out = ops.tanh(self.norm(self.mix(inputs)) + 0.5 * states[0])
            return out, [out * 0.9]

    if tensor_shape:
        del GridCell.get_initial_state   # tf.keras 2 cells give the shape instead
    return GridCell(3, 4)


class _GridModel:
    @staticmethod
    def build(api, tensor_shape=False, **rnn_kwargs):
        class GridModel(api.Model):
            def __init__(self):
                super().__init__()
                self.rnn = api.layers.RNN(_grid_cell(api, tensor_shape), **rnn_kwargs)
                self.head = api.layers.Dense(2)

            def call(self, x):
                return self.head(api.layers.GlobalAveragePooling1D()(self.rnn(x)))

        return GridModel()


def test_rnn_runs_custom_cells_on_multi_axis_steps_and_states_as_keras():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 5, 3, 4)).astype("float32")
    y = rng.normal(size=(6, 2)).astype("float32")
    theirs, ours = _GridModel.build(keras), _GridModel.build(fkeras)
    theirs(x[:1]), ours(x[:1])
    copy_weights(theirs, ours)
    np.testing.assert_allclose(ours.predict(x, verbose=0), keras.ops.convert_to_numpy(theirs(x)), rtol=1e-5,
                               atol=1e-6)
    for model, api in ((theirs, keras), (ours, fkeras)):
        model.compile(optimizer=api.optimizers.SGD(0.1), loss="mse")
    want = theirs.fit(x, y, epochs=2, batch_size=3, verbose=0, shuffle=False).history["loss"]
    got = ours.fit(x, y, epochs=2, batch_size=3, verbose=0, shuffle=False).history["loss"]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    for g, w in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6)
    # Masked steps keep the states and repeat (or zero) the output, over every axis of the step.
    mask = np.ones((6, 5), bool)
    mask[:, 3] = False
    mask[2, :2] = False
    for zero in (False, True):
        layers = [api.layers.RNN(_grid_cell(api), return_sequences=True, zero_output_for_mask=zero)
                  for api in (keras, fkeras)]
        layers[0](x[:1]), layers[1](x[:1])
        layers[1].set_weights(layers[0].get_weights())
        want = keras.ops.convert_to_numpy(layers[0](x, mask=mask))
        np.testing.assert_allclose(np.asarray(layers[1](x, mask=mask)), want, rtol=1e-5, atol=1e-6)
    # tf.keras 2's shape-valued state_size (Keras 3 refuses it) gives the same states as Keras 3's form.
    ts_model = _GridModel.build(fkeras, tensor_shape=True)
    ts_model(x[:1])
    ts_model.set_weights(ours.get_weights())
    np.testing.assert_allclose(ts_model.predict(x, verbose=0), ours.predict(x, verbose=0), rtol=1e-6)
