"""Load an ``.onnx`` file that may come from anyone, and fail with a clear error instead of a crash.

An ONNX file is a protobuf: parsing it runs no code, but what it *points to* needs checking. This
loader refuses files that are not ONNX models (with a hint when they are a known other format, e.g. a
pickle or a Git LFS pointer), truncated or corrupt files, external-data locations that leave the model's
folder (absolute paths, ``..``, symlinks), external data files too short for the tensor they feed, and
tensors whose declared size is over a limit or does not match the bytes stored. External data is
validated and read here rather than by ``onnx``'s own loader, which follows any location it is given.
"""
from __future__ import annotations

__all__ = ["DEFAULT_MAX_BYTES", "OnnxLoadError", "iter_tensors", "load_onnx", "tensor_nbytes"]

import hashlib
import io
import math
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

import onnx
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError

#: Default cap on everything one model may occupy: the protobuf file plus all its external data.
DEFAULT_MAX_BYTES = 16 * 2**30

_T = onnx.TensorProto

#: Bits per element of every fixed-width ONNX tensor type (STRING has no fixed width).
_BITS: dict[int, int] = {
    _T.FLOAT: 32, _T.UINT8: 8, _T.INT8: 8, _T.UINT16: 16, _T.INT16: 16, _T.INT32: 32, _T.INT64: 64,
    _T.BOOL: 8, _T.FLOAT16: 16, _T.DOUBLE: 64, _T.UINT32: 32, _T.UINT64: 64, _T.COMPLEX64: 64,
    _T.COMPLEX128: 128, _T.BFLOAT16: 16, _T.FLOAT8E4M3FN: 8, _T.FLOAT8E4M3FNUZ: 8, _T.FLOAT8E5M2: 8,
    _T.FLOAT8E5M2FNUZ: 8,
}
# Newer types exist only in newer onnx releases; look them up by name so older releases still import.
for _name, _bits in (("UINT4", 4), ("INT4", 4), ("FLOAT4E2M1", 4), ("FLOAT8E8M0", 8), ("UINT2", 2),
                     ("INT2", 2), ("FLOAT6E2M3", 6), ("FLOAT6E3M2", 6)):
    if hasattr(_T, _name):
        _BITS[getattr(_T, _name)] = _bits


class OnnxLoadError(ValueError):
    """An ``.onnx`` file (or its external data) cannot be loaded safely; the message says why.

    Attributes:
        path: The model file.
        reason: What is wrong, without the file name.
        tensor: The tensor concerned, if any.
        location: The external-data location concerned, if any.
    """

    def __init__(self, path: str | os.PathLike[str], reason: str, *, tensor: str | None = None,
                 location: str | None = None) -> None:
        self.path = str(path)
        self.reason = reason
        self.tensor = tensor
        self.location = location
        super().__init__(f"Cannot load ONNX model '{self.path}': {reason}")


def tensor_nbytes(dims: list[int] | tuple[int, ...], data_type: int) -> int | None:
    """Bytes that ``raw_data`` must hold for a tensor of these dims and type (None for STRING/unknown).

    Example:
        >>> tensor_nbytes([3, 2], onnx.TensorProto.FLOAT)
        24
    """
    bits = _BITS.get(data_type)
    if bits is None:
        return None
    return (math.prod(dims) * bits + 7) // 8  # sub-byte types are packed, last byte padded


def _dtype_name(data_type: int) -> str:
    try:
        return _T.DataType.Name(data_type)
    except ValueError:
        return f"<unknown data_type {data_type}>"


# ---------------------------------------------------------------------------------------------------
# Walking every tensor of a model (initializers, Constant attributes, subgraphs, functions, training).


def _graph_tensors(graph: onnx.GraphProto, scope: str) -> Iterator[tuple[onnx.TensorProto, str]]:
    for t in graph.initializer:
        yield t, f"initializer '{t.name}'{scope}"
    for st in graph.sparse_initializer:
        yield st.values, f"sparse initializer '{st.values.name}' (values){scope}"
        yield st.indices, f"sparse initializer '{st.values.name}' (indices){scope}"
    for node in graph.node:
        yield from _node_tensors(node, scope)


def _node_tensors(node: onnx.NodeProto, scope: str) -> Iterator[tuple[onnx.TensorProto, str]]:
    node_name = f"node '{node.name}' ({node.op_type})" if node.name else f"a {node.op_type} node"
    for a in node.attribute:
        where = f"attribute '{a.name}' of {node_name}{scope}"
        if a.HasField("t"):
            yield a.t, where
        for i, t in enumerate(a.tensors):
            yield t, f"{where}[{i}]"
        sparse = ([a.sparse_tensor] if a.HasField("sparse_tensor") else []) + list(a.sparse_tensors)
        for st in sparse:
            yield st.values, f"{where} (sparse values)"
            yield st.indices, f"{where} (sparse indices)"
        inner = f" in subgraph '{a.name}' of {node_name}{scope}"
        if a.HasField("g"):
            yield from _graph_tensors(a.g, inner)
        for g in a.graphs:
            yield from _graph_tensors(g, inner)


def iter_tensors(model: onnx.ModelProto) -> Iterator[tuple[onnx.TensorProto, str]]:
    """Every ``TensorProto`` stored in ``model``, with a human description of where it sits.

    Covers graph and sparse initializers, tensor attributes (``Constant`` values), subgraphs of
    ``If``/``Loop``/``Scan`` at any depth, model-local functions and training-info graphs.

    Example:
        >>> m = onnx.ModelProto()
        >>> list(iter_tensors(m))
        []
    """
    yield from _graph_tensors(model.graph, "")
    for f in model.functions:
        for node in f.node:
            yield from _node_tensors(node, f" in function '{f.name}'")
    for i, ti in enumerate(model.training_info):
        yield from _graph_tensors(ti.initialization, f" in training_info[{i}].initialization")
        yield from _graph_tensors(ti.algorithm, f" in training_info[{i}].algorithm")


# ---------------------------------------------------------------------------------------------------
# Recognising the file before protobuf sees it.

_FOREIGN_FORMATS: tuple[tuple[bytes, int, str], ...] = (
    (b"PK\x03\x04", 0, "a ZIP archive (e.g. a PyTorch .pt, a Keras .keras or a NumPy .npz file)"),
    (b"\x89HDF\r\n\x1a\n", 0, "an HDF5 file (e.g. a Keras .h5 file)"),
    (b"\x93NUMPY", 0, "a NumPy .npy file"),
    (b"GGUF", 0, "a GGUF file"),
    (b"ORTM", 4, "an onnxruntime .ort (flatbuffer) model; open it with onnxruntime directly"),
    (b"version https://git-lfs", 0, "a Git LFS pointer, not the model itself (run `git lfs pull`)"),
    (b"\x7fELF", 0, "an ELF executable"),
    (b"MZ", 0, "a Windows executable"),
)

_WIRE_TYPE = {
    FieldDescriptor.TYPE_INT64: 0, FieldDescriptor.TYPE_INT32: 0, FieldDescriptor.TYPE_UINT64: 0,
    FieldDescriptor.TYPE_UINT32: 0, FieldDescriptor.TYPE_BOOL: 0, FieldDescriptor.TYPE_ENUM: 0,
    FieldDescriptor.TYPE_STRING: 2, FieldDescriptor.TYPE_BYTES: 2, FieldDescriptor.TYPE_MESSAGE: 2,
    FieldDescriptor.TYPE_DOUBLE: 1, FieldDescriptor.TYPE_FIXED64: 1, FieldDescriptor.TYPE_FLOAT: 5,
    FieldDescriptor.TYPE_FIXED32: 5,
}
#: ModelProto's top-level fields: number -> (name, protobuf wire type).
_MODEL_FIELDS = {f.number: (f.name, _WIRE_TYPE.get(f.type, -1)) for f in onnx.ModelProto.DESCRIPTOR.fields}


def _sniff_foreign(data: bytes) -> str | None:
    for magic, offset, what in _FOREIGN_FORMATS:
        if data[offset:offset + len(magic)] == magic:
            return what
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5:
        return "a Python pickle (never unpickled here: unpickling can run arbitrary code)"
    head = data[:64].lstrip()
    if head[:1] in (b"{", b"["):
        return "a JSON or text file"
    return None


class _Truncated(Exception):
    pass


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise _Truncated
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ValueError("a varint longer than 10 bytes")


def _check_framing(path: Path, data: bytes) -> None:
    """Walk the top-level protobuf fields: catches foreign files and truncation with a precise message.

    Only the outermost layer is walked (a handful of fields); protobuf's own parser checks the inside.
    """
    pos = 0
    first = True
    while pos < len(data):
        start = pos
        try:
            tag, pos = _varint(data, pos)
            field, wire = tag >> 3, tag & 7
            name, expected = _MODEL_FIELDS.get(field, (None, None))
            if first and (name is None or wire != expected):
                foreign = _sniff_foreign(data)
                what = f"it looks like {foreign}" if foreign else (
                    f"its first bytes {data[:8].hex(' ')} are not an ONNX ModelProto field "
                    "(a model normally starts with ir_version, bytes 08 ..)")
                raise OnnxLoadError(path, f"not an ONNX model: {what}")
            first = False
            label = f"field '{name}'" if name and wire == expected else f"protobuf field #{field}"
            if wire == 0:
                _, pos = _varint(data, pos)
            elif wire == 1:
                pos += 8
            elif wire == 5:
                pos += 4
            elif wire == 2:
                length, pos = _varint(data, pos)
                if pos + length > len(data):
                    raise OnnxLoadError(
                        path, f"the file is truncated: {label} at byte {start} declares {length} bytes but "
                        f"only {len(data) - pos} remain (file size {len(data)} bytes)")
                pos += length
            else:
                raise OnnxLoadError(
                    path, f"corrupt protobuf: invalid wire type {wire} for {label} at byte {start}")
            if pos > len(data):
                raise _Truncated
        except _Truncated:
            raise OnnxLoadError(
                path, f"the file is truncated: it ends inside the field starting at byte {start} "
                f"(file size {len(data)} bytes)") from None
        except ValueError as e:
            if isinstance(e, OnnxLoadError):
                raise
            raise OnnxLoadError(path, f"corrupt protobuf at byte {start}: {e}") from None


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
    entries = {e.key: e.value for e in t.external_data}
    location = entries.get("location", "")
    if t.data_type == _T.STRING or nbytes is None:
        raise OnnxLoadError(path, f"{name} of type {_dtype_name(t.data_type)} cannot use external data",
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
        if not text.strip().isdigit():
            raise OnnxLoadError(path, f"{name} has external data {key}={text!r}, expected a non-negative "
                                "integer", tensor=name, location=location)
        return int(text)

    offset = integer("offset", 0)
    length = integer("length", max(size - offset, 0))
    if offset + length > size:
        raise OnnxLoadError(
            path, f"{name} needs bytes [{offset}, {offset + length}) of external data file '{location}', "
            f"which has only {size} bytes (offset + length = {offset + length} > {size})",
            tensor=name, location=location)
    if length != nbytes:
        raise OnnxLoadError(
            path, f"{name} declares dims {list(t.dims)} of {_dtype_name(t.data_type)} = {nbytes} bytes, but "
            f"its external data in '{location}' has length {length}", tensor=name, location=location)
    return _ExternalRead(t, name, location, file, offset, length, entries.get("checksum"))


def _read_external(path: Path, r: _ExternalRead) -> bytes:
    with open(r.file, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise OnnxLoadError(path, f"{r.name}: external data '{r.location}' is not a regular file",
                                tensor=r.name, location=r.location)
        f.seek(r.offset)
        blob = f.read(r.length)
    if len(blob) != r.length:
        raise OnnxLoadError(path, f"{r.name}: external data file '{r.location}' shrank while reading "
                            f"(got {len(blob)} of {r.length} bytes)", tensor=r.name, location=r.location)
    if r.checksum and hashlib.sha1(blob).hexdigest() != r.checksum.lower():
        raise OnnxLoadError(path, f"{r.name}: external data in '{r.location}' does not match its SHA-1 "
                            "checksum", tensor=r.name, location=r.location)
    return blob


# ---------------------------------------------------------------------------------------------------
# Inline data.


def _inline_count(t: onnx.TensorProto, n: int) -> tuple[str, int, int] | None:
    """(field, stored count, expected count) for a tensor whose data sits in a typed field."""
    dt = t.data_type
    if t.string_data or dt == _T.STRING:
        return "string_data", len(t.string_data), n
    pairs = 2 if dt in (_T.COMPLEX64, _T.COMPLEX128) else 1
    bits = _BITS.get(dt, 8)
    per_int32 = 32 // bits if bits in (2, 4) else 1
    for field, expected in (("float_data", n * pairs), ("double_data", n * pairs), ("int64_data", n),
                            ("uint64_data", n), ("int32_data", -(-n // per_int32))):
        stored = len(getattr(t, field))
        if stored:
            return field, stored, expected
    return None


def _check_inline(path: Path, t: onnx.TensorProto, name: str, n: int, nbytes: int | None) -> None:
    if t.HasField("raw_data"):
        if nbytes is None:
            raise OnnxLoadError(path, f"{name} of type {_dtype_name(t.data_type)} cannot use raw_data",
                                tensor=name)
        if len(t.raw_data) != nbytes:
            raise OnnxLoadError(
                path, f"{name} declares dims {list(t.dims)} of {_dtype_name(t.data_type)} = {nbytes} bytes, "
                f"but its raw_data holds {len(t.raw_data)} bytes", tensor=name)
        return
    counted = _inline_count(t, n)
    stored, expected, field = (0, n, "any data field") if counted is None else (counted[1], counted[2],
                                                                                counted[0])
    if stored != expected:
        raise OnnxLoadError(
            path, f"{name} declares dims {list(t.dims)} ({n} elements of {_dtype_name(t.data_type)}), "
            f"but {field} holds {stored} values where {expected} are needed", tensor=name)


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
        The model, with external data loaded into ``raw_data`` unless ``load_external_data=False``.

    Raises:
        OnnxLoadError: (a ``ValueError``) naming the file and what is wrong: missing or unreadable,
            not an ONNX protobuf, truncated or corrupt, a bad external-data location, an external
            file too short, a tensor over ``max_tensor_bytes`` or whose data does not match its dims.

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
    try:
        st = os.stat(path)
    except OSError as e:
        raise OnnxLoadError(path, f"cannot open the file: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise OnnxLoadError(path, "not a regular file")
    if st.st_size == 0:
        raise OnnxLoadError(path, "the file is empty")
    if st.st_size > max_bytes:
        raise OnnxLoadError(path, f"the file has {st.st_size} bytes, over the limit of {max_bytes} "
                            "(max_bytes)")
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as e:
        raise OnnxLoadError(path, f"cannot read the file: {e.strerror}") from None
    if len(data) > max_bytes:
        raise OnnxLoadError(path, f"the file grew past the limit of {max_bytes} bytes while being read")

    _check_framing(path, data)
    try:
        # External data is handled below, by code that checks where it points.
        model = onnx.load(io.BytesIO(data), load_external_data=False)
    except (DecodeError, RuntimeError, ValueError, MemoryError) as e:
        raise OnnxLoadError(path, f"corrupt or not an ONNX model: the protobuf parser refused it ({e})") \
            from None
    del data
    if model.ir_version <= 0:
        raise OnnxLoadError(path, "not an ONNX model: ir_version is missing")
    if not model.HasField("graph"):
        raise OnnxLoadError(path, "not an ONNX model: it has no graph")

    base = path.parent
    total = st.st_size
    sizes: dict[Path, int] = {}
    reads: list[_ExternalRead] = []
    for t, where in iter_tensors(model):
        name = f"tensor '{t.name}' ({where})" if t.name and t.name not in where else f"tensor {where}"
        if t.data_type not in _BITS and t.data_type != _T.STRING:
            raise OnnxLoadError(path, f"{name} has unknown data_type {t.data_type}", tensor=name)
        if any(d < 0 for d in t.dims):
            raise OnnxLoadError(path, f"{name} has negative dims {list(t.dims)}", tensor=name)
        if t.HasField("segment"):
            raise OnnxLoadError(path, f"{name} is a segment of a chunked tensor, which is not supported",
                                tensor=name)
        n = math.prod(t.dims)
        nbytes = tensor_nbytes(t.dims, t.data_type)
        if nbytes is not None and nbytes > max_tensor_bytes:
            raise OnnxLoadError(
                path, f"{name} declares dims {list(t.dims)} of {_dtype_name(t.data_type)} = {nbytes} bytes, "
                f"over the limit of {max_tensor_bytes} bytes (max_tensor_bytes)", tensor=name)
        if t.data_location == _T.EXTERNAL:
            location = next((e.value for e in t.external_data if e.key == "location"), "")
            if not allow_external_data:
                raise OnnxLoadError(path, f"{name} stores its data in external file {location!r}, and "
                                    "external data is not allowed (allow_external_data=False)",
                                    tensor=name, location=location)
            r = _plan_external(path, base, t, name, nbytes, sizes)
            total += r.length
            if total > max_bytes:
                raise OnnxLoadError(path, f"the model and its external data exceed the limit of {max_bytes} "
                                    f"bytes (max_bytes) at {name}", tensor=name, location=r.location)
            reads.append(r)
        else:
            _check_inline(path, t, name, n, nbytes)

    if load_external_data:
        for r in reads:
            blob = _read_external(path, r)
            r.tensor.raw_data = blob
            del r.tensor.external_data[:]
            r.tensor.data_location = _T.DEFAULT
    return model
