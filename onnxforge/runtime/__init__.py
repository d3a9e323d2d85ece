"""Executing compiled programs with onnxruntime: providers, sessions, IOBinding, device-resident state."""
from __future__ import annotations

from .device import Device, available_providers, resolve_device
from .runner import ProgramRunner
from .session import create_session, session_options

__all__ = ["Device", "available_providers", "resolve_device", "ProgramRunner", "create_session",
           "session_options"]
