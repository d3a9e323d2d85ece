"""The error every Keras-file reader raises for a file it cannot load safely, and the stage guard that makes
sure of it."""
from __future__ import annotations

__all__ = ["KerasFileError", "KerasFileNotFoundError", "KerasFileTypeError", "UnsupportedKerasLayerError", "Stage"]

import os
from typing import Any

from ...layers.allocation import WeightBudgetError


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


class KerasFileNotFoundError(FileNotFoundError, ValueError):
    """A ``.keras`` path that does not exist: Keras 3 raises ``ValueError`` here, Python code expects
    ``FileNotFoundError``; this is both, so either ``except`` catches it."""


class KerasFileTypeError(KerasFileError, TypeError):
    """A class in the file's config refused its arguments (``from_config`` / ``__init__`` raised
    ``TypeError``): Keras 3 raises ``TypeError`` there, so this is one too, and a ``KerasFileError``."""


class UnsupportedKerasLayerError(KerasFileError, NotImplementedError):
    """The Keras model uses layer classes or arguments onnxforge does not implement.

    A ``KerasFileError`` when a file is being loaded (``path`` set); still a ``NotImplementedError`` too, as
    before, for callers converting a config in memory (``exporters.keras_exporter.from_keras``), where
    ``path`` is None and the message is the list alone.

    Attributes:
        problems: one line per unsupported layer (its name, class and, where relevant, the argument).
    """

    def __init__(self, problems: list[str], path: str | os.PathLike[str] | None = None,
                 key: str | None = None) -> None:
        self.problems = problems
        reason = "onnxforge cannot rebuild this Keras model:\n  - " + "\n  - ".join(problems)
        if path is not None:
            super().__init__(path, reason, key=key)
        else:
            self.path, self.reason, self.key = None, reason, key
            Exception.__init__(self, reason)


class Stage:
    """Turns any failure while acting on one part of a Keras file into a ``KerasFileError`` naming that part.

    The file's JSON and HDF5 framing are checked by then, but their content is still untrusted: a config no
    class accepts, a compile config naming a missing function, a dataset that cannot be decompressed must
    end as one clear error, not as whatever the code underneath raised (as ``model_reading._Stage`` does for
    ``.onnx`` files).

    Example:
        >>> with Stage("m.keras", "config.json", "config.json does not describe a model onnxforge can build"):
        ...     {}["units"]
        Traceback (most recent call last):
        ...
        onnxforge.saving.keras_format.errors.KerasFileError: Cannot load Keras file 'm.keras': config.json does not describe a model onnxforge can build: KeyError: 'units' (at 'config.json')
    """

    def __init__(self, path: str | os.PathLike[str], key: str | None, what: str) -> None:
        self.path, self.key, self.what = path, key, what   # what: the sentence the cause follows

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, error: BaseException | None, tb: Any) -> bool:
        if error is None or not isinstance(error, Exception):
            return False
        if isinstance(error, UnsupportedKerasLayerError) and error.path is None:
            raise UnsupportedKerasLayerError(error.problems, self.path, self.key) from None
        if isinstance(error, KerasFileError):
            return False
        if isinstance(error, RecursionError):
            reason = "it nests too deeply"
        elif isinstance(error, WeightBudgetError):
            reason = str(error)
        else:
            reason = f"{type(error).__name__}: {error}"
        if isinstance(error, TypeError):   # e.g. a custom layer whose __init__ takes no **kwargs
            raise KerasFileTypeError(self.path, f"{self.what}: {reason}", key=self.key) from error
        raise KerasFileError(self.path, f"{self.what}: {reason}", key=self.key) from error
