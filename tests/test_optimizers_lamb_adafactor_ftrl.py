"""Lamb, Adafactor, Ftrl, ``use_ema`` and ``SwapEMAWeights`` against real Keras 3 on the TensorFlow backend.

Keras runs in a child process (``keras_oracle/tf_optimizer_runs.py``: the backend is fixed per process and the
other oracles here use torch) on the same initial weights, gradients and data; onnxforge must land on its
parameters after every ``apply`` call, its weights after ``fit``, the weights it evaluates with, and its
optimizer variables when Keras loads the ``.keras`` files onnxforge wrote.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import onnxforge as of
from onnxforge import optimizers
from onnxforge.saving.keras_format.layout import optimizer_refs

from .conftest import check_full
from .test_optimizers import graph_steps
from tests import tf_server

SHAPES = [(3, 2), (4,), (2, 3, 4), ()]
SCHEDULE = {"class_name": "ExponentialDecay",
            "config": {"initial_learning_rate": 0.05, "decay_steps": 2, "decay_rate": 0.5, "staircase": False}}
APPLY = [
    ("Lamb", {}, None),
    ("Lamb", dict(weight_decay=0.1, beta_1=0.8, epsilon=1e-5), SCHEDULE),
    ("Lamb", dict(learning_rate=0.01, clipnorm=0.5), None),
    ("Adafactor", {}, None),
    ("Adafactor", dict(learning_rate=0.5, clip_threshold=0.5, weight_decay=0.05, global_clipnorm=1.0), None),
    ("Adafactor", dict(beta_2_decay=-0.5, epsilon_2=0.1, relative_step=False), SCHEDULE),
    ("Ftrl", {}, None),
    ("Ftrl", dict(learning_rate=0.1, learning_rate_power=-0.3, initial_accumulator_value=0.5, beta=0.5,
                  l1_regularization_strength=0.01, l2_regularization_strength=0.02,
                  l2_shrinkage_regularization_strength=0.03), None),
    ("Ftrl", dict(learning_rate=0.2, clipvalue=0.5, weight_decay=0.01), SCHEDULE),
]
FIT = [
    ("Lamb", dict(learning_rate=0.05, weight_decay=0.01), None),
    ("Adafactor", dict(learning_rate=0.1), SCHEDULE),
    ("Ftrl", dict(learning_rate=0.1, l1_regularization_strength=0.001), None),
    ("SGD", dict(learning_rate=0.1, momentum=0.5, use_ema=True, ema_momentum=0.8), None),
    ("Adam", dict(learning_rate=0.05, use_ema=True, ema_momentum=0.7, ema_overwrite_frequency=3), None),
    ("Lamb", dict(learning_rate=0.05, use_ema=True), None),
]
SWAP = [  # (optimizer, kwargs, swap_on_epoch, evaluate afterwards)
    ("SGD", dict(learning_rate=0.1, use_ema=True, ema_momentum=0.6), False, True),
    ("Adafactor", dict(learning_rate=0.2, use_ema=True, ema_momentum=0.5), True, False),
]


def _optimizer(lib, name, kwargs, schedule):
    kwargs = dict(kwargs)
    if schedule is not None:
        kwargs["learning_rate"] = lib.optimizers.schedules.deserialize(schedule)
    return getattr(lib.optimizers, name)(**kwargs)


def _data():
    rng = np.random.default_rng(7)
    data = {"x": rng.normal(size=(16, 3)).astype(np.float32), "y": rng.normal(size=(16, 2)).astype(np.float32)}
    for c in range(len(APPLY)):
        for i, shape in enumerate(SHAPES):
            data[f"a{c}/p{i}"] = rng.normal(size=shape).astype(np.float32)
        for step in range(4):
            for i, shape in enumerate(SHAPES):
                data[f"a{c}/g{step}_{i}"] = rng.normal(size=shape).astype(np.float32)
    for c in range(len(FIT) + len(SWAP)):
        for i, shape in enumerate([(3, 4), (4,), (4, 2), (2,)]):
            data[f"f{c}/w{i}"] = rng.normal(0, 0.5, size=shape).astype(np.float32)
    return data


class Recorder(of.keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seen = []

    def on_test_batch_begin(self, batch, logs=None):
        if batch == 0:
            self.seen.append(self.model.get_weights())


def _fit(data, c, name, kwargs, schedule, epochs=2, swap=None, validate=False):
    model = of.keras.Sequential([of.keras.Input((3,)), of.keras.layers.Dense(4, activation="tanh"),
                                 of.keras.layers.Dense(2)])
    model.set_weights([data[f"f{c}/w{i}"] for i in range(4)])
    model.compile(optimizer=_optimizer(of.keras, name, kwargs, schedule), loss="mse")
    recorder = Recorder()
    callbacks = [recorder] if swap is None else [of.keras.callbacks.SwapEMAWeights(swap_on_epoch=swap), recorder]
    history = model.fit(data["x"], data["y"], batch_size=4, epochs=epochs, shuffle=False, verbose=0,
                        validation_data=(data["x"], data["y"]) if validate else None, callbacks=callbacks)
    check_full(model._programs["train_step"].model)
    return model, recorder, history, callbacks


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    pytest.importorskip("tensorflow")
    folder = tmp_path_factory.mktemp("tf_oracle")
    data = _data()
    np.savez(folder / "in.npz", **data)
    cases = [dict(kind="apply", id=f"a{c}", name=n, kwargs=k, n_params=len(SHAPES), steps=4,
                  **({"schedule": s} if s else {})) for c, (n, k, s) in enumerate(APPLY)]
    cases += [dict(kind="fit", id=f"f{c}", name=n, kwargs=k, epochs=2, **({"schedule": s} if s else {}))
              for c, (n, k, s) in enumerate(FIT)]
    cases += [dict(kind="fit", id=f"f{len(FIT) + c}", name=n, kwargs=k, epochs=2, swap=swap, validate=True,
                   evaluate_after=after) for c, (n, k, swap, after) in enumerate(SWAP)]
    saved = {}
    for c, (name, kwargs, schedule) in enumerate(FIT):   # onnxforge's .keras files, for Keras to load
        model = _fit(data, c, name, kwargs, schedule, epochs=1)[0]
        path = folder / f"of{c}.keras"
        model.save(path)
        saved[c] = model
        cases.append(dict(kind="load", id=f"l{c}", path=str(path)))
    (folder / "cases.json").write_text(json.dumps(cases))
    script = Path(__file__).parent / "keras_oracle" / "tf_optimizer_runs.py"
    done = tf_server.run([str(script), str(folder / "in.npz"), str(folder / "cases.json"), str(folder / "out.npz")],
                         timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return data, dict(np.load(folder / "out.npz")), saved


@pytest.mark.parametrize("c", range(len(APPLY)), ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(APPLY)])
def test_apply_steps_match_keras(oracle, c):
    data, want, _ = oracle
    name, kwargs, schedule = APPLY[c]
    params = [data[f"a{c}/p{i}"] for i in range(len(SHAPES))]
    grads = [[data[f"a{c}/g{s}_{i}"] for i in range(len(SHAPES))] for s in range(4)]
    got = graph_steps(_optimizer(of.keras, name, kwargs, schedule), params, grads, check_full)
    for step, values in enumerate(got):
        for i, value in enumerate(values):
            np.testing.assert_allclose(value, want[f"a{c}/step{step}_{i}"], rtol=2e-5, atol=2e-6,
                                       err_msg=f"step {step}, parameter {i}")
    assert not np.allclose(got[-1][0], params[0])   # the comparison covers a real update


@pytest.mark.parametrize("c", range(len(FIT)), ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(FIT)])
def test_fit_matches_keras(oracle, c):
    """Two epochs of four batches; with use_ema the weights fit leaves are the averages, as in Keras."""
    data, want, _ = oracle
    model = _fit(data, c, *FIT[c])[0]
    for i, w in enumerate(model.get_weights()):
        np.testing.assert_allclose(w, want[f"f{c}/final{i}"], rtol=1e-4, atol=2e-6, err_msg=f"weight {i}")


@pytest.mark.parametrize("c", range(len(FIT)), ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(FIT)])
def test_keras_loads_the_saved_optimizer_state(oracle, c):
    """Keras reads onnxforge's .keras file: same optimizer class, variables in Keras's order and values;
    onnxforge reads it back to the same state."""
    _, want, saved = oracle
    model = saved[c]
    assert str(want[f"l{c}/class"]) == type(model.optimizer).__name__
    refs = optimizer_refs(model.optimizer, model)
    assert int(want[f"l{c}/n_opt"]) == len(refs)
    for i, ref in enumerate(refs):
        np.testing.assert_allclose(np.asarray(want[f"l{c}/opt{i}"], np.float64),
                                   np.asarray(ref.read(), np.float64), rtol=1e-6, err_msg=ref.label)


@pytest.mark.parametrize("c", range(len(SWAP)))
def test_swap_ema_weights_matches_keras(oracle, c):
    """Validation (and evaluate after fit) sees the EMA weights; training continues from the trained ones."""
    data, want, _ = oracle
    name, kwargs, swap, after = SWAP[c]
    k = len(FIT) + c
    model, recorder, history, callbacks = _fit(data, k, name, kwargs, None, swap=swap, validate=True)
    assert len(recorder.seen) == 2
    for e, seen in enumerate(recorder.seen):
        for i, w in enumerate(seen):
            np.testing.assert_allclose(w, want[f"f{k}/eval{e}_{i}"], rtol=1e-4, atol=2e-6, err_msg=f"eval {e} w{i}")
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(history.history[key], want[f"f{k}/history/{key}"], rtol=1e-4)
    for i, w in enumerate(model.get_weights()):
        np.testing.assert_allclose(w, want[f"f{k}/final{i}"], rtol=1e-4, atol=2e-6, err_msg=f"final {i}")
    if after:
        result = model.evaluate(data["x"], data["y"], verbose=0, callbacks=callbacks)
        np.testing.assert_allclose(result, want[f"f{k}/evaluate"], rtol=1e-4)
        for i, w in enumerate(model.get_weights()):
            np.testing.assert_allclose(w, want[f"f{k}/after_evaluate{i}"], rtol=1e-4, atol=2e-6)


# ------------------------------------------------------------------------------------------ no oracle needed
@pytest.mark.parametrize("cls", [optimizers.Lamb, optimizers.Adafactor, optimizers.Ftrl])
def test_configs_round_trip_with_ema_and_schedules(cls):
    opt = cls(learning_rate=of.keras.optimizers.schedules.deserialize(SCHEDULE), use_ema=True, ema_momentum=0.9,
              ema_overwrite_frequency=4, weight_decay=0.01, clipnorm=2.0)
    config = opt.get_config()
    assert config["use_ema"] is True and config["ema_overwrite_frequency"] == 4
    again = optimizers.deserialize(json.loads(json.dumps(optimizers.serialize(opt))))
    assert type(again) is cls and again.get_config() == config
    assert type(of.keras.optimizers.get(cls.__name__.lower())) is cls


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"ema_momentum.*Received: ema_momentum=1.5"):
        optimizers.Lamb(use_ema=True, ema_momentum=1.5)
    with pytest.raises(ValueError, match=r"ema_overwrite_frequency.*Received: ema_overwrite_frequency=0.5"):
        optimizers.SGD(use_ema=True, ema_overwrite_frequency=0.5)
    for arg, value in [("initial_accumulator_value", -0.1), ("learning_rate_power", 0.5),
                       ("l1_regularization_strength", -1.0), ("l2_shrinkage_regularization_strength", -1.0)]:
        with pytest.raises(ValueError, match=rf"`{arg}`.*Received: {arg}={value}"):
            optimizers.Ftrl(**{arg: value})
    with pytest.raises(ValueError, match="gradient_accumulation_steps"):
        optimizers.Adafactor(gradient_accumulation_steps=1)   # Keras's rule: off (None) or at least 2


def test_swap_needs_an_ema_optimizer():
    data = _data()
    model = of.keras.Sequential([of.keras.Input((3,)), of.keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match="use_ema=True.*Received: use_ema=False"):
        model.fit(data["x"], data["y"], validation_data=(data["x"], data["y"]), verbose=0,
                  callbacks=[of.keras.callbacks.SwapEMAWeights()])


def test_adafactor_factors_rank_two_and_up_only():
    opt = optimizers.Adafactor()
    shapes = {shape: {k: v.shape for k, v in opt.slots(of.Variable(np.zeros(shape, np.float32))).items()}
              for shape in SHAPES}
    assert shapes[(3, 2)] == {"r": (3,), "c": (2,), "velocity": (3, 2)}
    assert shapes[(2, 3, 4)] == {"r": (2, 3), "c": (2, 4), "velocity": (2, 3, 4)}
    assert shapes[(4,)] == {"r": (), "c": (), "velocity": (4,)}
