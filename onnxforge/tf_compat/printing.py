"""``tf.print``: prints tensors the way TensorFlow does (``[0 1 2 ... 7 8 9]``), on arrays only.

TensorFlow's ``tf.print`` is an op: inside a ``tf.function`` it prints at every run. ONNX has no print op, so a
``tf.function`` whose trace meets ``tf.print`` of a graph value runs as plain Python from then on (as with
``tf.py_function``: ``trainer.compiled_function``), printing at every call as TensorFlow does. In a model's
compiled ``train_step``, ``test_step`` or ``call`` there is no such fallback: the error says so instead of printing
a symbol once at trace time.

Example:
    >>> import sys
    >>> import numpy as np
    >>> import onnxforge as tf
    >>> print("loss", tf.constant(1.5), tf.range(10), output_stream=sys.stdout)
    loss 1.5 [0 1 2 ... 7 8 9]
"""
from __future__ import annotations

__all__ = ["print", "PrintInTrace"]

import sys
from typing import Any

import numpy as np

from ..eager_tensor import EagerTensor
from ..graph.value import Value
from ..layers.keras_tensor import KerasTensor
from ..trace_state import active_trace
from ..trainer.compiled_function import HostFunctionInTrace
from ..variables import Variable
from .nest import flatten


def _scalar(x: Any) -> str:
    if isinstance(x, (bool, np.bool_)):
        return "1" if x else "0"   # TensorFlow prints bool tensors as 1 / 0
    if isinstance(x, np.floating):
        text = repr(x.item()) if x.dtype == np.float64 else str(x)
        return text[:-2] if text.endswith(".0") else text
    return str(x)


def _format_tensor(array: np.ndarray, summarize: int) -> str:
    if array.ndim == 0:
        return _scalar(array[()])
    return np.array2string(array, separator=" ", edgeitems=max(summarize, 1), prefix="",
                           threshold=sys.maxsize if summarize < 0 else 0,
                           formatter={"all": _scalar})


def _format(x: Any, summarize: int) -> str:
    """One argument as TensorFlow prints it: tensors formatted, structures with their tensors formatted."""
    if isinstance(x, (EagerTensor, Variable)):
        return _format_tensor(np.asarray(x), summarize)
    if isinstance(x, dict):
        return "{" + ", ".join(f"{k!r}: {_format(v, summarize)}" for k, v in x.items()) + "}"
    if isinstance(x, (list, tuple)):
        body = ", ".join(_format(v, summarize) for v in x)
        return f"[{body}]" if isinstance(x, list) else f"({body}{',' if len(x) == 1 else ''})"
    return x if isinstance(x, str) else repr(x)


class PrintInTrace(HostFunctionInTrace, NotImplementedError):
    """``tf.print`` of a graph value: a ``tf.function`` catches it and runs as Python (a ``HostFunctionInTrace``);
    anywhere else it is the ``NotImplementedError`` that explains why."""


def print(*inputs: Any, output_stream: Any = sys.stderr, summarize: int = 3, sep: str = " ", end: str = "\n",
          name: str | None = None) -> None:  # noqa: A001 (TensorFlow's name)
    """``tf.print``: ``inputs`` separated by ``sep``; tensors show ``summarize`` items at each end of each axis
    (-1: all). ``output_stream`` is a file object (default ``sys.stderr``, as TensorFlow) or
    ``"file://<path>"`` (appended to).

    Raises:
        PrintInTrace: a ``NotImplementedError``: an input is a graph value inside a traced ``train_step`` or
            ``call`` (in a ``tf.function``, the function runs as Python instead and prints).
    """
    leaves = flatten(list(inputs))
    graph_leaves = (Value, KerasTensor, Variable) if active_trace() is not None else (Value, KerasTensor)
    if any(isinstance(leaf, graph_leaves) for leaf in leaves):   # a Variable read while tracing is a graph value
        raise PrintInTrace(
            "tf.print cannot print a tensor inside a compiled step or call: onnxforge traces train_step, "
            "test_step and call into an ONNX graph once, and ONNX has no print op. Return the value in the "
            "step's logs dict (fit shows and records it), or call the model on arrays and print the result. "
            "(A tf.function that calls tf.print runs as Python and prints at every call.)")
    text = sep.join(_format(x, summarize) for x in inputs) + end
    if isinstance(output_stream, str):
        if not output_stream.startswith("file://"):
            raise ValueError(f"tf.print: output_stream must be a file object or 'file://<path>'. "
                             f"Received: output_stream={output_stream!r}")
        with open(output_stream[len("file://"):], "a", encoding="utf-8") as f:
            f.write(text)
        return
    output_stream.write(text)
    if hasattr(output_stream, "flush"):
        output_stream.flush()
