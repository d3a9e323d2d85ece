"""Reverse-mode autodiff over ONNX graphs, emitting standard ``ai.onnx`` ops only.

``backward(builder, loss, wrt)`` appends the gradient subgraph to a graph under construction;
``gradient_model(model, loss, wrt)`` does it for any ``onnx.ModelProto``. Rules live in ``rules/``, one
file per op family, registered by op type; ops differentiated through their definition (``Attention``,
ONNX function ops, sequences with a known layout) are rewritten first by ``lowering.py``.
"""
from __future__ import annotations

from .api import gradient_model
from .broadcast import unbroadcast
from .context import GradContext
from .engine import GradientError, backward
from .gradcheck import GradCheckResult, check_gradients
from .lowering import LOWERINGS, register_lowering
from .registry import RULES, register, register_zero

__all__ = ["backward", "gradient_model", "GradientError", "GradContext", "register", "register_zero",
           "RULES", "unbroadcast", "check_gradients", "GradCheckResult", "LOWERINGS", "register_lowering"]
