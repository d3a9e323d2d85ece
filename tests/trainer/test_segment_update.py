"""The update of a sharded step cut into element ranges run side by side (``compiler.segment_apply``,
``trainer.segment_update``): the same weights, slots and step counter as the one-session step."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as keras
from onnxforge import layers
from onnxforge.compiler.segment_apply import ALIGN, elementwise_update, plan_segments
from onnxforge.trainer import segment_update
from onnxforge.trainer.core_parallel import MIN_SHARD

from ..conftest import check_full


def _model(optimizer_fn, seed: int = 0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((8, 8, 1)), layers.Conv2D(4, 3, padding="same", activation="relu"),
                              layers.MaxPooling2D(), layers.Conv2D(8, 3, padding="same", activation="relu"),
                              layers.GlobalAveragePooling2D(), layers.Dense(10)])
    model.compile(optimizer=optimizer_fn(), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _batches(count: int = 3):
    rng = np.random.default_rng(1)
    return [(rng.standard_normal((2 * MIN_SHARD, 8, 8, 1)).astype(np.float32), rng.integers(0, 10, 2 * MIN_SHARD))
            for _ in range(count)]


def _train(monkeypatch, shards: str, optimizer_fn, batches, between=None):
    monkeypatch.setenv("ONNXFORGE_CORE_SHARDS", shards)
    model = _model(optimizer_fn)
    for i, (x, y) in enumerate(batches):
        model.train_on_batch(x, y)
        if between is not None:
            between(model, i)
    return model


def _step(model):
    return model._shard_steps[1][2]


@pytest.fixture
def small_ranges(monkeypatch):
    """The test models have ~400 weights: let ranges of 16 elements count as worth a thread."""
    monkeypatch.setattr(segment_update, "MIN_SEGMENT", 16)


def _assert_same_training(one, two):
    for a, b in zip(one.get_weights(), two.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)
    for a, b in zip(one.optimizer.variables, two.optimizer.variables):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-7, err_msg=a.name)


@pytest.mark.parametrize("sizes", [[288, 32, 18432, 64, 401408, 128, 1280, 10], [5], [16, 16, 1], [1000, 3, 777]])
@pytest.mark.parametrize("parts", [2, 3])
def test_plans_cover_every_element_once(sizes, parts):
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    members = [(f"v{i}", int(o), s) for i, (o, s) in enumerate(zip(offsets, sizes))]
    plan = plan_segments(members, parts)
    assert len(plan) == parts
    covered = [seg.offset + k for part in plan for seg in part for k in range(seg.size)]
    assert covered == list(range(int(offsets[-1])))  # in order, no gaps, no overlaps
    for part in plan:
        for seg in part:
            i = int(seg.var[1:])
            assert seg.offset == offsets[i] + seg.start and seg.start + seg.size <= sizes[i]
    starts = [part[0].offset for part in plan if part]
    assert all(s % ALIGN == 0 for s in starts)
    if offsets[-1] >= ALIGN * parts * 4:
        lengths = [sum(seg.size for seg in part) for part in plan]
        assert max(lengths) - min(lengths) <= 2 * ALIGN


OPTIMIZERS = {
    "adam": lambda: keras.optimizers.Adam(0.01),
    "adam_amsgrad": lambda: keras.optimizers.Adam(0.01, amsgrad=True),
    "adamw": lambda: keras.optimizers.AdamW(0.01, weight_decay=0.1),
    "sgd": lambda: keras.optimizers.SGD(0.1),
    "sgd_nesterov": lambda: keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True),
    "rmsprop_centered": lambda: keras.optimizers.RMSprop(0.01, momentum=0.5, centered=True),
    "adagrad": lambda: keras.optimizers.Adagrad(0.1),
    "adam_clipvalue": lambda: keras.optimizers.Adam(0.01, clipvalue=0.01),
    "nadam": lambda: keras.optimizers.Nadam(0.01),
    "adamax": lambda: keras.optimizers.Adamax(0.01),
    "adadelta": lambda: keras.optimizers.Adadelta(1.0),
    "lion": lambda: keras.optimizers.Lion(0.01),
    "ftrl": lambda: keras.optimizers.Ftrl(0.1, l1_regularization_strength=0.001, beta=0.1),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_ranged_updates_match_the_one_session_step(monkeypatch, small_ranges, name):
    batches = _batches()
    one = _train(monkeypatch, "1", OPTIMIZERS[name], batches)
    two = _train(monkeypatch, "2", OPTIMIZERS[name], batches)
    ranged = _step(two)._ranged
    assert ranged is not None and len(ranged.programs) == 2
    assert {seg.var.uid for p in ranged.programs for seg in p.segments} == {v.uid for v in two.trainable_weights}
    _assert_same_training(one, two)
    assert int(two.optimizer.iterations.numpy()) == len(batches)


@pytest.mark.parametrize("kwargs, reason", [({"clipnorm": 1.0}, "by norm"), ({"global_clipnorm": 1.0}, "by norm")])
def test_norm_clipping_updates_in_one_program(monkeypatch, small_ranges, kwargs, reason):
    """Clipping by norm reads whole tensors: the update stays one program, and training stays exact."""
    assert reason in elementwise_update(keras.optimizers.Adam(**kwargs))[1]
    batches = _batches(2)
    one = _train(monkeypatch, "1", lambda: keras.optimizers.Adam(0.01, **kwargs), batches)
    two = _train(monkeypatch, "2", lambda: keras.optimizers.Adam(0.01, **kwargs), batches)
    assert _step(two)._ranged is None
    _assert_same_training(one, two)


def test_an_optimizer_with_its_own_update_is_not_cut():
    class Signed(keras.optimizers.SGD):
        def update_step(self, b, param, grad, slots, lr, local_step):
            return param - lr * b.op("Sign", [grad]), slots
    ok, why = elementwise_update(Signed(0.1))
    assert not ok and "Signed" in why
    assert elementwise_update(keras.optimizers.SGD(0.1))[0]


def test_weights_set_between_steps_are_the_ones_updated(monkeypatch, small_ranges):
    """``set_weights`` gives a variable a new buffer: the ranges bind it, not the buffer they last wrote."""
    batches = _batches(4)
    rng = np.random.default_rng(5)
    shapes = [w.shape for w in _model(OPTIMIZERS["adam"]).get_weights()]
    replacement = [rng.standard_normal(shape).astype(np.float32) * 0.1 for shape in shapes]

    def reset(model, i):
        if i == 1:
            model.set_weights(replacement)
    one = _train(monkeypatch, "1", OPTIMIZERS["adam"], batches, reset)
    two = _train(monkeypatch, "2", OPTIMIZERS["adam"], batches, reset)
    assert _step(two)._ranged is not None
    _assert_same_training(one, two)


def test_range_programs_pass_the_full_checker(monkeypatch, small_ranges):
    two = _train(monkeypatch, "2", OPTIMIZERS["adam_amsgrad"], _batches(1))
    programs = _step(two)._ranged.programs
    assert [p.advance for p in programs] == [True, False]
    for program in programs:
        check_full(program.model)


def test_small_models_update_in_one_program(monkeypatch):
    """Below ``MIN_SEGMENT`` elements per range, handing a range to another thread costs more than it saves."""
    two = _train(monkeypatch, "2", OPTIMIZERS["adam"], _batches(1))
    assert _step(two)._ranged is None and _step(two)._apply is not None


def test_a_device_value_of_another_shape_is_refused_before_binding(monkeypatch, small_ranges):
    """The pieces are bound by address: a buffer of the wrong size must never reach onnxruntime (the shard
    programs refuse it too; the update checks on its own, since it reads and writes by address)."""
    import onnxruntime as ort
    two = _train(monkeypatch, "2", OPTIMIZERS["adam"], _batches(1))
    ranged = _step(two)._ranged
    kernel = two.trainable_weights[0]
    kernel._set_device(ort.OrtValue.ortvalue_from_numpy(np.zeros(3, np.float32)))
    with pytest.raises(RuntimeError, match=f"{kernel.path}.*shape"):
        ranged.run([None, None], 0.01)


@pytest.mark.parametrize("make, reason", [
    (lambda: keras.optimizers.Lamb(0.01, weight_decay=0.01), "whole tensors"),
    (lambda: keras.optimizers.Adafactor(0.1), "whole tensors"),
    (lambda: keras.optimizers.Adam(0.01, use_ema=True, ema_momentum=0.5, ema_overwrite_frequency=2), "use_ema"),
], ids=["lamb", "adafactor", "adam_ema"])
def test_whole_tensor_updates_and_averages_stay_one_program(monkeypatch, small_ranges, make, reason):
    """Lamb's trust ratio and Adafactor's RMS read whole weights, and the EMA averages are not range slots: the
    sharded step applies them in its one update program, exactly as the one-session step does."""
    assert reason in elementwise_update(make())[1]
    batches = _batches(3)
    one = _train(monkeypatch, "1", make, batches)
    two = _train(monkeypatch, "2", make, batches)
    assert _step(two)._ranged is None and _step(two)._apply is not None
    check_full(_step(two)._apply.model)
    _assert_same_training(one, two)
