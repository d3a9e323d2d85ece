"""Gradient rules: MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool."""
from __future__ import annotations

__all__: list[str] = []
