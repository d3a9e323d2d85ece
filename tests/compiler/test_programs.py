"""Compiled programs: full checker, stable I/O names and state metadata, frozen weights, regularization,
several outputs, in-graph RNG, clean-up, and training steps driven by plain onnxruntime from the graph alone."""
from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from onnxforge import losses, optimizers
from onnxforge.compiler import build_infer, cleanup
from onnxforge.graph import contract
from onnxforge.graph import GraphBuilder
from onnxforge.layers import Dense, Dropout, Input
from onnxforge.models import Model, Sequential

from .standin import MLP


def _xy(n=12, d=4, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype(np.float32), rng.integers(0, classes, n)


def _sgd_mlp(**kw):
    m = MLP(**kw)
    m.compile(optimizer=optimizers.SGD(learning_rate=0.1), loss=losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"], device="cpu")
    return m


# ------------------------------------------------------------------ names, metadata, checker
def test_programs_pass_full_checker_with_stable_names_and_state_metadata(checked):
    model = _sgd_mlp(running_stat=True, dropout=0.2)
    programs = model.compiled_programs
    assert sorted(programs) == ["eval_step", "infer", "train_step"]
    for p in programs.values():
        checked(p.model)
        meta = {m.key: m.value for m in p.model.metadata_props}
        assert meta[contract.PROGRAM_KEY] == p.kind
        pairs = json.loads(meta[contract.STATE_KEY])
        assert pairs == [[i, o] for _, i, o in p.state]
        io = json.loads(meta[contract.IO_KEY])
        graph_inputs = [i.name for i in p.model.graph.input]
        assert set(io["inputs"]["params"]) | set(io["inputs"]["state"]) | set(p.inputs) | \
            ({p.learning_rate} if p.learning_rate else set()) == set(graph_inputs)
    train = programs["train_step"]
    assert train.inputs == ["features", "target/dense_1", "sample_weight/dense_1"]
    assert train.learning_rate == "learning_rate"
    state_in = [i for _, i, _ in train.state]
    assert state_in[:4] == ["dense/kernel", "dense/bias", "dense_1/kernel", "dense_1/bias"]
    assert {"sgd/iteration", "stat/moving_mean", "seed_generator/state"} <= set(state_in)
    assert all(o == f"{i}:new" for _, i, o in train.state)
    assert train.outputs == ["sums/loss/total", "sums/loss/count", "sums/accuracy/total", "sums/accuracy/count"]
    assert [i.name for i in programs["infer"].model.graph.input][0] == "features"
    assert [o.name for o in programs["infer"].model.graph.output] == ["dense_1"]
    # Statistics are read-only in the evaluation program; only the training step updates state.
    assert programs["eval_step"].state == [] and "stat/moving_mean" in [n for _, n in programs["eval_step"].params]


def test_train_step_runs_from_the_graph_alone_with_plain_onnxruntime():
    """Another driver needs only the .onnx file: state pairs from the metadata, names from the I/O roles."""
    model = _sgd_mlp(running_stat=True)
    x, y = _xy()
    reference = MLP(running_stat=True)
    program = model.compiled_programs["train_step"].model
    sess = ort.InferenceSession(program.SerializeToString(), providers=["CPUExecutionProvider"])
    meta = {m.key: m.value for m in program.metadata_props}
    pairs = json.loads(meta[contract.STATE_KEY])
    io = json.loads(meta[contract.IO_KEY])
    by_name = {v.path: v for v in reference.weights}
    state = {i: (by_name[i].numpy() if i in by_name else None) for i, _ in pairs}
    state["sgd/iteration"] = np.asarray(0, np.int64)
    params = {n: by_name[n].numpy() for n in io["inputs"]["params"]}
    for _ in range(2):
        feeds = {"features": x, "target/dense_1": y.astype(np.int64), "sample_weight/dense_1": np.ones(12, np.float32),
                 "learning_rate": np.asarray(0.1, np.float32), **params, **state}
        outs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
        state = {i: outs[o] for i, o in pairs}
        model.train_on_batch(x, y)
    for v in model.weights:
        np.testing.assert_allclose(state[v.path], v.numpy(), rtol=1e-6, atol=1e-7)
    assert int(state["sgd/iteration"]) == 2


def test_infer_with_initializers_is_standalone_and_matches_predict(checked):
    model = _sgd_mlp()
    x, y = _xy()
    model.train_on_batch(x, y)
    standalone = checked(build_infer(model, weights="initializers").model)
    assert [i.name for i in standalone.graph.input] == ["features"]
    sess = ort.InferenceSession(standalone.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, {"features": x})[0], model.predict_on_batch(x), rtol=1e-6)


# ------------------------------------------------------------------ what the step computes
def test_frozen_weights_pass_through_and_trainable_flags_are_captured_at_compile():
    model = MLP()
    model.k1.trainable = False
    model.compile(optimizer="sgd", loss=losses.SparseCategoricalCrossentropy(from_logits=True), device="cpu")
    model.k1.trainable = True   # too late: compile() captured the flags, as in Keras
    train = model.compiled_programs["train_step"]
    assert "dense/kernel" in [n for _, n in train.params]
    assert "dense/kernel" not in [i for _, i, _ in train.state]
    k1, k2 = model.k1.numpy().copy(), model.k2.numpy().copy()
    model.train_on_batch(*_xy())
    np.testing.assert_array_equal(model.k1.numpy(), k1)
    assert not np.allclose(model.k2.numpy(), k2)


def test_loss_includes_regularization_and_matches_numpy():
    model = MLP(l2=0.01)
    model.compile(optimizer=optimizers.SGD(learning_rate=0.0), device="cpu",
                  loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _xy()
    logits = model.numpy_forward(x)
    logp = logits - logits.max(-1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
    data_loss = -logp[np.arange(12), y].mean()
    want = data_loss + 0.01 * (model.k1.numpy() ** 2).sum()
    assert model.train_on_batch(x, y) == pytest.approx(want, rel=1e-5)
    model.reset_metrics()
    assert model.test_on_batch(x, y) == pytest.approx(want, rel=1e-5)   # evaluation reports it too (Keras)


def test_two_outputs_loss_weights_and_per_output_logs(checked):
    x_in = Input(shape=(4,), name="x")
    h = Dense(6, activation="relu", name="h")(x_in)
    a = Dense(3, name="cls")(h)
    r = Dense(1, name="reg")(h)
    model = Model(x_in, [a, r], name="two")
    model.compile(optimizer=optimizers.SGD(learning_rate=0.0), device="cpu",
                  loss={"cls": losses.SparseCategoricalCrossentropy(from_logits=True), "reg": "mse"},
                  loss_weights={"cls": 0.3, "reg": 2.0}, metrics={"cls": ["accuracy"], "reg": ["mae"]})
    for p in model.compiled_programs.values():
        checked(p.model)
    x, y = _xy()
    target = np.linspace(-1, 1, 12).astype(np.float32)
    logs = model.train_on_batch(x, [y, target], return_dict=True)
    assert list(logs) == ["cls_accuracy", "cls_loss", "loss", "reg_loss", "reg_mae"]   # sorted, as Keras returns them
    assert logs["loss"] == pytest.approx(0.3 * logs["cls_loss"] + 2.0 * logs["reg_loss"], rel=1e-5)
    pred_cls, pred_reg = model.predict_on_batch(x)
    assert logs["reg_loss"] == pytest.approx(float(((pred_reg[:, 0] - target) ** 2).mean()), rel=1e-5)
    assert logs["cls_accuracy"] == pytest.approx(float((pred_cls.argmax(-1) == y).mean()))


# ------------------------------------------------------------------ in-graph RNG
def _dropout_model(seed):
    model = Sequential([Input(shape=(4,)), Dense(16, activation="relu", name="d1"), Dropout(0.5),
                        Dense(3, name="d2")], name=f"drop{seed}")
    rng = np.random.default_rng(7)
    for w in model.weights:
        w.assign(rng.normal(0, 0.5, w.shape))
    return model


def _losses(model, steps, seed, x, y):
    model.compile(optimizer=optimizers.SGD(learning_rate=0.05), device="cpu", seed=seed,
                  loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    out = []
    for _ in range(steps):
        out.append(model.train_on_batch(x, y))
        model.reset_metrics()
    return out


def test_dropout_is_reproducible_per_seed_and_differs_across_seeds():
    x, y = _xy(n=16)
    a = _losses(_dropout_model(0), 3, 123, x, y)
    b = _losses(_dropout_model(1), 3, 123, x, y)
    c = _losses(_dropout_model(2), 3, 999, x, y)
    assert a == b
    assert a != c
    assert len(set(a)) == 3   # a fresh mask every step


def test_rng_state_resumes_exactly():
    x, y = _xy(n=16)
    model = _dropout_model(3)
    _losses(model, 2, 5, x, y)
    saved = [v.numpy().copy() for v in model.weights + model.optimizer.variables] + [model._rng_state.numpy().copy()]
    assert model._rng_state.numpy().tolist() == [5, 2]
    first = [model.train_on_batch(x, y) for _ in range(2)]
    for v, s in zip(model.weights + model.optimizer.variables + [model._rng_state], saved):
        v.assign(s)
    model.reset_metrics()
    again = [model.train_on_batch(x, y) for _ in range(2)]
    assert first == again


def test_uniform_noise_statistics():
    from onnxforge.compiler import CounterRng

    b = GraphBuilder()
    state = b.input("s", onnx.TensorProto.INT64, (2,))
    like = b.input("x", onnx.TensorProto.FLOAT, ("n", 4))
    rng = CounterRng(lambda: state)
    b.output(rng.uniform(like), "u0")
    b.output(rng.uniform(like), "u1")
    sess = ort.InferenceSession(b.to_model().SerializeToString(), providers=["CPUExecutionProvider"])
    zeros = np.zeros((5000, 4), np.float32)
    u0, u1 = sess.run(None, {"s": np.array([1, 0]), "x": zeros})
    v0, _ = sess.run(None, {"s": np.array([1, 1]), "x": zeros})
    assert u0.shape == (5000, 4) and u0.min() >= 0 and u0.max() < 1
    for u in (u0, u1, v0):
        assert abs(u.mean() - 0.5) < 0.01 and abs(u.var() - 1 / 12) < 0.003
        counts = np.histogram(u, bins=10, range=(0, 1))[0]
        assert counts.min() > 1800 and counts.max() < 2200
    # Independent streams: per call and per step.
    assert abs(np.corrcoef(u0.ravel(), u1.ravel())[0, 1]) < 0.03
    assert abs(np.corrcoef(u0.ravel(), v0.ravel())[0, 1]) < 0.03
    assert abs(np.corrcoef(u0.ravel()[:-1], u0.ravel()[1:])[0, 1]) < 0.03


# ------------------------------------------------------------------ clean-up
def test_cleanup_merges_duplicates_drops_dead_code_and_unused_inputs(checked):
    b = GraphBuilder()
    x = b.input("x", onnx.TensorProto.FLOAT, ("n", 2))
    unused = b.input("unused", onnx.TensorProto.FLOAT, (2,))
    b.input("kept", onnx.TensorProto.FLOAT, (2,))
    c1 = b.initializer("c1", np.ones(2, np.float32))
    c2 = b.initializer("c2", np.ones(2, np.float32))
    y = b.op("Add", [b.op("Mul", [x, c1]), b.op("Mul", [x, c2])])
    b.op("Exp", [unused])   # dead
    b.output(y, "y")
    model, removed = cleanup(b.to_model(prune=False), protected_inputs={"kept", "x"})
    checked(model)
    assert removed == {"unused"}
    assert [n.op_type for n in model.graph.node] == ["Mul", "Add"]          # the output Identity folded
    assert len(model.graph.initializer) == 1
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    out = sess.run(None, {"x": np.array([[1.0, 2.0]], np.float32), "kept": np.zeros(2, np.float32)})[0]
    np.testing.assert_array_equal(out, [[2.0, 4.0]])
