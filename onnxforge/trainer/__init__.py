"""Training API of models: compile, train/test/predict on batches, fit, evaluate, predict."""
from __future__ import annotations

from .eager_apply import apply_eagerly  # importing it registers apply_gradients outside a trace
from .mixin import TrainingMixin
from .forward_mode import jvp  # importing it registers keras.ops.jvp

__all__ = ["TrainingMixin", "apply_eagerly", "jvp"]
