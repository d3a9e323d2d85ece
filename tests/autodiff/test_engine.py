"""The reverse walk: accumulation, unconnected values, errors, gradient_model's contract."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from onnxforge.autodiff import GradientError, backward, gradient_model, unbroadcast
from onnxforge.graph import GraphBuilder
from tests.conftest import check_full


def _session(model):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def test_gradients_reaching_a_value_by_several_paths_are_summed():
    b = GraphBuilder()
    x = b.input("x", TensorProto.FLOAT, ("n",))
    y = x * x + b.op("Exp", [x]) + x  # three paths from x
    loss = b.op("ReduceSum", [y], keepdims=0)
    b.output(loss, "loss")
    grads = backward(b, loss, ["x"])
    b.output(grads["x"], "dx")
    model = check_full(b.to_model())
    xv = np.array([0.5, -1.0, 2.0], np.float32)
    dx = _session(model).run(["dx"], {"x": xv})[0]
    np.testing.assert_allclose(dx, 2 * xv + np.exp(xv) + 1, rtol=1e-6)


def test_a_value_the_loss_does_not_depend_on_gets_zeros_of_its_shape():
    b = GraphBuilder()
    x = b.input("x", TensorProto.FLOAT, ("n", 2))
    unused = b.input("u", TensorProto.FLOAT, ("n", 3))
    loss = b.op("ReduceSum", [x], keepdims=0)
    b.output(loss, "loss")
    grads = backward(b, loss, ["x", "u"])
    b.output(grads["u"], "du")
    model = check_full(b.to_model())
    du = _session(model).run(["du"], {"x": np.ones((4, 2), np.float32), "u": np.ones((4, 3), np.float32)})[0]
    assert du.shape == (4, 3) and not du.any()


def test_a_wanted_value_computed_by_the_graph_keeps_its_gradient():
    """wrt may name computed values (a rule asking for its node's inputs): their gradient is returned, not
    pushed further up; one that also feeds another wanted value gets its total gradient."""
    b = GraphBuilder()
    x = b.input("x", TensorProto.FLOAT, ("n",))
    h = b.op("Det", [b.op("Reshape", [x, b.const(np.array([-1, 1, 1], np.int64))])])  # upstream: needs no rule
    w = b.op("Exp", [h])
    loss = b.op("ReduceSum", [w * h], keepdims=0)
    b.output(loss, "loss")
    grads = backward(b, loss, [w.name, h.name])
    b.output(grads[w.name], "dw")
    b.output(grads[h.name], "dh")
    model = check_full(b.to_model())
    xv = np.array([0.5, -1.0, 2.0], np.float32)
    dw, dh = _session(model).run(["dw", "dh"], {"x": xv})
    np.testing.assert_allclose(dw, xv, rtol=1e-6)
    np.testing.assert_allclose(dh, np.exp(xv) * (1 + xv), rtol=1e-6)


def test_missing_rule_names_the_op_the_node_and_the_path_to_the_loss():
    b = GraphBuilder()
    x = b.input("x", TensorProto.FLOAT, (9,))
    hidden = b.op("Exp", [x], name="hidden")
    odd = b.op("Det", [b.op("Reshape", [hidden, b.const(np.array([1, 3, 3], np.int64))])], name="odd")
    loss = b.op("ReduceSum", [odd], keepdims=0, name="loss")
    with pytest.raises(GradientError, match=r"No gradient rule for ONNX op 'Det' \(node 'n_Det'\).*"
                                            r"x -> hidden -> .*\[Det 'n_Det'\] -> odd -> loss"):
        backward(b, loss, ["x"])


def test_ops_off_the_path_or_on_integers_need_no_rule():
    b = GraphBuilder()
    x = b.input("x", TensorProto.FLOAT, ("n", 3))
    count = b.op("Det", [b.const(np.eye(2, dtype=np.float32))])  # off the path from x: needs no rule
    idx = b.op("ArgMax", [x], axis=1, keepdims=1)  # integer output: no gradient flows
    picked = b.op("GatherElements", [x, idx], axis=1)
    loss = b.op("ReduceSum", [picked * count], keepdims=0)
    backward(b, loss, ["x"])  # must not raise


def test_gradient_model_keeps_io_adds_named_gradients_and_keeps_initializer_values():
    w = np.array([[1.0, -2.0], [0.5, 3.0]], np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Tanh", ["h"], ["y"]),
         helper.make_node("ReduceSum", ["y"], ["loss"], keepdims=0)],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2]),
         helper.make_tensor_value_info("loss", TensorProto.FLOAT, [])],
        initializer=[onnx.numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    grad = check_full(gradient_model(model, "loss", ["w", "x"]))
    assert [o.name for o in grad.graph.output] == ["y", "loss", "w_grad", "x_grad"]
    init = {t.name: onnx.numpy_helper.to_array(t) for t in grad.graph.initializer}
    np.testing.assert_array_equal(init["w"], w)
    xv = np.array([[0.3, -0.7], [1.0, 0.2], [0.0, 0.5]], np.float32)
    _, _, dw, dx = _session(grad).run(None, {"x": xv})
    dh = 1 - np.tanh(xv @ w) ** 2
    np.testing.assert_allclose(dw, xv.T @ dh, rtol=1e-5)
    np.testing.assert_allclose(dx, dh @ w.T, rtol=1e-5)


def test_gradient_model_converts_models_below_the_minimum_opset():
    graph = helper.make_graph(
        [helper.make_node("ReduceSum", ["x"], ["s"], axes=[1], keepdims=0)],  # opset-11 attribute form
        "old", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])],
        [helper.make_tensor_value_info("s", TensorProto.FLOAT, ["n"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    grad = check_full(gradient_model(model, "s", ["x"]))
    dx = _session(grad).run(["x_grad"], {"x": np.ones((2, 3), np.float32)})[0]
    np.testing.assert_array_equal(dx, np.ones((2, 3)))


@pytest.mark.parametrize("loss, wrt, message", [
    ("nope", ["x"], r"loss must name a value of the graph\. Received: loss='nope'"),
    ("y", ["h"], r"wrt must name graph inputs or initializers\. Received: \['h'\]"),
])
def test_gradient_model_rejects_bad_names(loss, wrt, message):
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["h"]), helper.make_node("Neg", ["h"], ["y"])],
                              "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    with pytest.raises(ValueError, match=message):
        gradient_model(model, loss, wrt)


@pytest.mark.parametrize("target_shape", [("p", "q"), ("m", 1)])
def test_unbroadcast_decides_in_the_graph_when_shapes_are_symbolic(target_shape):
    # Symbolic target dims unrelated to the gradient's cannot be reduced statically: the axes are
    # computed at run time, so one graph serves broadcast and plain calls alike.
    b = GraphBuilder()
    g = b.input("g", TensorProto.FLOAT, ("n", "m", "k"))
    t = b.input("t", TensorProto.FLOAT, target_shape)
    b.output(unbroadcast(g, t, ("n", "m", "k")), "r")
    sess = _session(check_full(b.to_model()))
    gv = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    targets = [(3, 1), (3, 4), (1, 4), (1, 1)] if target_shape == ("p", "q") else [(3, 1)]
    for shape in targets:
        expected = gv.sum(axis=0).sum(axis=tuple(i for i in range(2) if shape[i] == 1), keepdims=True)
        got = sess.run(None, {"g": gv, "t": np.zeros(shape, np.float32)})[0]
        np.testing.assert_allclose(got, expected)
