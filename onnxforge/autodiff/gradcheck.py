"""Numeric gradient checking in float64, with ONNX's reference evaluator as the executor.

The reference evaluator implements every standard op for every dtype in numpy, so float64 checks work
for ops onnxruntime only has float32 kernels for (Conv, ConvTranspose, ...).
"""
from __future__ import annotations

__all__ = ["GradCheckResult", "check_gradients"]

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto
from onnx.reference import ReferenceEvaluator
from onnx.reference.ops.op_conv_transpose import ConvTranspose as _RefConvTranspose
from onnx.reference.ops.op_global_max_pool import GlobalMaxPool as _RefGlobalMaxPool
from onnx.reference.op_run import OpRun
from onnx.reference.ops.op_loop import Loop as _RefLoop
from onnx.reference.ops.op_max_pool import MaxPool as _RefMaxPool
from onnx.reference.ops.op_scan import Scan as _RefScan
from onnx.reference.ops.op_sequence_insert import SequenceInsert as _RefSequenceInsert

from ..graph import FLOAT_TYPES, GraphBuilder
from .api import gradient_model

LOSS = "__gradcheck_loss"


def _grouped_conv_transpose(self, X, W, B=None, group=None, **attrs):
    # onnx's reference ConvTranspose (onnx <= 1.23) slices W by output channels when group > 1 (wrong
    # axis): run each group through its correct group=1 path and concatenate the output channels. It also
    # pads by `pads` (zeros by default) when output_shape is given, where the spec derives the pads from
    # output_shape with the larger half first unless auto_pad is SAME_UPPER: its SAME_LOWER path does that.
    if attrs.get("output_shape") is not None and attrs.get("auto_pad") != "SAME_UPPER":
        attrs.update(pads=None, auto_pad="SAME_LOWER")
    if not group or group == 1:
        return _RefConvTranspose._run(self, X, W, B, group=1, **attrs)
    bs = np.split(B, group) if B is not None else [None] * group
    parts = [_RefConvTranspose._run(self, x, w, bias, group=1, **attrs)[0]
             for x, w, bias in zip(np.split(X, group, axis=1), np.split(W, group, axis=0), bs)]
    return (np.concatenate(parts, axis=1),)


def _max_pool(self, x, auto_pad=None, ceil_mode=0, dilations=None, kernel_shape=None, pads=None,
              storage_order=0, strides=None):
    # onnx's reference MaxPool (onnx <= 1.23) takes a shortcut for unit strides and dilations whose Indices
    # are wrong, and pads SAME_LOWER like SAME_UPPER: resolve auto_pad per the spec and always run its
    # general path (a port of onnxruntime's loops).
    rank = len(kernel_shape)
    strides, dilations = strides or [1] * rank, dilations or [1] * rank
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        total = [max((-(-i // s) - 1) * s + (k - 1) * d + 1 - i, 0)
                 for i, k, s, d in zip(x.shape[2:], kernel_shape, strides, dilations)]
        begin = [t // 2 if auto_pad == "SAME_UPPER" else t - t // 2 for t in total]
        pads = begin + [t - p for t, p in zip(total, begin)]
    elif auto_pad == "VALID" or pads is None:
        pads = [0] * (2 * rank)
    return _RefMaxPool._max_pool(self, x, "NOTSET", ceil_mode, dilations, kernel_shape, pads, storage_order,
                                 strides)


def _global_max_pool(self, x):
    # onnx's reference GlobalMaxPool (onnx <= 1.23) reduces the wrong axes unless there are 2 spatial dims.
    return (x.max(axis=tuple(range(2, x.ndim)), keepdims=True),)


def _scan_init(self, onnx_node, run_params):
    OpRun.__init__(self, onnx_node, run_params)  # skips the reference's refusal of other axes / directions
    self.input_names, self.output_names = self.body.input_names, self.body.output_names


def _scan(self, *args, context=None, num_scan_inputs=None, scan_input_axes=None, scan_input_directions=None,
          scan_output_axes=None, scan_output_directions=None, bindings=None, **_):
    # onnx's reference Scan (onnx <= 1.23) walks axis 0 forward only; the spec (and the reverse Scans of
    # control-flow gradients) use any axis and direction.
    n = len(args) - num_scan_inputs
    k = len(self.output_names) - n
    in_axes, in_dirs = scan_input_axes or [0] * num_scan_inputs, scan_input_directions or [0] * num_scan_inputs
    out_axes, out_dirs = scan_output_axes or [0] * k, scan_output_directions or [0] * k
    xs = [np.moveaxis(x, a % x.ndim, 0)[::-1 if d else 1] for x, a, d in zip(args[n:], in_axes, in_dirs)]
    states, results = list(args[:n]), [[] for _ in range(k)]
    for t in range(xs[0].shape[0]):
        feeds = dict(context or {})
        feeds.update(zip(self.input_names[:n], states))
        feeds.update((name, x[t]) for name, x in zip(self.input_names[n:], xs))
        outs = self._run_body(feeds, bindings=bindings)
        states = list(outs[:n])
        for r, o in zip(results, outs[n:]):
            r.append(o)
    if k and not xs[0].shape[0]:
        raise RuntimeError("Scan with zero scan-input length and scan outputs is not supported.")
    stacked = [np.stack(r[::-1] if d else r) for r, d in zip(results, out_dirs)]
    return self._check_and_fix_outputs(tuple(states + [np.moveaxis(s, 0, a % s.ndim)
                                                       for s, a in zip(stacked, out_axes)]))


def _loop(self, M, cond, *args, context=None, bindings=None, **_):
    # onnx's reference Loop (onnx <= 1.23) runs no iteration when cond is omitted (the spec: true), and
    # concatenates scan outputs of rank >= 2 instead of stacking them along a new axis 0.
    names_in = self.body.input_names
    n = len(names_in) - 2
    k = len(self.body.output_names) - 1 - n
    states, results = list(args[:n]), [[] for _ in range(k)]
    go, it = True if cond is None else bool(cond), 0
    while go and (M is None or it < int(M)):
        feeds = dict(context or {})
        feeds.update({names_in[0]: np.array(it, dtype=np.int64), names_in[1]: np.array(go)})
        feeds.update(zip(names_in[2:], states))
        outs = self._run_body(feeds, bindings=bindings)
        go, states = bool(outs[0]), list(outs[1:1 + n])
        for r, o in zip(results, outs[1 + n:]):
            r.append(o)
        it += 1
    if k and not it:
        raise RuntimeError("Loop with zero iterations and scan outputs is not supported.")
    return self._check_and_fix_outputs(tuple(states + [np.stack(r) for r in results]))


def _sequence_insert(self, S, T, ind=None):
    # onnx's reference SequenceInsert (onnx <= 1.23) maps position len(S) (the end, valid per the spec's
    # range [-n, n]) to 0 with a modulo: insert where the spec says.
    seq = list(S)
    if ind is None:
        seq.append(T)
    else:
        pos = int(np.asarray(ind).reshape(-1)[0])
        seq.insert(pos + len(seq) if pos < 0 else pos, T)
    return (seq,)


#: Reference-evaluator ops replaced by correct versions (the class name picks the op).
_FIXED_OPS = [type("ConvTranspose", (_RefConvTranspose,), {"_run": _grouped_conv_transpose}),
              type("MaxPool", (_RefMaxPool,), {"_run": _max_pool}),
              type("GlobalMaxPool", (_RefGlobalMaxPool,), {"_run": _global_max_pool}),
              type("Scan", (_RefScan,), {"__init__": _scan_init, "_run": _scan}),
              type("Loop", (_RefLoop,), {"_run": _loop}),
              type("SequenceInsert", (_RefSequenceInsert,), {"_run": _sequence_insert})]


def _evaluator(model: onnx.ModelProto) -> ReferenceEvaluator:
    return ReferenceEvaluator(model, new_ops=_FIXED_OPS)


@dataclass
class GradCheckResult:
    """What ``check_gradients`` computed: the analytic gradients and the random upstream gradients."""

    gradients: dict[str, np.ndarray]
    upstream: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]
    wrapped_model: onnx.ModelProto
    gradient_model: onnx.ModelProto


def upstream_wrapped(model: onnx.ModelProto, outputs: Sequence[str]) -> onnx.ModelProto:
    """``model`` plus one input ``__upstream_<y>`` per output ``y`` and the scalar ``sum_y <y, upstream_y>``."""
    b = GraphBuilder.from_model(model)
    terms = []
    for name in outputs:
        y = b.value(name)
        u = b.input(f"__upstream_{name}", y.dtype or TensorProto.DOUBLE, y.shape)
        terms.append(b.op("ReduceSum", [b.op("Mul", [y, u])], keepdims=0))
    loss = terms[0] if len(terms) == 1 else b.op("Sum", terms)
    b.output(loss, LOSS)
    return b.to_model(prune=False)


def check_gradients(
    model: onnx.ModelProto,
    inputs: Mapping[str, np.ndarray],
    wrt: Sequence[str],
    *,
    eps: float = 1e-6,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    directions: int = 2,
    seed: int = 0,
    upstream: Mapping[str, np.ndarray] | None = None,
) -> GradCheckResult:
    """Check onnxforge's gradients of ``model`` by central finite differences in float64.

    Every float output ``y`` gets a random upstream gradient ``u_y`` (never all ones, which hides transpose
    bugs); the scalar ``L = sum_y <y, u_y>`` is differentiated and compared, along random directions ``v``,
    with ``(L(x + eps v) - L(x - eps v)) / (2 eps)``. Raises ``AssertionError`` on a mismatch.

    Example:
        >>> import numpy as np
        >>> from onnx import helper, TensorProto as T
        >>> g = helper.make_graph([helper.make_node("Mul", ["x", "x"], ["y"])], "sq",
        ...     [helper.make_tensor_value_info("x", T.DOUBLE, [3])], [helper.make_tensor_value_info("y", T.DOUBLE, [3])])
        >>> m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])
        >>> r = check_gradients(m, {"x": np.array([1.0, 2.0, 3.0])}, ["x"])
        >>> bool(np.allclose(r.gradients["x"], 2 * np.array([1.0, 2.0, 3.0]) * r.upstream["y"]))
        True
    """
    rng = np.random.default_rng(seed)
    inputs = dict(inputs)
    forward = _evaluator(model)
    out_names = [o.name for o in model.graph.output]
    values = dict(zip(out_names, forward.run(None, inputs)))
    float_outs = [n for n in out_names if values[n].dtype.kind == "f"]
    if upstream is None:
        upstream = {n: rng.standard_normal(values[n].shape).astype(values[n].dtype) for n in float_outs}
    feeds_u = {f"__upstream_{n}": np.asarray(upstream[n]) for n in float_outs}

    wrapped = upstream_wrapped(model, float_outs)
    grad_model = gradient_model(wrapped, LOSS, list(wrt))
    onnx.checker.check_model(grad_model, full_check=True)
    grads = _evaluator(grad_model).run([f"{w}_grad" for w in wrt], {**inputs, **feeds_u})
    gradients = dict(zip(wrt, grads))
    for w in wrt:
        if gradients[w].shape != np.shape(inputs.get(w, gradients[w])):
            raise AssertionError(f"gradient of {w!r} has shape {gradients[w].shape}, "
                                 f"the value has {np.shape(inputs[w])}")

    loss_eval = _evaluator(wrapped)

    def loss_at(shifted: dict[str, np.ndarray]) -> float:
        return float(loss_eval.run([LOSS], {**inputs, **shifted, **feeds_u})[0])

    for _ in range(directions):
        direction = {w: rng.standard_normal(np.shape(inputs[w])) for w in wrt if w in inputs}
        plus = {w: inputs[w] + eps * d for w, d in direction.items()}
        minus = {w: inputs[w] - eps * d for w, d in direction.items()}
        numeric = (loss_at(plus) - loss_at(minus)) / (2 * eps)
        analytic = sum(float(np.sum(gradients[w] * d)) for w, d in direction.items())
        if not abs(numeric - analytic) <= atol + rtol * max(abs(numeric), abs(analytic), 1.0):
            raise AssertionError(f"gradient check failed for {list(wrt)}: finite differences give "
                                 f"{numeric!r}, onnxforge's gradients give {analytic!r}")
    return GradCheckResult(gradients, dict(upstream), values, wrapped, grad_model)
