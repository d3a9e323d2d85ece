"""Gradients through If, Scan and Loop (rules/control_flow.py), body graphs with captured weights.

Each model is checked by ``run_model``: finite differences in float64, torch.autograd on a hand-written
loop, onnx-ad where it supports the model, and onnxruntime float32 on ONE graph at several sequence
lengths and batch sizes.
"""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from onnxforge.autodiff import gradient_model
from onnxforge.graph import DEFAULT_OPSET
from tests.autodiff.harness import F, run_model, needs_torch, torch  # torch, F: optional oracle
from tests.conftest import check_full


I64, BOOL = TensorProto.INT64, TensorProto.BOOL


def _vi(name: str, dtype: int, shape=None) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, shape)


def _model(nodes, inputs, outputs, inits=()) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "control_flow", inputs, outputs, initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", DEFAULT_OPSET)])
    model.ir_version = 10
    return model


def _n(op, inputs, outputs, **attrs) -> onnx.NodeProto:
    return helper.make_node(op, inputs, outputs, **attrs)


# ------------------------------------------------------------------ If
def _if_model(dt: int) -> onnx.ModelProto:
    # Both branches read captured outer values; w only in the then branch (the else gradient branch
    # gives it zeros), and the else branch passes the captured x through.
    then_g = helper.make_graph([_n("Mul", ["x", "w"], ["t1"]), _n("Sin", ["x"], ["t2"])], "then", [],
                               [_vi("t1", dt), _vi("t2", dt)])
    else_g = helper.make_graph([_n("Tanh", ["x"], ["e1"]), _n("Identity", ["x"], ["e2"])], "else", [],
                               [_vi("e1", dt), _vi("e2", dt)])
    return _model([_n("If", ["c"], ["y", "z"], then_branch=then_g, else_branch=else_g)],
                  [_vi("c", BOOL, []), _vi("x", dt, ["N", 3]), _vi("w", dt, [3])],
                  [_vi("y", dt, ["N", 3]), _vi("z", dt, ["N", 3])])


def test_if_branch_gradients_reach_captured_values():
    def draw(rng, size):
        n, cond = size
        return {"c": np.array(cond), "x": rng.standard_normal((n, 3)), "w": rng.standard_normal(3)}

    def torch_fn(c, x, w):
        return (x * w, torch.sin(x)) if bool(c) else (torch.tanh(x), x * 1)

    run_model(_if_model, draw, ["x", "w"], sizes=[(2, True), (3, False)], torch_fn=torch_fn, name="If")


# ------------------------------------------------------------------ Scan
def _rnn_body(dt: int, reverse_layout: bool = False) -> onnx.GraphProto:
    """h' = tanh(x_t Wx + h Wh + b) with Wx, Wh, b captured from the outer graph; emits h' per step."""
    nodes = [
        _n("MatMul", ["x_t", "Wx"], ["xw"]),
        _n("MatMul", ["h", "Wh"], ["hw"]),
        _n("Add", ["xw", "hw"], ["pre0"]),
        _n("Add", ["pre0", "b"], ["pre"]),
        _n("Tanh", ["pre"], ["h_next"]),
        _n("Identity", ["h_next"], ["y_t"]),
    ]
    return helper.make_graph(nodes, "rnn_body", [_vi("h", dt, ["B", 4]), _vi("x_t", dt, ["B", 3])],
                             [_vi("h_next", dt, ["B", 4]), _vi("y_t", dt, ["B", 4])])


def _rnn_inputs(rng, size, batch_major=False):
    t, bsz = size
    xs = rng.standard_normal((bsz, t, 3) if batch_major else (t, bsz, 3))
    return {"h0": rng.standard_normal((bsz, 4)) * 0.5, "xs": xs, "Wx": rng.standard_normal((3, 4)) * 0.5,
            "Wh": rng.standard_normal((4, 4)) * 0.5, "b": rng.standard_normal(4) * 0.1}


def _rnn_torch(h0, xs, Wx, Wh, b, reverse=False, batch_major=False):
    steps = xs.unbind(1 if batch_major else 0)
    order = reversed(range(len(steps))) if reverse else range(len(steps))
    h, ys = h0, {}
    for t in order:
        h = torch.tanh(steps[t] @ Wx + h @ Wh + b)
        ys[t] = h
    stacked = [ys[t] for t in (reversed(range(len(steps))) if reverse else range(len(steps)))]
    return h, torch.stack(stacked, 1 if batch_major else 0)


WRT = ["h0", "xs", "Wx", "Wh", "b"]
SIZES = [(2, 3), (4, 2), (1, 1)]  # (sequence length, batch): one graph serves them all


def test_scan_rnn_cell_with_captured_weights():
    def make(dt):
        scan = _n("Scan", ["h0", "xs"], ["h_last", "ys"], body=_rnn_body(dt), num_scan_inputs=1)
        return _model([scan], [_vi("h0", dt, ["B", 4]), _vi("xs", dt, ["T", "B", 3]), _vi("Wx", dt, [3, 4]),
                               _vi("Wh", dt, [4, 4]), _vi("b", dt, [4])],
                      [_vi("h_last", dt, ["B", 4]), _vi("ys", dt, ["T", "B", 4])])

    run_model(make, _rnn_inputs, WRT, sizes=SIZES, torch_fn=_rnn_torch, name="Scan_rnn")


def test_scan_reverse_direction_and_batch_major_axes():
    # Input scanned along axis 1 backwards; the output written along axis 1, also backwards.
    def make(dt):
        scan = _n("Scan", ["h0", "xs"], ["h_last", "ys"], body=_rnn_body(dt), num_scan_inputs=1,
                  scan_input_axes=[1], scan_input_directions=[1], scan_output_axes=[1], scan_output_directions=[1])
        return _model([scan], [_vi("h0", dt, ["B", 4]), _vi("xs", dt, ["B", "T", 3]), _vi("Wx", dt, [3, 4]),
                               _vi("Wh", dt, [4, 4]), _vi("b", dt, [4])],
                      [_vi("h_last", dt, ["B", 4]), _vi("ys", dt, ["B", "T", 4])])

    def torch_fn(**kw):
        h, ys = _rnn_torch(**kw, reverse=True, batch_major=True)
        return h, ys.flip(1)  # scan_output_directions=1: the last iteration's output comes first

    run_model(make, lambda rng, size: _rnn_inputs(rng, size, batch_major=True), WRT, sizes=SIZES[:2],
              torch_fn=torch_fn, name="Scan_reverse")


def _lstm_body(dt: int) -> onnx.GraphProto:
    """An LSTM cell (gates i, f, c, o) over captured W (3, 16), R (4, 16), bias (16,)."""
    nodes = [
        _n("MatMul", ["x_t", "W"], ["xw"]), _n("MatMul", ["h", "R"], ["hr"]),
        _n("Add", ["xw", "hr"], ["g0"]), _n("Add", ["g0", "bias"], ["gates"]),
        _n("Split", ["gates"], ["gi", "gf", "gc", "go"], axis=1, num_outputs=4),
        _n("Sigmoid", ["gi"], ["i"]), _n("Sigmoid", ["gf"], ["f"]), _n("Tanh", ["gc"], ["g"]),
        _n("Sigmoid", ["go"], ["o"]),
        _n("Mul", ["f", "c"], ["fc"]), _n("Mul", ["i", "g"], ["ig"]), _n("Add", ["fc", "ig"], ["c_next"]),
        _n("Tanh", ["c_next"], ["tc"]), _n("Mul", ["o", "tc"], ["h_next"]), _n("Identity", ["h_next"], ["y_t"]),
    ]
    return helper.make_graph(nodes, "lstm_body", [_vi("h", dt, ["B", 4]), _vi("c", dt, ["B", 4]),
                                                 _vi("x_t", dt, ["B", 3])],
                             [_vi("h_next", dt, ["B", 4]), _vi("c_next", dt, ["B", 4]), _vi("y_t", dt, ["B", 4])])


def test_scan_lstm_cell():
    def make(dt):
        scan = _n("Scan", ["h0", "c0", "xs"], ["h_last", "c_last", "ys"], body=_lstm_body(dt), num_scan_inputs=1)
        # The loss reads only the stacked outputs and the last cell state, like a sequence model would.
        return _model([scan], [_vi("h0", dt, ["B", 4]), _vi("c0", dt, ["B", 4]), _vi("xs", dt, ["T", "B", 3]),
                               _vi("W", dt, [3, 16]), _vi("R", dt, [4, 16]), _vi("bias", dt, [16])],
                      [_vi("ys", dt, ["T", "B", 4]), _vi("c_last", dt, ["B", 4])])

    def draw(rng, size):
        t, bsz = size
        return {"h0": rng.standard_normal((bsz, 4)) * 0.5, "c0": rng.standard_normal((bsz, 4)) * 0.5,
                "xs": rng.standard_normal((t, bsz, 3)), "W": rng.standard_normal((3, 16)) * 0.5,
                "R": rng.standard_normal((4, 16)) * 0.5, "bias": rng.standard_normal(16) * 0.1}

    def torch_fn(h0, c0, xs, W, R, bias):
        h, c, ys = h0, c0, []
        for x in xs.unbind(0):
            i, f, g, o = (x @ W + h @ R + bias).chunk(4, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            ys.append(h)
        return torch.stack(ys), c

    run_model(make, draw, ["h0", "c0", "xs", "W", "R", "bias"], sizes=SIZES[:2], torch_fn=torch_fn, name="Scan_lstm")


def test_scan_with_integer_state_and_two_scan_inputs():
    # An int64 step counter rides along as a state (no gradient; its per-step values are saved for the
    # backward pass), and two sequences are scanned: y_t = (h + x_t * s_t) * step.
    def make(dt):
        body = helper.make_graph(
            [_n("Mul", ["x_t", "s_t"], ["xs_t"]), _n("Add", ["h", "xs_t"], ["h_next"]),
             _n("Add", ["k", "one"], ["k_next"]), _n("Cast", ["k_next"], ["kf"], to=dt),
             _n("Mul", ["h_next", "kf"], ["y_t"])],
            "body", [_vi("h", dt, [2]), _vi("k", I64, []), _vi("x_t", dt, [2]), _vi("s_t", dt, [2])],
            [_vi("h_next", dt, [2]), _vi("k_next", I64, []), _vi("y_t", dt, [2])],
            initializer=[helper.make_tensor("one", I64, [], [1])])
        scan = _n("Scan", ["h0", "k0", "xs", "ss"], ["h_last", "k_last", "ys"], body=body, num_scan_inputs=2)
        return _model([scan], [_vi("h0", dt, [2]), _vi("xs", dt, ["T", 2]), _vi("ss", dt, ["T", 2])],
                      [_vi("h_last", dt, [2]), _vi("ys", dt, ["T", 2])],
                      inits=[helper.make_tensor("k0", I64, [], [0])])

    def draw(rng, t):
        return {"h0": rng.standard_normal(2), "xs": rng.standard_normal((t, 2)), "ss": rng.standard_normal((t, 2))}

    def torch_fn(h0, xs, ss):
        h, ys = h0, []
        for k, (x, s) in enumerate(zip(xs, ss), start=1):
            h = h + x * s
            ys.append(h * k)
        return h, torch.stack(ys)

    run_model(make, draw, ["h0", "xs", "ss"], sizes=(3, 5), torch_fn=torch_fn, name="Scan_int_state")


def test_if_nested_in_scan_body():
    # The body branches on a captured flag; the branch captures Wh from two scopes out.
    def make(dt):
        then_g = helper.make_graph([_n("MatMul", ["h", "Wh"], ["hw"]), _n("Tanh", ["hw"], ["t"])], "then", [],
                                   [_vi("t", dt)])
        else_g = helper.make_graph([_n("Sigmoid", ["h"], ["s"])], "else", [], [_vi("s", dt)])
        body = helper.make_graph(
            [_n("If", ["flag"], ["r"], then_branch=then_g, else_branch=else_g), _n("Add", ["r", "x_t"], ["h_next"])],
            "body", [_vi("h", dt, ["B", 4]), _vi("x_t", dt, ["B", 4])], [_vi("h_next", dt, ["B", 4])])
        scan = _n("Scan", ["h0", "xs"], ["h_last"], body=body, num_scan_inputs=1)
        return _model([scan], [_vi("flag", BOOL, []), _vi("h0", dt, ["B", 4]), _vi("xs", dt, ["T", "B", 4]),
                               _vi("Wh", dt, [4, 4])], [_vi("h_last", dt, ["B", 4])])

    def draw(rng, size):
        t, bsz, flag = size
        return {"flag": np.array(flag), "h0": rng.standard_normal((bsz, 4)),
                "xs": rng.standard_normal((t, bsz, 4)) * 0.5, "Wh": rng.standard_normal((4, 4)) * 0.5}

    def torch_fn(flag, h0, xs, Wh):
        h = h0
        for x in xs:
            h = (torch.tanh(h @ Wh) if bool(flag) else torch.sigmoid(h)) + x
        return h

    run_model(make, draw, ["h0", "xs", "Wh"], sizes=[(3, 2, True), (2, 3, False)], torch_fn=torch_fn,
              name="Scan_If")


# ------------------------------------------------------------------ Loop
def _loop_body(dt: int, cond_from_limit: bool) -> onnx.GraphProto:
    """h' = tanh(h W + xs[i]) over captured W and xs; emits h' per iteration. The condition is either
    passed through (a for loop over the trip count) or ``i + 1 < limit`` (a while loop)."""
    nodes = [
        # xs[i] as Squeeze(Gather(xs, [i])): the Gather rule mishandles a scalar index with a dynamic
        # axis (reported), and a 1-element index exercises the same ScatterND path.
        _n("Unsqueeze", ["i", "zero_axis"], ["i1d"]), _n("Gather", ["xs", "i1d"], ["x_i1"], axis=0),
        _n("Squeeze", ["x_i1", "zero_axis"], ["x_i"]),
        _n("MatMul", ["h", "W"], ["hw"]), _n("Add", ["hw", "x_i"], ["pre"]), _n("Tanh", ["pre"], ["h_next"]),
        _n("Identity", ["h_next"], ["y_i"]),
    ]
    if cond_from_limit:
        nodes += [_n("Add", ["i", "one"], ["i1"]), _n("Less", ["i1", "limit"], ["cond_out"])]
    else:
        nodes += [_n("Identity", ["cond_in"], ["cond_out"])]
    return helper.make_graph(
        nodes, "loop_body", [_vi("i", I64, []), _vi("cond_in", BOOL, []), _vi("h", dt, ["B", 4])],
        [_vi("cond_out", BOOL, []), _vi("h_next", dt, ["B", 4]), _vi("y_i", dt, ["B", 4])],
        initializer=[helper.make_tensor("zero_axis", I64, [1], [0])]
        + ([helper.make_tensor("one", I64, [], [1])] if cond_from_limit else []))


def _loop_torch(h0, xs, W, steps):
    h, ys = h0, []
    for t in range(steps):
        h = torch.tanh(h @ W + xs[t])
        ys.append(h)
    return h, torch.stack(ys)


def _loop_inputs(rng, size):
    t, bsz = size
    return {"h0": rng.standard_normal((bsz, 4)), "xs": rng.standard_normal((t + 1, bsz, 4)),
            "W": rng.standard_normal((4, 4)) * 0.5}


def test_loop_over_trip_count():
    def make(dt):
        loop = _n("Loop", ["M", "", "h0"], ["h_last", "ys"], body=_loop_body(dt, False))
        return _model([loop], [_vi("M", I64, []), _vi("h0", dt, ["B", 4]), _vi("xs", dt, ["L", "B", 4]),
                               _vi("W", dt, [4, 4])], [_vi("h_last", dt, ["B", 4]), _vi("ys", dt, ["T", "B", 4])])

    def draw(rng, size):
        return {"M": np.array(size[0], np.int64), **_loop_inputs(rng, size)}

    run_model(make, draw, ["h0", "xs", "W"], sizes=SIZES[:2],
              torch_fn=lambda M, h0, xs, W: _loop_torch(h0, xs, W, int(M)), name="Loop_for")


def test_loop_with_data_dependent_condition():
    # No trip count: the loop runs while i + 1 < limit, a value known only at run time.
    def make(dt):
        loop = _n("Loop", ["", "start", "h0"], ["h_last", "ys"], body=_loop_body(dt, True))
        return _model([loop], [_vi("limit", I64, []), _vi("h0", dt, ["B", 4]), _vi("xs", dt, ["L", "B", 4]),
                               _vi("W", dt, [4, 4])], [_vi("h_last", dt, ["B", 4]), _vi("ys", dt, ["T", "B", 4])],
                      inits=[helper.make_tensor("start", BOOL, [], [True])])

    def draw(rng, size):
        return {"limit": np.array(size[0], np.int64), **_loop_inputs(rng, size)}

    run_model(make, draw, ["h0", "xs", "W"], sizes=SIZES[:2],
              torch_fn=lambda limit, h0, xs, W: _loop_torch(h0, xs, W, int(limit)), name="Loop_while")


def test_forward_outputs_unchanged_by_the_rewrite(checked):
    # The forward Scan gains residual outputs, but the model's own outputs stay first and keep their values.
    import onnxruntime as ort

    model = checked(_model([_n("Scan", ["h0", "xs"], ["h_last", "ys"], body=_rnn_body(TensorProto.FLOAT),
                               num_scan_inputs=1)],
                           [_vi("h0", TensorProto.FLOAT, ["B", 4]), _vi("xs", TensorProto.FLOAT, ["T", "B", 3]),
                            _vi("Wx", TensorProto.FLOAT, [3, 4]), _vi("Wh", TensorProto.FLOAT, [4, 4]),
                            _vi("b", TensorProto.FLOAT, [4])],
                           [_vi("h_last", TensorProto.FLOAT, ["B", 4]), _vi("ys", TensorProto.FLOAT, ["T", "B", 4])]))
    grad = checked(gradient_model(model, "ys", ["Wx", "Wh"]))
    assert [o.name for o in grad.graph.output] == ["h_last", "ys", "Wx_grad", "Wh_grad"]
    feeds = {k: v.astype(np.float32) for k, v in _rnn_inputs(np.random.default_rng(0), (3, 2)).items()}
    run = lambda m: ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    base, with_grad = run(model), run(grad)
    for a, b in zip(base, with_grad[:2]):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    assert {n.op_type for n in grad.graph.node} >= {"Scan"}
    assert sum(n.op_type == "Scan" for n in grad.graph.node) == 2  # the forward and the reverse Scan


def test_scan_nested_in_scan_body():
    # An inner Scan over K sub-steps inside each outer step; W is captured two scopes out. The inner
    # node is rewritten (residual outputs) inside the outer body, whose residuals then include its stacks.
    def make(dt):
        inner_body = helper.make_graph(
            [_n("MatMul", ["hi", "W"], ["hw"]), _n("Add", ["hw", "x_k"], ["pre"]), _n("Tanh", ["pre"], ["hi_next"])],
            "inner", [_vi("hi", dt, ["B", 4]), _vi("x_k", dt, ["B", 4])], [_vi("hi_next", dt, ["B", 4])])
        outer_body = helper.make_graph(
            [_n("Scan", ["h", "x_t"], ["h_inner"], body=inner_body, num_scan_inputs=1),
             _n("Mul", ["h_inner", "scale"], ["h_next"]), _n("Identity", ["h_next"], ["y_t"])],
            "outer", [_vi("h", dt, ["B", 4]), _vi("x_t", dt, ["K", "B", 4])],
            [_vi("h_next", dt, ["B", 4]), _vi("y_t", dt, ["B", 4])])
        scan = _n("Scan", ["h0", "xs"], ["h_last", "ys"], body=outer_body, num_scan_inputs=1)
        return _model([scan], [_vi("h0", dt, ["B", 4]), _vi("xs", dt, ["T", "K", "B", 4]), _vi("W", dt, [4, 4]),
                               _vi("scale", dt, [4])], [_vi("h_last", dt, ["B", 4]), _vi("ys", dt, ["T", "B", 4])])

    def draw(rng, size):
        t, k, bsz = size
        return {"h0": rng.standard_normal((bsz, 4)), "xs": rng.standard_normal((t, k, bsz, 4)) * 0.5,
                "W": rng.standard_normal((4, 4)) * 0.5, "scale": rng.uniform(0.5, 1.5, 4)}

    def torch_fn(h0, xs, W, scale):
        h, ys = h0, []
        for x_t in xs:
            for x_k in x_t:
                h = torch.tanh(h @ W + x_k)
            h = h * scale
            ys.append(h)
        return h, torch.stack(ys)

    run_model(make, draw, ["h0", "xs", "W", "scale"], sizes=[(2, 3, 2), (3, 2, 1)], torch_fn=torch_fn,
              name="Scan_in_Scan")


@needs_torch
def test_loop_that_runs_zero_times(checked):
    # Nothing to walk back: the initial state's gradient is the final state's, the captures get zeros.
    import onnxruntime as ort

    f32 = TensorProto.FLOAT
    loop = _n("Loop", ["M", "", "h0"], ["h_last", "ys"], body=_loop_body(f32, False))
    model = checked(_model([loop], [_vi("M", I64, []), _vi("h0", f32, ["B", 4]), _vi("xs", f32, ["L", "B", 4]),
                                    _vi("W", f32, [4, 4])], [_vi("h_last", f32, ["B", 4])]))
    grad = checked(gradient_model(model, "h_last", ["h0", "W", "xs"]))
    session = ort.InferenceSession(grad.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {k: v.astype(np.float32) for k, v in _loop_inputs(np.random.default_rng(0), (2, 3)).items()}
    names = ["h0_grad", "W_grad", "xs_grad"]
    dh0, dw, dxs = session.run(names, {"M": np.array(0, np.int64), **feeds})
    np.testing.assert_array_equal(dh0, np.ones_like(feeds["h0"]))
    assert not dw.any() and not dxs.any()
    # The same graph with iterations still differentiates them.
    t = {k: torch.tensor(v, requires_grad=True) for k, v in feeds.items()}
    _loop_torch(t["h0"], t["xs"], t["W"], 2)[0].sum().backward()
    got = session.run(names, {"M": np.array(2, np.int64), **feeds})
    for g, k in zip(got, ["h0", "W", "xs"]):
        np.testing.assert_allclose(g, t[k].grad.numpy(), rtol=1e-4, atol=1e-5)
