"""Keras 3.15's metric-learning loss ``circle`` / ``Circle`` (Sun et al., 2020, "Circle Loss").

The embeddings are compared by cosine distance (they should be L2-normalized, e.g. by a
``UnitNormalization`` layer); pairs with the same integer label are positives, the others negatives. Each
row's loss is ``softplus(logsumexp(positive terms) + logsumexp(negative terms))``, and rows whose loss is
0 (no pair to learn from) are masked out of the mean, as Keras masks them.

Example:
    >>> import numpy as np
    >>> e = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], np.float32)
    >>> circle(np.array([0, 0, 1]), e).shape
    TensorShape([3])
    >>> Circle(gamma=64.0).get_config()["gamma"]
    64.0
"""
from __future__ import annotations

__all__ = ["circle", "Circle"]

from typing import Any

import numpy as np
import onnx

from ..graph import Value
from ..keras_masks import set_keras_mask
from .functions import _f
from .loss import Loss, LossFunctionWrapper
from .values import _is_symbolic, _rank, cast, elementwise, reduce, run_eagerly

_INT64 = onnx.TensorProto.INT64
_BOOL = onnx.TensorProto.BOOL


def _label_column(labels: Value) -> Value:
    """Integer labels as a column ``(n, 1)``: Keras truncates them to int32 and reads a rank-1 vector as one
    label per row."""
    labels = cast(labels, _INT64)
    if _rank(labels) == 1:
        b = labels.builder
        n = labels.shape[0] if labels.shape is not None else None
        labels = b.op("Reshape", [labels, b.const(np.asarray([-1, 1], np.int64))], shape=(n, 1))
    return labels


def _masked_logsumexp(x: Value, mask: Value) -> Value:
    """``logsumexp`` over axis 1 of the entries where ``mask`` holds; ``-inf`` for a row with none.

    The entries left out never reach ``Exp`` (they are replaced by the row's maximum first), so neither
    their value nor their gradient can overflow; an empty row's ``log(0)`` gets a zero incoming gradient
    from ``softplus(-inf)`` and sends nothing further up through the ``Where``."""
    b = x.builder
    row = (x.shape[0],) if x.shape is not None else None
    lowest = _f(x, -np.inf)
    kept = elementwise("Where", mask, x, lowest, shape=x.shape)
    peak = reduce("ReduceMax", kept, 1, keepdims=True)
    peak = elementwise("Where", b.op("IsInf", [peak], shape=peak.shape), _f(x, 0.0), peak, shape=peak.shape)
    shifted = elementwise("Sub", elementwise("Where", mask, x, peak, shape=x.shape), peak)
    exps = elementwise("Where", mask, elementwise("Exp", shifted), _f(x, 0.0), shape=x.shape)
    total = elementwise("Log", reduce("ReduceSum", exps, 1))
    return elementwise("Add", total, reduce("ReduceMax", peak, 1), shape=row)


def _circle(y_true: Value, y_pred: Value, ref_labels: Value | None, ref_embeddings: Value | None,
            remove_diagonal: bool, gamma: float, margin: float) -> Value:
    b = y_pred.builder
    if not y_pred.is_float:
        y_pred = cast(y_pred, onnx.TensorProto.FLOAT)
    refs = y_pred if ref_embeddings is None else cast(ref_embeddings, y_pred.dtype)
    query = _label_column(y_true)
    keys = query if ref_labels is None else _label_column(ref_labels)
    rows = y_pred.shape[0] if y_pred.shape is not None else None
    cols = refs.shape[0] if refs.shape is not None else None
    square = (rows, cols)

    similarity = b.op("MatMul", [y_pred, b.op("Transpose", [refs], perm=[1, 0])], shape=square)
    distance = elementwise("Max", elementwise("Sub", _f(y_pred, 1.0), similarity, shape=square), _f(y_pred, 0.0))
    positive = b.op("Equal", [query, b.op("Transpose", [keys], perm=[1, 0])], shape=square)
    negative = b.op("Not", [positive], shape=square)
    if remove_diagonal:
        # EyeLike needs a static square-free input: compare row and column indices instead (any n x m).
        r = b.op("Shape", [query], start=0, end=1)
        c = b.op("Shape", [keys], start=0, end=1)
        zero, one = b.const(np.asarray(0, np.int64)), b.const(np.asarray(1, np.int64))
        ri = b.op("Range", [zero, b.op("Squeeze", [r]), one])
        ci = b.op("Range", [zero, b.op("Squeeze", [c]), one])
        diagonal = b.op("Equal", [b.op("Unsqueeze", [ri, b.const(np.asarray([1], np.int64))]), ci], shape=square)
        positive = b.op("And", [positive, b.op("Not", [diagonal], shape=square)], shape=square)
    pos_mask, neg_mask = cast(positive, y_pred.dtype), cast(negative, y_pred.dtype)

    pos_weights = elementwise("Max", elementwise("Mul", elementwise("Add", distance, _f(distance, margin)), pos_mask),
                              _f(distance, 0.0))
    neg_weights = elementwise("Max", elementwise("Mul", elementwise("Sub", _f(distance, 1.0 + margin), distance,
                                                                    shape=square), neg_mask), _f(distance, 0.0))
    pos_terms = elementwise("Mul", elementwise("Mul", pos_weights, _f(distance, -float(gamma))),
                            elementwise("Sub", _f(distance, margin), distance, shape=square))
    neg_terms = elementwise("Mul", elementwise("Mul", neg_weights, _f(distance, float(gamma))),
                            elementwise("Sub", _f(distance, 1.0 - margin), distance, shape=square))
    total = elementwise("Add", _masked_logsumexp(pos_terms, positive), _masked_logsumexp(neg_terms, negative))
    loss = elementwise("Softplus", total)
    set_keras_mask(loss, elementwise("Greater", loss, _f(loss, 0.0)))
    return loss


def circle(y_true: Any, y_pred: Any, ref_labels: Any = None, ref_embeddings: Any = None, remove_diagonal: bool = True,
           gamma: float = 80, margin: float = 0.4) -> Any:
    """The Circle loss of each embedding in ``y_pred`` against ``ref_embeddings`` (default ``y_pred``): pairs
    whose integer labels (``y_true`` against ``ref_labels``, default ``y_true``) agree are positives.

    Args:
        y_true: integer labels, ``(batch,)`` or ``(batch, 1)``.
        y_pred: L2-normalized embeddings ``(batch, dim)``.
        ref_labels: labels of the reference embeddings; ``None``: ``y_true``.
        ref_embeddings: L2-normalized reference embeddings ``(refs, dim)``; ``None``: ``y_pred``.
        remove_diagonal: leave each embedding's pair with itself out of the positives (index ``i`` against
            reference ``i``).
        gamma: the scale of the similarity terms.
        margin: the relaxation margin.

    Returns:
        One loss per row of ``y_pred``; rows with a zero loss carry a Keras mask that leaves them out of a
        ``Loss`` object's mean.

    Example:
        >>> import numpy as np
        >>> e = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
        >>> circle(np.array([0, 1]), e).tolist()   # no positive pair left: nothing to learn
        [0.0, 0.0]
    """
    if not _is_symbolic(y_true, y_pred, ref_labels, ref_embeddings):
        return run_eagerly(_circle, y_true, y_pred, ref_labels, ref_embeddings, remove_diagonal=bool(remove_diagonal),
                           gamma=float(gamma), margin=float(margin))
    b = next(v for v in (y_pred, y_true, ref_labels, ref_embeddings) if isinstance(v, Value)).builder

    def value(x: Any) -> Any:
        return x if x is None or isinstance(x, Value) else b.const(np.asarray(x))

    return _circle(value(y_true), value(y_pred), value(ref_labels), value(ref_embeddings), bool(remove_diagonal),
                   float(gamma), float(margin))


class Circle(LossFunctionWrapper):
    """``circle`` as a loss object (Keras ``Circle``): integer labels against embeddings, defaults
    ``gamma=80.0``, ``margin=0.4``, ``remove_diagonal=True``. The rows ``circle`` masks (zero loss) do not
    count in ``"sum_over_batch_size"``'s mean.

    Example:
        >>> import numpy as np
        >>> e = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]], np.float32)
        >>> float(Circle()(np.array([0, 0, 1]), e)) > 0
        True
    """

    sparse_labels = True   # one integer label per row
    labels_are_classes = False   # a label names a group of embeddings: no range to check against the output

    def __init__(self, gamma: float = 80.0, margin: float = 0.4, remove_diagonal: bool = True,
                 reduction: str | None = "sum_over_batch_size", name: str = "circle", dtype: Any = None):
        super().__init__(circle, name=name, reduction=reduction, dtype=dtype, gamma=gamma, margin=margin,
                         remove_diagonal=remove_diagonal)
        self.gamma, self.margin, self.remove_diagonal = gamma, margin, remove_diagonal

    def get_config(self) -> dict[str, Any]:
        return {**Loss.get_config(self), "gamma": self.gamma, "margin": self.margin,
                "remove_diagonal": self.remove_diagonal}
