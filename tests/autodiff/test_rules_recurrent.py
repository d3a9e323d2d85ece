"""Gradients of the fused LSTM, GRU and RNN ops (rules/recurrent.py).

Each model is one fused node with symbolic sequence and batch dims, checked by ``run_model``: float64
finite differences (ONNX reference evaluator), torch.autograd (``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` with
the ONNX weights converted to torch's gate order, or a loop written from the ONNX spec where torch has no
counterpart) and onnxruntime float32 on ONE graph at two sequence lengths and batch sizes. Attributes
the reference evaluator ignores (sequence_lens, clip, input_forget) are checked with onnxruntime's own
fused forward and the gradient graph run by onnxruntime against torch.
"""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from onnxforge.autodiff import GradientError, check_gradients, gradient_model
from onnxforge.autodiff.gradcheck import LOSS, upstream_wrapped
from onnxforge.graph import DEFAULT_OPSET
from tests.autodiff.harness import F, run_model, needs_torch, torch  # torch, F: optional oracle
from tests.conftest import check_full


I_SIZE, H = 3, 4
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
# Row blocks of torch's weights in ONNX's gate order: LSTM torch i,f,g,o -> ONNX i,o,f,c; GRU r,z,n -> z,r,h.
TORCH_BLOCKS = {"LSTM": [0, 2, 3, 1], "GRU": [1, 0, 2], "RNN": [0]}
SLOTS = ["X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"]


def _model(op: str, dt: int, attrs: dict, present: list[str], lens: np.ndarray | None = None) -> onnx.ModelProto:
    d = 2 if attrs.get("direction") == "bidirectional" else 1
    layout = attrs.get("layout", 0)
    g = GATES[op]
    tb = ["B", "T"] if layout else ["T", "B"]
    shapes = {"X": [*tb, I_SIZE], "W": [d, g * H, I_SIZE], "R": [d, g * H, H], "B": [d, 2 * g * H],
              "initial_h": ["B", d, H] if layout else [d, "B", H], "P": [d, 3 * H]}
    shapes["initial_c"] = shapes["initial_h"]
    names = [n if n in present or (n == "sequence_lens" and lens is not None) else "" for n in SLOTS]
    names = names[: max(i for i, n in enumerate(names) if n) + 1]
    inputs = [helper.make_tensor_value_info(n, dt, shapes[n]) for n in names if n and n != "sequence_lens"]
    inits = [] if lens is None else [onnx.numpy_helper.from_array(lens.astype(np.int32), "sequence_lens")]
    outs = ["Y", "Y_h", "Y_c"] if op == "LSTM" else ["Y", "Y_h"]
    node = helper.make_node(op, names, outs, hidden_size=H, **attrs)
    out_shapes = {"Y": [*tb, d, H] if layout else ["T", d, "B", H], "Y_h": shapes["initial_h"]}
    out_shapes["Y_c"] = out_shapes["Y_h"]
    graph = helper.make_graph([node], op, inputs, [helper.make_tensor_value_info(o, dt, out_shapes[o]) for o in outs],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", DEFAULT_OPSET)])
    model.ir_version = 10
    return model


def _draw(op: str, attrs: dict, present: list[str]):
    d = 2 if attrs.get("direction") == "bidirectional" else 1
    layout, g = attrs.get("layout", 0), GATES[op]

    def draw(rng, size):
        t, bsz = size
        shapes = {"X": (bsz, t, I_SIZE) if layout else (t, bsz, I_SIZE), "W": (d, g * H, I_SIZE),
                  "R": (d, g * H, H), "B": (d, 2 * g * H), "initial_h": (bsz, d, H) if layout else (d, bsz, H),
                  "P": (d, 3 * H)}
        shapes["initial_c"] = shapes["initial_h"]
        return {n: 0.6 * rng.standard_normal(shapes[n]) for n in SLOTS if n in present}

    return draw


def _to_torch_order(op: str, w):
    """ONNX [G*H, ...] gate blocks to torch's order (differentiably)."""
    blocks = torch.split(w, H, dim=0)
    # torch block k is ONNX block TORCH_BLOCKS[op][k]
    return torch.cat([blocks[k] for k in TORCH_BLOCKS[op]], 0)


def _torch_module_fn(op: str, attrs: dict):
    """torch_fn through nn.LSTM / nn.GRU / nn.RNN with the ONNX weights converted."""
    d = 2 if attrs.get("direction") == "bidirectional" else 1
    layout = attrs.get("layout", 0)
    cls = {"LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU, "RNN": torch.nn.RNN}[op]
    module = cls(I_SIZE, H, bidirectional=d == 2, batch_first=bool(layout)).double()

    def fn(X, W, R, B=None, initial_h=None, initial_c=None):
        params = {}
        for k, suffix in enumerate(["", "_reverse"][:d]):
            params[f"weight_ih_l0{suffix}"] = _to_torch_order(op, W[k])
            params[f"weight_hh_l0{suffix}"] = _to_torch_order(op, R[k])
            bias = B[k] if B is not None else torch.zeros(2 * GATES[op] * H, dtype=torch.float64)
            params[f"bias_ih_l0{suffix}"] = _to_torch_order(op, bias[: GATES[op] * H])
            params[f"bias_hh_l0{suffix}"] = _to_torch_order(op, bias[GATES[op] * H:])
        h0 = None if initial_h is None else (initial_h.transpose(0, 1) if layout else initial_h)
        if op == "LSTM":
            c0 = initial_c.transpose(0, 1) if layout and initial_c is not None else initial_c
            state = None if h0 is None else (h0.contiguous(), c0.contiguous())
        else:
            state = None if h0 is None else h0.contiguous()
        y, hn = torch.func.functional_call(module, params, (X, state))
        t_b = y.shape[:2]
        y = y.reshape(*t_b, d, H)
        y = y.permute(0, 2, 1, 3) if not layout else y  # [T, D, B, H] or [B, T, D, H]
        if op == "LSTM":
            hn, cn = hn
            return (y, hn.transpose(0, 1) if layout else hn, cn.transpose(0, 1) if layout else cn)
        return y, hn.transpose(0, 1) if layout else hn

    return fn


def _spec_fn(op: str, attrs: dict, lens: np.ndarray | None = None):
    """torch_fn written from the ONNX operator spec (layout 0): peepholes, clip, input_forget, lengths."""
    d = 2 if attrs.get("direction") == "bidirectional" else 1
    clip, lbr = attrs.get("clip"), attrs.get("linear_before_reset", 0)

    def act(f, v):
        return f(v.clamp(-clip, clip) if clip is not None else v)

    def fn(X, W, R, B=None, initial_h=None, initial_c=None, P=None):
        t_len, bsz = X.shape[:2]
        zeros = torch.zeros(d, bsz, H, dtype=X.dtype)
        h0 = initial_h if initial_h is not None else zeros
        c0 = initial_c if initial_c is not None else zeros
        length = torch.tensor(lens if lens is not None else [t_len] * bsz)
        ys, hs, cs = [], [], []
        for k in range(d):
            reverse = attrs.get("direction") == "reverse" or k == 1
            g = GATES[op]
            wb, rb = (B[k][: g * H], B[k][g * H:]) if B is not None else (0, 0)
            h, c, out = h0[k], c0[k], [None] * t_len
            for t in (reversed(range(t_len)) if reverse else range(t_len)):
                m = (t < length).to(X.dtype)[:, None]
                xw, hr = X[t] @ W[k].T + wb, h @ R[k].T + rb
                if op == "RNN":
                    hn, cn = act(torch.tanh, xw + hr), c
                elif op == "LSTM":
                    xi, xo, xf, xc = torch.split(xw + hr, H, -1)
                    pi, po, pf = torch.split(P[k], H) if P is not None else (0, 0, 0)
                    i = act(torch.sigmoid, xi + pi * c)
                    f = 1 - i if attrs.get("input_forget") else act(torch.sigmoid, xf + pf * c)
                    cn = f * c + i * act(torch.tanh, xc)
                    hn = act(torch.sigmoid, xo + po * cn) * torch.tanh(cn)
                else:
                    xz, xr, xh = torch.split(xw, H, -1)
                    hz, hr_, hh = torch.split(hr, H, -1)
                    z, r = act(torch.sigmoid, xz + hz), act(torch.sigmoid, xr + hr_)
                    if lbr:
                        n = act(torch.tanh, xh + r * hh)
                    else:
                        rbh = rb[2 * H:] if B is not None else 0
                        n = act(torch.tanh, xh + (r * h) @ R[k][2 * H:].T + rbh)
                    hn, cn = (1 - z) * n + z * h, c
                out[t] = m * hn
                h, c = h + m * (hn - h), c + m * (cn - c)
            ys.append(torch.stack(out))
            hs.append(h)
            cs.append(c)
        y, y_h, y_c = torch.stack(ys, 1), torch.stack(hs), torch.stack(cs)
        return (y, y_h, y_c) if op == "LSTM" else (y, y_h)

    return fn


SIZES = [(3, 2), (5, 3)]  # (sequence length, batch): one graph for both
ALL = {"LSTM": ["X", "W", "R", "B", "initial_h", "initial_c"], "GRU": ["X", "W", "R", "B", "initial_h"],
       "RNN": ["X", "W", "R", "B", "initial_h"]}

MODULE_CASES = [
    ("LSTM", {}, ALL["LSTM"]),
    ("LSTM", {"direction": "bidirectional"}, ALL["LSTM"]),
    ("GRU", {"linear_before_reset": 1}, ALL["GRU"]),
    ("GRU", {"linear_before_reset": 1, "direction": "bidirectional"}, ["X", "W", "R", "B"]),
    ("RNN", {}, ALL["RNN"]),
    ("RNN", {"direction": "bidirectional"}, ALL["RNN"]),
]


@pytest.mark.parametrize("op,attrs,present", MODULE_CASES,
                         ids=[f"{o}-{'-'.join(f'{k}{v}' for k, v in a.items())}" for o, a, _ in MODULE_CASES])
def test_matches_torch_modules(op, attrs, present):
    run_model(lambda dt: _model(op, dt, attrs, present), _draw(op, attrs, present), present, sizes=SIZES,
              torch_fn=_torch_module_fn(op, attrs), name=op)


SPEC_CASES = [
    ("LSTM", {"direction": "bidirectional"}, ALL["LSTM"] + ["P"]),  # peepholes
    ("GRU", {}, ALL["GRU"]),  # linear_before_reset=0 (torch's GRU has no such mode)
    ("GRU", {"direction": "reverse"}, ["X", "W", "R", "B"]),
    ("LSTM", {"direction": "reverse"}, ["X", "W", "R"]),  # torch has no reverse-only LSTM
]


@pytest.mark.parametrize("op,attrs,present", SPEC_CASES,
                         ids=["lstm-peepholes", "gru-lbr0", "gru-lbr0-reverse", "lstm-reverse"])
def test_matches_spec(op, attrs, present):
    run_model(lambda dt: _model(op, dt, attrs, present), _draw(op, attrs, present), present, sizes=SIZES,
              torch_fn=_spec_fn(op, attrs), name=op)


ORT_CASES = [
    ("LSTM", {"direction": "bidirectional"}, np.array([3, 1, 2])),
    ("LSTM", {"clip": 0.7, "input_forget": 1}, None),
    ("GRU", {"direction": "bidirectional", "clip": 0.8}, np.array([2, 3, 1])),
    ("GRU", {"linear_before_reset": 1, "direction": "reverse"}, np.array([1, 3, 2])),
    ("RNN", {"direction": "reverse"}, np.array([3, 2, 2])),
]


@pytest.mark.parametrize("op,attrs,lens", ORT_CASES,
                         ids=["lstm-lens", "lstm-clip-forget", "gru-lens-clip", "gru-lbr1-lens", "rnn-lens"])
@needs_torch
def test_lengths_clip_input_forget_against_onnxruntime(op, attrs, lens):
    """What ONNX's reference evaluator ignores: the fused forward in onnxruntime agrees with the spec loop
    in torch, and our gradient graph (run by onnxruntime, float32) agrees with torch.autograd on it."""
    present = ALL[op]
    rng = np.random.default_rng(7)
    feeds64 = _draw(op, attrs, present)(rng, (3, 3))
    model = check_full(_model(op, TensorProto.FLOAT, attrs, present, lens))
    outs = [o.name for o in model.graph.output]
    grad = check_full(gradient_model(upstream_wrapped(model, outs), LOSS, present))
    tensors = {n: torch.tensor(v, requires_grad=True) for n, v in feeds64.items()}
    expected = _spec_fn(op, attrs, lens)(**tensors)
    upstream = {o: rng.standard_normal(e.shape) for o, e in zip(outs, expected)}
    feeds = {n: v.astype(np.float32) for n, v in feeds64.items()}
    fused = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(outs, feeds)
    for o, got, e in zip(outs, fused, expected):
        np.testing.assert_allclose(got, e.detach().numpy(), rtol=1e-4, atol=1e-5, err_msg=f"{op} forward {o}")
    session = ort.InferenceSession(grad.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds.update({f"__upstream_{o}": u.astype(np.float32) for o, u in upstream.items()})
    got = session.run([f"{n}_grad" for n in present], feeds)
    want = torch.autograd.grad(list(expected), [tensors[n] for n in present],
                               grad_outputs=[torch.tensor(upstream[o]) for o in outs])
    for n, g, w in zip(present, got, want):
        np.testing.assert_allclose(g, w.numpy(), rtol=2e-3, atol=2e-4, err_msg=f"{op} gradient of {n}")


def test_non_default_activations_are_refused():
    model = _model("RNN", TensorProto.FLOAT, {"activations": ["Relu"]}, ["X", "W", "R"])
    with pytest.raises(GradientError, match="activations"):
        gradient_model(upstream_wrapped(model, ["Y"]), LOSS, ["W"])


LAYOUT1_CASES = [
    ("LSTM", {"direction": "bidirectional", "layout": 1}, ALL["LSTM"]),
    ("GRU", {"linear_before_reset": 1, "layout": 1}, ALL["GRU"]),
    ("RNN", {"direction": "bidirectional", "layout": 1}, ALL["RNN"]),
]


@pytest.mark.parametrize("op,attrs,present", LAYOUT1_CASES, ids=["lstm", "gru", "rnn"])
@needs_torch
def test_batch_major_layout(op, attrs, present):
    """layout=1 (what batch_first modules may export): onnxruntime's CPU kernels refuse it, so finite
    differences (reference evaluator, float64) and torch.autograd on ``batch_first`` modules only."""
    model = check_full(_model(op, TensorProto.DOUBLE, attrs, present))
    fn, rng = _torch_module_fn(op, attrs), np.random.default_rng(3)
    for k, size in enumerate(SIZES):
        inputs = _draw(op, attrs, present)(rng, size)
        result = check_gradients(model, inputs, present, seed=k)
        check_full(result.gradient_model)
        tensors = {n: torch.tensor(v, requires_grad=True) for n, v in inputs.items()}
        outs = [o.name for o in model.graph.output]
        expected = fn(**tensors)
        for o, e in zip(outs, expected):
            np.testing.assert_allclose(result.outputs[o], e.detach().numpy(), rtol=1e-6, atol=1e-8)
        want = torch.autograd.grad(list(expected), [tensors[n] for n in present],
                                   grad_outputs=[torch.tensor(result.upstream[o]) for o in outs])
        for n, w in zip(present, want):
            np.testing.assert_allclose(result.gradients[n], w.numpy(), rtol=1e-6, atol=1e-8,
                                       err_msg=f"{op} layout=1: gradient of {n}")


class _SeqClassifier(torch.nn.Module):
    """A batch-first LSTM (torch exports it as Transpose -> LSTM) read at its last step, then a Linear."""

    def __init__(self):
        super().__init__()
        self.lstm, self.fc = torch.nn.LSTM(3, 5, batch_first=True), torch.nn.Linear(5, 2)

    def forward(self, x):
        y, _ = self.lstm(x)
        return self.fc(y[:, -1])


@needs_torch
def test_exported_lstm_trains_like_torch():
    """from_torch(nn.LSTM model): three SGD steps in onnxruntime give torch's losses and weights."""
    import copy

    import onnxforge
    from exporters.torch_exporter import from_torch, to_torch_state_dict

    torch.manual_seed(0)
    net = _SeqClassifier()
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 4, 3)).astype(np.float32), rng.integers(0, 2, 8)
    model = from_torch(net, torch.from_numpy(x[:2]))
    assert {"lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.bias_ih_l0"} <= {v.name for v in model.trainable_weights}
    model.compile(optimizer=onnxforge.optimizers.SGD(0.5),
                  loss=onnxforge.losses.SparseCategoricalCrossentropy(from_logits=True))
    ref = copy.deepcopy(net)
    opt = torch.optim.SGD(ref.parameters(), lr=0.5)
    ours, theirs = [], []
    for _ in range(3):
        model.reset_metrics()
        ours.append(model.train_on_batch(x, y))
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(ref(torch.from_numpy(x)), torch.from_numpy(y))
        loss.backward()
        opt.step()
        theirs.append(loss.item())
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)
    assert theirs[-1] < theirs[0]
    trained = to_torch_state_dict(model)
    for name, value in ref.state_dict().items():
        np.testing.assert_allclose(trained[name].numpy(), value.numpy(), rtol=1e-4, atol=2e-6, err_msg=name)
    for program in model.compiled_programs.values():
        check_full(program.model)
