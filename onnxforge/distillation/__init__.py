"""``keras.distillation``: train a small student model from a frozen teacher (Keras 3.15's API).

``Distiller(teacher, student, distillation_losses)`` is a ``Model`` whose ``compute_loss`` mixes the
student's supervised loss with one or more distillation losses: ``LogitsDistillation`` (temperature-softened
final outputs) and ``FeatureDistillation`` (outputs of intermediate layers picked by name). The whole step,
teacher forward pass included, is one compiled onnxforge training program; only the student's weights move.

Example:
    >>> from onnxforge import keras
    >>> loss = keras.distillation.LogitsDistillation(temperature=2.0)
    >>> loss.temperature
    2.0
"""
from __future__ import annotations

from .distillation_loss import DistillationLoss, FeatureDistillation, LogitsDistillation
from .distiller import Distiller

__all__ = ["Distiller", "DistillationLoss", "FeatureDistillation", "LogitsDistillation"]
