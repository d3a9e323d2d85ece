"""Process-wide numeric settings, as ``keras.config``: the default float type (``floatx``) and the fuzz factor.

A leaf module (it imports nothing from onnxforge), so the graph builder, layers and losses can all read
the same settings.

Example:
    >>> floatx()
    'float32'
    >>> set_floatx("float64"); floatx()
    'float64'
    >>> set_floatx("float32")
"""
from __future__ import annotations

__all__ = ["floatx", "set_floatx", "epsilon", "set_epsilon", "image_data_format", "set_image_data_format"]

_FLOATX = "float32"
_EPSILON = 1e-7
_ACCEPTED_FLOATX = ("bfloat16", "float16", "float32", "float64")


def floatx() -> str:
    """The default float type: of ``Input`` tensors, of Python float constants, of losses and metrics."""
    return _FLOATX


def set_floatx(value: str) -> None:
    """Set the default float type (``"float16"``, ``"bfloat16"``, ``"float32"`` or ``"float64"``).

    As in Keras, layers take their dtype from the global dtype policy, which is made from ``floatx()`` the
    first time a layer asks for it: call ``set_floatx`` before creating layers (or set a policy with
    ``keras.config.set_dtype_policy``) to change layers' dtype.
    """
    global _FLOATX
    if value not in _ACCEPTED_FLOATX:
        raise ValueError(f"Unknown `floatx` value: {value!r}. Expected one of {set(_ACCEPTED_FLOATX)}")
    _FLOATX = str(value)


def epsilon() -> float:
    """The fuzz factor of losses and metrics (probabilities are clipped to ``[epsilon, 1 - epsilon]``)."""
    return _EPSILON


def set_epsilon(value: float) -> None:
    """Set the fuzz factor read by losses and metrics when a program is traced."""
    global _EPSILON
    value = float(value)
    if not value > 0.0:
        raise ValueError(f"`epsilon` must be a positive float. Received: value={value!r}")
    _EPSILON = value


def image_data_format() -> str:
    """``"channels_last"``: the layout onnxforge's layers take (they transpose to ONNX's NCHW inside)."""
    return "channels_last"


def set_image_data_format(data_format: str) -> None:
    """Only ``"channels_last"`` is supported; anything else is refused with a clear error."""
    if data_format != "channels_last":
        raise ValueError("onnxforge layers take channels_last inputs (they transpose to ONNX's NCHW inside). "
                         f"Received: data_format={data_format!r}")
