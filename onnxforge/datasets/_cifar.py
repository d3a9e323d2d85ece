"""The CIFAR batch files shared by ``cifar10`` and ``cifar100``: finding them in Keras's cache, reading one.

Keras 3.15 downloads ``cifar-10-python.tar.gz`` as ``datasets/cifar-10-batches-py-target_archive`` and
extracts it into ``datasets/cifar-10-batches-py-target/`` (so the batches sit in
``.../cifar-10-batches-py-target/cifar-10-batches-py/``); tf.keras 2 and early Keras 3 extracted
``datasets/cifar-10-batches-py.tar.gz`` into ``datasets/cifar-10-batches-py/``. Either extracted folder is
read; where only a tarball is cached (under either name, or as the origin's own ``cifar-10-python.tar.gz``),
it is extracted into Keras 3.15's folder after every member was checked (``_untrusted_files.extract_tar``).
"""
from __future__ import annotations

__all__ = ["batches_folder", "load_batch", "to_image_layout"]

import os

import numpy as np

from ..backend_config import image_data_format
from . import _cache
from ._restricted_pickle import loads
from ._untrusted_files import extract_tar, read_bytes


def _complete(folder: str, files: tuple[str, ...]) -> bool:
    return all(os.path.isfile(os.path.join(folder, f)) for f in files)


def batches_folder(loader: str, inner: str, origin: str, files: tuple[str, ...]) -> str:
    """The folder holding ``files`` (``inner`` is the tarball's top folder, e.g. ``cifar-10-batches-py``)."""
    target = f"{inner}-target"
    dirs = _cache.cache_dirs()
    for folder in dirs:
        for candidate in (os.path.join(folder, target, inner), os.path.join(folder, inner)):
            if _complete(candidate, files):
                return candidate
    tarballs = (f"{target}_archive", f"{inner}.tar.gz", os.path.basename(origin))
    for folder in dirs:
        for tarball in tarballs:
            archive = os.path.join(folder, tarball)
            if not os.path.isfile(archive):
                continue
            extracted = os.path.join(folder, target)
            if os.path.exists(extracted):
                raise ValueError(f"{loader}: {extracted} exists but lacks {inner}/{files[0]} (an interrupted "
                                 f"extraction?). Delete it so that {archive} is extracted again.")
            extract_tar(archive, extracted)
            if not _complete(os.path.join(extracted, inner), files):
                raise ValueError(f"{loader}: the archive {archive} does not hold {inner}/{', '.join(files)}; it is not "
                                 f"the CIFAR archive ({origin}).")
            return os.path.join(extracted, inner)
    folder = dirs[0]
    raise FileNotFoundError(
        f"{loader}: CIFAR's batches are not in Keras's dataset cache ({folder}: no {target}/{inner}/, no {inner}/, "
        f"no {tarballs[0]}, {tarballs[1]} or {tarballs[2]}), and onnxforge does not download files. Download "
        f"{origin} and save it as {os.path.join(folder, tarballs[2])} (it is extracted there on first use), or "
        "set KERAS_HOME to a folder whose 'datasets' sub-folder holds it.")


def load_batch(path: str, loader: str, label_key: str = "labels") -> tuple[np.ndarray, list | np.ndarray]:
    """One CIFAR batch file (a pickled dict): its images ``(n, 3, 32, 32)`` and its ``label_key`` labels."""
    what = f"{loader}: {path}"
    batch = loads(read_bytes(path, loader), what)
    if not isinstance(batch, dict):
        raise ValueError(f"{what} holds a {type(batch).__name__}, not the dict of a CIFAR batch.")
    batch = {k.decode("utf8") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or label_key not in batch:
        raise ValueError(f"{what} has no 'data' or {label_key!r} entry (it has {sorted(map(str, batch))}).")
    data, labels = batch["data"], batch[label_key]
    if not isinstance(data, np.ndarray) or data.dtype.kind not in "ui" or data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"{what}: 'data' is not an integer array of shape (n, 3072) (found "
                         f"{type(data).__name__} {getattr(data, 'shape', '')} {getattr(data, 'dtype', '')}).")
    if not isinstance(labels, (list, np.ndarray)) or len(labels) != len(data):
        raise ValueError(f"{what}: {label_key!r} is not a list of {len(data)} labels.")
    return data.reshape(len(data), 3, 32, 32), labels


def to_image_layout(x: np.ndarray) -> np.ndarray:
    """CIFAR's channels-first images in the layout ``keras.config.image_data_format()`` names."""
    return x.transpose(0, 2, 3, 1) if image_data_format() == "channels_last" else x
