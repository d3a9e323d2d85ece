"""The user's ``x`` / ``y`` / ``sample_weight`` / ``class_weight`` as checked arrays: names, dtypes, lengths,
per-output weights, Keras's error messages."""
from __future__ import annotations

__all__ = ["Batch", "io_names", "target_slots", "to_arrays", "to_weights", "class_weight_to_sample_weight"]

import warnings
from collections.abc import Mapping
from typing import Any, Union

import numpy as np


Weights = Union[np.ndarray, list, None]  # one vector for all outputs, or one (or None) per output
Batch = tuple[list[np.ndarray], list[np.ndarray], Weights]


def io_names(model: Any, kind: str) -> list[str] | None:
    """The model's input (``kind="input"``) or output names, or ``None`` when not known yet."""
    # An unbuilt model (a Sequential without an Input) raises here: its names come with its first batch.
    try:
        # Outputs are keyed by ``output_keys`` (the dict keys of a dict-output model) where a model has them.
        names = getattr(model, "output_keys", None) if kind == "output" else None
        names = names if names is not None else getattr(model, f"{kind}_names", None)
        if names is None:
            tensors = getattr(model, f"{kind}s", None)
            names = [t.name for t in tensors] if tensors else None
    except (AttributeError, TypeError, ValueError, RuntimeError):
        names = None
    return list(names) if names else None


def _is_ort_value(value: Any) -> bool:
    return type(value).__name__ == "OrtValue" and callable(getattr(value, "data_type", None))


def target_slots(model: Any) -> list[bool] | None:
    """Which outputs of a compiled, built model have a loss (``None`` before that is known)."""
    config = getattr(model, "_compiled_config", None)
    return None if config is None else [o.loss is not None for o in config.outputs]


def _is_array_like(value: Any) -> bool:
    return isinstance(value, np.ndarray) or hasattr(value, "__array__") or np.isscalar(value)


def is_batch_source(value: Any) -> bool:
    """Whether ``value`` yields batches itself (generator, PyDataset-like) rather than holding arrays."""
    if value is None or isinstance(value, (np.ndarray, list, tuple, Mapping, str, bytes)):
        return False
    if hasattr(value, "__array__"):
        return False
    return hasattr(value, "__iter__") or hasattr(value, "__next__") or (
        hasattr(value, "__getitem__") and hasattr(value, "__len__"))


def to_arrays(data: Any, names: list[str] | None, arg: str, method: str, text_ok: bool = False,
              targeted: list[bool] | None = None) -> list[np.ndarray]:
    """One array per model input (or output) from an array, a list/tuple or a dict.

    Args:
        data: what the user passed.
        names: the model's input (or output) names, ``None`` if unknown.
        arg: the argument's name for error messages (``"x"``, ``"y"``, ``"validation_data[0]"``).
        method: ``"fit"``, ``"evaluate"`` or ``"predict"``, for error messages.
        text_ok: accept arrays of strings (the model has a string input: StringLookup, TextVectorization).
        targeted: for targets, which outputs have a loss (``target_slots``); fewer arrays than outputs
            then fill those outputs in order, as Keras matches ``y`` to the losses that are not None.
    """
    if data is None:
        return []
    if isinstance(data, (str, bytes)):
        raise TypeError(f"{method}(): {arg} must be a numpy array, a list of arrays or a dict keyed by "
                        f"{'input' if arg.startswith('x') else 'output'} names. Received: {arg}={data!r}")
    if isinstance(data, Mapping):
        if names is None:
            names = list(data)
        missing = [n for n in names if n not in data]
        if missing and arg.startswith("y") and len(missing) < len(names):
            # Targets for some outputs only (Keras allows it for outputs without a loss or metrics): the
            # others are None here, and the step checks the outputs it trains on have theirs.
            arrays = [None if n in missing else _as_array(data[n], f"{arg}[{n!r}]", method) for n in names]
            extra = [k for k in data if k not in names]
            if extra:
                raise ValueError(f"{method}(): {arg} has key(s) {extra} that are not model outputs {names}.")
            return arrays
        if missing:
            raise ValueError(f"{method}(): {arg} is a dict without the key(s) {missing}. Expected keys "
                             f"{names} (the model's names). Received keys: {list(data)}")
        extra = [k for k in data if k not in names]
        if extra:
            warnings.warn(f"{method}(): ignoring key(s) {extra} of {arg}, which are not model names "
                          f"{names}.", stacklevel=4)
        arrays = [_as_array(data[n], f"{arg}[{n!r}]", method, text_ok) for n in names]
    elif isinstance(data, (list, tuple)):
        all_arrays = bool(data) and all(
            isinstance(v, np.ndarray) or (hasattr(v, "__array__") and not np.isscalar(v)) for v in data)
        per_name = (names is not None and len(names) > 1 and len(data) == len(names)
                    and all(isinstance(v, (list, tuple, np.ndarray)) for v in data))
        if all_arrays or per_name:
            arrays = [_as_array(v, f"{arg}[{i}]", method, text_ok) for i, v in enumerate(data)]
        else:
            # Plain nested Python lists of numbers are one array (one sample per element).
            arrays = [_as_array(data, arg, method, text_ok)]
    elif _is_array_like(data):
        arrays = [_as_array(data, arg, method, text_ok)]
    else:
        raise TypeError(f"{method}(): {arg} must be a numpy array, a list of arrays or a dict keyed by "
                        f"names. Received: {arg} of type {type(data).__name__}")
    if (targeted is not None and names is not None and len(names) == len(targeted)
            and 0 < len(arrays) < len(names) and len(arrays) == sum(targeted)):
        # Keras: with some outputs' losses None (``loss=[loss_fn, None]``), y may hold targets for the
        # outputs that have a loss only, in order; the others get None.
        given = iter(arrays)
        arrays = [next(given) if t else None for t in targeted]
    if names is not None and len(arrays) != len(names):
        kind = "inputs" if arg.startswith("x") else "outputs"
        raise ValueError(f"{method}(): the model has {len(names)} {kind} {names}, but {arg} holds "
                         f"{len(arrays)} arrays.")
    return arrays


def _as_array(value: Any, arg: str, method: str, text_ok: bool = False) -> np.ndarray:
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as e:
        raise TypeError(f"{method}(): {arg} could not be converted to a numpy array ({e}). "
                        f"Received: {type(value).__name__}") from e
    text = array.dtype.kind in "US" or (array.dtype == object and array.size and
                                        all(isinstance(v, (str, bytes)) for v in array.flat))
    if text and text_ok:
        array = array.astype(object)  # strings for a string input (StringLookup, TextVectorization)
    elif array.dtype == object or array.dtype.kind in "USV":
        raise TypeError(f"{method}(): {arg} must hold numbers. Received an array of dtype {array.dtype}")
    if array.ndim == 0:
        raise ValueError(f"{method}(): {arg} must have a batch dimension (one row per sample). "
                         f"Received a scalar: {arg}={array!r}")
    return array


def _labelled(prefix: str, arrays: list[np.ndarray], names: list[str] | None) -> list[tuple[str, np.ndarray]]:
    if len(arrays) == 1:
        return [] if arrays[0] is None else [(prefix, arrays[0])]
    labels = names if names is not None and len(names) == len(arrays) else range(len(arrays))
    return [(f"{prefix}[{n!r}]" if isinstance(n, str) else f"{prefix}[{n}]", a) for n, a in zip(labels, arrays)
            if a is not None]


def check_cardinality(method: str, named: list[tuple[str, np.ndarray]]) -> int:
    """The common number of samples of ``named`` arrays; a clear error naming them if they differ."""
    counts = {name: len(a) for name, a in named}
    if len(set(counts.values())) > 1:
        detail = ", ".join(f"{name}: {n} samples" for name, n in counts.items())
        raise ValueError(f"{method}(): data cardinality is ambiguous; all arrays must contain the same "
                         f"number of samples (first dimension). Received: {detail}")
    return next(iter(counts.values()))


def _weight_vector(value: Any, arg: str, method: str) -> np.ndarray:
    """One weight per sample, ``(samples,)`` (``(samples, 1)`` squeezed), or a higher-rank array left as it is:
    Keras's temporal weights, one per sample and time step, checked against the output they weigh when it
    is fed (``feed_checks.check_weights``)."""
    w = numeric_weights(value, arg, method)
    if w.ndim == 2 and w.shape[1] == 1:
        w = w[:, 0]
    if w.ndim == 0:
        raise ValueError(f"{method}(): {arg} must be an array with one weight per sample, shape (samples,), or "
                         f"for a sequence output one per sample and time step, shape (samples, steps). "
                         f"Received shape {w.shape}")
    return w


def numeric_weights(value: Any, arg: str, method: str) -> np.ndarray:
    """``value`` as float32 weights, or a ``TypeError`` naming ``arg`` (strings, objects, None inside).

    Example:
        >>> numeric_weights([1, 2.5], "sample_weight", "fit").tolist()
        [1.0, 2.5]
    """
    raw = np.asarray(value) if not isinstance(value, (str, bytes)) else np.asarray([value])
    if raw.dtype.kind not in "biuf":
        raise TypeError(f"{method}(): {arg} must hold numbers (one weight per sample). Received: {arg}="
                        f"{_brief(value)} (dtype {raw.dtype})")
    w = raw.astype(np.float32)
    if w.size and not np.isfinite(w).all():
        raise ValueError(f"{method}(): {arg} must hold finite numbers. Received: {arg}={_brief(value)}")
    return w


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_class_weight(class_weight: Any, method: str) -> dict[int, float]:
    """``class_weight`` as ``{class index: weight}``; a clear error naming the argument otherwise.

    Example:
        >>> check_class_weight({0: 1, 1: 2.5}, "fit")
        {0: 1.0, 1: 2.5}
    """
    if not isinstance(class_weight, Mapping):
        raise TypeError(f"{method}(): class_weight must be a dict mapping class indices to weights. "
                        f"Received: class_weight={_brief(class_weight)}")
    out: dict[int, float] = {}
    for key, weight in class_weight.items():
        if isinstance(key, (bool, np.bool_)) or not isinstance(key, (int, np.integer)) or key < 0:
            raise ValueError(f"{method}(): class_weight keys must be class indices (non-negative integers). "
                             f"Received: class_weight={_brief(class_weight)} with key {key!r}")
        if isinstance(weight, (bool, np.bool_)) or not isinstance(weight, (int, float, np.integer, np.floating)) \
                or not np.isfinite(weight):
            raise ValueError(f"{method}(): class_weight values must be finite numbers. Received: "
                             f"class_weight[{key!r}]={weight!r}")
        out[int(key)] = float(weight)
    return out


def to_weights(sample_weight: Any, out_names: list[str] | None, n_outputs: int, arg: str,
               method: str) -> Weights:
    """``sample_weight`` as one vector, or as a list with one vector (or ``None``) per output.

    Per-output weights come as a dict keyed by output names or as a list with one entry per output.
    """
    if sample_weight is None:
        return None
    if isinstance(sample_weight, Mapping):
        if out_names is None:
            raise ValueError(f"{method}(): {arg} is a dict, but the model's output names are not known yet.")
        unknown = [k for k in sample_weight if k not in out_names]
        if unknown:
            raise ValueError(f"{method}(): {arg} has key(s) {unknown} that are not output names {out_names}.")
        return [None if sample_weight.get(n) is None else _weight_vector(sample_weight[n], f"{arg}[{n!r}]", method)
                for n in out_names]
    if (isinstance(sample_weight, (list, tuple)) and n_outputs > 1 and len(sample_weight) == n_outputs
            and all(w is None or np.ndim(w) >= 1 for w in sample_weight)):
        return [None if w is None else _weight_vector(w, f"{arg}[{i}]", method) for i, w in enumerate(sample_weight)]
    return _weight_vector(sample_weight, arg, method)


def _take_weights(sw: Weights, index: Any) -> Weights:
    if sw is None:
        return None
    if isinstance(sw, list):
        return [None if w is None else w[index] for w in sw]
    return sw[index]


def _labelled_weights(arg: str, sw: Weights, out_names: list[str] | None) -> list[tuple[str, np.ndarray]]:
    if sw is None:
        return []
    if not isinstance(sw, list):
        return [(arg, sw)]
    labels = out_names if out_names is not None and len(out_names) == len(sw) else range(len(sw))
    return [(f"{arg}[{n!r}]" if isinstance(n, str) else f"{arg}[{n}]", w)
            for n, w in zip(labels, sw) if w is not None]


def class_weight_to_sample_weight(y: np.ndarray, class_weight: Mapping[int, float]) -> np.ndarray:
    """Per-sample weights from ``class_weight``; labels are integers, ``(n, 1)`` or one-hot rows.

    Classes absent from ``class_weight`` weigh 1, as in Keras 3.

    Example:
        >>> class_weight_to_sample_weight(np.array([0, 1, 1]), {1: 3.0}).tolist()
        [1.0, 3.0, 3.0]
    """
    labels = np.asarray(y)
    if labels.ndim > 1:
        labels = labels[..., 0] if labels.shape[-1] == 1 else np.argmax(labels, axis=-1)
    labels = np.round(labels).astype(np.int64).reshape(len(labels), -1)[:, 0]
    weights = np.ones(len(labels), dtype=np.float32)
    for cls, w in class_weight.items():
        weights[labels == int(cls)] = float(w)
    return weights
