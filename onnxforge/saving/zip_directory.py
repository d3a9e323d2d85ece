"""The size of a zip archive's central directory, read before ``zipfile`` parses it.

``zipfile.ZipFile(path)`` builds a Python object for every entry of the central directory before anyone can
count them, and reads entries for as many bytes as the end record says the directory takes, whatever entry
count it declares: a 100 MB archive of empty members (or of directory entries all pointing at one member)
costs about a gigabyte of memory and half a minute before a member-count limit could refuse it. The loaders
of untrusted archives (``.keras``, weights ``.npz``) ask :func:`directory_size` first and refuse a
directory larger than their members need; an archive without a readable end record is left to
``zipfile``'s own error.

Example:
    >>> import zipfile, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "m.keras")
    >>> with zipfile.ZipFile(path, "w") as zf:
    ...     zf.writestr("config.json", "{}")
    >>> directory_size(path)
    57
"""
from __future__ import annotations

__all__ = ["directory_size"]

import os
import struct

_END = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_END = b"PK\x06\x06"


def directory_size(path: str | os.PathLike[str]) -> int | None:
    """The bytes the archive's end record says its central directory takes (``None``: no end record)."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        tail_len = min(size, 22 + 0xFFFF)    # the end record, then a comment of at most 64 KiB
        f.seek(size - tail_len)
        tail = f.read(tail_len)
        at = tail.rfind(_END)
        if at < 0 or len(tail) - at < 22:
            return None
        directory = struct.unpack("<I", tail[at + 12:at + 16])[0]
        # zipfile reads the ZIP64 record's size wherever its locator is present, whatever the first one says.
        if at >= 20 and tail[at - 20:at - 16] == _ZIP64_LOCATOR:
            offset = struct.unpack("<Q", tail[at - 12:at - 4])[0]
            if offset < size:
                f.seek(offset)
                record = f.read(56)
                if len(record) == 56 and record[:4] == _ZIP64_END:
                    directory = max(directory, struct.unpack("<Q", record[40:48])[0])
        return directory
