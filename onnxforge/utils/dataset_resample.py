"""``Dataset.rejection_resample`` (and ``tf.data.experimental.rejection_resample``): elements resampled so their
classes follow a target distribution, with tf.data's algorithm.

Each element comes out as ``(class, element)``, the class being what ``class_func`` returned. With the initial
class distribution ``p`` known and the target ``q``, let ``r = q / p``: each output is drawn from the original
stream with probability ``m = min(r)``, else from a stream that keeps an element of class ``c`` with probability
``(r[c] - m) / (max(r) - m)`` -- mixing first keeps fewer elements rejected than plain rejection sampling would.
Without ``initial_dist`` ``p`` is estimated as the data goes by: class counts starting at 10 each, updated 32
elements at a time (an element's estimate includes its own group of 32), as TensorFlow does. The sampling
stops when either stream runs out.

Example:
    >>> import numpy as np
    >>> from onnxforge.utils.dataset import Dataset
    >>> ds = Dataset.from_tensor_slices(np.array([0, 1, 0, 1, 1]))
    >>> pairs = ds.rejection_resample(lambda c: c, target_dist=[0.0, 1.0], initial_dist=[0.4, 0.6], seed=0)
    >>> [(int(c), int(x)) for c, x in pairs.as_numpy_iterator()]   # only class 1 is wanted: no draw is random
    [(1, 1), (1, 1), (1, 1)]
"""
from __future__ import annotations

__all__ = ["rejection_resample"]

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .dataset_structure import pipeline_call

# tf.data's running estimate of an unknown initial distribution: counts start here, updated per group.
_SMOOTHING, _GROUP = 10, 32


def _distribution(name: str, value: Any, classes: int | None = None) -> np.ndarray:
    dist = np.asarray(value, np.float32)
    if dist.ndim != 1 or not dist.size or (dist < 0).any() or abs(float(dist.sum()) - 1.0) > 1e-3 or (
            classes is not None and dist.size != classes):
        need = "" if classes is None else f" of {classes} classes (as target_dist)"
        raise ValueError(f"Dataset.rejection_resample: `{name}` must be a 1-D probability distribution{need}: "
                         f"non-negative numbers summing to 1. Received: {name}={value!r}")
    return dist


def _mixing(initial: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, float]:
    """The per-class acceptance probabilities and the probability of drawing from the original stream."""
    ratio = target / (initial + np.finfo(np.float32).tiny)   # tf.data's guard against an empty class
    low, high = float(ratio.min()), float(ratio.max())
    accept = (ratio - low) / (high - low) if high > low else np.zeros_like(ratio)
    return accept, low


def _class_of(class_func: Callable[..., Any], element: Any, classes: int) -> np.ndarray:
    value = np.asarray(pipeline_call(class_func, element))
    if value.ndim != 0 or value.dtype.kind not in "iu" or not 0 <= int(value) < classes:
        raise ValueError("Dataset.rejection_resample: `class_func` must return an integer scalar class in "
                         f"[0, {classes}) (one per target_dist entry). Received: {value!r}")
    return value


def _estimates(dataset: Any, class_func: Callable[..., Any], target: np.ndarray
               ) -> Iterator[tuple[Any, np.ndarray, np.ndarray, float]]:
    """``(element, class, acceptance, p_original)`` per element of one pass, estimating the initial
    distribution as it goes."""
    counts = np.full(target.size, _SMOOTHING, np.int64)
    elements = dataset._elements()
    while True:
        group = list(itertools.islice(elements, _GROUP))
        if not group:
            return
        labels = [_class_of(class_func, e, target.size) for e in group]
        counts += np.bincount([int(c) for c in labels], minlength=target.size)
        accept, original = _mixing((counts / counts.sum()).astype(np.float32), target)
        for element, label in zip(group, labels):
            yield element, label, accept, original


def rejection_resample(dataset: Any, class_func: Callable[..., Any], target_dist: Any, initial_dist: Any = None,
                       seed: int | None = None) -> Any:
    """``dataset`` resampled towards ``target_dist``, as ``(class, element)`` pairs (see the module docstring)."""
    if not callable(class_func):
        raise TypeError(f"Dataset.rejection_resample: `class_func` must be callable. Received: {class_func!r}")
    target = _distribution("target_dist", target_dist)
    initial = None if initial_dist is None else _distribution("initial_dist", initial_dist, target.size)

    def passes() -> Iterator[tuple[Any, np.ndarray, np.ndarray, float]]:
        if initial is None:
            return _estimates(dataset, class_func, target)
        accept, original = _mixing(initial, target)
        return ((e, _class_of(class_func, e, target.size), accept, original) for e in dataset._elements())

    def filtered(rng: np.random.Generator) -> Iterator[Any]:
        for element, label, accept, _ in passes():
            if rng.random() < accept[int(label)]:
                yield label, element

    def source() -> Iterator[Any]:
        rng = np.random.default_rng(seed)
        # Three passes, as in tf.data: the original stream, the filtered one, and the mixing weights.
        original = ((label, element) for element, label, _, _ in passes())
        kept = filtered(rng)
        # A known distribution weighs every draw alike, until a stream runs out; an estimated one gives one
        # weight per element of its own pass (tf.data's finite weights dataset).
        weights = (itertools.repeat(_mixing(initial, target)[1]) if initial is not None
                   else (w for _, _, _, w in passes()))
        for p_original in weights:
            try:
                yield next(original if rng.random() < p_original else kept)
            except StopIteration:
                return

    if initial is not None and _mixing(initial, target)[1] >= 1.0:   # the data already has the target classes
        return dataset.map(lambda *e: (_class_of(class_func, e if len(e) > 1 else e[0], target.size),
                                       e if len(e) > 1 else e[0]))
    return type(dataset)(source, -2)
