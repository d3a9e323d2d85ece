"""Bridges into onnxforge: a PyTorch ``nn.Module``, a Keras 3 model or onnxruntime-training artefacts.

Each bridge imports its framework only when called, so ``import exporters`` needs neither torch nor keras.
``onnxforge`` itself never imports this package.

* :mod:`exporters.torch_exporter` -- ``from_torch(module, example_inputs)`` (``torch.onnx.export`` then
  ``onnxforge.Model.from_onnx``, parameters keep their ``state_dict`` names) and ``to_torch_state_dict``.
* :mod:`exporters.keras_exporter` -- ``from_keras(model_or_path)`` rebuilds a Keras 3 model from its config
  as the same onnxforge model with the same weights; ``to_keras(model)`` the other way.
* :mod:`exporters.ort_training_compat` -- ``generate_artifacts(...)``: the training / eval / optimizer graphs
  and checkpoint that ``onnxruntime.training.artifacts.generate_artifacts`` wrote, in standard ops.

Example:
    >>> import exporters
    >>> sorted(exporters.__all__)
    ['from_keras', 'from_torch', 'generate_artifacts', 'to_keras', 'to_torch_state_dict']
"""
from __future__ import annotations

import importlib
from typing import Any

__all__ = ["from_torch", "to_torch_state_dict", "from_keras", "to_keras", "generate_artifacts"]

_WHERE = {"from_torch": "torch_exporter", "to_torch_state_dict": "torch_exporter", "from_keras": "keras_exporter",
          "to_keras": "keras_exporter", "generate_artifacts": "ort_training_compat"}


def __getattr__(name: str) -> Any:
    # Lazy: importing the package must not import torch or keras.
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'exporters' has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
