"""Training API of models: compile, train/test/predict on batches, fit, evaluate, predict."""
from __future__ import annotations

from .mixin import TrainingMixin

__all__ = ["TrainingMixin"]
