"""Random ops (``keras.random``) drawn inside compiled graphs, reproducibly.

Where the numbers come from (``seed`` argument):

* ``None``: the program's own RNG state (the model's ``seed_generator/state`` Variable, seeded by
  ``compile(seed=...)`` or numpy's global RNG). Each step of a training program advances it, so every step
  draws new noise, the same seed repeats a run, and a run restored with its Variables continues exactly.
* a ``SeedGenerator``: its own ``[seed, counter]`` state Variable, advanced by each step of a program that
  uses it (Keras's ``SeedGenerator`` semantics, the state is saved with the model's variables).
* an ``int``: a fixed stream: the same numbers at every call and every step (Keras's stateless int seeds).

All draws are a counter-based hash of (seed, step counter, call, element index) in standard int64 ops
(``onnxforge.graph.rng``); normal samples use the Box-Muller transform.

Example:
    >>> from onnxforge import ops
    >>> x = ops.random.normal((2000,), seed=7)
    >>> bool(abs(x.mean()) < 0.1 and abs(x.std() - 1.0) < 0.1)
    True
    >>> bool((ops.random.uniform((5,), seed=3) == ops.random.uniform((5,), seed=3)).all())
    True
"""
from __future__ import annotations

__all__ = ["normal", "uniform", "dropout", "SeedGenerator", "uniform_source", "randint", "truncated_normal",
           "categorical", "shuffle", "binomial", "gamma", "beta"]

import math
import random as python_random
from collections.abc import Callable
from typing import Any

import numpy as np

from ..backend_config import floatx
from ..graph import GraphBuilder, Value
from ..graph.rng import CounterRng
from ..variables import Variable
from ._util import _active_trace, as_value, builder_of, dtype_enum, fill_const, symbolic


class SeedGenerator:
    """A random stream with its own state Variable (``[seed, counter]``, int64).

    Args:
        seed: the stream's seed; default: drawn from Python's ``random``, as Keras draws it.
        name: prefix of the state Variable's name.

    Example:
        >>> gen = SeedGenerator(1337)
        >>> gen.state.numpy().tolist()
        [1337, 0]
    """

    def __init__(self, seed: int | None = None, name: str | None = None, **kwargs: Any):
        if seed is not None and (not isinstance(seed, (int, np.integer)) or isinstance(seed, bool)):
            raise ValueError(f"SeedGenerator: `seed` must be an integer or None. Received: seed={seed!r}")
        # Unseeded: Keras's make_default_seed, from Python's ``random`` (numpy's global stream is left alone).
        self.seed = int(seed) if seed is not None else python_random.randint(1, int(1e9))
        self.name = name or "seed_generator"
        self.state = Variable(np.asarray([self.seed, 0], np.int64), name=f"{self.name}/state", trainable=False,
                              dtype=np.int64)

    def next_host_state(self) -> np.ndarray:
        """The state for one eager draw, advancing the host counter (eager ops only)."""
        state = np.array(self.state.numpy(), copy=True)
        self.state.assign(state + np.asarray([0, 1], np.int64))
        return state

    def get_config(self) -> dict[str, Any]:
        return {"seed": self.seed, "name": self.name}

    def __repr__(self) -> str:
        return f"<SeedGenerator name={self.name!r} seed={self.seed}>"


def uniform_source(b: GraphBuilder, seed: Any = None) -> Callable[[Value], Value]:
    """A function drawing U[0, 1) noise shaped like its argument from the stream ``seed`` names (see the
    module docstring). One op makes one source, so its several draws (Box-Muller's two) differ."""
    ctx = _active_trace()
    if isinstance(seed, SeedGenerator):
        draw = getattr(ctx, "seeded_uniform", None)
        if draw is not None:
            return lambda like: draw(seed.state, like)
        state = seed.next_host_state()   # eager: one host step per op
        return CounterRng(lambda: b.const(state)).uniform
    if seed is not None:
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            raise ValueError(f"`seed` must be None, an int or a SeedGenerator. Received: seed={seed!r}")
        # A stateless stream: the same numbers at every call, as Keras's integer seeds give.
        return CounterRng(lambda: b.const(np.asarray([int(seed), 0], np.int64))).uniform
    if ctx is None:
        raise RuntimeError("Random ops need a graph under construction (a traced train_step or layer call).")
    return ctx.random_uniform


def _zeros(shape: Any, dtype: Any) -> Value:
    b = builder_of(shape)
    assert b is not None
    return fill_const(b, shape, 0, dtype_enum(dtype or floatx()))


def _standard_normal(like: Value, seed: Any) -> Value:
    b = like.builder
    draw = uniform_source(b, seed)
    u1, u2 = draw(like), draw(like)
    # 1 - u1 lies in (0, 1]: the log stays finite.
    radius = b.op("Sqrt", [b.op("Log", [1.0 - u1]) * -2.0])
    return radius * b.op("Cos", [u2 * (2.0 * math.pi)])


@symbolic
def normal(shape: Any, mean: float = 0.0, stddev: float = 1.0, dtype: Any = None, seed: Any = None) -> Value:
    """Normal samples of ``shape`` (ints and scalar tensors such as ``ops.shape(x)[0]``)."""
    like = _zeros(shape, dtype)
    z = _standard_normal(like, seed)
    b = like.builder
    if not (isinstance(stddev, (int, float)) and stddev == 1.0):
        z = z * as_value(stddev, b, z)
    if not (isinstance(mean, (int, float)) and mean == 0.0):
        z = z + as_value(mean, b, z)
    z.shape = z.shape if z.shape is not None else like.shape
    return z


@symbolic
def uniform(shape: Any, minval: float = 0.0, maxval: float = 1.0, dtype: Any = None, seed: Any = None) -> Value:
    """Uniform samples in ``[minval, maxval)`` of ``shape``."""
    like = _zeros(shape, dtype)
    b = like.builder
    u = uniform_source(b, seed)(like)
    if not (isinstance(minval, (int, float)) and isinstance(maxval, (int, float)) and (minval, maxval) == (0, 1)):
        u = u * (as_value(maxval, b, u) - as_value(minval, b, u)) + as_value(minval, b, u)
    u.shape = u.shape if u.shape is not None else like.shape
    return u


@symbolic
def dropout(inputs: Any, rate: float, noise_shape: Any = None, seed: Any = None) -> Value:
    """Zero entries with probability ``rate`` and scale the rest by ``1 / (1 - rate)``."""
    if not isinstance(rate, (int, float)) or not 0 <= rate < 1:
        raise ValueError(f"ops.random.dropout: `rate` must be a float in [0, 1). Received: rate={rate!r}")
    b = builder_of(inputs)
    x = as_value(inputs, b)
    like = x if noise_shape is None else _zeros(noise_shape, "float32")
    keep = b.op("Cast", [b.op("GreaterOrEqual", [uniform_source(b, seed)(like), float(rate)])], to=x.dtype)
    return x * (keep * (1.0 / (1.0 - rate)))


# Distributions built on the uniform source live in random_draws.py; re-exported here, the keras.random namespace.
from .random_draws import beta, binomial, categorical, gamma, randint, shuffle, truncated_normal  # noqa: E402,F401
