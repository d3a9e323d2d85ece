"""Host-side checks of what the batch methods receive, and small walks over a model, for ``TrainingMixin``:
ranks, fixed dims and dtypes of arrays and OrtValues against ``model.inputs`` / ``model.outputs``, sparse
label ranges, sample weights per output, sample counts; errors name the input or output, the value
received and what was expected.
"""
from __future__ import annotations

__all__: list[str] = []

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..compiler import Program
from .data_checks import to_weights


# ------------------------------------------------------------------------------------------ helpers
def _layer_trackers(programs: Mapping[str, Program]) -> list[tuple[str, Any]]:
    """The metrics layers update in ``call()``, by tracker name, from the step programs (the training step's
    first: a metric updated only with ``training=True`` still reports in ``fit``)."""
    out: dict[str, Any] = {}
    for kind in ("train_step", "eval_step"):
        program = programs.get(kind)
        for name, metric in (program.layer_metrics if program is not None else []):
            out.setdefault(name, metric)
    return list(out.items())


_ONES: dict[int, np.ndarray] = {}


def _ones(n: int) -> np.ndarray:
    """Unit sample weights for a batch of ``n`` (cached: most batches share a size)."""
    ones = _ONES.get(n)
    if ones is None:
        ones = _ONES[n] = np.ones(n, np.float32)
        ones.setflags(write=False)
    return ones


def _all_layers(model: Any) -> list[Any]:
    """``model`` and every layer under it, parents before children."""
    out: list[Any] = []

    def visit(layer: Any) -> None:
        if any(layer is seen for seen in out):
            return
        out.append(layer)
        for sub in layer._flat_sublayers() if hasattr(layer, "_flat_sublayers") else []:
            visit(sub)

    visit(model)
    return out


def _serialize(value: Any) -> Any:
    """Compile arguments as data: strings as they are, Keras objects as class name and config."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Mapping):
        return {k: _serialize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_serialize(v) for v in value]
    if hasattr(value, "get_config") and not isinstance(value, type):
        cls = type(value)
        entry = {"class_name": cls.__name__, "config": value.get_config()}
        if not cls.__module__.split(".")[0] == "onnxforge":
            # A user's class (a Loss subclass of the program's): Keras 3 records where it lives and the name it is
            # registered under, which its loader looks up in custom_objects; "keras.losses" would send it there.
            from ..keras_objects import get_registered_name

            entry.update(module=cls.__module__, registered_name=get_registered_name(cls))
        return entry
    return getattr(value, "__name__", repr(value))


def _user_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first caller outside onnxforge."""
    import os
    import sys

    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def _output_layer(model: Any, index: int) -> Any:
    outputs = getattr(model, "outputs", None) or []
    if index < len(outputs):
        history = getattr(outputs[index], "_keras_history", None)
        if history is not None:
            return history[0]
    layers = getattr(model, "layers", None) or []
    return layers[-1] if layers and len(outputs) <= 1 else None


def _check_cardinality(method: str, counts: Mapping[str, int]) -> None:
    if len(set(counts.values())) > 1:
        detail = ", ".join(f"{name}: {n} samples" for name, n in counts.items())
        raise ValueError(f"{method}(): data cardinality is ambiguous; all arrays must contain the same number of "
                         f"samples (first dimension). Received: {detail}")


def _adjust_rank(array: np.ndarray, expected: tuple) -> np.ndarray:
    """Keras's functional rule on data: ``(n, 28, 28)`` feeds an ``Input((28, 28, 1))`` and a trailing axis
    of size 1 too many is dropped (the model's call applies the same rule to tensors)."""
    if array.ndim == len(expected) - 1 and expected and expected[-1] == 1:
        return array[..., None]
    if array.ndim == len(expected) + 1 and array.shape[-1] == 1:
        return array[..., 0]
    return array


def _shape_ok(shape: tuple, expected: tuple) -> bool:
    return len(shape) == len(expected) and all(e is None or e == s for s, e in zip(shape, expected))


def _cast(array: np.ndarray, dtype: np.dtype, what: str, method: str) -> np.ndarray:
    if array.dtype == dtype:
        return array
    if dtype == object:  # a string input: onnxruntime takes str objects
        if array.dtype.kind not in "USO":
            raise TypeError(f"{method}(): {what} expects strings. Received an array of dtype {array.dtype}")
        return array.astype(str).astype(object) if array.dtype.kind == "S" else array.astype(object)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{method}(): {what} must hold numbers of dtype {dtype.name}. Received an array of "
                        f"dtype {array.dtype}")
    if dtype.kind in "iu" and array.dtype.kind == "f" and not np.all(np.isfinite(array) & (array == np.round(array))):
        raise ValueError(f"{method}(): {what} expects integers (dtype {dtype.name}). Received an array of "
                        f"dtype {array.dtype} with non-integer values")
    if dtype.kind in "iu" and array.size:
        # astype would wrap (uint64 2**63 -> 0) or saturate (1e19 -> INT_MIN) values that do not fit.
        info, low, high = np.iinfo(dtype), array.min(), array.max()
        if low < info.min or high > info.max:
            raise ValueError(f"{method}(): {what} expects {dtype.name} values in [{info.min}, {info.max}]. "
                             f"Received values in [{low}, {high}]")
    return array.astype(dtype)


def _is_ort_value(value: Any) -> bool:
    """Whether ``value`` is an onnxruntime ``OrtValue`` (a tensor that may live on a device)."""
    return type(value).__name__ == "OrtValue" and callable(getattr(value, "data_type", None))


def _length(value: Any) -> int:
    shape = value.shape() if _is_ort_value(value) else np.shape(value)
    return int(shape[0]) if len(shape) else 1


_ORT_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
              "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(bool)": np.bool_}


def _check_ort_value(value: Any, expected: tuple, dtype: np.dtype, what: str) -> Any:
    """Shape and dtype checks for an ``OrtValue`` feed, without reading it back (it is bound as it is)."""
    shape, kind = tuple(value.shape()), value.data_type()
    if not _shape_ok(shape, expected):
        raise ValueError(f"{what} is incompatible: expected shape={expected}, found shape={shape}")
    if _ORT_TYPES.get(kind) != np.dtype(dtype):
        raise TypeError(f"{what} must be an OrtValue of dtype {np.dtype(dtype).name} (an OrtValue is bound without "
                        f"a conversion). Received: an OrtValue of type {kind}")
    return value


def _check_array(array: np.ndarray, expected: tuple, dtype: np.dtype, what: str, method: str) -> np.ndarray:
    if not _shape_ok(array.shape, expected):
        raise ValueError(f"{what} is incompatible: expected shape={expected}, found shape={array.shape}")
    return _cast(array, dtype, what, method)


def _broadcast_target(y: np.ndarray, loss: Any, out_shape: tuple) -> np.ndarray | None:
    """Targets one rank short as Keras's elementwise regression losses read them, or ``None``: Keras subtracts
    them from the output with NumPy broadcasting, so ``(1,)`` targets against a ``(1, 10)`` output count for every
    unit (the ``EarlyStopping`` docstring fits ``np.zeros(5)`` to ``Dense(10)`` with ``mse`` and ``batch_size=1``)
    and ``(10,)`` against ``(10, 10)`` line up with the units; same-rank ``(n, 1)`` targets against ``(n, 10)``
    count for every unit too (keras.io's saving guide). The crossentropies and the cosine similarity do
    not broadcast (a shape error or another value), so they keep the shape check."""
    from ..losses import functions as F

    broadcasting = (F.mean_squared_error, F.mean_absolute_error, F.huber, F.log_cosh, F.poisson, F.hinge,
                    F.squared_hinge, F.mean_absolute_percentage_error, F.mean_squared_logarithmic_error)
    if getattr(loss, "fn", None) not in broadcasting or y.ndim not in (len(out_shape) - 1, len(out_shape)) \
            or y.ndim == 0:
        return None
    full = (y.shape[0], *out_shape[1:])
    if not all(isinstance(d, int) for d in full[1:]):
        return None
    try:
        return np.ascontiguousarray(np.broadcast_to(y, np.broadcast_shapes(y.shape, full)))
    except ValueError:
        return None


def _check_target(y: np.ndarray, out: Any, label: str, method: str) -> np.ndarray:
    out_shape = tuple(out.shape)
    if getattr(out, "sequence_labels", False):
        if y.ndim != 2:
            raise ValueError(f"{method}(): the {type(out.loss).__name__} loss of output {out.name!r} takes integer label "
                             f"sequences of shape (batch_size, max_length), padded with the blank. Received: "
                             f"{label}.shape={y.shape}")
        return _cast(y, np.dtype(np.int64), label, method)
    if out.sparse_labels:
        if y.ndim == len(out_shape) and y.shape[-1] == 1:
            y = y.reshape(y.shape[:-1])
        expected = out_shape[:-1]
        if not _shape_ok(y.shape, expected):
            hint = ""
            if y.ndim == len(out_shape) and y.shape[-1] == out_shape[-1]:
                hint = (" These look like one-hot labels: use loss='categorical_crossentropy' for one-hot "
                        "targets, or pass integer class ids.")
            raise ValueError(f"{method}(): arguments `target` and `output` must have the same shape up until the last "
                             f"dimension. Received: {label}.shape={y.shape}, output {out.name!r} shape="
                             f"{out_shape}.{hint}")
        if getattr(out, "fractional_labels", False) and y.dtype.kind in "biuf":
            # Fed as floats (see target_shapes._record_fractional); the ids the loss reads are truncated ones.
            if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
                raise ValueError(f"{method}(): {label} holds class ids, but received non-finite values")
            fed, y = y.astype(np.float32), _cast(np.trunc(y), np.dtype(np.int64), label, method)
        else:
            fed = y = _cast(y, np.dtype(np.int64), label, method)
        classes = out_shape[-1]
        # Circle's labels name groups of embeddings, not output classes: any integer is valid.
        if isinstance(classes, int) and y.size and getattr(out.loss, "labels_are_classes", True):
            ignore = getattr(out.loss, "ignore_class", None)
            valid = y if ignore is None else y[y != ignore]
            if valid.size and (valid.min() < 0 or valid.max() >= classes):
                bad = int(valid.min()) if valid.min() < 0 else int(valid.max())
                raise ValueError(f"{method}(): received a label value of {bad} in {label}, which is outside the valid "
                                 f"range of [0, {classes}) for output {out.name!r} ({classes} classes).")
        return fed
    if getattr(out, "fed_target_shape", None) is not None:
        out_shape = tuple(out.fed_target_shape)   # a user loss's targets, shaped as the data first came
    if y.ndim == len(out_shape) - 1 and out_shape[-1] == 1:
        y = y.reshape(y.shape + (1,))
    elif (broadcast := _broadcast_target(y, out.loss, out_shape)) is not None:
        y = broadcast
    if not _shape_ok(y.shape, out_shape):
        hint = ""
        if y.ndim == len(out_shape) - 1 and isinstance(out_shape[-1], int) and out_shape[-1] > 1:
            hint = (" Integer class labels need loss='sparse_categorical_crossentropy' (or one-hot encode "
                    "them).")
        raise ValueError(f"{method}(): arguments `target` and `output` must have the same shape. Received: "
                         f"{label}.shape={y.shape}, output {out.name!r} shape={out_shape}.{hint}")
    return _cast(y, np.dtype(np.float32), label, method)


def _per_output_weights(sample_weight: Any, outs: list, method: str) -> list[np.ndarray | None]:
    """``sample_weight`` as one vector (or ``None``) per output, read as ``fit`` reads it."""
    weights = to_weights(sample_weight, [o.name for o in outs], len(outs), "sample_weight", method)
    return weights if isinstance(weights, list) else [weights] * len(outs)


def check_weights(w: np.ndarray, y: Any, out: Any, label: str, method: str) -> np.ndarray:
    """``w`` for output ``out`` with checked targets ``y``: one weight per sample, or Keras's temporal weights,
    one per loss entry (the target's shape without its class axis: ``(samples, steps)``), else a clear error."""
    if w.ndim == 1:
        return w
    y_shape = tuple(y.shape()) if _is_ort_value(y) else np.shape(y)
    loss_shape = y_shape[:1] if getattr(out, "sequence_labels", False) else y_shape if out.sparse_labels else \
        y_shape[:-1]
    if len(loss_shape) >= 2 and w.shape == loss_shape:
        return w
    if out.loss is None and getattr(out, "needs_target", False) and w.shape == y_shape and len(y_shape) >= 2:
        # A model's own compute_loss receives the weights as fed (keras.io's masked language model: one per
        # token id, shaped like its (batch, steps) targets).
        return w
    also = f", or one per sample and time step, shape {loss_shape}" if len(loss_shape) >= 2 else ""
    raise ValueError(f"{method}(): {label} has shape {w.shape}, but output {out.name!r} takes one weight per sample, "
                     f"shape ({y_shape[0]},){also}.")
