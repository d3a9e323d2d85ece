"""Small utilities: the progress bar and ``set_random_seed`` (Keras's ``keras.utils`` names)."""
from __future__ import annotations

from ..initializers import set_random_seed
from .progbar import Progbar

__all__ = ["Progbar", "set_random_seed"]
