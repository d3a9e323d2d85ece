"""Ops differentiated through their ONNX definition (function ops without a rule of their own):
RMSNormalization and RotaryEmbedding (opset 23), Swish (24), GroupNormalization (21) and any other
function op. Finite differences, torch and onnxruntime, as for every rule."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxforge.autodiff import gradient_model
from onnxforge.autodiff.registry import lookup
from tests.autodiff.harness import F, Case, run_case, torch  # torch, F: optional oracle
from tests.conftest import check_full

RNG = np.random.default_rng(7)
COS, SIN = np.cos(RNG.uniform(0, 3, (6, 4))), np.sin(RNG.uniform(0, 3, (6, 4)))
POSITIONS = np.array([[0, 2, 5], [1, 1, 3]], np.int64)


def _rope(x, cos, sin, pos, interleaved=False, rot=None):
    """torch's reading of the ONNX RotaryEmbedding spec, for 4D (B, heads, S, head) inputs."""
    x = x.transpose(1, 2)
    rot = rot or x.shape[-1]
    c, s = cos[pos].unsqueeze(2), sin[pos].unsqueeze(2)
    xr, keep = x[..., :rot], x[..., rot:]
    x1, x2 = (xr[..., 0::2], xr[..., 1::2]) if interleaved else xr.chunk(2, -1)
    real, imag = c * x1 - s * x2, s * x1 + c * x2
    out = torch.stack([real, imag], -1).reshape(xr.shape) if interleaved else torch.cat([real, imag], -1)
    return torch.cat([out, keep], -1).transpose(1, 2)


CASES = [
    # RMSNormalization's statistics are float32 by its spec (stash_type=1; onnx's reference runs nothing
    # else): torch's float64 differs at ~1e-5 relative. Epsilons are powers of two, exact in float32.
    Case("RMSNormalization", [("N", 3, 8), (8,)], {"epsilon": 2.0 ** -16}, torch_rtol=1e-4,
         torch_fn=lambda x, w: F.rms_norm(x, (8,), w, eps=2.0 ** -16), opset=23, name="RMSNormalization"),
    Case("RMSNormalization", [("N", 3, 4), (3, 4)], {"axis": 1, "epsilon": 2.0 ** -10}, torch_rtol=1e-4,
         torch_fn=lambda x, w: F.rms_norm(x, (3, 4), w, eps=2.0 ** -10), opset=23, name="RMSNormalization_axis1"),
    # stash_type=DOUBLE: float32 statistics would drown the float64 finite differences.
    Case("Swish", [("N", 5)], {"alpha": 1.5}, torch_fn=lambda x: x * torch.sigmoid(1.5 * x), opset=24),
    Case("GroupNormalization", [("N", 4, 3), (4,), (4,)], {"num_groups": 2, "epsilon": 2.0 ** -16,
                                                          "stash_type": TensorProto.DOUBLE},
         torch_fn=lambda x, w, b: F.group_norm(x, 2, w, b, eps=2.0 ** -16), name="GroupNormalization"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_gradient(case):
    assert lookup(case.op) is None  # differentiated through its definition, not a rule
    run_case(case)


@pytest.mark.parametrize("attrs,width", [({}, 8), ({"interleaved": 1, "rotary_embedding_dim": 8}, 12)],
                         ids=["halves", "interleaved_partial"])
def test_rotary_embedding(attrs, width):
    # RotaryEmbedding has float32 / float16 / bfloat16 kernels only: no float64 finite differences. It is
    # linear in x, so float32 onnxruntime against torch.autograd is tight; the forward of its definition is
    # checked against onnxruntime's own RotaryEmbedding kernel.
    node = helper.make_node("RotaryEmbedding", ["x", "cos", "sin", "pos"], ["y"], **attrs)
    node2 = helper.make_node("ReduceSum", ["yu"], ["loss"], keepdims=0)
    mul = helper.make_node("Mul", ["y", "u"], ["yu"])
    f32 = TensorProto.FLOAT
    g = helper.make_graph([node, mul, node2], "rope", [helper.make_tensor_value_info("x", f32, ["N", 2, 3, width]),
                                                       helper.make_tensor_value_info("u", f32, ["N", 2, 3, width])],
                          [helper.make_tensor_value_info("y", f32, ["N", 2, 3, width]),
                           helper.make_tensor_value_info("loss", f32, [])],
                          initializer=[numpy_helper.from_array(COS.astype(np.float32), "cos"),
                                       numpy_helper.from_array(SIN.astype(np.float32), "sin"),
                                       numpy_helper.from_array(POSITIONS, "pos")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 23)], ir_version=11)
    grad = check_full(gradient_model(model, "loss", ["x"]))
    assert "RotaryEmbedding" not in {n.op_type for n in grad.graph.node}
    rng = np.random.default_rng(0)
    x, u = (rng.standard_normal((2, 2, 3, width)).astype(np.float32) for _ in range(2))
    native = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(["y"], {"x": x, "u": u})
    y, dx = ort.InferenceSession(grad.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        ["y", "x_grad"], {"x": x, "u": u})
    np.testing.assert_allclose(y, native[0], rtol=1e-5, atol=1e-6)
    if torch:
        tx = torch.tensor(x, requires_grad=True)
        out = _rope(tx, torch.tensor(COS, dtype=torch.float32), torch.tensor(SIN, dtype=torch.float32),
                    torch.tensor(POSITIONS), bool(attrs), attrs.get("rotary_embedding_dim"))
        np.testing.assert_allclose(out.detach().numpy(), y, rtol=1e-5, atol=1e-6)
        (out * torch.tensor(u)).sum().backward()
        np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_the_definition_replaces_the_node_only_where_a_gradient_flows():
    nodes = [helper.make_node("Swish", ["x"], ["a"]), helper.make_node("Swish", ["c"], ["b"]),
             helper.make_node("Add", ["a", "b"], ["y"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, [3]) for n in "xc"],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 24)], ir_version=12)
    grad = check_full(gradient_model(model, "y", ["x"]))
    assert [n.op_type for n in grad.graph.node].count("Swish") == 1  # c's Swish stays as it was


def _conv_with_exported_zero_bias(dtype: int = TensorProto.FLOAT) -> "onnx.ModelProto":
    """A Conv whose missing bias is written as torch's default exporter writes it:
    ``Expand(CastLike(0, activation), Shape(weight)[:1])``, then a Relu and a sum."""
    np_dtype = helper.tensor_dtype_to_np_dtype(dtype)
    nodes = [
        helper.make_node("Relu", ["x"], ["act"]),
        helper.make_node("Constant", [], ["zero"], value=numpy_helper.from_array(np.zeros((), np.float32))),
        helper.make_node("CastLike", ["zero", "act"], ["zero_like"]),
        helper.make_node("Shape", ["w"], ["channels"], start=0, end=1),
        helper.make_node("Expand", ["zero_like", "channels"], ["bias"]),
        helper.make_node("Conv", ["act", "w", "bias"], ["y"], pads=[1, 1, 1, 1]),
        helper.make_node("ReduceSum", ["y"], ["loss"], keepdims=0),
    ]
    w = numpy_helper.from_array(np.random.default_rng(3).normal(size=(4, 3, 3, 3)).astype(np_dtype), "w")
    graph = helper.make_graph(nodes, "exported_conv", [helper.make_tensor_value_info("x", dtype, [2, 3, 5, 5])],
                              [helper.make_tensor_value_info("loss", dtype, [])], initializer=[w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


@pytest.mark.parametrize("dtype", [TensorProto.FLOAT, TensorProto.DOUBLE])
def test_cast_like_of_a_known_type_becomes_a_cast_that_onnxruntime_folds(dtype, tmp_path):
    """No CastLike is left; the Cast takes the type from the graph; onnxruntime folds the zero bias into a
    constant (what lets it pick its NCHWc Conv); the gradients are the same as with a stored zero bias."""
    model = _conv_with_exported_zero_bias(dtype)
    grads = check_full(gradient_model(model, "loss", ["x", "w"]))
    casts = [n for n in grads.graph.node if n.op_type in ("Cast", "CastLike")]
    assert [(n.op_type, n.attribute[0].i) for n in casts[:1]] == [("Cast", dtype)]
    if dtype != TensorProto.FLOAT:
        return  # onnxruntime's CPU provider has no float64 Conv

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    session = ort.InferenceSession(grads.SerializeToString(), options, providers=["CPUExecutionProvider"])
    import onnx
    optimized = onnx.load(options.optimized_model_filepath)
    constants = {t.name for t in optimized.graph.initializer}
    conv = next(n for n in optimized.graph.node if n.op_type == "Conv" and n.input[0] == "act")
    assert len(conv.input) < 3 or conv.input[2] in constants, "the zero bias was not folded"

    x = RNG.normal(size=(2, 3, 5, 5)).astype(helper.tensor_dtype_to_np_dtype(dtype))
    stored = _conv_with_exported_zero_bias(dtype)
    del stored.graph.node[1:5]
    stored.graph.initializer.append(numpy_helper.from_array(np.zeros(4, x.dtype), "bias"))
    want = ort.InferenceSession(gradient_model(stored, "loss", ["x", "w"]).SerializeToString(),
                                providers=["CPUExecutionProvider"]).run(["x_grad", "w_grad"], {"x": x})
    got = session.run(["x_grad", "w_grad"], {"x": x})
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6)
