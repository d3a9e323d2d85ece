"""``plot_model`` / ``model_to_dot``: a model's layer graph as a Graphviz diagram.

The diagram is written in Graphviz's DOT language here, without any dependency; a ``.dot`` file needs
nothing else. Rendering to PNG, SVG, PDF or JPEG needs Graphviz's ``dot`` program (through ``pydot``
when it is installed, else by running ``dot``); the error says what is missing.

Example:
    >>> from onnxforge import Sequential, layers
    >>> model = Sequential([layers.Input((3,)), layers.Dense(2, name="out")])
    >>> "out" in model_to_dot_source(model)
    True
"""
from __future__ import annotations

__all__ = ["plot_model", "model_to_dot", "model_to_dot_source"]

import html
import os
import shutil
import subprocess
from typing import Any

_FORMATS = ("png", "svg", "pdf", "jpg", "jpeg", "gif", "bmp", "ps", "dot")


def _layers_and_edges(model: Any) -> tuple[list[Any], list[tuple[int, int]]]:
    """The model's layers and the (from, to) edges between them (a functional graph, or a layer chain)."""
    graph = getattr(model, "_graph", None)
    layers = list(graph.layers) if graph is not None else list(getattr(model, "layers", []))
    index = {id(layer): i for i, layer in enumerate(layers)}
    edges: list[tuple[int, int]] = []
    if graph is not None:
        for node in graph.nodes():
            for t in node.input_tensors:
                src = t._keras_history.layer
                if id(src) in index and id(node.layer) in index:
                    edge = (index[id(src)], index[id(node.layer)])
                    if edge not in edges:
                        edges.append(edge)
    else:
        edges = [(i, i + 1) for i in range(len(layers) - 1)]
    return layers, edges


def _shape_text(layer: Any, attr: str) -> str:
    nodes = getattr(layer, "_inbound_nodes", None) or []
    tensors = []
    for node in nodes[:1]:
        tensors = node.output_tensors if attr == "output" else (node.input_tensors or node.output_tensors)
    shapes = [tuple(t.shape) for t in tensors]
    if not shapes:
        return "?"
    text = ", ".join(str(s).replace("None", "None") for s in shapes)
    return text if len(shapes) == 1 else f"[{text}]"


def _label(layer: Any, show_shapes: bool, show_dtype: bool, show_layer_names: bool, show_layer_activations: bool,
           show_trainable: bool) -> str:
    title = f"{html.escape(layer.name)} ({type(layer).__name__})" if show_layer_names else type(layer).__name__
    rows = [f'<tr><td colspan="2"><b>{title}</b></td></tr>']
    if show_layer_activations and getattr(layer, "activation", None) is not None:
        act = getattr(layer.activation, "__name__", str(layer.activation))
        rows.append(f'<tr><td colspan="2">Activation: {html.escape(act)}</td></tr>')
    if show_shapes:
        rows.append(f"<tr><td>Input shape: {html.escape(_shape_text(layer, 'input'))}</td>"
                    f"<td>Output shape: {html.escape(_shape_text(layer, 'output'))}</td></tr>")
    if show_dtype:
        dtype = getattr(layer, "dtype", None)
        rows.append(f'<tr><td colspan="2">dtype: {html.escape(str(dtype))}</td></tr>')
    if show_trainable:
        rows.append(f'<tr><td colspan="2">Trainable: {"Yes" if getattr(layer, "trainable", True) else "No"}</td></tr>')
    return '<<table border="0" cellborder="1" cellspacing="0" cellpadding="4">' + "".join(rows) + "</table>>"


def model_to_dot_source(model: Any, show_shapes: bool = False, show_dtype: bool = False,
                        show_layer_names: bool = True, rankdir: str = "TB", expand_nested: bool = False,
                        dpi: int = 200, show_layer_activations: bool = False, show_trainable: bool = False) -> str:
    """The DOT text of the model's layer graph (arguments as ``plot_model``)."""
    if rankdir not in ("TB", "LR"):
        raise ValueError(f"rankdir must be 'TB' (vertical) or 'LR' (horizontal). Received: rankdir={rankdir!r}")
    layers, edges = _layers_and_edges(model)
    if not layers:
        raise ValueError(f"plot_model: model {getattr(model, 'name', model)!r} has no layers to draw; build it first "
                         "(call it on data or give it an Input).")
    name = html.escape(str(getattr(model, "name", "model")))
    lines = [f'digraph "{name}" {{', f'  graph [rankdir={rankdir}, dpi={int(dpi)}, concentrate=true];',
             '  node [shape=plaintext, fontname="Helvetica"];']
    for i, layer in enumerate(layers):
        label = _label(layer, show_shapes, show_dtype, show_layer_names, show_layer_activations, show_trainable)
        lines.append(f"  n{i} [label={label}];")
    lines += [f"  n{a} -> n{b};" for a, b in edges]
    lines.append("}")
    return "\n".join(lines) + "\n"


def model_to_dot(model: Any, show_shapes: bool = False, show_dtype: bool = False, show_layer_names: bool = True,
                 rankdir: str = "TB", expand_nested: bool = False, dpi: int = 200, subgraph: bool = False,
                 show_layer_activations: bool = False, show_trainable: bool = False, **kwargs: Any) -> Any:
    """The model's layer graph as a ``pydot.Dot`` (Keras ``model_to_dot``; needs ``pydot``)."""
    try:
        import pydot
    except ImportError as e:
        raise ImportError("model_to_dot needs pydot: `pip install pydot` (and Graphviz, "
                          "https://graphviz.org/download/, to render images). plot_model(model, 'model.dot') writes "
                          "the diagram without either.") from e
    source = model_to_dot_source(model, show_shapes, show_dtype, show_layer_names, rankdir, expand_nested, dpi,
                                 show_layer_activations, show_trainable)
    return pydot.graph_from_dot_data(source)[0]


def _render(source: str, fmt: str) -> bytes:
    """Render DOT text with Graphviz (pydot when installed, else the ``dot`` program)."""
    exe = shutil.which("dot")
    if exe is None:
        raise ImportError(f"plot_model needs Graphviz's `dot` program to write a .{fmt} file, and it was not found "
                          "on the PATH. Install Graphviz (https://graphviz.org/download/; e.g. `apt-get install "
                          "graphviz`) and optionally `pip install pydot`, or write the diagram as a .dot file: "
                          "plot_model(model, to_file='model.dot').")
    try:
        import pydot
    except ImportError:
        pydot = None
    if pydot is not None:
        return pydot.graph_from_dot_data(source)[0].create(format=fmt)
    done = subprocess.run([exe, f"-T{fmt}"], input=source.encode(), capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"Graphviz failed to render the model diagram: {done.stderr.decode(errors='replace')}")
    return done.stdout


def plot_model(model: Any, to_file: str = "model.png", show_shapes: bool = False, show_dtype: bool = False,
               show_layer_names: bool = True, rankdir: str = "TB", expand_nested: bool = False, dpi: int = 200,
               show_layer_activations: bool = False, show_trainable: bool = False, **kwargs: Any) -> Any:
    """Draw the model's layer graph into ``to_file`` (Keras ``plot_model``).

    Args:
        model: a built model.
        to_file: the output file; its extension picks the format (``.png``, ``.svg``, ``.pdf``, ``.jpg``,
            ... need Graphviz; ``.dot`` needs nothing).
        show_shapes, show_dtype, show_layer_names, show_layer_activations, show_trainable: what each box shows.
        rankdir: ``"TB"`` (top to bottom) or ``"LR"`` (left to right).
        expand_nested: accepted for compatibility (nested models are drawn as one box).
        dpi: the image resolution.

    Returns:
        An ``IPython.display.Image`` of a PNG inside a notebook, else ``None``.
    """
    from ..saving.atomic import atomic_write   # only the write needs it

    fmt = os.path.splitext(str(to_file))[1][1:].lower() or "png"
    if fmt not in _FORMATS:
        raise ValueError(f"plot_model: cannot write a .{fmt} file. Use one of {', '.join('.' + f for f in _FORMATS)}. "
                         f"Received: to_file={to_file!r}")
    source = model_to_dot_source(model, show_shapes, show_dtype, show_layer_names, rankdir, expand_nested, dpi,
                                 show_layer_activations, show_trainable)
    data = source.encode() if fmt == "dot" else _render(source, "jpeg" if fmt == "jpg" else fmt)
    atomic_write(to_file, data)
    if fmt == "png":
        try:
            from IPython import get_ipython
            from IPython.display import Image
        except ImportError:
            return None
        if get_ipython() is not None:
            return Image(filename=str(to_file))
    return None
