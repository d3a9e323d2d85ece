"""HDF5 global heap collections checked before the HDF5 library reads them.

Variable-length strings (every text attribute of a legacy ``.h5`` file: ``model_config``, ``keras_version``,
``layer_names``) live in global heap collections (``GCOL`` blocks). The library walks a collection's objects
by their declared sizes; one byte set to zero in a hostile file, a free-space object of size 0, made that
walk stand still, and ``h5py``'s read of the attribute never returned, holding the interpreter in C where
no signal or timeout reaches it. So every collection is walked here first, in Python, with the rules the
library relies on: the collection lies inside the file, every object fits in what is left of it, and the
free-space object (index 0), when present, covers exactly the rest.

Example:
    >>> import h5py, io
    >>> buffer = io.BytesIO()
    >>> with h5py.File(buffer, "w") as f:
    ...     f.attrs["note"] = "hello"
    >>> data = bytearray(buffer.getvalue())
    >>> check_global_heaps(bytes(data), "demo.h5") is None
    True
    >>> free = data.index(b"GCOL") + 16 + 16 + 8    # the free-space object after the one string
    >>> data[free + 8:free + 16] = bytes(8)          # its size set to 0
    >>> try:
    ...     check_global_heaps(bytes(data), "demo.h5")
    ... except ValueError as e:
    ...     print(str(e).split(": ")[2].split(" at byte")[0])
    its free space
"""
from __future__ import annotations

__all__ = ["check_global_heaps"]

import mmap
import os
import struct
from typing import Any

from .errors import KerasFileError

_SIGNATURE = b"GCOL\x01\x00\x00\x00"     # the signature, version 1, three reserved bytes
_HEADER = 16                             # signature + version + reserved + the collection's size
_OBJECT_HEADER = 16                      # index (2), reference count (2), reserved (4), size (8)


def _walk(data: Any, start: int, path: str) -> None:
    def refuse(why: str) -> KerasFileError:
        return KerasFileError(path, f"an HDF5 global heap collection is corrupt: {why}", key=f"GCOL@{start}")

    if start + _HEADER > len(data):
        raise refuse("it is cut off by the end of the file")
    (size,) = struct.unpack_from("<Q", data, start + 8)
    end = start + size
    if size < _HEADER or end > len(data):
        raise refuse(f"it declares {size} bytes, past the end of the file")
    seen: set[int] = set()
    at = start + _HEADER
    while end - at >= _OBJECT_HEADER:
        index, _, _, length = struct.unpack_from("<HHIQ", data, at)
        if index == 0:       # the free space: the rest of the collection, header included
            if length != end - at:
                raise refuse(f"its free space at byte {at} declares {length} bytes, {end - at} remain")
            return
        need = _OBJECT_HEADER + (length + 7) // 8 * 8
        if index in seen or need > end - at:
            raise refuse(f"object {index} at byte {at} declares {length} bytes, {end - at - _OBJECT_HEADER} remain"
                         if index not in seen else f"object {index} appears twice")
        seen.add(index)
        at += need


def check_global_heaps(source: bytes | str | os.PathLike[str], path: str) -> None:
    """Raise ``KerasFileError`` for a global heap collection of ``source`` (HDF5 bytes or a file path) that
    the HDF5 library would walk wrong; ``path`` names the file in the error."""
    if isinstance(source, (bytes, bytearray)):
        _scan(source, path)
        return
    with open(source, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            _scan(data, path)


def _scan(data: Any, path: str) -> None:
    at = data.find(_SIGNATURE)
    while at != -1:
        _walk(data, at, path)
        at = data.find(_SIGNATURE, at + len(_SIGNATURE))
