"""Training API of models: compile, train/test/predict on batches, fit, evaluate, predict."""
from __future__ import annotations

from . import eager_apply  # noqa: F401  (registers apply_gradients outside a trace)
from .mixin import TrainingMixin

__all__ = ["TrainingMixin"]
