"""The static proof behind dynamic batching: graphs it accepts really answer each row on its own (checked
by running them batched and row by row), graphs that mix rows are refused with the node named."""
from __future__ import annotations

import io
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto as T
from onnx import helper, numpy_helper

import onnxforge as tf
from onnxforge.graph.row_independence import analyze

L = tf.keras.layers
rng = np.random.default_rng(0)


def _model(nodes, inputs, outputs, inits=(), opset=21) -> onnx.ModelProto:
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 10
    return m


def _x(name="x", shape=("N", 4), dtype=T.FLOAT):
    return helper.make_tensor_value_info(name, dtype, list(shape))


def _y(name="y", shape=None):
    return helper.make_tensor_value_info(name, T.FLOAT, shape)


def _i(name, values):
    return numpy_helper.from_array(np.asarray(values, np.int64), name)


def _f(name, array):
    return numpy_helper.from_array(np.asarray(array, np.float32), name)


def _feeds(model: onnx.ModelProto, n: int) -> dict[str, np.ndarray]:
    inits = {t.name for t in model.graph.initializer}
    out = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        t = vi.type.tensor_type
        shape = [n if d.dim_param else d.dim_value for d in t.shape.dim]
        out[vi.name] = (rng.integers(0, 5, shape) if t.elem_type == T.INT64 else rng.normal(size=shape)).astype(
            onnx.helper.tensor_dtype_to_np_dtype(t.elem_type))
    return out


def rows_answer_alone(model: onnx.ModelProto, n: int = 5) -> bool:
    """The empirical check: one run over n rows equals n runs over one row each."""
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = _feeds(model, n)
    whole = sess.run(None, feeds)
    for i in range(n):
        alone = sess.run(None, {k: v[i:i + 1] for k, v in feeds.items()})
        if not all(a.shape == w[i:i + 1].shape and np.allclose(a, w[i:i + 1], atol=1e-5)
                   for a, w in zip(alone, whole)):
            return False
    return True


W = _f("w", rng.normal(size=(4, 3)))
INDEPENDENT = {
    "matmul_relu": _model([helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Relu", ["m"], ["y"])],
                          [_x()], [_y()], [W]),
    "softmax_last": _model([helper.make_node("Softmax", ["x"], ["y"], axis=-1)], [_x()], [_y()]),
    "mean_over_features": _model([helper.make_node("ReduceMean", ["x", "ax"], ["m"], keepdims=1),
                                  helper.make_node("Sub", ["x", "m"], ["y"])], [_x()], [_y()], [_i("ax", [1])]),
    "torch_style_flatten": _model([
        helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Gather", ["s", "zero"], ["b"], axis=0),
        helper.make_node("Unsqueeze", ["b", "ax0"], ["b1"]), helper.make_node("Concat", ["b1", "minus1"], ["t"], axis=0),
        helper.make_node("Reshape", ["x", "t"], ["y"])],
        [_x(shape=("N", 2, 3))], [_y()], [_i("zero", 0), _i("ax0", [0]), _i("minus1", [-1])]),
    "reshape_minus1_static_rows": _model([helper.make_node("Reshape", ["x", "t"], ["y"])], [_x(shape=("N", 2, 3))],
                                         [_y()], [_i("t", [-1, 6])]),
    "attention": _model([
        helper.make_node("Transpose", ["x", ], ["xt"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["x", "xt"], ["s"]), helper.make_node("Softmax", ["s"], ["p"], axis=-1),
        helper.make_node("MatMul", ["p", "x"], ["y"])], [_x(shape=("N", 3, 4))], [_y()]),
    "layernorm": _model([helper.make_node("LayerNormalization", ["x", "g", "b"], ["y"], axis=-1)], [_x()], [_y()],
                        [_f("g", np.ones(4)), _f("b", np.zeros(4))]),
    "expand_constant_to_batch": _model([
        helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Expand", ["c", "s"], ["e"]),
        helper.make_node("Add", ["x", "e"], ["y"])], [_x()], [_y()], [_f("c", np.arange(4))]),
}
MIXING = {
    "batch_mean": (_model([helper.make_node("ReduceMean", ["x", "ax"], ["m"], keepdims=1),
                           helper.make_node("Sub", ["x", "m"], ["y"])], [_x()], [_y()], [_i("ax", [0])]),
                   "reduces over the batch axis"),
    "softmax_over_batch": (_model([helper.make_node("Softmax", ["x"], ["y"], axis=0)], [_x()], [_y()]),
                           "normalizes over the batch axis"),
    "gram": (_model([helper.make_node("Transpose", ["x"], ["xt"]), helper.make_node("MatMul", ["xt", "x"], ["y"])],
                    [_x()], [_y()]), "contracts over the batch axis"),
    "bn_training": (_model([helper.make_node("BatchNormalization", ["x", "g", "b", "m", "v"], ["y"],
                                             training_mode=1)], [_x()], [_y()],
                           [_f(k, np.ones(4)) for k in "gbmv"]), "training_mode=1"),
    "reshape_merges_batch": (_model([helper.make_node("Reshape", ["x", "t"], ["y"])], [_x()], [_y()],
                                    [_i("t", [-1, 8])]), "merge the batch"),
    "divide_by_batch_size": (_model([helper.make_node("Shape", ["x"], ["s"]),
                                     helper.make_node("Gather", ["s", "zero"], ["b"], axis=0),
                                     helper.make_node("Cast", ["b"], ["bf"], to=T.FLOAT),
                                     helper.make_node("Div", ["x", "bf"], ["y"])], [_x()], [_y()], [_i("zero", 0)]),
                             "batch size"),
    "concat_on_batch": (_model([helper.make_node("Concat", ["x", "x"], ["c"], axis=0),
                                helper.make_node("Slice", ["c", "s", "e", "a"], ["y"])], [_x()], [_y()],
                               [_i("s", [1]), _i("e", [2**40]), _i("a", [0])]), "along the batch axis"),
    "cumsum_rows": (_model([helper.make_node("CumSum", ["x", "ax"], ["y"])], [_x()], [_y()], [_i("ax", 0)]),
                    "along the batch axis"),
    "unknown_op": (_model([helper.make_node("NonZero", ["x"], ["nz"]), helper.make_node("Cast", ["nz"], ["y"],
                                                                                      to=T.FLOAT)],
                          [_x()], [_y()]), "not known to keep rows independent"),
    "flatten_axis0": (_model([helper.make_node("Flatten", ["x"], ["y"], axis=0)], [_x()], [_y()]),
                      "merges the batch axis"),
}


@pytest.mark.parametrize("name", sorted(INDEPENDENT))
def test_accepted_graphs_answer_each_row_alone(name):
    model = INDEPENDENT[name]
    ok, reason = analyze(model)
    assert ok, reason
    assert rows_answer_alone(model)


@pytest.mark.parametrize("name", sorted(MIXING))
def test_graphs_that_mix_rows_are_refused_with_the_node_named(name):
    model, fragment = MIXING[name]
    ok, reason = analyze(model)
    assert not ok and fragment in reason, reason
    assert "node '" in reason


def test_the_refused_batch_statistics_really_mix_rows():
    """The control for the refusals: batching these would change the answers."""
    for name in ("batch_mean", "softmax_over_batch", "divide_by_batch_size"):
        assert not rows_answer_alone(MIXING[name][0]), name


def test_onnxforge_exports_are_batchable(tmp_path):
    tf.layers.clear_session()
    models = [
        tf.keras.Sequential([L.Input((8, 8, 1)), L.Conv2D(2, 3, padding="same"), L.BatchNormalization(),
                             L.MaxPooling2D(2), L.Flatten(), L.Dropout(0.2), L.Dense(3, activation="softmax")]),
        tf.keras.Sequential([L.Input((5,), dtype="int64"), L.Embedding(10, 4, mask_zero=True), L.LSTM(3), L.Dense(2)]),
        tf.keras.Sequential([L.Input((4, 6)), L.GRU(3, return_sequences=True), L.GlobalAveragePooling1D(),
                             L.LayerNormalization(), L.Reshape((3, 1)), L.Flatten()]),
        tf.keras.Sequential([L.Input((6, 2)), L.Bidirectional(L.SimpleRNN(3)), L.Dense(1)]),
    ]
    for k, model in enumerate(models):
        proto = onnx.load(str(model.export(tmp_path / f"m{k}.onnx")))
        ok, reason = analyze(proto)
        assert ok, (k, reason)
        assert rows_answer_alone(proto)


def test_torch_exports_are_batchable():
    torch = pytest.importorskip("torch")

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 2, 3)
            self.fc = torch.nn.Linear(2 * 4 * 4, 3)

        def forward(self, x):
            h = torch.relu(self.conv(x))
            return torch.log_softmax(self.fc(h.view(h.size(0), -1)), dim=1)

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Net().eval(), (torch.zeros(2, 1, 6, 6),), buffer, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "N"}, "y": {0: "N"}}, dynamo=False, opset_version=17)
    proto = onnx.load_from_string(buffer.getvalue())
    ok, reason = analyze(proto)
    assert ok, reason
    assert rows_answer_alone(proto)
