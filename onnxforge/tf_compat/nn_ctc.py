"""``tf.nn.ctc_loss``, ``tf.nn.ctc_greedy_decoder`` and ``tf.nn.ctc_beam_search_decoder`` in TensorFlow's
spelling, over ``keras.ops``' CTC (``ops.nn_ctc``).

``ctc_loss`` takes TensorFlow's layout choices (``logits_time_major=True`` by default, dense labels with
``label_length`` or a ``tf.SparseTensor`` of labels, ``blank_index`` 0 by default) and is the same ``Scan``
forward recursion as ``keras.ops.ctc_loss``: it runs eagerly, in a ``tf.function`` or a model, and has
gradients. The decoders return TensorFlow's ``tf.SparseTensor`` results, which hold concrete arrays
(``sparse.py``), so they run on concrete logits (eagerly, or on ``model.predict``'s output); in a traced
function use ``keras.ops.ctc_decode``, whose dense result is a graph value.

Example:
    >>> import numpy as np
    >>> import onnxforge as tf
    >>> logits = np.zeros((4, 1, 3), "float32")   # time-major: 4 steps, 1 sample, 3 classes
    >>> [round(v, 4) for v in tf.nn.ctc_loss([[1, 2]], logits, [2], [4]).tolist()]
    [1.6864]
"""
from __future__ import annotations

__all__ = ["ctc_loss", "ctc_greedy_decoder", "ctc_beam_search_decoder"]

from typing import Any

import numpy as np

from .. import ops as _ops
from ..eager_tensor import as_eager
from ..graph import Value
from ..layers.keras_tensor import KerasTensor
from ..ops.nn_ctc import ctc_decode
from .sparse import SparseTensor


def _dense_labels(labels: SparseTensor) -> tuple[np.ndarray, np.ndarray]:
    """A ``[batch, max_len]`` sparse label matrix as dense labels and each row's length (its entries)."""
    if len(labels.dense_shape) != 2:
        raise ValueError(f"tf.nn.ctc_loss: sparse labels must be a [batch_size, max_label_seq_length] "
                         f"SparseTensor. Received dense_shape {labels.dense_shape.tolist()}")
    dense = np.zeros(labels.shape, np.int32)
    dense[labels.indices[:, 0], labels.indices[:, 1]] = labels.values
    lengths = np.bincount(labels.indices[:, 0], minlength=labels.shape[0]).astype(np.int32)
    return dense, lengths


def ctc_loss(labels: Any, logits: Any, label_length: Any, logit_length: Any, logits_time_major: bool = True,
             unique: Any = None, blank_index: int | None = None, name: str | None = None) -> Any:
    """``tf.nn.ctc_loss``: the negative log-probability ``[batch]`` of each sample's labels under CTC.

    Args:
        labels: int ``[batch, max_label_seq_length]`` (with ``label_length``) or a ``tf.SparseTensor``.
        logits: unnormalized scores ``[frames, batch, num_labels]`` (``[batch, frames, num_labels]`` when
            ``logits_time_major=False``).
        label_length: ``[batch]`` label lengths (``None`` for sparse labels).
        logit_length: ``[batch]`` frames used per sample.
        blank_index: the blank class (default 0; negative counts from the end).
        unique: accepted for compatibility (an optimization hint in TensorFlow).
    """
    if isinstance(labels, SparseTensor):
        if blank_index is None:
            raise ValueError("tf.nn.ctc_loss: Argument `blank_index` must be provided when `labels` is a "
                             "`SparseTensor`.")
        labels, label_length = _dense_labels(labels)
    elif label_length is None:
        raise ValueError("tf.nn.ctc_loss: label_length is required with dense labels (it may be None only for "
                         "SparseTensor labels).")
    if blank_index is not None and (isinstance(blank_index, bool) or not isinstance(blank_index, (int, np.integer))):
        raise TypeError(f"tf.nn.ctc_loss: blank_index must be an int. Received: blank_index={blank_index!r}")
    if len(_ops.shape(logits)) != 3:
        raise ValueError(f"tf.nn.ctc_loss: logits must have rank 3. Received shape {tuple(_ops.shape(logits))}")
    if logits_time_major:
        logits = _ops.transpose(logits, (1, 0, 2))
    labels = np.asarray(labels, np.int32) if isinstance(labels, (list, tuple)) else labels
    lengths = [np.asarray(v, np.int32) if isinstance(v, (list, tuple, int)) else v
               for v in (label_length, logit_length)]
    return _ops.ctc_loss(labels, logits, lengths[0], lengths[1], mask_index=0 if blank_index is None else
                         int(blank_index))


def _concrete(inputs: Any, fn: str) -> None:
    if isinstance(inputs, (Value, KerasTensor)):
        raise ValueError(f"tf.nn.{fn} returns tf.SparseTensor results, which onnxforge builds from concrete "
                         f"arrays: call it on arrays (eagerly or on model.predict's output); in a traced function "
                         f"use keras.ops.ctc_decode, whose dense result is a graph tensor. Received: {inputs!r}")


def _sparse_paths(paths: np.ndarray) -> list[SparseTensor]:
    """Each ``(batch, max_time)`` path matrix padded with -1 as TensorFlow's int64 SparseTensor."""
    out = []
    for path in np.asarray(paths):
        rows, cols = np.nonzero(path >= 0)
        width = int(cols.max()) + 1 if cols.size else 0
        out.append(SparseTensor(np.stack([rows, cols], 1).astype(np.int64), path[rows, cols].astype(np.int64),
                                [path.shape[0], width]))
    return out


def ctc_greedy_decoder(inputs: Any, sequence_length: Any, merge_repeated: bool = True,
                       blank_index: int | None = None) -> tuple[list[SparseTensor], Any]:
    """``tf.nn.ctc_greedy_decoder``: the best class per frame of time-major ``inputs``
    ``[max_time, batch, num_classes]``, repeats merged and blanks (default: the last class) dropped.

    Returns ``([decoded], neg_sum_logits)``: one int64 ``tf.SparseTensor`` ``[batch, max_decoded_length]``
    and ``[batch, 1]``, the negated sum of each sample's largest logits.
    """
    _concrete(inputs, "ctc_greedy_decoder")
    x = np.asarray(inputs)
    if x.ndim != 3:
        raise ValueError(f"tf.nn.ctc_greedy_decoder: inputs must be [max_time, batch_size, num_classes]. "
                         f"Received shape {x.shape}")
    mask = None if blank_index is None else int(blank_index) % x.shape[2]
    paths, scores = ctc_decode(np.transpose(x, (1, 0, 2)), np.asarray(sequence_length), "greedy",
                               merge_repeated=bool(merge_repeated), mask_index=mask)
    return _sparse_paths(paths), scores


def ctc_beam_search_decoder(inputs: Any, sequence_length: Any, beam_width: int = 100,
                            top_paths: int = 1) -> tuple[list[SparseTensor], Any]:
    """``tf.nn.ctc_beam_search_decoder``: the ``top_paths`` most likely labelings of time-major ``inputs``
    ``[max_time, batch, num_classes]`` (blank: the last class), by prefix beam search on the host.

    Returns ``(decoded, log_probabilities)``: ``top_paths`` int64 ``tf.SparseTensor``s and
    ``[batch, top_paths]``.
    """
    _concrete(inputs, "ctc_beam_search_decoder")
    x = np.asarray(inputs)
    if x.ndim != 3:
        raise ValueError(f"tf.nn.ctc_beam_search_decoder: inputs must be [max_time, batch_size, num_classes]. "
                         f"Received shape {x.shape}")
    paths, scores = ctc_decode(np.transpose(x, (1, 0, 2)), np.asarray(sequence_length), "beam_search",
                               beam_width=beam_width, top_paths=top_paths, mask_index=None)
    return _sparse_paths(paths), as_eager(scores)
