"""The functional forms of the merging layers (``keras.layers.add``, ``concatenate``, ``dot``, ...): each
makes the layer and calls it on ``inputs`` in one step.

Example:
    >>> from onnxforge.layers import Input, concatenate
    >>> a, b = Input(shape=(2,)), Input(shape=(3,))
    >>> concatenate([a, b]).shape
    (None, 5)
"""
from __future__ import annotations

__all__ = ["add", "subtract", "multiply", "average", "maximum", "minimum", "concatenate", "dot"]

from typing import Any

from .merging import Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract


def add(inputs: Any, **kwargs: Any) -> Any:
    """``Add(**kwargs)(inputs)``: the sum of a list of inputs."""
    return Add(**kwargs)(inputs)


def subtract(inputs: Any, **kwargs: Any) -> Any:
    """``Subtract(**kwargs)(inputs)``: ``inputs[0] - inputs[1]``."""
    return Subtract(**kwargs)(inputs)


def multiply(inputs: Any, **kwargs: Any) -> Any:
    """``Multiply(**kwargs)(inputs)``: the elementwise product of a list of inputs."""
    return Multiply(**kwargs)(inputs)


def average(inputs: Any, **kwargs: Any) -> Any:
    """``Average(**kwargs)(inputs)``: the elementwise mean of a list of inputs."""
    return Average(**kwargs)(inputs)


def maximum(inputs: Any, **kwargs: Any) -> Any:
    """``Maximum(**kwargs)(inputs)``: the elementwise maximum of a list of inputs."""
    return Maximum(**kwargs)(inputs)


def minimum(inputs: Any, **kwargs: Any) -> Any:
    """``Minimum(**kwargs)(inputs)``: the elementwise minimum of a list of inputs."""
    return Minimum(**kwargs)(inputs)


def concatenate(inputs: Any, axis: int = -1, **kwargs: Any) -> Any:
    """``Concatenate(axis=axis, **kwargs)(inputs)``."""
    return Concatenate(axis=axis, **kwargs)(inputs)


def dot(inputs: Any, axes: Any = -1, **kwargs: Any) -> Any:
    """``Dot(axes=axes, **kwargs)(inputs)`` (``normalize=True`` for cosine similarity)."""
    return Dot(axes=axes, **kwargs)(inputs)
