"""``keras.utils.Progbar`` under its Keras path; it lives with the callbacks (``ProgbarLogger`` draws it),
below the training loop."""
from __future__ import annotations

from ..callbacks.progbar import Progbar, format_value

__all__ = ["Progbar", "format_value"]
