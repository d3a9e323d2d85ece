"""Gradient case table: the ONNX ``Attention`` op (opset 23 / 24), against finite differences, torch's
``scaled_dot_product_attention`` and onnxruntime, through every attribute and input torch's exporter and
the spec use."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from onnxforge.autodiff import gradient_model
from onnxforge.graph import GraphBuilder
from tests.autodiff.harness import F, Case, run_case, run_model, torch  # torch, F: optional oracle
from tests.conftest import check_full


def _sdpa(**kw):
    return lambda q, k, v, *rest: F.scaled_dot_product_attention(q, k, v, **kw)


def _heads(x, n):  # (B, L, n*H) -> (B, n, L, H)
    return x.reshape(x.shape[0], x.shape[1], n, -1).transpose(1, 2)


def _merge(y):  # (B, n, L, H) -> (B, L, n*H)
    return y.transpose(1, 2).reshape(y.shape[0], y.shape[2], -1)


def _softcapped(q, k, v, cap):
    s = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
    return torch.softmax(cap * torch.tanh(s / cap), -1) @ v


def _with_past(q, k, v, mask, pk, pv):
    # Causal with a cache: query i sees key j <= i + past (bottom-right aligned), keys = past ++ new.
    kk, vv = torch.cat([pk, k], 2), torch.cat([pv, v], 2)
    past, n = pk.shape[2], q.shape[2]
    allowed = torch.ones(n, past + k.shape[2], dtype=torch.bool).tril(diagonal=past)
    return F.scaled_dot_product_attention(q, kk, vv, attn_mask=allowed), kk, vv


def _nonpad(q, k, v, lengths):
    allowed = torch.arange(k.shape[2])[None, :] < lengths[:, None]
    return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed[:, None, None, :])


MASK = np.array([[[[1, 0, 1, 1, 0], [1, 1, 0, 0, 1], [0, 1, 1, 1, 1]]]], dtype=bool)
FULLY_MASKED_ROW = MASK.copy()
FULLY_MASKED_ROW[..., 1, :] = False

Q, K, V = ("N", 2, 3, 4), ("N", 2, 5, 4), ("N", 2, 5, 6)
CASES = [
    Case("Attention", [Q, K, V], torch_fn=_sdpa(), opset=23, name="basic"),
    Case("Attention", [Q, K, V], {"scale": 0.25}, torch_fn=_sdpa(scale=0.25), opset=23, name="scale"),
    Case("Attention", [Q, ("N", 2, 3, 4), ("N", 2, 3, 6)], {"is_causal": 1}, torch_fn=_sdpa(is_causal=True),
         opset=23, name="causal"),
    Case("Attention", [Q, K, V, MASK], torch_fn=lambda q, k, v, m: F.scaled_dot_product_attention(
        q, k, v, attn_mask=m), opset=23, name="bool_mask"),
    Case("Attention", [Q, K, V, (1, 2, 3, 5)], torch_fn=lambda q, k, v, m: F.scaled_dot_product_attention(
        q, k, v, attn_mask=m), opset=23, name="float_mask_trained"),
    Case("Attention", [Q, K, V, FULLY_MASKED_ROW], torch_fn=lambda q, k, v, m: F.scaled_dot_product_attention(
        q, k, v, attn_mask=m), opset=23, name="fully_masked_row"),
    # onnx-ad 0.3 expands Attention with its scale through float32: it differs at 1e-8 from the float64 math.
    Case("Attention", [("N", 4, 3, 4), K, V], torch_fn=_sdpa(enable_gqa=True), opset=23, name="grouped_query",
         onnx_ad=False),
    Case("Attention", [("N", 3, 8), ("N", 5, 8), ("N", 5, 12)], {"q_num_heads": 2, "kv_num_heads": 2},
         torch_fn=lambda q, k, v: _merge(F.scaled_dot_product_attention(_heads(q, 2), _heads(k, 2), _heads(v, 2))),
         opset=23, name="3d_inputs", onnx_ad=False),
    Case("Attention", [("N", 3, 16), ("N", 5, 8), ("N", 5, 8)], {"q_num_heads": 4, "kv_num_heads": 2},
         torch_fn=lambda q, k, v: _merge(F.scaled_dot_product_attention(_heads(q, 4), _heads(k, 2), _heads(v, 2),
                                                                         enable_gqa=True)),
         opset=23, name="3d_grouped_query"),
    Case("Attention", [Q, ("N", 2, 3, 4), ("N", 2, 3, 6), None, ("N", 2, 2, 4), ("N", 2, 2, 6)], {"is_causal": 1},
         torch_fn=_with_past, outputs=3, opset=23, name="causal_with_past", onnx_ad=False),
    Case("Attention", [Q, K, V], {"softcap": 2.5}, torch_fn=lambda q, k, v: _softcapped(q, k, v, 2.5), opset=23,
         name="softcap"),
    Case("Attention", [Q, K, V, None, None, None, np.array([3, 5], np.int64)], torch_fn=lambda q, k, v, *r: _nonpad(
        q, k, v, r[-1]), opset=24, name="nonpad_kv_seqlen"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_gradient(case):
    if case.id == "nonpad_kv_seqlen":
        # nonpad lengths are per batch element: the symbolic batch is 2 here, fixed by the array.
        case.inputs = [tuple(2 if d == "N" else d for d in s) if isinstance(s, tuple) else s for s in case.inputs]
    run_case(case)


@pytest.mark.parametrize("mode", [0, 1, 2, 3])
def test_qk_matmul_output_modes(mode):
    # The fourth output is differentiable in every mode: scores, softcapped, biased, probabilities. Mode 0
    # runs without softcap: onnx 1.23's reference evaluator returns the softcapped scores there, where the
    # spec and onnxruntime return the raw ones.
    cap = 0.0 if mode == 0 else 3.0

    def make(elem):
        node = helper.make_node("Attention", ["q", "k", "v", "m"], ["y", "", "", "qk"], qk_matmul_output_mode=mode,
                                softcap=cap)
        shapes = {"q": ["N", 2, 3, 4], "k": ["N", 2, 5, 4], "v": ["N", 2, 5, 6], "m": [1, 1, 3, 5]}
        g = helper.make_graph([node], "attention", [helper.make_tensor_value_info(n, elem, s) for n, s in shapes.items()],
                              [helper.make_tensor_value_info("y", elem, ["N", 2, 3, 6]),
                               helper.make_tensor_value_info("qk", elem, ["N", 2, 3, 5])])
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 23)], ir_version=11)

    def draw(rng, n):
        return {"q": rng.standard_normal((n, 2, 3, 4)), "k": rng.standard_normal((n, 2, 5, 4)),
                "v": rng.standard_normal((n, 2, 5, 6)), "m": rng.standard_normal((1, 1, 3, 5))}

    def reference(q, k, v, m):
        s = q @ k.transpose(-1, -2) / 2.0
        capped = cap * torch.tanh(s / cap) if cap else s
        probs = torch.softmax(capped + m, -1)
        return probs @ v, [s, capped, capped + m, probs][mode]

    run_model(make, draw, ["q", "k", "v", "m"], torch_fn=reference, name=f"qk_matmul_output_mode={mode}")


def test_exported_attention_gradient_is_finite_with_padding_rows_float32():
    # A padded query row (no visible key) in float32 through onnxruntime: zero output, zero gradient,
    # and no NaN leaking into K and V through the other rows.
    b = GraphBuilder(opset=23)
    q = b.input("q", TensorProto.FLOAT, (2, 2, 3, 4))
    k = b.input("k", TensorProto.FLOAT, (2, 2, 5, 4))
    v = b.input("v", TensorProto.FLOAT, (2, 2, 5, 4))
    m = b.initializer("m", FULLY_MASKED_ROW)
    y = b.op("Attention", [q, k, v, m])
    b.output(b.op("ReduceSum", [b.op("Mul", [y, y])], keepdims=0), "loss")
    grad = check_full(gradient_model(b.to_model(), "loss", ["q", "k", "v"]))
    assert "Attention" not in {n.op_type for n in grad.graph.node}  # differentiated through its definition
    rng = np.random.default_rng(0)
    feeds = {n: rng.standard_normal(s).astype(np.float32) for n, s in
             (("q", (2, 2, 3, 4)), ("k", (2, 2, 5, 4)), ("v", (2, 2, 5, 4)))}
    out = ort.InferenceSession(grad.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    for g in out[1:]:
        assert np.isfinite(g).all()
    assert np.all(out[1][:, :, 1] == 0)


def test_model_without_opset_23_support_is_refused_clearly():
    node = helper.make_node("Relu", ["x"], ["y"])
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 25)])
    with pytest.raises(ValueError, match="opsets up to 24.*opset 25"):
        gradient_model(model, "y", ["x"])
