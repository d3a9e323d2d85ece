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
"""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as tf

from ..keras_examples import keras_io_fix_programs as programs
from ..keras_examples import tf_oracle
from .common import copy_weights, keras, fkeras

_TF_PROGRAMS = ["deit_distiller"]


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
