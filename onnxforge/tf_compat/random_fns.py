"""``tf.random``: draws from ``keras.random``'s in-graph generator (see ``onnxforge.ops.random`` for what
``seed`` means), with TensorFlow's argument names and distributions.

``categorical`` samples by the Gumbel-max trick (``argmax(logits + Gumbel noise)`` is distributed as
``softmax(logits)``, TensorFlow's distribution for unnormalized log-probabilities); ``shuffle`` sorts the rows
by independent uniform keys, which gives every permutation the same probability. Both are ordinary graph ops,
so they run eagerly, in a traced ``train_step`` and in a Lambda layer; the numbers differ from TensorFlow's
(another generator), the distributions do not.

Example:
    >>> import numpy as np
    >>> sorted(shuffle(np.arange(5), seed=1).tolist())
    [0, 1, 2, 3, 4]
    >>> categorical([[-np.inf, 0.0]], 3, seed=2).tolist()
    [[1, 1, 1]]
"""
from __future__ import annotations

__all__ = ["random"]

import builtins
import types
from typing import Any

import numpy as np

from .. import ops as _ops
from ..ops import random as _random


def _shape(shape: Any) -> Any:
    return tuple(shape) if isinstance(shape, (list, tuple)) else shape


def uniform(shape: Any, minval: Any = 0, maxval: Any = None, dtype: Any = "float32", seed: Any = None,
            name: str | None = None) -> Any:
    """``tf.random.uniform``: floats in ``[minval, maxval)`` (``maxval`` 1 by default), or integers in
    ``[minval, maxval)`` for an integer ``dtype`` (``maxval`` then required, as TensorFlow)."""
    if np.dtype(dtype).kind in "iu":
        if maxval is None:
            raise ValueError(f"tf.random.uniform: maxval must be specified for an integer dtype. "
                             f"Received: dtype={dtype}")
        u = _random.uniform(_shape(shape), minval=0.0, maxval=1.0, dtype="float32", seed=seed)
        span = _ops.cast(_ops.subtract(maxval, minval), "float32")
        return _ops.add(_ops.cast(_ops.floor(_ops.multiply(u, span)), dtype), _ops.cast(minval, dtype))
    return _random.uniform(_shape(shape), minval=minval, maxval=1.0 if maxval is None else maxval, dtype=dtype,
                           seed=seed)


def normal(shape: Any, mean: Any = 0.0, stddev: Any = 1.0, dtype: Any = "float32", seed: Any = None,
           name: str | None = None) -> Any:
    """``tf.random.normal``: normal samples of ``shape``."""
    return _random.normal(_shape(shape), mean=mean, stddev=stddev, dtype=dtype, seed=seed)


def categorical(logits: Any, num_samples: Any, dtype: Any = None, seed: Any = None, name: str | None = None) -> Any:
    """``tf.random.categorical``: ``[batch, num_samples]`` class indices (int64 by default) drawn from
    ``softmax(logits[b])`` for each row ``b``; a ``-inf`` logit is never drawn."""
    logits = np.asarray(logits, "float32") if isinstance(logits, (list, tuple, np.ndarray)) and \
        np.asarray(logits).dtype == np.float64 else logits
    dims = _ops.shape(logits)
    if len(dims) != 2:
        raise ValueError(f"tf.random.categorical: logits must be [batch_size, num_classes]. Received shape {dims}")
    # Uniforms in [tiny, 1): the Gumbel noise -log(-log(u)) stays finite.
    tiny = float(np.finfo(np.float32).tiny)
    u = _random.uniform((dims[0], num_samples, dims[1]), minval=tiny, maxval=1.0, dtype="float32", seed=seed)
    gumbel = _ops.negative(_ops.log(_ops.negative(_ops.log(u))))
    scores = _ops.add(_ops.expand_dims(_ops.cast(logits, "float32"), 1), gumbel)
    out_dtype = "int64" if dtype is None else dtype
    if np.dtype(out_dtype).name not in ("int32", "int64"):
        raise ValueError(f"tf.random.categorical: dtype must be int32 or int64. Received: dtype={dtype}")
    return _ops.cast(_ops.argmax(scores, axis=-1), out_dtype)


def shuffle(value: Any, seed: Any = None, name: str | None = None) -> Any:
    """``tf.random.shuffle``: ``value``'s rows (first axis) in a uniformly random order."""
    value = np.asarray(value) if isinstance(value, (list, tuple)) else value
    n = _ops.shape(value)[0]
    keys = _random.uniform((n,), dtype="float32", seed=seed)
    return _ops.take(value, _ops.argsort(keys, axis=0), axis=0)


def truncated_normal(shape: Any, mean: Any = 0.0, stddev: Any = 1.0, dtype: Any = "float32", seed: Any = None,
                     name: str | None = None) -> Any:
    """``tf.random.truncated_normal``: normal samples of ``shape`` within two standard deviations of ``mean``."""
    return _random.truncated_normal(_shape(shape), mean=mean, stddev=stddev, dtype=dtype, seed=seed)


def gamma(shape: Any, alpha: Any, beta: Any = None, dtype: Any = "float32", seed: Any = None,
          name: str | None = None) -> Any:
    """``tf.random.gamma``: samples of shape ``shape + broadcast(alpha, beta).shape`` from Gamma(``alpha``) with
    rate ``beta`` (1 when ``None``), as TensorFlow draws them: one sample of every concentration per entry of
    ``shape``.

    Example:
        >>> x = gamma([4], [0.5, 2.0], seed=1)
        >>> tuple(x.shape), bool((np.asarray(x) > 0).all())
        ((4, 2), True)
    """
    alpha = np.asarray(alpha, dtype) if isinstance(alpha, (builtins.int, builtins.float, list, tuple)) else alpha
    rate = None if beta is None else (np.asarray(beta, dtype) if isinstance(beta, (builtins.int, builtins.float,
                                                                                    list, tuple)) else beta)
    params = _ops.shape(alpha) if rate is None else \
        np.broadcast_shapes(tuple(_ops.shape(alpha)), tuple(_ops.shape(rate)))
    out_shape = tuple(_shape(shape)) + tuple(params)
    draws = _random.gamma(out_shape, _ops.broadcast_to(alpha, out_shape), dtype=dtype, seed=seed)
    return draws if rate is None else _ops.divide(draws, _ops.cast(rate, dtype))


def _stateless_seed(seed: Any, fn: str) -> builtins.int:
    """TensorFlow's stateless ``seed`` (two integers) as the one integer seed of ``keras.random``: the same pair
    gives the same numbers on every call, as in TensorFlow (another generator, so not TensorFlow's numbers)."""
    try:
        pair = np.asarray(seed).astype(np.int64).reshape(-1)
    except (TypeError, ValueError) as e:   # a traced tensor has no value while the graph is built
        raise ValueError(f"tf.random.{fn}: seed must be two concrete integers (a list, tuple or array of shape "
                         f"[2]) in onnxforge; a seed computed inside a traced function is not supported. "
                         f"Received: seed={seed!r}") from e
    if pair.shape != (2,):
        raise ValueError(f"tf.random.{fn}: seed must have shape [2]. Received: seed={seed!r}")
    return builtins.int((builtins.int(pair[0]) * 1_000_003 + builtins.int(pair[1])) % (2 ** 31 - 1))


def stateless_uniform(shape: Any, seed: Any, minval: Any = 0, maxval: Any = None, dtype: Any = "float32",
                      name: str | None = None, alg: Any = "auto_select") -> Any:
    """``tf.random.stateless_uniform``: ``uniform`` with a two-integer seed that fixes the numbers."""
    return uniform(shape, minval, maxval, dtype, seed=_stateless_seed(seed, "stateless_uniform"))


def stateless_normal(shape: Any, seed: Any, mean: Any = 0.0, stddev: Any = 1.0, dtype: Any = "float32",
                     name: str | None = None, alg: Any = "auto_select") -> Any:
    """``tf.random.stateless_normal``: ``normal`` with a two-integer seed that fixes the numbers."""
    return normal(shape, mean, stddev, dtype, seed=_stateless_seed(seed, "stateless_normal"))


def stateless_truncated_normal(shape: Any, seed: Any, mean: Any = 0.0, stddev: Any = 1.0, dtype: Any = "float32",
                               name: str | None = None, alg: Any = "auto_select") -> Any:
    """``tf.random.stateless_truncated_normal``: ``truncated_normal`` with a two-integer seed."""
    return truncated_normal(shape, mean, stddev, dtype, seed=_stateless_seed(seed, "stateless_truncated_normal"))


def split(seed: Any, num: builtins.int = 2, alg: Any = "auto_select") -> Any:
    """``tf.random.split``: ``num`` new stateless seeds (a ``[num, 2]`` array of ``seed``'s integer dtype) drawn
    from ``seed``: the same seed gives the same new ones (not TensorFlow's numbers: another generator).

    Example:
        >>> tuple(split([1, 2], num=3).shape)
        (3, 2)
    """
    key = _stateless_seed(seed, "split")
    given = np.asarray(seed).dtype
    # TensorFlow reads a list of Python ints as int32, as tf.constant does
    dtype = given if given in (np.int32, np.int64) and not isinstance(seed, (list, tuple)) else np.dtype(np.int32)
    if not isinstance(num, builtins.int) or num < 1:
        raise ValueError(f"tf.random.split: num must be a positive integer. Received: num={num!r}")
    return _ops.convert_to_tensor(np.random.default_rng(key).integers(0, np.iinfo(np.int32).max, (num, 2)).astype(dtype))


def set_seed(seed: builtins.int | None) -> None:
    """``tf.random.set_seed``: seeds NumPy's global generator, which seeds the programs' RNG state, and
    restarts the seeded candidate samplers' streams."""
    from .candidate_sampling import reset_seeded_streams

    np.random.seed(seed)
    reset_seeded_streams()


random = types.SimpleNamespace(uniform=uniform, normal=normal, categorical=categorical, shuffle=shuffle,
                               set_seed=set_seed, truncated_normal=truncated_normal, gamma=gamma,
                               stateless_uniform=stateless_uniform, stateless_normal=stateless_normal,
                               stateless_truncated_normal=stateless_truncated_normal, split=split)
