"""``Lambda``: wrap a function of tensors as a layer, traced like any other layer (Keras 3 semantics).

The function runs on symbolic graph values while a model is built (to infer the output shape) and while
it is compiled (to emit its ops): anything written with ``keras.ops`` (``onnxforge.ops``), Python
arithmetic on tensors or other layers traces. A function that cannot be traced (NumPy or TensorFlow calls
on tensors, Python ``if`` on tensor values) is refused with the function's own error and what to use.

Serialization follows Keras: a named function is stored by name (found again in ``custom_objects``, the
``register_keras_serializable`` registry or ``keras.ops`` / activations); a Python ``lambda`` is stored as
bytecode, which loading refuses unless safe mode is off (``load_model(..., safe_mode=False)``,
``SafeModeScope(False)`` or ``enable_unsafe_deserialization()``).
"""
from __future__ import annotations

__all__ = ["Lambda"]

import base64
import builtins
import inspect
import marshal
import types
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import activations, ops
from .base import Layer
from .keras_tensor import KerasTensor, flatten, is_shape, map_structure
from .safe_mode import in_safe_mode

_LAMBDA_REFUSED = (
    "Requested the deserialization of a `Lambda` layer whose `function` is a Python lambda. This carries a "
    "potential risk of arbitrary code execution and thus it is disallowed by default. If you trust the source "
    "of the artifact, you can override this error by passing `safe_mode=False` to the loading function, or "
    "calling `onnxforge.layers.safe_mode.enable_unsafe_deserialization()`.")


def _function_config(fn: Callable) -> Any:
    if isinstance(fn, types.LambdaType) and fn.__name__ == "<lambda>":
        code = base64.b64encode(marshal.dumps(fn.__code__)).decode("ascii")
        closure = tuple(c.cell_contents for c in fn.__closure__) if fn.__closure__ else None
        return {"class_name": "__lambda__", "config": {"code": code, "defaults": fn.__defaults__,
                                                        "closure": closure}}
    if callable(fn):
        from ..keras_objects import _REGISTERED_NAMES

        name = getattr(fn, "__name__", type(fn).__name__)
        module = getattr(fn, "__module__", None) or "builtins"
        if module.startswith("onnxforge.ops") or module.startswith("onnxforge.activations"):
            module = "keras.ops" if module.startswith("onnxforge.ops") else "keras.activations"
        return {"module": module, "class_name": "function", "config": name,
                "registered_name": _REGISTERED_NAMES.get(fn, name)}
    raise ValueError(f"Invalid input type for serialization. Received: {fn} of type {type(fn)}.")


#: Globals a loaded lambda sees besides ``ops`` and numpy: ``keras`` (the ``onnxforge.keras`` namespace, which
#: sits above the layers and registers itself here when imported).
_LAMBDA_GLOBALS: dict[str, Any] = {}


def register_lambda_globals(**names: Any) -> None:
    """Called by ``onnxforge.keras``: names a deserialized Python lambda can read as globals."""
    _LAMBDA_GLOBALS.update(names)


def _load_lambda(config: dict) -> Callable:
    inner = config.get("config") or {}
    code = marshal.loads(base64.b64decode(inner["code"]))
    defaults = inner.get("defaults")
    closure = inner.get("closure")
    cells = None
    if closure is not None:
        cells = tuple(types.CellType(v) for v in closure)
    # Names such a function usually reads: keras.ops as `ops` or `keras.ops`, numpy as `np`.
    globs = {**_LAMBDA_GLOBALS, "__builtins__": builtins, "ops": ops, "np": np, "numpy": np}
    return types.FunctionType(code, globs, name=code.co_name, argdefs=tuple(defaults) if defaults else None,
                              closure=cells)


def _load_function(config: Any, custom_objects: dict | None, safe_mode: bool) -> Any:
    if not isinstance(config, dict):
        return config
    if config.get("class_name") == "__lambda__":
        if safe_mode:
            raise ValueError(_LAMBDA_REFUSED)
        return _load_lambda(config)
    if config.get("class_name") != "function":
        return config
    name, registered = config.get("config"), config.get("registered_name") or config.get("config")
    custom = custom_objects or {}
    for key in (name, registered):
        if key in custom:
            return custom[key]
    from ..keras_objects import _REGISTERED

    if registered in _REGISTERED:
        return _REGISTERED[registered]
    module = config.get("module") or ""
    if isinstance(module, str) and (module.startswith(("keras", "onnxforge")) or module == "builtins"):
        from .operators import is_public_op

        for namespace in (ops, ops.nn, activations):
            fn = getattr(namespace, name, None) if isinstance(name, str) and not name.startswith("_") else None
            # Only public ops: the namespaces also hold helpers and the names they import (ops.nn.symbolic,
            # activations.lookup), which a config must not reach (as OpCall's _resolve_op refuses them).
            if callable(fn) and is_public_op(fn):
                return fn
    raise ValueError(f"Could not locate function '{name}'. Make sure custom functions are passed in "
                     "`custom_objects` (or registered with `register_keras_serializable`). "
                     f"Full object config: {config}")


class Lambda(Layer):
    """Wraps ``function(inputs, **arguments)`` as a layer.

    Args:
        function: called on the layer's inputs (graph values while tracing); may take ``mask`` and
            ``training`` keyword arguments.
        output_shape: the output shape without the batch dim (or a function of the full input shape);
            inferred by tracing the function when omitted.
        mask: ``None``, a function ``(inputs, mask) -> mask``, or a fixed mask.
        arguments: extra keyword arguments for ``function``.

    Example:
        >>> from onnxforge import ops
        >>> from onnxforge.layers import Input, Lambda
        >>> Lambda(lambda x: ops.mean(x, axis=1))(Input(shape=(4, 3))).shape
        (None, 3)
    """

    def __init__(self, function: Callable, output_shape: Any = None, mask: Any = None,
                 arguments: dict | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        if not callable(function):
            raise TypeError(f"Lambda {self.name!r}: `function` must be callable. Received: {function!r}")
        self.function = function
        self.arguments = dict(arguments or {})
        self.mask = mask
        self.supports_masking = mask is not None
        if isinstance(output_shape, list) and all(d is None or isinstance(d, int) for d in output_shape):
            output_shape = tuple(output_shape)
        self._output_shape = output_shape
        try:
            params = inspect.signature(function).parameters
        except (TypeError, ValueError):
            params = {}
        self._fn_expects_mask = "mask" in params
        self._fn_expects_training = "training" in params

    def _describe(self) -> str:
        return getattr(self.function, "__name__", type(self.function).__name__)

    def call(self, inputs, mask=None, training=None):
        kwargs = dict(self.arguments)
        if self._fn_expects_mask:
            kwargs["mask"] = mask
        if self._fn_expects_training:
            kwargs["training"] = training
        try:
            return self.function(inputs, **kwargs)
        except Exception as e:
            raise ValueError(f"Lambda layer {self.name!r}: its function {self._describe()!r} could not be traced on "
                          f"symbolic tensors ({type(e).__name__}: {e}). onnxforge runs a Lambda's function on "
                          "graph values: write it with `keras.ops` (onnxforge.ops) functions and Python "
                          "arithmetic, not NumPy / TensorFlow calls or Python branches on tensor values.") from e

    def compute_output_shape(self, input_shape):
        if self._output_shape is None:
            out = self._spec_by_tracing((_specs(input_shape, self.compute_dtype),), {})
            self._clear_losses()
            return out.shape if isinstance(out, KerasTensor) else map_structure(lambda t: t.shape, out)
        if callable(self._output_shape):
            return self._output_shape(input_shape)
        batch = flatten(input_shape)[0] if not is_shape(input_shape) else input_shape[0]

        def add_batch(shape: Any) -> Any:
            return (batch, *tuple(shape)) if is_shape(shape) else [add_batch(s) for s in shape]

        return add_batch(self._output_shape)

    def _annotate_output_shapes(self, first: Any, shapes: Any, outputs: Any) -> None:
        if self._output_shape is not None:  # a traced function describes its own outputs
            super()._annotate_output_shapes(first, shapes, outputs)

    def compute_output_spec(self, *args: Any, **kwargs: Any) -> Any:
        if self._output_shape is None:
            return self._spec_by_tracing(args, kwargs)
        return super().compute_output_spec(*args, **kwargs)

    def compute_mask(self, inputs, mask=None):
        if callable(self.mask):
            return self.mask(inputs, mask)
        return self.mask

    def get_config(self):
        config = {"function": _function_config(self.function)}
        if self._output_shape is not None:
            config["output_shape"] = (_function_config(self._output_shape) if callable(self._output_shape)
                                      else list(self._output_shape))
        if self.mask is not None:
            config["mask"] = _function_config(self.mask) if callable(self.mask) else self.mask
        config["arguments"] = dict(self.arguments)
        return {**super().get_config(), **config}

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None, safe_mode: bool | None = None) -> Lambda:
        config = dict(config)
        safe = in_safe_mode() if safe_mode is None else bool(safe_mode)
        config["function"] = _load_function(config["function"], custom_objects, safe)
        if "output_shape" in config:
            shape = _load_function(config["output_shape"], custom_objects, safe)
            if isinstance(shape, list) and all(d is None or isinstance(d, int) for d in shape):
                shape = tuple(shape)
            config["output_shape"] = shape
        if "mask" in config and isinstance(config["mask"], dict):
            config["mask"] = _load_function(config["mask"], custom_objects, safe)
        return cls(**config)


def _specs(shape: Any, dtype: str) -> Any:
    if is_shape(shape):
        return KerasTensor(tuple(shape), dtype)
    return [_specs(s, dtype) for s in shape]
