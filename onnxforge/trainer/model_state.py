"""Keras 3's ``Model.run_eagerly`` / ``jit_compile`` flags and the state tree (``get_state_tree`` /
``set_state_tree``): every variable of the model, its optimizer and its metrics, nested by path.

onnxforge always runs compiled ONNX programs: ``run_eagerly`` and ``jit_compile`` are stored and read back as
Keras does (``compile(run_eagerly=True)`` turns ``jit_compile`` off, ``"auto"`` resolves to ``False`` as on
Keras's CPU and torch backends) but change nothing about how steps run.
"""
from __future__ import annotations

__all__ = ["ModelStateMixin"]

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

_SECTIONS = ("trainable_variables", "non_trainable_variables", "optimizer_variables", "metrics_variables")


class ModelStateMixin:
    """``run_eagerly``, ``jit_compile``, ``get_state_tree`` and ``set_state_tree`` of ``Model``."""

    _run_eagerly: bool = False
    _jit_compile: Any = None

    @property
    def run_eagerly(self) -> bool:
        """Keras's flag for running steps as Python code (settable). onnxforge records it and still runs the
        compiled programs: a custom ``train_step`` is traced either way."""
        return self._run_eagerly

    @run_eagerly.setter
    def run_eagerly(self, value: bool) -> None:
        self._run_eagerly = value

    @property
    def jit_compile(self) -> Any:
        """Keras's XLA flag (settable; ``False`` unless set, as Keras resolves ``"auto"`` on a CPU). onnxforge
        compiles every step into one ONNX program whatever it says."""
        if self._jit_compile is None:
            self._jit_compile = False
        return self._jit_compile

    @jit_compile.setter
    def jit_compile(self, value: Any) -> None:
        self._jit_compile = value

    def _set_execution_flags(self, run_eagerly: Any, jit_compile: Any) -> None:
        """``compile``'s handling of the two flags, as Keras's."""
        if jit_compile == "auto":
            jit_compile = False
        if jit_compile and run_eagerly:
            jit_compile = False
            warnings.warn("If `run_eagerly` is True, then `jit_compile` cannot also be True. Disabling "
                          "`jit_compile`.", stacklevel=3)
        self.jit_compile = jit_compile
        self.run_eagerly = run_eagerly

    # ------------------------------------------------------------------------------------------ state tree
    def get_state_tree(self, value_format: str = "backend_tensor") -> dict[str, Any]:
        """The values of every variable, nested by path (Keras 3): ``{"trainable_variables": {"dense":
        {"kernel": ..., "bias": ...}}, "non_trainable_variables": ..., "optimizer_variables": {"adam":
        {"iteration": ..., ...}}, "metrics_variables": {"loss": {"total": ..., "count": ...}}}``.

        Paths are onnxforge's ``Variable.path`` (Keras's without an enclosing ``Sequential`` or subclassed
        model's name); the optimizer's learning rate is not a variable here. Leaves are numpy arrays in both
        ``value_format``\\s ("backend_tensor", "numpy_array"): onnxforge's tensors are numpy arrays.

        Example:
            >>> from onnxforge import keras
            >>> m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, name="out")])
            >>> sorted(m.get_state_tree()["trainable_variables"]["out"])
            ['bias', 'kernel']
        """
        if value_format not in ("backend_tensor", "numpy_array"):
            raise ValueError("Invalid `value_format` argument. Expected one of {'numpy_array', 'backend_tensor'}. "
                             f"Received: value_format={value_format}")
        return {section: _nested(self._state_section(section)) for section in _SECTIONS}

    def set_state_tree(self, state_tree: dict[str, Any]) -> None:
        """Assign the values of a tree shaped like ``get_state_tree``'s to the variables at those paths
        (paths not found are left alone, as Keras does; an unknown top-level key is an error)."""
        if not isinstance(state_tree, dict):
            raise TypeError(f"set_state_tree expects a dict shaped like get_state_tree()'s. Received: "
                            f"{type(state_tree).__name__}")
        for section, subtree in state_tree.items():
            if section not in _SECTIONS:
                raise ValueError(f"Unknown variable name: {section}")
            variables = self._state_section(section)
            flat = _flatten(subtree)
            for var in variables:
                value = flat.get(str(var.path))
                if value is not None:
                    var.assign(np.asarray(value))

    def _state_section(self, section: str) -> list[Any]:
        if section == "trainable_variables":
            return list(self.trainable_variables)
        if section == "non_trainable_variables":
            return list(self.non_trainable_variables)
        if section == "optimizer_variables":
            optimizer = getattr(self, "optimizer", None)
            return list(optimizer.variables) if optimizer is not None else []
        return list(self.metrics_variables)


def _nested(variables: Sequence[Any]) -> dict[str, Any]:
    flat: dict[str, np.ndarray] = {}
    for var in variables:
        path = str(var.path)
        if path in flat:
            raise ValueError(f"The following variable path is found twice in the model: '{path}'. "
                             "`get_state_tree()` can only be called when all variable paths are unique. Make sure to "
                             "give unique names to your layers (and other objects).")
        flat[path] = np.array(var.numpy(), copy=True)
    tree: dict[str, Any] = {}
    for path, value in flat.items():
        *parents, leaf = path.split("/")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (tree or {}).items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}/"))
        else:
            out[f"{prefix}{key}"] = value
    return out
