"""Run one Keras program under real Keras 3 (torch backend) and under onnxforge, and compare what it reports.

A program is written once against the ``keras`` API: ``program(keras, data, init)`` builds its models with
the module it is given (real ``keras`` or ``onnxforge.keras``), calls ``init(model)`` right after building
each model whose weights the harness may copy (in the same order in both runs), trains, and returns its
final metrics as ``{name: value}``.

``run_both`` runs Keras first; with ``copy_weights=True`` Keras's ``init`` records the model's initial
weights and onnxforge's ``init`` sets them, so both frameworks start from the same point; with
``copy_weights=False`` each initializes on its own. What remains different is each framework's randomness
(Dropout masks, ``keras.random`` draws) and float32 summation order; each test states how that bounds
the comparison.

Gradients in a custom ``train_step`` are the one thing Keras 3 leaves to each backend: ``value_and_grad``
is torch's ``backward()`` under Keras (keras.io "customizing fit() with PyTorch") and ``GradientTape`` under
onnxforge (its tf.keras-style tape).
"""
from __future__ import annotations

import os
import time
from typing import Any, Callable

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("KERAS_TORCH_DEVICE", "cpu")   # float32 CPU kernels are the reference
keras = pytest.importorskip("keras")
if keras.backend.backend() != "torch":   # pragma: no cover - another backend was chosen before us
    pytest.skip("the client suite runs Keras on its torch backend", allow_module_level=True)
torch = pytest.importorskip("torch")

import onnxforge  # noqa: E402
import onnxforge.keras as fkeras  # noqa: E402

__all__ = ["keras", "fkeras", "run_both", "value_and_grad", "to_numpy", "mnist", "assert_band", "assert_close",
           "apply_gradients", "workdir"]

Program = Callable[..., dict]
PROGRAM_SEED = 1337


def run_both(program: Program, data: Any, copy_weights: bool, **kwargs: Any) -> tuple[dict, dict]:
    """Runs ``program`` under Keras then onnxforge; returns ``(keras_metrics, onnxforge_metrics)``."""
    initial: list[list[np.ndarray]] = []   # one entry per init() call, in call order
    applied = []

    def record(model) -> None:
        if copy_weights:
            initial.append([np.array(to_numpy(w)) for w in model.get_weights()])

    def apply(model) -> None:
        if copy_weights:
            model.set_weights(initial[len(applied)])
            applied.append(model)

    # Every run starts from the same global seeds (Python, numpy, torch, Keras's; onnxforge's own): a program
    # that seeds nothing itself still draws the same initial weights, Dropout masks and shuffles on every run,
    # so a comparison that passes once passes always (an unseeded draw once made two Grad-CAM classes one).
    keras.utils.set_random_seed(PROGRAM_SEED)
    start = time.perf_counter()
    want = program(keras, data, init=record, **kwargs)
    middle = time.perf_counter()
    fkeras.utils.set_random_seed(PROGRAM_SEED)
    got = program(fkeras, data, init=apply, **kwargs)
    assert len(applied) == len(initial), "the program built different models in each framework"
    end = time.perf_counter()
    print(f"\n{program.__name__}: keras {middle - start:.1f}s, onnxforge {end - middle:.1f}s")
    print(f"  keras     {_fmt(want)}\n  onnxforge {_fmt(got)}")
    assert sorted(got) == sorted(want), f"the program reported different metrics: {sorted(got)} vs {sorted(want)}"
    return want, got


def _fmt(metrics: dict) -> str:
    return ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(metrics.items()))


def assert_close(want: dict, got: dict, rtol: float, atol: float = 0.0, keys: list[str] | None = None) -> None:
    """Each metric within ``atol + rtol * |keras|`` of Keras's value (same start, same batches)."""
    for key in keys or sorted(want):
        assert abs(got[key] - want[key]) <= atol + rtol * abs(want[key]), (
            f"{key}: onnxforge {got[key]:.6g} vs keras {want[key]:.6g} (rtol={rtol}, atol={atol})")


def assert_band(want: dict, got: dict, width: float, keys: list[str]) -> None:
    """Each metric within ``width`` of Keras's value (independent randomness: the same band, not the same number)."""
    for key in keys:
        assert abs(got[key] - want[key]) <= width, (
            f"{key}: onnxforge {got[key]:.4f} vs keras {want[key]:.4f} (allowed band {width})")


def to_numpy(x: Any) -> np.ndarray:
    """A tensor of either framework (torch tensor, Keras Variable, onnxforge EagerTensor / Variable) as numpy."""
    if hasattr(x, "numpy") and not isinstance(x, torch.Tensor):
        return np.asarray(x.numpy())
    return np.asarray(keras.ops.convert_to_numpy(x))


def value_and_grad(api: Any, fn: Callable[[], Any], variables: list) -> tuple[Any, list]:
    """``fn()`` returns a loss or a tuple whose first item is the loss; returns ``(fn(), gradients)``.

    The backend-specific part of a custom ``train_step``: under Keras on torch, ``loss.backward()`` and each
    variable's ``.value.grad``; under onnxforge, a ``GradientTape``.
    """
    if api is fkeras:
        with onnxforge.GradientTape() as tape:
            out = fn()
        loss = out[0] if isinstance(out, tuple) else out
        return out, tape.gradient(loss, variables)
    for v in variables:
        v.value.grad = None
    out = fn()
    loss = out[0] if isinstance(out, tuple) else out
    loss.backward()
    return out, [v.value.grad for v in variables]


def apply_gradients(api: Any, optimizer: Any, grads: list, variables: list) -> None:
    """``optimizer.apply_gradients`` (under torch inside ``no_grad``, as keras.io's torch guide does)."""
    if api is fkeras:
        optimizer.apply_gradients(zip(grads, variables))
        return
    with torch.no_grad():
        optimizer.apply(grads, variables)


def workdir(api: Any, tmp_path: Any) -> Any:
    """A folder of its own for each framework's files inside pytest's ``tmp_path``."""
    folder = tmp_path / ("onnxforge" if api is fkeras else "keras")
    folder.mkdir(exist_ok=True)
    return folder


_MNIST: dict[str, Any] = {}


def mnist(n_train: int, n_test: int) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The first ``n_train`` / ``n_test`` of the real digits onnxforge ships (uint8 images, uint8 labels)."""
    if "data" not in _MNIST:
        _MNIST["data"] = fkeras.datasets.mnist.load_data()
    (x, y), (xt, yt) = _MNIST["data"]
    return (x[:n_train], y[:n_train]), (xt[:n_test], yt[:n_test])
