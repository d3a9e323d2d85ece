"""Device choice: which onnxruntime execution providers run the programs, and where state lives."""
from __future__ import annotations

__all__ = ["Device", "resolve_device", "available_providers", "enable_tensor_float_32_execution",
           "enable_op_determinism", "gpu_settings", "fused_training_ops", "variables_device"]

import sys
from typing import Any
from dataclasses import dataclass

_CUDA = "CUDAExecutionProvider"
_CPU = "CPUExecutionProvider"
_noticed = False
# CUDA numerics. TF32 off by default: float32 programs then give float32 results on the GPU, equal to the CPU's
# within rounding and to PyTorch's default matmul precision (onnxruntime's CUDA provider turns TF32 on
# unless told otherwise). Determinism off by default, as in TensorFlow and PyTorch.
_settings = {"tf32": False, "deterministic": False}


def enable_tensor_float_32_execution(enabled: bool) -> None:
    """Let CUDA programs compiled after this call use TF32 tensor cores for float32 Conv/MatMul (faster,
    about 10 bits of mantissa), as ``tf.config.experimental.enable_tensor_float_32_execution`` does.

    Example:
        >>> enable_tensor_float_32_execution(False); gpu_settings()["tf32"]
        False
    """
    _settings["tf32"] = bool(enabled)


def enable_op_determinism(enabled: bool = True) -> None:
    """Make programs compiled after this call deterministic on the GPU (onnxruntime's deterministic
    compute: no atomics-based reductions, fixed cuDNN algorithms), so a resumed run repeats bit for bit, as
    ``tf.config.experimental.enable_op_determinism`` does. The CPU provider is deterministic already.

    Example:
        >>> enable_op_determinism(); gpu_settings()["deterministic"]
        True
        >>> enable_op_determinism(False)
    """
    _settings["deterministic"] = bool(enabled)


def gpu_settings() -> dict:
    """The current CUDA numerics settings: ``{"tf32": bool, "deterministic": bool}``."""
    return dict(_settings)


def available_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


@dataclass(frozen=True)
class Device:
    """Where a program runs and where its device-resident state lives.

    Attributes:
        kind: ``"cpu"`` or ``"cuda"``.
        device_id: the CUDA device ordinal.
    """

    kind: str = "cpu"
    device_id: int = 0

    @property
    def providers(self) -> list:
        if self.kind == "cuda":
            options = {"device_id": str(self.device_id), "use_tf32": "1" if _settings["tf32"] else "0"}
            if _settings["deterministic"]:
                options["cudnn_conv_algo_search"] = "DEFAULT"
            return [(_CUDA, options), _CPU]
        return [_CPU]

    @property
    def ort_device(self) -> str:
        """The device name onnxruntime's ``OrtValue`` / ``IOBinding`` calls take."""
        return self.kind

    def __str__(self) -> str:
        return self.kind if self.kind == "cpu" else f"cuda:{self.device_id}"


def fused_training_ops(device: Device) -> bool:
    """Whether a training step compiled to run on ``device`` in this process may use fused training kernels.

    Only the CPU provider: onnxruntime's CPU ``BatchNormalization`` computes the batch statistics, the
    normalization and the moving statistics in one kernel with ``training_mode=1`` (fewer passes over the
    activations than the same in elementwise ops), but its CUDA provider refuses ``training_mode=1`` from
    opset 14 on, and a file may be run by any runtime: those keep the portable formulation.

    Example:
        >>> fused_training_ops(Device("cpu")), fused_training_ops(Device("cuda", 0))
        (True, False)
    """
    return device.kind == "cpu"


def variables_device(variables: Any) -> Device:
    """Where ``variables`` live now: CUDA after a CUDA training run put the first one with a device value
    there, else the CPU (a program reading them runs where they are, with no copies)."""
    for var in variables:
        value = var._get_device()
        if value is not None:
            return Device("cuda", 0) if value.device_name().lower() == "cuda" else Device("cpu")
    return Device("cpu")


def resolve_device(device: str | Device = "auto") -> Device:
    """The ``Device`` for ``compile(device=...)``.

    ``"cpu"``; ``"cuda"`` / ``"gpu"`` / ``"cuda:N"`` (an error if onnxruntime has no CUDA provider);
    ``"auto"``: CUDA when available, else the CPU with a one-line notice (printed once per process).

    Example:
        >>> resolve_device("cpu")
        Device(kind='cpu', device_id=0)
    """
    global _noticed
    if isinstance(device, Device):
        return device
    if not isinstance(device, str):
        raise ValueError(f"Argument `device` must be 'cpu', 'cuda', 'cuda:N' or 'auto'. Received: device={device!r}")
    spec = device.strip().lower()
    if spec == "cpu":
        return Device("cpu")
    if spec == "auto":
        if _CUDA in available_providers():
            return Device("cuda", 0)
        if not _noticed:
            _noticed = True
            print("onnxforge: no CUDA execution provider in onnxruntime; running on the CPU.", file=sys.stderr)
        return Device("cpu")
    if spec in ("cuda", "gpu") or spec.startswith(("cuda:", "gpu:")):
        index = 0
        if ":" in spec:
            try:
                index = int(spec.split(":", 1)[1])
            except ValueError:
                raise ValueError(f"Argument `device` has a bad device index. Received: device={device!r}") from None
        providers = available_providers()
        if _CUDA not in providers:
            raise RuntimeError(f"compile(device={device!r}) needs onnxruntime's CUDAExecutionProvider, which this "
                               f"onnxruntime build lacks (available providers: {providers}). Install "
                               "onnxruntime-gpu, or use device='cpu' or device='auto'.")
        return Device("cuda", index)
    raise ValueError(f"Argument `device` must be 'cpu', 'cuda', 'cuda:N' or 'auto'. Received: device={device!r}")
