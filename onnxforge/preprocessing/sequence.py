"""``keras.preprocessing.sequence``: ``pad_sequences``, and tf.keras's ``skipgrams`` / ``make_sampling_table`` /
``TimeseriesGenerator``."""
from __future__ import annotations

from ..utils.sequence import pad_sequences
from .skipgrams import make_sampling_table, skipgrams
from .timeseries_generator import TimeseriesGenerator

__all__ = ["pad_sequences", "skipgrams", "make_sampling_table", "TimeseriesGenerator"]
