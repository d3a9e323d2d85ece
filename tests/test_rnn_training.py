"""Recurrent models through compile / fit / evaluate / predict: one compiled model for every sequence length,
masks inside fit, Bidirectional merges in compiled graphs, errors before onnxruntime, and the examples.

References are numpy transcriptions of Keras 3's LSTM / GRU (``reset_after=True``) steps and masking rules.
"""
from __future__ import annotations

import importlib.util
import json
import os
import sys

import numpy as np
import onnx
import pytest

from onnxforge import optimizers
from onnxforge.layers import Dense, Embedding, Input
from onnxforge.layers.recurrent import GRU, LSTM, Bidirectional, Masking
from onnxforge.models import Model, Sequential
from onnxforge.runtime import session_runner as runner_module
from tests.conftest import check_full

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ------------------------------------------------------------------------------------------ helpers
@pytest.fixture
def sessions(monkeypatch):
    """Names of the programs whose onnxruntime session was created during the test."""
    made: list[str] = []
    real = runner_module.create_session

    def counting(model, device, name="program", threads=None):
        made.append(name)
        return real(model, device, name, threads)

    monkeypatch.setattr(runner_module, "create_session", counting)
    return made


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def keras_rnn(layer, x, mask=None, go_backwards=False, return_sequences=False, zero_output=False):
    """Keras 3 semantics in float64 numpy: ``x (batch, time, in)``, ``mask (batch, time)`` bool."""
    cell = layer.cell
    K, R = cell.kernel.numpy().astype(np.float64), cell.recurrent_kernel.numpy().astype(np.float64)
    bias = cell.bias.numpy().astype(np.float64)
    u, n = cell.units, x.shape[0]
    h, c = np.zeros((n, u)), np.zeros((n, u))
    steps = range(x.shape[1] - 1, -1, -1) if go_backwards else range(x.shape[1])
    outs = []
    for t in steps:
        if isinstance(layer, LSTM):
            z = x[:, t] @ K + h @ R + bias
            i, f, g, o = (z[:, k * u:(k + 1) * u] for k in range(4))
            c_new = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
            h_new = _sigmoid(o) * np.tanh(c_new)
        else:  # GRU, reset_after=True: gates z, r, h; bias rows [input, recurrent]
            xz, hz = x[:, t] @ K + bias[0], h @ R + bias[1]
            z, r = _sigmoid(xz[:, :u] + hz[:, :u]), _sigmoid(xz[:, u:2 * u] + hz[:, u:2 * u])
            h_new = z * h + (1 - z) * np.tanh(xz[:, 2 * u:] + r * hz[:, 2 * u:])
            c_new = c
        keep = np.ones((n, 1), bool) if mask is None else mask[:, t:t + 1]
        h, c = np.where(keep, h_new, h), np.where(keep, c_new, c)
        outs.append(np.where(keep, h_new, 0.0) if zero_output else h)
    seq = np.stack(outs, 1)
    return seq if return_sequences else h


def bidirectional_ref(layer, x, mask=None):
    """Keras 3 ``Bidirectional`` of a ``return_sequences`` layer: flip the backward sequence back, merge."""
    zero = mask is not None
    y = keras_rnn(layer.forward_layer, x, mask, return_sequences=True, zero_output=zero)
    y_rev = keras_rnn(layer.backward_layer, x, mask, go_backwards=True, return_sequences=True,
                      zero_output=zero)[:, ::-1]
    return {"concat": lambda: np.concatenate([y, y_rev], -1), "sum": lambda: y + y_rev,
            "ave": lambda: (y + y_rev) / 2, "mul": lambda: y * y_rev}[layer.merge_mode]()


def op_counts(model: onnx.ModelProto) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in model.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def load_example(name: str):
    path = os.path.join(ROOT, "examples", f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"onnxforge_example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------- one compiled model, two lengths
@pytest.mark.parametrize("cls,fused_op", [(LSTM, "LSTM"), (GRU, "GRU")])
def test_one_compiled_model_fits_and_predicts_at_two_lengths(cls, fused_op, sessions, rng):
    np.random.seed(1)
    model = Sequential([Input((None, 3)), cls(8), Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    programs = model.compiled_programs
    train, infer = check_full(programs["train_step"].model), check_full(programs["infer"].model)
    # Training runs the recurrence as a Scan and its gradient as a second, reverse Scan (onnxforge's
    # autodiff of the body); inference runs the fused node; both over a symbolic time axis.
    assert op_counts(train).get("Scan") == 2 and fused_op not in op_counts(train)
    assert op_counts(infer).get(fused_op) == 1 and "Scan" not in op_counts(infer)
    for graph in (train, infer):
        time_dim = graph.graph.input[0].type.tensor_type.shape.dim[1]
        assert time_dim.dim_param and not time_dim.HasField("dim_value")

    def data(n, time):
        x = rng.standard_normal((n, time, 3)).astype(np.float32)
        return x, np.tanh(x[:, :, 0].sum(1, keepdims=True) / np.sqrt(time)).astype(np.float32)

    (x6, y6), (x11, y11) = data(48, 6), data(48, 11)
    before6 = model.evaluate(x6, y6, verbose=0)
    model.fit(x6, y6, epochs=5, batch_size=16, verbose=0)
    assert model.evaluate(x6, y6, verbose=0) < before6
    model.predict(x6, verbose=0)
    runners = dict(model._runners)
    made = list(sessions)
    # evaluate and predict ran their programs with the weights as constants (runtime.frozen), over the same
    # symbolic time axis; only the training step's compiled session was made.
    assert made == ["train_step"]
    frozen = model._frozen_programs[1]
    assert frozen["infer"].builds == 1 and frozen["eval_step"].builds >= 1
    runs = runners["train_step"].runs

    before11 = model.evaluate(x11, y11, verbose=0)
    model.fit(x11, y11, epochs=5, batch_size=16, verbose=0)
    loss11 = model.evaluate(x11, y11, verbose=0)
    assert loss11 < before11
    pred11 = model.predict(x11, verbose=0)
    # The same programs, runners and sessions served length 11: nothing was recompiled (the constant-weight
    # sessions were made again because training changed the weights).
    assert sessions == made and frozen["infer"].builds == 2
    assert model._runners == runners and all(model.compiled_programs[k] is programs[k] for k in programs)
    assert runners["train_step"].runs == runs + 15
    # The fused inference at the new length computes Keras's layer with the trained weights.
    ref = keras_rnn(model.layers[0], x11.astype(np.float64)) @ model.layers[1].kernel.numpy() + \
        model.layers[1].bias.numpy()
    np.testing.assert_allclose(pred11, ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(loss11, np.mean((ref - y11) ** 2), rtol=1e-4)


# ------------------------------------------------------------------------- masks inside fit
def _masked_pair(mask_zero, rng):
    """Two equal Embedding -> LSTM -> Dense models trained by plain SGD."""
    models = []
    for _ in range(2):
        model = Sequential([Input((None,), dtype="int64"), Embedding(9, 4, mask_zero=mask_zero), LSTM(5), Dense(1)])
        model.compile(optimizer=optimizers.SGD(0.5), loss="mse")
        models.append(model)
    weights = [rng.standard_normal(w.shape).astype(np.float32) * 0.5 for w in models[0].get_weights()]
    for model in models:
        model.set_weights(weights)
    return models


@pytest.mark.parametrize("mask_zero", [True, False])
def test_mask_zero_inside_fit_ignores_padding(mask_zero, rng):
    """Fitting the same sentences padded to 6 or to 10 steps trains the same weights only with the mask."""
    ids = rng.integers(1, 9, (12, 6))
    for i, length in enumerate(rng.integers(2, 7, 12)):
        ids[i, length:] = 0
    long = np.concatenate([ids, np.zeros((12, 4), ids.dtype)], 1)
    y = rng.standard_normal((12, 1)).astype(np.float32)
    short_model, long_model = _masked_pair(mask_zero, rng)
    h_short = short_model.fit(ids, y, epochs=2, batch_size=12, shuffle=False, verbose=0).history["loss"]
    h_long = long_model.fit(long, y, epochs=2, batch_size=12, shuffle=False, verbose=0).history["loss"]
    gaps = [float(np.max(np.abs(a - b))) for a, b in zip(short_model.get_weights(), long_model.get_weights())]
    if mask_zero:
        np.testing.assert_allclose(h_short, h_long, rtol=1e-5)
        assert max(gaps) < 1e-5, gaps
        # The embedding of the padding id gets no gradient: the masked steps never reach the loss.
        np.testing.assert_array_equal(long_model.get_weights()[0][0], short_model.get_weights()[0][0])
        train = check_full(long_model.compiled_programs["train_step"].model)
        assert op_counts(train).get("Scan") == 2  # forward and gradient
        # Inference with a mask runs the Scan form too, at any padded length.
        np.testing.assert_allclose(long_model.predict(long, verbose=0), short_model.predict(ids, verbose=0),
                                   atol=1e-5)
    else:  # the control: without the mask, padding steps change the training
        assert max(gaps) > 1e-3


# ------------------------------------------------------------------- Bidirectional, compiled
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave"])
def test_bidirectional_merge_in_a_compiled_model(merge_mode, rng):
    np.random.seed(2)
    bi = Bidirectional(GRU(4, return_sequences=True), merge_mode=merge_mode)
    model = Sequential([Input((None, 3)), bi])
    model.compile(optimizer=optimizers.SGD(0.1), loss="mse")
    width = 8 if merge_mode == "concat" else 4
    x = rng.standard_normal((6, 5, 3)).astype(np.float32)
    y = rng.standard_normal((6, 5, width)).astype(np.float32) * 0.3
    ref = bidirectional_ref(bi, x.astype(np.float64))
    np.testing.assert_allclose(model.predict(x, verbose=0), ref, rtol=1e-4, atol=1e-5)  # fused pair
    # The training step's loss is computed before its update, by the two Scans of the training graph.
    loss = model.train_on_batch(x, y)
    np.testing.assert_allclose(loss, np.mean((ref - y) ** 2), rtol=1e-4)
    assert op_counts(check_full(model.compiled_programs["train_step"].model)).get("Scan") == 4  # 2 + gradients
    history = model.fit(x, y, epochs=5, batch_size=6, verbose=0).history["loss"]
    assert history[-1] < loss
    # Another length through the same graphs, with the trained weights.
    x9 = rng.standard_normal((2, 9, 3)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x9, verbose=0), bidirectional_ref(bi, x9.astype(np.float64)),
                               rtol=1e-4, atol=1e-5)


def test_bidirectional_with_masking_in_a_compiled_model(rng):
    """Keras zeroes both directions' outputs on masked steps; the backward pass skips trailing padding."""
    bi = Bidirectional(LSTM(3, return_sequences=True), merge_mode="concat")
    model = Sequential([Input((None, 2)), Masking(0.0), bi])
    model.compile(optimizer="sgd", loss="mse")
    x = rng.standard_normal((4, 6, 2)).astype(np.float32)
    x[0, 4:] = 0.0
    x[2, 1] = 0.0
    mask = np.any(x != 0, -1)
    ref = bidirectional_ref(bi, x.astype(np.float64), mask)
    np.testing.assert_allclose(model.predict(x, verbose=0), ref, rtol=1e-4, atol=1e-5)
    y = rng.standard_normal(ref.shape).astype(np.float32)
    # The output keeps the input's mask, so the loss averages the valid steps only (Keras 3).
    per_step = np.mean((ref - y) ** 2, axis=-1)
    np.testing.assert_allclose(model.train_on_batch(x, y), np.sum(per_step * mask) / np.sum(mask), rtol=1e-4)


# ----------------------------------------------------------------------------- errors
def test_wrong_rank_names_the_layer():
    with pytest.raises(ValueError, match=r'"rank_lstm".*ndim=3.*\(None, 5\)'):
        Sequential([Input((5,)), LSTM(3, name="rank_lstm")])
    with pytest.raises(ValueError, match=r'"rank_bi".*ndim=3.*\(None, 5, 2, 2\)'):
        Sequential([Input((5, 2, 2)), Bidirectional(GRU(3), name="rank_bi")])


def test_zero_length_sequences_fail_before_onnxruntime(sessions, rng):
    with pytest.raises(ValueError, match=r'"zero_static" got a zero-length sequence.*\(None, 0, 3\)'):
        Sequential([Input((0, 3)), LSTM(3, name="zero_static")])
    with pytest.raises(ValueError, match=r'"zero_bi" got a zero-length sequence'):
        Sequential([Input((0, 3)), Bidirectional(GRU(3), name="zero_bi")])
    # A symbolic length is checked on the host before every run of every program.
    model = Sequential([Input((None, 3)), GRU(3, name="zero_dyn"), Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    empty, y = np.zeros((4, 0, 3), np.float32), np.zeros((4, 1), np.float32)
    expected = r"\"zero_dyn\" got a zero-length sequence.*\(4, 0, 3\)"
    with pytest.raises(ValueError, match=expected):
        model.fit(empty, y, verbose=0)
    with pytest.raises(ValueError, match=expected):
        model.evaluate(empty, y, verbose=0)
    with pytest.raises(ValueError, match=expected):
        model.predict(empty, verbose=0)
    assert sessions == []  # onnxruntime never saw the empty batch
    meta = {p.key: p.value for p in model.compiled_programs["train_step"].model.metadata_props}
    assert "zero_dyn" in meta["onnxforge.dim_checks"]
    x = rng.standard_normal((4, 1, 3)).astype(np.float32)  # one step is enough
    assert model.predict(x, verbose=0).shape == (4, 1)
    model.fit(x, y, verbose=0)


def test_exported_graph_keeps_the_length_check(tmp_path, sessions, rng):
    """The exported file names its time axis ``sequence``; its dim check follows, and still applies."""
    from onnxforge.runtime import Device, ProgramRunner

    model = Sequential([Input((None, 2)), LSTM(3, name="exported_lstm")])
    path = str(model.export(str(tmp_path / "lstm.onnx")))
    proto = check_full(onnx.load(path))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert [c["dims"] for c in json.loads(meta["onnxforge.dim_checks"])] == [["sequence"]]
    name = proto.graph.input[0].name
    runner = ProgramRunner(proto, Device("cpu"), [name], [proto.graph.output[0].name])
    with pytest.raises(ValueError, match=r'"exported_lstm" got a zero-length sequence.*\(2, 0, 2\)'):
        runner.run({name: np.zeros((2, 0, 2), np.float32)})
    assert sessions == []
    x = rng.standard_normal((2, 4, 2)).astype(np.float32)
    np.testing.assert_allclose(runner.run({name: x})[0], model.predict(x, verbose=0), atol=1e-6)


def test_wrong_mask_shapes_name_the_layer(sessions, rng):
    x = Input((None, 3))
    with pytest.raises(ValueError, match=r'"mask_rank": `mask` must have shape \(batch, timesteps\)'):
        LSTM(3, name="mask_rank")(x, mask=Input((None, None), dtype="bool"))
    x5 = Input((5, 3))
    with pytest.raises(ValueError, match=r'"mask_len".*timesteps dim \(4\).*\(5\)'):
        GRU(3, name="mask_len")(x5, mask=Input((4,), dtype="bool"))
    with pytest.raises(ValueError, match=r'"mask_bi".*timesteps dim \(4\)'):
        Bidirectional(LSTM(2), name="mask_bi")(x5, mask=Input((4,), dtype="bool"))
    # Two symbolic lengths: compared on the host before onnxruntime runs.
    seq, keep = Input((None, 3), name="seq"), Input((None,), dtype="bool", name="keep")
    model = Model([seq, keep], LSTM(2, name="mask_dyn")(seq, mask=keep))
    xs = rng.standard_normal((2, 5, 3)).astype(np.float32)
    with pytest.raises(ValueError, match=r"\"mask_dyn\": the mask's timesteps dim does not match.*\(2, 4\)"):
        model.predict([xs, np.ones((2, 4), bool)], verbose=0)
    assert sessions == []
    m = np.ones((2, 5), bool)
    m[1, 3:] = False
    ref = keras_rnn(model.layers[-1], xs.astype(np.float64), m)
    np.testing.assert_allclose(model.predict([xs, m], verbose=0), ref, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------ the examples
def test_sequence_forecast_example_core(tmp_path):
    ex = load_example("sequence_forecast")
    years, values = ex.load_sunspots()
    assert (years[0], years[-1], len(years)) == (1700, 2008, 309)
    np.testing.assert_array_equal(values[:4], [5, 11, 16, 23])
    x, y = ex.make_windows(values, 20)
    assert x.shape == (289, 20) and y.shape == (289,)
    np.testing.assert_array_equal(x[7], values[7:27])
    assert y[7] == values[27]
    split = ex.prepare(years, values, window=20)
    n_train = len(split.x_train)
    assert split.x_train.shape == (n_train, 20, 1) and len(split.x_test) == 289 - n_train
    assert split.years_test[0] == 1700 + 20 + n_train and split.years_test[-1] == 2008  # chronological
    assert split.mean == pytest.approx(float(values[:n_train + 20].mean()), rel=1e-6)  # training years only
    np.testing.assert_allclose(split.unscale(split.y_test), split.truth_test, rtol=1e-5)
    np.testing.assert_array_equal(split.naive_test[1:], split.truth_test[:-1])  # last year's value
    e = ex.forecast_errors(np.array([1.0, 2.0]), np.array([1.0, 4.0]), np.array([0.0, 0.0]))
    assert e["rmse"] == pytest.approx(np.sqrt(2)) and e["mae_ratio"] == pytest.approx(1.0 / 2.5)

    r = ex.run(epochs=40, window=8, units=16, batch_size=16, out=str(tmp_path))
    assert r["errors"]["rmse_ratio"] < 0.85, r["errors"]  # beats "next year = this year" (0.62-0.66 seen)
    assert os.path.getsize(r["png"]) > 10_000
    assert r["export"]["fused"] == 1 and r["export"]["scan"] == 0 and r["export"]["max_abs_diff"] < 1e-4
    check_full(onnx.load(r["onnx"]))


def test_text_classifier_example_core():
    ex = load_example("text_classifier")
    x, y, lengths = ex.make_dataset(200, np.random.default_rng(3), vocab=12, min_len=3, max_len=9)
    assert x.shape == (200, 9) and set(np.unique(y)) == {0, 1} and 3 <= lengths.min() <= lengths.max() <= 9
    for row, label, length in zip(x, y, lengths):
        assert np.all(row[:length] != ex.PAD) and np.all(row[length:] == ex.PAD)
        assert label == int(np.argmax(row == ex.TOKEN_A) < np.argmax(row == ex.TOKEN_B))
    assert ex.pad_to(x, 12)[:, :9].tolist() == x.tolist()
    with pytest.raises(ValueError, match="longer"):
        ex.pad_to(x, 2)

    r = ex.run(n_train=1500, n_test=300, epochs=5, batch_size=50, vocab=12, units=8, max_len=10)
    assert r["accuracy"] > 0.8, r["history"]  # chance is 0.5: the order of A and B is read
    p = r["padding"]
    assert p["max_abs_diff"] < 1e-5 and p["sessions_before"] == p["sessions_after"]
    assert r["served_accuracy"] == pytest.approx(r["accuracy"], abs=1e-6)
