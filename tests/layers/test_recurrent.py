"""Recurrent layers: forward values and parameter gradients against PyTorch, from one graph per case.

Each case traces a layer once (symbolic batch and sequence length), differentiates ``sum(outputs * g)``
(random upstream gradients ``g``) with onnxforge's autodiff, and runs the graph in onnxruntime at two
batch sizes and two lengths. References: ``torch.nn.LSTM`` / ``GRU`` / ``RNN`` with converted weights,
and for everything they cannot express (masks, go_backwards, reset_after=False, dropout masks,
zero_output_for_mask) a step-by-step torch transcription of Keras 3's cells and ``backend.rnn`` loop,
itself checked against the torch modules.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from onnxforge.autodiff.engine import backward
from onnxforge.graph import GraphBuilder, Value
from onnxforge.layers import Embedding, Input
from onnxforge.layers.recurrent import (GRU, LSTM, RNN, GRUCell, LSTMCell, Masking, SimpleRNN, SimpleRNNCell,
                                        get_keras_mask)
from onnxforge.tracing import TraceContext
from tests.conftest import check_full

F32, BOOL = onnx.TensorProto.FLOAT, onnx.TensorProto.BOOL
SIZES = [(2, 3), (3, 5)]  # (batch, time): two lengths and two batch sizes through one graph


@pytest.fixture(autouse=True)
def _float64_torch():
    """The references run in float64; restore torch's default so other test modules are unaffected."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


# ---------------------------------------------------------------------------------------- harness
@dataclass
class Graph:
    """A layer traced once, with the gradients of ``sum(outputs * g)`` as extra outputs."""

    model: onnx.ModelProto
    weights: list[Any]                      # Variables, in read order
    outputs: list[str]
    grads: dict[str, str]                   # what -> graph output ("x", "s0", variable name)
    noise: list[tuple[str, tuple]] = field(default_factory=list)
    _sess: Any = None

    def count(self, op: str) -> int:
        return sum(n.op_type == op for n in self.model.graph.node)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._sess is None:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            self._sess = ort.InferenceSession(self.model.SerializeToString(), opts,
                                              providers=["CPUExecutionProvider"])
        names = [o.name for o in self.model.graph.output]
        feeds = {k: v for k, v in feeds.items() if k in {i.name for i in self.model.graph.input}}
        return dict(zip(names, self._sess.run(names, feeds)))


def build(layer: Any, features: int, *, training: bool = True, grads: bool = True, mask: bool = False,
          states: list[int] | None = None, weights: str = "inputs", ids: bool = False) -> Graph:
    """Trace ``layer`` on ``x (batch, time, features)`` (+ ``mask``, ``initial_state`` inputs)."""
    b = GraphBuilder()
    noise: list[tuple[str, tuple]] = []

    def random_uniform(like: Value) -> Value:
        name = f"noise_{len(noise)}"
        noise.append((name, like.shape))
        return b.input(name, F32, like.shape)

    ctx = TraceContext(b, training=training, weights=weights, random_uniform=random_uniform)
    with ctx.active():
        if ids:
            x = b.input("x", onnx.TensorProto.INT64, ("batch", "time"))
        else:
            x = b.input("x", F32, ("batch", "time", features))
        kwargs: dict[str, Any] = {}
        if mask:
            kwargs["mask"] = b.input("mask", BOOL, ("batch", "time"))
        state_in = [b.input(f"s{k}", F32, ("batch", n)) for k, n in enumerate(states or [])]
        if states:
            kwargs["initial_state"] = state_in
        out = layer(x, **kwargs)
        outs = list(out) if isinstance(out, (list, tuple)) else [out]
        names = []
        for k, o in enumerate(outs):
            names.append(f"y{k}")
            b.output(o, f"y{k}")
        grad_names: dict[str, str] = {}
        if grads:
            terms = []
            for k, o in enumerate(outs):
                g = b.input(f"g{k}", F32, o.shape)
                terms.append(b.op("ReduceSum", [o * g], keepdims=0, shape=()))
            loss = terms[0] if len(terms) == 1 else b.op("Sum", terms, shape=())
            wrt = {var.path: v for var, v in ctx.reads.values()}
            if not ids:
                wrt["x"] = x
            wrt.update({f"s{k}": s for k, s in enumerate(state_in)})
            got = backward(b, loss, list(wrt.values()))
            for what, v in wrt.items():
                g = got[v.name]
                g.dtype, g.shape = v.dtype, v.shape
                grad_names[what] = f"grad_{len(grad_names)}"
                b.output(g, grad_names[what])
    model = check_full(b.to_model())
    return Graph(model, [var for var, _ in ctx.reads.values()], names, grad_names, noise)


def feeds_for(graph: Graph, x: np.ndarray, *, mask=None, states=(), gys=(), noise=()) -> dict[str, np.ndarray]:
    feeds = {"x": x}
    if mask is not None:
        feeds["mask"] = mask
    feeds.update({f"s{k}": s.astype(np.float32) for k, s in enumerate(states)})
    feeds.update({f"g{k}": g.astype(np.float32) for k, g in enumerate(gys)})
    feeds.update({name: n.astype(np.float32) for (name, _), n in zip(graph.noise, noise)})
    for var in graph.weights:
        feeds[var.path] = var.numpy()
    return feeds


def randomize(layer: Any, rng: np.random.Generator, scale: float = 0.5) -> None:
    layer.set_weights([rng.uniform(-scale, scale, w.shape).astype(np.float32) for w in layer.get_weights()])


# ------------------------------------------------------------------------- Keras 3 in torch
def _act(name: str):
    return {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu, "linear": lambda v: v}[name]


def keras_cell_step(kind: str, cfg: dict, w: dict, x, states, in_mask, rec_mask):
    """One Keras 3 cell step (``LSTMCell.call`` / ``GRUCell.call`` / ``SimpleRNNCell.call``)."""
    act, ract = _act(cfg.get("activation", "tanh")), _act(cfg.get("recurrent_activation", "sigmoid"))
    u = cfg["units"]
    K, R, bias = w["kernel"], w["recurrent_kernel"], w.get("bias")
    if kind == "simple":
        xin = x if in_mask is None else x * in_mask
        h = xin @ K + (bias if bias is not None else 0)
        prev = states[0] if rec_mask is None else states[0] * rec_mask
        out = act(h + prev @ R)
        return out, [out]
    per_gate = cfg.get("recurrent_dropout", 0.0) > 0  # Keras implementation 1
    gates = 4 if kind == "lstm" else 3
    if kind == "lstm":
        h, c = states
        if not per_gate:
            xin = x if in_mask is None else x * in_mask
            z = xin @ K + h @ R + (bias if bias is not None else 0)
            zi, zf, zc, zo = z.split(u, dim=1)
        else:
            xs = [x * in_mask[g] if in_mask is not None else x for g in range(4)]
            hs = [h * rec_mask[g] if rec_mask is not None else h for g in range(4)]
            zi, zf, zc, zo = [xs[g] @ K[:, g * u:(g + 1) * u] + (bias[g * u:(g + 1) * u] if bias is not None else 0)
                              + hs[g] @ R[:, g * u:(g + 1) * u] for g in range(4)]
        c_new = ract(zf) * c + ract(zi) * act(zc)
        h_new = ract(zo) * act(c_new)
        return h_new, [h_new, c_new]
    h = states[0]
    reset_after = cfg.get("reset_after", True)
    if bias is None:
        ib = rb = None
    elif reset_after:
        ib, rb = bias[0], bias[1]
    else:
        ib, rb = bias, None
    if not per_gate:
        xin = x if in_mask is None else x * in_mask
        mx = xin @ K + (ib if ib is not None else 0)
        xz, xr, xh = mx.split(u, dim=1)
        if reset_after:
            inner = h @ R + (rb if rb is not None else 0)
        else:
            inner = h @ R[:, :2 * u]
        rz, rr = inner[:, :u], inner[:, u:2 * u]
        z, r = ract(xz + rz), ract(xr + rr)
        rh = r * inner[:, 2 * u:] if reset_after else (r * h) @ R[:, 2 * u:]
        hh = act(xh + rh)
    else:
        xs = [x * in_mask[g] if in_mask is not None else x for g in range(3)]
        hs = [h * rec_mask[g] for g in range(3)]
        xz, xr, xh = [xs[g] @ K[:, g * u:(g + 1) * u] + (ib[g * u:(g + 1) * u] if ib is not None else 0)
                      for g in range(3)]
        rz, rr = hs[0] @ R[:, :u], hs[1] @ R[:, u:2 * u]
        if reset_after and rb is not None:
            rz, rr = rz + rb[:u], rr + rb[u:2 * u]
        z, r = ract(xz + rz), ract(xr + rr)
        if reset_after:
            rh = hs[2] @ R[:, 2 * u:] + (rb[2 * u:] if rb is not None else 0)
            rh = r * rh
        else:
            rh = (r * hs[2]) @ R[:, 2 * u:]
        hh = act(xh + rh)
    h_new = z * h + (1 - z) * hh
    return h_new, [h_new]


def keras_rnn(kind: str, cfg: dict, w: dict, x, *, mask=None, init=None, go_backwards=False,
              return_sequences=False, zero_output=False, in_mask=None, rec_mask=None, step=None):
    """Keras 3 ``RNN.call`` + ``backend.rnn``: returns ``(output, final states)``."""
    batch, time = x.shape[:2]
    n_states = 2 if kind == "lstm" else 1
    states = list(init) if init is not None else [torch.zeros(batch, cfg["units"]) for _ in range(n_states)]
    if go_backwards:
        x = x.flip(1)
        mask = None if mask is None else mask.flip(1)
    prev = torch.zeros(batch, cfg["units"])
    ys = []
    for t in range(time):
        if step is None:
            out, new = keras_cell_step(kind, cfg, w, x[:, t], states, in_mask, rec_mask)
        else:
            out, new = step(x[:, t], states)
        if mask is not None:
            m = mask[:, t, None]
            new = [torch.where(m, n, s) for n, s in zip(new, states)]
            y = out * m if zero_output else torch.where(m, out, prev)
            prev = torch.where(m, out, prev)
        else:
            y = prev = out
        states = new
        ys.append(y)
    last = prev
    if zero_output and mask is not None:
        last = last * mask[:, -1, None]
    return (torch.stack(ys, 1) if return_sequences else last), states


def torch_weights(layer: Any) -> dict[str, torch.Tensor]:
    cell = layer.cell
    out = {"kernel": cell.kernel.numpy(), "recurrent_kernel": cell.recurrent_kernel.numpy()}
    if cell.bias is not None:
        out["bias"] = cell.bias.numpy()
    return {k: torch.tensor(v.astype(np.float64), requires_grad=True) for k, v in out.items()}


def grad_of(graph: Graph, layer: Any, what: str) -> str:
    return graph.grads[getattr(layer.cell, what).path]


def close(a, b, rtol=2e-4, atol=2e-5, what=""):
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else b
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=what)


# -------------------------------------------------------------- against torch.nn modules
def _to_torch_module(layer: Any, kind: str, features: int) -> torch.nn.Module:
    cell = layer.cell
    u = cell.units
    K, R, B = cell.kernel.numpy(), cell.recurrent_kernel.numpy(), cell.bias.numpy()
    if kind == "lstm":  # torch gates i, f, g, o == Keras i, f, c, o
        mod = torch.nn.LSTM(features, u, batch_first=True)
        w_ih, w_hh, b_ih, b_hh = K.T, R.T, B, np.zeros_like(B)
    elif kind == "gru":  # torch r, z, n; Keras z, r, h; torch's n gate == Keras reset_after=True
        order = np.r_[u:2 * u, 0:u, 2 * u:3 * u]
        mod = torch.nn.GRU(features, u, batch_first=True)
        w_ih, w_hh, b_ih, b_hh = K[:, order].T, R[:, order].T, B[0][order], B[1][order]
    else:
        mod = torch.nn.RNN(features, u, batch_first=True)
        w_ih, w_hh, b_ih, b_hh = K.T, R.T, B, np.zeros_like(B)
    with torch.no_grad():
        for name, v in (("weight_ih_l0", w_ih), ("weight_hh_l0", w_hh), ("bias_ih_l0", b_ih), ("bias_hh_l0", b_hh)):
            getattr(mod, name).copy_(torch.tensor(np.ascontiguousarray(v)))
    return mod


def _module_grads_keras(mod: torch.nn.Module, kind: str, u: int) -> dict[str, np.ndarray]:
    """The module's parameter gradients in Keras layouts."""
    g = {n: p.grad.numpy() for n, p in mod.named_parameters()}
    if kind == "gru":
        back = np.r_[u:2 * u, 0:u, 2 * u:3 * u]  # the same swap of the first two blocks undoes itself
        return {"kernel": g["weight_ih_l0"].T[:, back], "recurrent_kernel": g["weight_hh_l0"].T[:, back],
                "bias": np.stack([g["bias_ih_l0"][back], g["bias_hh_l0"][back]])}
    # one Keras bias receives both torch biases' gradients (they are equal)
    return {"kernel": g["weight_ih_l0"].T, "recurrent_kernel": g["weight_hh_l0"].T, "bias": g["bias_ih_l0"]}


@pytest.mark.parametrize("kind", ["lstm", "gru", "simple"])
def test_forward_and_gradients_equal_torch_modules(kind, rng):
    F, u = 3, 4
    cls = {"lstm": LSTM, "gru": GRU, "simple": SimpleRNN}[kind]
    layer = cls(u, return_sequences=True, return_state=True)
    n_states = 2 if kind == "lstm" else 1
    graph = build(layer, F, states=[u] * n_states)
    assert graph.count("Scan") == 2 and graph.count("LSTM") == 0  # forward and backward loops
    randomize(layer, rng)
    mod = _to_torch_module(layer, kind, F)
    for batch, time in SIZES:
        x = rng.standard_normal((batch, time, F)).astype(np.float32)
        s0 = [rng.standard_normal((batch, u)).astype(np.float32) * 0.5 for _ in range(n_states)]
        gys = [rng.standard_normal((batch, time, u))] + [rng.standard_normal((batch, u)) for _ in range(n_states)]
        out = graph.run(feeds_for(graph, x, states=s0, gys=gys))

        mod.zero_grad()
        xt = torch.tensor(x.astype(np.float64), requires_grad=True)
        st = [torch.tensor(s.astype(np.float64)[None], requires_grad=True) for s in s0]
        y, hn = mod(xt, tuple(st) if kind == "lstm" else st[0])
        finals = [h[0] for h in (hn if kind == "lstm" else (hn,))]
        loss = sum((o * torch.tensor(g)).sum() for o, g in zip([y, *finals], gys))
        loss.backward()
        for k, ref in enumerate([y, *finals]):
            close(out[f"y{k}"], ref, what=f"output {k} at {(batch, time)}")
        for what, ref in _module_grads_keras(mod, kind, u).items():
            close(out[grad_of(graph, layer, what)], ref, what=f"d{what} at {(batch, time)}")
        close(out[graph.grads["x"]], xt.grad, what="dx")
        for k, s in enumerate(st):
            close(out[graph.grads[f"s{k}"]], s.grad[0], what=f"d initial_state[{k}]")


def test_keras_reference_equals_torch_modules(rng):
    """The step-by-step Keras transcription used below agrees with torch's own modules."""
    for kind in ("lstm", "gru", "simple"):
        cls = {"lstm": LSTM, "gru": GRU, "simple": SimpleRNN}[kind]
        layer = cls(3, return_sequences=True)
        layer.build((None, None, 2))
        randomize(layer, rng)
        x = torch.tensor(rng.standard_normal((2, 4, 2)))
        y_ref, _ = keras_rnn(kind, {"units": 3}, torch_weights(layer), x, return_sequences=True)
        y_mod, _ = _to_torch_module(layer, kind, 2)(x)
        close(y_ref.detach().numpy(), y_mod, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------- configurations torch.nn cannot express
CASES = [
    # (name, kind, layer kwargs, mask, initial state)
    ("lstm_backwards_last", "lstm", dict(go_backwards=True), False, False),
    ("gru_reset_before", "gru", dict(reset_after=False, return_sequences=True), False, False),
    ("simple_relu_nobias", "simple", dict(activation="relu", use_bias=False, return_sequences=True), False, False),
    ("gru_nobias", "gru", dict(use_bias=False, return_sequences=True, go_backwards=True), False, False),
    ("lstm_mask_state", "lstm", dict(return_sequences=True, return_state=True), True, True),
    ("gru_mask_last", "gru", dict(), True, False),
    ("lstm_mask_zero_output_backwards", "lstm", dict(return_sequences=True, zero_output_for_mask=True,
                                                       go_backwards=True), True, False),
    ("simple_mask_backwards_state", "simple", dict(return_sequences=True, go_backwards=True), True, True),
    ("gru_reset_before_mask", "gru", dict(reset_after=False, return_state=True), True, False),
]


def _layer(kind: str, units: int, kwargs: dict) -> Any:
    rnn_args = {k: kwargs[k] for k in ("zero_output_for_mask",) if k in kwargs}
    cell_kw = {k: v for k, v in kwargs.items() if k not in rnn_args}
    if not rnn_args:
        return {"lstm": LSTM, "gru": GRU, "simple": SimpleRNN}[kind](units, **cell_kw)
    seq_args = {k: cell_kw.pop(k) for k in ("return_sequences", "return_state", "go_backwards") if k in cell_kw}
    cell = {"lstm": LSTMCell, "gru": GRUCell, "simple": SimpleRNNCell}[kind](units, **cell_kw)
    return RNN(cell, **seq_args, **rnn_args)


def _random_mask(rng, batch: int, time: int) -> np.ndarray:
    mask = rng.random((batch, time)) > 0.35
    mask[0, :] = True            # a full row
    mask[-1, 0] = False          # a leading masked step (the first "previous output" is zeros)
    mask[-1, -1] = False         # a trailing one (zero_output_for_mask zeroes the last output)
    return mask


def check_against_keras(graph: Graph, layer: Any, kind: str, cfg: dict, rng, *, F: int, mask: bool,
                        n_states: int, go_backwards: bool, return_sequences: bool, return_state: bool,
                        zero_output: bool = False, noise_fn=None, sizes=SIZES) -> None:
    u = cfg["units"]
    for batch, time in sizes:
        x = rng.standard_normal((batch, time, F)).astype(np.float32)
        m = _random_mask(rng, batch, time) if mask else None
        s0 = [rng.standard_normal((batch, u)).astype(np.float32) for _ in range(n_states)]
        noise = noise_fn(batch) if noise_fn else []
        out_shape = (batch, time, u) if return_sequences else (batch, u)
        gys = [rng.standard_normal(out_shape)]
        if return_state:
            gys += [rng.standard_normal((batch, u)) for _ in range(2 if kind == "lstm" else 1)]
        out = graph.run(feeds_for(graph, x, mask=m, states=s0, gys=gys, noise=noise))

        w = torch_weights(layer)
        xt = torch.tensor(x.astype(np.float64), requires_grad=True)
        st = [torch.tensor(s.astype(np.float64), requires_grad=True) for s in s0] or None
        masks = {}
        if noise:
            masks = _keras_dropout_masks(cfg, noise)
        y, finals = keras_rnn(kind, cfg, w, xt, mask=None if m is None else torch.tensor(m), init=st,
                              go_backwards=go_backwards, return_sequences=return_sequences,
                              zero_output=zero_output, **masks)
        refs = [y, *finals] if return_state else [y]
        loss = sum((r * torch.tensor(g)).sum() for r, g in zip(refs, gys))
        loss.backward()
        for k, ref in enumerate(refs):
            close(out[f"y{k}"], ref, what=f"output {k} at {(batch, time)}")
        for name, t in w.items():
            close(out[grad_of(graph, layer, name)], t.grad, what=f"d{name} at {(batch, time)}")
        close(out[graph.grads["x"]], xt.grad, what="dx")
        for k, s in enumerate(st or []):
            close(out[graph.grads[f"s{k}"]], s.grad, what=f"d initial_state[{k}]")


@pytest.mark.parametrize("name,kind,kwargs,mask,state", CASES, ids=[c[0] for c in CASES])
def test_keras_semantics(name, kind, kwargs, mask, state, rng):
    F, u = 3, 4
    layer = _layer(kind, u, kwargs)
    n_states = 2 if kind == "lstm" else 1
    graph = build(layer, F, mask=mask, states=[u] * n_states if state else None)
    randomize(layer, rng)
    cfg = {"units": u, **{k: v for k, v in kwargs.items()
                          if k in ("activation", "reset_after", "recurrent_dropout")}}
    check_against_keras(graph, layer, kind, cfg, rng, F=F, mask=mask, n_states=n_states if state else 0,
                        go_backwards=kwargs.get("go_backwards", False),
                        return_sequences=kwargs.get("return_sequences", False),
                        return_state=kwargs.get("return_state", False),
                        zero_output=kwargs.get("zero_output_for_mask", False))


# --------------------------------------------------------------------------------- dropout
def _keras_dropout_masks(cfg: dict, noise: list[np.ndarray]) -> dict:
    """The masks Keras draws, from the same uniforms the graph read (input mask first)."""
    out, k = {}, 0
    for key, rate in (("in_mask", cfg.get("dropout", 0.0)), ("rec_mask", cfg.get("recurrent_dropout", 0.0))):
        if 0 < rate < 1:
            out[key] = torch.tensor((noise[k] >= rate).astype(np.float64) / (1 - rate))
            k += 1
    return out


DROPOUT = [
    ("lstm_both", "lstm", dict(dropout=0.3, recurrent_dropout=0.4, return_sequences=True)),  # implementation 1
    ("lstm_input", "lstm", dict(dropout=0.5)),
    ("gru_input", "gru", dict(dropout=0.3, return_sequences=True)),
    ("gru_both", "gru", dict(dropout=0.2, recurrent_dropout=0.5)),
    ("gru_reset_before_both", "gru", dict(dropout=0.2, recurrent_dropout=0.5, reset_after=False)),
    ("simple_both", "simple", dict(dropout=0.4, recurrent_dropout=0.4, return_sequences=True)),
]


@pytest.mark.parametrize("name,kind,kwargs", DROPOUT, ids=[d[0] for d in DROPOUT])
def test_dropout_masks_fixed_across_time(name, kind, kwargs, rng):
    F, u = 3, 4
    layer = _layer(kind, u, kwargs)
    graph = build(layer, F)
    expected = sum(0 < kwargs.get(k, 0) < 1 for k in ("dropout", "recurrent_dropout"))
    assert len(graph.noise) == expected
    randomize(layer, rng)
    gates = {"lstm": 4, "gru": 3, "simple": 1}[kind]
    per_gate = kwargs.get("recurrent_dropout", 0) > 0 and gates > 1

    def noise_fn(batch):
        shapes = []
        if 0 < kwargs.get("dropout", 0) < 1:
            shapes.append((F,))
        if 0 < kwargs.get("recurrent_dropout", 0) < 1:
            shapes.append((u,))
        return [rng.random(((gates,) if per_gate else ()) + (batch,) + s) for s in shapes]

    cfg = {"units": u, **{k: v for k, v in kwargs.items() if k in ("reset_after", "dropout", "recurrent_dropout")}}
    check_against_keras(graph, layer, kind, cfg, rng, F=F, mask=False, n_states=0, go_backwards=False,
                        return_sequences=kwargs.get("return_sequences", False), return_state=False,
                        noise_fn=noise_fn)


def test_no_dropout_in_inference(rng):
    layer = LSTM(3, dropout=0.5, recurrent_dropout=0.5)
    graph = build(layer, 2, training=False, grads=False)
    assert not graph.noise


# ------------------------------------------------------------------------ generic cells
def _minimal_cell_class():
    """The custom cell of Keras's RNN docstring, as an onnxforge layer."""
    from onnxforge.layers import Layer

    class Minimal(Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.state_size = units

        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(input_shape[-1], self.units), initializer="uniform", name="kernel")
            self.recurrent_kernel = self.add_weight(shape=(self.units, self.units), initializer="uniform",
                                                    name="recurrent_kernel")

        def call(self, inputs, states):
            output = inputs @ self.kernel + states[0] @ self.recurrent_kernel
            return output, [output]

    return Minimal


def test_generic_cell_with_mask(rng):
    F, u = 3, 4
    cell = _minimal_cell_class()(u)
    layer = RNN(cell, return_sequences=True)
    graph = build(layer, F, mask=True)
    randomize(layer, rng)
    for batch, time in SIZES:
        x = rng.standard_normal((batch, time, F)).astype(np.float32)
        m = _random_mask(rng, batch, time)
        gy = rng.standard_normal((batch, time, u))
        out = graph.run(feeds_for(graph, x, mask=m, gys=[gy]))
        K = torch.tensor(cell.kernel.numpy().astype(np.float64), requires_grad=True)
        R = torch.tensor(cell.recurrent_kernel.numpy().astype(np.float64), requires_grad=True)

        def step(x_t, states):
            o = x_t @ K + states[0] @ R
            return o, [o]
        y, _ = keras_rnn("simple", {"units": u}, {}, torch.tensor(x.astype(np.float64)), mask=torch.tensor(m),
                         return_sequences=True, step=step)
        (y * torch.tensor(gy)).sum().backward()
        close(out["y0"], y)
        close(out[graph.grads[cell.kernel.path]], K.grad)
        close(out[graph.grads[cell.recurrent_kernel.path]], R.grad)


# ------------------------------------------------------------------- masks from layers
def test_embedding_mask_zero_and_masking_layer(rng):
    """Embedding(mask_zero=True).compute_mask feeds an LSTM's mask; Masking's mask travels by itself."""
    vocab, F, u = 6, 3, 4
    emb = Embedding(vocab, F, mask_zero=True)
    lstm = LSTM(u, return_sequences=True)

    class Pipeline:
        def __call__(self, ids):
            return lstm(emb(ids), mask=emb.compute_mask(ids))

    graph = build(Pipeline(), F, ids=True)
    randomize(lstm, rng)
    for batch, time in SIZES:
        ids = rng.integers(1, vocab, (batch, time))
        ids[-1, -2:] = 0
        ids[0, 1] = 0
        gy = rng.standard_normal((batch, time, u))
        out = graph.run(feeds_for(graph, ids, gys=[gy]))
        w = torch_weights(lstm)
        x = torch.tensor(emb.embeddings.numpy()[ids].astype(np.float64))
        y, _ = keras_rnn("lstm", {"units": u}, w, x, mask=torch.tensor(ids != 0), return_sequences=True)
        (y * torch.tensor(gy)).sum().backward()
        close(out["y0"], y)
        close(out[grad_of(graph, lstm, "recurrent_kernel")], w["recurrent_kernel"].grad)

    # Masking: the mask is attached to its output and read by the next recurrent layer.
    masking, gru = Masking(0.0), GRU(u, return_sequences=True)

    class Masked:
        def __call__(self, x):
            y = masking(x)
            assert get_keras_mask(y) is not None
            out = gru(y)
            assert get_keras_mask(out) is not None  # return_sequences passes the mask on
            return out

    graph = build(Masked(), F)
    randomize(gru, rng)
    batch, time = 3, 5
    x = rng.standard_normal((batch, time, F)).astype(np.float32)
    x[1, 2:] = 0.0
    x[2, 0] = 0.0
    gy = rng.standard_normal((batch, time, u))
    out = graph.run(feeds_for(graph, x, gys=[gy]))
    w = torch_weights(gru)
    xt = torch.tensor(x.astype(np.float64), requires_grad=True)
    y, _ = keras_rnn("gru", {"units": u}, w, xt, mask=torch.tensor((x != 0).any(-1)), return_sequences=True)
    (y * torch.tensor(gy)).sum().backward()
    close(out["y0"], y)
    close(out[graph.grads["x"]], xt.grad)
    close(out[grad_of(graph, gru, "kernel")], w["kernel"].grad)


# -------------------------------------------------------------------- fused inference form
FUSED = [
    ("lstm", LSTM, dict(return_sequences=True, return_state=True), True),
    ("lstm_backwards", LSTM, dict(go_backwards=True, return_sequences=True), False),
    ("gru", GRU, dict(return_sequences=True, return_state=True), True),
    ("gru_reset_before_backwards", GRU, dict(reset_after=False, go_backwards=True), False),
    ("gru_nobias", GRU, dict(use_bias=False, return_sequences=True), False),
    ("simple", SimpleRNN, dict(return_sequences=True, go_backwards=True), True),
    ("simple_relu", SimpleRNN, dict(activation="relu", return_state=True), False),
]


@pytest.mark.parametrize("name,cls,kwargs,state", FUSED, ids=[f[0] for f in FUSED])
def test_fused_form_equals_scan_form(name, cls, kwargs, state, rng):
    F, u = 3, 4
    layer = cls(u, **kwargs)
    n_states = 2 if cls is LSTM else 1
    states = [u] * n_states if state else None
    fused = build(layer, F, training=False, grads=False, states=states, weights="initializers")
    op = {LSTM: "LSTM", GRU: "GRU", SimpleRNN: "RNN"}[cls]
    assert fused.count(op) == 1 and fused.count("Scan") == 0
    layer.fused = False
    randomize(layer, rng)  # after the fused trace: its initializers hold the old values
    scanned = build(layer, F, training=False, grads=False, states=states, weights="initializers")
    fused = build(_refused(layer), F, training=False, grads=False, states=states, weights="initializers")
    assert scanned.count("Scan") == 1 and scanned.count(op) == 0
    for batch, time in SIZES:
        x = rng.standard_normal((batch, time, F)).astype(np.float32)
        s0 = [rng.standard_normal((batch, u)).astype(np.float32) for _ in range(n_states if state else 0)]
        a, b = fused.run(feeds_for(fused, x, states=s0)), scanned.run(feeds_for(scanned, x, states=s0))
        assert a.keys() == b.keys()
        for k in a:
            close(a[k], b[k], rtol=1e-5, atol=1e-6, what=k)


def _refused(layer):
    layer.fused = None
    return layer


def test_fused_refusals():
    layer = LSTM(3, activation="softsign")
    layer.fused = True
    with pytest.raises(ValueError, match="softsign"):
        build(layer, 2, training=False, grads=False)
    layer.fused = None
    assert build(layer, 2, training=False, grads=False).count("Scan") == 1  # falls back silently
    masked = GRU(3)
    masked.fused = True
    with pytest.raises(ValueError, match="mask"):
        build(masked, 2, training=False, grads=False, mask=True)


# --------------------------------------------------------------------------- layer contract
def test_weights_layouts_names_and_initializers():
    lstm = LSTM(4, name="enc")
    lstm.build((None, None, 3))
    assert [w.path for w in lstm.weights] == ["enc/lstm_cell/kernel", "enc/lstm_cell/recurrent_kernel",
                                             "enc/lstm_cell/bias"]
    assert [tuple(w.shape) for w in lstm.weights] == [(3, 16), (4, 16), (16,)]
    bias = lstm.cell.bias.numpy()
    assert np.all(bias[4:8] == 1) and np.all(bias[:4] == 0) and np.all(bias[8:] == 0)  # unit_forget_bias
    r = lstm.cell.recurrent_kernel.numpy()
    np.testing.assert_allclose(r @ r.T, np.eye(4), atol=1e-5)  # orthogonal: rows of (4, 16)
    gru = GRU(4)
    gru.build((None, 5, 3))
    assert [tuple(w.shape) for w in gru.weights] == [(3, 12), (4, 12), (2, 12)]
    gru0 = GRU(4, reset_after=False)
    gru0.build((None, 5, 3))
    assert tuple(gru0.cell.bias.shape) == (12,)
    simple = SimpleRNN(5, use_bias=False)
    simple.build((None, 2, 3))
    assert [tuple(w.shape) for w in simple.weights] == [(3, 5), (5, 5)]
    assert simple.count_params() == 40
    assert lstm.units == 4 and lstm.activation is lstm.cell.activation


@pytest.mark.parametrize("make", [
    lambda: LSTM(3, dropout=0.1, return_sequences=True, go_backwards=True, unit_forget_bias=False),
    lambda: GRU(2, reset_after=False, recurrent_activation="relu", return_state=True),
    lambda: SimpleRNN(4, activation="relu", use_bias=False),
    lambda: RNN(LSTMCell(3), zero_output_for_mask=True, return_sequences=True),
    lambda: Masking(mask_value=-1.0),
])
def test_config_round_trip(make):
    layer = make()
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config


def test_symbolic_shapes():
    x = Input(shape=(None, 3))
    assert LSTM(4)(x).shape == (None, 4)
    out, h, c = LSTM(4, return_sequences=True, return_state=True)(x)
    assert (out.shape, h.shape, c.shape) == ((None, None, 4), (None, 4), (None, 4))
    assert GRU(2, return_sequences=True)(Input(shape=(7, 3))).shape == (None, 7, 2)


# --------------------------------------------------------------------------------- errors
def _trace_raw(layer, x_shape, **kwargs):
    b = GraphBuilder()
    ctx = TraceContext(b, training=True)
    with ctx.active():
        x = b.input("x", F32, x_shape)
        extra = {}
        if "mask_shape" in kwargs:
            extra["mask"] = b.input("mask", BOOL, kwargs.pop("mask_shape"))
        if "state_shapes" in kwargs:
            extra["initial_state"] = [b.input(f"s{k}", F32, s) for k, s in enumerate(kwargs.pop("state_shapes"))]
        return layer(x, **extra)


def test_errors_name_the_layer():
    with pytest.raises(ValueError, match=r'"rank_check".*ndim=3'):
        _trace_raw(LSTM(3, name="rank_check"), ("batch", 4))
    with pytest.raises(ValueError, match=r"zero_len.*zero-length"):
        _trace_raw(GRU(3, name="zero_len"), ("batch", 0, 2))
    with pytest.raises(ValueError, match=r"mask_rank.*\(batch, timesteps\)"):
        _trace_raw(LSTM(3, name="mask_rank"), ("batch", "time", 2), mask_shape=("batch", "time", 1))
    with pytest.raises(ValueError, match=r"mask_len.*timesteps dim \(4\)"):
        _trace_raw(LSTM(3, name="mask_len"), ("batch", 5, 2), mask_shape=("batch", 4))
    with pytest.raises(ValueError, match=r"n_states.*2 initial state"):
        _trace_raw(LSTM(3, name="n_states"), ("batch", "time", 2), state_shapes=[("batch", 3)])
    with pytest.raises(ValueError, match=r"state_size.*\(batch, 3\)"):
        _trace_raw(GRU(3, name="state_size"), ("batch", "time", 2), state_shapes=[("batch", 4)])
    with pytest.raises(ValueError, match=r"stateful=True.*batch size must be static"):
        LSTM(3, stateful=True).build((None, 5, 2))
    with pytest.raises(ValueError, match=r"units=-3"):
        GRU(-3)
    with pytest.raises(ValueError, match=r"features"):
        LSTM(3).build((None, 5))


def test_regularizers_reach_the_training_loss(rng):
    from onnxforge import regularizers

    layer = LSTM(3, kernel_regularizer=regularizers.L2(0.5), recurrent_regularizer=regularizers.L1(0.25))
    b = GraphBuilder()
    ctx = TraceContext(b, training=True)
    with ctx.active():
        layer(b.input("x", F32, ("batch", "time", 2)))
    assert len(ctx.losses) == 2
    for k, v in enumerate(ctx.losses):
        b.output(v, f"loss{k}")
    model = check_full(b.to_model())
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {v.name: var.numpy() for var, v in ctx.reads.values()}
    feeds["x"] = np.zeros((1, 2, 2), np.float32)
    got = sess.run(None, feeds)
    K, R = layer.cell.kernel.numpy(), layer.cell.recurrent_kernel.numpy()
    np.testing.assert_allclose(sorted(float(g) for g in got),
                               sorted([0.5 * float((K ** 2).sum()), 0.25 * float(np.abs(R).sum())]), rtol=1e-5)


def test_trains_in_a_compiled_model_at_any_length(rng):
    """Sequential([Bidirectional(LSTM), GRU, Dense]) compiles, fits (loss falls) and predicts any length."""
    from onnxforge.layers import Dense
    from onnxforge.layers.recurrent import Bidirectional
    from onnxforge.models import Sequential

    model = Sequential([Input(shape=(None, 3)), Bidirectional(LSTM(8, return_sequences=True)), GRU(4), Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    x = rng.standard_normal((64, 6, 3)).astype(np.float32)
    y = np.tanh(x.sum((1, 2)))[:, None].astype(np.float32)
    history = model.fit(x, y, epochs=4, batch_size=16, verbose=0).history["loss"]
    assert history[-1] < history[0]
    for time in (2, 9):
        assert model.predict(rng.standard_normal((5, time, 3)).astype(np.float32), verbose=0).shape == (5, 1)


@pytest.mark.parametrize("kind", ["lstm", "gru", "simple"])
def test_cell_single_step_call(kind, rng):
    """A built-in cell called alone (Keras's ``cell(inputs, states)``) computes one Keras step."""
    F, u, batch = 3, 4, 2
    cell = {"lstm": LSTMCell, "gru": GRUCell, "simple": SimpleRNNCell}[kind](u)
    n = 2 if kind == "lstm" else 1
    b = GraphBuilder()
    ctx = TraceContext(b, training=False, weights="initializers")
    with ctx.active():
        x = b.input("x", F32, ("batch", F))
        states = [b.input(f"s{k}", F32, ("batch", u)) for k in range(n)]
        out, new = cell(x, states)
        b.output(out, "out")
        for k, s in enumerate(new):
            b.output(s, f"new{k}")
    randomize(cell, rng)
    sess = ort.InferenceSession(check_full(_rebake(b, ctx)).SerializeToString(), providers=["CPUExecutionProvider"])
    xv = rng.standard_normal((batch, F)).astype(np.float32)
    sv = [rng.standard_normal((batch, u)).astype(np.float32) for _ in range(n)]
    got = sess.run(None, {"x": xv, **{f"s{k}": s for k, s in enumerate(sv)}})
    w = {k: torch.tensor(getattr(cell, k).numpy().astype(np.float64)) for k in ("kernel", "recurrent_kernel", "bias")}
    ref_out, ref_new = keras_cell_step(kind, {"units": u}, w, torch.tensor(xv.astype(np.float64)),
                                       [torch.tensor(s.astype(np.float64)) for s in sv], None, None)
    for g, r in zip(got, [ref_out, *ref_new]):
        close(g, r)


def _rebake(b: GraphBuilder, ctx: TraceContext) -> onnx.ModelProto:
    """The model with its weight initializers refreshed from the variables (set after tracing)."""
    model = b.to_model()
    current = {v.name: var.numpy() for var, v in ctx.reads.values()}
    for t in model.graph.initializer:
        if t.name in current:
            t.CopyFrom(onnx.numpy_helper.from_array(current[t.name], t.name))
    return model


def test_python_operator_on_a_masked_keras_tensor_drops_the_mask_as_keras():
    """Keras 3: ``h * 2.0`` on an Embedding(mask_zero=True) output carries no mask, so the RNN after it runs
    every step (the padded ones too); keeping the mask would change the numbers."""
    from tests.saving.keras_oracle import keras
    import onnxforge as of

    def run(ns):
        inp = ns.Input((4,), dtype="int32")
        h = ns.layers.Embedding(10, 2, mask_zero=True, embeddings_initializer="ones")(inp) * 0.5
        out = ns.layers.SimpleRNN(2, kernel_initializer="ones", recurrent_initializer="ones",
                                  return_sequences=True)(h)
        assert getattr(h, "_keras_mask", None) is None
        return np.asarray(ns.Model(inp, out).predict(np.array([[3, 1, 0, 0]]), verbose=0))

    np.testing.assert_allclose(run(of.keras), run(keras), rtol=1e-5, atol=1e-6)
