"""Keras masks on functional KerasTensors (``x._keras_mask``), as Keras 3 keeps them while a model is built.

``_symbolic_call`` hands the first argument's masks to the output-spec computation through
``symbolic_masks`` (``compute_output_spec``'s public signature has no room for them): a traced ``call()``
receives them as ``mask=`` and its output masks become the output specs' ``_keras_mask``; a layer whose
specs come from ``compute_output_shape`` gets them from ``compute_mask``, traced on a scratch graph
(``attach_symbolic_masks``). Models still compute their masks in every trace; these are what users and
layers see while building.
"""
from __future__ import annotations

__all__ = ["symbolic_masks", "fresh_tensor", "attach_symbolic_masks"]

import contextvars
from typing import Any

import onnx

from ..graph import GraphBuilder, Value
from ..graph.value import onnx_dtype
from ..tracing import TraceContext
from .keras_tensor import KerasTensor, flatten, map_structure

#: The Keras masks of the first argument of the symbolic call in progress (``_symbolic_call`` ->
#: ``_spec_by_tracing``; ``compute_output_spec``'s public signature has no room for them).
symbolic_masks: contextvars.ContextVar[list | None] = contextvars.ContextVar("onnxforge_symbolic_masks", default=None)


def fresh_tensor(t: Any) -> Any:
    """A new output KerasTensor for the spec ``t`` (its Keras mask, if any, kept as ``_keras_mask``)."""
    if not isinstance(t, KerasTensor):
        return t
    out = KerasTensor(t.shape, t.dtype)
    mask = getattr(t, "_keras_mask", None)
    if mask is not None:
        out._keras_mask = mask
    return out


def attach_symbolic_masks(layer: Any, first: Any, in_masks: list, outputs: Any, default_compute_mask: Any) -> None:
    """``_keras_mask`` of the output KerasTensors from ``compute_mask`` (traced on a scratch graph), for a
    layer whose output specs came from ``compute_output_shape``."""
    custom = type(layer).compute_mask is not default_compute_mask
    out = [t for t in flatten(outputs) if isinstance(t, KerasTensor)]
    if not out or not (custom or (layer.supports_masking and any(m is not None for m in in_masks))):
        return
    if not custom:
        for t in out:
            t._keras_mask = in_masks[0]
        return
    b = GraphBuilder()
    counter = iter(range(10**9))

    def scratch(t: Any, prefix: str) -> Any:
        if not isinstance(t, KerasTensor):
            return t
        elem = onnx.TensorProto.STRING if t.dtype == "string" else onnx_dtype(t.dtype)
        return b.input(f"{prefix}_{next(counter)}", elem,
                       tuple("batch" if i == 0 else (d if d is not None else f"d{next(counter)}")
                             for i, d in enumerate(t.shape)))

    values = map_structure(lambda t: scratch(t, "spec_input"), first)
    masks = [scratch(m, "spec_mask") if m is not None else None for m in in_masks]
    mask_arg = masks[0] if isinstance(first, KerasTensor) else (masks if any(m is not None for m in masks) else None)
    ctx = TraceContext(b, training=False, weights="inputs")
    try:
        with ctx.active():
            result = layer.compute_mask(values, mask_arg)
    except Exception:   # a compute_mask written for concrete graphs only: the model still traces it later
        return
    results = result if isinstance(result, (list, tuple)) else [result] * len(out)
    for t, m in zip(out, results):
        if isinstance(m, Value) and m.shape is not None:
            t._keras_mask = KerasTensor(tuple(d if isinstance(d, int) else None for d in m.shape), "bool")
