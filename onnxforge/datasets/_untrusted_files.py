"""Reading dataset files as untrusted input: ``.npz`` archives, gzip streams and tarballs.

Each read is bounded before it happens: a ``.npz`` member's ``.npy`` header is read first and the array it
declares must fit ``MAX_FILE_BYTES`` (numpy would allocate any declared shape), object arrays go through the
restricted unpickler, a gzip stream is decompressed only up to the bound, and a tarball is extracted only
after every member was checked to stay inside the target folder (no absolute names, no ``..``, no links,
devices or other special files), then with tarfile's ``data`` filter as a second guard.
"""
from __future__ import annotations

__all__ = ["MAX_FILE_BYTES", "read_npz", "read_gzip", "read_bytes", "extract_tar"]

import gzip
import io
import math
import os
import posixpath
import shutil
import tarfile
import tempfile
import zipfile

import numpy as np

from . import _restricted_pickle

#: The most bytes one dataset file, or one member of an archive, may take once decompressed.
MAX_FILE_BYTES = 1 << 30


def _too_big(what: str, size: int) -> ValueError:
    return ValueError(f"{what} takes {size} bytes, more than the {MAX_FILE_BYTES} a dataset file may take: "
                      "not read. The file may be corrupted or malicious.")


def read_bytes(path: str, what: str) -> bytes:
    """A whole file, refused when larger than ``MAX_FILE_BYTES``."""
    size = os.path.getsize(path)
    if size > MAX_FILE_BYTES:
        raise _too_big(f"{what} ({path})", size)
    with open(path, "rb") as f:
        return f.read()


def read_gzip(path: str, what: str) -> bytes:
    """A gzip file's content, decompressed up to ``MAX_FILE_BYTES`` (a larger stream is refused)."""
    try:
        with gzip.open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except (OSError, EOFError) as e:
        raise ValueError(f"{what}: {path} is not a readable gzip file ({e}).") from None
    if len(data) > MAX_FILE_BYTES:
        raise _too_big(f"{what} ({path}, decompressed)", len(data))
    return data


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, what: str, allow_objects: bool) -> np.ndarray:
    with archive.open(info) as raw:
        data = raw.read(MAX_FILE_BYTES + 1)
    stream = io.BytesIO(data)
    version = np.lib.format.read_magic(stream)
    if version not in ((1, 0), (2, 0), (3, 0)):
        raise ValueError(f"{what}: member {info.filename!r} has .npy format version {version}")
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read_header(stream, max_header_size=10_000)
    nbytes = math.prod(shape) * max(dtype.itemsize, 1)
    if nbytes > MAX_FILE_BYTES:
        raise _too_big(f"{what}: array {info.filename!r} of shape {shape}", nbytes)
    if not dtype.hasobject:
        stream.seek(0)
        return np.lib.format.read_array(stream, allow_pickle=False)
    if not allow_objects:
        raise ValueError(f"{what}: array {info.filename!r} holds Python objects (a pickle), which this dataset's "
                         "file never does: not read. The file may be corrupted or malicious.")
    array = _restricted_pickle.loads(stream.read(), f"{what}: array {info.filename!r}")
    if not isinstance(array, np.ndarray) or array.shape != tuple(shape):
        raise ValueError(f"{what}: member {info.filename!r} declares an array of shape {shape} but holds "
                         f"{type(array).__name__} {getattr(array, 'shape', '')}")
    return array


def read_npz(path: str, what: str, names: tuple[str, ...], allow_objects: bool = True) -> dict[str, np.ndarray]:
    """The arrays ``names`` of a ``.npz`` file (``np.savez``'s ``<name>.npy`` members).

    Numeric arrays are read with pickling disabled; object arrays (ragged sequences) with the restricted
    unpickler of ``_restricted_pickle``, or refused where ``allow_objects`` is false (numeric datasets, which
    Keras reads with ``allow_pickle=False``).

    Raises:
        ValueError: the file is not a zip of ``.npy`` members, lacks one of ``names``, or a member is too big.
        pickle.UnpicklingError: an object array names a forbidden global or is inconsistent.
    """
    arrays: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            members = {info.filename: info for info in archive.infolist()}
            for name in names:
                info = members.get(f"{name}.npy")
                if info is None:
                    raise ValueError(f"{what}: {path} holds no array {name!r} (it holds "
                                     f"{sorted(members)[:10]}); it is not the file Keras downloads.")
                if info.file_size > MAX_FILE_BYTES:
                    raise _too_big(f"{what}: array {name!r}", info.file_size)
                arrays[name] = _read_member(archive, info, what, allow_objects)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as e:
        raise ValueError(f"{what}: {path} is not a readable .npz file ({type(e).__name__}: {e}).") from None
    return arrays


def _check_member(member: tarfile.TarInfo, archive: str) -> None:
    name = member.name
    parts = posixpath.normpath(name.replace("\\", "/")).split("/")
    if (name.startswith(("/", "\\")) or os.path.isabs(name) or (len(name) > 1 and name[1] == ":")
            or ".." in parts or "\x00" in name):
        raise ValueError(f"the archive {archive} holds a member {name!r} that would be written outside the folder "
                         "it is extracted into: nothing was extracted. The file may be malicious.")
    if not (member.isfile() or member.isdir()):
        raise ValueError(f"the archive {archive} holds {name!r}, a link or special file, which a dataset archive "
                         "never holds: nothing was extracted. The file may be malicious.")


def extract_tar(archive: str, into: str) -> None:
    """Extracts the tarball ``archive`` into the folder ``into`` after checking every member.

    The members are extracted into a temporary folder beside ``into``, then moved there, so a failure leaves
    no half-extracted folder that a later call would take for the dataset.

    Raises:
        ValueError: a member would land outside ``into``, is a link or special file, or the archive is too big.
    """
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            total = 0
            for member in members:
                _check_member(member, archive)
                total += member.size
            if total > 4 * MAX_FILE_BYTES:
                raise _too_big(f"the archive {archive}", total)
            parent = os.path.dirname(os.path.abspath(into))
            os.makedirs(parent, exist_ok=True)
            staging = tempfile.mkdtemp(prefix=".extracting-", dir=parent)
            try:
                tar.extractall(staging, members=members, filter="data")
                os.replace(staging, into)
            finally:
                if os.path.isdir(staging):
                    shutil.rmtree(staging)
    except (tarfile.TarError, EOFError) as e:
        raise ValueError(f"the archive {archive} is not a readable tarball ({type(e).__name__}: {e}).") from None
