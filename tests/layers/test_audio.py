"""ops.stft / ops.istft, STFTSpectrogram and MelSpectrogram against Keras 3 on TensorFlow (run once, in a
child process, since the suite's Keras is on torch): values on random signals, first-step gradients of small
models trained with ``fit``, and the STFT's input gradient against torch autograd and finite differences."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest

import onnxforge as of
from onnxforge import keras as fk
from onnxforge import ops as fops
from onnxforge.graph import GraphBuilder
from onnxforge.tracing import TraceContext
from tests.conftest import check_full
from tests import tf_server

R = np.random.default_rng(0)
# (signal shape, sequence_length, sequence_stride, fft_length, window, center); "array" is a random window.
OP_CASES = [((37,), 8, 4, 8, "hann", True), ((2, 40), 7, 3, 9, "hamming", False), ((2, 3, 33), 5, 2, 8, "hann", True),
            ((2, 40), 6, 4, 16, None, True), ((41,), 6, 5, 8, "array", False), ((2, 30), 8, 8, 8, "hamming", True),
            ((1, 29), 4, 1, 4, None, False)]
LAYER_CASES = [("log", dict(frame_length=16, frame_step=4, fft_length=32)),
               ("magnitude", dict(frame_length=15, fft_length=15, window="hamming", padding="same", periodic=True)),
               ("psd", dict(frame_length=8, frame_step=3, window=None, scaling=None, expand_dims=True)),
               ("real", dict(frame_length=8, data_format="channels_first", window="blackman", scaling="spectrum")),
               ("imag", dict(frame_length=8, data_format="channels_first", expand_dims=True, padding="same")),
               ("angle", dict(frame_length=16, frame_step=5)),
               ("stft", dict(frame_length=12, frame_step=6, fft_length=16, window="hamming"))]
MEL_CASES = [((2, 1000), dict(fft_length=128, sequence_stride=32, num_mel_bins=16)),
             ((777,), dict(fft_length=100, sequence_stride=25, sequence_length=64, window="hamming", num_mel_bins=10,
                           sampling_rate=8000, min_freq=50.0, max_freq=3000)),
             ((2, 500), dict(fft_length=64, sequence_stride=16, power_to_db=False, mag_exp=1.0, num_mel_bins=8)),
             ((3, 400), dict(fft_length=64, sequence_stride=20, top_db=20.0, mag_exp=1.5, ref_power=2.0, window=None,
                             num_mel_bins=12))]
LR = 0.05


def _inputs() -> dict:
    data = {}
    for k, (shape, length, *_rest) in enumerate(OP_CASES):
        data[f"op{k}"] = R.normal(size=shape).astype("float32")
        data[f"win{k}"] = R.uniform(0.2, 1.0, size=length).astype("float32")
    for k, (_mode, kw) in enumerate(LAYER_CASES):
        cf = kw.get("data_format") == "channels_first"
        data[f"layer{k}"] = R.normal(size=(2, 3, 41) if cf else (2, 41, 3)).astype("float32")
    for k, (shape, _kw) in enumerate(MEL_CASES):
        data[f"mel{k}"] = R.normal(size=shape).astype("float32")
    data["audio"] = R.normal(size=(6, 400)).astype("float32")
    data["labels"] = R.integers(0, 3, size=(6,))
    data["targets"] = R.normal(size=(6, 2)).astype("float32")
    return data


def build_mel_model(lib):
    """MelSpectrogram -> Conv1D -> Dense, Keras's shapes: (batch, 400) -> (batch, 3)."""
    inputs = lib.Input((400,))
    x = lib.layers.MelSpectrogram(fft_length=64, sequence_stride=16, num_mel_bins=12)(inputs)
    x = lib.layers.Rescaling(0.02)(x)
    x = lib.layers.Conv1D(4, 3, activation="tanh")(x)
    x = lib.layers.GlobalAveragePooling1D()(x)
    return lib.Model(inputs, lib.layers.Dense(3, activation="softmax")(x))


def build_stft_model(lib):
    """A trainable STFTSpectrogram (its kernels are weights) -> Conv1D -> Dense on signals of any length."""
    inputs = lib.Input((None, 1))
    x = lib.layers.STFTSpectrogram(mode="log", frame_length=16, frame_step=8, fft_length=32)(inputs)
    x = lib.layers.Conv1D(4, 3)(x)
    x = lib.layers.GlobalAveragePooling1D()(x)
    return lib.Model(inputs, lib.layers.Dense(2)(x))


def run_all(lib, data) -> dict:
    """Everything compared, computed with ``lib`` (Keras on TensorFlow, or onnxforge.keras)."""
    out = {}
    for k, (_shape, length, stride, fft, window, center) in enumerate(OP_CASES):
        win = data[f"win{k}"] if window == "array" else window
        real, imag = lib.ops.stft(data[f"op{k}"], length, stride, fft, window=win, center=center)
        out[f"op{k}_real"], out[f"op{k}_imag"] = np.asarray(real), np.asarray(imag)
        for cut in (None, 20):
            back = lib.ops.istft((real, imag), length, stride, fft, length=cut, window=win, center=center)
            out[f"op{k}_istft{cut}"] = np.asarray(back)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # fft_length=15 is not a power of two
        for k, (mode, kw) in enumerate(LAYER_CASES):
            out[f"layer{k}"] = np.asarray(lib.layers.STFTSpectrogram(mode=mode, **kw)(data[f"layer{k}"]))
    for k, (_shape, kw) in enumerate(MEL_CASES):
        out[f"mel{k}"] = np.asarray(lib.layers.MelSpectrogram(**kw)(data[f"mel{k}"]))
    for name, build, loss, y in (("melfit", build_mel_model, "sparse_categorical_crossentropy", data["labels"]),
                                 ("stftfit", build_stft_model, "mse", data["targets"])):
        model = build(lib)
        x = data["audio"] if name == "melfit" else data["audio"][..., None]
        model.set_weights([data[f"{name}_w{i}"] for i in range(int(data[f"{name}_n"]))])
        model.compile(optimizer=lib.optimizers.SGD(LR), loss=loss)
        before = model.get_weights()
        # One full batch: (w0 - w1) / lr is the first step's gradient.
        model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
        for i, (w0, w1) in enumerate(zip(before, model.get_weights())):
            out[f"{name}_grad{i}"] = (w0 - w1) / LR
        out[f"{name}_loss"] = np.asarray(model.fit(x, y, batch_size=3, epochs=2, shuffle=False, verbose=0)
                                         .history["loss"])
        out[f"{name}_pred"] = model.predict(x, verbose=0)
    return out


_CHILD = """
import os, sys
os.environ["KERAS_BACKEND"] = "tensorflow"
sys.path.insert(0, sys.argv[2])
import numpy as np, keras
from tests.layers.test_audio import run_all
from tests.layers.test_audio import build_mel_model, build_stft_model
data = dict(np.load(sys.argv[1]))
out = run_all(keras, data)
for name, build, x in (("melfit", build_mel_model, data["audio"]), ("stftfit", build_stft_model, data["audio"][..., None])):
    model = build(keras)
    model.set_weights([data[f"{name}_w{i}"] for i in range(int(data[f"{name}_n"]))])
    model.save(sys.argv[1] + f".{name}.keras")
    out[f"{name}_file_pred"] = model.predict(x, verbose=0)
np.savez(sys.argv[1] + ".out.npz", **out)
"""


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """(onnxforge's results, Keras-on-TensorFlow's) for the same inputs and initial weights."""
    pytest.importorskip("tensorflow")
    data = _inputs()
    for name, build in (("melfit", build_mel_model), ("stftfit", build_stft_model)):
        weights = build(fk).get_weights()
        rng = np.random.default_rng(1)
        # The STFT kernels keep their initial values (as Keras's would be); the rest are random.
        weights = [w if name == "stftfit" and i < 2 else rng.normal(0, 0.5, w.shape).astype("float32")
                   for i, w in enumerate(weights)]
        data[f"{name}_n"] = np.asarray(len(weights))
        data.update({f"{name}_w{i}": w for i, w in enumerate(weights)})
    path = tmp_path_factory.mktemp("audio") / "data.npz"
    np.savez(path, **data)
    root = str(Path(__file__).resolve().parents[2])
    tf_server.run(["-c", _CHILD, str(path), root], check=True, timeout=600)
    theirs = dict(np.load(str(path) + ".out.npz"))
    ours = run_all(fk, data)
    for name, x in (("melfit", data["audio"]), ("stftfit", data["audio"][..., None])):
        # Keras's own .keras files load here and compute what Keras computed.
        ours[f"{name}_file_pred"] = fk.models.load_model(f"{path}.{name}.keras").predict(x, verbose=0)
    return ours, theirs


def _close(ours, theirs, key, atol, rtol=1e-4):
    assert ours[key].shape == theirs[key].shape, key
    np.testing.assert_allclose(ours[key], theirs[key], atol=atol, rtol=rtol, err_msg=key)


@pytest.mark.parametrize("k", range(len(OP_CASES)))
def test_stft_and_istft_match_keras_tensorflow(compared, k):
    ours, theirs = compared
    for part in ("real", "imag"):
        _close(ours, theirs, f"op{k}_{part}", 3e-5)
    for cut in (None, 20):
        _close(ours, theirs, f"op{k}_istft{cut}", 1e-4)


@pytest.mark.parametrize("k", range(len(LAYER_CASES)))
def test_stft_spectrogram_modes_match_keras_tensorflow(compared, k):
    ours, theirs = compared
    if LAYER_CASES[k][0] == "angle":   # a phase of pi and one of -pi are the same angle
        diff = np.angle(np.exp(1j * (ours[f"layer{k}"] - theirs[f"layer{k}"])))
        assert ours[f"layer{k}"].shape == theirs[f"layer{k}"].shape and np.abs(diff).max() < 1e-3
    else:
        _close(ours, theirs, f"layer{k}", 2e-4)


@pytest.mark.parametrize("k", range(len(MEL_CASES)))
def test_mel_spectrogram_matches_keras_tensorflow(compared, k):
    ours, theirs = compared
    _close(ours, theirs, f"mel{k}", 2e-3)


@pytest.mark.parametrize("name", ["melfit", "stftfit"])
def test_fit_first_step_gradients_match_keras_tensorflow(compared, name):
    ours, theirs = compared
    grads = sorted(k for k in ours if k.startswith(f"{name}_grad"))
    assert grads and all(np.abs(ours[k]).max() > 0 for k in grads)   # the STFT kernels get gradients too
    for key in grads:
        _close(ours, theirs, key, 2e-4, 2e-3)
    _close(ours, theirs, f"{name}_loss", 1e-4, 1e-3)
    # After three steps, log(|STFT|) of near-silent bins amplifies float32 round-off of the kernels.
    _close(ours, theirs, f"{name}_pred", 5e-3, 5e-3)
    _close(ours, theirs, f"{name}_file_pred", 1e-5, 1e-4)


def _stft_graph(fn, shape, dtype=onnx.TensorProto.FLOAT):
    b = GraphBuilder()
    with TraceContext(b, training=False).active():
        x = b.input("x", dtype, shape)
        b.output(fn(x), "y")
    return check_full(b.to_model())


def test_stft_gradient_matches_torch_autograd():
    torch = pytest.importorskip("torch")
    x = R.normal(size=(2, 50)).astype("float32")
    upstream = R.normal(size=(2, 2, 13, 9)).astype("float32")
    b = GraphBuilder()
    with TraceContext(b, training=True).active():
        v = b.input("x", onnx.TensorProto.FLOAT, x.shape)
        with of.GradientTape() as tape:
            tape.watch(v)
            real, imag = fops.stft(v, 16, 4, 16)
            loss = fops.sum(fops.stack([real, imag], axis=1) * fops.convert_to_tensor(upstream))
        b.output(tape.gradient(loss, v), "g")
    import onnxruntime as ort

    got = ort.InferenceSession(check_full(b.to_model()).SerializeToString(),
                               providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    spec = torch.stft(t, 16, hop_length=4, win_length=16, window=torch.hann_window(16, dtype=torch.float64),
                      center=True, pad_mode="reflect", return_complex=True)   # (batch, bins, frames)
    ref = torch.stack([spec.real, spec.imag], dim=1).transpose(-1, -2)
    (ref * torch.tensor(upstream, dtype=torch.float64)).sum().backward()
    np.testing.assert_allclose(got, t.grad.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("fn", [
    lambda x: fops.stft(x, 6, 3, 8, window="hamming")[1],
    lambda x: fops.istft((x[..., :5], x[..., 5:]), 6, 3, 8, window="hann"),
    lambda x: fops.istft((x[..., :5], x[..., 5:]), 8, 5, 8, window=None, center=False),
], ids=["stft", "istft", "istft_unwindowed"])
def test_stft_istft_gradients_by_finite_differences(fn):
    from onnxforge.autodiff.gradcheck import check_gradients

    shape = (2, 6, 10)
    model = _stft_graph(fn, shape, onnx.TensorProto.DOUBLE)
    check_gradients(model, {"x": R.normal(size=shape)}, ["x"], rtol=1e-5, atol=1e-7)


def test_dynamic_lengths_and_graphs_pass_the_checker():
    model = _stft_graph(lambda x: fops.istft(fops.stft(x, 16, 4, 16), 16, 4, 16), ("batch", None))
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for n in (64, 77):
        x = R.normal(size=(2, n)).astype("float32")
        back = sess.run(None, {"x": x})[0]
        static = fops.istft(fops.stft(x, 16, 4, 16), 16, 4, 16)   # the frame count known while building
        assert back.shape == static.shape == (2, n - n % 4)
        np.testing.assert_allclose(back, static, atol=1e-5)
        np.testing.assert_allclose(back[:, 16:-16], x[:, 16:back.shape[1] - 16], atol=1e-4)   # away from the ends
    spec = build_stft_model(fk)
    for n in (100, 131):
        assert spec.predict(R.normal(size=(2, n, 1)).astype("float32"), verbose=0).shape == (2, 2)


def test_configs_and_keras_files_round_trip(tmp_path):
    layer = fk.layers.STFTSpectrogram(mode="psd", frame_length=20, frame_step=5, window=list(np.ones(20)),
                                      scaling="spectrum", expand_dims=True, name="spec")
    config = layer.get_config()
    assert fk.layers.STFTSpectrogram.from_config(config).get_config() == config
    mel = fk.layers.MelSpectrogram(num_mel_bins=40, top_db=60.0, max_freq=7000)
    assert fk.layers.MelSpectrogram.from_config(mel.get_config()).get_config() == mel.get_config()
    init = fk.initializers.get({"class_name": "STFTInitializer", "config": {"side": "imag", "window": "hamming"}})
    assert isinstance(init, fk.initializers.STFT) and init.get_config()["side"] == "imag"
    for build, x in ((build_mel_model, R.normal(size=(2, 400))), (build_stft_model, R.normal(size=(2, 90, 1)))):
        model = build(fk)
        model.save(tmp_path / "m.keras")
        loaded = fk.models.load_model(tmp_path / "m.keras")
        x = x.astype("float32")
        np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


def test_bad_arguments_raise_clear_errors():
    x = np.zeros((2, 64), "float32")
    with pytest.raises(ValueError, match="sequence_stride"):
        fops.stft(x, 8, 0, 8)
    with pytest.raises(ValueError, match="fft_length"):
        fops.stft(x, 16, 4, 8)
    with pytest.raises(ValueError, match="window"):
        fops.stft(x, 8, 4, 8, window="blackman")
    with pytest.raises(ValueError, match="window"):
        fops.stft(x, 8, 4, 8, window=np.ones(5))
    with pytest.raises(TypeError, match="float32"):
        fops.stft(np.zeros((2, 64), "int64"), 8, 4, 8)
    with pytest.raises(ValueError, match="longer signal"):
        fops.stft(np.zeros((4,), "float32"), 8, 4, 8)
    with pytest.raises(ValueError, match="real and imaginary"):
        fops.istft(x, 8, 4, 8)
    with pytest.raises(ValueError, match="mode"):
        fk.layers.STFTSpectrogram(mode="power")
    with pytest.raises(ValueError, match="frame_step"):
        fk.layers.STFTSpectrogram(frame_length=8, frame_step=9)
    with pytest.raises(ValueError, match="padding"):
        fk.layers.STFTSpectrogram(padding="causal")
    with pytest.raises(ValueError, match="window"):
        fk.initializers.STFT("real", "no-such-window")
    with pytest.raises(ValueError, match="fft_length"):
        fk.layers.MelSpectrogram(fft_length=64, sequence_length=128)
