"""TensorFlow's side of the programs written against ``tf`` and ``keras`` (keras.io's TF-backend examples).

A program ``program(tf, keras, **kwargs) -> {name: array}`` runs here under real TensorFlow with Keras 3 on
its TensorFlow backend, in a child process (the test process runs Keras on torch), and under onnxforge in the
test itself (``import onnxforge as tf``); the test compares the two dicts. ``start`` launches the child
while the test computes onnxforge's side; ``TFRun.results`` waits for it.

Importing TensorFlow and Keras on it costs 7-8 CPU-seconds, and two dozen test modules want an oracle: each
test process keeps one server (``tf_server.py``) that imports them once and forks a fresh child per request,
so every run still starts from a process that has run nothing, as a new interpreter would.

Run as ``python tf_oracle.py OUT.npz MODULE PROGRAM [PROGRAM ...]``: each program's results are saved under
``<program>/<name>`` keys.
"""
from __future__ import annotations

import importlib
import os
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

    def __init__(self, job: Any, out: Path):   # a tests.tf_server.Job
        self.job, self.out = job, out
        self._results: dict[str, dict[str, np.ndarray]] | None = None

    def results(self, program: str) -> dict[str, np.ndarray]:
        if self._results is None:
            done = self.job.wait()
            if done.returncode != 0:
                raise RuntimeError(f"the TensorFlow run failed:\n{done.stderr[-4000:]}")
            found: dict[str, dict[str, np.ndarray]] = {}
            with np.load(self.out) as data:
                for key in data.files:
                    name, _, item = key.partition("/")
                    found.setdefault(name, {})[item] = data[key]
            self._results = found
        return self._results[program]


def start(module: str, programs: list[str], out: Path) -> TFRun:
    """Starts TensorFlow on ``programs`` of ``tests/keras_examples/<module>.py``, results to ``out``."""
    from .. import tf_server   # here: the child runs this file as a top-level module

    job = tf_server.submit(["-c", _RUN, str(out), module, *programs], env={"CUDA_VISIBLE_DEVICES": ""},
                           timeout=600)
    return TFRun(job, out)


# What a child runs (as ``python -c``): this file's ``_main`` on its arguments.
_RUN = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import tf_oracle; " \
       "tf_oracle._main(*sys.argv[1:])"


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
