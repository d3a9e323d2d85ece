"""Bidirectional and TimeDistributed: values and gradients against torch transcriptions of Keras 3."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from onnxforge.layers import Dense, Input
from onnxforge.layers.recurrent import GRU, LSTM, Bidirectional, SimpleRNN, TimeDistributed
from tests.layers.test_recurrent import (SIZES, _float64_torch,  # noqa: F401 (autouse fixture)
                                         _random_mask, build, close, feeds_for, keras_rnn, randomize,
                                         torch_weights)


def _merge(mode, y, y_rev):
    if mode == "concat":
        return [torch.cat([y, y_rev], -1)]
    if mode == "sum":
        return [y + y_rev]
    if mode == "ave":
        return [(y + y_rev) / 2]
    if mode == "mul":
        return [y * y_rev]
    return [y, y_rev]


def _bidirectional_reference(kind, layer, x, mask, return_sequences, merge_mode, init=None):
    """Keras 3 ``Bidirectional.call``: forward layer, backward layer (``go_backwards``), flip, merge."""
    u = layer.forward_layer.cell.units
    wf, wb = torch_weights(layer.forward_layer), torch_weights(layer.backward_layer)
    zero = return_sequences and mask is not None  # Bidirectional forces zero_output_for_mask
    fi, bi = (None, None) if init is None else (init[: len(init) // 2], init[len(init) // 2:])
    y, sf = keras_rnn(kind, {"units": u}, wf, x, mask=mask, init=fi, return_sequences=return_sequences,
                      zero_output=zero)
    y_rev, sb = keras_rnn(kind, {"units": u}, wb, x, mask=mask, init=bi, go_backwards=True,
                          return_sequences=return_sequences, zero_output=zero)
    if return_sequences:
        y_rev = y_rev.flip(1)
    return _merge(merge_mode, y, y_rev), sf + sb, (wf, wb)


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "ave", "mul", None])
def test_bidirectional_merge_modes_with_mask(merge_mode, rng):
    F, u = 3, 4
    layer = Bidirectional(LSTM(u, return_sequences=True), merge_mode=merge_mode)
    graph = build(layer, F, mask=True)
    randomize(layer, rng)
    for batch, time in SIZES:
        x = rng.standard_normal((batch, time, F)).astype(np.float32)
        m = _random_mask(rng, batch, time)
        width = 2 * u if merge_mode == "concat" else u
        gys = [rng.standard_normal((batch, time, width)) for _ in range(2 if merge_mode is None else 1)]
        out = graph.run(feeds_for(graph, x, mask=m, gys=gys))
        xt = torch.tensor(x.astype(np.float64), requires_grad=True)
        refs, _, (wf, wb) = _bidirectional_reference("lstm", layer, xt, torch.tensor(m), True, merge_mode)
        sum((r * torch.tensor(g)).sum() for r, g in zip(refs, gys)).backward()
        for k, r in enumerate(refs):
            close(out[f"y{k}"], r, what=f"output {k}")
        for sub, w in ((layer.forward_layer, wf), (layer.backward_layer, wb)):
            for name, t in w.items():
                close(out[graph.grads[getattr(sub.cell, name).path]], t.grad, what=f"{sub.name} d{name}")
        close(out[graph.grads["x"]], xt.grad, what="dx")


def test_bidirectional_return_state_and_initial_state(rng):
    F, u = 3, 2
    layer = Bidirectional(GRU(u, return_state=True))
    graph = build(layer, F, states=[u, u])
    randomize(layer, rng)
    for batch, time in SIZES:
        x = rng.standard_normal((batch, time, F)).astype(np.float32)
        s0 = [rng.standard_normal((batch, u)).astype(np.float32) for _ in range(2)]
        gys = [rng.standard_normal((batch, 2 * u)), rng.standard_normal((batch, u)), rng.standard_normal((batch, u))]
        out = graph.run(feeds_for(graph, x, states=s0, gys=gys))
        st = [torch.tensor(s.astype(np.float64), requires_grad=True) for s in s0]
        refs, states, (wf, wb) = _bidirectional_reference("gru", layer, torch.tensor(x.astype(np.float64)), None,
                                                          False, "concat", init=st)
        allrefs = refs + states
        sum((r * torch.tensor(g)).sum() for r, g in zip(allrefs, gys)).backward()
        assert len(graph.outputs) == 3
        for k, r in enumerate(allrefs):
            close(out[f"y{k}"], r, what=f"output {k}")
        for k, s in enumerate(st):
            close(out[graph.grads[f"s{k}"]], s.grad, what=f"d initial_state[{k}]")
        close(out[graph.grads[layer.backward_layer.cell.recurrent_kernel.path]], wb["recurrent_kernel"].grad)


@pytest.mark.parametrize("inner", [lambda: LSTM(3, return_sequences=True), lambda: GRU(3, return_sequences=True),
                                   lambda: SimpleRNN(3)])
def test_bidirectional_fused_equals_scan(inner, rng):
    layer = Bidirectional(inner())
    fused = build(layer, 2, training=False, grads=False, weights="initializers")
    assert fused.count("Scan") == 0
    layer.fused = False
    scanned = build(layer, 2, training=False, grads=False, weights="initializers")
    assert scanned.count("Scan") == 2
    for batch, time in SIZES:
        x = rng.standard_normal((batch, time, 2)).astype(np.float32)
        close(fused.run(feeds_for(fused, x))["y0"], scanned.run(feeds_for(scanned, x))["y0"], rtol=1e-5, atol=1e-6)


def test_bidirectional_contract():
    layer = Bidirectional(LSTM(4, return_sequences=True, name="lstm"), name="bi")
    out = layer(Input(shape=(None, 3)))
    assert out.shape == (None, None, 8)
    assert [w.path for w in layer.weights][:2] == ["bi/forward_lstm/lstm_cell/kernel",
                                                    "bi/forward_lstm/lstm_cell/recurrent_kernel"]
    assert layer.weights[3].path == "bi/backward_lstm/lstm_cell/kernel"
    assert layer.backward_layer.go_backwards and not layer.forward_layer.go_backwards
    assert layer.count_params() == 2 * (3 * 16 + 4 * 16 + 16)
    config = layer.get_config()
    clone = Bidirectional.from_config(config)
    assert clone.merge_mode == "concat" and clone.backward_layer.go_backwards
    outs = Bidirectional(GRU(2, return_state=True), merge_mode=None)(Input(shape=(5, 3)))
    assert [o.shape for o in outs] == [(None, 2), (None, 2), (None, 2), (None, 2)]
    with pytest.raises(ValueError, match="merge mode"):
        Bidirectional(LSTM(2), merge_mode="max")
    with pytest.raises(ValueError, match="go_backwards"):
        Bidirectional(LSTM(2), backward_layer=LSTM(2))
    with pytest.raises(ValueError, match="return_sequences"):
        Bidirectional(LSTM(2), backward_layer=LSTM(2, go_backwards=True, return_sequences=True))


def test_bidirectional_initial_weights(rng):
    probe = Bidirectional(SimpleRNN(2))
    probe.build((None, None, 3))
    weights = [rng.standard_normal(w.shape).astype(np.float32) for w in probe.get_weights()]
    layer = Bidirectional(SimpleRNN(2), weights=weights)
    layer.build((None, None, 3))
    for a, b in zip(layer.get_weights(), weights):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- TimeDistributed
def test_time_distributed_dense_values_and_gradients(rng):
    F, u = 3, 5
    dense = Dense(u, activation="tanh")
    layer = TimeDistributed(dense, name="td")
    graph = build(layer, F)
    randomize(layer, rng)
    assert [w.path.split("/", 2)[::2] for w in layer.weights] == [["td", "kernel"], ["td", "bias"]]
    for batch, time in SIZES:
        x = rng.standard_normal((batch, time, F)).astype(np.float32)
        gy = rng.standard_normal((batch, time, u))
        out = graph.run(feeds_for(graph, x, gys=[gy]))
        K = torch.tensor(dense.kernel.numpy().astype(np.float64), requires_grad=True)
        b = torch.tensor(dense.bias.numpy().astype(np.float64), requires_grad=True)
        y = torch.tanh(torch.tensor(x.astype(np.float64)) @ K + b)
        (y * torch.tensor(gy)).sum().backward()
        close(out["y0"], y)
        close(out[graph.grads[dense.kernel.path]], K.grad)
        close(out[graph.grads[dense.bias.path]], b.grad)


def test_time_distributed_then_lstm_keeps_the_mask(rng):
    """A mask passes through TimeDistributed to the next recurrent layer."""
    from onnxforge.layers.recurrent import Masking, get_keras_mask

    masking, td, lstm = Masking(), TimeDistributed(Dense(4)), LSTM(3)

    class Stack:
        def __call__(self, x):
            y = td(masking(x))
            assert get_keras_mask(y) is not None
            return lstm(y)

    graph = build(Stack(), 2, grads=False)
    randomize(lstm, rng)
    x = rng.standard_normal((2, 4, 2)).astype(np.float32)
    x[1, 2:] = 0
    out = graph.run(feeds_for(graph, x))["y0"]
    h = torch.tensor(x.astype(np.float64)) @ torch.tensor(td.layer.kernel.numpy().astype(np.float64))
    h = h + torch.tensor(td.layer.bias.numpy().astype(np.float64))
    ref, _ = keras_rnn("lstm", {"units": 3}, torch_weights(lstm), h, mask=torch.tensor((x != 0).any(-1)))
    close(out, ref)


def test_time_distributed_contract():
    td = TimeDistributed(Dense(5))
    assert td(Input(shape=(None, 3))).shape == (None, None, 5)
    assert TimeDistributed(Dense(2)).compute_output_shape((None, 7, 4)) == (None, 7, 2)
    clone = TimeDistributed.from_config(td.get_config())
    assert isinstance(clone.layer, Dense) and clone.layer.units == 5
    with pytest.raises(ValueError, match="at least 3 dimensions"):
        TimeDistributed(Dense(2)).build((None, 3))
    with pytest.raises(ValueError, match="Layer` instance"):
        TimeDistributed("dense")


def test_return_state_and_unmerged_outputs_are_tuples_as_in_keras():
    from tests.saving.keras_oracle import keras
    import onnxforge as of

    x = np.linspace(-1, 1, 24, dtype="float32").reshape(2, 3, 4)

    def structures(ns):
        L = ns.layers
        makers = [lambda: L.LSTM(2, return_state=True),
                  lambda: L.RNN([L.LSTMCell(2), L.GRUCell(3)], return_state=True),
                  lambda: L.Bidirectional(L.GRU(2), merge_mode=None),
                  lambda: L.Bidirectional(L.LSTM(2, return_state=True))]
        eager = [type(make()(x)).__name__ for make in makers]
        symbolic = [type(make()(ns.Input((3, 4)))).__name__ for make in makers]
        return eager, symbolic

    assert structures(of.keras) == structures(keras)
    a, b = of.keras.layers.Bidirectional(of.keras.layers.GRU(2), merge_mode=None)(of.keras.Input((3, 4)))
    assert a.shape == b.shape == (None, 2)
