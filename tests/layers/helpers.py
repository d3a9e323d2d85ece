"""Run layers and models the way the compiler does: trace into a GraphBuilder, check, run in onnxruntime.

``trace(obj, specs, training=...)`` emits one graph whose batch dim is symbolic; the returned ``Traced``
runs it at any batch size. Random ops read their U[0, 1) noise from extra graph inputs (``noise_0``,
``noise_1``, ...) that tests feed, so Dropout / GaussianNoise are checked against exact numpy results.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from onnxforge.graph import GraphBuilder, Value, onnx_dtype
from onnxforge.models import Model
from onnxforge.tracing import TraceContext
from tests.conftest import check_full


@dataclass
class Traced:
    model: onnx.ModelProto
    ctx: TraceContext
    input_names: list[str]
    output_names: list[str]
    update_names: dict[str, str] = field(default_factory=dict)  # variable name -> graph output
    loss_names: list[str] = field(default_factory=list)
    noise_names: list[str] = field(default_factory=list)
    _session: Any = None

    @property
    def session(self) -> ort.InferenceSession:
        if self._session is None:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            self._session = ort.InferenceSession(self.model.SerializeToString(), opts,
                                                 providers=["CPUExecutionProvider"])
        return self._session

    def run(self, *arrays: np.ndarray, noise: list[np.ndarray] | None = None) -> dict[str, np.ndarray]:
        feeds = {n: a for n, a in zip(self.input_names, arrays)}
        feeds.update({n: a.astype(np.float32) for n, a in zip(self.noise_names, noise or [])})
        names = [o.name for o in self.model.graph.output]
        return dict(zip(names, self.session.run(names, feeds)))

    def __call__(self, *arrays: np.ndarray, noise: list[np.ndarray] | None = None) -> Any:
        out = self.run(*arrays, noise=noise)
        values = [out[n] for n in self.output_names]
        return values[0] if len(values) == 1 else values

    def count(self, op_type: str) -> int:
        return sum(1 for n in self.model.graph.node if n.op_type == op_type)


def trace(obj: Any, specs: Any, training: bool = False, weights: str = "initializers") -> Traced:
    """Trace a layer or model on inputs ``specs`` (a ``(shape, dtype)`` or a list of them, no batch dim)."""
    single = isinstance(specs, tuple) and len(specs) == 2 and isinstance(specs[0], tuple)
    specs = [specs] if single else list(specs)
    b = GraphBuilder()
    noise_names: list[str] = []

    def random_uniform(like: Value) -> Value:
        name = f"noise_{len(noise_names)}"
        noise_names.append(name)
        return b.input(name, onnx.TensorProto.FLOAT, like.shape)

    ctx = TraceContext(b, training=training, weights=weights, random_uniform=random_uniform)
    with ctx.active():
        values = [b.input(f"x{k}", onnx_dtype(dtype),
                          ("batch", *(f"d{k}_{i}" if d is None else d for i, d in enumerate(shape))))
                  for k, (shape, dtype) in enumerate(specs)]
        if isinstance(obj, Model):
            outs = obj.trace(values, training=training)
        else:
            out = obj(values[0] if single else values)
            outs = out if isinstance(out, (list, tuple)) else [out]
    output_names = []
    for k, v in enumerate(outs):
        output_names.append(f"out_{k}")
        b.output(v, f"out_{k}")
    update_names = {}
    for k, (var, v) in enumerate(ctx.updates.values()):
        update_names[var.path] = f"update_{k}"
        b.output(v, f"update_{k}")
    loss_names = []
    for k, v in enumerate(ctx.losses):
        loss_names.append(f"loss_{k}")
        b.output(v, f"loss_{k}")
    model = check_full(b.to_model())
    return Traced(model, ctx, [f"x{k}" for k in range(len(specs))], output_names, update_names, loss_names,
                  noise_names)


def run(obj: Any, *arrays: np.ndarray, training: bool = False, **kwargs: Any) -> Any:
    """Trace on the arrays' shapes (batch dim symbolic) and run once."""
    specs = [(a.shape[1:], a.dtype) for a in arrays]
    traced = trace(obj, specs[0] if len(specs) == 1 else specs, training=training)
    return traced(*arrays, **kwargs)
