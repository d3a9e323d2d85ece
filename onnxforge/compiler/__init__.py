"""Compiling a model into programs (``infer``, ``eval_step``, ``train_step``) in standard ONNX ops.

The compiler builds graphs and never executes anything: ``onnxforge.runtime`` runs them.
"""
from __future__ import annotations

from .cleanup import cleanup
from .config import CompileConfig, OutputConfig, resolve_config
from .programs import CompileError, Program, build_eval_step, build_infer, build_train_step
from ..graph.rng import CounterRng

__all__ = ["cleanup", "CompileConfig", "OutputConfig", "resolve_config", "CompileError", "Program",
           "build_infer", "build_eval_step", "build_train_step", "CounterRng"]
