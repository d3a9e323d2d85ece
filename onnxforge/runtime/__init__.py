"""Executing compiled programs with onnxruntime: providers, sessions, IOBinding, device-resident state."""
from __future__ import annotations

from .device import (Device, available_providers, enable_op_determinism, enable_tensor_float_32_execution,
                     fused_training_ops, gpu_settings, resolve_device, variables_device)
from .session_runner import ProgramRunner
from .session import create_session, session_options

__all__ = ["Device", "available_providers", "resolve_device", "enable_op_determinism",
           "enable_tensor_float_32_execution", "gpu_settings", "ProgramRunner", "create_session",
           "session_options", "fused_training_ops", "variables_device"]
