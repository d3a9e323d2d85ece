"""Training steps sharded over the cores of one machine (``trainer.core_parallel``): exact where the rows
are provably independent, the one-session step everywhere else."""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

import onnxforge as keras
from onnxforge import layers, ops
from onnxforge.trainer.core_parallel import MIN_SHARD, available_cores, plan_shards

from ..conftest import check_full


def _cnn(seed: int = 0, extra=()):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((8, 8, 1)), layers.Conv2D(4, 3, padding="same", activation="relu"),
                              layers.MaxPooling2D(), *extra, layers.Conv2D(8, 3, padding="same", activation="relu"),
                              layers.GlobalAveragePooling2D(), layers.Dense(10)])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


def _data(n: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, 8, 8, 1)).astype(np.float32), rng.integers(0, 10, n),
            rng.uniform(0.5, 2.0, n).astype(np.float32))


def _train(monkeypatch, shards: str, model_fn, batches):
    monkeypatch.setenv("ONNXFORGE_CORE_SHARDS", shards)
    model = model_fn()
    logs = [model.train_on_batch(x, y, sample_weight=w, return_dict=True) for x, y, w in batches]
    return model, logs


def _sharded(model, shards: int = 2) -> bool:
    cache = getattr(model, "_shard_steps", None)
    return cache is not None and cache[1].get(shards) is not None


@pytest.mark.parametrize("n", [2 * MIN_SHARD, 2 * MIN_SHARD + 7])
def test_sharded_steps_match_the_one_session_step(monkeypatch, n):
    """Weighted samples, uneven shards: the same weights, loss and accuracy as one session (float32 sums)."""
    batches = [_data(n, seed) for seed in range(3)]
    one, logs_one = _train(monkeypatch, "1", _cnn, batches)
    two, logs_two = _train(monkeypatch, "2", _cnn, batches)
    assert not _sharded(one) and _sharded(two)
    for a, b in zip(logs_one, logs_two):
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_allclose(b[k], a[k], rtol=2e-5, err_msg=k)
    for a, b in zip(one.get_weights(), two.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)
    assert int(two.optimizer.iterations.numpy()) == 3


def test_a_fixed_loss_scale_in_shards(monkeypatch):
    """The shards scale their share of the loss as the one-session step does, and the update unscales once."""
    def model_fn():
        model = _cnn()
        model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9, loss_scale_factor=64.0),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model
    batches = [_data(2 * MIN_SHARD, seed) for seed in range(2)]
    one, _ = _train(monkeypatch, "1", model_fn, batches)
    two, _ = _train(monkeypatch, "2", model_fn, batches)
    assert _sharded(two)
    for a, b in zip(one.get_weights(), two.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)


def test_dynamic_loss_scaling_keeps_one_session(monkeypatch):
    """LossScaleOptimizer skips steps with non-finite gradients and moves its scale: one session does that."""
    monkeypatch.setenv("ONNXFORGE_CORE_SHARDS", "2")
    model = _cnn()
    model.compile(optimizer=keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1)),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y, w = _data(2 * MIN_SHARD)
    model.train_on_batch(x, y)
    assert not _sharded(model) and "LossScaleOptimizer" in model._shard_reason
    assert int(model.optimizer.step_counter.numpy()) == 1


def test_sharded_programs_pass_the_full_checker(monkeypatch):
    monkeypatch.setenv("ONNXFORGE_CORE_SHARDS", "2")
    model = _cnn()
    x, y, w = _data(2 * MIN_SHARD)
    model.train_on_batch(x, y, sample_weight=w)
    step = model._shard_steps[1][2]
    check_full(step.grads.program.model)
    check_full(step._apply.model)


def test_small_batches_run_one_session(monkeypatch):
    monkeypatch.setenv("ONNXFORGE_CORE_SHARDS", "2")
    model = _cnn()
    x, y, w = _data(2 * MIN_SHARD - 1)
    model.train_on_batch(x, y, sample_weight=w)
    assert not _sharded(model)
    assert plan_shards(2 * MIN_SHARD - 1, cores=2) == 1 and plan_shards(4 * MIN_SHARD, cores=8) == 4


def test_fit_in_shards_has_the_one_session_history(monkeypatch):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((256, 8, 8, 1)).astype(np.float32)
    y = (x[:, :4, :4, 0].mean(axis=(1, 2)) > 0).astype(np.int64)
    histories = []
    for shards in ("1", "2"):
        monkeypatch.setenv("ONNXFORGE_CORE_SHARDS", shards)
        model = _cnn()
        histories.append(model.fit(x, y, batch_size=128, epochs=4, verbose=0, shuffle=False).history)
        assert _sharded(model) == (shards == "2")
    one, two = histories
    np.testing.assert_allclose(two["loss"], one["loss"], rtol=1e-4)
    np.testing.assert_allclose(two["accuracy"], one["accuracy"])
    assert two["loss"][-1] < two["loss"][0]


def test_dropout_shards_draw_their_own_masks(monkeypatch):
    """Dropout's noise depends on positions and the seed, not on other rows: the step still shards; the shards
    draw from different streams, and the model's stream advances once per step as in one session."""
    model_fn = lambda: _cnn(extra=[layers.Dropout(0.5)])   # noqa: E731
    batches = [_data(2 * MIN_SHARD, seed) for seed in range(2)]
    two, _ = _train(monkeypatch, "2", model_fn, batches)
    assert _sharded(two)
    one, _ = _train(monkeypatch, "1", model_fn, batches)
    states = [np.asarray(v.numpy()) for v in two.rng_variables()]
    assert states and all(np.array_equal(a, np.asarray(b.numpy())) for a, b in zip(states, one.rng_variables()))
    # Masks differ from one session's (the second shard draws with another seed), so the weights do too.
    assert any(not np.allclose(a, b) for a, b in zip(one.get_weights(), two.get_weights()))


def test_each_shard_draws_from_its_own_stream(monkeypatch):
    """The same samples in both shards: the gradients differ because the masks do (a shard drawing with the
    first shard's seed would repeat its masks row for row)."""
    from onnxforge.compiler.replicated import GLOBAL_BATCH, replica_seed

    monkeypatch.setenv("ONNXFORGE_CORE_SHARDS", "2")
    model = _cnn(extra=[layers.Dropout(0.5)])
    x, y, w = _data(2 * MIN_SHARD)
    model.train_on_batch(x, y, sample_weight=w)
    step = model._shard_steps[1][2]
    feeds = dict(model._feeds([x[:MIN_SHARD]], [y[:MIN_SHARD]], None, "train_on_batch"))
    feeds[GLOBAL_BATCH] = np.asarray(MIN_SHARD, np.float32)
    (var, name, _), = step._random
    state = np.array(var.numpy(), copy=True)
    bucket = step._bucket_index[0]
    first = step._runners[0].run(feeds)[bucket]
    moved = state.copy()
    moved.flat[0] = replica_seed(int(state.flat[0]), 1)
    second = step._runners[1].run({**feeds, name: moved})[bucket]
    same_seed = step._runners[1].run({**feeds, name: state})[bucket]
    np.testing.assert_array_equal(same_seed, first)
    assert not np.allclose(second, first)
    # What the step feeds: the batch cut in order, shard 1's stream moved.
    parts = step.shard_feeds(model._feeds([x], [y], None, "train_on_batch"))
    np.testing.assert_array_equal(np.concatenate([p[model.input_names[0]] for p in parts]), x)
    current = np.asarray(var.numpy())
    assert parts[1][name][0] == replica_seed(int(current[0]), 1) != current[0] and parts[1][name][1] == current[1]
    assert name not in parts[0] and all(p[GLOBAL_BATCH] == len(x) for p in parts)


def test_batch_statistics_keep_one_session(monkeypatch):
    model_fn = lambda: _cnn(extra=[layers.BatchNormalization()])   # noqa: E731
    batches = [_data(2 * MIN_SHARD, seed) for seed in range(2)]
    one, logs_one = _train(monkeypatch, "1", model_fn, batches)
    two, logs_two = _train(monkeypatch, "2", model_fn, batches)
    assert not _sharded(two)
    assert "BatchNormalization" in two._shard_reason
    for a, b in zip(one.get_weights(), two.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_rows_mixed_in_the_forward_pass_keep_one_session(monkeypatch):
    """A layer that subtracts the batch mean couples the samples: no shards, and the reason names the node."""
    centre = layers.Lambda(lambda t: t - ops.mean(t, axis=0, keepdims=True))
    model_fn = lambda: _cnn(extra=[centre])   # noqa: E731
    two, _ = _train(monkeypatch, "2", model_fn, [_data(2 * MIN_SHARD)])
    assert not _sharded(two)
    assert "batch axis" in two._shard_reason


def test_metrics_updated_in_layers_keep_one_session(monkeypatch):
    class Watch(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.level = keras.metrics.Mean(name="level")

        def call(self, x):
            self.level.update_state(ops.mean(x))
            return x

    two, logs = _train(monkeypatch, "2", lambda: _cnn(extra=[Watch()]), [_data(2 * MIN_SHARD)])
    assert not _sharded(two) and "inside layers" in two._shard_reason
    assert "level" in logs[0]


def test_user_losses_keep_one_session(monkeypatch):
    monkeypatch.setenv("ONNXFORGE_CORE_SHARDS", "2")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3)])

    def my_loss(y_true, y_pred):   # could mix samples; nothing checks a user's function
        return ops.mean(ops.square(y_true - y_pred), axis=-1)

    model.compile(optimizer="sgd", loss=my_loss)
    rng = np.random.default_rng(0)
    model.train_on_batch(rng.standard_normal((2 * MIN_SHARD, 4)).astype(np.float32),
                         rng.standard_normal((2 * MIN_SHARD, 3)).astype(np.float32))
    assert not _sharded(model)
    assert "not a built-in loss" in model._shard_reason


def test_dense_only_models_keep_one_session(monkeypatch):
    """Each weight used once per sample: the shards' gradient sums would cost more than they save."""
    monkeypatch.setenv("ONNXFORGE_CORE_SHARDS", "2")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16,)), layers.Dense(32, activation="relu"), layers.Dense(10)])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    n = 4 * MIN_SHARD
    model.train_on_batch(rng.standard_normal((n, 16)).astype(np.float32), rng.integers(0, 10, n))
    assert not _sharded(model)
    assert "used 1.0 times per sample" in model._shard_reason


@pytest.mark.parametrize("value", ["0", "two", "-3"])
def test_bad_shard_counts_are_named(monkeypatch, value):
    monkeypatch.setenv("ONNXFORGE_CORE_SHARDS", value)
    with pytest.raises(ValueError, match=f"ONNXFORGE_CORE_SHARDS.*Received: ONNXFORGE_CORE_SHARDS={value!r}"):
        available_cores()


def test_cores_follow_the_intra_op_setting(monkeypatch):
    monkeypatch.delenv("ONNXFORGE_CORE_SHARDS", raising=False)
    monkeypatch.setenv("ONNXFORGE_INTRA_OP_THREADS", "3")
    assert available_cores() == 3


def _sharded_kind(model, kind: str, shards: int = 2) -> bool:
    cache = getattr(model, "_shard_steps", None)
    return cache is not None and cache[1].get((kind, shards)) is not None


@pytest.mark.parametrize("extra", [[], [layers.Dropout(0.5)]], ids=["plain", "dropout"])
def test_predict_and_evaluate_in_shards_match_one_session(monkeypatch, extra):
    x, y, w = _data(2 * MIN_SHARD + 3)
    # The compiled programs, in shards or not (constant-weight sessions would answer both runs otherwise).
    monkeypatch.setenv("ONNXFORGE_FROZEN_INFERENCE", "0")
    results = []
    for shards in ("1", "2"):
        monkeypatch.setenv("ONNXFORGE_CORE_SHARDS", shards)
        model = _cnn(extra=extra)
        results.append((model.predict(x, batch_size=len(x), verbose=0),
                        model.evaluate(x, y, sample_weight=w, batch_size=len(x), verbose=0, return_dict=True)))
        assert _sharded_kind(model, "infer") == _sharded_kind(model, "eval_step") == (shards == "2")
    (p1, e1), (p2, e2) = results
    np.testing.assert_allclose(p2, p1, rtol=1e-5, atol=1e-6)
    assert e1.keys() == e2.keys()
    for k in e1:
        np.testing.assert_allclose(e2[k], e1[k], rtol=1e-5, err_msg=k)


def test_inference_that_mixes_rows_keeps_one_session(monkeypatch):
    monkeypatch.setenv("ONNXFORGE_CORE_SHARDS", "2")
    monkeypatch.setenv("ONNXFORGE_FROZEN_INFERENCE", "0")   # the compiled program's choice is under test
    centre = layers.Lambda(lambda t: t - ops.mean(t, axis=0, keepdims=True))
    model = _cnn(extra=[centre])
    x, y, _ = _data(2 * MIN_SHARD)
    out = model.predict(x, batch_size=len(x), verbose=0)
    assert not _sharded_kind(model, "infer")
    whole = model(x)   # the same batch in one eager call: the batch mean over all rows
    np.testing.assert_allclose(out, np.asarray(whole), rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
def test_a_forked_child_trains_in_shards(monkeypatch):
    """The parent's shard threads do not exist in a forked child: it makes its own instead of waiting forever."""
    monkeypatch.setenv("ONNXFORGE_CORE_SHARDS", "2")
    model = _cnn()
    x, y, w = _data(2 * MIN_SHARD)
    model.train_on_batch(x, y)
    assert _sharded(model)
    pid = os.fork()
    if pid == 0:   # child: one more sharded step, then report through the exit code
        code = 1
        try:
            loss = model.train_on_batch(x, y)
            code = 0 if np.all(np.isfinite(loss)) else 2
        finally:
            os._exit(code)
    deadline = time.time() + 60
    while time.time() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, 9)
    pytest.fail("the forked child hung on its sharded step")
