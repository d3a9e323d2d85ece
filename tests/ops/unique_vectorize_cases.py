"""The ``ops.unique`` / ``ops.vectorize`` calls of ``test_unique_vectorize.py``, written once against a
``keras.ops``-like module (``vectorize`` also against ``numpy``: Keras 3.15's TensorFlow backend refuses every
``vectorize`` call, its vmap accepting no tuple of axes); run as a script (Keras 3 on TensorFlow) it writes the
``unique`` results to ``argv[1]``."""
from __future__ import annotations

import os
import sys

import numpy as np

V = np.array([3, 1, 2, 1, 3, 2], np.int32)
M = np.array([[1.5, 0.0, 2.0], [0.0, 1.5, 0.0], [1.5, 0.0, 2.0], [-1.0, 4.0, 0.0]], np.float32)
R = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 1]], np.int32)

UNIQUE = {   # name -> (array, kwargs)
    "plain": (V, {}),
    "all": (V, dict(return_index=True, return_inverse=True, return_counts=True)),
    "unsorted": (V, dict(sorted=False, return_index=True, return_inverse=True, return_counts=True)),
    "matrix_flat": (M, dict(return_inverse=True, return_counts=True)),
    "rows": (R, dict(axis=0, return_index=True, return_inverse=True, return_counts=True)),
    "columns": (M, dict(axis=1, return_inverse=True, return_counts=True)),
    "unsorted_rows": (R, dict(axis=0, sorted=False, return_inverse=True)),
    "padded": (V, dict(size=5, fill_value=-1, return_index=True, return_counts=True)),
    "padded_rows": (R, dict(axis=0, size=4, return_counts=True)),
    "truncated": (V, dict(size=2, return_index=True, return_counts=True)),
}


def unique_results(ops) -> dict:
    out = {}
    for name, (x, kwargs) in UNIQUE.items():
        res = ops.unique(x, **kwargs)
        for k, r in enumerate(res if isinstance(res, tuple) else (res,)):
            out[f"unique_{name}_{k}"] = np.asarray(r)
    return out


def vectorize_cases(ops) -> dict:
    return {
        "add": (ops.vectorize(lambda a, b: a + b), (np.arange(4, dtype=np.float32), np.float32(2.0))),
        "broadcast": (ops.vectorize(lambda a, b: a * b - 1.0),
                      (np.arange(3, dtype=np.float32).reshape(3, 1), np.array([2.0, -1.0], np.float32))),
        "matvec": (ops.vectorize(lambda m, v: m @ v, signature="(m,n),(n)->(m)"),
                   (np.arange(24, dtype=np.float32).reshape(2, 3, 4), np.array([1.0, 0.0, -1.0, 2.0], np.float32))),
        "two_outputs": (ops.vectorize(lambda x: (x + 1.0, x * x)), (np.arange(6, dtype=np.float32).reshape(2, 3),)),
    }


def vectorize_results(ops) -> dict:
    out = {}
    for name, (fn, args) in vectorize_cases(ops).items():
        res = fn(*args)
        for k, r in enumerate(res if isinstance(res, tuple) else (res,)):
            out[f"vectorize_{name}_{k}"] = np.asarray(r)
    return out


if __name__ == "__main__":
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import keras

    np.savez(sys.argv[1], **unique_results(keras.ops))
