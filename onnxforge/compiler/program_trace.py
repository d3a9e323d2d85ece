"""Tracing a model into a builder: program inputs, unique variable inputs, output annotations."""
from __future__ import annotations

__all__ = ["ProgramTrace", "onnx_shape", "declare_input", "reserve", "release"]

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..graph import GraphBuilder, Value, onnx_dtype
from ..tracing import TraceContext
from ..variables import Variable
from ..graph import contract
from ..graph.rng import SeedStreams


def onnx_shape(keras_shape: Sequence[Any] | None, prefix: str) -> tuple | None:
    """A Keras shape as a graph shape: the leading ``None`` is ``"batch"``, other ``None``s get names."""
    if keras_shape is None:
        return None
    dims: list[Any] = []
    for i, d in enumerate(keras_shape):
        if isinstance(d, (int, np.integer)) and d is not None and int(d) >= 0:
            dims.append(int(d))
        else:
            dims.append(contract.BATCH_DIM if i == 0 else f"{prefix}_dim{i}")
    return tuple(dims)


def reserve(b: GraphBuilder, wanted: Sequence[str]) -> None:
    """Claim exact names before tracing, so no node the layers emit can take them."""
    for name in wanted:
        b.reserve(name)


def release(b: GraphBuilder, name: str) -> str:
    """Give back a name claimed by ``reserve`` right before declaring the value that carries it."""
    b._taken.discard(name)
    return name


def declare_input(b: GraphBuilder, name: str, dtype: Any, shape: tuple | None, unique: bool = False) -> Value:
    """A graph input called ``name`` (made unique with a suffix when ``unique`` and already taken)."""
    if unique:
        name = release(b, b.fresh(name))
    return b.input(name, onnx_dtype(dtype), shape)


class ProgramTrace(TraceContext):
    """The trace context of a compiled program.

    Variables enter as graph inputs named after them (a numeric suffix keeps names unique when two
    variables share one), or as initializers holding their current values.
    """

    def __init__(self, builder: GraphBuilder, training: bool, weights: str = "inputs",
                 random_uniform: Callable[[Value], Value] | None = None):
        super().__init__(builder, training, weights, random_uniform)
        self.seed_streams = SeedStreams(self.read)

    def seeded_uniform(self, state: Variable, like: Value) -> Value:
        """U[0, 1) noise from a ``SeedGenerator``'s state Variable (advanced by training programs)."""
        return self.seed_streams.uniform(state, like)

    def _declare(self, var: Variable) -> Value:
        if self.weights == "inputs":
            return declare_input(self.b, var.path, var.dtype, var.shape, unique=True)
        return self.b.initializer(release(self.b, self.b.fresh(var.path)), np.array(var.numpy()))
