"""``tf.errors`` and ``tf.UnconnectedGradients``: defined in ``graph/tf_errors.py``, below every unit that raises
them (``utils``' datasets raise ``InvalidArgumentError`` too, and ``tf_compat`` builds on ``utils``)."""
from __future__ import annotations

from ..graph.tf_errors import (FailedPreconditionError, InvalidArgumentError, NotFoundError, OpError,
                               OutOfRangeError, ResourceExhaustedError, UnconnectedGradients, UnimplementedError,
                               errors)

__all__ = ["OpError", "InvalidArgumentError", "NotFoundError", "OutOfRangeError", "ResourceExhaustedError",
           "UnimplementedError", "FailedPreconditionError", "UnconnectedGradients", "errors"]
