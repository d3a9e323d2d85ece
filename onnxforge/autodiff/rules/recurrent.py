"""Gradient rules: the fused recurrent ops LSTM, GRU and RNN (what ``torch.onnx.export`` emits for
``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN``).

Each rule re-expresses the node's forward pass as one ONNX ``Scan`` per direction over the same inputs
(the input projection ``X W^T + Wb`` is one MatMul outside the loop; the body holds the recurrence),
appends it to the graph, and differentiates that with the engine itself: the Scan rule of
``control_flow.py`` turns it into a reverse Scan over saved per-step residuals. The fused node stays in
the graph for the forward pass; the Scan form only serves the gradient, so the numbers a model computes
do not change. Nothing depends on a static batch or sequence length.

Covered: direction forward / reverse / bidirectional, layout 0 and 1, optional B, initial_h, initial_c,
P (peepholes), clip, input_forget, GRU linear_before_reset 0 and 1, and sequence_lens by masking (a
sequence past its length keeps its state and emits zeros, which also gives ONNX's reverse-direction
semantics: the reverse pass of each sequence starts at its own last step). Activations other than the
defaults (Sigmoid, Tanh, Tanh) are refused.
"""
from __future__ import annotations

import onnx
from onnx import TensorProto, helper

from ...graph import GraphBuilder, Value
from ..context import GradContext
from ..engine import backward
from ..registry import register

__all__: list[str] = []

I64 = TensorProto.INT64
_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
_DEFAULT_ACTIVATIONS = {"LSTM": ["sigmoid", "tanh", "tanh"], "GRU": ["sigmoid", "tanh"], "RNN": ["tanh"]}


class _Step:
    """A Scan body under construction: a builder sharing the enclosing graph's names, whose values all
    carry the element type ``dt`` (so the Scan rule can save any of them per iteration)."""

    def __init__(self, parent: GraphBuilder, dt: int):
        self.b = b = GraphBuilder(opset=parent.opset, float32_fallback=parent.float32_fallback)
        b._taken, b._counter = parent._taken, parent._counter
        self.dt = dt

    def input(self, hint: str, shape) -> Value:
        v = self.b._record(self.b.fresh(hint), self.dt, shape)
        self.b.inputs.append(v)
        return v

    def op(self, op_type: str, inputs, outputs: int = 1, **attrs):
        out = self.b.op(op_type, inputs, outputs=outputs, dtype=self.dt, **attrs)
        for v in out if isinstance(out, list) else [out]:
            v.dtype = self.dt
        return out

    def graph(self, outputs: list[Value], name: str) -> onnx.GraphProto:
        b = self.b
        # A graph output must be produced inside the body: pass states through an Identity if needed.
        produced = {o for n in b.nodes for o in n.output}
        outs = [v if v.name in produced and v.name not in {o.name for o in outputs[:k]}
                else self.op("Identity", [v]) for k, v in enumerate(outputs)]
        info = [helper.make_tensor_value_info(n, v.dtype, None) for n, v in b.values.items()
                if n in produced and n not in {o.name for o in outs} and v.dtype]
        return helper.make_graph(list(b.nodes), name, [_vi(v) for v in b.inputs], [_vi(v) for v in outs],
                                 initializer=list(b.initializers.values()), value_info=info)


def _vi(v: Value) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(v.name, v.dtype, v.shape)


def _i64(b: GraphBuilder, value) -> Value:
    return b.const(value, I64)


def _check(ctx: GradContext, op: str) -> None:
    acts = ctx.attr("activations")
    if acts is not None:
        want = _DEFAULT_ACTIVATIONS[op]
        got = [a.decode().lower() if isinstance(a, bytes) else str(a).lower() for a in acts]
        if any(g != want[k % len(want)] for k, g in enumerate(got)):
            raise ctx.fail(f"only the default activations {[w.capitalize() for w in want]} are supported. "
                           f"Received: activations={[a.decode() if isinstance(a, bytes) else a for a in acts]}")
    direction = ctx.attr("direction", "forward")
    if direction not in ("forward", "reverse", "bidirectional"):
        raise ctx.fail(f"unknown direction. Received: direction={direction!r}")


def _recurrent(op: str):
    def rule(ctx: GradContext):
        _check(ctx, op)
        b, dt = ctx.b, ctx.I(0).dtype
        if dt is None:  # every state, zero and constant of the backward scan takes it: never guess float32
            raise ctx.fail(f"the element type of input {ctx.I(0).name!r} is unknown after shape inference.")
        G = _GATES[op]
        direction = ctx.attr("direction", "forward")
        layout = int(ctx.attr("layout", 0))
        clip = ctx.attr("clip")
        n_dirs = 2 if direction == "bidirectional" else 1
        X, W, R, bias, lens, h0 = (ctx.I(i) for i in range(6))
        c0 = ctx.I(6) if op == "LSTM" else None
        P = ctx.I(7) if op == "LSTM" else None

        x = b.op("Transpose", [X], perm=[1, 0, 2], dtype=dt, shape=(None, None, None)) if layout else X  # [T, B, I]
        if layout:
            h0 = None if h0 is None else b.op("Transpose", [h0], perm=[1, 0, 2], dtype=dt)
            c0 = None if c0 is None else b.op("Transpose", [c0], perm=[1, 0, 2], dtype=dt)
        shape_x = b.op("Shape", [x])
        if h0 is None or (op == "LSTM" and c0 is None):
            dims = b.op("Concat", [b.op("Slice", [shape_x, _i64(b, [1]), _i64(b, [2])]),
                                   b.op("Slice", [b.op("Shape", [R]), _i64(b, [2]), _i64(b, [3])])], axis=0)
            zeros = b.op("ConstantOfShape", [dims], value=helper.make_tensor("z", dt, [1], [0]), dtype=dt)
        mask = None
        if lens is not None:  # [T, B, 1]: 1 while step t < the sequence's length
            steps = b.op("Range", [_i64(b, 0), b.op("Gather", [shape_x, _i64(b, 0)], axis=0), _i64(b, 1)])
            live = b.op("Less", [b.op("Unsqueeze", [steps, _i64(b, [1])]),
                                 b.op("Unsqueeze", [b.op("Cast", [lens], to=I64), _i64(b, [0])])])
            mask = b.op("Unsqueeze", [b.op("Cast", [live], to=dt, dtype=dt), _i64(b, [2])], dtype=dt)

        ys, hs, cs = [], [], []
        for d in range(n_dirs):
            reverse = direction == "reverse" or d == 1
            pick = lambda t: b.op("Gather", [t, _i64(b, d)], axis=0, dtype=dt)  # noqa: E731
            w_t = b.op("Transpose", [pick(W)], perm=[1, 0], dtype=dt, shape=(None, None))  # [I, G*H]
            r_t = b.op("Transpose", [pick(R)], perm=[1, 0], dtype=dt, shape=(None, None))  # [H, G*H]
            xw = b.op("MatMul", [x, w_t], dtype=dt, shape=(None, None, None))  # [T, B, G*H]
            wb = rb = None
            if bias is not None:
                wb, rb = b.op("Split", [pick(bias)], outputs=2, axis=0, num_outputs=2)
                wb.dtype = rb.dtype = dt
                xw = b.op("Add", [xw, wb], dtype=dt)
            s = _Step(b, dt)
            h = s.input("h", (None, None))
            c = s.input("c", (None, None)) if op == "LSTM" else None
            xw_t = s.input("xw_t", (None, None))
            m_t = s.input("mask_t", (None, None)) if mask is not None else None
            hr = s.op("MatMul", [h, r_t])
            if rb is not None:
                hr = s.op("Add", [hr, rb])

            def act(kind: str, v: Value) -> Value:
                if clip is not None:
                    v = s.op("Clip", [v, s.b.const(-float(clip), dt), s.b.const(float(clip), dt)])
                return s.op(kind, [v])

            one = s.b.const(1.0, dt)
            if op == "RNN":
                h_new, c_new = act("Tanh", s.op("Add", [xw_t, hr])), None
            elif op == "LSTM":
                pre = s.op("Split", [s.op("Add", [xw_t, hr])], outputs=4, axis=-1, num_outputs=4)
                p_i = p_o = p_f = None
                if P is not None:
                    p_i, p_o, p_f = b.op("Split", [pick(P)], outputs=3, axis=0, num_outputs=3)
                    p_i.dtype = p_o.dtype = p_f.dtype = dt
                gi = act("Sigmoid", pre[0] if p_i is None else s.op("Add", [pre[0], s.op("Mul", [p_i, c])]))
                if int(ctx.attr("input_forget", 0)):
                    gf = s.op("Sub", [one, gi])
                else:
                    gf = act("Sigmoid", pre[2] if p_f is None else s.op("Add", [pre[2], s.op("Mul", [p_f, c])]))
                gc = act("Tanh", pre[3])
                c_new = s.op("Add", [s.op("Mul", [gf, c]), s.op("Mul", [gi, gc])])
                go = act("Sigmoid", pre[1] if p_o is None else s.op("Add", [pre[1], s.op("Mul", [p_o, c_new])]))
                h_new = s.op("Mul", [go, s.op("Tanh", [c_new])])
            else:  # GRU, gates z, r, h
                xz, xr, xh = s.op("Split", [xw_t], outputs=3, axis=-1, num_outputs=3)
                hz, hr_, hh = s.op("Split", [hr], outputs=3, axis=-1, num_outputs=3)
                z = act("Sigmoid", s.op("Add", [xz, hz]))
                r = act("Sigmoid", s.op("Add", [xr, hr_]))
                if int(ctx.attr("linear_before_reset", 0)):
                    n = act("Tanh", s.op("Add", [xh, s.op("Mul", [r, hh])]))
                else:  # (r * h) Rh^T + Rbh: the reset gate acts before the recurrent matmul
                    rh_t = b.op("Split", [r_t], outputs=3, axis=1, num_outputs=3)[2]
                    rh_t.dtype = dt
                    inner = s.op("MatMul", [s.op("Mul", [r, h]), rh_t])
                    if rb is not None:
                        rbh = b.op("Split", [rb], outputs=3, axis=0, num_outputs=3)[2]
                        rbh.dtype = dt
                        inner = s.op("Add", [inner, rbh])
                    n = act("Tanh", s.op("Add", [xh, inner]))
                h_new = s.op("Add", [s.op("Mul", [s.op("Sub", [one, z]), n]), s.op("Mul", [z, h])])
                c_new = None
            y_t = h_new
            if m_t is not None:  # past its length a sequence keeps its state and emits zeros
                y_t = s.op("Mul", [m_t, h_new])
                h_new = s.op("Add", [h, s.op("Mul", [m_t, s.op("Sub", [h_new, h])])])
                if c_new is not None:
                    c_new = s.op("Add", [c, s.op("Mul", [m_t, s.op("Sub", [c_new, c])])])
            outs = [h_new] + ([c_new] if c_new is not None else []) + [y_t]
            body = s.graph(outs, b.fresh(f"{op.lower()}_step"))
            init = [pick(h0) if h0 is not None else zeros]
            if op == "LSTM":
                init.append(pick(c0) if c0 is not None else zeros)
            seqs = [xw] + ([mask] if mask is not None else [])
            res = b.op("Scan", init + seqs, outputs=len(outs), body=body, num_scan_inputs=len(seqs),
                       scan_input_directions=[int(reverse)] * len(seqs), scan_output_directions=[int(reverse)])
            for v in res:
                v.dtype = dt
            hs.append(res[0])
            if op == "LSTM":
                cs.append(res[1])
            ys.append(res[-1])

        def stack(parts: list[Value], axis: int) -> Value:
            parts = [b.op("Unsqueeze", [p, _i64(b, [axis])], dtype=dt) for p in parts]
            return parts[0] if len(parts) == 1 else b.op("Concat", parts, axis=axis, dtype=dt)

        y, y_h = stack(ys, 1), stack(hs, 0)  # [T, D, B, H], [D, B, H]
        y_c = stack(cs, 0) if op == "LSTM" else None
        if layout:
            y = b.op("Transpose", [y], perm=[2, 0, 1, 3], dtype=dt)
            y_h = b.op("Transpose", [y_h], perm=[1, 0, 2], dtype=dt)
            y_c = None if y_c is None else b.op("Transpose", [y_c], perm=[1, 0, 2], dtype=dt)
        pairs = [(v, ctx.GO(k)) for k, v in enumerate([y, y_h, y_c]) if v is not None and ctx.GO(k) is not None]
        wanted = list(dict.fromkeys(ctx.node.input[i] for i in range(ctx.n_inputs) if ctx.needs(i)))
        if not pairs or not wanted:
            return [None] * ctx.n_inputs
        grads = backward(b, [v for v, _ in pairs], wanted, [g for _, g in pairs])
        result, given = [], set()
        for i in range(ctx.n_inputs):
            name = ctx.node.input[i]
            # An input listed twice (one tensor as initial_h and initial_c) gets its total gradient once.
            result.append(grads[name] if ctx.needs(i) and name not in given else None)
            if ctx.needs(i):
                given.add(name)
        return result

    rule.__name__ = f"_{op.lower()}"
    return rule


for _op in _GATES:
    register(_op)(_recurrent(_op))
