"""The portable step-file format: true state inputs, the initial-state companion model, reading both formats.

Every exported file loads in onnxruntime at its default log severity without a word on stderr; the
companion's values are the model's state (read statically and by onnxruntime alike); first-format files
(state inputs with initializer defaults) still load, upgrade to the pair and train identically; a missing,
foreign or mismatched companion is a clear error naming the file; ``export(weights="inputs")`` predicts with
weights a runtime trained.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import onnxforge as tf
from onnxforge import cli
from onnxforge.graph import contract
from onnxforge.saving import OnnxLoadError, companion_path, load_training, portable
from onnxforge.saving.export import training_parts, upgrade_training, write_onnx

L = tf.keras.layers


def _model(seed=3):
    tf.layers.clear_session()
    tf.initializers.set_random_seed(seed)
    model = tf.keras.Sequential([L.Input((6, 6, 1), name="image"), L.Conv2D(3, 3, activation="relu"),
                                 L.BatchNormalization(), L.Flatten(), L.Dropout(0.2), L.Dense(32, activation="relu"),
                                 L.Dense(4, activation="softmax", name="probs")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"], device="cpu",
                  seed=1)
    return model


def _batch(n=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 6, 6, 1), dtype=np.float32), rng.integers(0, 4, n)


def _run(path, feeds=None):
    options = ort.SessionOptions()
    if "old" in os.path.basename(str(path)):
        options.log_severity_level = 3   # a first-format file: onnxruntime warns about each input default
    sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds or {})))


def _steps(path, state, batches):
    """Train from the step file with onnxruntime; returns the losses and the final state."""
    pairs = json.loads({p.key: p.value for p in onnx.load(str(path)).metadata_props}[contract.STATE_KEY])
    state, losses = dict(state), []
    for x, y in batches:
        out = _run(path, {"image": x, "target/probs": y, "sample_weight/probs": np.ones(len(x), np.float32),
                          "learning_rate": np.asarray(0.001, np.float32), **state})
        state.update({i: out[o] for i, o in pairs})
        losses.append(float(out["sums/loss/total"] / out["sums/loss/count"]))
    return losses, state


def _legacy(model, path):
    """A step file as onnxforge <= 0.1 wrote it: each state input's value as its initializer default."""
    proto, items = training_parts(model)
    proto.graph.initializer.extend(onnx.numpy_helper.from_array(a, n) for n, a in items)
    write_onnx(proto, path)
    return path


# ------------------------------------------------------------------------------------------ quiet loading
_LOAD_ALL = textwrap.dedent('''
    import sys
    import onnxruntime as ort
    for path in sys.argv[1:]:
        ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    print(len(sys.argv) - 1)
''')


def test_every_exported_file_loads_without_an_onnxruntime_warning(tmp_path):
    from exporters.ort_training_compat import generate_artifacts

    model = _model()
    model.fit(*_batch(8), epochs=1, batch_size=4, verbose=0)
    written = [model.export(tmp_path / "model.onnx"), model.export(tmp_path / "predict.onnx", weights="inputs"),
               model.export_training(tmp_path / "train.onnx"), model.export_eval(tmp_path / "eval.onnx")]
    written += [companion_path(p) for p in written[1:]]
    written += list(generate_artifacts(model, loss="CrossEntropyLoss", optimizer="AdamW",
                                       artifact_directory=tmp_path / "artifacts").values())
    assert all(os.path.exists(p) for p in written) and len(written) == 11
    done = subprocess.run([sys.executable, "-c", _LOAD_ALL, *map(str, written)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "11" and done.stderr == ""     # default severity (warning): nothing printed


# ------------------------------------------------------------------------------------------ the companion
def test_initial_state_model_round_trips_values_statically_and_in_onnxruntime(checked):
    items = [("w", np.arange(6, dtype=np.float32).reshape(2, 3)), ("zeros", np.zeros((3, 2), np.float32)),
             ("neg_zero", np.full(4, -0.0, np.float32)), ("ones", np.ones(5, np.float32)),
             ("step", np.array(7, np.int64)), ("seed", np.array([3, 3], np.int64)), ("flag", np.array([True])),
             ("mixed_sign_zero", np.array([0.0, -0.0], np.float32)), ("w:init", np.ones(1, np.float32))]
    init = checked(portable.initial_state_model(items))
    ops = {n.output[0]: n.op_type for n in init.graph.node}
    assert ops["zeros"] == ops["ones"] == ops["seed"] == "ConstantOfShape"      # no bytes for fills
    assert ops["w"] == ops["mixed_sign_zero"] == ops["step"] == "Identity"
    assert [o.name for o in init.graph.output] == [n for n, _ in items] and list(init.graph.input) == []
    static = portable.initial_values(init, "x.init.onnx")
    served = dict(zip([o.name for o in init.graph.output],
                      ort.InferenceSession(init.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {})))
    for name, array in items:
        for got in (static[name], served[name]):
            assert got.dtype == array.dtype and got.shape == array.shape, name
            assert got.tobytes() == array.tobytes(), name               # -0.0 stays -0.0
    with pytest.raises(ValueError, match="duplicate"):
        portable.initial_state_model([("a", np.ones(1)), ("a", np.ones(1))])


def test_load_training_reads_the_pair_with_external_data(tmp_path, checked):
    model = _model()
    path = model.export_training(tmp_path / "train.onnx", external_data=True)
    assert any(p.startswith("train.init.onnx.") and p.endswith(".data") for p in os.listdir(tmp_path))
    loaded = load_training(path)
    assert loaded.version == 2 and loaded.init_path == tmp_path / "train.init.onnx"
    program = model.compiled_programs["train_step"]
    for var, name in list(program.params) + [(v, n) for v, n, _ in program.state]:
        np.testing.assert_array_equal(loaded.state[name], var.numpy(), err_msg=name)
    assert loaded.pairs == [(i, o) for _, i, o in program.state]
    checked(loaded.proto)


# ------------------------------------------------------------------------------------------ format 1
def test_a_first_format_file_loads_upgrades_and_trains_identically(tmp_path, capsys):
    model = _model()
    old = _legacy(model, tmp_path / "old.onnx")
    loaded = load_training(old)
    assert loaded.version == 1 and loaded.init_path is None
    assert not {i.name for i in loaded.proto.graph.input} & {t.name for t in loaded.proto.graph.initializer}
    assert cli.main(["check", str(old)]) == 0
    assert "format 1" in capsys.readouterr().out

    assert cli.main(["upgrade", str(old), str(tmp_path / "new.onnx")]) == 0
    assert "new.init.onnx" in capsys.readouterr().out
    new = load_training(tmp_path / "new.onnx")
    assert new.version == 2 and sorted(new.state) == sorted(loaded.state)
    batches = [_batch(4, seed=s) for s in range(3)]
    init = _run(tmp_path / "new.init.onnx")
    losses, state = _steps(tmp_path / "new.onnx", init, batches)
    legacy_losses, _ = _steps(old, {}, batches)                   # format 1 trains from its defaults
    expected = []
    for x, y in batches:
        expected.append(model.train_on_batch(x, y, return_dict=True)["loss"])
        model.reset_metrics()
    np.testing.assert_allclose(losses, expected, rtol=1e-6)
    np.testing.assert_allclose(legacy_losses, expected, rtol=1e-6)
    for v in model.weights:
        np.testing.assert_allclose(state[v.path], v.numpy(), rtol=1e-6, atol=1e-7)
    with pytest.raises(OnnxLoadError, match="already format 'train_step/2'"):
        upgrade_training(tmp_path / "new.onnx")
    assert cli.main(["upgrade", str(tmp_path / "new.onnx")]) == 1


def test_missing_foreign_or_mismatched_companions_are_clear_errors(tmp_path, capsys):
    model = _model()
    a = model.export_training(tmp_path / "a.onnx")
    b = model.export_training(tmp_path / "b.onnx")
    assert cli.main(["check", str(a)]) == 0
    assert "initial state: ok: a.init.onnx" in capsys.readouterr().out
    assert cli.main(["info", str(a)]) == 0
    assert "initial state: a.init.onnx" in capsys.readouterr().out

    os.replace(companion_path(b), companion_path(a))             # b's companion under a's name
    with pytest.raises(OnnxLoadError, match=r"a\.init\.onnx.*belongs to another export"):
        load_training(a)
    assert cli.main(["check", str(a)]) == 1
    assert "initial state: FAILED" in capsys.readouterr().out
    os.remove(companion_path(a))
    with pytest.raises(OnnxLoadError, match=r"initial-state model 'a\.init\.onnx' is missing"):
        load_training(a)

    other = _model()                                              # same names, another shape: refused
    tf.layers.clear_session()
    wide = tf.keras.Sequential([L.Input((6, 6, 1), name="image"), L.Conv2D(5, 3, activation="relu"),
                                L.BatchNormalization(), L.Flatten(), L.Dropout(0.2), L.Dense(32, activation="relu"),
                                L.Dense(4, activation="softmax", name="probs")])
    wide.compile(optimizer="adam", loss="sparse_categorical_crossentropy", device="cpu")
    other.export_training(tmp_path / "c.onnx")
    step = onnx.load(str(tmp_path / "c.onnx"))
    init = portable.initial_state_model(training_parts(wide)[1])  # carries c's id: only the shapes disagree
    init.metadata_props.add(key=contract.FORMAT_KEY, value=portable.INIT_FORMAT)
    init.metadata_props.add(key=contract.EXPORT_ID_KEY,
                            value={p.key: p.value for p in step.metadata_props}[contract.EXPORT_ID_KEY])
    write_onnx(init, companion_path(tmp_path / "c.onnx"))
    with pytest.raises(OnnxLoadError, match=r"initial value of 'conv2d/kernel' is float32\[3, 3, 1, 5\]; the input "
                                            r"wants float32\[3, 3, 1, 3\]"):
        load_training(tmp_path / "c.onnx")

    for entry in step.metadata_props:
        if entry.key == contract.FORMAT_KEY:
            entry.value = "train_step/9"
    write_onnx(step, tmp_path / "future.onnx")
    with pytest.raises(OnnxLoadError, match="newer than this onnxforge reads"):
        load_training(tmp_path / "future.onnx")


# ------------------------------------------------------------------------------------------ weights as inputs
def test_inference_with_weights_as_inputs_predicts_with_trained_state(tmp_path, checked):
    model = _model()
    predict = model.export(tmp_path / "predict.onnx", weights="inputs")
    train = model.export_training(tmp_path / "train.onnx")
    proto = checked(onnx.load(str(predict)))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["onnxforge.format"] == "infer/2" and meta["onnxforge.init_model"] == "predict.init.onnx"
    assert not {t.name for t in proto.graph.initializer} & {i.name for i in proto.graph.input}
    x, _ = _batch(3, seed=9)
    weights = _run(companion_path(predict))
    np.testing.assert_allclose(_run(predict, {"image": x, **weights})["probs"], model.predict(x, verbose=0),
                               rtol=1e-6)
    batches = [_batch(4, seed=s) for s in range(2)]
    _, state = _steps(train, _run(companion_path(train)), batches)
    for xb, yb in batches:
        model.train_on_batch(xb, yb)
    trained = {name: state[name] for name in weights}              # the training state, fed by name
    np.testing.assert_allclose(_run(predict, {"image": x, **trained})["probs"], model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="weights must be 'initializers' or 'inputs'. Received: weights='baked'"):
        model.export(tmp_path / "bad.onnx", weights="baked")
