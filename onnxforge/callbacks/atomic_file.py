"""Files the callbacks write (checkpoints, backup metadata), written atomically.

``onnxforge.saving.atomic`` serves the model files; the callbacks sit below ``saving`` in the module flow,
so their few writes go through this one helper: a temporary file in the same folder, flushed to disk, then
renamed, so an interrupted write never leaves half a file where a good one was.

Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "state.json")
    >>> write_atomically(path, lambda f: f.write(b"{}"))
    >>> open(path).read()
    '{}'
"""
from __future__ import annotations

__all__ = ["write_atomically"]

import os
import tempfile
from collections.abc import Callable
from typing import BinaryIO


def write_atomically(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> None:
    """Create or replace ``path`` with what ``write(binary file)`` writes, all or nothing."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.splitext(path)[1], dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
