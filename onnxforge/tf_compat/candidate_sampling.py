"""``tf.random.log_uniform_candidate_sampler``: word2vec's negative sampling, with TensorFlow's distribution.

TensorFlow draws class ``k`` of ``[0, range_max)`` with probability
``P(k) = (log(k + 2) - log(k + 1)) / log(range_max + 1)`` (a Zipf-like law for vocabularies sorted by
frequency, most frequent first) by taking ``floor(exp(u * log(range_max + 1))) - 1`` of a uniform ``u``.
With ``unique=True`` it redraws until ``num_sampled`` distinct classes are found and counts the tries; the
expected counts it returns are ``P(k) * num_sampled`` when no draw was rejected, else the probability that
``k`` came up at least once in that many tries, ``1 - (1 - P(k)) ** tries``.

Two paths, one distribution:

* called eagerly (the word2vec tutorial's data preparation calls it once per skip-gram pair), it runs that
  very algorithm on the host with NumPy. An integer ``seed`` starts a stream of its own that successive calls
  continue, as TensorFlow's seeded op does (each call differs, a rerun of the program repeats them);
  ``tf.random.set_seed`` restarts those streams. The numbers are not TensorFlow's (another generator).
* inside a traced function (``tf.nn.nce_loss`` in a ``train_step``), it is graph ops: ``unique=False`` is
  the same inverse-CDF draw; ``unique=True`` takes the ``num_sampled`` largest ``log P(k) + Gumbel noise``
  (which yields classes in the order, and with the distribution, of drawing-and-rejecting duplicates) and
  draws the rejected tries before each new class as geometric counts, so ``tries`` is distributed as
  TensorFlow's too. There the program's RNG state (``compile(seed=...)``) draws the numbers, so every
  step samples anew; ``seed`` is not used, since a fixed integer stream would repeat one sample each step.

Example:
    >>> import numpy as np
    >>> import onnxforge as tf
    >>> sampled, true_count, sampled_count = tf.random.log_uniform_candidate_sampler(
    ...     [[1]], num_true=1, num_sampled=4, unique=True, range_max=10, seed=1)
    >>> sampled.dtype.name, sorted(set(sampled.tolist())) == sorted(sampled.tolist()), tuple(true_count.shape)
    ('int64', True, (1, 1))
"""
from __future__ import annotations

__all__ = ["log_uniform_candidate_sampler", "compute_accidental_hits", "reset_seeded_streams"]

import math
from collections import namedtuple
from typing import Any

import numpy as np

from .. import ops as _ops
from ..graph import Value
from ..layers.keras_tensor import KerasTensor
from ..ops import random as _random
from ..ops._util import _active_trace
from .errors import InvalidArgumentError

LogUniformCandidateSampler = namedtuple("LogUniformCandidateSampler",
                                        ["sampled_candidates", "true_expected_count", "sampled_expected_count"])

#: One NumPy generator per integer op seed, continued by each call (TensorFlow's seeded-op behaviour).
_SEEDED: dict[int, np.random.Generator] = {}


def reset_seeded_streams() -> None:
    """Restart every seeded sampler stream (``tf.random.set_seed`` does, as TensorFlow's does)."""
    _SEEDED.clear()


def _probabilities(range_max: int) -> np.ndarray:
    k = np.arange(range_max, dtype=np.float64)
    return np.log((k + 2.0) / (k + 1.0)) / math.log(range_max + 1.0)


def _expected(p: Any, num_sampled: int, tries: Any) -> Any:
    """TensorFlow's expected count of a class of probability ``p`` after ``tries`` draws (NumPy)."""
    if tries == num_sampled:
        return (p * num_sampled).astype(np.float32)
    with np.errstate(divide="ignore"):
        return (-np.expm1(tries * np.log1p(-p))).astype(np.float32)


def _check(true_classes: Any, num_true: int, num_sampled: int, unique: bool, range_max: int) -> tuple:
    fn = "tf.random.log_uniform_candidate_sampler"
    for name, value, low in (("num_true", num_true, 1), ("num_sampled", num_sampled, 1),
                             ("range_max", range_max, 1)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise InvalidArgumentError(f"{fn}: {name} must be an integer of at least {low}. Received: "
                                       f"{name}={value!r}")
    if unique and num_sampled > range_max:
        raise InvalidArgumentError(f"{fn}: Sampler's range is too small: unique=True needs num_sampled <= "
                                   f"range_max. Received: num_sampled={num_sampled}, range_max={range_max}")
    dims = tuple(_ops.shape(true_classes))
    if len(dims) != 2 or (dims[1] is not None and dims[1] != num_true):
        raise InvalidArgumentError(f"{fn}: true_classes must be a [batch_size, num_true] matrix with num_true="
                                   f"{num_true} columns. Received shape {dims}")
    return dims


def log_uniform_candidate_sampler(true_classes: Any, num_true: int, num_sampled: int, unique: bool,
                                  range_max: int, seed: int | None = None, name: str | None = None) -> Any:
    """``tf.random.log_uniform_candidate_sampler``: ``(sampled_candidates, true_expected_count,
    sampled_expected_count)``: ``num_sampled`` int64 classes of ``[0, range_max)`` drawn log-uniformly
    (distinct when ``unique``), and float32 expected counts of ``true_classes`` (an int64
    ``[batch_size, num_true]`` matrix) and of the sampled classes. See the module docstring."""
    if isinstance(true_classes, (list, tuple)) or (type(true_classes) is np.ndarray
                                                   and true_classes.dtype.kind in "iu"):
        true_classes = np.asarray(true_classes, np.int64)   # TensorFlow converts lists and arrays to int64 here
    dtype = getattr(true_classes, "dtype", None)
    dtype = "int64" if dtype is None else getattr(dtype, "name", str(dtype))
    if dtype != "int64":
        raise InvalidArgumentError(f"tf.random.log_uniform_candidate_sampler: true_classes must be an int64 "
                                   f"tensor. Received dtype {dtype}")
    _check(true_classes, num_true, num_sampled, unique, range_max)
    if _active_trace() is not None or isinstance(true_classes, (Value, KerasTensor)):
        return _traced(true_classes, num_sampled, unique, range_max)
    if seed is None:
        rng = np.random.default_rng(np.random.randint(0, 2 ** 31 - 1))   # tf.random.set_seed seeds NumPy's
    else:
        rng = _SEEDED.setdefault(int(seed), np.random.default_rng(int(seed)))
    p = _probabilities(range_max)
    log_range = math.log(range_max + 1.0)
    sampled: list[int] = []
    seen: set[int] = set()
    tries = 0
    while len(sampled) < num_sampled:
        tries += 1
        value = (int(math.exp(rng.random() * log_range)) - 1) % range_max
        if unique:
            if value in seen:
                continue
            seen.add(value)
        sampled.append(value)
    ids = np.asarray(sampled, np.int64)
    true_ids = np.asarray(true_classes, np.int64)
    if true_ids.size and (true_ids.min() < 0 or true_ids.max() >= range_max):
        true_p = np.where((true_ids >= 0) & (true_ids < range_max), p[np.clip(true_ids, 0, range_max - 1)], 0.0)
    else:
        true_p = p[true_ids]
    return LogUniformCandidateSampler(_ops.convert_to_tensor(ids),
                                      _ops.convert_to_tensor(_expected(true_p, num_sampled, tries)),
                                      _ops.convert_to_tensor(_expected(p[ids], num_sampled, tries)))


def _traced(true_classes: Any, num_sampled: int, unique: bool, range_max: int) -> Any:
    """The in-graph sampler (see the module docstring)."""
    p = _ops.convert_to_tensor(_probabilities(range_max).astype(np.float32))
    tiny = float(np.finfo(np.float32).tiny)
    if not unique:
        u = _random.uniform((num_sampled,), dtype="float32")
        # The inverse CDF; the clip only guards float32 rounding at the top end.
        ids = _ops.clip(_ops.subtract(_ops.cast(_ops.floor(_ops.exp(_ops.multiply(
            u, float(math.log(range_max + 1.0))))), "int64"), 1), 0, range_max - 1)
        scale = float(num_sampled)
        return LogUniformCandidateSampler(ids, _ops.multiply(_ops.take(p, true_classes), scale),
                                          _ops.multiply(_ops.take(p, ids), scale))
    u = _random.uniform((range_max,), minval=tiny, maxval=1.0, dtype="float32")
    scores = _ops.subtract(_ops.log(p), _ops.log(_ops.negative(_ops.log(u))))
    _, top = _ops.top_k(scores, num_sampled)
    ids = _ops.cast(top, "int64")
    chosen = _ops.take(p, ids)
    # Probability mass already taken before each new class: a try fails (repeats a class) with it.
    taken = _ops.clip(_ops.subtract(_ops.cumsum(chosen), chosen), 0.0, 1.0 - 2.0 ** -23)
    v = _random.uniform((num_sampled,), minval=tiny, maxval=1.0, dtype="float32")
    failures = _ops.floor(_ops.divide(_ops.log(v), _ops.log(_ops.maximum(taken, tiny))))
    tries = _ops.add(_ops.sum(_ops.where(_ops.greater(taken, 0.0), failures, 0.0)), float(num_sampled))

    def expected(q: Any) -> Any:
        at_least_once = _ops.negative(_ops.expm1(_ops.multiply(tries, _ops.log1p(_ops.negative(q)))))
        return _ops.where(_ops.equal(tries, float(num_sampled)), _ops.multiply(q, float(num_sampled)),
                          at_least_once)

    return LogUniformCandidateSampler(ids, expected(_ops.take(p, true_classes)), expected(chosen))


def compute_accidental_hits(true_classes: Any, sampled_candidates: Any, num_true: int, seed: Any = None,
                            name: str | None = None) -> Any:
    """``tf.nn.compute_accidental_hits`` on concrete values: ``(indices, ids, weights)``: the row ``i``
    (int32) and the position ``j`` in ``sampled_candidates`` (int64) of every sampled class that is one of
    row ``i``'s true classes (once per listing of that class), each with weight ``-FLT_MAX``.

    Example:
        >>> [x.tolist() for x in compute_accidental_hits([[1], [3]], [3, 1, 5], num_true=1)]
        [[0, 1], [1, 0], [-3.4028234663852886e+38, -3.4028234663852886e+38]]
    """
    true = np.asarray(true_classes, np.int64)
    sampled = np.asarray(sampled_candidates, np.int64).reshape(-1)
    if true.ndim != 2 or true.shape[1] != num_true:
        raise InvalidArgumentError(f"tf.nn.compute_accidental_hits: true_classes must be [batch_size, num_true="
                                   f"{num_true}]. Received shape {true.shape}")
    # One hit per (row, true entry, position): a class listed twice among a row's true classes hits twice.
    rows, _, cols = np.nonzero(sampled[None, None, :] == true[:, :, None])
    return (_ops.convert_to_tensor(rows.astype(np.int32)), _ops.convert_to_tensor(cols.astype(np.int64)),
            _ops.convert_to_tensor(np.full(rows.shape, -np.finfo(np.float32).max, np.float32)))
