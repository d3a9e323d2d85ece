"""Small utilities shared by the training loops (progress bar)."""
from __future__ import annotations

from .progbar import Progbar

__all__ = ["Progbar"]
