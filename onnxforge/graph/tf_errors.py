"""``tf.errors``: the exception classes TensorFlow programs catch, and ``tf.UnconnectedGradients``.

TensorFlow raises ``tf.errors.InvalidArgumentError`` where an op gets a bad argument at run time (a reshape
to an impossible shape, incompatible shapes in an elementwise op, an index out of range, a failed
``tf.debugging`` assertion). onnxforge's functions raise ``ValueError`` there; the ``tf.*`` functions that
programs wrap in ``try: ... except tf.errors.InvalidArgumentError`` raise ``InvalidArgumentError``, which
is also a ``ValueError``, so both kinds of handler catch it.

Example:
    >>> import onnxforge as tf
    >>> try:
    ...     tf.reshape(tf.range(6), [4, -1])
    ... except tf.errors.InvalidArgumentError as e:
    ...     print("caught", isinstance(e, ValueError))
    caught True
"""
from __future__ import annotations

__all__ = ["OpError", "InvalidArgumentError", "NotFoundError", "OutOfRangeError", "ResourceExhaustedError",
           "UnimplementedError", "FailedPreconditionError", "UnconnectedGradients", "errors"]

import enum
import types
from typing import Any


class OpError(Exception):
    """``tf.errors.OpError``: the base of the errors an op raises; ``message`` holds the text."""

    def __init__(self, node_def: Any = None, op: Any = None, message: str = "", *args: Any):
        # TensorFlow's (node_def, op, message) order; a lone string is the message, as raising code writes it.
        if isinstance(node_def, str) and op is None and not message:
            node_def, message = None, node_def
        super().__init__(message)
        self.node_def, self.op, self.message = node_def, op, message


class InvalidArgumentError(OpError, ValueError):
    """An op received a bad argument (a shape, an index, a failed assertion)."""


class NotFoundError(OpError, FileNotFoundError):
    """A file or other resource does not exist."""


class OutOfRangeError(OpError, IndexError):
    """An iteration or index ran past the end (``next`` on an exhausted iterator)."""


class ResourceExhaustedError(OpError, MemoryError):
    """Memory or another resource ran out."""


class UnimplementedError(OpError, NotImplementedError):
    """The operation is not implemented for these arguments."""


class FailedPreconditionError(OpError, RuntimeError):
    """The system is not in a state the operation needs (an uninitialized value)."""


class UnconnectedGradients(str, enum.Enum):
    """``tf.UnconnectedGradients``: what ``tape.gradient`` gives a source the target does not depend on;
    equal to the strings ``"none"`` and ``"zero"`` that onnxforge's tape takes."""

    NONE = "none"
    ZERO = "zero"


errors = types.SimpleNamespace(OpError=OpError, InvalidArgumentError=InvalidArgumentError,
                               NotFoundError=NotFoundError, OutOfRangeError=OutOfRangeError,
                               ResourceExhaustedError=ResourceExhaustedError, UnimplementedError=UnimplementedError,
                               FailedPreconditionError=FailedPreconditionError)
