"""The training methods every ``Model`` has (compile, fit, ...). Filled in by the trainer work."""
from __future__ import annotations

__all__ = ["TrainingMixin"]


class TrainingMixin:
    """Mixed into ``onnxforge.Model``: ``compile``, ``fit``, ``evaluate``, ``predict`` and the batch methods."""
