"""Shared by the Keras-file tests: real Keras 3 (torch backend) as the oracle, and small helpers."""
from __future__ import annotations

import io
import os
import zipfile

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
h5py = pytest.importorskip("h5py")


def h5_layout(data: bytes | str) -> dict[str, tuple[str, list[tuple[int, ...]]]]:
    """``{".../vars": (name attribute, [dataset shapes in index order])}`` of a Keras weights file."""
    f = h5py.File(io.BytesIO(data) if isinstance(data, bytes) else data, "r")
    out = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Group) and name.split("/")[-1] == "vars":
            out[name] = (str(obj.attrs.get("name")), [tuple(obj[str(i)].shape) for i in range(len(obj))])

    f.visititems(visit)
    f.close()
    return out


def archive_weights(path) -> bytes:
    with zipfile.ZipFile(path) as zf:
        return zf.read("model.weights.h5")


def randomize(model, seed: int = 0) -> None:
    """Random weights everywhere in a Keras model (zeros and ones would hide misplaced weights)."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        value = rng.normal(0, 0.3, w.shape).astype("float32")
        if "variance" in w.path:
            value = np.abs(value) + 0.5
        w.assign(value)


def inputs_for(model, batch: int = 4, seed: int = 1):
    """Random inputs for every model input (ints for integer inputs), as one array or a list."""
    rng = np.random.default_rng(seed)
    xs = []
    for t in model.inputs:
        shape = (batch, *t.shape[1:])
        xs.append(rng.integers(1, 9, shape).astype("int32") if "int" in str(t.dtype) else
                  rng.normal(size=shape).astype("float32"))
    return xs[0] if len(xs) == 1 else xs


def as_list(out):
    return [np.asarray(o) for o in out] if isinstance(out, (list, tuple)) else [np.asarray(out)]


def max_diff(a, b) -> float:
    return max(float(np.abs(x - y).max()) for x, y in zip(as_list(a), as_list(b)))
