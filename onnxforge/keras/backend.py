"""``keras.backend``: the few helpers Keras 3 keeps there (``epsilon``, ``floatx``, ``clear_session``,
``image_data_format``, dtype helpers, ``get_uid``, ``is_keras_tensor``); the settings are ``keras.config``'s.
tf.keras 2's tensor functions (``K.mean``, ``K.square``, ``K.int_shape``...) come from ``backend_legacy``.
tf.keras 2's CTC helpers ``ctc_batch_cost`` and ``ctc_decode`` (softmax probabilities in, the last class the
blank) are here too, since the classic OCR examples call them.

Example:
    >>> from onnxforge.keras import backend
    >>> backend.epsilon(), backend.floatx(), backend.image_data_format()
    (1e-07, 'float32', 'channels_last')
    >>> backend.result_type("int32", "float32")
    'float32'
"""
from __future__ import annotations

__all__ = ["backend", "clear_session", "ctc_batch_cost", "ctc_decode", "epsilon", "floatx", "get_uid", "get_value", "image_data_format",
           "is_float_dtype", "is_int_dtype", "is_keras_tensor", "result_type", "set_epsilon", "set_floatx",
           "set_image_data_format", "set_value", "standardize_dtype"]

import collections
from typing import Any

import numpy as np

from .. import ops
from ..backend_config import epsilon, floatx, image_data_format, set_epsilon, set_floatx, set_image_data_format
from ..layers.base import clear_session as _clear_layer_names
from ..layers.keras_tensor import KerasTensor
from ..layers.keras_tensor import standardize_dtype as _standardize
from . import backend_legacy as _legacy
from .config import backend

__all__ += _legacy.__all__

_uids: collections.Counter[str] = collections.Counter()


def __getattr__(name: str) -> Any:
    # Served lazily rather than star-imported: they shadow builtins (max, sum, round...) this module uses.
    if name in _legacy.__all__:
        return getattr(_legacy, name)
    error = _legacy.removed_name_error(name)
    if error is not None:
        raise error
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def clear_session(free_memory: bool = True) -> None:
    """Reset the automatic layer names (``dense``, ``dense_1``, ...) and ``get_uid`` counters, as Keras does."""
    _clear_layer_names()
    _uids.clear()


def get_uid(prefix: str = "") -> int:
    """A counter per ``prefix``: 1 on the first call, then 2, 3, ..."""
    _uids[prefix] += 1
    return _uids[prefix]


def set_value(x: Any, value: Any) -> None:
    """tf.keras's ``backend.set_value``: ``x.assign(value)`` for a Variable or an optimizer's learning rate.

    Example:
        >>> from onnxforge.optimizers import Adam
        >>> opt = Adam()
        >>> set_value(opt.learning_rate, 0.01); get_value(opt.learning_rate)
        array(0.01, dtype=float32)
    """
    if not hasattr(x, "assign"):
        raise TypeError("set_value needs a Variable (or an optimizer's learning_rate), something with `assign`. "
                        f"Received: x={x!r} of type {type(x).__name__}")
    x.assign(value)


def get_value(x: Any) -> np.ndarray:
    """tf.keras's ``backend.get_value``: the value of a Variable, a learning rate or an array, as numpy (a copy)."""
    return np.array(x.numpy() if hasattr(x, "numpy") else x, copy=True)


def is_keras_tensor(x: Any) -> bool:
    """Whether ``x`` is a symbolic tensor of the functional API."""
    return isinstance(x, KerasTensor)


def standardize_dtype(dtype: Any) -> str:
    """A dtype's Keras name (``"float32"``, ``"int64"``, ``"string"``...); ``None`` is ``floatx()``."""
    if dtype is None:
        return floatx()
    if dtype is float:
        return floatx()
    if dtype is int:
        return "int64"
    if dtype is bool:
        return "bool"
    return _standardize(dtype)


def is_float_dtype(dtype: Any) -> bool:
    name = standardize_dtype(dtype)
    return name.startswith("float") or name.startswith("bfloat")


def is_int_dtype(dtype: Any) -> bool:
    name = standardize_dtype(dtype)
    return name.startswith("int") or name.startswith("uint")


def _int_join(a: str, b: str) -> str:
    """JAX's integer lattice: same signedness widens; mixed takes a signed type wide enough (or a float)."""
    ia, ib = np.iinfo(a), np.iinfo(b)
    if (ia.min < 0) == (ib.min < 0):
        return a if ia.bits >= ib.bits else b
    unsigned, signed = (ia, ib) if ia.min == 0 else (ib, ia)
    if signed.bits > unsigned.bits:
        return f"int{signed.bits}"
    return f"int{unsigned.bits * 2}" if unsigned.bits < 64 else "float64"


def _canonical(name: str) -> str:
    """Keras (like JAX without x64) computes 64-bit types in 32 bits."""
    return {"int64": "int32", "uint64": "uint32", "float64": "float32"}.get(name, name)


def result_type(*dtypes: Any) -> str:
    """Keras 3's type promotion (JAX's lattice, 64-bit types computed in 32 bits): an integer and a float
    give the float, Python numbers are weak (they take the other operand's type)."""
    strong = [standardize_dtype(d) for d in dtypes if d not in (int, float, bool)]
    weak = {d for d in dtypes if d in (int, float, bool)}
    if bool in weak:
        strong.append("bool")
    floats = [n for n in strong if is_float_dtype(n)]
    ints = [n for n in strong if is_int_dtype(n)]
    if floats:
        if set(floats) == {"float16", "bfloat16"}:
            return "float32"
        return _canonical(max(floats, key=lambda n: 2 if n == "bfloat16" else np.dtype(n).itemsize))
    if float in weak:
        return floatx()
    if ints:
        out = ints[0]
        for n in ints[1:]:
            out = _int_join(out, n)
        return _canonical(out if out != "float64" else "float64")
    if int in weak:
        return "int32"
    return "bool" if strong else floatx()


def _column(x: Any) -> Any:
    """A ``(batch, 1)`` or ``(batch,)`` length tensor as ``(batch,)``."""
    if isinstance(x, (list, tuple)) or isinstance(x, np.ndarray) or np.isscalar(x):
        return np.asarray(x).reshape(-1)
    return ops.reshape(x, (-1,))


def ctc_batch_cost(y_true: Any, y_pred: Any, input_length: Any, label_length: Any) -> Any:
    """tf.keras 2's CTC loss per sample, ``(batch, 1)``: ``y_pred`` holds softmax probabilities
    ``(batch, time, classes)`` whose last class is the blank; ``y_true`` the labels ``(batch, max_length)``
    (entries past ``label_length`` ignored); ``input_length`` / ``label_length`` are ``(batch, 1)``.

    Example:
        >>> import numpy as np
        >>> probs = np.full((1, 4, 3), 1 / 3, np.float32)
        >>> loss = ctc_batch_cost(np.array([[0, 1]]), probs, np.array([[4]]), np.array([[2]]))
        >>> loss.shape, round(float(loss[0, 0]), 3)
        (TensorShape([1, 1]), 1.686)
    """
    logits = ops.log(ops.add(y_pred, epsilon()))
    loss = ops.ctc_loss(y_true, logits, _column(label_length), _column(input_length), mask_index=-1)
    return ops.expand_dims(loss, 1)


def ctc_decode(y_pred: Any, input_length: Any, greedy: bool = True, beam_width: int = 100,
               top_paths: int = 1) -> tuple[list[Any], Any]:
    """tf.keras 2's CTC decoding of softmax probabilities ``y_pred`` ``(batch, time, classes)`` (last class the
    blank): ``([decoded (batch, time) padded with -1, one per path], log_probabilities (batch, paths))``.
    Greedy decoding (the default) is graph ops; beam search runs on the host, on arrays (it collapses repeated
    decoded labels, as tf.compat.v1's decoder does).

    Example:
        >>> import numpy as np
        >>> probs = np.array([[[0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.8, 0.1, 0.1]]], np.float32)
        >>> decoded, _ = ctc_decode(probs, np.array([3]))
        >>> np.asarray(decoded[0]).tolist()
        [[1, 0, -1]]
    """
    lengths = _column(input_length)
    if greedy:
        decoded, scores = ops.ctc_decode(ops.log(ops.add(y_pred, epsilon())), lengths, mask_index=None)
        return [ops.cast(decoded[0], "int64")], scores
    if not isinstance(y_pred, np.ndarray):
        y_pred = np.asarray(y_pred.numpy() if hasattr(y_pred, "numpy") else y_pred)
    from ..ops._ctc_beam import beam_search

    if top_paths > beam_width:
        raise ValueError(f"Argument `top_paths` must be at most `beam_width`. Received: top_paths={top_paths}, "
                         f"beam_width={beam_width}")
    decoded, scores = beam_search(np.log(y_pred.astype(np.float32) + np.float32(epsilon())), lengths, int(beam_width),
                                  int(top_paths), None, merge_repeated=True)
    return [d.astype(np.int64) for d in decoded], scores
