"""Targets shaped by the data for user losses: Keras fixes no target shape, so a loss function of the user's
may take targets that are not shaped like the output (TensorFlow's NMT and Transformer tutorials: ``(batch,
steps)`` token ids against ``(batch, steps, vocab)`` logits, through a masked sparse crossentropy).

The compiled steps declare each target as an input. For a user loss (``OutputConfig.free_target_shape``) the
output's shape is the first guess; a batch whose targets do not fit it records their shape
(``OutputConfig.fed_target_shape``) and the steps are built again for it, once. A compile whose steps cannot
be built on the guess waits for the first batch instead of failing.

Example:
    >>> import numpy as np
    >>> from onnxforge import keras
    >>> def masked_loss(y_true, y_pred):
    ...     ce = keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)
    ...     mask = keras.ops.cast(y_true != 0, "float32")
    ...     return keras.ops.sum(ce * mask) / keras.ops.sum(mask)
    >>> inputs = keras.Input((4,), dtype="int32")
    >>> logits = keras.layers.Dense(6)(keras.layers.Embedding(6, 3)(inputs))
    >>> model = keras.Model(inputs, logits)
    >>> model.compile("adam", loss=masked_loss)
    >>> ids = np.array([[1, 2, 3, 0]] * 4)
    >>> len(model.fit(ids, ids, epochs=2, verbose=0).history["loss"])
    2
    >>> model._compiled_config.outputs[0].target_shape
    (None, 4)
"""
from __future__ import annotations

__all__ = ["adopt_target_shapes", "apply_target_shapes", "may_wait_for_targets"]

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..graph.emit import contradicts
from .feed_checks import _is_ort_value, _shape_ok


def _fits(y_shape: tuple, target_shape: tuple) -> bool:
    """Whether the compiled steps take targets of ``y_shape`` (as ``feed_checks._check_target`` reads them:
    a missing trailing 1 is added)."""
    if len(y_shape) == len(target_shape) - 1 and target_shape[-1] == 1:
        y_shape = (*y_shape, 1)
    return _shape_ok(y_shape, target_shape)


def adopt_target_shapes(model: Any, ys: Sequence[Any] | Any | None) -> None:
    """Record the shapes of fed targets that a user loss's output-shaped guess does not take, and drop the
    compiled steps so that the next ``_ensure_programs`` builds them for these shapes."""
    if ys is None:
        return
    ys = list(ys) if isinstance(ys, (list, tuple)) else [ys]
    fed = getattr(model, "_fed_target_shapes", None)
    if fed is None:
        fed = model._fed_target_shapes = {}
    config = model._compiled_config
    if config is None:   # the steps wait for the first batch: its targets' shapes are the ones to use
        for index, y in enumerate(ys):
            if y is not None and not _is_ort_value(y):
                fed.setdefault(index, (None, *np.shape(y)[1:]))
                _record_unit_axis(model, index, y)
                _record_fractional(model, index, y)
        model._programs, model._runners = {}, {}   # predict()'s alone: the steps are built now
        return
    if len(ys) != len(config.outputs):
        return
    changed = False
    for o in config.outputs:
        y = ys[o.index]
        if y is None or _is_ort_value(y):
            continue
        if not o.sparse_unit_axis and _record_unit_axis(model, o.index, y) and _sees_unit_axis(model, o):
            o.sparse_unit_axis = changed = True   # the steps are built again with it (below)
        if o.sparse_labels and not o.fractional_labels and _record_fractional(model, o.index, y):
            o.fractional_labels = changed = True   # float32 targets from now on (built again below)
        if not o.has_target or not o.free_target_shape:
            continue
        shape = (None, *np.shape(y)[1:])
        if not _fits(tuple(np.shape(y)), tuple(o.target_shape)):
            fed[o.index] = _merged(fed.get(o.index), shape)
            changed = True
    if changed:
        model._programs, model._runners = {}, {}


def _merged(before: tuple | None, shape: tuple) -> tuple:
    """``shape``, with ``None`` where targets fed before had another size (sentences padded per batch): the
    steps are then built once for any size there, not once per size."""
    if before is None or len(before) != len(shape):
        return shape
    return tuple(a if a == b else None for a, b in zip(before, shape))


def _record_unit_axis(model: Any, index: int, y: Any) -> bool:
    """Note the rank of targets fed with a trailing unit axis (``(batch, 1)`` class ids); whether ``y`` has one."""
    if np.ndim(y) < 2 or np.shape(y)[-1] != 1:
        return False
    model.__dict__.setdefault("_sparse_unit_axis", {}).setdefault(index, np.ndim(y))
    return True


def _record_fractional(model: Any, index: int, y: Any) -> bool:
    """Note targets that are floats with fractional parts (a bilinearly resized segmentation mask fed as class
    ids, keras.io's FCN); whether ``y`` is such. Keras takes them silently: its sparse losses cast them to integers
    (truncation) and ``SparseCategoricalAccuracy`` compares them as floats, so the steps must see the floats."""
    y = np.asarray(y)
    if y.dtype.kind != "f" or not y.size or np.all(y == np.trunc(y)):
        return False
    model.__dict__.setdefault("_fractional_labels", set()).add(index)
    return True


def _sees_unit_axis(model: Any, o: Any) -> bool:
    """Whether output ``o``'s sparse class ids came as ``(batch, ..., 1)`` and a metric of the user's reads them:
    Keras hands ``update_state`` the targets as fed, where the built-in losses and metrics read squeezed ids."""
    rank = (getattr(model, "_sparse_unit_axis", None) or {}).get(o.index)
    return rank == len(o.shape) and o.sparse_labels and o.user_metrics


def apply_target_shapes(model: Any, config: Any, infer: Any = None) -> None:
    """Give a freshly resolved compile config the target shapes the data showed (see ``adopt_target_shapes``),
    and the output shapes the traced ``infer`` program shows where they contradict the symbolic ones (see
    ``_traced_output_shapes``)."""
    if infer is not None:
        _traced_output_shapes(config, infer)
    fed = getattr(model, "_fed_target_shapes", None) or {}
    for o in config.outputs:
        o.sparse_unit_axis = _sees_unit_axis(model, o)
        o.fractional_labels = o.sparse_labels and o.index in (getattr(model, "_fractional_labels", None) or ())
        shape = fed.get(o.index)
        if shape is not None and o.free_target_shape and not _fits(shape, tuple(o.shape)):
            o.fed_target_shape = shape


def _traced_output_shapes(config: Any, infer: Any) -> None:
    """Outputs whose traced shape contradicts the symbolic one take the traced one. A layer's
    ``compute_output_shape`` stamps the symbolic outputs, but what runs is its ``call()``: keras.io's saving guide
    subclasses ``Dense(1)`` with a ``call()`` that scales by a ``(10,)`` vector, so the model's ``output_shape``
    says ``(None, 1)`` while the loss sees ``(batch, 10)``, as Keras's does at run time."""
    graph_outputs = infer.model.graph.output
    for o in config.outputs:
        if o.index >= len(graph_outputs) or not graph_outputs[o.index].type.HasField("tensor_type"):
            continue
        tensor = graph_outputs[o.index].type.tensor_type
        if not tensor.HasField("shape"):
            continue
        traced = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)
        if traced and contradicts(tuple(o.shape), (None, *traced[1:])):
            o.shape = (None, *traced[1:])


def may_wait_for_targets(config: Any) -> bool:
    """Whether steps that failed to build on output-shaped targets may wait for the data's (a user loss whose
    targets were not seen yet)."""
    return any(o.has_target and o.free_target_shape and o.fed_target_shape is None for o in config.outputs)
