"""``keras.config``: floatx, epsilon, the image layout and the global dtype policy (re-exports only)."""
from __future__ import annotations

from ..backend_config import (disable_flash_attention, disable_interactive_logging, disable_traceback_filtering,
                              enable_flash_attention, enable_interactive_logging, enable_traceback_filtering,
                              epsilon, floatx, image_data_format, is_flash_attention_enabled,
                              is_interactive_logging_enabled, is_traceback_filtering_enabled, max_epochs,
                              max_steps_per_epoch, set_epsilon, set_floatx, set_image_data_format, set_max_epochs,
                              set_max_steps_per_epoch)
from ..dtype_policies import dtype_policy, set_dtype_policy
from ..layers.safe_mode import enable_unsafe_deserialization


def backend() -> str:
    """The name of the backend Keras code asks for: onnxforge compiles to ONNX."""
    return "onnx"


def set_backend(backend: str) -> None:
    """Keras's backend switch. onnxforge has one backend, ``"onnx"`` (what ``backend()`` returns): asking for it
    is a no-op, any other name an error (import Keras itself to run on JAX, TensorFlow or torch).

    Example:
        >>> set_backend("onnx")
        >>> set_backend("jax")
        Traceback (most recent call last):
        ...
        ValueError: onnxforge runs Keras code on its own backend, 'onnx'; it cannot switch to another. Received: backend='jax'
    """
    if backend != "onnx":
        raise ValueError("onnxforge runs Keras code on its own backend, 'onnx'; it cannot switch to another. "
                         f"Received: backend={backend!r}")


def is_nnx_enabled() -> bool:
    """Keras's Flax NNX switch (JAX backend only): always ``False`` here."""
    return False


__all__ = ["floatx", "set_floatx", "epsilon", "set_epsilon", "image_data_format", "set_image_data_format",
           "dtype_policy", "set_dtype_policy", "backend", "max_epochs", "set_max_epochs", "max_steps_per_epoch",
           "set_max_steps_per_epoch", "enable_traceback_filtering", "disable_traceback_filtering",
           "is_traceback_filtering_enabled", "enable_interactive_logging", "disable_interactive_logging",
           "is_interactive_logging_enabled", "enable_flash_attention", "disable_flash_attention",
           "is_flash_attention_enabled", "enable_unsafe_deserialization", "set_backend", "is_nnx_enabled"]
