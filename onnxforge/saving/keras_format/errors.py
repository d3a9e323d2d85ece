"""The error every Keras-file reader raises for a file it cannot load safely."""
from __future__ import annotations

__all__ = ["KerasFileError"]

import os


class KerasFileError(ValueError):
    """A ``.keras`` archive, ``.weights.h5`` or legacy ``.h5`` file cannot be loaded; the message says why.

    A ``ValueError`` (as Keras raises for bad files), carrying where in the file the problem is.

    Attributes:
        path: The file.
        reason: What is wrong, without the file name.
        key: The archive member, HDF5 path or config key concerned, if any.

    Example:
        >>> e = KerasFileError("m.keras", "the archive has no 'config.json'", key="config.json")
        >>> str(e)
        "Cannot load Keras file 'm.keras': the archive has no 'config.json' (at 'config.json')"
    """

    def __init__(self, path: str | os.PathLike[str], reason: str, *, key: str | None = None) -> None:
        self.path = os.fspath(path) if isinstance(path, (str, os.PathLike)) else str(path)
        self.reason = reason
        self.key = key
        where = f" (at {key!r})" if key else ""
        super().__init__(f"Cannot load Keras file '{self.path}': {reason}{where}")
