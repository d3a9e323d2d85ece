"""Data-parallel fit / evaluate / predict with ranks as threads, against one process on the global batch.

Each test builds the same model once per rank and once for the single-process reference (same initial
weights), runs the same calls, and compares History, weights, evaluate and predict. Shards are uneven on
purpose (global batches that 2 or 3 ranks do not divide; a last batch smaller than the number of ranks, so
a rank gets no sample).
"""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as tf
from onnxforge.callbacks import Callback, CSVLogger
from onnxforge.distribute.program_split import build_replica_programs

from .threads import run_ranks, strategies


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a), 1e-12))


def _dense_model(seed=0, dropout=0.0):
    inputs = tf.keras.Input((6,))
    h = tf.keras.layers.Dense(8, activation="tanh", kernel_regularizer=tf.keras.regularizers.L2(0.01))(inputs)
    if dropout:
        h = tf.keras.layers.Dropout(dropout)(h)
    out = tf.keras.layers.Dense(3)(h)
    model = tf.keras.Model(inputs, out)
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def _compile(model, optimizer="adam", **kwargs):
    model.compile(optimizer=optimizer, loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], **kwargs)


def _data(n=23, seed=1):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 6)).astype(np.float32), rng.integers(0, 3, n),
            rng.uniform(0.2, 2.0, n).astype(np.float32))


def _replicated(size, build, compile_fn, call):
    """``call(model)`` on ``size`` thread ranks, each model built and compiled inside its strategy's scope."""
    ranks = strategies(size)
    models = []
    for strategy in ranks:
        with strategy.scope():
            m = build()
            compile_fn(m)
        models.append(m)
    return models, run_ranks([lambda m=m: call(m) for m in models])


@pytest.mark.parametrize("size,batch", [(2, 10), (3, 10), (3, 8)])
def test_fit_matches_one_process_with_sample_weights_regularizer_and_partial_batches(size, batch):
    # 22 samples in batches of 10: 10, 10, 2. With 3 ranks the shards are 4/3/3 and then 1/1/0: a rank
    # without samples. Batches of 8 (8, 8, 6) give 3/3/2 and 2/2/2.
    x, y, w = _data(n=22)

    def call(m):
        h = m.fit(x, y, sample_weight=w, batch_size=batch, epochs=3, shuffle=False, verbose=0)
        return h.history, m.get_weights(), m.evaluate(x, y, batch_size=7, verbose=0), \
            m.predict(x, batch_size=4, verbose=0)   # last batches of 1 and 2 samples: ranks left empty

    ref = _dense_model()
    _compile(ref)
    want = call(ref)
    models, got = _replicated(size, _dense_model, _compile, call)
    for history, weights, ev, pred in got:
        assert history.keys() == want[0].keys()
        for k in want[0]:
            np.testing.assert_allclose(history[k], want[0][k], rtol=1e-5, err_msg=k)
        for a, b in zip(weights, want[1]):
            assert _rel(b, a) < 1e-5
        np.testing.assert_allclose(ev, want[2], rtol=1e-5)
        np.testing.assert_allclose(pred, want[3], rtol=1e-4, atol=1e-6)
    # Every rank holds the same weights, bit for bit: they applied the same update to the same sums.
    for weights in [g[1] for g in got[1:]]:
        for a, b in zip(weights, got[0][1]):
            np.testing.assert_array_equal(a, b)


def test_sum_reduction_and_two_outputs_with_loss_weights():
    x, y, _ = _data(n=10)
    t = np.random.default_rng(5).normal(size=(10, 2)).astype(np.float32)

    def build():
        inputs = tf.keras.Input((6,))
        h = tf.keras.layers.Dense(5, activation="relu")(inputs)
        a = tf.keras.layers.Dense(3, name="cls")(h)
        b = tf.keras.layers.Dense(2, name="reg")(h)
        model = tf.keras.Model(inputs, [a, b])
        rng = np.random.default_rng(3)
        model.set_weights([rng.normal(0, 0.5, v.shape).astype(np.float32) for v in model.get_weights()])
        return model

    def compile_fn(m):
        m.compile(optimizer=tf.keras.optimizers.SGD(0.05),
                  loss=[tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                        tf.keras.losses.MeanSquaredError(reduction="sum")], loss_weights=[1.0, 0.3])

    def call(m):
        return m.fit(x, [y, t], batch_size=4, epochs=2, shuffle=False, verbose=0).history, m.get_weights()

    ref = build()
    compile_fn(ref)
    want = call(ref)
    _, got = _replicated(2, build, compile_fn, call)
    for history, weights in got:
        for k in want[0]:
            np.testing.assert_allclose(history[k], want[0][k], rtol=1e-5, err_msg=k)
        for a, b in zip(weights, want[1]):
            assert _rel(b, a) < 1e-5


def _bn_model(synchronized):
    model = tf.keras.Sequential([
        tf.keras.layers.Conv2D(4, 3, use_bias=False, input_shape=(6, 6, 2)),
        tf.keras.layers.BatchNormalization(synchronized=synchronized),
        tf.keras.layers.Activation("relu"),
        tf.keras.layers.Conv2D(4, 3, use_bias=False),
        tf.keras.layers.BatchNormalization(synchronized=synchronized, momentum=0.5),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(3)])
    rng = np.random.default_rng(0)
    weights = []
    for v, name in zip(model.get_weights(), [w.name for w in model.weights]):
        weights.append(v if "moving" in name else rng.normal(0, 0.5, v.shape).astype(np.float32) + (
            1.0 if "gamma" in name else 0.0))
    model.set_weights(weights)
    return model


def test_synchronized_batch_norm_matches_one_process_on_the_global_batch():
    rng = np.random.default_rng(2)
    x = (rng.normal(size=(20, 6, 6, 2)) + 3.0).astype(np.float32)   # a mean far from 0: the shifted sums
    y = rng.integers(0, 3, 20)

    def call(m):
        h = m.fit(x, y, batch_size=7, epochs=2, shuffle=False, verbose=0)   # batches 7, 7, 6: uneven shards
        return h.history, m.get_weights()

    ref = _bn_model(False)
    _compile(ref, optimizer=tf.keras.optimizers.SGD(0.1))
    want = call(ref)
    models, got = _replicated(2, lambda: _bn_model(True), lambda m: _compile(m, optimizer=tf.keras.optimizers.SGD(0.1)),
                              call)
    for history, weights in got:
        for k in want[0]:
            np.testing.assert_allclose(history[k], want[0][k], rtol=2e-5, err_msg=k)
        for a, b, var in zip(weights, want[1], models[0].weights):
            assert _rel(b, a) < 2e-5, var.name
    # Two synchronized layers in a chain: 2 forward and 2 backward exchange rounds, 5 stages.
    programs = models[0]._replica_driver.programs
    assert len(programs.stages) == 5 and [len(r) for r in programs.rounds] == [1, 1, 1, 1, 0]


def test_per_replica_batch_norm_statistics_are_averaged_like_keras_on_read_mean():
    rng = np.random.default_rng(4)
    x = (rng.normal(size=(8, 6, 6, 2)) * 2 + 1).astype(np.float32)
    y = rng.integers(0, 3, 8)

    def call(m):
        m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
        return m.get_weights()

    models, got = _replicated(2, lambda: _bn_model(False), _compile, call)
    bn = models[0].layers[1]
    names = [w.path for w in models[0].weights]
    i = names.index(bn.moving_mean.path)
    # moving = 0.99 * 0 + 0.01 * batch mean; each rank normalizes with its own 4 samples' statistics, and the
    # stored statistic is the mean of the ranks' (the first layer sees the data directly).
    conv = models[0].layers[0]
    kernel = got[0][names.index(conv.kernel.path)]
    initial = _bn_model(False).get_weights()[names.index(conv.kernel.path)]
    del kernel   # the update changed it after the statistics were taken; they use the initial kernel
    probe = tf.keras.Sequential([tf.keras.layers.Conv2D(4, 3, use_bias=False, input_shape=(6, 6, 2))])
    probe.set_weights([initial])
    per_rank = [probe.predict(x[s], verbose=0).mean(axis=(0, 1, 2)) for s in (slice(0, 4), slice(4, 8))]
    np.testing.assert_allclose(got[0][i], 0.01 * (per_rank[0] + per_rank[1]) / 2, rtol=1e-4, atol=1e-7)
    for a, b in zip(got[0], got[1]):
        np.testing.assert_array_equal(a, b)


def test_dropout_streams_differ_per_rank_and_repeat_per_run():
    x, y, _ = _data(n=16)

    def once():
        def call(m):
            m.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
            return [int(s) for s in m.rng_variables()[0].numpy()]

        models, states = _replicated(2, lambda: _dense_model(dropout=0.5), lambda m: _compile(m, seed=7), call)
        return states, models[0].get_weights()

    (states, weights), (states_again, weights_again) = once(), once()
    assert states[0][0] == 7 and states[1][0] != 7          # rank 0 keeps the seed, rank 1 moves it
    assert states == states_again                            # and both repeat run after run
    for a, b in zip(weights, weights_again):
        np.testing.assert_array_equal(a, b)


def test_side_effect_callbacks_run_on_rank_zero_and_stop_is_agreed(tmp_path):
    x, y, _ = _data(n=24)
    seen: dict[int, int] = {}

    class StopOnRankOne(Callback):
        def __init__(self, rank):
            super().__init__()
            self.rank = rank

        def on_train_batch_end(self, batch, logs=None):
            seen[self.rank] = batch
            if self.rank == 1 and batch == 1:
                self.model.stop_training = True   # only rank 1 decides: rank 0 must stop at the same step

    ranks = strategies(2)
    models = []
    for strategy in ranks:
        with strategy.scope():
            m = _dense_model()
            _compile(m)
        models.append(m)
    logs = [tmp_path / f"log{r}.csv" for r in range(2)]
    histories = run_ranks([lambda r=r: models[r].fit(
        x, y, batch_size=4, epochs=3, shuffle=False, verbose=0,
        callbacks=[CSVLogger(str(logs[r])), StopOnRankOne(r)]).history for r in range(2)])
    assert logs[0].exists() and not logs[1].exists()
    assert seen == {0: 1, 1: 1} and histories[0] == histories[1] and len(histories[0]["loss"]) == 1


def test_custom_train_step_is_refused_with_a_clear_error():
    class Custom(tf.keras.Model):
        def train_step(self, data):
            return {}

    strategy, = strategies(1)
    with strategy.scope():
        inputs = tf.keras.Input((6,))
        model = Custom(inputs, tf.keras.layers.Dense(3)(inputs))
        _compile(model)
    x, y, _ = _data(n=4)
    with pytest.raises(NotImplementedError, match="overrides train_step"):
        model.fit(x, y, verbose=0)


def test_replica_programs_pass_the_full_checker(checked):
    model = _bn_model(True)
    _compile(model)
    model._build_programs()
    programs = build_replica_programs(model, model._compiled_config, model._compiled_trainable(),
                                      model._rng_stream(), bucket_bytes=64)
    for stage in programs.stages:
        checked(stage)
    checked(programs.apply.model)
    assert len(programs.grads.buckets) > 1   # 64-byte buckets: several messages, each within one dtype
    assert sum(b.size for b in programs.grads.buckets) == sum(int(np.prod(v.shape)) for v in programs.grads.trained)


def test_gradient_accumulation_over_ranks_matches_one_process():
    # The replicated apply step sums the ranks' gradients, then accumulates them as one process would: 3 batches
    # an epoch, an update every second step, so epochs end mid-accumulation.
    x, y, w = _data(n=22)

    def compile_fn(m):
        _compile(m, optimizer=tf.keras.optimizers.Adam(0.05, gradient_accumulation_steps=2))

    def call(m):
        h = m.fit(x, y, sample_weight=w, batch_size=8, epochs=2, shuffle=False, verbose=0)
        return h.history["loss"], m.get_weights(), [np.asarray(v) for v in m.optimizer.variables]

    ref = _dense_model()
    compile_fn(ref)
    want = call(ref)
    _, got = _replicated(2, _dense_model, compile_fn, call)
    for losses, weights, state in got:
        np.testing.assert_allclose(losses, want[0], rtol=1e-5)
        for a, b in zip(weights + state, want[1] + want[2]):
            assert _rel(b, a) < 1e-5
