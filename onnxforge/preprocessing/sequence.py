"""``keras.preprocessing.sequence``: ``pad_sequences``, and tf.keras's ``skipgrams`` / ``make_sampling_table``."""
from __future__ import annotations

from ..utils.sequence import pad_sequences
from .skipgrams import make_sampling_table, skipgrams

__all__ = ["pad_sequences", "skipgrams", "make_sampling_table"]
