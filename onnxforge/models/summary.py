"""``Model.summary()``: Keras's table (Layer (type), Output Shape, Param #) plus a FLOPs column.

FLOPs are per example at inference (multiply-adds count 2, one per elementwise op); ``?`` where a size is
unknown or a custom layer does not report its cost.
"""
from __future__ import annotations

__all__ = ["print_summary", "layer_flops", "readable_memory_size"]

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ..layers.input_layer import InputLayer
from ..layers.keras_tensor import Node

if TYPE_CHECKING:
    from .model import Model


def readable_memory_size(size: float) -> str:
    """``17.75 KB`` style, as Keras prints parameter memory."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size / 1024 < 1:
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} PB"


def _known(shapes: list) -> bool:
    return all(s is not None and all(d is not None for d in s[1:]) for s in shapes)


def layer_flops(layer: Any, input_shapes: list, output_shapes: list) -> int | None:
    """FLOPs of one call of ``layer`` per example, or ``None`` when unknown."""
    fn = getattr(layer, "_count_flops", None)
    if fn is None or not _known(input_shapes) or not _known(output_shapes):
        return None
    try:
        flops = fn(input_shapes, output_shapes)
    except Exception:  # a cost model is informational; never break summary()
        return None
    return None if flops is None else int(flops)


def _shape_text(shapes: list) -> str:
    if not shapes:
        return "?"
    texts = [str(tuple(s)) if s is not None else "?" for s in shapes]
    return texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"


def _rows(model: Model) -> tuple[list[list[list[str]]], bool, tuple[int, bool]]:
    """Table rows (cells as lists of lines), whether to show "Connected to", and (known FLOPs total,
    whether some layer's FLOPs are unknown)."""
    graph = model._graph
    rows: list[list[list[str]]] = []
    total = 0
    unknown = False
    sequential_like = graph is None or type(model).__name__ == "Sequential" or graph.is_sequential_like()
    layers = model.layers if graph is not None else model._flat_sublayers()
    for layer in layers:
        if graph is not None:
            nodes = graph.layer_nodes(layer)
            io = [([t.shape for t in n.input_tensors], [t.shape for t in n.output_tensors]) for n in nodes]
        else:
            io = [layer._last_io_shapes] if getattr(layer, "_last_io_shapes", None) else []
        out_texts = {(_shape_text(o)) for _, o in io}
        shape = out_texts.pop() if len(out_texts) == 1 else ("multiple" if out_texts else "?")
        if isinstance(layer, InputLayer):
            flops: int | None = 0
        else:
            per = [layer_flops(layer, i, o) for i, o in io]
            flops = None if not per or None in per else sum(per)
        if flops is None:
            unknown = True
        else:
            total += flops
        params = str(f"{layer.count_params():,}") if layer.built else "0 (unbuilt)"
        cells = [[f"{layer.name} ({type(layer).__name__})"], [shape], [params], [f"{flops:,}" if flops is not None else "?"]]
        if not sequential_like:
            cells.append(_connections(graph, nodes) or ["-"])
        rows.append(cells)
    return rows, not sequential_like, (total, unknown)


def _connections(graph: Any, nodes: list[Node]) -> list[str]:
    out = []
    for node in nodes:
        for t in node.input_tensors:
            layer, node_index, tensor_index = t._keras_history
            out.append(f"{layer.name}[{graph.node_index_in_graph(layer, node_index)}][{tensor_index}]")
    return out


def _table(headers: list[str], rows: list[list[list[str]]], right: set[int]) -> list[str]:
    widths = [max([len(h)] + [len(line) for r in rows for line in r[k]]) + 2 for k, h in enumerate(headers)]

    def line(cells: list[str], sep: str) -> str:
        parts = []
        for k, text in enumerate(cells):
            inner = widths[k] - 2
            parts.append(" " + (text.rjust(inner) if k in right else text.ljust(inner)) + " ")
        return sep + sep.join(parts) + sep

    def rule(left: str, fill: str, mid: str, end: str) -> str:
        return left + mid.join(fill * w for w in widths) + end

    out = [rule("┏", "━", "┳", "┓"), line(headers, "┃"), rule("┡", "━", "╇", "┩")]
    for i, row in enumerate(rows):
        height = max(len(c) for c in row)
        for h in range(height):
            out.append(line([c[h] if h < len(c) else "" for c in row], "│"))
        if i < len(rows) - 1:
            out.append(rule("├", "─", "┼", "┤"))
    out.append(rule("└", "─", "┴", "┘"))
    return out


def _param_line(label: str, weights: list) -> str:
    count = int(sum(int(np.prod(w.shape)) for w in weights))
    size = sum(int(np.prod(w.shape)) * np.dtype(w.dtype).itemsize for w in weights)
    return f" {label}: {count:,} ({readable_memory_size(size)})"


def print_summary(model: Model, print_fn: Callable[[str], Any] | None = None) -> None:
    """Print the summary of ``model`` one line at a time through ``print_fn`` (default ``print``)."""
    print_fn = print_fn or print
    headers = ["Layer (type)", "Output Shape", "Param #", "FLOPs"]
    rows, connected, (total, unknown) = _rows(model)
    if connected:
        headers.append("Connected to")
    lines = [f'Model: "{model.name}"', *_table(headers, rows, right={2, 3})]
    lines.append(_param_line("Total params", model.weights))
    lines.append(_param_line("Trainable params", model.trainable_weights))
    lines.append(_param_line("Non-trainable params", model.non_trainable_weights))
    lines.append(f" Total FLOPs: {total:,} (per example, inference)" if not unknown else
                 f" Total FLOPs: {total:,}+ (per example, inference; layers marked ? not counted)")
    for text in lines:
        print_fn(text)
