"""Load an ``.onnx`` file that may come from anyone, and fail with a clear error instead of a crash.

An ONNX file is a protobuf: parsing it runs no code, but what it *points to* needs checking. This
loader refuses files that are not ONNX models (with a hint when they are a known other format, e.g. a
pickle or a Git LFS pointer), truncated or corrupt files, text fields that are not UTF-8, external-data
locations that leave the model's folder (absolute paths, ``..``, symlinks), external-data entries that
onnxruntime would refuse (unknown keys, offsets that are not plain ASCII integers), external data files
too short for the tensor they feed, and tensors whose declared size is over a limit or does not match
the bytes stored. External data is validated and read here rather than by ``onnx``'s own loader, which
follows any location it is given.

The file is read at its real size (``stat`` first, then bounded chunks): nothing is reserved for the
``max_bytes`` limit itself, so loading a small file works in a small address space.

The checks that need no file system live in :mod:`onnxforge.graph.untrusted` (also used for ONNX graphs
embedded in saved configs); :class:`OnnxLoadError` is defined there and re-exported here.
"""
from __future__ import annotations

__all__ = ["DEFAULT_MAX_BYTES", "OnnxLoadError", "iter_tensors", "load_onnx", "load_onnx_bytes", "tensor_nbytes",
           "read_bounded"]

import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import BinaryIO

import onnx

from .untrusted import (DEFAULT_MAX_BYTES, OnnxLoadError, check_tensors, dtype_name, iter_tensors,
                               load_onnx_bytes, parse_model, tensor_nbytes)

_T = onnx.TensorProto

#: Bytes read per ``read`` call: large enough to be fast, small enough never to matter for memory.
_CHUNK = 1 << 20

#: What onnxruntime (1.2x-1.3x, ``ParseStringWithClassicLocale``) takes as offset / length: ASCII digits
#: and nothing else (no sign, no spaces; "-0" reads as 0). Python's ``str.isdigit`` would also take
#: "١٢" (Arabic-Indic) or "²", and ``int()`` takes "1_6" and " 16".
_INTEGER = re.compile(r"(?:-(?=0+\Z))?([0-9]+)\Z")
#: The keys onnxruntime knows; it refuses any other ("model format error!").
_EXTERNAL_KEYS = ("location", "offset", "length", "checksum")
#: The location onnxruntime reads as "the offset is a memory address" (``kTensorProtoMemoryAddressTag``).
_ORT_MEMORY_MARKER = "*/_ORT_MEM_ADDR_/*"


def _open_nonblocking(path: str | os.PathLike[str]) -> BinaryIO:
    """The file opened for reading without waiting: ``open()`` of a FIFO blocks until something writes to
    it, before the regular-file check after it could refuse it. (No effect on regular files.)"""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        return os.fdopen(fd, "rb")
    except BaseException:   # a folder: fdopen refuses it without closing the descriptor
        os.close(fd)
        raise


def read_bounded(path: str | os.PathLike[str], max_bytes: int, what: str = "the file") -> bytes:
    """The content of a regular file, read in chunks after checking its size against ``max_bytes``.

    Never asks for more memory than the file holds (a single ``read(max_bytes + 1)`` would reserve the
    whole limit up front, failing under ``ulimit -v`` even for a tiny file).

    Raises:
        OnnxLoadError: missing, not a regular file, empty, over ``max_bytes``, or changing while read.
    """
    try:
        with _open_nonblocking(path) as f:
            st = os.fstat(f.fileno())   # of the file opened, not of whatever the path names later
            if not stat.S_ISREG(st.st_mode):
                raise OnnxLoadError(path, "not a regular file")
            if st.st_size == 0:
                raise OnnxLoadError(path, f"{what} is empty")
            if st.st_size > max_bytes:
                raise OnnxLoadError(path, f"{what} has {st.st_size} bytes, over the limit of {max_bytes} "
                                    "(max_bytes)")
            chunks, total = [], 0
            while total <= st.st_size:
                chunk = f.read(min(_CHUNK, st.st_size + 1 - total))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
    except IsADirectoryError:
        raise OnnxLoadError(path, "not a regular file") from None
    except OSError as e:
        raise OnnxLoadError(path, f"cannot open the file: {e.strerror}") from None
    if total != st.st_size:
        raise OnnxLoadError(path, f"{what} changed size while being read ({st.st_size} bytes, then {total})")
    return b"".join(chunks) if len(chunks) != 1 else chunks[0]


# ---------------------------------------------------------------------------------------------------
# External data.


@dataclass
class _ExternalRead:
    tensor: onnx.TensorProto
    name: str
    location: str
    file: Path
    offset: int
    length: int
    checksum: str | None


def _check_location(path: Path, base: Path, name: str, location: str) -> Path:
    def fail(why: str) -> OnnxLoadError:
        return OnnxLoadError(path, f"{name} has external data location {location!r}, which {why}",
                             tensor=name, location=location)

    if not location or "\x00" in location:
        raise fail("is empty or contains a NUL byte")
    if location.replace("\\", "/") == _ORT_MEMORY_MARKER:
        # onnxruntime reads this location's offset as a pointer into its own memory; a file (in a folder
        # named '*') could satisfy the range checks below, so it is refused by name.
        raise fail("is onnxruntime's in-memory-address marker (its offset would be read as a memory address), "
                   "never a file")
    # The spec says POSIX paths; also parse as Windows so "C:\\x" or "..\\x" cannot slip through there.
    if PurePosixPath(location).is_absolute() or PureWindowsPath(location).is_absolute() or \
            PureWindowsPath(location).drive or location.startswith(("/", "\\")):
        raise fail("is an absolute path; external data must sit in the model's folder")
    if ".." in location.replace("\\", "/").split("/"):
        raise fail("contains '..'; external data must sit in the model's folder")
    base_real = base.resolve()
    target = (base / location).resolve()
    if target != base_real and base_real not in target.parents:
        raise fail(f"resolves to '{target}', outside the model's folder '{base_real}' (a symlink?)")
    return target


def _plan_external(path: Path, base: Path, t: onnx.TensorProto, name: str, nbytes: int | None,
                   sizes: dict[Path, int]) -> _ExternalRead:
    entries: dict[str, str] = {}
    for e in t.external_data:
        if e.key not in _EXTERNAL_KEYS:
            raise OnnxLoadError(path, f"{name} has an external data entry {e.key!r}; onnxruntime only reads "
                                f"{list(_EXTERNAL_KEYS)}", tensor=name)
        if e.value:   # onnxruntime skips empty values: the default applies
            entries[e.key] = e.value
    location = entries.get("location", "")
    if t.data_type == _T.STRING or nbytes is None:
        raise OnnxLoadError(path, f"{name} of type {dtype_name(t.data_type)} cannot use external data",
                            tensor=name, location=location)
    file = _check_location(path, base, name, location)
    if file not in sizes:
        try:
            st = os.stat(file)
        except OSError as e:
            raise OnnxLoadError(path, f"{name} needs external data file '{location}', which cannot be "
                                f"opened: {e.strerror}", tensor=name, location=location) from None
        if not stat.S_ISREG(st.st_mode):
            raise OnnxLoadError(path, f"{name} needs external data '{location}', which is not a regular file",
                                tensor=name, location=location)
        sizes[file] = st.st_size
    size = sizes[file]

    def integer(key: str, default: int) -> int:
        text = entries.get(key)
        if text is None:
            return default
        match = _INTEGER.match(text)
        if match is None:
            raise OnnxLoadError(path, f"{name} has external data {key}={text!r}, expected a non-negative "
                                "integer in ASCII digits", tensor=name, location=location)
        return int(match.group(1))

    offset = integer("offset", 0)
    length = integer("length", max(size - offset, 0))
    if offset + length > size:
        raise OnnxLoadError(
            path, f"{name} needs bytes [{offset}, {offset + length}) of external data file '{location}', "
            f"which has only {size} bytes (offset + length = {offset + length} > {size})",
            tensor=name, location=location)
    if length != nbytes:
        raise OnnxLoadError(
            path, f"{name} declares dims {list(t.dims)} of {dtype_name(t.data_type)} = {nbytes} bytes, but "
            f"its external data in '{location}' has length {length}", tensor=name, location=location)
    return _ExternalRead(t, name, location, file, offset, length, entries.get("checksum"))


def _read_external(path: Path, r: _ExternalRead) -> bytes:
    try:
        with _open_nonblocking(r.file) as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise OnnxLoadError(path, f"{r.name}: external data '{r.location}' is not a regular file",
                                    tensor=r.name, location=r.location)
            f.seek(r.offset)
            chunks, total = [], 0
            while total < r.length:
                chunk = f.read(min(_CHUNK, r.length - total))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
    except OSError as e:
        raise OnnxLoadError(path, f"{r.name}: cannot read external data '{r.location}': {e.strerror}",
                            tensor=r.name, location=r.location) from None
    blob = b"".join(chunks) if len(chunks) != 1 else chunks[0]
    if len(blob) != r.length:
        raise OnnxLoadError(path, f"{r.name}: external data file '{r.location}' shrank while reading "
                            f"(got {len(blob)} of {r.length} bytes)", tensor=r.name, location=r.location)
    if r.checksum and hashlib.sha1(blob).hexdigest() != r.checksum.lower():
        raise OnnxLoadError(path, f"{r.name}: external data in '{r.location}' does not match its SHA-1 "
                            "checksum", tensor=r.name, location=r.location)
    return blob


def load_onnx(path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES,
              max_tensor_bytes: int | None = None, allow_external_data: bool = True,
              load_external_data: bool = True) -> onnx.ModelProto:
    """Load an untrusted ``.onnx`` file, validating it and its external data first.

    Args:
        path: The model file. External data locations are resolved against its folder.
        max_bytes: The most bytes the model may take in total: the file plus all external data.
        max_tensor_bytes: The most bytes any one tensor may declare (dims product x item size).
            Defaults to ``max_bytes``.
        allow_external_data: If False, a tensor stored outside the file is an error.
        load_external_data: If False, external data is validated (location, file, range, size) but
            not read; the returned tensors keep their ``external_data`` references.

    Returns:
        The model, with external data loaded into ``raw_data`` unless ``load_external_data=False``
        (each such tensor then reads exactly as if it had been stored inline).

    Raises:
        OnnxLoadError: (a ``ValueError``) naming the file and what is wrong: missing or unreadable,
            not an ONNX protobuf, truncated or corrupt, text that is not UTF-8, a bad external-data
            location or entry, an external file too short, a tensor over ``max_tensor_bytes`` or
            whose data does not match its dims.

    Example:
        >>> import tempfile, os, onnx
        >>> p = os.path.join(tempfile.mkdtemp(), "bad.onnx")
        >>> _ = open(p, "wb").write(b"PK\\x03\\x04not a model")
        >>> try:
        ...     load_onnx(p)
        ... except OnnxLoadError as e:
        ...     print(e.reason)
        not an ONNX model: it looks like a ZIP archive (e.g. a PyTorch .pt, a Keras .keras or a NumPy .npz file)
    """
    if not isinstance(max_bytes, int) or max_bytes <= 0:
        raise ValueError(f"max_bytes must be a positive int. Received: max_bytes={max_bytes!r}")
    if max_tensor_bytes is None:
        max_tensor_bytes = max_bytes
    elif not isinstance(max_tensor_bytes, int) or max_tensor_bytes <= 0:
        raise ValueError(f"max_tensor_bytes must be a positive int or None. "
                         f"Received: max_tensor_bytes={max_tensor_bytes!r}")
    path = Path(path)
    data = read_bounded(path, max_bytes)
    size = len(data)
    model = parse_model(path, data)
    del data

    base = path.parent
    total = size
    sizes: dict[Path, int] = {}
    reads: list[_ExternalRead] = []

    def external(t: onnx.TensorProto, name: str, nbytes: int | None) -> int:
        nonlocal total
        r = _plan_external(path, base, t, name, nbytes, sizes)
        total += r.length
        if total > max_bytes:
            raise OnnxLoadError(path, f"the model and its external data exceed the limit of {max_bytes} "
                                f"bytes (max_bytes) at {name}", tensor=name, location=r.location)
        reads.append(r)
        return r.length

    check_tensors(path, model, max_tensor_bytes=max_tensor_bytes,
                  external=external if allow_external_data else None,
                  external_refusal=" (allow_external_data=False)")
    if load_external_data:
        for r in reads:
            blob = _read_external(path, r)
            r.tensor.raw_data = blob
            del r.tensor.external_data[:]
            # Cleared, not set to DEFAULT: the tensor then serializes exactly as an inline one (digests).
            r.tensor.ClearField("data_location")
    return model
