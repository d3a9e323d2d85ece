"""``Model.from_onnx``: an ONNX inference graph whose initializers become weights, fine-tuned by
onnxruntime and re-exported; hyper-parameter inputs stay constants; BatchNormalization / Dropout follow
``training_mode``; clear errors for bad arguments, foreign ops and ops without a gradient rule."""
from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto as T
from onnx import helper, numpy_helper

import onnxforge
from onnxforge.autodiff.engine import GradientError
from onnxforge.compiler import build_infer
from onnxforge.models.onnx_model import OnnxModel, from_onnx
from onnxforge.saving import OnnxLoadError

_rng = np.random.default_rng(0)


def _init(name: str, array) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array), name)


def _mlp_proto(opset: int = 21) -> onnx.ModelProto:
    """x (batch, 4) -> Gemm -> BatchNormalization -> Clip -> Dropout -> MatMul + Add -> Reshape -> y (batch, 2).

    Carries every kind of initializer: weights, BatchNorm statistics, float hyper-parameters (Clip bounds,
    the Dropout ratio) and an int64 shape. The same weights every call."""
    rng = np.random.default_rng(42)
    nodes = [
        helper.make_node("Gemm", ["x", "fc1.weight", "fc1.bias"], ["h1"], transB=1),
        helper.make_node("BatchNormalization", ["h1", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"],
                         ["h2"], epsilon=1e-5, momentum=0.9),
        helper.make_node("Clip", ["h2", "clip.min", "clip.max"], ["h3"]),
        helper.make_node("Dropout", ["h3", "drop.ratio"], ["h4"]),
        helper.make_node("MatMul", ["h4", "fc2.weight"], ["h5"]),
        helper.make_node("Add", ["h5", "fc2.bias"], ["h6"]),
        helper.make_node("Reshape", ["h6", "shape"], ["y"]),
    ]
    inits = [
        _init("fc1.weight", rng.normal(0, 0.5, (8, 4)).astype(np.float32)),
        _init("fc1.bias", np.zeros(8, np.float32)),
        _init("bn.weight", np.ones(8, np.float32)), _init("bn.bias", np.zeros(8, np.float32)),
        _init("bn.running_mean", rng.normal(0, 0.1, 8).astype(np.float32)),
        _init("bn.running_var", rng.uniform(0.5, 1.5, 8).astype(np.float32)),
        _init("clip.min", np.float32(0.0)), _init("clip.max", np.float32(6.0)),
        _init("drop.ratio", np.float32(0.5)),
        _init("fc2.weight", rng.normal(0, 0.5, (8, 2)).astype(np.float32)),
        _init("fc2.bias", np.zeros(2, np.float32)),
        _init("shape", np.array([-1, 2], np.int64)),
    ]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", T.FLOAT, ["N", 4])],
                              [helper.make_tensor_value_info("y", T.FLOAT, ["N", 2])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _data(n: int = 64):
    x = _rng.normal(size=(n, 4)).astype(np.float32)
    y = np.stack([x[:, 0] - x[:, 1], x[:, 2] * 0.5], axis=1).astype(np.float32)
    return x, y


def _run(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def test_initializers_are_sorted_into_weights_state_and_constants():
    model = from_onnx(_mlp_proto())
    assert [v.name for v in model.trainable_weights] == ["fc1.weight", "fc1.bias", "bn.weight", "bn.bias",
                                                         "fc2.weight", "fc2.bias"]
    assert [v.name for v in model.non_trainable_weights] == ["bn.running_mean", "bn.running_var"]
    assert model.input_names == ["x"] and model.output_names == ["y"]
    assert model.inputs[0].shape == (None, 4) and model.outputs[0].shape == (None, 2)
    frozen = from_onnx(_mlp_proto(), trainable=["fc2.weight", "fc2.bias"])
    assert [v.name for v in frozen.trainable_weights] == ["fc2.weight", "fc2.bias"]
    assert {v.name for v in frozen.non_trainable_weights} == {"fc1.weight", "fc1.bias", "bn.weight", "bn.bias",
                                                              "bn.running_mean", "bn.running_var"}


def test_predict_equals_onnxruntime_on_the_source_at_two_batch_sizes(tmp_path):
    proto = _mlp_proto()
    path = tmp_path / "mlp.onnx"
    onnx.save(proto, path)
    model = onnxforge.Model.from_onnx(str(path))
    for n in (3, 7):
        x = _data(n)[0]
        np.testing.assert_allclose(model.predict(x, verbose=0), _run(proto, {"x": x})[0], rtol=1e-6, atol=1e-6)


def test_fine_tune_then_re_export_passes_the_full_checker(tmp_path, checked):
    path = tmp_path / "mlp.onnx"
    onnx.save(_mlp_proto(), path)
    model = from_onnx(path, trainable=["fc2.weight", "fc2.bias", "fc1.weight"])
    frozen_before = {v.name: v.numpy().copy() for v in model.non_trainable_weights}
    trained_before = {v.name: v.numpy().copy() for v in model.trainable_weights}
    model.compile(optimizer=onnxforge.optimizers.SGD(0.05), loss="mse")
    for program in model.compiled_programs.values():
        checked(program.model)
    x, y = _data(128)
    history = model.fit(x, y, batch_size=16, epochs=6, verbose=0, shuffle=False)
    losses = history.history["loss"]
    assert losses[-1] < 0.7 * losses[0], losses
    for v in model.non_trainable_weights:  # frozen weights and (training_mode=False) statistics stay
        np.testing.assert_array_equal(v.numpy(), frozen_before[v.name])
    assert all(not np.array_equal(v.numpy(), trained_before[v.name]) for v in model.trainable_weights)

    out = model.export(tmp_path / "finetuned.onnx")
    exported = checked(onnx.load(out))
    names = {t.name for t in exported.graph.initializer}
    assert {"fc1.weight", "fc2.weight", "bn.running_mean"} <= names  # weights keep their names
    assert checked(build_infer(model, weights="initializers").model).graph.input[0].name == "x"
    x_test = _data(5)[0]
    np.testing.assert_allclose(_run(onnx.load(out), {"x": x_test})[0], model.predict(x_test, verbose=0),
                               rtol=1e-6, atol=1e-6)
    again = from_onnx(out)  # the re-exported file is itself a source
    np.testing.assert_allclose(again.predict(x_test, verbose=0), model.predict(x_test, verbose=0), rtol=1e-6)


def test_training_mode_batch_norm_updates_statistics_and_dropout_is_seeded():
    x, y = _data(32)

    def trained(seed):
        model = from_onnx(_mlp_proto(), training_mode=True)
        model.compile(optimizer=onnxforge.optimizers.SGD(0.0), loss="mse", seed=seed)
        model.reset_metrics()
        loss = model.train_on_batch(x, y)
        return model, loss

    model, loss_a = trained(1)
    _, loss_b = trained(1)
    _, loss_c = trained(2)
    assert loss_a == loss_b and loss_a != loss_c  # the dropout mask comes from the seeded program RNG
    stats = {v.name: v.numpy() for v in model.non_trainable_weights}
    h1 = x @ numpy_helper.to_array(_mlp_proto().graph.initializer[0]).T
    start = {t.name: numpy_helper.to_array(t) for t in _mlp_proto().graph.initializer}
    np.testing.assert_allclose(stats["bn.running_mean"], 0.9 * start["bn.running_mean"] + 0.1 * h1.mean(0),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats["bn.running_var"], 0.9 * start["bn.running_var"] + 0.1 * h1.var(0),
                               rtol=1e-5, atol=1e-6)
    # Inference uses the running statistics and no dropout: deterministic, and equal to the source graph
    # evaluated with the updated statistics.
    source = _mlp_proto()
    for t in source.graph.initializer:
        if t.name in stats:
            t.CopyFrom(numpy_helper.from_array(stats[t.name], t.name))
    np.testing.assert_allclose(model.predict(x, verbose=0), _run(source, {"x": x})[0], rtol=1e-5, atol=1e-6)


def test_inputs_outputs_cut_the_graph_and_opset_13_is_converted():
    proto = _mlp_proto()
    features = from_onnx(proto, outputs=["h1"])
    assert features.output_names == ["h1"] and [v.name for v in features.weights] == ["fc1.weight", "fc1.bias"]
    head = from_onnx(proto, inputs=["h4"])
    assert head.input_names == ["h4"] and head.inputs[0].shape == (None, 8)
    assert [v.name for v in head.weights] == ["fc2.weight", "fc2.bias"]
    # opset 13: ReduceMean takes `axes` as an attribute; the graph is converted to onnxforge's opset.
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["h"]),
                           helper.make_node("ReduceMean", ["h"], ["y"], axes=[1], keepdims=1)], "g",
                          [helper.make_tensor_value_info("x", T.FLOAT, ["batch", 3])],
                          [helper.make_tensor_value_info("y", T.FLOAT, ["batch", 1])],
                          [_init("w", np.ones((3, 2), np.float32))])
    old = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    old.ir_version = 7
    model = from_onnx(old)
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.ones((4, 3), np.float32), np.zeros((4, 1), np.float32), verbose=0)
    assert model.predict(np.ones((2, 3), np.float32), verbose=0).shape == (2, 1)


def test_integer_input_embedding_trains():
    g = helper.make_graph([helper.make_node("Gather", ["emb", "ids"], ["e"]),
                           helper.make_node("ReduceSum", ["e", "axes"], ["y"], keepdims=0)], "g",
                          [helper.make_tensor_value_info("ids", T.INT64, ["batch", 3])],
                          [helper.make_tensor_value_info("y", T.FLOAT, ["batch", 2])],
                          [_init("emb", _rng.normal(size=(10, 2)).astype(np.float32)),
                           _init("axes", np.array([1], np.int64))])
    proto = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])
    model = from_onnx(proto)
    assert model.inputs[0].dtype == "int64" and [v.name for v in model.trainable_weights] == ["emb"]
    ids = _rng.integers(0, 10, (32, 3))
    model.compile(optimizer=onnxforge.optimizers.SGD(0.1), loss="mse")
    h = model.fit(ids, np.zeros((32, 2), np.float32), epochs=5, batch_size=8, verbose=0)
    assert h.history["loss"][-1] < 0.5 * h.history["loss"][0]


def test_config_round_trip_carries_the_graph_but_not_the_weights():
    model = from_onnx(_mlp_proto(), trainable=["fc2.weight"], name="imported")
    config = json.loads(json.dumps(model.get_config()))
    assert "fc2.weight" not in json.dumps(config["weights"][0][1:])
    proto = onnx.ModelProto()
    import base64

    proto.ParseFromString(base64.b64decode(config["onnx"]))
    assert not {t.name for t in proto.graph.initializer} & {v.name for v in model.weights}
    clone = onnxforge.layers.deserialize(onnxforge.layers.serialize(model))
    assert isinstance(clone, OnnxModel) and clone.name == "imported"
    assert [v.name for v in clone.trainable_weights] == ["fc2.weight"]
    clone.set_weights(model.get_weights())
    x = _data(4)[0]
    np.testing.assert_array_equal(clone.predict(x, verbose=0), model.predict(x, verbose=0))


def test_save_and_load_resume_training_exactly(tmp_path):
    model = from_onnx(_mlp_proto(), trainable=["fc2.weight", "fc2.bias", "bn.weight"], training_mode=True)
    model.compile(optimizer="adam", loss="mse", seed=3)
    x, y = _data(32)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    model.save(tmp_path / "model.onnx")
    restored = onnxforge.keras.models.load_model(tmp_path / "model.onnx")
    assert isinstance(restored, OnnxModel) and restored.training_mode
    assert [v.name for v in restored.trainable_weights] == ["bn.weight", "fc2.weight", "fc2.bias"]
    np.testing.assert_array_equal(restored.predict(x, verbose=0), model.predict(x, verbose=0))
    a = model.fit(x, y, epochs=2, batch_size=8, verbose=0, shuffle=False).history["loss"]
    b = restored.fit(x, y, epochs=2, batch_size=8, verbose=0, shuffle=False).history["loss"]
    assert a == b


def test_used_inside_a_functional_model():
    inner = from_onnx(_mlp_proto())
    x = onnxforge.Input(shape=(4,), name="features")
    y = onnxforge.layers.Dense(1, name="head")(inner(x))
    model = onnxforge.Model(x, y)
    assert len(model.trainable_weights) == len(inner.trainable_weights) + 2
    model.compile(optimizer="sgd", loss="mse")
    xs = _data(8)[0]
    model.fit(xs, np.zeros((8, 1), np.float32), verbose=0)
    assert model.predict(xs, verbose=0).shape == (8, 1)


def test_errors_name_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match=r"not float initializers.*'nope'"):
        from_onnx(_mlp_proto(), trainable=["fc1.weight", "nope"])
    with pytest.raises(ValueError, match=r"no value of the graph is named \['zz'\]"):
        from_onnx(_mlp_proto(), outputs=["zz"])
    with pytest.raises(TypeError, match="Received: int"):
        from_onnx(3)
    bad = tmp_path / "weights.onnx"
    bad.write_bytes(b"PK\x03\x04 a zip, not a model")
    with pytest.raises(OnnxLoadError, match="ZIP"):
        from_onnx(bad)
    custom = _mlp_proto()
    custom.graph.node.append(helper.make_node("FusedGemm", ["y", "y"], ["z"], domain="com.microsoft"))
    custom.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    with pytest.raises(ValueError, match=r"FusedGemm \(com.microsoft\)"):
        from_onnx(custom)
    # An op without a gradient rule on the path to the loss: the engine's error, naming op and node.
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["h"]),
                           helper.make_node("LpNormalization", ["h"], ["y"], name="norm")], "g",
                          [helper.make_tensor_value_info("x", T.FLOAT, ["batch", 3])],
                          [helper.make_tensor_value_info("y", T.FLOAT, ["batch", 2])],
                          [_init("w", np.ones((3, 2), np.float32))])
    model = from_onnx(helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)]))
    with pytest.raises(GradientError, match="'LpNormalization' \\(node 'norm'\\)"):
        model.compile(optimizer="sgd", loss="mse")


def test_frozen_model_config_keeps_which_initializers_train():
    model = from_onnx(_mlp_proto(), trainable=["fc2.weight"])
    model.trainable = False  # Keras's flag freezes everything, but the choice of weights survives a round trip
    assert model.trainable_weights == []
    clone = OnnxModel.from_config(model.get_config())
    assert clone.trainable is False and clone.trainable_weights == []
    clone.trainable = True
    assert [v.name for v in clone.trainable_weights] == ["fc2.weight"]


def test_training_mode_batch_norm_is_spelled_in_primitive_ops(tmp_path):
    # onnxruntime's CUDA provider (and the web runtimes) refuse BatchNormalization(training_mode=1) from
    # opset 14 on: the training program must spell the batch statistics out.
    model = from_onnx(_mlp_proto(), training_mode=True)
    model.compile(optimizer="sgd", loss="mse")
    path = str(tmp_path / "train.onnx")
    model.export_training(path)
    nodes = onnx.load(path).graph.node
    assert not [n.name for n in nodes if n.op_type == "BatchNormalization"
                and any(a.name == "training_mode" and a.i for a in n.attribute)]
    assert any(n.op_type == "ReduceMean" for n in nodes)
