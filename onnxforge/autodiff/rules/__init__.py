"""Gradient rules, one module per op family. Importing this package registers them all."""
from __future__ import annotations

from . import control_flow, conv, elementwise, matmul, nn, pool, recurrent, reduce, shape  # noqa: F401

__all__: list[str] = []
