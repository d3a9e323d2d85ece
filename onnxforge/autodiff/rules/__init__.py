"""Gradient rules, one module per op family. Importing this package registers them all."""
from __future__ import annotations

from . import (  # noqa: F401
    attention, control_flow, conv, elementwise, matmul, nn, pool, recurrent, reduce, sequence, shape,
)

__all__: list[str] = []
