"""``tf.config.run_functions_eagerly``: a setting that onnxforge honours trivially.

``tf.function`` is a no-op in onnxforge (``tf_compat.tensors.function``), so a decorated function always
runs eagerly, whatever this flag says. What ``fit`` / ``evaluate`` / ``predict`` run is compiled into ONNX
programs either way (as ``compile(run_eagerly=True)`` is accepted and ignored): this flag does not change
that, unlike TensorFlow, where it also makes Keras's train function eager.

Example:
    >>> run_functions_eagerly(True)
    >>> functions_run_eagerly()
    True
    >>> run_functions_eagerly(False)
"""
from __future__ import annotations

__all__ = ["run_functions_eagerly", "functions_run_eagerly"]

_RUN_EAGERLY = [False]


def run_functions_eagerly(run_eagerly: bool) -> None:
    """Records ``run_eagerly`` for ``functions_run_eagerly()``; functions run eagerly in onnxforge anyway."""
    _RUN_EAGERLY[0] = bool(run_eagerly)


def functions_run_eagerly() -> bool:
    """The value last given to ``run_functions_eagerly`` (``False`` at start, as TensorFlow)."""
    return _RUN_EAGERLY[0]


def __getattr__(name: str) -> None:
    raise AttributeError(f"onnxforge's tf.config has only run_functions_eagerly and functions_run_eagerly; "
                         f"tf.config.{name} is not supported (devices: compile(device=...)).")
