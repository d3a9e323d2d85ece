"""A ``Model`` subclass's ``predict_step(self, data)``, traced once into an ONNX program that ``predict`` and
``predict_on_batch`` run on every batch.

Keras's ``predict`` calls ``predict_step`` on each batch and joins the batches' results leaf by leaf, so an
override that returns ``{"probs": ops.softmax(y), "cls": ops.argmax(y, axis=-1)}`` makes ``predict`` return that
dict of whole arrays. Here the override is traced like a custom ``train_step`` (``custom_step``): on symbolic
values shaped like one batch (batch dimension ``"batch"``), Variables read as inputs, in inference mode unless a
layer is called with ``training=True``. Every tensor in the returned structure (a tensor, a tuple, list or
dict, nested) is an output ``outputs/<path>`` of the program, with its own dtype; the host rebuilds the
structure from them. A batch whose feature shapes, dtypes or structure differ from the traced ones is retraced.

``data`` is what Keras passes: ``x`` for one input, ``([x0, x1, ...],)`` for several, and a batch holding a
dict in the structure it was given (``step_data``); ``super().predict_step(data)`` is the model's outputs on
``x``. The program takes the weights as inputs, so training between calls needs no retrace. Not supported (a
``NotImplementedError``): applying an optimizer or updating a metric inside ``predict_step``, whose effects
Keras would keep; returning anything but tensors.

Example:
    >>> import numpy as np, onnxforge
    >>> class Classifier(onnxforge.keras.Model):
    ...     def predict_step(self, data):
    ...         y = self(data, training=False)
    ...         return {"probs": onnxforge.ops.softmax(y), "cls": onnxforge.ops.argmax(y, axis=-1)}
    >>> inputs = onnxforge.keras.Input((3,))
    >>> model = Classifier(inputs, onnxforge.keras.layers.Dense(4)(inputs))
    >>> out = model.predict(np.ones((5, 3), np.float32), batch_size=2, verbose=0)
    >>> sorted(out), out["probs"].shape, out["cls"].shape
    (['cls', 'probs'], (5, 4), (5,))
"""
from __future__ import annotations

__all__ = ["PredictStep", "build_predict_step", "predict_batch"]

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..compiler.programs import CompileError
from ..graph import GraphBuilder, Value
from ..graph.shape_inference import fill_shapes
from ..runtime import resolve_device
from ..variables import Variable
from .custom_step import CustomStep, CustomStepTrace, _finish, _host, _signature, declare_data
from .step_data import Spec, StepData, flatten, leaf_names, rebuild

#: Prefix of the outputs carrying what ``predict_step`` returns.
OUTPUTS_PREFIX = "outputs"


@dataclass
class PredictStep:
    """A traced ``predict_step``: its program and runner, and the structure its outputs are returned in."""

    step: CustomStep
    spec: Spec

    def run(self, arrays: Sequence[np.ndarray]) -> Any:
        """One batch: the override's result as numpy arrays, in the structure it returned."""
        values = self.step.runner.run(dict(zip(self.step.data_inputs, arrays)))
        return rebuild(self.spec, [np.asarray(v) for v in values])


def _predict_data(xs: Sequence[np.ndarray], data: Any) -> Any:
    """Keras's ``predict_step`` argument: ``x`` alone for one input, ``([x0, x1, ...],)`` for several (the
    array adapter wraps the list of inputs in a tuple)."""
    if isinstance(xs, StepData) or not isinstance(data, tuple):
        return data
    return (list(data),)


def build_predict_step(model: Any, xs: Sequence[np.ndarray], device: Any) -> PredictStep:
    """Trace ``model.predict_step`` on symbolic data shaped like one batch and make its program and runner."""
    name = type(model).__name__
    b = GraphBuilder(float32_fallback=True)
    data, data_inputs = declare_data(b, xs)
    ctx = CustomStepTrace(b, model._rng_stream(), owner=model)
    with ctx.active():
        result = model.predict_step(_predict_data(xs, data))
    if ctx.learning_rates or ctx.trackers:
        what = "applies an optimizer" if ctx.learning_rates else "updates a metric"
        raise NotImplementedError(f"{name}.predict_step {what}; predict() runs predict_step as an inference "
                                  "program and would drop that update. Do it in train_step or test_step.")
    leaves, spec = flatten(result)
    host_out = []
    for path, leaf in zip(leaf_names(spec, OUTPUTS_PREFIX), leaves):
        if isinstance(leaf, Variable):
            leaf = leaf.__onnx_value__()
        if not isinstance(leaf, Value):
            raise NotImplementedError(f"{name}.predict_step returned {leaf!r} at {path!r}; predict() supports "
                                      "tensors computed from the batch (alone, or in tuples, lists and dicts).")
        host_out.append((path, leaf))
    if not host_out:
        raise CompileError(f"{name}.predict_step returned no tensor (received {result!r}); return the batch's "
                           "predictions.")
    if any(v.dtype is None or v.shape is None for _, v in host_out):
        fill_shapes(b, 0)
    step = _finish(model, b, ctx, host_out, data_inputs, device, kind="predict_step", label="outputs")
    return PredictStep(step, spec)


def predict_batch(model: Any, xs: Sequence[np.ndarray]) -> Any:
    """``model.predict_step`` on one batch of host arrays: its result as numpy arrays; traced on the first
    batch of each signature (feature shapes, dtypes, structure)."""
    arrays = [_host(x) for x in xs]
    if isinstance(xs, StepData):
        arrays = StepData(arrays, xs.spec)
    key = (_signature(arrays), getattr(xs, "spec", None))
    steps = model.__dict__.setdefault("_custom_predict_steps", {})
    step = steps.get(key)
    if step is None:
        device = getattr(model, "_device", None) or resolve_device("auto")
        model._device = device
        step = steps[key] = build_predict_step(model, arrays, device)
    return step.run(arrays)
