"""float64 graphs run on onnxruntime's CPU provider: ops it has no float64 kernel for are computed in
float32 between Casts by the builder. The list is checked against the installed onnxruntime both ways."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from onnxforge.graph import DEFAULT_OPSET, GraphBuilder
from onnxforge.graph.builder import NO_FLOAT64_KERNEL
from tests.conftest import check_full

D, F, I64 = TensorProto.DOUBLE, TensorProto.FLOAT, TensorProto.INT64

# op: (input types, output types, attributes), the data inputs typed D.
SIGNATURES = {
    "Conv": ([D, D], [D], {}), "ConvTranspose": ([D, D], [D], {}), "AveragePool": ([D], [D], {"kernel_shape": [2]}),
    "GlobalAveragePool": ([D], [D], {}), "GlobalMaxPool": ([D], [D], {}), "LpPool": ([D], [D], {"kernel_shape": [2]}),
    "LRN": ([D], [D], {"size": 3}), "InstanceNormalization": ([D, D, D], [D], {}),
    "RNN": ([D, D, D], [D, D], {"hidden_size": 2}), "LSTM": ([D, D, D], [D], {"hidden_size": 2}),
    "GRU": ([D, D, D], [D], {"hidden_size": 2}), "MaxUnpool": ([D, I64], [D], {"kernel_shape": [2]}),
    "OneHot": ([I64, I64, D], [D], {}), "Resize": ([D, F, F], [D], {}), "Hardmax": ([D], [D], {}),
    "Erf": ([D], [D], {}), "NonZero": ([D], [I64], {}), "Mean": ([D, D], [D], {}),
    **{op: ([D], [D], {}) for op in ("Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh",
                                     "Elu", "Selu", "LeakyRelu", "ThresholdedRelu", "HardSigmoid", "HardSwish",
                                     "Softplus", "Softsign", "Mish")},
    "PRelu": ([D, D], [D], {}),
    # Controls: float64 kernels exist, so these must not be in the list.
    "MatMul": ([D, D], [D], {}), "MaxPool": ([D], [D], {"kernel_shape": [2]}), "Softmax": ([D], [D], {}),
    "BatchNormalization": ([D] * 5, [D], {}), "Exp": ([D], [D], {}), "Sqrt": ([D], [D], {}),
    "Relu": ([D], [D], {}), "Sigmoid": ([D], [D], {}), "Tanh": ([D], [D], {}), "Cos": ([D], [D], {}),
}


def _loads(op: str) -> bool:
    ins, outs, attrs = SIGNATURES[op]
    node = helper.make_node(op, [f"x{i}" for i in range(len(ins))], [f"y{i}" for i in range(len(outs))], **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(f"x{i}", t, None) for i, t in enumerate(ins)],
                              [helper.make_tensor_value_info(f"y{i}", t, None) for i, t in enumerate(outs)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", DEFAULT_OPSET)])
    model.ir_version = 10
    try:
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - onnxruntime's own exception types
        assert "NOT_IMPLEMENTED" in str(e), str(e)
        return False
    if op in RUN_FEEDS:   # kernels that load but refuse float64 when run
        try:
            sess.run(None, dict(zip([f"x{i}" for i in range(len(ins))], RUN_FEEDS[op])))
        except Exception as e:  # noqa: BLE001
            assert "does not support double" in str(e), str(e)
            return False
    return True


_ONES = np.ones
RUN_FEEDS = {"LSTM": [_ONES((3, 1, 2)), _ONES((1, 8, 2)), _ONES((1, 8, 2))],
             "GRU": [_ONES((3, 1, 2)), _ONES((1, 6, 2)), _ONES((1, 6, 2))]}


@pytest.mark.parametrize("op", sorted(SIGNATURES))
def test_the_list_matches_onnxruntime(op):
    assert _loads(op) == (op not in NO_FLOAT64_KERNEL)


def test_a_float64_conv_runs_in_float32_between_casts_and_is_recorded():
    b = GraphBuilder(float32_fallback=True)
    x = b.input("x", D, ("batch", 2, 5, 5))
    w = b.const(np.random.default_rng(0).normal(size=(3, 2, 3, 3)))   # float64
    y = b.op("Conv", [x, w], name="y", pads=[1, 1, 1, 1])
    assert y.name == "y" and y.dtype == D
    assert b.float32_fallbacks == [("Conv", D)]
    b.output(y)
    model = check_full(b.to_model())
    assert [n.op_type for n in model.graph.node] == ["Cast", "Cast", "Conv", "Cast"]
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    xs = np.random.default_rng(1).normal(size=(2, 2, 5, 5))
    out = sess.run(["y"], {"x": xs})[0]
    assert out.dtype == np.float64
    import torch

    expected = torch.nn.functional.conv2d(torch.tensor(xs), torch.tensor(onnx.numpy_helper.to_array(
        b.initializers[w.name])), padding=1).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_float32_graphs_and_builders_without_the_fallback_are_untouched():
    b = GraphBuilder(float32_fallback=True)
    x = b.input("x", F, ("batch", 2, 5, 5))
    b.op("Conv", [x, b.const(np.ones((3, 2, 3, 3), np.float32))])
    assert b.float32_fallbacks == [] and [n.op_type for n in b.nodes] == ["Conv"]
    b = GraphBuilder()   # graphs for other runtimes, float64 gradient checks: exact float64 ops
    x = b.input("x", D, ("batch", 2, 5, 5))
    b.op("Conv", [x, b.const(np.ones((3, 2, 3, 3)))])
    assert b.float32_fallbacks == [] and [n.op_type for n in b.nodes] == ["Conv"]


def test_float16_reducing_scatters_run_in_float32():
    """onnxruntime's CPU ScatterND / ScatterElements refuse float16 with reduction='add' when run."""
    H = TensorProto.FLOAT16
    b = GraphBuilder(float32_fallback=True)
    data = b.input("data", H, (4, 2))
    upd = b.input("upd", H, (2, 2))
    y = b.op("ScatterND", [data, b.const(np.array([[0], [0]], np.int64)), upd], reduction="add", name="y")
    plain = b.op("ScatterND", [data, b.const(np.array([[1]], np.int64)), upd[:1]], name="plain")
    assert b.float32_fallbacks == [("ScatterND", H)] and y.dtype == H and plain.dtype == H
    b.output(y)
    b.output(plain)
    sess = ort.InferenceSession(check_full(b.to_model()).SerializeToString(), providers=["CPUExecutionProvider"])
    out = sess.run(["y"], {"data": np.zeros((4, 2), np.float16), "upd": np.ones((2, 2), np.float16)})[0]
    assert out.dtype == np.float16
    np.testing.assert_array_equal(out, [[2, 2], [0, 0], [0, 0], [0, 0]])
