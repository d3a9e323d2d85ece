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

__all__ = ["floatx", "set_floatx", "epsilon", "set_epsilon", "image_data_format", "set_image_data_format",
           "max_epochs", "set_max_epochs", "max_steps_per_epoch", "set_max_steps_per_epoch",
           "enable_traceback_filtering", "disable_traceback_filtering", "is_traceback_filtering_enabled",
           "enable_interactive_logging", "disable_interactive_logging", "is_interactive_logging_enabled",
           "enable_flash_attention", "disable_flash_attention", "is_flash_attention_enabled"]

from typing import Any

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


# Keras's debugging and logging switches. Programs call them at the top (``keras.config.
# disable_traceback_filtering()``); onnxforge keeps their state so the getters answer as Keras's do.
_SWITCHES = {"traceback_filtering": True, "interactive_logging": True, "flash_attention": None}
_CAPS: dict[str, int | None] = {"max_epochs": None, "max_steps_per_epoch": None}


def normalize_data_format(value: Any) -> str:
    """``"channels_last"`` (the default) or ``"channels_first"``: a layer's or op's ``data_format`` argument, checked."""
    if value is None:
        return "channels_last"
    data_format = str(value).lower()
    if data_format not in ("channels_first", "channels_last"):
        raise ValueError("The `data_format` argument must be one of {'channels_first', 'channels_last'}. "
                         f"Received: data_format={value!r}")
    return data_format


def enable_traceback_filtering() -> None:
    """Keras trims its own frames from tracebacks; onnxforge never does, so this only records the switch."""
    _SWITCHES["traceback_filtering"] = True


def disable_traceback_filtering() -> None:
    """Record that full tracebacks are wanted (onnxforge always shows them)."""
    _SWITCHES["traceback_filtering"] = False


def is_traceback_filtering_enabled() -> bool:
    return bool(_SWITCHES["traceback_filtering"])


def enable_interactive_logging() -> None:
    """Progress bars and ``model.summary()`` print to stdout (the default)."""
    _SWITCHES["interactive_logging"] = True


def disable_interactive_logging() -> None:
    """Send progress output to Python's ``logging`` instead of stdout (as Keras sends it to absl)."""
    _SWITCHES["interactive_logging"] = False


def is_interactive_logging_enabled() -> bool:
    return bool(_SWITCHES["interactive_logging"])


def enable_flash_attention() -> None:
    """Accepted for Keras compatibility: attention is emitted as plain ONNX ops either way."""
    _SWITCHES["flash_attention"] = True


def disable_flash_attention() -> None:
    _SWITCHES["flash_attention"] = False


def is_flash_attention_enabled() -> bool | None:
    return _SWITCHES["flash_attention"]


def _cap(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"`{name}` must be a positive integer or None. Received: {name}={value!r}")
    _CAPS[name] = value


def max_epochs() -> int | None:
    """The cap on ``fit(epochs=...)`` set by ``set_max_epochs`` (``None``: no cap)."""
    return _CAPS["max_epochs"]


def set_max_epochs(max_epochs: int | None) -> None:
    """Cap the epochs of every ``fit`` (Keras's switch for quick debugging runs)."""
    _cap("max_epochs", max_epochs)


def max_steps_per_epoch() -> int | None:
    """The cap on the batches of one epoch set by ``set_max_steps_per_epoch`` (``None``: no cap)."""
    return _CAPS["max_steps_per_epoch"]


def set_max_steps_per_epoch(max_steps_per_epoch: int | None) -> None:
    """Cap the batches of every epoch of ``fit`` (Keras's switch for quick debugging runs)."""
    _cap("max_steps_per_epoch", max_steps_per_epoch)
