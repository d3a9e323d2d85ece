"""``keras.preprocessing.sequence``: ``pad_sequences``."""
from __future__ import annotations

from ..utils.sequence import pad_sequences

__all__ = ["pad_sequences"]
