"""``gradient_model``: make any ONNX model differentiable, in standard ops."""
from __future__ import annotations

__all__ = ["gradient_model"]

from collections.abc import Sequence

import onnx

from ..graph import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET, GraphBuilder
from ..graph.opset import ir_version_for
from .engine import backward


def gradient_model(model: onnx.ModelProto, loss: str, wrt: Sequence[str]) -> onnx.ModelProto:
    """A copy of ``model`` that also outputs ``d loss / d w`` as ``f"{w}_grad"`` for each ``w`` in ``wrt``.

    ``loss`` names any float value of the graph (a non-scalar loss is summed). ``wrt`` names graph inputs
    or initializers; initializers keep their values. The model's inputs and outputs are kept, in order,
    before the gradient outputs. Models below opset 18 are converted first.

    Example:
        >>> import numpy as np, onnx, onnxruntime as ort
        >>> from onnx import helper, TensorProto as T
        >>> g = helper.make_graph([helper.make_node("Mul", ["x", "x"], ["y"])], "sq",
        ...     [helper.make_tensor_value_info("x", T.FLOAT, ["n"])], [helper.make_tensor_value_info("y", T.FLOAT, ["n"])])
        >>> m = gradient_model(helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)]), "y", ["x"])
        >>> sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        >>> sess.run(["x_grad"], {"x": np.array([1.0, 3.0], np.float32)})[0].tolist()
        [2.0, 6.0]
    """
    if not isinstance(model, onnx.ModelProto):
        raise TypeError(f"model must be an onnx.ModelProto. Received: {type(model).__name__}")
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), DEFAULT_OPSET)
    if opset < MIN_OPSET:
        model = onnx.version_converter.convert_version(model, DEFAULT_OPSET)
    elif opset > MAX_OPSET:
        raise ValueError(f"gradient_model supports ai.onnx opsets up to {MAX_OPSET} (what the installed "
                         f"onnxruntime runs completely). Received a model at opset {opset}.")
    b = GraphBuilder.from_model(model)
    known = set(b.values)
    if loss not in known:
        raise ValueError(f"loss must name a value of the graph. Received: loss={loss!r}")
    sources = {v.name for v in b.inputs} | set(b.initializers)
    bad = [w for w in wrt if w not in sources]
    if bad:
        raise ValueError(f"wrt must name graph inputs or initializers. Received: {bad!r}; "
                         f"available: {sorted(sources)[:20]}")
    if not b.value(loss).is_float and b.value(loss).dtype is not None:
        raise ValueError(f"loss must be a float tensor. Received: {b.value(loss)!r}")
    for w in wrt:
        if not b.value(w).is_float:
            raise ValueError(f"wrt values must be float tensors. Received: {b.value(w)!r}")
    grads = backward(b, loss, list(wrt))
    for w in wrt:
        g = grads[w]
        g.dtype, g.shape = b.value(w).dtype, b.value(w).shape
        b.output(g, f"{w}_grad")
    out = b.to_model(name=model.graph.name or "onnxforge", doc_string=model.graph.doc_string)
    extra = [o for o in model.opset_import if o.domain not in ("", "ai.onnx")]
    out.opset_import.extend(extra)
    out.ir_version = max(out.ir_version, min(model.ir_version, ir_version_for(b.opset)))
    for p in model.metadata_props:
        out.metadata_props.add(key=p.key, value=p.value)
    return out
