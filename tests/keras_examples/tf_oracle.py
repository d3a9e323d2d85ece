"""TensorFlow's side of the programs written against ``tf`` and ``keras`` (keras.io's TF-backend examples).

A program ``program(tf, keras, **kwargs) -> {name: array}`` runs here under real TensorFlow with Keras 3 on
its TensorFlow backend, in a child process (the test process runs Keras on torch), and under onnxforge in the
test itself (``import onnxforge as tf``); the test compares the two dicts. ``start`` launches the child
while the test computes onnxforge's side; ``TFRun.results`` waits for it.

Run as ``python tf_oracle.py OUT.npz MODULE PROGRAM [PROGRAM ...]``: each program's results are saved under
``<program>/<name>`` keys.
"""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["TFRun", "start", "skip_without_tensorflow"]


def skip_without_tensorflow() -> None:
    """Skips the test where TensorFlow is not installed (without importing it here: that takes seconds)."""
    import importlib.util

    import pytest

    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("TensorFlow (the oracle) is not installed")


class TFRun:
    """A child process computing TensorFlow's results of some programs."""

    def __init__(self, process: subprocess.Popen, out: Path):
        self.process, self.out = process, out
        self._results: dict[str, dict[str, np.ndarray]] | None = None

    def results(self, program: str) -> dict[str, np.ndarray]:
        if self._results is None:
            _, err = self.process.communicate(timeout=600)
            if self.process.returncode != 0:
                raise RuntimeError(f"the TensorFlow run failed:\n{err.decode(errors='replace')[-4000:]}")
            found: dict[str, dict[str, np.ndarray]] = {}
            with np.load(self.out) as data:
                for key in data.files:
                    name, _, item = key.partition("/")
                    found.setdefault(name, {})[item] = data[key]
            self._results = found
        return self._results[program]


def start(module: str, programs: list[str], out: Path) -> TFRun:
    """Starts TensorFlow on ``programs`` of ``tests/keras_examples/<module>.py``, results to ``out``."""
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    process = subprocess.Popen([sys.executable, __file__, str(out), module, *programs], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return TFRun(process, out)


def _main(out: str, module: str, *programs: str) -> None:
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import keras
    import tensorflow as tf

    sys.path.insert(0, str(Path(__file__).parent))
    source: Any = importlib.import_module(module)
    saved = {}
    for name in programs:
        for key, value in getattr(source, name)(tf, keras).items():
            saved[f"{name}/{key}"] = np.asarray(value)
    np.savez(out, **saved)


if __name__ == "__main__":
    _main(*sys.argv[1:])
