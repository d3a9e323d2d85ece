"""Weights ``.npz`` files (``save_weights``, ``ModelCheckpoint``, ``np.savez(*get_weights())``) read as
untrusted input.

``np.load`` serves any member of the zip: one without the ``.npy`` suffix is read whole as raw bytes, and a
``.npy`` header may declare any shape, which numpy allocates before it reads a byte. So every member is
checked from the zip directory and its ``.npy`` header before ``np.load`` sees the file: only the names
onnxforge and ``np.savez`` write (``__names__.npy`` + ``w00000.npy``..., or ``arr_0.npy``...), each once, at
a bounded number of them, each declaring at most what the model's weights take together, and
storing exactly the bytes its header declares (so the decompressed size is bounded by the model's size too).
"""
from __future__ import annotations

__all__ = ["read_npz"]

import math
import re
import zipfile
from pathlib import Path

import numpy as np

from ..graph.safe_load import OnnxLoadError
from .model_files import _NPZ_NAMES
from .zip_directory import directory_size

_MEMBER = re.compile(r"(__names__|w\d{5}|arr_\d{1,9})\.npy")
#: numpy's own default cap on a ``.npy`` header (``max_header_size``).
_MAX_HEADER = 10_000


def _refuse(path: Path, name: str, why: str) -> OnnxLoadError:
    return OnnxLoadError(path, f"not a readable weights .npz file: member {name!r} {why}: not read",
                         key=name[:-4] if name.endswith(".npy") else name)


def _declared(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> tuple[int, int]:
    """``(bytes the array declares, bytes its header takes)``, reading only the header."""
    with archive.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version not in ((1, 0), (2, 0), (3, 0)):
            raise _refuse(path, info.filename, f"has .npy format version {version}, which numpy does not write")
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(f, max_header_size=_MAX_HEADER)
        header = f.tell()
    if dtype.hasobject:
        raise _refuse(path, info.filename, "holds Python objects (a pickle)")
    return math.prod(int(d) for d in shape) * dtype.itemsize, header


def check_members(path: Path, limit: int, max_members: int) -> None:
    """Every member of the ``.npz`` checked as the module docstring says, before anything is decompressed."""
    listed = directory_size(path)   # before zipfile builds an object per entry: ~100 bytes a member at most
    if listed is not None and listed > 256 * max_members:
        raise OnnxLoadError(path, f"not a readable weights .npz file: its zip directory takes {listed} bytes, far "
                            f"more than {max_members} members (the model's weights and their names) need: not read")
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        if len(infos) > max_members:
            raise OnnxLoadError(path, f"not a readable weights .npz file: it holds {len(infos)} members, far "
                                f"more than the model's weights and their names (at most {max_members}): not read")
        seen: set[str] = set()
        total = 0
        for info in infos:
            name = info.filename
            if not _MEMBER.fullmatch(name):
                raise _refuse(path, name, "is not one a weights .npz holds ('__names__.npy' and 'w00000.npy', "
                              "... or 'arr_0.npy', ...)")
            if name in seen:
                raise _refuse(path, name, "appears twice (which one is meant is ambiguous)")
            seen.add(name)
            if info.flag_bits & 0x1:
                raise _refuse(path, name, "is encrypted")
            nbytes, header = _declared(archive, info, path)
            if nbytes > limit:
                raise OnnxLoadError(path, f"array {name[:-4]!r} declares {nbytes} bytes, more than all the model's "
                                    f"weights together ({limit} bytes): not read", key=name[:-4])
            if info.file_size != header + nbytes:
                raise _refuse(path, name, f"stores {info.file_size - header} bytes after its header, which "
                              f"declares {nbytes}")
            total += nbytes
            if total > limit:
                raise _refuse(path, name, f"brings the arrays to {total} bytes together, more than all the "
                              f"model's weights ({limit} bytes)")


def read_npz(path: Path, limit: int, max_members: int) -> tuple[list[np.ndarray], list[str]]:
    """The arrays of a weights ``.npz`` and their labels (the saved weight names, or ``arr_k``).

    Args:
        path: the file.
        limit: the most bytes the arrays may declare, each and together.
        max_members: the most members the zip may hold.
    """
    try:
        check_members(path, limit, max_members)
        with np.load(path, allow_pickle=False) as data:
            keys = list(data.keys())
            if _NPZ_NAMES in keys:
                names = data[_NPZ_NAMES]
                if names.ndim != 1 or names.dtype.kind != "U":
                    raise _refuse(path, f"{_NPZ_NAMES}.npy", f"is a {names.dtype} array of shape {names.shape}, "
                                  "not a list of weight names")
                labels = [str(n) for n in names]
                arrays = [data[f"w{k:05d}"] for k in range(len(labels))]
            else:   # np.savez(*arrays): arr_0, arr_1, ...
                labels = [f"arr_{k}" for k in range(len(keys))]
                arrays = [data[k] for k in labels]
    except FileNotFoundError:
        raise FileNotFoundError(f"load_weights(): no such file: {str(path)!r}") from None
    except OnnxLoadError:
        raise
    except (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile, NotImplementedError, RuntimeError) as e:
        raise ValueError(f"load_weights(): {str(path)!r} is not a readable weights .npz file ({e}).") from None
    return arrays, labels
