"""``tf.data.TextLineDataset``: the lines of text files as a ``Dataset`` of string scalars, as TensorFlow's
"Customization basics" and "Load text" tutorials read them.

TensorFlow's rules are kept: files are read in the order given (no glob patterns), each line without its
``\\n`` (nor a ``\\r`` before it), a last line without a newline still a line, a file ending in a newline
giving no empty last line; ``compression_type`` ``""`` / ``None``, ``"GZIP"`` or ``"ZLIB"``. The files are read
each time the dataset is iterated, so a missing file raises ``NotFoundError`` then, as in TensorFlow. Lines are
NumPy ``str`` scalars, as strings are elsewhere in onnxforge (``.numpy()`` gives TensorFlow's ``bytes``), so
the files must hold UTF-8 text.

Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "t.txt")
    >>> _ = open(path, "w").write("Line 1\\nLine 2\\n")
    >>> [line.numpy() for line in TextLineDataset(path)]
    [b'Line 1', b'Line 2']
"""
from __future__ import annotations

__all__ = ["TextLineDataset"]

import gzip
import os
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..utils.dataset import Dataset
from ..utils.dataset_methods import UNKNOWN
from .errors import NotFoundError

_COMPRESSIONS = (None, "", "GZIP", "ZLIB")


def _names(filenames: Any) -> list[str]:
    if isinstance(filenames, (str, bytes, os.PathLike)):
        filenames = [filenames]
    names = []
    for name in np.asarray(filenames, dtype=object).ravel().tolist():
        name = name.decode() if isinstance(name, bytes) else os.fspath(name)
        names.append(name)
    if not names:
        raise ValueError("TextLineDataset: `filenames` must name at least one file. Received: an empty list.")
    return names


def _read(name: str, compression_type: str | None) -> bytes:
    if not os.path.isfile(name):   # a directory, a FIFO or nothing: TensorFlow's NotFoundError names the path
        raise NotFoundError(None, None, f"{name}; No such file or directory")
    with (gzip.open if compression_type == "GZIP" else open)(name, "rb") as f:
        data = f.read()
    return zlib.decompress(data) if compression_type == "ZLIB" else data


def _lines(names: list[str], compression_type: str | None) -> Iterator[np.ndarray]:
    for name in names:
        data = _read(name, compression_type)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"TextLineDataset: {name!r} is not UTF-8 text ({e}); onnxforge holds strings as "
                             "Python text.") from None
        lines = text.split("\n")
        if lines[-1] == "":   # the file ends with a newline (or is empty): no line after it
            lines.pop()
        for line in lines:
            yield np.asarray(line[:-1] if line.endswith("\r") else line)


def TextLineDataset(filenames: Any, compression_type: str | None = None, buffer_size: Any = None,  # noqa: N802
                    num_parallel_reads: Any = None, name: str | None = None) -> Dataset:
    """``tf.data.TextLineDataset``: one string scalar per line of ``filenames`` (a path or a list of them).

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "t.txt")
        >>> _ = open(path, "w").write("a\\r\\nb")
        >>> [line.numpy() for line in TextLineDataset([path])]
        [b'a', b'b']
    """
    if compression_type not in _COMPRESSIONS:
        raise ValueError(f"TextLineDataset: compression_type must be '', 'GZIP' or 'ZLIB'. "
                         f"Received: compression_type={compression_type!r}")
    names = _names(filenames)
    return Dataset(lambda: _lines(names, compression_type), UNKNOWN)
