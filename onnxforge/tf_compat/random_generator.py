"""``tf.random.Generator`` and ``tf.random.get_global_generator``: a random stream whose state is a Variable.

A ``Generator`` holds one ``onnxforge.ops.random.SeedGenerator`` (a ``[seed, counter]`` int64 state
Variable): every draw advances it, eagerly and in a ``tf.function`` or ``train_step`` (where the state is
a program Variable, updated by each run), so a generator made ``from_seed`` repeats its numbers from the same
seed and successive draws differ. The distributions, shapes, dtypes and ranges are TensorFlow's; the numbers
are not (TensorFlow's Philox streams are not reproduced), and ``state`` has 2 entries (TensorFlow's Philox
state has 3). ``split`` derives child seeds on the host with NumPy's ``SeedSequence`` from the parent's
state, so the children are independent of each other and of the parent, and reproducible from its seed.

Example:
    >>> import onnxforge as tf
    >>> g = tf.random.Generator.from_seed(1)
    >>> a = g.normal([3])
    >>> b = tf.random.Generator.from_seed(1).normal([3])
    >>> bool((a == b).all()), bool((g.normal([3]) == a).all()), a.dtype.name
    (True, False, 'float32')
"""
from __future__ import annotations

__all__ = ["Generator", "get_global_generator", "set_global_generator"]

import secrets
from typing import Any

import numpy as np

from .. import ops as _ops
from ..ops.random import SeedGenerator


def _int_seed(seed: Any, where: str) -> int:
    try:
        value = np.asarray(seed.numpy() if hasattr(seed, "numpy") else seed)
    except (TypeError, ValueError) as e:
        raise ValueError(f"tf.random.Generator.{where}: seed must be a concrete integer. Received: {seed!r}") from e
    if value.dtype.kind not in "iu" or value.size == 0:
        raise ValueError(f"tf.random.Generator.{where}: seed must be an integer (or integers). Received: {seed!r}")
    # Several integers (TensorFlow accepts a seed vector) are mixed into one 63-bit seed.
    return int(np.random.SeedSequence([int(v) % 2 ** 63 for v in value.reshape(-1)]).generate_state(1, np.uint64)[0]
               >> np.uint64(1)) if value.size > 1 else int(value) % 2 ** 63


class Generator:
    """``tf.random.Generator``: build one with ``from_seed``, ``from_non_deterministic_state`` or
    ``from_state``; draw with ``normal`` / ``uniform`` / ``truncated_normal``; ``split`` it into independent
    generators; ``make_seeds`` for the stateless functions. See the module docstring."""

    def __init__(self, copy_from: Generator | None = None, state: Any = None, alg: Any = None):
        if copy_from is not None:
            state = copy_from.state.numpy()
        if state is None:
            raise ValueError("tf.random.Generator: pass copy_from or state, or use Generator.from_seed / "
                             "from_non_deterministic_state")
        state = np.asarray(state.numpy() if hasattr(state, "numpy") else state, np.int64).reshape(-1)
        if state.size < 2:
            raise ValueError(f"tf.random.Generator: state must hold at least 2 integers. Received: {state.tolist()}")
        self._stream = SeedGenerator(int(state[0]), name="generator")
        self._stream.state.assign(state[:2])
        self.algorithm = 1 if alg is None else alg    # TensorFlow's Philox number; kept for programs that read it

    @classmethod
    def from_seed(cls, seed: Any, alg: Any = None) -> Generator:
        """A generator whose numbers follow from ``seed`` (an integer, or a vector of them)."""
        return cls(state=[_int_seed(seed, "from_seed"), 0], alg=alg)

    @classmethod
    def from_non_deterministic_state(cls, alg: Any = None) -> Generator:
        """A generator seeded from the operating system's entropy: different in every run."""
        return cls(state=[secrets.randbits(63), 0], alg=alg)

    @classmethod
    def from_state(cls, state: Any, alg: Any = None) -> Generator:
        """A generator continuing from ``state`` (another generator's ``state``)."""
        return cls(state=state, alg=alg)

    @property
    def state(self) -> Any:
        """The int64 ``[seed, counter]`` state Variable (2 entries, not TensorFlow's 3)."""
        return self._stream.state

    def reset_from_seed(self, seed: Any) -> None:
        """Restart the stream as ``from_seed(seed)`` would."""
        self.state.assign(np.asarray([_int_seed(seed, "reset_from_seed"), 0], np.int64))

    def skip(self, delta: int) -> None:
        """Advance the stream by ``delta`` draws."""
        self.state.assign(self.state.numpy() + np.asarray([0, int(delta)], np.int64))

    def normal(self, shape: Any, mean: Any = 0.0, stddev: Any = 1.0, dtype: Any = "float32",
               name: str | None = None) -> Any:
        """Normal samples of ``shape`` (a float ``dtype``)."""
        from .random_fns import normal
        return normal(shape, mean, stddev, _float(dtype, "normal"), seed=self._stream)

    def truncated_normal(self, shape: Any, mean: Any = 0.0, stddev: Any = 1.0, dtype: Any = "float32",
                         name: str | None = None) -> Any:
        """Normal samples of ``shape`` within two standard deviations of ``mean``."""
        from .random_fns import truncated_normal
        return truncated_normal(shape, mean, stddev, _float(dtype, "truncated_normal"), seed=self._stream)

    def uniform(self, shape: Any, minval: Any = 0, maxval: Any = None, dtype: Any = "float32",
                name: str | None = None) -> Any:
        """Floats in ``[minval, maxval)`` (``maxval`` 1 by default); for an integer ``dtype`` integers in
        ``[minval, maxval)``, both bounds given (or both ``None``: the dtype's whole range)."""
        from .random_fns import uniform
        dtype = np.dtype(dtype).name
        if np.dtype(dtype).kind in "iu":
            if (minval is None) != (maxval is None):
                raise ValueError(f"For integer dtype {dtype}, minval and maxval must be both `None` or both "
                                 f"non-`None`; got minval={minval} and maxval={maxval}")
            if minval is None:
                return self.uniform_full_int(shape, dtype)
            if np.all(np.asarray(minval) >= np.asarray(maxval)) and not hasattr(maxval, "builder"):
                from .errors import InvalidArgumentError
                raise InvalidArgumentError(f"Need minval < maxval, got {minval} >= {maxval}")
        return uniform(shape, minval, maxval, dtype, seed=self._stream)

    def uniform_full_int(self, shape: Any, dtype: Any = "int64", name: str | None = None) -> Any:
        """Integers over ``dtype``'s whole range (int32 / int64), from 16-bit pieces of uniform draws."""
        from .random_fns import uniform
        dtype = np.dtype(dtype).name
        if dtype not in ("int32", "int64"):
            raise ValueError(f"tf.random.Generator.uniform_full_int: dtype must be int32 or int64. "
                             f"Received: {dtype}")
        pieces = 2 if dtype == "int32" else 4
        shape = tuple(shape) if isinstance(shape, (list, tuple)) else shape
        parts = uniform((pieces, *shape), 0, 2 ** 16, "int64", seed=self._stream)
        # Each 16-bit piece at its place value, summed: int64 arithmetic wraps, so the top piece sets the sign
        # bit as a bit pattern would. (Not one ReduceSum: onnxruntime's int64 ReduceSum loses low bits of
        # values near 2**63.) Eager pieces are combined in NumPy, traced ones by a chain of Mul / Add.
        if isinstance(parts, np.ndarray):
            with np.errstate(over="ignore"):
                value = np.zeros(parts.shape[1:], np.int64)
                for piece in np.asarray(parts, np.int64):
                    value = value * np.int64(2 ** 16) + piece
            value = _ops.convert_to_tensor(value)
        else:
            value = parts[0]
            for i in range(1, pieces):
                value = _ops.add(_ops.multiply(value, 2 ** 16), parts[i])
        if dtype == "int32":
            value = _ops.subtract(value, 2 ** 31)
        return _ops.cast(value, dtype)

    def make_seeds(self, count: int = 1) -> Any:
        """An int64 ``[2, count]`` tensor: ``count`` seeds (columns) for the ``tf.random.stateless_*``
        functions, drawn from this stream."""
        return self.uniform_full_int((2, int(count)), "int64") if count >= 1 else _ops.zeros((2, 0), "int64")

    def split(self, count: int = 1) -> list[Generator]:
        """``count`` new generators, independent of each other and of this one (which advances by one)."""
        if not isinstance(count, int) or count < 1:
            raise ValueError(f"tf.random.Generator.split: count must be a positive integer. Received: {count!r}")
        state = self.state.numpy()
        self.skip(1)
        children = np.random.SeedSequence([int(v) % 2 ** 63 for v in state]).spawn(count)
        return [Generator(state=[int(c.generate_state(1, np.uint64)[0] >> np.uint64(1)), 0], alg=self.algorithm)
                for c in children]


def _float(dtype: Any, fn: str) -> str:
    name = np.dtype(dtype).name
    if np.dtype(name).kind != "f":
        raise TypeError(f"tf.random.Generator.{fn}: dtype must be a floating point type. Received: {name}")
    return name


_GLOBAL: list[Generator] = []


def get_global_generator() -> Generator:
    """``tf.random.get_global_generator``: the process's generator, created at first use from NumPy's global
    RNG (so ``tf.random.set_seed`` before that first use makes it reproducible)."""
    if not _GLOBAL:
        _GLOBAL.append(Generator.from_seed(int(np.random.randint(0, 2 ** 31 - 1))))
    return _GLOBAL[0]


def set_global_generator(generator: Generator) -> None:
    """``tf.random.set_global_generator``: make ``generator`` the one ``get_global_generator`` returns."""
    if not isinstance(generator, Generator):
        raise TypeError(f"tf.random.set_global_generator: expected a tf.random.Generator. Received: {generator!r}")
    _GLOBAL[:] = [generator]
