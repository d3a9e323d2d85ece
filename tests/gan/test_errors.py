"""Code that cannot be traced into a graph fails while tracing, with an error that says what to write instead."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as of
from onnxforge import layers, losses, metrics, ops, optimizers
from onnxforge.compiler import CompileError


class Step(of.Model):
    """A model whose train_step is the function given (called with the model and the data)."""

    def __init__(self, fn, **kwargs):
        super().__init__(**kwargs)
        self.fn = fn
        self.dense = layers.Dense(1, name="err_dense")
        self.dense.build((None, 2))

    def train_step(self, data):
        return self.fn(self, data)


def _train(fn):
    model = Step(fn)
    model.compile(optimizer=optimizers.SGD(0.1), device="cpu")
    return model.train_on_batch(np.ones((4, 2), np.float32))


def _loss(model, x):
    return ops.mean(ops.square(model.dense(x)))


def test_python_branch_on_a_tensor():
    def step(model, x):
        loss = _loss(model, x)
        if loss > 1.0:
            loss = loss * 0.5
        return {"loss": loss}

    with pytest.raises(TypeError, match=r"truth value of symbolic tensor .* ops\.where"):
        _train(step)


@pytest.mark.parametrize("call", [lambda v: np.mean(v), lambda v: np.exp(v), lambda v: float(v),
                                  lambda v: np.asarray(v), lambda v: range(ops.shape(v)[0])],
                         ids=["np.mean", "np.exp", "float", "np.asarray", "range(batch)"])
def test_numpy_or_host_values_of_symbolic_tensors(call):
    def step(model, x):
        call(x)
        return {"loss": _loss(model, x)}

    with pytest.raises(TypeError, match=r"not known while the graph is being built.*onnxforge\.ops"):
        _train(step)


def test_keras_metric_objects_explain_what_to_return():
    tracker = metrics.Mean(name="d_loss")

    def host_value(model, x):
        loss = _loss(model, x)
        tracker.update_state(loss)
        return {"d_loss": float(tracker.result())}

    with pytest.raises(TypeError, match=r"metric 'd_loss' \(Mean\)\.result\(\).*in the logs dict"):
        _train(host_value)

    with pytest.raises(CompileError, match=r"Return tracker\.result\(\) .* or the value itself"):
        _train(lambda model, x: {"d_loss": tracker})
    with pytest.raises(CompileError, match="must return a dict"):
        _train(lambda model, x: _loss(model, x))
    # A tensor log comes back as the array it is (Keras's train_on_batch does the same).
    out = _train(lambda model, x: {"out": model.dense(x)})
    assert np.shape(out) == (4, 1) and np.ptp(out) == 0.0   # four equal rows: one Dense of ones


def test_gradients_and_updates_outside_a_trace():
    """Outside a trace the tape records eagerly and apply_gradients updates at once (they raised before)."""
    var = of.Variable(np.zeros(2, np.float32), name="v")
    with of.GradientTape() as tape:
        loss = ops.sum(var * 3.0)
    grad = tape.gradient(loss, var)
    np.testing.assert_array_equal(np.asarray(grad), [3.0, 3.0])
    optimizers.SGD(0.5).apply_gradients([(grad, var)])
    np.testing.assert_array_equal(var.numpy(), [-1.5, -1.5])
    # Outside a trace (and a tape) an op takes a Variable by its current value, as Keras's eager ops do.
    np.testing.assert_array_equal(np.asarray(ops.add(var, 1.0)), [-0.5, -0.5])


def test_tape_misuse():
    def twice(model, x):
        with of.GradientTape() as tape:
            loss = _loss(model, x)
        tape.gradient(loss, model.trainable_weights)
        tape.gradient(loss, model.trainable_weights)
        return {"loss": loss}

    with pytest.raises(RuntimeError, match="persistent=True"):
        _train(twice)

    def outside(model, x):
        loss = _loss(model, x)
        with of.GradientTape() as tape:
            scaled = loss * 2.0
        grads = tape.gradient(scaled, model.trainable_weights)
        assert grads == [None, None]   # TensorFlow's answer: the tape did not see the weights used
        model.optimizer.apply_gradients(zip(grads, model.trainable_weights))
        return {"loss": scaled}

    with pytest.raises(ValueError, match="computed outside the `with GradientTape"):
        _train(outside)

    def branch(model, x):
        # ops.cond on a traced loss is no misuse: it becomes an ONNX If (tests/ops/test_keras_ops_control_flow.py).
        loss = _loss(model, x)
        return {"loss": loss, "big": ops.cond(loss > 1, lambda: 1.0, lambda: 0.0)}

    model = Step(branch)
    model.compile(optimizer=optimizers.SGD(0.1), device="cpu")
    logs = model.train_on_batch(np.ones((4, 2), np.float32), return_dict=True)
    assert float(logs["big"]) == float(float(logs["loss"]) > 1)


def test_calling_the_compiled_default_step_from_an_override():
    class Super(of.Model):
        def train_step(self, data):
            return super().train_step(data)

    model = Super()
    model.compile(optimizer="sgd", device="cpu")
    with pytest.raises(NotImplementedError, match="GradientTape and optimizer.apply_gradients"):
        model.train_on_batch(np.ones((2, 2), np.float32))


def test_fit_without_targets_only_for_custom_steps():
    plain = of.Sequential([of.Input((2,)), layers.Dense(1)])
    plain.compile(optimizer="sgd", loss=losses.MeanSquaredError(), device="cpu")
    with pytest.raises(ValueError, match="y \\(the targets\\) is required"):
        plain.fit(np.ones((4, 2), np.float32), verbose=0)
