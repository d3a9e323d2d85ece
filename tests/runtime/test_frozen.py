"""Constant-weight inference sessions (``runtime.frozen``): used once they pay, never with stale weights."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

import onnxforge as tf
from onnxforge.runtime import frozen as frozen_module
from onnxforge.runtime.frozen import FrozenProgram, frozen_inference_enabled

L = tf.keras.layers


def _cnn(seed: int = 0):
    tf.keras.utils.set_random_seed(seed)
    model = tf.keras.Sequential([
        tf.keras.Input((12, 12, 2)), L.Conv2D(8, 3, padding="same", activation="relu"), L.MaxPooling2D(2),
        L.Conv2D(8, 3, activation="relu"), L.Flatten(), L.Dense(5)])
    model.compile(optimizer="adam", loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


def _data(n: int = 64, seed: int = 1):
    rng = np.random.default_rng(seed)
    return rng.random((n, 12, 12, 2), dtype=np.float32), rng.integers(0, 5, n)


def _compiled_predict(model, x) -> np.ndarray:
    """The compiled program's own answer (weights fed as inputs), for reference."""
    return model._runners["infer"].run({model.input_names[0]: x})[0]


def _frozen(model, kind="infer") -> FrozenProgram:
    return model._frozen_programs[1][kind]


def test_predict_runs_frozen_once_weights_are_stable():
    model, (x, y) = _cnn(), _data()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    reference = _compiled_predict(model, x)
    got = model.predict(x, batch_size=16, verbose=0)
    program = _frozen(model)
    assert program.builds == 1 and program.disabled is None
    np.testing.assert_allclose(got, reference, rtol=1e-5, atol=1e-5)
    # The constant-weight session is the one running: its graph has no weight inputs.
    assert [i.name for i in program._session.get_inputs()] == model.input_names
    model.predict(x, batch_size=16, verbose=0)
    assert program.builds == 1   # same weights: the same session


@pytest.mark.parametrize("change", ["fit", "train_on_batch", "set_weights", "assign", "numpy_in_place",
                                    "load_weights"])
def test_predict_never_sees_stale_weights(change, tmp_path):
    model, (x, y) = _cnn(), _data()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    model.predict(x, batch_size=16, verbose=0)
    assert _frozen(model).builds == 1
    if change == "fit":
        model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    elif change == "train_on_batch":
        model.train_on_batch(x[:16], y[:16])
    elif change == "set_weights":
        model.set_weights([w * 0.5 for w in model.get_weights()])
    elif change == "assign":
        kernel = model.layers[0].kernel
        kernel.assign(kernel.numpy() + 0.25)
    elif change == "numpy_in_place":
        bias = model.layers[-1].bias
        bias.numpy()[...] += 3.0   # the host array a Variable hands out is its value until uploaded again
    else:
        other = _cnn(seed=7)
        path = tmp_path / "other.weights.h5"
        other.save_weights(path)
        model.load_weights(path)
    reference = _compiled_predict(model, x)
    np.testing.assert_allclose(model.predict(x, batch_size=16, verbose=0), reference, rtol=1e-5, atol=1e-5)
    assert _frozen(model).builds == 2


def test_the_same_weights_give_the_same_answer_bit_for_bit():
    model, (x, y) = _cnn(), _data()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    first = model.predict(x, batch_size=16, verbose=0)
    for batch_size in (16, 64):
        np.testing.assert_array_equal(model.predict(x, batch_size=batch_size, verbose=0), first)
    np.testing.assert_array_equal(model.predict_on_batch(x[:16]), first[:16])
    assert _frozen(model).builds == 1


def test_one_batch_per_training_step_stops_building_after_three():
    """A GAN loop's shape: train a step, predict one batch, again. After three sets of weights that each ran
    one batch, the builds wait until they pay (here: never, each set of weights runs one batch)."""
    model, (x, y) = _cnn(), _data()
    for step in range(8):
        model.train_on_batch(x[:16], y[:16])
        np.testing.assert_allclose(model.predict_on_batch(x[:16]), _compiled_predict(model, x[:16]),
                                   rtol=1e-5, atol=1e-5)
    assert _frozen(model).builds == 3   # the fourth set of weights closes the third's count: no more builds


def test_after_churn_a_build_waits_until_the_batches_have_cost_as_much():
    model, (x, y) = _cnn(), _data()
    for step in range(5):
        model.train_on_batch(x[:16], y[:16])
        model.predict_on_batch(x[:16])
    program = _frozen(model)
    builds = program.builds
    model.train_on_batch(x[:16], y[:16])
    program._estimate = 3600.0   # a build expected to take an hour never pays for a few batches
    model.predict(x, batch_size=8, verbose=0)
    assert program.builds == builds
    model.train_on_batch(x[:16], y[:16])
    program._estimate = 0.0      # one that costs nothing pays at the second batch
    np.testing.assert_allclose(model.predict(x, batch_size=8, verbose=0), _compiled_predict(model, x),
                               rtol=1e-5, atol=1e-5)
    assert program.builds == builds + 1
    model.train_on_batch(x[:16], y[:16])
    model.predict_on_batch(x[:16])   # building at once again
    assert program.builds == builds + 2


def test_sharded_fit_with_the_ranged_update_bumps_the_weights(monkeypatch):
    """The sharded step's update writes the weights by address: the frozen session must still see them change."""
    monkeypatch.setenv("ONNXFORGE_CORE_SHARDS", "2")
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([tf.keras.Input((8, 8, 32)), L.Conv2D(128, 3, activation="relu"),
                                 L.Conv2D(128, 3), L.GlobalAveragePooling2D(), L.Dense(3)])  # 184k weights
    model.compile(optimizer="adam", loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x, y = rng.random((128, 8, 8, 32), dtype=np.float32), rng.integers(0, 3, 128)
    model.fit(x, y, batch_size=64, epochs=1, verbose=0)   # 32+ samples per shard
    shards = model._shard_steps[1].get(2)
    assert shards is not None and shards._ranged is not None, model._shard_reason
    model.predict(x, batch_size=16, verbose=0)
    model.fit(x, y, batch_size=64, epochs=1, verbose=0)
    np.testing.assert_allclose(model.predict(x, batch_size=16, verbose=0), _compiled_predict(model, x),
                               rtol=1e-5, atol=1e-5)
    assert _frozen(model).builds == 2


def test_evaluate_runs_frozen_with_the_same_results(monkeypatch):
    model, (x, y) = _cnn(), _data()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    frozen = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    assert _frozen(model, "eval_step").builds == 1
    monkeypatch.setenv("ONNXFORGE_FROZEN_INFERENCE", "0")
    model.compile(optimizer="adam", loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    compiled = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    assert _frozen(model, "eval_step") is None
    assert frozen["accuracy"] == compiled["accuracy"]
    np.testing.assert_allclose(frozen["loss"], compiled["loss"], rtol=1e-5)


def test_the_environment_switch(monkeypatch):
    monkeypatch.setenv("ONNXFORGE_FROZEN_INFERENCE", "0")
    assert not frozen_inference_enabled()
    model, (x, _) = _cnn(), _data()
    model.predict(x, batch_size=16, verbose=0)
    assert _frozen(model) is None
    monkeypatch.setenv("ONNXFORGE_FROZEN_INFERENCE", "yes")
    with pytest.raises(ValueError, match=r"ONNXFORGE_FROZEN_INFERENCE must be 0 or 1\. Received: .*'yes'"):
        frozen_inference_enabled()


def test_a_failed_build_falls_back_to_the_compiled_program(monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("no constants today")

    model, (x, y) = _cnn(), _data()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    monkeypatch.setattr(frozen_module, "create_session", refuse)
    with pytest.warns(RuntimeWarning, match="cannot run with constant weights.*no constants today"):
        got = model.predict(x, batch_size=16, verbose=0)
    np.testing.assert_allclose(got, _compiled_predict(model, x), rtol=1e-6, atol=1e-6)
    assert "no constants today" in _frozen(model).disabled and _frozen(model).builds == 0


def test_the_constant_weight_session_keeps_the_layout_pass(monkeypatch):
    """What it is for: onnxruntime's NCHWc rewrite reaches convs only through constant weights, and the
    compiled programs' sessions turn it off."""
    seen = []
    real = ort.InferenceSession

    def recording(*args, **kwargs):
        seen.append(kwargs.get("disabled_optimizers"))
        return real(*args, **kwargs)

    model, (x, y) = _cnn(), _data()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    monkeypatch.setattr(ort, "InferenceSession", recording)
    model.predict(x, batch_size=16, verbose=0)
    assert _frozen(model).builds == 1 and seen == [[]]
    assert model._runners["infer"].session is not None   # the compiled program's own session, made now
    assert seen == [[], ["NchwcTransformer"]]


def test_not_eligible_off_the_cpu_or_with_state():
    model, (x, _) = _cnn(), _data()
    model.predict(x[:4], verbose=0)
    runner = model._runners["infer"]
    program = model._programs["infer"]
    assert FrozenProgram.eligible(program.model, model._device, runner.params, runner.state)
    assert not FrozenProgram.eligible(program.model, tf.runtime.Device("cuda"), runner.params, runner.state)
    assert not FrozenProgram.eligible(program.model, model._device, runner.params, [object()])
    assert not FrozenProgram.eligible(program.model, model._device, [], [])


# ------------------------------------------------------------------ eager calls
def _eager_programs(model) -> list:
    from onnxforge.eager import executor

    return [p for p in executor._layers[model].values() if hasattr(p, "frozen")]


def test_eager_calls_run_frozen_and_follow_the_weights():
    model, (x, y) = _cnn(), _data()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    got = np.asarray(model(x))
    (program,) = _eager_programs(model)
    frozen = program.frozen[tf.runtime.Device("cpu")]
    assert frozen.builds == 1 and [i.name for i in frozen._session.get_inputs()] == program.inputs
    np.testing.assert_allclose(got, _compiled_predict(model, x), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(model(x, training=False)), got)   # same session, same bits
    model.train_on_batch(x[:16], y[:16])
    np.testing.assert_allclose(np.asarray(model(x)), _compiled_predict(model, x), rtol=1e-5, atol=1e-5)
    kernel = model.layers[-1].kernel
    kernel.assign(kernel.numpy() * 0.0)
    np.testing.assert_allclose(np.asarray(model(x)), np.broadcast_to(model.layers[-1].bias.numpy(), (len(x), 5)),
                               atol=1e-6)
    assert frozen.builds == 3


def test_eager_calls_that_update_state_run_as_compiled():
    layer = L.BatchNormalization()
    x = np.random.default_rng(0).random((8, 3), dtype=np.float32)
    layer(x, training=True)
    from onnxforge.eager import executor

    (program,) = executor._layers[layer].values()
    assert program.frozen[tf.runtime.Device("cpu")] is None
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.01 * x.mean(0), rtol=1e-5)


def test_the_budget_releases_the_least_recently_built_session(monkeypatch):
    first, second = _cnn(0), _cnn(1)
    x, _ = _data()
    first.predict(x, batch_size=16, verbose=0)
    a = _frozen(first)
    assert a._session is not None and frozen_module.frozen_bytes() >= a.nbytes
    monkeypatch.setattr(frozen_module, "FROZEN_BUDGET_BYTES", a.nbytes + a.nbytes // 2)   # room for one
    second.predict(x, batch_size=16, verbose=0)
    b = _frozen(second)
    assert b._session is not None and a._session is None
    assert frozen_module.frozen_bytes() <= frozen_module.FROZEN_BUDGET_BYTES
    # The released program answers from the compiled program, right, and is rebuilt only once the batches run
    # without it have cost as much as its build did.
    np.testing.assert_allclose(first.predict(x[:16], verbose=0), _compiled_predict(first, x[:16]),
                               rtol=1e-5, atol=1e-5)
    assert a._session is None and a.builds == 1
    a._estimate = 0.0   # a build that cost nothing pays at the next batch
    first.predict(x[:16], verbose=0)
    assert a._session is not None and a.builds == 2 and b._session is None
