"""Optimizers: the graph update equals Keras's formulas (numpy, float64) step after step, and torch.optim
where the two define the same update; schedules; clipping; lookup."""
from __future__ import annotations

import math

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from onnxforge import optimizers
from onnxforge.graph import GraphBuilder
from onnxforge.optimizers import schedules
from onnxforge.variables import Variable

torch = pytest.importorskip("torch")
SHAPES = [(3, 2), (2,)]


def graph_steps(opt, params0, grads_seq, checked=None, names=None):
    """Run ``opt``'s graph update for each gradient list; return the parameters after every step."""
    names = names or [f"layer/w{i}" for i in range(len(params0))]
    variables = [Variable(p, n) for p, n in zip(params0, names)]
    opt.build(variables)
    b = GraphBuilder()
    ps = [b.input(v.path, onnx.TensorProto.FLOAT, v.shape) for v in variables]
    gs = [b.input(f"g{i}", onnx.TensorProto.FLOAT, v.shape) for i, v in enumerate(variables)]
    lr = b.input("lr", onnx.TensorProto.FLOAT, ())
    it = b.input("it", onnx.TensorProto.INT64, ())
    slot_vars = [opt.slots(v) for v in variables]
    slot_vals = [{k: b.input(sv.name, onnx.TensorProto.FLOAT, sv.shape) for k, sv in s.items()} for s in slot_vars]
    new_p, new_s = opt.update_graph(b, variables, ps, gs, slot_vals, lr, it)
    names = []
    for i, p in enumerate(new_p):
        b.output(p, f"p{i}")
        names.append(ps[i].name)
    slot_names = []
    for s_vars, s_new in zip(slot_vars, new_s):
        for k, sv in s_vars.items():
            b.output(s_new[k], f"{sv.name}:new")
            slot_names.append(sv.name)
    model = b.to_model()
    if checked is not None:
        checked(model)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    state = {v.path: v.numpy().copy() for v in variables}
    state.update({sv.name: sv.numpy().copy() for s in slot_vars for sv in s.values()})
    history = []
    for step, grads in enumerate(grads_seq):
        feeds = dict(state, lr=np.asarray(opt.learning_rate, np.float32), it=np.asarray(step, np.int64))
        feeds.update({f"g{i}": g for i, g in enumerate(grads)})
        outs = sess.run(None, feeds)
        for i, name in enumerate(names):
            state[name] = outs[i]
        for k, name in enumerate(slot_names):
            state[name] = outs[len(names) + k]
        opt.iterations.assign(step + 1)
        history.append([outs[i] for i in range(len(names))])
    return history


@pytest.fixture
def problem(rng):
    params = [rng.normal(size=s).astype(np.float32) for s in SHAPES]
    grads = [[rng.normal(size=s).astype(np.float32) for s in SHAPES] for _ in range(4)]
    return params, grads


# ------------------------------------------------------------------ numpy references of Keras 3's update_step
def keras_reference(kind, params, grads_seq, lr, **kw):
    p = [x.astype(np.float64) for x in params]
    state = [dict() for _ in p]
    wd = kw.get("weight_decay")
    out = []
    for t, grads in enumerate(grads_seq, start=1):
        grads = [g.astype(np.float64) for g in grads]
        grads = _np_clip(grads, kw)
        for i, g in enumerate(grads):
            s = state[i]
            if wd:
                p[i] = p[i] - p[i] * wd * lr
            if kind == "sgd":
                mom = kw.get("momentum", 0.0)
                if mom:
                    s["m"] = mom * s.get("m", 0.0) - lr * g
                    p[i] = p[i] + (mom * s["m"] - lr * g if kw.get("nesterov") else s["m"])
                else:
                    p[i] = p[i] - lr * g
            elif kind == "adam":
                b1, b2, eps = kw.get("beta_1", 0.9), kw.get("beta_2", 0.999), kw.get("epsilon", 1e-7)
                alpha = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
                s["m"] = s.get("m", 0.0) + (g - s.get("m", 0.0)) * (1 - b1)
                s["v"] = s.get("v", 0.0) + (g * g - s.get("v", 0.0)) * (1 - b2)
                v = s["v"]
                if kw.get("amsgrad"):
                    s["vh"] = np.maximum(s.get("vh", 0.0), s["v"])
                    v = s["vh"]
                p[i] = p[i] - alpha * s["m"] / (np.sqrt(v) + eps)
            elif kind == "rmsprop":
                rho, mom, eps = kw.get("rho", 0.9), kw.get("momentum", 0.0), kw.get("epsilon", 1e-7)
                s["v"] = rho * s.get("v", 0.0) + (1 - rho) * g * g
                if kw.get("centered"):
                    s["a"] = rho * s.get("a", 0.0) + (1 - rho) * g
                    denom = s["v"] - s["a"] ** 2 + eps
                else:
                    denom = s["v"] + eps
                inc = lr * g / np.sqrt(denom)
                if mom:
                    s["m"] = mom * s.get("m", 0.0) + inc
                    p[i] = p[i] - s["m"]
                else:
                    p[i] = p[i] - inc
            elif kind == "adagrad":
                s["acc"] = s.get("acc", kw.get("initial_accumulator_value", 0.1)) + g * g
                p[i] = p[i] - lr * g / np.sqrt(s["acc"] + kw.get("epsilon", 1e-7))
        out.append([x.copy() for x in p])
    return out


def _np_clip(grads, kw):
    if kw.get("clipnorm"):
        c = kw["clipnorm"]
        return [g * c / max(np.sqrt((g * g).sum()), c) for g in grads]
    if kw.get("global_clipnorm"):
        c = kw["global_clipnorm"]
        norm = np.sqrt(sum((g * g).sum() for g in grads))
        return [g * c * min(1 / norm, 1 / c) for g in grads]
    if kw.get("clipvalue"):
        return [np.clip(g, -kw["clipvalue"], kw["clipvalue"]) for g in grads]
    return grads


CASES = [
    ("sgd", optimizers.SGD, dict(learning_rate=0.1)),
    ("sgd", optimizers.SGD, dict(learning_rate=0.1, momentum=0.9)),
    ("sgd", optimizers.SGD, dict(learning_rate=0.1, momentum=0.9, nesterov=True)),
    ("adam", optimizers.Adam, dict(learning_rate=0.01)),
    ("adam", optimizers.Adam, dict(learning_rate=0.01, amsgrad=True, beta_1=0.8)),
    ("adam", optimizers.AdamW, dict(learning_rate=0.01, weight_decay=0.1)),
    ("rmsprop", optimizers.RMSprop, dict(learning_rate=0.01)),
    ("rmsprop", optimizers.RMSprop, dict(learning_rate=0.01, momentum=0.5, centered=True)),
    ("adagrad", optimizers.Adagrad, dict(learning_rate=0.1)),
    ("sgd", optimizers.SGD, dict(learning_rate=0.1, clipnorm=0.5)),
    ("adam", optimizers.Adam, dict(learning_rate=0.01, global_clipnorm=0.7)),
    ("rmsprop", optimizers.RMSprop, dict(learning_rate=0.01, clipvalue=0.3)),
    ("sgd", optimizers.SGD, dict(learning_rate=0.1, momentum=0.5, weight_decay=0.05)),
]


@pytest.mark.parametrize("kind,cls,kwargs", CASES, ids=[f"{c[1].__name__}-{i}" for i, c in enumerate(CASES)])
def test_graph_update_matches_keras_formulas(checked, problem, kind, cls, kwargs):
    params, grads = problem
    opt = cls(**kwargs)
    got = graph_steps(opt, params, grads, checked)
    ref_kwargs = dict(kwargs)
    lr = ref_kwargs.pop("learning_rate")
    if cls is optimizers.AdamW:
        ref_kwargs.setdefault("weight_decay", 0.004)
    want = keras_reference(kind, params, grads, lr, **ref_kwargs)
    for step_got, step_want in zip(got, want):
        for g, w in zip(step_got, step_want):
            np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-6)


TORCH_CASES = [
    (optimizers.SGD(learning_rate=0.1, momentum=0.9), lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
    (optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=True),
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
    # Keras and torch place epsilon differently; with a negligible epsilon the updates coincide.
    (optimizers.Adam(learning_rate=0.01, epsilon=1e-12), lambda p: torch.optim.Adam(p, lr=0.01, eps=1e-12)),
    (optimizers.AdamW(learning_rate=0.01, weight_decay=0.1, epsilon=1e-12),
     lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1, eps=1e-12)),
    (optimizers.RMSprop(learning_rate=0.01, momentum=0.5, centered=True, epsilon=1e-12),
     lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, momentum=0.5, centered=True, eps=1e-12)),
    (optimizers.Adagrad(learning_rate=0.1, epsilon=1e-12),
     lambda p: torch.optim.Adagrad(p, lr=0.1, initial_accumulator_value=0.1, eps=1e-12)),
]


@pytest.mark.parametrize("opt,make", TORCH_CASES, ids=[type(c[0]).__name__ for c in TORCH_CASES])
def test_graph_update_matches_torch_optim(problem, opt, make):
    params, grads = problem
    got = graph_steps(opt, params, grads)
    tparams = [torch.tensor(p.astype(np.float64), requires_grad=True) for p in params]
    topt = make(tparams)
    for step, g_list in enumerate(grads):
        for t, g in zip(tparams, g_list):
            t.grad = torch.tensor(g.astype(np.float64))
        topt.step()
        for mine, t in zip(got[step], tparams):
            np.testing.assert_allclose(mine, t.detach().numpy(), rtol=1e-4, atol=1e-5)


def test_weight_decay_exclusions(problem):
    params, grads = problem
    opt = optimizers.AdamW(learning_rate=0.01, weight_decay=0.5)
    opt.exclude_from_weight_decay(var_names=["w1"])
    got = graph_steps(opt, params, grads[:1])
    plain = graph_steps(optimizers.Adam(learning_rate=0.01), params, grads[:1])
    np.testing.assert_allclose(got[0][1], plain[0][1], rtol=1e-6)          # excluded
    assert not np.allclose(got[0][0], plain[0][0])                          # decayed


def test_loss_scale_factor_unscales_gradients(problem):
    params, grads = problem
    scaled = [[g * 8.0 for g in gs] for gs in grads]
    got = graph_steps(optimizers.SGD(learning_rate=0.1, loss_scale_factor=8.0), params, scaled)
    want = graph_steps(optimizers.SGD(learning_rate=0.1), params, grads)
    np.testing.assert_allclose(got[-1][0], want[-1][0], rtol=1e-5)


# ------------------------------------------------------------------ learning rates and schedules
def test_schedules_follow_keras_formulas():
    e = schedules.ExponentialDecay(0.1, decay_steps=4, decay_rate=0.5, staircase=True)
    assert [e(s) for s in (0, 3, 4, 9)] == pytest.approx([0.1, 0.1, 0.05, 0.025])
    c = schedules.CosineDecay(0.0, decay_steps=10, warmup_target=1.0, warmup_steps=5, alpha=0.1)
    assert c(0) == 0.0 and c(2) == pytest.approx(0.4) and c(5) == pytest.approx(1.0)
    assert c(10) == pytest.approx(1.0 * (0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)) + 0.1))
    assert c(1000) == pytest.approx(0.1)
    p = schedules.PiecewiseConstantDecay([2, 5], [1.0, 0.5, 0.1])
    assert [p(s) for s in (0, 2, 3, 5, 6)] == [1.0, 1.0, 0.5, 0.5, 0.1]
    with pytest.raises(ValueError, match="length of boundaries"):
        schedules.PiecewiseConstantDecay([1, 2], [1.0])
    assert schedules.deserialize(schedules.serialize(e)).get_config() == e.get_config()


def test_schedule_is_evaluated_at_the_step_counter_and_fed_each_step(problem):
    params, grads = problem
    sched = schedules.PiecewiseConstantDecay([1], [0.1, 0.0])
    opt = optimizers.SGD(learning_rate=sched)
    assert opt.learning_rate == 0.1
    got = graph_steps(opt, params, grads[:3])
    # Steps 0 and 1 use 0.1 (step <= boundary), step 2 uses 0: the parameters stop moving.
    assert not np.allclose(got[1][0], got[0][0])
    np.testing.assert_array_equal(got[2][0], got[1][0])
    assert opt.learning_rate == 0.0


def test_learning_rate_is_settable_but_not_over_a_schedule():
    opt = optimizers.get("adam")
    assert opt.learning_rate == 0.001
    opt.learning_rate = 0.5
    assert opt.learning_rate == 0.5 and opt.lr == 0.5
    sched = optimizers.SGD(learning_rate=schedules.ExponentialDecay(1.0, 10, 0.5))
    with pytest.raises(TypeError, match="not settable"):
        sched.learning_rate = 0.1
    with pytest.raises(ValueError, match="learning_rate"):
        optimizers.SGD(learning_rate="fast")


def test_host_step_mirror_avoids_device_reads():
    opt = optimizers.SGD(learning_rate=schedules.ExponentialDecay(1.0, 1, 0.5))
    opt.iterations.assign(3)
    assert opt.learning_rate == pytest.approx(0.125)
    opt.iterations._set_device(object())     # as after a training step: the device value is authoritative
    opt._advance()
    assert opt.learning_rate == pytest.approx(0.0625)


# ------------------------------------------------------------------ construction and lookup
def test_keras_defaults():
    assert optimizers.Adam().epsilon == 1e-7 and optimizers.Adam().learning_rate == 0.001
    assert optimizers.AdamW().weight_decay == 0.004
    r = optimizers.RMSprop()
    assert (r.rho, r.momentum, r.epsilon, r.learning_rate) == (0.9, 0.0, 1e-7, 0.001)
    assert optimizers.Adagrad().initial_accumulator_value == 0.1
    assert optimizers.SGD().learning_rate == 0.01


def test_slots_are_variables_named_after_weights():
    opt = optimizers.Adam()
    w = Variable(np.zeros((2, 3), np.float32), "dense/kernel")
    slots = opt.slots(w)
    assert [s.path for s in slots.values()] == ["adam/dense_kernel_momentum", "adam/dense_kernel_velocity"]
    assert [s.name for s in slots.values()] == ["dense_kernel_momentum", "dense_kernel_velocity"]   # Keras 3's
    assert opt.variables[0] is opt.iterations and opt.iterations.dtype == np.int64
    assert all(not s.trainable and s.shape == (2, 3) for s in slots.values())
    assert np.all(optimizers.Adagrad().slots(w)["accumulator"].numpy() == np.float32(0.1))


@pytest.mark.parametrize("name,cls", [("sgd", optimizers.SGD), ("Adam", optimizers.Adam),
                                      ("adamw", optimizers.AdamW), ("rmsprop", optimizers.RMSprop),
                                      ("adagrad", optimizers.Adagrad)])
def test_get_aliases(name, cls):
    assert type(optimizers.get(name)) is cls


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"optimizer.*'adamm'.*Valid choices.*'adam'"):
        optimizers.get("adamm")
    with pytest.raises(ValueError, match="Only one of `clipnorm`"):
        optimizers.SGD(clipnorm=1.0, clipvalue=1.0)
    with pytest.raises(ValueError, match="not recognized"):
        optimizers.Adam(betas=(0.9, 0.99))
    config = optimizers.serialize(optimizers.Adam(learning_rate=0.02, amsgrad=True))
    again = optimizers.deserialize(config)
    assert again.amsgrad and again.learning_rate == 0.02


def test_learning_rate_reads_as_a_float_with_keras_variable_methods():
    import copy
    import json
    import pickle

    opt = optimizers.Adam(learning_rate=0.01)
    lr = opt.learning_rate
    assert lr == 0.01 and lr < 0.1 and lr * 2 == 0.02 and 1 - lr == 0.99 and float(lr) == 0.01
    assert isinstance(lr, float) and f"{lr:.3f}" == "0.010" and repr(lr) == "0.01" and json.dumps(lr) == "0.01"
    assert lr.numpy().dtype == np.float32 and np.asarray(lr).shape == () and np.float32(lr) == np.float32(0.01)
    assert type(copy.deepcopy(lr)) is float and type(pickle.loads(pickle.dumps(lr))) is float
    lr.assign(0.5)
    assert opt.learning_rate == 0.5 and opt.lr == 0.5 and opt.get_config()["learning_rate"] == 0.5
    opt.learning_rate.assign(np.float32(0.25))
    assert opt.learning_rate == 0.25 and type(opt._learning_rate) is float
    opt.learning_rate = np.asarray(0.125)
    assert opt.learning_rate == 0.125
    scheduled = optimizers.SGD(learning_rate=schedules.ExponentialDecay(1.0, 10, 0.5))
    assert scheduled.learning_rate.numpy() == 1.0
    with pytest.raises(TypeError, match="not settable"):
        scheduled.learning_rate.assign(0.1)


def test_iterations_reads_as_an_int():
    opt = optimizers.SGD()
    opt.iterations.assign(7)
    assert int(opt.iterations) == 7 and list(range(opt.iterations))[-1] == 6
    assert opt.iterations.dtype == np.int64 and opt.variables[0] is opt.iterations
