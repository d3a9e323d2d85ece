"""Gradient rules: matmul ops."""
from __future__ import annotations

from ..registry import register  # noqa: F401

__all__: list[str] = []
