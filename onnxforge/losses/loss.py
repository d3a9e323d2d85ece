"""The ``Loss`` base class: reduction over the batch with sample weights and masks, as Keras 3."""
from __future__ import annotations

__all__ = ["Loss", "LossFunctionWrapper", "mask_sample_weight"]

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import backend_config, dtype_policies
from ..graph import Value, broadcast_shapes, np_dtype
from ..keras_masks import get_keras_mask
from .values import (_axes, _elem_type, _is_symbolic, _rank, cast, elementwise, expand_dims, reduce, run_eagerly,
                     squeeze_or_expand_to_same_rank)


_REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)


# ------------------------------------------------------------------------------------------ reduction
def _standardize_reduction(reduction: str | None) -> str | None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"Invalid value for argument `reduction`. Expected one of {list(_REDUCTIONS)}. "
                         f"Received: reduction={reduction!r}")
    return reduction


def reduce_weighted_values(values: Value, sample_weight: Value | None = None, mask: Value | None = None,
                           reduction: str | None = "sum_over_batch_size") -> Value:
    """Keras's loss reduction: weight the per-sample losses, then sum (and divide) as ``reduction`` says.

    ``sum_over_batch_size`` divides the weighted sum by the number of loss entries (not by the sum of the
    weights); a ``mask`` makes it divide by the number of valid entries instead.
    """
    b = values.builder
    if mask is not None:
        if reduction in ("mean", "sum_over_batch_size"):
            total = cast(b.op("Size", [mask]), values.dtype)
            valid = reduce("ReduceSum", mask, None)
            mask = elementwise("Mul", mask, _divide_no_nan(total, valid))
        if sample_weight is not None:
            sample_weight = mask_sample_weight(mask, cast(sample_weight, values.dtype))
        else:
            sample_weight = mask
    if sample_weight is not None:
        if _rank(values) is None:
            # A user function's result of unknown rank: rows of its leading dim, so per-sample weights
            # broadcast per row. A scalar becomes one row of one (weighted by every sample weight, as
            # Keras's broadcasting does): the row count is Shape(values) ++ [1], first entry, at run time.
            lead = b.op("Slice", [b.op("Concat", [b.op("Shape", [values]), _axes(b, [1])], axis=0),
                                  _axes(b, [0]), _axes(b, [1])], shape=(1,))
            target = b.op("Concat", [lead, _axes(b, [-1])], axis=0, shape=(2,))
            values = b.op("Reshape", [values, target], dtype=values.dtype, shape=(None, None))
        sample_weight = cast(sample_weight, values.dtype)
        values, sample_weight = squeeze_or_expand_to_same_rank(values, sample_weight)
        # Broadcast a per-sample weight over the remaining loss axes (e.g. per time step).
        while _rank(sample_weight) is not None and _rank(values) is not None and _rank(sample_weight) < _rank(values):
            sample_weight = expand_dims(sample_weight, -1)
        values = elementwise("Mul", values, sample_weight)
    if reduction in (None, "none") or values.shape == ():
        return values
    loss = reduce("ReduceSum", values, None)
    if reduction == "sum":
        return loss
    if reduction == "mean_with_sample_weight" and sample_weight is not None:
        return _divide_no_nan(loss, reduce("ReduceSum", sample_weight, None))
    count = cast(b.op("Size", [values], shape=()), values.dtype)
    # x * (1 / n) rather than x / n: only Mul lies on the gradient path.
    return elementwise("Mul", loss, elementwise("Reciprocal", count), shape=())


def mask_sample_weight(mask: Value, sample_weight: Value) -> Value:
    """``sample_weight * mask``, a per-sample weight ``(batch,)`` spread over the mask's other axes (time
    steps). Keras 3 broadcasts it against the mask's last axis instead, which fails unless the batch and the
    last axis happen to have the same size, and then weights time steps by sample: here it weights samples."""
    m, w = squeeze_or_expand_to_same_rank(mask, sample_weight)
    while _rank(w) is not None and _rank(m) is not None and _rank(w) < _rank(m):
        w = expand_dims(w, -1)
    return elementwise("Mul", w, m, shape=_broadcast_shape(w.shape, m.shape))


def _broadcast_shape(a: tuple | None, b: tuple | None) -> tuple | None:
    return broadcast_shapes(a, b)


def _divide_no_nan(x: Value, y: Value) -> Value:
    """``x / y`` where ``y != 0``, else 0 (Keras's ``divide_no_nan``)."""
    b = x.builder
    zero = b.const(np.asarray(0, np_dtype(y.dtype)))
    nz = b.op("Not", [b.op("Equal", [y, zero])])
    safe = b.op("Where", [nz, y, b.const(np.asarray(1, np_dtype(y.dtype)))])
    return b.op("Where", [nz, elementwise("Div", x, safe), b.const(np.asarray(0, np_dtype(x.dtype)))],
                dtype=x.dtype, shape=_broadcast_shape(x.shape, y.shape))


# ------------------------------------------------------------------------------------------ classes
class Loss:
    """Base class of losses: ``call(y_true, y_pred)`` gives per-sample values; ``__call__`` reduces them.

    Subclasses implement ``call``. ``call`` may also return ``(values, mask)`` where some entries must
    not count (``ignore_class``). Called with arrays, a loss runs eagerly and returns a numpy scalar.

    Args:
        name: name of the loss (used in logs).
        reduction: ``"sum_over_batch_size"`` (default), ``"sum"``, ``"mean"``,
            ``"mean_with_sample_weight"`` or ``None``/``"none"``.
        dtype: the dtype the loss computes in (a dtype or policy name); default ``keras.config.floatx()``.

    Example:
        >>> import numpy as np
        >>> from onnxforge.losses import MeanSquaredError
        >>> float(MeanSquaredError()(np.array([[0.0], [1.0]]), np.array([[1.0], [1.0]], np.float32)))
        0.5
    """

    #: The target is an integer class index rather than a tensor shaped like the prediction.
    sparse_labels = False
    #: The target is an integer sequence ``(batch, max_length)`` of its own length (CTC's labels).
    sequence_labels = False

    def __init__(self, name: str | None = None, reduction: str | None = "sum_over_batch_size", dtype: Any = None):
        self.name = name or _snake(type(self).__name__)
        self.reduction = _standardize_reduction(reduction)
        try:
            policy = dtype_policies.get(dtype or backend_config.floatx())
        except (TypeError, ValueError) as e:
            raise ValueError(f"Loss {self.name!r}: {e} Received: dtype={dtype!r}") from None
        self._dtype = policy.compute_dtype

    @property
    def dtype(self) -> str:
        """The dtype the loss computes in (``floatx()`` by default, whatever the model's policy)."""
        return self._dtype

    def call(self, y_true: Value, y_pred: Value) -> Value | tuple[Value, Value | None]:
        raise NotImplementedError

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        if not _is_symbolic(y_true, y_pred, sample_weight):
            return run_eagerly(self.__call__, y_true, y_pred, sample_weight)
        y_true = y_true if isinstance(y_true, Value) else y_pred.builder.const(np.asarray(y_true))
        # A prediction's Keras mask (padded time steps of a sequence model) weights its entries: Keras 3 divides
        # by the number of valid entries, so padding neither counts nor dilutes the loss.
        in_mask = get_keras_mask(y_pred)
        # Keras converts both to the loss's dtype: float16 predictions of a mixed-precision model are
        # reduced in float32. Integer labels stay integers (a float round trip would give the same ids).
        to = _elem_type(self._dtype)
        y_pred = cast(y_pred, to) if y_pred.is_float else y_pred
        y_true = cast(y_true, to) if y_true.is_float else y_true
        out = self.call(y_true, y_pred)
        values, mask = out if isinstance(out, tuple) else (out, None)
        out_mask = get_keras_mask(values)   # a loss function's own mask (circle's rows with nothing to learn)
        if out_mask is not None:
            out_mask = cast(out_mask, values.dtype)
            mask = out_mask if mask is None else elementwise("Mul", mask, out_mask)
        if in_mask is not None:
            in_mask = cast(in_mask, values.dtype)
            mask = in_mask if mask is None else elementwise("Mul", mask, in_mask)
        return reduce_weighted_values(values, sample_weight, mask, self.reduction)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Loss:
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"


class LossFunctionWrapper(Loss):
    """A loss made of a per-sample function ``fn(y_true, y_pred, **kwargs)`` (user functions too).

    Example:
        >>> from onnxforge.losses import mean_absolute_error
        >>> w = LossFunctionWrapper(mean_absolute_error, name="mae")
        >>> w.name
        'mae'
    """

    def __init__(self, fn: Callable[..., Any], reduction: str | None = "sum_over_batch_size",
                 name: str | None = None, dtype: Any = None, **kwargs: Any):
        super().__init__(name=name or getattr(fn, "__name__", None), reduction=reduction, dtype=dtype)
        self.fn = fn
        self._fn_kwargs = kwargs

    def call(self, y_true: Value, y_pred: Value) -> Value:
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
        return self.fn(y_true, y_pred, **self._fn_kwargs)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **self._fn_kwargs}


# ------------------------------------------------------------------------------------------ lookup
def _snake(name: str) -> str:
    """Keras's class-name rule: ``MeanSquaredError`` -> ``mean_squared_error``, ``AUC`` -> ``auc``."""
    import re

    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()
