"""``keras.backend`` (tf.keras's spelling of ``keras.config``): floatx, epsilon, clear_session (re-exports)."""
from __future__ import annotations

from ..backend_config import epsilon, floatx, image_data_format, set_epsilon, set_floatx, set_image_data_format
from ..layers import clear_session
from .config import backend

__all__ = ["floatx", "set_floatx", "epsilon", "set_epsilon", "image_data_format", "set_image_data_format",
           "clear_session", "backend"]
