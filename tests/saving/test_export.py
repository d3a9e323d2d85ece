"""model.export / export_training / export_eval: full checker, Keras names, dynamic axes, metadata,
opset= (range errors, conversion verified), external data, and the step graphs' true state inputs with their
initial-state companion models."""
from __future__ import annotations

import json
import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import onnxforge as tf
from onnxforge.graph import contract
from onnxforge.graph.opset import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET
from onnxforge.saving import load_onnx, write_onnx
from onnxforge.saving.export import training_proto

L = tf.keras.layers


def _session(path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _meta(proto: onnx.ModelProto) -> dict[str, str]:
    return {e.key: e.value for e in proto.metadata_props}


def _cnn(compile_: bool = True):
    tf.layers.clear_session()
    tf.initializers.set_random_seed(0)
    model = tf.keras.Sequential([L.Input((8, 8, 1), name="image"), L.Conv2D(4, 3, activation="relu"),
                                 L.BatchNormalization(), L.MaxPooling2D(), L.Flatten(), L.Dropout(0.25),
                                 L.Dense(3, activation="softmax", name="probs")])
    if compile_:
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"], device="cpu",
                      seed=7)
    return model


def _data(n=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 8, 8, 1), dtype=np.float32), rng.integers(0, 3, n)


@pytest.fixture
def trained():
    model = _cnn()
    x, y = _data()
    model.fit(x, y, epochs=1, batch_size=3, verbose=0)
    return model


# ------------------------------------------------------------------------------------ inference
def test_export_is_standalone_checked_named_and_matches_predict_at_any_batch(tmp_path, trained, checked):
    path = trained.export(tmp_path / "model.onnx", class_names=["cat", "dog", "bird"])
    proto = checked(onnx.load(str(path)))
    assert [i.name for i in proto.graph.input] == ["image"]
    assert [o.name for o in proto.graph.output] == ["probs"]
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == contract.BATCH_DIM and [d.dim_value for d in dims[1:]] == [8, 8, 1]
    init = {t.name for t in proto.graph.initializer}
    assert {w.path for w in trained.weights} <= init   # Keras-named weights, none merged
    meta = _meta(proto)
    assert proto.producer_name == "onnxforge" and meta["onnxforge.version"] == tf.__version__
    assert json.loads(meta["onnxforge.input_layout"]) == {"image": "NHWC"}
    assert meta["onnxforge.data_format"] == "channels_last"
    assert json.loads(meta["onnxforge.class_names"]) == ["cat", "dog", "bird"]
    assert "sequential" in proto.doc_string and "NHWC" in proto.doc_string
    sess = _session(path)
    for n in (1, 5):
        x, _ = _data(n, seed=n)
        # Not bit-exact: the exported weights are initializers, which onnxruntime folds (the BatchNorm
        # arithmetic, Conv/Gemm fusions) where predict's program takes them as inputs; the results differ
        # in the last bit for some weights (6 of 16 trained seeds before any speed change).
        np.testing.assert_allclose(sess.run(None, {"image": x})[0], trained.predict(x, verbose=0), rtol=1e-6, atol=1e-7)


def test_sequence_axis_is_dynamic_and_named(tmp_path, checked):
    tf.layers.clear_session()
    model = tf.keras.Sequential([L.Input((None,), dtype="int64", name="tokens"), L.Embedding(30, 4),
                                 L.LSTM(5, return_sequences=True), L.GRU(3), L.Dense(2, name="score")])
    path = model.export(tmp_path / "seq.onnx")
    proto = checked(onnx.load(str(path)))
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims] == ["batch", "sequence"]
    assert json.loads(_meta(proto)["onnxforge.input_layout"]) == {"tokens": "NT"}
    sess = _session(path)
    rng = np.random.default_rng(1)
    for n, t in ((2, 3), (4, 9)):
        x = rng.integers(0, 30, (n, t))
        np.testing.assert_allclose(sess.run(None, {"tokens": x})[0], model.predict(x, verbose=0), rtol=1e-5,
                                   atol=1e-6)


def test_functional_model_keeps_every_input_and_output_name(tmp_path, checked):
    tf.layers.clear_session()
    a, b = L.Input((3,), name="left"), L.Input((2,), name="right")
    h = L.Concatenate()([L.Dense(4, name="da")(a), L.Dense(4, name="db")(b)])
    model = tf.keras.Model([a, b], [L.Dense(1, name="value")(h), L.Dense(2, activation="softmax", name="policy")(h)])
    proto = checked(onnx.load(str(model.export(tmp_path / "two.onnx"))))
    assert [i.name for i in proto.graph.input] == ["left", "right"]
    assert [o.name for o in proto.graph.output] == ["value", "policy"]
    assert json.loads(_meta(proto)["onnxforge.input_layout"]) == {"left": "NC", "right": "NC"}
    xa, xb = np.ones((2, 3), np.float32), np.ones((2, 2), np.float32)
    got = _session(tmp_path / "two.onnx").run(None, {"left": xa, "right": xb})
    for g, w in zip(got, model.predict([xa, xb], verbose=0)):
        np.testing.assert_allclose(g, w, rtol=1e-6)


def test_channels_first_models_report_their_layout(tmp_path):
    tf.layers.clear_session()
    model = tf.keras.Sequential([L.Input((2, 6, 6), name="planes"), L.Conv2D(3, 3, data_format="channels_first"),
                                 L.GlobalAveragePooling2D(data_format="channels_first")])
    meta = _meta(onnx.load(str(model.export(tmp_path / "cf.onnx"))))
    assert meta["onnxforge.data_format"] == "channels_first"
    assert json.loads(meta["onnxforge.input_layout"]) == {"planes": "NCHW"}


def test_export_errors_name_the_problem(tmp_path, trained):
    with pytest.raises(ValueError, match="class_names has 2 names"):
        trained.export(tmp_path / "m.onnx", class_names=["a", "b"])
    with pytest.raises(ValueError, match="list of strings"):
        trained.export(tmp_path / "m.onnx", class_names="abc")
    with pytest.raises(ValueError, match="format='savedmodel'"):
        trained.export(tmp_path / "m.onnx", format="savedmodel")
    unbuilt = tf.keras.Sequential([L.Dense(2)])
    with pytest.raises(ValueError, match="not built"):
        unbuilt.export(tmp_path / "m.onnx")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        trained.export(tmp_path / "missing" / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


# ------------------------------------------------------------------------------------ opsets
@pytest.mark.parametrize("opset", [17, 25, 21.0, "21", True])
def test_opset_outside_the_supported_range_is_a_clear_error(tmp_path, trained, opset):
    for export in (trained.export, trained.export_training, trained.export_eval):
        with pytest.raises(ValueError, match=rf"\[{MIN_OPSET}, {MAX_OPSET}\].*Received: opset="):
            export(tmp_path / "m.onnx", opset=opset)
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("opset", [MIN_OPSET, MAX_OPSET])
def test_each_export_is_emitted_at_the_requested_opset(tmp_path, trained, checked, opset):
    x, y = _data(4, seed=3)
    for kind, export in (("infer", trained.export), ("train_step", trained.export_training),
                         ("eval_step", trained.export_eval)):
        path = export(tmp_path / f"{kind}.onnx", opset=opset)
        proto = checked(onnx.load(str(path)))
        assert [(o.domain, o.version) for o in proto.opset_import] == [("", opset)]
        assert _meta(proto)[contract.PROGRAM_KEY] == kind
    got = _session(tmp_path / "infer.onnx").run(None, {"image": x})[0]
    np.testing.assert_allclose(got, trained.predict(x, verbose=0), rtol=1e-6)
    default = onnx.load(str(trained.export(tmp_path / "default.onnx")))
    assert default.opset_import[0].version == DEFAULT_OPSET


def test_an_op_that_cannot_go_to_an_older_opset_is_refused(tmp_path):
    class Gelu(tf.layers.Layer):   # ONNX Gelu exists from opset 20 only
        def call(self, x):
            return x.builder.op("Gelu", [x], dtype=x.dtype, shape=x.shape)

    tf.layers.clear_session()
    model = tf.keras.Sequential([L.Input((3,)), L.Dense(2), Gelu()])
    assert onnx.load(str(model.export(tmp_path / "ok.onnx", opset=20))).opset_import[0].version == 20
    with pytest.raises(ValueError, match=r"opset=19.*Gelu"):
        model.export(tmp_path / "old.onnx", opset=19)
    assert not (tmp_path / "old.onnx").exists()


# ------------------------------------------------------------------------------------ external data
def _wide():
    tf.layers.clear_session()
    model = tf.keras.Sequential([L.Input((64,), name="features"), L.Dense(64, activation="relu"), L.Dense(2)])
    model.compile(optimizer="adam", loss="mse", device="cpu")
    return model


def test_external_data_lives_beside_the_file_loads_safely_and_is_replaced_cleanly(tmp_path, checked):
    model = _wide()
    path = model.export(tmp_path / "big.onnx", external_data=True)
    data = [p for p in os.listdir(tmp_path) if p.startswith("big.onnx.") and p.endswith(".data")]
    assert len(data) == 1
    proto = onnx.load(str(path), load_external_data=False)
    external = [t for t in proto.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    assert [t.name for t in external] == ["dense/kernel"]       # small tensors stay inside
    assert {e.value for t in external for e in t.external_data if e.key == "location"} == {data[0]}
    checked(load_onnx(path))
    x = np.random.default_rng(0).normal(size=(3, 64)).astype(np.float32)
    np.testing.assert_array_equal(_session(path).run(None, {"features": x})[0], model.predict(x, verbose=0))
    # The training step holds no weights (they are its companion's): its old data file goes, the
    # companion's weights go to a data file of its own.
    model.export_training(tmp_path / "big.onnx", external_data=True)
    again = [p for p in os.listdir(tmp_path) if p.endswith(".data")]
    assert len(again) == 1 and again[0].startswith("big.init.onnx.")
    checked(load_onnx(tmp_path / "big.onnx"))
    checked(load_onnx(tmp_path / "big.init.onnx"))
    model.export(tmp_path / "big.onnx")                                # one file again: its data file gone
    assert [p for p in os.listdir(tmp_path) if p.endswith(".data")] == again   # the companion's is its own


def test_external_data_is_chosen_automatically_past_the_limit(tmp_path, monkeypatch):
    from onnxforge.saving import onnx_file as export_lib  # the module that owns the limit

    monkeypatch.setattr(export_lib, "EXTERNAL_DATA_LIMIT", 1000)
    tf.layers.clear_session()
    model = tf.keras.Sequential([L.Input((64,)), L.Dense(64)])
    model.export(tmp_path / "m.onnx")
    assert len([p for p in os.listdir(tmp_path) if p.endswith(".data")]) == 1


def test_write_onnx_leaves_the_callers_proto_unchanged(tmp_path):
    from onnxforge.saving.export import inference_proto

    proto, _ = inference_proto(_wide())
    before = proto.SerializeToString()
    write_onnx(proto, tmp_path / "m.onnx", external_data=True)
    assert proto.SerializeToString() == before


# ------------------------------------------------------------------------------------ training / eval
def _initial(path) -> dict[str, np.ndarray]:
    """Run the companion model the step file names: its outputs are the initial state, by input name."""
    meta = _session(path).get_modelmeta().custom_metadata_map
    init = _session(os.path.join(os.path.dirname(str(path)), meta["onnxforge.init_model"]))
    return dict(zip([o.name for o in init.get_outputs()], init.run(None, {})))


def test_training_export_has_true_state_inputs_and_an_initial_state_model(tmp_path, trained, checked):
    path = trained.export_training(tmp_path / "train.onnx")
    proto = checked(onnx.load(str(path)))
    meta = _meta(proto)
    pairs = json.loads(meta[contract.STATE_KEY])
    program = trained.compiled_programs["train_step"]
    assert pairs == [[i, o] for _, i, o in program.state]
    state_in = {i for i, _ in pairs}
    assert {"adam/iteration", "seed_generator/state", "batch_normalization/moving_mean"} <= state_in
    graph_inputs = [i.name for i in proto.graph.input]
    assert not set(graph_inputs) & {t.name for t in proto.graph.initializer}   # no input has a default
    assert state_in <= set(graph_inputs)
    assert meta["onnxforge.format"] == "train_step/2" and meta["onnxforge.init_model"] == "train.init.onnx"
    assert "train.init.onnx" in proto.doc_string and "onnxforge.state" in proto.doc_string

    init = checked(onnx.load(str(tmp_path / "train.init.onnx")))
    init_meta = _meta(init)
    assert list(init.graph.input) == []
    assert init_meta["onnxforge.format"] == "initial_state/1" and init_meta["onnxforge.init_for"] == "train.onnx"
    assert init_meta["onnxforge.export_id"] == meta["onnxforge.export_id"]
    assert {n.domain for m in (proto, init) for n in m.graph.node} <= {"", "ai.onnx"}
    values = _initial(path)
    # Every input but the batch and the learning rate comes from the companion, under its own name.
    assert [n for n in graph_inputs if n not in values] == ["image", "target/probs", "sample_weight/probs",
                                                            "learning_rate"]
    assert set(values) <= set(graph_inputs)
    assert int(values["adam/iteration"]) == 2                # the state at export time
    by_name = {v.path: v for v in trained.weights}
    for name in ("conv2d/kernel", "batch_normalization/moving_variance"):
        np.testing.assert_array_equal(values[name], by_name[name].numpy())
    assert values["seed_generator/state"].tolist() == trained._rng_state.numpy().tolist()
    assert float(meta["onnxforge.learning_rate"]) == pytest.approx(0.001)
    assert json.loads(meta["onnxforge.compile_config"])["optimizer"]["class_name"] == "Adam"


def test_training_export_steps_equal_train_on_batch(tmp_path, trained):
    path = trained.export_training(tmp_path / "train.onnx")
    sess = _session(path)
    pairs = json.loads(sess.get_modelmeta().custom_metadata_map[contract.STATE_KEY])
    out_names = [o.name for o in sess.get_outputs()]
    state = _initial(path)
    for step in range(3):
        x, y = _data(4, seed=10 + step)
        feeds = {"image": x, "target/probs": y.astype(np.int64), "sample_weight/probs": np.ones(4, np.float32),
                 "learning_rate": np.asarray(0.001, np.float32), **state}
        out = dict(zip(out_names, sess.run(None, feeds)))
        state.update({i: out[o] for i, o in pairs})
        logs = trained.train_on_batch(x, y, return_dict=True)
        trained.reset_metrics()
        assert out["sums/loss/total"] / out["sums/loss/count"] == pytest.approx(logs["loss"], rel=1e-6)
    for v in trained.weights:
        np.testing.assert_allclose(state[v.path], v.numpy(), rtol=1e-6, atol=1e-7)
    assert state["seed_generator/state"].tolist() == trained._rng_state.numpy().tolist()


def test_eval_export_equals_evaluate(tmp_path, trained, checked):
    path = trained.export_eval(tmp_path / "eval.onnx")
    proto = checked(onnx.load(str(path)))
    assert json.loads(_meta(proto)[contract.STATE_KEY]) == []
    assert _meta(proto)["onnxforge.format"] == "eval_step/2"
    x, y = _data(5, seed=4)
    sess = _session(path)
    feeds = {"image": x, "target/probs": y, "sample_weight/probs": np.ones(5, np.float32), **_initial(path)}
    out = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    loss, acc = trained.evaluate(x, y, verbose=0)
    assert out["sums/loss/total"] / out["sums/loss/count"] == pytest.approx(loss, rel=1e-6)
    assert out["sums/accuracy/total"] / out["sums/accuracy/count"] == pytest.approx(acc)


def test_step_exports_need_a_compiled_model_with_a_loss(tmp_path):
    model = _cnn(compile_=False)
    with pytest.raises(RuntimeError, match="not compiled"):
        model.export_training(tmp_path / "t.onnx")
    model.compile(optimizer="sgd", device="cpu")
    with pytest.raises(RuntimeError, match="without a loss"):
        model.export_eval(tmp_path / "e.onnx")


def test_compile_before_build_exports_after_build(tmp_path, checked):
    tf.layers.clear_session()
    model = tf.keras.Sequential([L.Dense(3), L.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", device="cpu")
    model.build((None, 4))
    proto = checked(training_proto(model))
    assert [i.name for i in proto.graph.input][:1] == model.input_names
