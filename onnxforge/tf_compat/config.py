"""``tf.config.run_functions_eagerly`` and the device queries tf.keras 2 scripts open with, which onnxforge
honours trivially.

``tf.function`` is a no-op in onnxforge (``tf_compat.tensors.function``), so a decorated function always
runs eagerly, whatever this flag says. What ``fit`` / ``evaluate`` / ``predict`` run is compiled into ONNX
programs either way (as ``compile(run_eagerly=True)`` is accepted and ignored): this flag does not change
that, unlike TensorFlow, where it also makes Keras's train function eager.

``list_physical_devices`` reports the CPU, and a GPU when onnxruntime has its CUDA execution provider, so
the usual ``for gpu in tf.config.list_physical_devices("GPU"): tf.config.experimental.set_memory_growth(gpu,
True)`` preamble runs; memory growth is recorded only (onnxruntime's arena grows on demand anyway).

Example:
    >>> run_functions_eagerly(True)
    >>> functions_run_eagerly()
    True
    >>> run_functions_eagerly(False)
"""
from __future__ import annotations

__all__ = ["run_functions_eagerly", "functions_run_eagerly", "PhysicalDevice", "list_physical_devices",
           "list_logical_devices", "experimental"]

import collections
import types

_RUN_EAGERLY = [False]
_MEMORY_GROWTH: dict[str, bool] = {}

PhysicalDevice = collections.namedtuple("PhysicalDevice", ["name", "device_type"])
LogicalDevice = collections.namedtuple("LogicalDevice", ["name", "device_type"])


def list_physical_devices(device_type: str | None = None) -> list[PhysicalDevice]:
    """The devices onnxruntime can run on: ``CPU:0``, and ``GPU:0`` when its CUDA provider is installed.

    Example:
        >>> [d.name for d in list_physical_devices("CPU")]
        ['/physical_device:CPU:0']
    """
    import onnxruntime

    kinds = ["CPU"] + (["GPU"] if "CUDAExecutionProvider" in onnxruntime.get_available_providers() else [])
    if device_type is not None and not isinstance(device_type, str):
        raise TypeError(f"`device_type` must be a string such as 'GPU' or None. Received: {device_type!r}")
    wanted = device_type.upper() if device_type else None
    return [PhysicalDevice(f"/physical_device:{k}:0", k) for k in kinds if wanted in (None, k)]


def list_logical_devices(device_type: str | None = None) -> list[LogicalDevice]:
    """As ``list_physical_devices``, named the way TensorFlow names logical devices (``/device:GPU:0``)."""
    return [LogicalDevice(f"/device:{d.device_type}:0", d.device_type) for d in list_physical_devices(device_type)]


def _check_device(device: object) -> PhysicalDevice:
    if not isinstance(device, PhysicalDevice):
        raise ValueError(f"Expected a device from tf.config.list_physical_devices(). Received: device={device!r}")
    return device


def set_memory_growth(device: PhysicalDevice, enable: bool) -> None:
    """Recorded only: onnxruntime's memory arena already grows as needed."""
    _MEMORY_GROWTH[_check_device(device).name] = bool(enable)


def get_memory_growth(device: PhysicalDevice) -> bool:
    return _MEMORY_GROWTH.get(_check_device(device).name, False)


_DETERMINISM = [False]


def enable_op_determinism() -> None:
    """Recorded only (keras.io's reproducibility recipe): onnxforge's CPU programs already give the same
    numbers run after run for the same seed (``keras.utils.set_random_seed``); its random draws are
    counter-based in the graph."""
    _DETERMINISM[0] = True


def disable_op_determinism() -> None:
    _DETERMINISM[0] = False


def is_op_determinism_enabled() -> bool:
    return _DETERMINISM[0]


experimental = types.SimpleNamespace(list_physical_devices=list_physical_devices,
                                     list_logical_devices=list_logical_devices,
                                     set_memory_growth=set_memory_growth, get_memory_growth=get_memory_growth,
                                     enable_op_determinism=enable_op_determinism,
                                     disable_op_determinism=disable_op_determinism,
                                     is_op_determinism_enabled=is_op_determinism_enabled)


def run_functions_eagerly(run_eagerly: bool) -> None:
    """Records ``run_eagerly`` for ``functions_run_eagerly()``; functions run eagerly in onnxforge anyway."""
    _RUN_EAGERLY[0] = bool(run_eagerly)


def functions_run_eagerly() -> bool:
    """The value last given to ``run_functions_eagerly`` (``False`` at start, as TensorFlow)."""
    return _RUN_EAGERLY[0]


def __getattr__(name: str) -> None:
    raise AttributeError(f"onnxforge's tf.config has only run_functions_eagerly, functions_run_eagerly, device "
                         f"listing, memory growth and op determinism (experimental); "
                         f"tf.config.{name} is not supported (devices: compile(device=...)).")
