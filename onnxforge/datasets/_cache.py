"""Where Keras keeps downloaded datasets, and the error raised when a file is not there.

Keras caches dataset files under ``$KERAS_HOME/datasets`` (``~/.keras/datasets`` without ``KERAS_HOME``;
``/tmp/.keras/datasets`` where that folder cannot be written). The loaders read the files Keras left there,
under Keras's own names, so a machine where Keras once downloaded a dataset needs nothing more. onnxforge
does not download (``keras.utils.get_file`` only copies local origins), so a missing file is an error that
says where to put it.
"""
from __future__ import annotations

__all__ = ["ORIGIN", "cache_dirs", "cached_name", "find", "missing"]

import os

#: The folder Keras downloads most of its datasets from.
ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"


def _keras_home() -> str:
    if "KERAS_HOME" in os.environ:
        return os.path.expanduser(os.environ["KERAS_HOME"])
    home = os.path.expanduser("~")
    return os.path.join(home if os.access(home, os.W_OK) else "/tmp", ".keras")


def cache_dirs(subdir: str = "datasets") -> list[str]:
    """The folders searched, in order: Keras's cache, then the ``/tmp`` one it falls back to."""
    primary = os.path.join(_keras_home(), subdir)
    fallback = os.path.join("/tmp", ".keras", subdir)
    return [primary] if os.path.abspath(fallback) == os.path.abspath(primary) else [primary, fallback]


def cached_name(loader: str, path: object) -> str:
    """The ``path`` argument of a loader checked: a file name in the cache, as Keras 3's ``get_file`` wants.

    An absolute path to an existing file is taken as is (tf.keras 2 read it so, and programs still pass one).
    """
    name = os.fspath(path) if isinstance(path, os.PathLike) else path
    if not isinstance(name, str) or not name:
        raise TypeError(f"{loader}: `path` must be a file name (str), relative to Keras's dataset cache. "
                        f"Received: path={path!r}")
    if os.path.isabs(name) and os.path.isfile(name):
        return name
    if os.sep in name or (os.altsep and os.altsep in name):
        raise ValueError(f"{loader}: paths are not accepted as `path`, only a file name inside Keras's dataset "
                         f"cache ({cache_dirs()[0]}); set KERAS_HOME to use another cache folder. Received: "
                         f"path={path!r}")
    return name


def find(name: str, subdir: str = "datasets") -> str | None:
    """The cached file (or folder) ``name``, or ``None`` when no cache folder holds it."""
    if os.path.isabs(name):
        return name if os.path.exists(name) else None
    for folder in cache_dirs(subdir):
        candidate = os.path.join(folder, name)
        if os.path.exists(candidate):
            return candidate
    return None


def missing(loader: str, name: str, origin: str, subdir: str = "datasets") -> FileNotFoundError:
    """The error for a dataset file that is not cached: names the file, the folder searched and the fix."""
    folder = cache_dirs(subdir)[0]
    return FileNotFoundError(
        f"{loader}: the dataset file {name!r} is not in Keras's dataset cache ({folder}), and onnxforge does not "
        f"download files. Download {origin} and save it as {os.path.join(folder, name)} (Keras itself puts it "
        f"there on its first download), or set KERAS_HOME to a folder whose '{subdir}' sub-folder holds it.")
