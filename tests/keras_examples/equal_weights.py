"""Checks shared by the programs that are deterministic from equal weights (no Dropout draws, no augmentation).

``predict_fit_reload`` runs the same sequence in either framework: ``predict``, one ``train_on_batch``,
``predict`` again, ``model.save`` to ``.keras`` and ``load_model`` back, ``predict`` with the reloaded model.
Each framework's program calls it; the test compares the arrays it returns (``compare``) and can load the
onnxforge file in real Keras (``load_in_keras``) to show the file is an ordinary Keras 3 archive.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .harness import keras, to_numpy

__all__ = ["predict_fit_reload", "compare", "load_in_keras"]


def predict_fit_reload(api: Any, model: Any, x: Any, y: Any, folder: Path,
                       custom_objects: dict | None = None) -> dict[str, Any]:
    """``{"predict", "loss", "after_fit", "reloaded", "path"}`` for ``model`` (compiled) on one batch ``x, y``."""
    out: dict[str, Any] = {"predict": np.asarray(to_numpy(model.predict(x, verbose=0)))}
    logs = model.train_on_batch(x, y, return_dict=True)
    out["loss"] = float(logs["loss"])
    out["after_fit"] = np.asarray(to_numpy(model.predict(x, verbose=0)))
    path = str(folder / "model.keras")
    model.save(path)
    reloaded = api.models.load_model(path, custom_objects=custom_objects)
    out["reloaded"] = np.asarray(to_numpy(reloaded.predict(x, verbose=0)))
    out["path"] = path
    return out


def compare(want: dict[str, Any], got: dict[str, Any], rtol: float = 1e-4, atol: float = 1e-5,
            fit_rtol: float | None = None, same_after_reload: bool = True) -> None:
    """onnxforge's results equal Keras's to float32 summation-order differences; reloading changes nothing.

    ``fit_rtol`` (default ``rtol``) bounds the predictions after the training step, for programs whose step
    amplifies float noise (Adam's first step moves a weight by ``lr * g / (|g| + eps)`` whatever ``g``'s size).
    ``same_after_reload=False`` for programs whose reloaded model is not the saved one in Keras either (then
    only onnxforge's reloaded model against Keras's is checked).
    """
    np.testing.assert_allclose(got["predict"], want["predict"], rtol=rtol, atol=atol, err_msg="predict")
    assert abs(got["loss"] - want["loss"]) <= atol + rtol * abs(want["loss"]), (got["loss"], want["loss"])
    np.testing.assert_allclose(got["after_fit"], want["after_fit"], rtol=fit_rtol or rtol, atol=atol,
                               err_msg="after one fit step")
    np.testing.assert_allclose(got["reloaded"], want["reloaded"], rtol=fit_rtol or rtol, atol=atol,
                               err_msg="reloaded")
    if same_after_reload:
        np.testing.assert_allclose(got["reloaded"], got["after_fit"], rtol=1e-6, atol=1e-6, err_msg="onnxforge reload")
        np.testing.assert_allclose(want["reloaded"], want["after_fit"], rtol=1e-6, atol=1e-6, err_msg="keras reload")


def load_in_keras(path: str, x: Any, expected: np.ndarray, custom_objects: dict | None = None,
                  atol: float = 1e-5) -> None:
    """onnxforge's ``.keras`` file loads in real Keras 3 (with Keras's own custom classes) and predicts the same."""
    reloaded = keras.models.load_model(path, custom_objects=custom_objects)
    np.testing.assert_allclose(to_numpy(reloaded.predict(x, verbose=0)), expected, rtol=1e-4, atol=atol)


