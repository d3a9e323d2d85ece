"""Served without us: exported ``.onnx`` files run in a process that imports only onnxruntime and numpy.

The inference graph gives ``predict``'s outputs; five training steps driven from the exported training
graph alone (state pairs and input roles read from its metadata through onnxruntime's API, the initial
state from the companion model it names) give the
losses and the state of five ``train_on_batch`` calls; the evaluation graph fed that state gives
``evaluate``'s loss and accuracy.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import onnxforge as tf

L = tf.keras.layers

# Runs in a fresh interpreter: onnxruntime + numpy + the standard library, nothing else.
_DRIVER = textwrap.dedent('''
    import json, sys
    import numpy as np
    import onnxruntime as ort

    folder = sys.argv[1]
    data = np.load(folder + "/data.npz")
    cpu = ["CPUExecutionProvider"]   # default log severity: loading any of the files must print nothing

    def initial_state(sess):
        """The companion model named in the metadata: no inputs, outputs named after the inputs they feed."""
        init_name = sess.get_modelmeta().custom_metadata_map["onnxforge.init_model"]
        init = ort.InferenceSession(folder + "/" + init_name, providers=cpu)
        return dict(zip([o.name for o in init.get_outputs()], init.run(None, {})))

    infer = ort.InferenceSession(folder + "/model.onnx", providers=cpu)
    predictions = infer.run(None, {infer.get_inputs()[0].name: data["x_pred"]})[0]

    train = ort.InferenceSession(folder + "/train_step.onnx", providers=cpu)
    meta = train.get_modelmeta().custom_metadata_map
    pairs = json.loads(meta["onnxforge.state"])
    io = json.loads(meta["onnxforge.io"])["inputs"]
    x_name, y_name, w_name = io["data"][0], io["targets"][0], io["sample_weights"][0]
    lr = np.asarray(float(meta["onnxforge.learning_rate"]), np.float32)
    out_names = [o.name for o in train.get_outputs()]
    state, losses = initial_state(train), []
    for k in range(5):
        x, y = data["x%d" % k], data["y%d" % k]
        feeds = {x_name: x, y_name: y, w_name: np.ones(len(x), np.float32), io["learning_rate"]: lr, **state}
        out = dict(zip(out_names, train.run(None, feeds)))
        state.update({i: out[o] for i, o in pairs})
        losses.append(float(out["sums/loss/total"] / out["sums/loss/count"]))

    evaluate = ort.InferenceSession(folder + "/eval_step.onnx", providers=cpu)
    eio = json.loads(evaluate.get_modelmeta().custom_metadata_map["onnxforge.io"])["inputs"]
    feeds = {eio["data"][0]: data["x_eval"], eio["targets"][0]: data["y_eval"],
             eio["sample_weights"][0]: np.ones(len(data["x_eval"]), np.float32)}
    feeds.update({p: state[p] for p in eio["params"]})
    sums = dict(zip([o.name for o in evaluate.get_outputs()], evaluate.run(None, feeds)))

    third_party = sorted({m.split(".")[0] for m in sys.modules} - set(sys.stdlib_module_names)
                         - {"__main__", "_distutils_hack"})
    third_party = [m for m in third_party if not m.startswith("__editable__")]
    np.savez(folder + "/result.npz", predictions=predictions, losses=np.asarray(losses),
             **{"state%d" % k: state[i] for k, (i, _) in enumerate(pairs)})
    print(json.dumps({"modules": third_party, "pairs": pairs,
                      "eval": [float(sums["sums/loss/total"] / sums["sums/loss/count"]),
                               float(sums["sums/accuracy/total"] / sums["sums/accuracy/count"])]}))
''')


def _model():
    tf.layers.clear_session()
    tf.initializers.set_random_seed(11)
    model = tf.keras.Sequential([L.Input((8, 8, 2), name="image"), L.Conv2D(4, 3, padding="same", activation="relu"),
                                 L.BatchNormalization(), L.MaxPooling2D(), L.Flatten(), L.Dropout(0.3),
                                 L.Dense(16, activation="relu"), L.Dense(3, activation="softmax", name="probs")])
    model.compile(optimizer=tf.optimizers.Adam(learning_rate=0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], device="cpu", seed=5)
    return model


def test_exported_graphs_run_with_onnxruntime_and_numpy_only(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((24, 8, 8, 2), dtype=np.float32)
    y = (x[:, :4].mean(axis=(1, 2, 3)) * 6).astype(np.int64) % 3
    model = _model()
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    # The same batch each step (noise from Dropout aside), so the loss must fall.
    batches = {f"x{k}": x[:8] for k in range(5)} | {f"y{k}": y[:8] for k in range(5)}
    np.savez(tmp_path / "data.npz", x_pred=x[:7], x_eval=x[4:20], y_eval=y[4:20], **batches)
    model.export(tmp_path / "model.onnx")
    model.export_training(tmp_path / "train_step.onnx")
    model.export_eval(tmp_path / "eval_step.onnx")
    expected_predictions = model.predict(x[:7], verbose=0)

    done = subprocess.run([sys.executable, "-c", _DRIVER, str(tmp_path)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""                                  # onnxruntime warned about nothing
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["modules"] == ["numpy", "onnxruntime"]      # neither onnxforge nor even onnx
    result = np.load(tmp_path / "result.npz")

    np.testing.assert_allclose(result["predictions"], expected_predictions, rtol=1e-5, atol=1e-6)
    losses = []
    for k in range(5):
        losses.append(model.train_on_batch(batches[f"x{k}"], batches[f"y{k}"], return_dict=True)["loss"])
        model.reset_metrics()
    np.testing.assert_allclose(result["losses"], losses, rtol=1e-6)
    assert result["losses"][-1] < result["losses"][0]           # it does learn
    program = model.compiled_programs["train_step"]
    assert report["pairs"] == [[i, o] for _, i, o in program.state]
    for k, (var, _, _) in enumerate(program.state):               # weights, slots, step, statistics, RNG
        np.testing.assert_allclose(result[f"state{k}"], var.numpy(), rtol=1e-5, atol=1e-6, err_msg=var.name)
    loss, accuracy = model.evaluate(x[4:20], y[4:20], verbose=0)
    assert report["eval"] == pytest.approx([loss, accuracy], rel=1e-6)
