"""Which Keras masks a layer's ``call()`` receives, by Keras 3's rule (``Layer.__call__``, "populate mask").

A call with one tensor argument gets that argument's masks as ``mask=`` when it names a ``mask`` parameter.
A call with several tensor arguments (``call(self, inputs, encoder_outputs, mask=None)``) never gets
``mask=``: each tensor argument ``name`` whose call names a ``name_mask`` parameter gets its own masks
there. keras.io's English-to-Spanish decoder depends on the difference: its padding mask stays ``None``.
"""
from __future__ import annotations

__all__ = ["call_mask_kwargs"]

import inspect
from typing import Any, Callable

from ..graph import Value
from ..keras_masks import get_keras_mask
from .keras_tensor import flatten, map_structure


def _is_tensor_argument(value: Any) -> bool:
    """Keras's test: a tensor, or a non-empty structure holding only tensors (and ``None``)."""
    if isinstance(value, Value):
        return True
    if isinstance(value, (list, tuple, dict)) and len(value) > 0:
        flat = flatten(value)
        return any(isinstance(v, Value) for v in flat) and all(v is None or isinstance(v, Value) for v in flat)
    return False


def _masks_of(value: Any) -> Any:
    return map_structure(lambda v: get_keras_mask(v) if isinstance(v, Value) else None, value)


def call_mask_kwargs(call: Callable, args: tuple, kwargs: dict, first_mask: Any) -> dict:
    """The mask keyword arguments Keras adds to ``call(*args, **kwargs)``; ``first_mask`` is the first
    argument's mask in onnxforge's form (one mask, or a flat list for a structure).

    Example:
        >>> def call(inputs, encoder_outputs, mask=None): ...
        >>> call_mask_kwargs(call, (None, None), {}, None)
        {}
    """
    try:
        signature = inspect.signature(call)
        bound = signature.bind_partial(*args, **{k: v for k, v in kwargs.items() if k in signature.parameters})
    except (TypeError, ValueError):
        return {}
    params = signature.parameters
    tensor_args = {name: value for name, value in bound.arguments.items() if _is_tensor_argument(value)}
    if len(tensor_args) <= 1:
        if first_mask is not None and "mask" in params and kwargs.get("mask") is None:
            return {"mask": first_mask}
        return {}
    out = {}
    for name, value in tensor_args.items():
        key = f"{name}_mask"
        if key in params and kwargs.get(key) is None:
            out[key] = _masks_of(value)
    return out
