"""A layer called on concrete arrays: one compiled program per input signature, or, when its ``call`` branches
in Python on a tensor's value, ``call`` run as Python on eager tensors, as Keras runs every eager call.

onnxforge traces an eager layer call into an ONNX program and caches it. A ``call`` (or a ``Lambda``'s
function) that writes ``if tf.random.uniform([]) < p:`` cannot become a graph: the condition has no value while
tracing. Keras runs such a layer eagerly, and so does TensorFlow's data_augmentation tutorial (its
``random_invert_img`` in a ``Lambda`` and in a ``RandomInvert`` layer). Here the trace's refusal makes the call run
``call`` itself on ``EagerTensor`` inputs: each op then runs on values (compiled per op and cached), so the
branch reads a real boolean. A ``call`` reading a value on the host (keras.io's MoE picks its experts
with ``top_k_indices.numpy()``) runs the same way. Inside a model, ``fit`` or a ``tf.function`` the refusal stands, as under
TensorFlow's graph mode (use ``ops.cond`` / ``ops.where`` there).

Example:
    >>> import numpy as np, onnxforge as of
    >>> halve_if_big = of.layers.Lambda(lambda x: x / 2 if of.ops.max(x) > 10 else x)
    >>> halve_if_big(np.array([4.0, 30.0], "float32")).tolist()
    [2.0, 15.0]
"""
from __future__ import annotations

__all__ = ["eager_call"]

from typing import Any

import numpy as np

from ..eager_tensor import EagerTensor
from ..tracing import eager_executor
from .host_inputs import pipeline_inputs
from .keras_tensor import map_structure

_BRANCH = "The truth value of symbolic tensor"   # graph/value.py's refusal of bool() on a traced value
_NO_VALUE = "needs the value of symbolic tensor"    # its refusal of .numpy(), int(), np.asarray() on one


def _branches_on_a_tensor(error: BaseException | None) -> bool:
    """Whether ``error`` (or an error it was raised from) is the trace's refusal of a Python branch or of a
    host conversion (``t.numpy()``, ``int(t)``): both need the values an eager call has."""
    seen = 0
    while error is not None and seen < 8:
        if isinstance(error, TypeError) and (str(error).startswith(_BRANCH) or _NO_VALUE in str(error)):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


def eager_call(layer: Any, args: tuple, kwargs: dict) -> Any:
    """``layer(*args, **kwargs)`` on concrete arrays (see the module docstring)."""
    refusal: BaseException | None = None
    if not layer.__dict__.get("_eager_python_call"):
        try:
            return eager_executor().call_layer(layer, pipeline_inputs(layer, args), kwargs)
        except (TypeError, ValueError) as e:
            # A layer not built by the failed trace, or one holding state updated in call(), stays refused.
            if not _branches_on_a_tensor(e) or not layer.built or layer.non_trainable_weights:
                raise
            refusal = e
        layer.__dict__["_eager_python_call"] = True   # later calls skip the trace that cannot succeed

    compute = str(getattr(layer, "compute_dtype", "") or "")

    def tensor(a: Any) -> Any:   # float arrays in the compute dtype, as Keras autocasts a layer's inputs
        if not hasattr(a, "dtype"):
            return a
        cast = layer._autocast and "float" in compute and np.dtype(a.dtype).kind == "f"
        return EagerTensor(np.asarray(a, compute) if cast else np.asarray(a))

    try:
        return layer.call(*map_structure(tensor, tuple(args)), **kwargs)
    except Exception as e:   # noqa: BLE001 - the Python run failed too: the trace's refusal says more
        if refusal is None:
            raise
        raise refusal from e
