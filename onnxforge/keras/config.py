"""``keras.config``: floatx, epsilon, the image layout and the global dtype policy (re-exports only)."""
from __future__ import annotations

from ..backend_config import epsilon, floatx, image_data_format, set_epsilon, set_floatx, set_image_data_format
from ..dtype_policies import dtype_policy, set_dtype_policy


def backend() -> str:
    """The name of the backend Keras code asks for: onnxforge compiles to ONNX."""
    return "onnx"


__all__ = ["floatx", "set_floatx", "epsilon", "set_epsilon", "image_data_format", "set_image_data_format",
           "dtype_policy", "set_dtype_policy", "backend"]
