"""model.save / onnxforge.load_model / save_weights / load_weights: bit-exact resumption, round trips of
every layer type, custom layers, clear errors, and a save killed mid-write leaving the old file intact."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import onnxforge as tf
from onnxforge.layers.serialization import serialize
from onnxforge.saving import OnnxLoadError, integrity, load_model, register_keras_serializable, temp_files_for

L = tf.keras.layers


def _classifier():
    model = tf.keras.Sequential([L.Input((6,), name="features"), L.Dense(16, activation="relu"),
                                 L.BatchNormalization(), L.Dropout(0.3), L.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"], device="cpu")
    return model


def _xy(n=40):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    return x, (x[:, 0] + x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1)


def _fresh(seed=1):
    tf.layers.clear_session()
    tf.initializers.set_random_seed(seed)


# ------------------------------------------------------------------------------------ bit-exact resume
def test_fit_resumes_bit_exactly_after_save_and_load(tmp_path, checked):
    x, y = _xy()
    _fresh()
    straight = _classifier()            # compile(seed=None): the Dropout seed comes from numpy's global RNG
    full = straight.fit(x, y, epochs=4, batch_size=8, shuffle=True, verbose=0).history

    _fresh()
    first = _classifier()
    half = first.fit(x, y, epochs=2, batch_size=8, shuffle=True, verbose=0).history
    path = first.save(tmp_path / "ckpt.onnx")
    checked(onnx.load(str(path)))
    np.random.rand(17)                  # whatever the program does in between...
    _classifier()
    resumed = load_model(path)
    assert resumed.optimizer.iterations.numpy() == 10
    assert resumed._rng_state.numpy().tolist() == first._rng_state.numpy().tolist()
    rest = resumed.fit(x, y, epochs=2, batch_size=8, shuffle=True, verbose=0).history

    for key in ("loss", "accuracy"):
        assert half[key] + rest[key] == full[key]          # exactly: same shuffles, masks and updates
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(straight.optimizer.get_weights(), resumed.optimizer.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_without_the_numpy_rng_the_shuffles_differ(tmp_path):
    """The control: the exact resume above depends on restoring fit's shuffling RNG."""
    x, y = _xy()
    _fresh()
    model = _classifier()
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    path = model.save(tmp_path / "ckpt.onnx")
    expected = load_model(path).fit(x, y, epochs=1, batch_size=8, verbose=0).history["loss"]
    np.random.rand(17)
    again = load_model(path).fit(x, y, epochs=1, batch_size=8, verbose=0).history["loss"]
    assert again == expected
    np.random.rand(17)
    unrestored = load_model(path, restore_numpy_rng=False).fit(x, y, epochs=1, batch_size=8, verbose=0).history
    assert unrestored["loss"] != expected


def test_saved_file_is_a_runnable_onnx_model_with_configs_in_metadata(tmp_path, checked):
    _fresh()
    model = _classifier()
    x, y = _xy()
    model.fit(x, y, epochs=1, verbose=0)
    path = model.save(tmp_path / "ckpt.onnx")
    proto = checked(onnx.load(str(path)))
    meta = {e.key: e.value for e in proto.metadata_props}
    assert meta["onnxforge.format"] == "saved_model/2"
    assert meta["onnxforge.digest"] == integrity.compute_digest(proto) and proto.metadata_props[-1].key == \
        "onnxforge.digest"
    assert json.loads(meta["onnxforge.model_config"]) == json.loads(json.dumps(serialize(model)))
    assert json.loads(meta["onnxforge.compile_config"])["optimizer"]["class_name"] == "Adam"
    state = json.loads(meta["onnxforge.saved_state"])
    stored = {t.name for t in proto.graph.initializer}
    assert {name for _, name in state["optimizer"]} <= stored and state["rng"] in stored
    assert set(json.loads(meta["onnxforge.weights"])) <= stored
    options = ort.SessionOptions()
    options.log_severity_level = 3      # the optimizer state is not read by the inference graph
    sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, {"features": x})[0], model.predict(x, verbose=0), rtol=1e-6)


def test_include_optimizer_false_and_overwrite_false(tmp_path):
    _fresh()
    model = _classifier()
    x, y = _xy()
    model.fit(x, y, epochs=1, verbose=0)
    path = model.save(tmp_path / "m.onnx", include_optimizer=False)
    loaded = load_model(path)
    assert int(loaded.optimizer.iterations.numpy()) == 0 and loaded.compiled
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    with pytest.raises(FileExistsError, match="overwrite=False"):
        model.save(path, overwrite=False)
    uncompiled = load_model(path, compile=False)
    assert not getattr(uncompiled, "compiled", False)


def test_save_with_external_data_and_the_keras_spellings(tmp_path):
    _fresh()
    model = tf.keras.Sequential([L.Input((64,)), L.Dense(64), L.Dense(2)])
    model.compile(optimizer="adam", loss="mse", device="cpu")
    x = np.ones((2, 64), np.float32)
    model.fit(x, np.zeros((2, 2), np.float32), epochs=1, verbose=0)
    path = model.save(tmp_path / "big.onnx", external_data=True)
    assert len([p for p in os.listdir(tmp_path) if p.endswith(".data")]) == 1
    assert tf.keras.models.load_model is tf.load_model is tf.keras.saving.load_model is load_model
    loaded = tf.keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    for a, b in zip(loaded.optimizer.get_weights(), model.optimizer.get_weights()):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------------------------ every layer type
def _functional_merges():
    a, b = L.Input((4,), name="a"), L.Input((4,), name="b")
    da, db = L.Dense(4, name="da")(a), L.Dense(4, name="db")(b)
    merged = [L.Add()([da, db]), L.Subtract()([da, db]), L.Multiply()([da, db]), L.Average()([da, db]),
              L.Maximum()([da, db]), L.Minimum()([da, db])]
    out = L.Dense(2, name="head")(L.Concatenate()(merged))
    return tf.keras.Model([a, b], [out, L.Softmax(name="p")(out)]), [(3, 4), (3, 4)]


_CASES = {
    "dense": lambda: ([L.Input((6,)), L.Dense(4, activation="relu", kernel_regularizer="l2"), L.Dense(3)], (3, 6)),
    "conv2d": lambda: ([L.Input((8, 8, 2)), L.Conv2D(3, 3, padding="same"), L.BatchNormalization(), L.ReLU(),
                        L.MaxPooling2D(), L.DepthwiseConv2D(3, padding="same"), L.SeparableConv2D(4, 1),
                        L.Conv2DTranspose(2, 2, strides=2), L.UpSampling2D(), L.ZeroPadding2D(1),
                        L.AveragePooling2D(), L.GlobalMaxPooling2D()], (2, 8, 8, 2)),
    "conv2d_channels_first": lambda: ([L.Input((2, 6, 6)), L.Conv2D(3, 3, data_format="channels_first"),
                                       L.GlobalAveragePooling2D(data_format="channels_first")], (2, 2, 6, 6)),
    "conv1d": lambda: ([L.Input((10, 3)), L.Conv1D(4, 3), L.LayerNormalization(), L.MaxPooling1D(),
                        L.AveragePooling1D(), L.GlobalAveragePooling1D(), L.Dense(2)], (2, 10, 3)),
    "recurrent": lambda: ([L.Input((None,), dtype="int64"), L.Embedding(20, 4, mask_zero=True),
                           L.LSTM(5, return_sequences=True), L.GRU(3, return_sequences=True), L.SimpleRNN(2)],
                          "tokens"),
    "wrappers": lambda: ([L.Input((7, 3)), L.Masking(), L.Bidirectional(L.LSTM(3, return_sequences=True)),
                          L.TimeDistributed(L.Dense(2)), L.Flatten(), L.Dropout(0.3), L.GaussianNoise(0.1),
                          L.Dense(2, activation="softmax")], (2, 7, 3)),
    "shapes_and_activations": lambda: ([L.Input((4, 3)), L.Permute((2, 1)), L.Reshape((12,)), L.LeakyReLU(),
                                        L.ELU(), L.Activation("tanh"), L.Dense(3), L.Softmax()], (2, 4, 3)),
}


def _inputs(spec, rng):
    if spec == "tokens":
        return rng.integers(0, 20, (3, 6))
    if isinstance(spec, list):
        return [rng.normal(size=s).astype(np.float32) for s in spec]
    return rng.normal(size=spec).astype(np.float32)


@pytest.mark.parametrize("case", sorted(_CASES) + ["functional_merges"])
def test_every_layer_type_round_trips(tmp_path, case):
    _fresh()
    if case == "functional_merges":
        model, spec = _functional_merges()
    else:
        layers, spec = _CASES[case]()
        model = tf.keras.Sequential(layers)
    rng = np.random.default_rng(2)
    for w in model.weights:       # non-default values everywhere (zero biases would hide a mix-up)
        w.assign(rng.normal(size=w.shape).astype(w.dtype) * 0.3 if w.dtype.kind == "f" else w.numpy())
    x = _inputs(spec, rng)
    path = model.save(tmp_path / f"{case}.onnx")
    loaded = load_model(path)
    assert type(loaded) is type(model)
    assert serialize(loaded) == serialize(model)
    assert [w.path for w in loaded.weights] == [w.path for w in model.weights]
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    want, got = model.predict(x, verbose=0), loaded.predict(x, verbose=0)
    for a, b in zip(want if isinstance(want, list) else [want], got if isinstance(got, list) else [got]):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------------------------ custom objects
@register_keras_serializable(package="tests")
class Scale(tf.layers.Layer):
    def __init__(self, factor: float = 2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def build(self, input_shape):
        self.alpha = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="alpha")

    def call(self, x):
        return x * self.alpha * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def test_registered_custom_layer_and_custom_loss_round_trip(tmp_path):
    def halved_mse(y_true, y_pred):
        return ((y_true - y_pred) * (y_true - y_pred)) * 0.5

    _fresh()
    model = tf.keras.Sequential([L.Input((3,)), Scale(3.0), L.Dense(2)])
    model.compile(optimizer="sgd", loss=halved_mse, device="cpu")
    x, y = np.ones((4, 3), np.float32), np.zeros((4, 2), np.float32)
    model.fit(x, y, epochs=1, verbose=0)
    path = model.save(tmp_path / "custom.onnx")
    config = json.loads(next(e.value for e in onnx.load(str(path)).metadata_props
                             if e.key == "onnxforge.model_config"))
    assert config["config"]["layers"][1]["registered_name"] == "tests>Scale"
    with pytest.raises(ValueError, match="halved_mse"):
        load_model(path)                       # the loss function is not in the file: it must be given
    loaded = load_model(path, custom_objects={"halved_mse": halved_mse})
    assert isinstance(loaded.layers[0], Scale) and loaded.layers[0].factor == 3.0
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.train_on_batch(x, y) == model.train_on_batch(x, y)


def test_unknown_class_and_subclassed_model_errors(tmp_path):
    _fresh()
    model = tf.keras.Sequential([L.Input((3,)), Scale(), L.Dense(2)])
    path = model.save(tmp_path / "m.onnx")
    proto = onnx.load(str(path))
    for e in proto.metadata_props:
        if e.key == "onnxforge.model_config":
            e.value = e.value.replace("tests>Scale", "elsewhere>Scale")
    integrity.seal(proto)   # an edited file, re-sealed: what the loader sees after the digest passes
    onnx.save(proto, str(tmp_path / "renamed.onnx"))
    with pytest.raises(ValueError, match=r"Could not locate class 'elsewhere>Scale'.*register_keras_serializable"):
        load_model(tmp_path / "renamed.onnx")
    assert isinstance(load_model(tmp_path / "renamed.onnx",
                                 custom_objects={"elsewhere>Scale": Scale}).layers[0], Scale)

    class Net(tf.keras.Model):
        def __init__(self, units=2, **kwargs):
            super().__init__(**kwargs)
            self.d = L.Dense(units)

        def call(self, x):
            return self.d(x)

    # Plain constructor arguments are Keras 3's automatic config: such a model saves without get_config().
    plain = Net(units=3)
    plain.build((None, 3))
    plain.save(tmp_path / "plain.onnx")
    loaded = load_model(tmp_path / "plain.onnx", custom_objects={"Net": Net})
    np.testing.assert_array_equal(loaded.get_weights()[0], plain.get_weights()[0])
    net = Net(units=np.int64(2))   # not a plain value: no automatic config
    net.build((None, 3))
    with pytest.raises(NotImplementedError, match="get_config.*save_weights"):
        net.save(tmp_path / "net.onnx")
    net.save_weights(tmp_path / "net.weights.onnx")    # weights still save
    other = Net()
    other.build((None, 3))
    other.load_weights(tmp_path / "net.weights.onnx")
    np.testing.assert_array_equal(other.get_weights()[0], net.get_weights()[0])


# ------------------------------------------------------------------------------------ weights
@pytest.mark.parametrize("suffix", [".weights.onnx", ".npz"])
def test_save_and_load_weights(tmp_path, suffix, checked):
    _fresh()
    model = _classifier()
    x, y = _xy()
    model.fit(x, y, epochs=1, verbose=0)
    path = model.save_weights(tmp_path / f"w{suffix}")
    if suffix.endswith(".onnx"):
        checked(onnx.load(str(path)))
    twin = _classifier()                     # same architecture, other layer names (dense_2, ...)
    assert twin.weights[0].path != model.weights[0].path
    twin.load_weights(path)
    np.testing.assert_array_equal(twin.predict(x, verbose=0), model.predict(x, verbose=0))


def test_load_weights_reads_saves_exports_and_checkpoint_npz(tmp_path):
    from onnxforge.callbacks import save_weights_npz

    _fresh()
    model = _classifier()
    x, _ = _xy()
    model.save(tmp_path / "full.onnx")
    model.export(tmp_path / "exported.onnx")
    save_weights_npz(model.get_weights(), tmp_path / "ckpt.npz")
    for name in ("full.onnx", "exported.onnx", "ckpt.npz"):
        twin = _classifier()
        twin.load_weights(tmp_path / name)
        np.testing.assert_array_equal(twin.predict(x, verbose=0), model.predict(x, verbose=0))


def test_weights_errors_are_clear(tmp_path):
    _fresh()
    model = _classifier()
    with pytest.raises(ValueError, match=r"must end in `\.weights\.h5`.*`\.weights\.onnx` and `\.npz`"):
        model.save_weights(tmp_path / "model.bin")
    model.save_weights(tmp_path / "w.npz")
    smaller = tf.keras.Sequential([L.Input((6,)), L.Dense(3)])
    with pytest.raises(ValueError, match="holds 8 tensors but the model has 2"):
        smaller.load_weights(tmp_path / "w.npz")
    wider = tf.keras.Sequential([L.Input((6,)), L.Dense(17), L.BatchNormalization(), L.Dropout(0.1), L.Dense(3)])
    with pytest.raises(ValueError, match=r"shape \(6, 17\).*shape \(6, 16\)"):
        wider.load_weights(tmp_path / "w.npz")
    with pytest.warns(UserWarning, match="skipping"):
        wider.load_weights(tmp_path / "w.npz", skip_mismatch=True)
    np.savez(tmp_path / "pickled.npz", w=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="not a readable weights .npz"):
        model.load_weights(tmp_path / "pickled.npz")
    with pytest.raises(ValueError, match="is not built"):
        tf.keras.Sequential([L.Dense(2)]).load_weights(tmp_path / "w.npz")


# ------------------------------------------------------------------------------------ load errors
def test_load_model_refuses_what_it_cannot_rebuild(tmp_path):
    _fresh()
    model = _classifier()
    model.export(tmp_path / "exported.onnx")
    model.save_weights(tmp_path / "w.weights.onnx")
    path = model.save(tmp_path / "ok.onnx")
    with pytest.raises(OnnxLoadError, match="not one saved by onnxforge"):
        load_model(tmp_path / "exported.onnx")
    with pytest.raises(OnnxLoadError, match="weights only"):
        load_model(tmp_path / "w.weights.onnx")
    data = path.read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(OnnxLoadError, match="truncated|corrupt"):
        load_model(tmp_path / "cut.onnx")
    (tmp_path / "pickle.onnx").write_bytes(b"\x80\x04\x95" + data[:40])
    with pytest.raises(OnnxLoadError):
        load_model(tmp_path / "pickle.onnx")
    with pytest.raises(OnnxLoadError, match="cannot open"):
        load_model(tmp_path / "missing.onnx")
    with pytest.raises(FileNotFoundError, match=r"accessible `\.keras` zip file"):
        load_model(tmp_path / "model.keras")
    with pytest.raises(ValueError, match=r"Invalid filepath extension.*`\.keras`.*`\.onnx`"):
        model.save(tmp_path / "model.bin")
    proto = onnx.load(str(path))
    for e in proto.metadata_props:
        if e.key == "onnxforge.model_config":
            e.value = "{not json"
    onnx.save(proto, str(tmp_path / "badjson.onnx"))
    with pytest.raises(OnnxLoadError, match="does not match its SHA-256 digest"):
        load_model(tmp_path / "badjson.onnx")
    integrity.seal(proto)
    onnx.save(proto, str(tmp_path / "badjson.onnx"))
    with pytest.raises(OnnxLoadError, match="not valid JSON"):
        load_model(tmp_path / "badjson.onnx")


# ------------------------------------------------------------------------------------ crash safety
_KILLED_WRITER = textwrap.dedent('''
    import os, sys, time
    import numpy as np
    import onnxforge as tf

    path = sys.argv[1]
    L = tf.keras.layers
    model = tf.keras.Sequential([L.Input((32,)), L.Dense(256), L.Dense(4)])
    model.compile(optimizer="adam", loss="mse", device="cpu")
    model.save(path)
    np.savez(path + ".v1.npz", *model.get_weights())
    model.fit(np.ones((8, 32), np.float32), np.zeros((8, 4), np.float32), epochs=2, verbose=0)

    real_fdopen = os.fdopen

    class Torn:
        """The file object of the next write: half the bytes reach the disk, then the process stalls."""
        def __init__(self, f):
            self.f = f
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            return self.f.__exit__(*exc)
        def write(self, data):
            data = memoryview(data)
            self.f.write(data[: len(data) // 2])
            self.f.flush()
            print("HALF", len(data), flush=True)
            time.sleep(600)
        def __getattr__(self, name):
            return getattr(self.f, name)

    os.fdopen = lambda fd, *args, **kwargs: Torn(real_fdopen(fd, *args, **kwargs))
    model.save(path)
''')


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")
def test_a_save_killed_mid_write_leaves_the_previous_file_intact(tmp_path):
    path = tmp_path / "model.onnx"
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()         # blocks until the second save is half written
        assert line.startswith("HALF"), proc.stderr.read()
        total = int(line.split()[1])
        temps = temp_files_for(path)
        assert len(temps) == 1 and 0 < temps[0].stat().st_size < total
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert temp_files_for(path)                       # the torn temporary file is all that is left...
    restored = load_model(path)                       # ...and the previous save loads, whole
    v1 = np.load(str(path) + ".v1.npz")
    for k, w in enumerate(restored.get_weights()):
        np.testing.assert_array_equal(w, v1[f"arr_{k}"])
    time.sleep(0.01)
    restored.save(path)                               # the next save clears the dead writer's leftovers
    assert temp_files_for(path) == []


# A save(external_data=True) that stalls at a chosen point (so the parent can SIGKILL it there): while the
# data file is half written ("data"), or after the data file is in place but before the .onnx file is
# replaced ("onnx").
_KILLED_EXTERNAL_WRITER = textwrap.dedent('''
    import sys, time
    import onnxforge as tf
    import onnxforge.saving.onnx_file as export

    path, stall_at = sys.argv[1], sys.argv[2]
    L = tf.keras.layers
    model = tf.keras.Sequential([L.Input((64,)), L.Dense(64), L.Dense(4)])
    model.compile(optimizer="adam", loss="mse", device="cpu")
    real = export.atomic_write

    def stalling(target, data):
        kind = "data" if str(target).endswith(".data") else "onnx"
        if kind != stall_at:
            return real(target, data)
        def write(f):
            if kind == "data":
                data(f)
            else:
                f.write(data[: len(data) // 2])
            f.flush()
            print("stalled", flush=True)
            time.sleep(120)
        return real(target, write)

    export.atomic_write = stalling
    model.save(path, external_data=True)
''')


@pytest.mark.parametrize("stall_at", ["data", "onnx"])
def test_a_killed_external_data_save_leaves_nothing_behind_after_the_next_save(tmp_path, stall_at):
    """Issue 11: 4 of 10 kills during save(external_data=True) left a model-sized temporary data file that
    later saves never removed (its name carries a fresh random token, so the target-based clean-up of
    atomic_write never matched it)."""
    path = tmp_path / "model.onnx"
    for _ in range(2):   # two dead writers: both leftovers must go
        proc = subprocess.Popen([sys.executable, "-c", _KILLED_EXTERNAL_WRITER, str(path), stall_at],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "stalled", proc.stderr.read()
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(timeout=60)
    leftovers = [p.name for p in tmp_path.iterdir()]
    assert any("onnxforge-tmp" in n for n in leftovers), leftovers   # the kills did leave litter

    _fresh()
    model = tf.keras.Sequential([L.Input((64,)), L.Dense(64), L.Dense(4)])
    model.compile(optimizer="adam", loss="mse", device="cpu")
    model.save(path, external_data=True)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert not [n for n in names if "onnxforge-tmp" in n], names
    assert len([n for n in names if n.endswith(".data")]) == 1, names
    np.testing.assert_array_equal(load_model(path).get_weights()[0], model.get_weights()[0])
