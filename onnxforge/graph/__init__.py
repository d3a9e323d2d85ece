"""Level 0: symbolic values, the graph builder, ONNX shape inference, the pinned opset, typed proto
constructors (``protos``), the file contract (``contract``: program I/O names and metadata keys), checks of
untrusted files and program partitioning. The only code that calls ``onnx.helper``; it imports nothing
else from onnxforge."""
from __future__ import annotations

from .builder import GraphBuilder, ValueLike, subgraph_captures, unique_name
from .opset import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET, check_opset
from .value import FLOAT_TYPES, Dim, Shape, Value, broadcast_shapes, np_dtype, onnx_dtype

__all__ = [
    "GraphBuilder", "Value", "ValueLike", "Dim", "Shape", "FLOAT_TYPES", "np_dtype", "onnx_dtype",
    "broadcast_shapes", "DEFAULT_OPSET", "MIN_OPSET", "MAX_OPSET", "check_opset", "subgraph_captures", "unique_name",
]
