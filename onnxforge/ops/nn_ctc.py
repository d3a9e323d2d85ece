"""CTC ops of ``keras.ops.nn``: ``ctc_loss`` and ``ctc_decode``, with Keras 3's TensorFlow-backend conventions.

``ctc_loss`` takes logits and integer labels and emits the log-space forward recursion of
``losses.ctc.ctc_loss_values`` (one ``Scan``; it trains). ``ctc_decode``'s greedy strategy is graph ops (it
runs inside models and compiled functions); its ``"beam_search"`` strategy is TensorFlow's prefix beam search,
run on the host in numpy, so it takes arrays (a model's predictions), not symbolic tensors.

Example:
    >>> import numpy as np
    >>> from onnxforge import ops
    >>> logits = np.log(np.array([[[0.1, 0.8, 0.1], [0.8, 0.1, 0.1], [0.1, 0.1, 0.8]]], np.float32))
    >>> decoded, scores = ops.ctc_decode(logits, np.array([3]))
    >>> decoded.tolist()
    [[[1, 2, -1]]]
"""
from __future__ import annotations

__all__ = ["ctc_loss", "ctc_decode"]

from typing import Any

import numpy as np
import onnx

from ..graph import Value
from ..losses.ctc import ctc_loss_values
from ._util import as_value, builder_of, cast_value, is_functional_tensor, symbolic

_INT64 = onnx.TensorProto.INT64
_INT32 = onnx.TensorProto.INT32
_FLOAT = onnx.TensorProto.FLOAT


def _rank(x: Any) -> int | None:
    shape = getattr(x, "shape", None)
    if shape is None:
        shape = np.shape(x)
    return None if shape is None else len(shape)


def _check_ranks(**args: tuple[Any, int]) -> None:
    for name, (x, rank) in args.items():
        r = _rank(x)
        if r is not None and r != rank:
            raise ValueError(f"Argument `{name}` must be a tensor of rank {rank}. Received: "
                             f"{name}.shape={tuple(getattr(x, 'shape', np.shape(x)))}")


def _same_first_dim(name1: str, x1: Any, name2: str, x2: Any) -> None:
    d1, d2 = tuple(getattr(x1, "shape", ()))[:1], tuple(getattr(x2, "shape", ()))[:1]
    if d1 and d2 and isinstance(d1[0], int) and isinstance(d2[0], int) and d1 != d2:
        raise ValueError(f"Arguments `{name1}` and `{name2}` must have the same first dimension. Received shapes: "
                         f"`{tuple(x1.shape)}` and `{tuple(x2.shape)}`.")


def _check_index(name: str, value: Any, allow_none: bool = False) -> None:
    if (value is None and allow_none) or (isinstance(value, (int, np.integer)) and not isinstance(value, bool)):
        return
    raise TypeError(f"Argument `{name}` must be an integer{' or None' if allow_none else ''}. "
                    f"Received: {name}={value!r}")


def ctc_loss(target: Any, output: Any, target_length: Any, output_length: Any, mask_index: int = 0) -> Any:
    """Per-sample CTC loss ``(batch,)`` of logits ``output`` ``(batch, max_time, num_classes)`` for integer
    labels ``target`` ``(batch, max_label_length)``; ``target_length`` / ``output_length`` ``(batch,)`` give
    each sample's label and time lengths, ``mask_index`` the blank class (Keras's ``keras.ops.ctc_loss``).

    Example:
        >>> import numpy as np
        >>> from onnxforge import ops
        >>> loss = ops.ctc_loss(np.array([[1, 2]]), np.zeros((1, 4, 3), np.float32), np.array([2]), np.array([4]))
        >>> [round(v, 4) for v in loss.tolist()]
        [1.6864]
    """
    _check_index("mask_index", mask_index)
    _check_ranks(target=(target, 2), output=(output, 3), target_length=(target_length, 1),
                 output_length=(output_length, 1))
    _same_first_dim("target", target, "output", output)
    _same_first_dim("target_length", target_length, "target", target)
    _same_first_dim("output_length", output_length, "output", output)
    return _ctc_loss(target, output, target_length, output_length, mask_index=int(mask_index))


@symbolic
def _ctc_loss(target: Any, output: Any, target_length: Any, output_length: Any, mask_index: int = 0) -> Value:
    b = builder_of(target, output, target_length, output_length)
    logits = as_value(output, b)
    if not logits.is_float:
        logits = cast_value(logits, _FLOAT)
    return ctc_loss_values(as_value(target, b, dtype="int64"), logits, as_value(target_length, b, dtype="int64"),
                           as_value(output_length, b, dtype="int64"), mask_index=mask_index)


def ctc_decode(inputs: Any, sequence_lengths: Any, strategy: str = "greedy", beam_width: int = 100,
               top_paths: int = 1, merge_repeated: bool = True, mask_index: int | None = 0) -> tuple[Any, Any]:
    """Decode CTC logits ``inputs`` ``(batch, max_time, num_classes)`` (Keras's ``keras.ops.ctc_decode``).

    Returns ``(decoded, scores)``: ``decoded`` int32 ``(top_paths, batch, max_time)`` padded with -1 (one path
    for ``"greedy"``); ``scores`` ``(batch, top_paths)``: for greedy the negative sum of each step's largest
    logit, for beam search each path's log-probability. ``mask_index`` is the blank (``None``: the last class).
    ``"beam_search"`` runs on the host and needs arrays (``merge_repeated`` does not apply to it, as in Keras).

    Example:
        >>> import numpy as np
        >>> from onnxforge import ops
        >>> logits = np.log(np.array([[[0.6, 0.4], [0.6, 0.4]]], np.float32))
        >>> paths, scores = ops.ctc_decode(logits, np.array([2]), strategy="beam_search", top_paths=2)
        >>> paths.tolist(), [round(s, 4) for s in scores[0].tolist()]   # "1": 0.4*0.4 + 2*0.4*0.6; "": 0.6**2
        ([[[1, -1]], [[-1, -1]]], [-0.4463, -1.0217])
    """
    if strategy not in ("greedy", "beam_search"):
        raise ValueError(f"Invalid strategy {strategy}. Supported values are 'greedy' and 'beam_search'.")
    _check_index("mask_index", mask_index, allow_none=True)
    _check_ranks(inputs=(inputs, 3), sequence_lengths=(sequence_lengths, 1))
    _same_first_dim("inputs", inputs, "sequence_lengths", sequence_lengths)
    if strategy == "greedy":
        return _greedy(inputs, sequence_lengths, merge_repeated=bool(merge_repeated), mask_index=mask_index)
    for name, value in (("beam_width", beam_width), ("top_paths", top_paths)):
        _check_index(name, value)
        if value < 1:
            raise ValueError(f"Argument `{name}` must be at least 1. Received: {name}={value}")
    if top_paths > beam_width:
        raise ValueError(f"Argument `top_paths` must be at most `beam_width`. Received: top_paths={top_paths}, "
                         f"beam_width={beam_width}")
    if builder_of(inputs, sequence_lengths) is not None or is_functional_tensor(inputs):
        raise ValueError("ctc_decode(strategy='beam_search') runs on the host: call it on arrays (such as "
                         "model.predict's output), or use strategy='greedy' inside a model or a traced function.")
    from ._ctc_beam import beam_search

    return beam_search(np.asarray(inputs), np.asarray(sequence_lengths), int(beam_width), int(top_paths),
                       mask_index)


@symbolic
def _greedy(inputs: Any, sequence_lengths: Any, merge_repeated: bool = True, mask_index: int | None = 0) -> tuple:
    b = builder_of(inputs, sequence_lengths)
    x = as_value(inputs, b)
    x = x if x.is_float else cast_value(x, _FLOAT)

    def i64(v: Any) -> Value:
        return b.const(np.asarray(v, np.int64))

    shape = b.op("Shape", [x])
    classes, steps = b.op("Gather", [shape, i64(2)], axis=0), b.op("Gather", [shape, i64(1)], axis=0)
    blank = b.op("Sub", [classes, i64(1)]) if mask_index is None else \
        b.op("Add", [i64(mask_index), classes]) if mask_index < 0 else i64(mask_index)
    best = b.op("ArgMax", [x], axis=2, keepdims=0)                                          # (B, T)
    times = b.op("Unsqueeze", [b.op("Range", [i64(0), steps, i64(1)]), i64([0])])           # (1, T)
    lengths = b.op("Unsqueeze", [cast_value(as_value(sequence_lengths, b), _INT64), i64([1])])
    valid = b.op("Less", [times, lengths])
    top = b.op("ReduceMax", [x, i64([2])], keepdims=0)
    zero = b.const(np.zeros((), dtype=np.float32)) if x.dtype == _FLOAT else cast_value(b.const(np.asarray(0.0)), x.dtype)
    scores = b.op("Neg", [b.op("ReduceSum", [b.op("Where", [valid, top, zero]), i64([1])], keepdims=1)])
    keep = b.op("And", [valid, b.op("Not", [b.op("Equal", [best, blank])])])
    if merge_repeated:   # TF compares with the previous step's best class, blanks included
        before = b.op("Concat", [b.op("Slice", [b.op("Sub", [best, best]), i64([0]), i64([1]), i64([1])]),
                                 b.op("Slice", [best, i64([0]), i64([-1]), i64([1])])], axis=1)
        first = b.op("Equal", [times, i64(0)])
        keep = b.op("And", [keep, b.op("Or", [first, b.op("Not", [b.op("Equal", [best, before])])])])
    # move the kept steps to the front in time order: sort by (kept first, then time)
    key = b.op("Cast", [b.op("Add", [times, b.op("Mul", [b.op("Cast", [b.op("Not", [keep])], to=_INT64), steps])])],
               to=_FLOAT)
    order = b.op("TopK", [key, b.op("Unsqueeze", [steps, i64([0])])], axis=1, largest=0, sorted=1, outputs=2)[1]
    moved = b.op("GatherElements", [best, order], axis=1)
    count = b.op("ReduceSum", [b.op("Cast", [keep], to=_INT64), i64([1])], keepdims=1)
    decoded = b.op("Where", [b.op("Less", [times, count]), moved, i64(-1)])
    decoded = b.op("Unsqueeze", [b.op("Cast", [decoded], to=_INT32), i64([0])])
    return decoded, scores
