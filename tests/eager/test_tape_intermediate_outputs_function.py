"""Grad-CAM's ``tape.gradient(class_channel, conv_output)`` inside a ``tf.function`` (keras.io's Grad-CAM
example wraps the heatmap in one): the gradient w.r.t. the intermediate output of ``Model(inputs,
[last_conv.output, model.output])`` is the gradient of everything after the layer, as in TensorFlow and as
eagerly (``test_tape_intermediate_outputs.py``). Before, the traced tape returned ``None``: the returned conv
tensor is a layout ``Transpose`` nothing downstream reads. Compared with real Keras 3 (torch backend)."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from tests.eager.test_tape_intermediate_outputs import IMG, _keras_grad, _pair
from tests.keras_oracle.common import fkeras

import onnxforge as tf


def _heatmap_grads(grad_model):
    @tf.function
    def grads_of(img):
        with tf.GradientTape() as tape:
            inner, preds = grad_model(img)
            index = tf.argmax(preds[0])
            class_channel = preds[:, index]
        return tape.gradient(class_channel, inner), index
    return grads_of


@pytest.mark.parametrize("layer", ["last_act", "last_conv", "hidden"])
def test_traced_gradient_wrt_intermediate_output_matches_keras(layer):
    want_model, model = _pair()
    grad_model = fkeras.Model(model.inputs, [model.get_layer(layer).output, model.output])
    grads_of = _heatmap_grads(grad_model)
    for _ in range(2):   # the traced call and the cached one
        grads, index = grads_of(IMG)
        assert grads is not None
        want = _keras_grad(want_model, layer, int(np.asarray(index)))
        np.testing.assert_allclose(np.asarray(grads), want, rtol=1e-4, atol=1e-6)
    program = next(iter(grads_of._traces.values())).step.program.model
    onnx.checker.check_model(program, full_check=True)
    assert {op.domain for op in program.opset_import} <= {"", "ai.onnx"}


def test_persistent_traced_tape_takes_two_intermediate_gradients():
    """Two gradients w.r.t. the same rerooted source name their recomputed copies apart."""
    want_model, model = _pair()
    grad_model = fkeras.Model(model.inputs, [model.get_layer("last_conv").output, model.output])

    @tf.function
    def both(img):
        with tf.GradientTape(persistent=True) as tape:
            inner, preds = grad_model(img)
            first, second = preds[:, 0], preds[:, 1]
        return tape.gradient(first, inner), tape.gradient(second, inner)

    first, second = both(IMG)
    np.testing.assert_allclose(np.asarray(first), _keras_grad(want_model, "last_conv", 0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.asarray(second), _keras_grad(want_model, "last_conv", 1), rtol=1e-4, atol=1e-6)


def test_traced_forward_values_unchanged():
    """Rerooting changes what the gradient reads, never the returned forward values."""
    want_model, model = _pair()
    grad_model = fkeras.Model(model.inputs, [model.get_layer("last_act").output, model.output])

    @tf.function
    def run(img):
        with tf.GradientTape() as tape:
            inner, preds = grad_model(img)
        return inner, preds, tape.gradient(preds[:, 2], inner)

    inner, preds, _ = run(IMG)
    want_inner, want_preds = (np.asarray(v) for v in grad_model.predict(IMG, verbose=0))
    np.testing.assert_allclose(np.asarray(inner), want_inner, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(preds), want_preds, rtol=1e-5, atol=1e-6)
