"""Checks for ONNX protobufs that come from outside the program: framing, parsing, text fields, tensors.

A serialized ``ModelProto`` runs no code when parsed, but what it *declares* needs checking before
anything acts on it: a tensor may declare ``[2**20, 2**20]`` floats and hold none, point at an
external file anywhere on disk, or carry text fields that are not UTF-8. This module holds the checks
that need no file system: :func:`load_onnx_bytes` runs all of them on serialized bytes (an ONNX graph
embedded in a config, say) and refuses external data outright; ``onnxforge.saving.load_onnx`` runs
the same ones on a file and then validates external data against the model's folder.

:class:`OnnxLoadError` is the one error class for every refused file or embedded graph; it lives here,
at the bottom of the package, so that layers and models can raise it too, and is re-exported from
``onnxforge.saving``.
"""
from __future__ import annotations

__all__ = ["OnnxLoadError", "DEFAULT_MAX_BYTES", "tensor_nbytes", "iter_tensors", "check_framing", "parse_model",
           "check_text_fields", "check_tensors", "load_onnx_bytes"]

import math
import os
from collections.abc import Callable, Iterator
from typing import Any

import onnx
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

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
    """An ONNX file, an embedded ONNX graph or a saved model's metadata cannot be loaded safely.

    The one error class for every refusal of untrusted input in onnxforge: ``load_onnx``,
    ``load_model``, ``load_weights``, ``Model.from_onnx`` and the ``onnxforge`` command raise it (a
    ``ValueError``), and the message says what is wrong and where.

    Attributes:
        path: The model file (or a description of the source, for bytes).
        reason: What is wrong, without the file name.
        tensor: The tensor concerned, if any.
        location: The external-data location concerned, if any.
        key: The ``metadata_props`` key (or config entry) concerned, if any.
    """

    def __init__(self, path: str | os.PathLike[str], reason: str, *, tensor: str | None = None,
                 location: str | None = None, key: str | None = None) -> None:
        self.path = str(path)
        self.reason = reason
        self.tensor = tensor
        self.location = location
        self.key = key
        super().__init__(f"Cannot load ONNX model '{self.path}': {reason}")

    def __reduce__(self) -> tuple[Any, ...]:   # keyword-only arguments: pickle (multiprocessing) needs help
        return (_rebuild, (self.path, self.reason, self.tensor, self.location, self.key))


def _rebuild(path: str, reason: str, tensor: str | None, location: str | None, key: str | None) -> OnnxLoadError:
    return OnnxLoadError(path, reason, tensor=tensor, location=location, key=key)


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


def dtype_name(data_type: int) -> str:
    """``"FLOAT"``, ``"INT64"``... or a readable placeholder for an unknown number."""
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


def _iter_sparse(model: onnx.ModelProto) -> Iterator[tuple[onnx.SparseTensorProto, str]]:
    """Every ``SparseTensorProto``: its dense ``dims`` are a size claim of their own."""
    def graph_sparse(graph: onnx.GraphProto, scope: str) -> Iterator[tuple[onnx.SparseTensorProto, str]]:
        for st in graph.sparse_initializer:
            yield st, f"sparse initializer '{st.values.name}'{scope}"
        for node in graph.node:
            yield from node_sparse(node, scope)

    def node_sparse(node: onnx.NodeProto, scope: str) -> Iterator[tuple[onnx.SparseTensorProto, str]]:
        label = f"node '{node.name}' ({node.op_type})" if node.name else f"a {node.op_type} node"
        for a in node.attribute:
            if a.HasField("sparse_tensor"):
                yield a.sparse_tensor, f"attribute '{a.name}' of {label}{scope}"
            for st in a.sparse_tensors:
                yield st, f"attribute '{a.name}' of {label}{scope}"
            inner = f" in subgraph '{a.name}' of {label}{scope}"
            if a.HasField("g"):
                yield from graph_sparse(a.g, inner)
            for g in a.graphs:
                yield from graph_sparse(g, inner)

    yield from graph_sparse(model.graph, "")
    for f in model.functions:
        for node in f.node:
            yield from node_sparse(node, f" in function '{f.name}'")


# ---------------------------------------------------------------------------------------------------
# Recognising the bytes before protobuf sees them.

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


def check_framing(source: str | os.PathLike[str], data: bytes) -> None:
    """Walk the top-level protobuf fields: catches foreign files and truncation with a precise message.

    Only the outermost layer is walked (a handful of fields); protobuf's own parser checks the inside.

    Raises:
        OnnxLoadError: naming ``source``.
    """
    if not data:
        raise OnnxLoadError(source, "the file is empty")
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
                raise OnnxLoadError(source, f"not an ONNX model: {what}")
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
                        source, f"the file is truncated: {label} at byte {start} declares {length} bytes but "
                        f"only {len(data) - pos} remain (file size {len(data)} bytes)")
                pos += length
            else:
                raise OnnxLoadError(
                    source, f"corrupt protobuf: invalid wire type {wire} for {label} at byte {start}")
            if pos > len(data):
                raise _Truncated
        except _Truncated:
            raise OnnxLoadError(
                source, f"the file is truncated: it ends inside the field starting at byte {start} "
                f"(file size {len(data)} bytes)") from None
        except ValueError as e:
            if isinstance(e, OnnxLoadError):
                raise
            raise OnnxLoadError(source, f"corrupt protobuf at byte {start}: {e}") from None


def parse_model(source: str | os.PathLike[str], data: bytes) -> onnx.ModelProto:
    """Framing check, protobuf parse and the basic shape of a model (ir_version, a graph).

    External data is not touched: the returned tensors keep their references.
    """
    check_framing(source, data)
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError, MemoryError) as e:   # RecursionError is a RuntimeError
        raise OnnxLoadError(source, f"corrupt or not an ONNX model: the protobuf parser refused it ({e})") \
            from None
    if model.ir_version <= 0:
        raise OnnxLoadError(source, "not an ONNX model: ir_version is missing")
    if not model.HasField("graph"):
        raise OnnxLoadError(source, "not an ONNX model: it has no graph")
    check_text_fields(source, model)
    return model


# ---------------------------------------------------------------------------------------------------
# Text fields: protobuf hands back bytes (not str) for a string field that is not UTF-8.


def _is_repeated(field: FieldDescriptor) -> bool:
    flag = getattr(field, "is_repeated", None)   # protobuf >= 5; older releases only have `label`
    return bool(flag) if flag is not None else field.label == FieldDescriptor.LABEL_REPEATED


_TEXT_FIELDS: dict[Any, list[tuple[str, bool, bool]]] = {}


def _text_fields(descriptor: Any) -> list[tuple[str, bool, bool]]:
    """``(name, is_message, repeated)`` of the string and message fields of a message type (cached)."""
    found = _TEXT_FIELDS.get(descriptor)
    if found is None:
        found = [(f.name, f.type == FieldDescriptor.TYPE_MESSAGE, _is_repeated(f)) for f in descriptor.fields
                 if f.type in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_MESSAGE)]
        _TEXT_FIELDS[descriptor] = found
    return found


def check_text_fields(source: str | os.PathLike[str], message: Message) -> None:
    """Every string field of ``message`` (at any depth) must be text; protobuf returns ``bytes`` for a
    string that is not valid UTF-8, which code expecting ``str`` would trip over later.

    Bytes fields (``raw_data``) are never read, so a big model is not copied.
    """
    # Paths are kept as parent links and spelled out only for the error: most models pass.
    stack: list[tuple[Message, Any]] = [(message, None)]
    while stack:
        msg, link = stack.pop()
        for name, is_message, repeated in _text_fields(msg.DESCRIPTOR):
            if not repeated:
                if msg.HasField(name):
                    value = getattr(msg, name)
                    if is_message:
                        stack.append((value, (link, name, None)))
                    elif not isinstance(value, str):
                        raise OnnxLoadError(source, f"the text field {_spell(message, (link, name, None))} "
                                            "is not valid UTF-8")
                continue
            for k, value in enumerate(getattr(msg, name)):
                if is_message:
                    stack.append((value, (link, name, k)))
                elif not isinstance(value, str):
                    raise OnnxLoadError(source, f"the text field {_spell(message, (link, name, k))} is not "
                                        "valid UTF-8")


def _spell(root: Message, link: Any) -> str:
    parts = []
    while link is not None:
        link, name, k = link
        parts.append(name if k is None else f"{name}[{k}]")
    return ".".join([type(root).__name__] + parts[::-1])


# ---------------------------------------------------------------------------------------------------
# Tensors.


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


def _check_inline(source: str | os.PathLike[str], t: onnx.TensorProto, name: str, n: int,
                  nbytes: int | None) -> None:
    if t.HasField("raw_data"):
        if nbytes is None:
            raise OnnxLoadError(source, f"{name} of type {dtype_name(t.data_type)} cannot use raw_data",
                                tensor=name)
        if len(t.raw_data) != nbytes:
            raise OnnxLoadError(
                source, f"{name} declares dims {list(t.dims)} of {dtype_name(t.data_type)} = {nbytes} bytes, "
                f"but its raw_data holds {len(t.raw_data)} bytes", tensor=name)
        return
    counted = _inline_count(t, n)
    stored, expected, field = (0, n, "any data field") if counted is None else (counted[1], counted[2],
                                                                                counted[0])
    if stored != expected:
        raise OnnxLoadError(
            source, f"{name} declares dims {list(t.dims)} ({n} elements of {dtype_name(t.data_type)}), "
            f"but {field} holds {stored} values where {expected} are needed", tensor=name)


#: Called for a tensor stored as external data: ``(tensor, description, declared bytes) -> stored bytes``.
ExternalHandler = Callable[[onnx.TensorProto, str, int | None], int]


def check_tensors(source: str | os.PathLike[str], model: onnx.ModelProto, *, max_tensor_bytes: int,
                  external: ExternalHandler | None = None, external_refusal: str = "") -> None:
    """Every tensor's type, dims, declared size and stored data; external data goes to ``external``.

    Args:
        source: the file (or a description of the bytes), for messages.
        model: the parsed model.
        max_tensor_bytes: the most bytes any one tensor (or a sparse tensor's dense shape) may declare.
        external: validates (and accounts for) one external-data tensor; ``None`` refuses them all.
        external_refusal: why external data is refused, appended to the message when ``external`` is None.

    Raises:
        OnnxLoadError: naming the tensor and where it sits.
    """
    for t, where in iter_tensors(model):
        name = f"tensor '{t.name}' ({where})" if t.name and t.name not in where else f"tensor {where}"
        if t.data_type not in _BITS and t.data_type != _T.STRING:
            raise OnnxLoadError(source, f"{name} has unknown data_type {t.data_type}", tensor=name)
        if any(d < 0 for d in t.dims):
            raise OnnxLoadError(source, f"{name} has negative dims {list(t.dims)}", tensor=name)
        if t.HasField("segment"):
            raise OnnxLoadError(source, f"{name} is a segment of a chunked tensor, which is not supported",
                                tensor=name)
        n = math.prod(t.dims)
        nbytes = tensor_nbytes(t.dims, t.data_type)
        if nbytes is not None and nbytes > max_tensor_bytes:
            raise OnnxLoadError(
                source, f"{name} declares dims {list(t.dims)} of {dtype_name(t.data_type)} = {nbytes} bytes, "
                f"over the limit of {max_tensor_bytes} bytes (max_tensor_bytes)", tensor=name)
        if t.data_location == _T.EXTERNAL:
            if external is None:
                location = next((e.value for e in t.external_data if e.key == "location"), "")
                raise OnnxLoadError(source, f"{name} stores its data in external file {location!r}, and external "
                                    f"data is not allowed{external_refusal}", tensor=name, location=location)
            external(t, name, nbytes)
        else:
            _check_inline(source, t, name, n, nbytes)
    for st, where in _iter_sparse(model):
        dims = list(st.dims)
        if any(d < 0 for d in dims):
            raise OnnxLoadError(source, f"{where} has negative dense dims {dims}", tensor=where)
        dense = tensor_nbytes(dims, st.values.data_type)
        if dense is not None and dense > max_tensor_bytes:
            raise OnnxLoadError(source, f"{where} declares a dense shape {dims} of "
                                f"{dtype_name(st.values.data_type)} = {dense} bytes, over the limit of "
                                f"{max_tensor_bytes} bytes (max_tensor_bytes)", tensor=where)


def load_onnx_bytes(data: bytes, source: str = "<bytes>", *, max_bytes: int = DEFAULT_MAX_BYTES,
                    max_tensor_bytes: int | None = None) -> onnx.ModelProto:
    """Parse and validate a serialized ONNX model that comes from outside (an embedded graph, a request).

    The same checks as ``onnxforge.saving.load_onnx`` on a file, except that external data is always
    refused: bytes have no folder that external data could safely be resolved against.

    Args:
        data: the serialized ``ModelProto``.
        source: what the bytes are, for messages (``"config 'onnx' of model 'net'"``).
        max_bytes: the most bytes ``data`` may have.
        max_tensor_bytes: the most bytes any one tensor may declare (default ``max_bytes``).

    Raises:
        OnnxLoadError: naming ``source`` and what is wrong.

    Example:
        >>> from onnx import helper, TensorProto
        >>> t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2**20, 2**20])
        >>> g = helper.make_graph([], "g", [], [], [t])
        >>> try:
        ...     load_onnx_bytes(helper.make_model(g).SerializeToString(), "demo", max_bytes=2**20)
        ... except OnnxLoadError as e:
        ...     print(e.reason)
        tensor initializer 'w' declares dims [1048576, 1048576] of FLOAT = 4398046511104 bytes, over the limit of 1048576 bytes (max_tensor_bytes)
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise OnnxLoadError(source, f"expected serialized ONNX bytes, received {type(data).__name__}")
    data = bytes(data)
    if len(data) > max_bytes:
        raise OnnxLoadError(source, f"{len(data)} bytes, over the limit of {max_bytes} (max_bytes)")
    model = parse_model(source, data)
    check_tensors(source, model, max_tensor_bytes=max_bytes if max_tensor_bytes is None else max_tensor_bytes,
                  external_refusal=" in an embedded graph (it could read any file next to the program)")
    return model
