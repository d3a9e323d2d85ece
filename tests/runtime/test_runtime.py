"""Runtime: device choice, one session per program, device-resident state swapped through IOBinding."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import onnxforge
from onnxforge import losses, optimizers, runtime
from onnxforge.graph import GraphBuilder
from onnxforge.runtime import Device, ProgramRunner, resolve_device
from onnxforge.variables import Variable

from ..compiler.standin import MLP

HAS_CUDA = "CUDAExecutionProvider" in ort.get_available_providers()


def _xy(n=10):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 4)).astype(np.float32), rng.integers(0, 3, n)


def _compiled(device="cpu", **kw):
    model = MLP(**kw)
    model.compile(optimizer=optimizers.Adam(learning_rate=0.01), device=device,
                  loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


# ------------------------------------------------------------------ devices
def test_resolve_device_choices():
    assert resolve_device("cpu") == Device("cpu")
    assert resolve_device(" CPU ") == Device("cpu")
    with pytest.raises(ValueError, match=r"device.*'tpu'"):
        resolve_device("tpu")
    with pytest.raises(ValueError, match="device"):
        resolve_device(3)


@pytest.mark.skipif(HAS_CUDA, reason="checks the behaviour without the CUDA provider")
def test_cuda_without_provider_is_a_clear_error_and_auto_falls_back_with_one_notice(capsys, monkeypatch):
    with pytest.raises(RuntimeError, match=r"CUDAExecutionProvider.*onnxruntime-gpu"):
        resolve_device("cuda")
    with pytest.raises(RuntimeError, match="CUDAExecutionProvider"):
        MLP().compile(optimizer="sgd", loss="mse", device="cuda:0")
    from onnxforge.runtime import device as device_module

    monkeypatch.setattr(device_module, "_noticed", False)
    assert resolve_device("auto") == Device("cpu")
    assert resolve_device("auto") == Device("cpu")
    err = capsys.readouterr().err
    assert err.count("onnxforge:") == 1 and "CPU" in err and err.count("\n") == 1


@pytest.mark.cuda
@pytest.mark.skipif(not HAS_CUDA, reason="needs onnxruntime's CUDA execution provider")
def test_cuda_training_keeps_state_on_the_gpu():
    model = _compiled(device="cuda")
    x, y = _xy()
    losses_seen = [model.train_on_batch(x, y) for _ in range(3)]
    assert model.k1._get_device().device_name().lower() == "cuda"
    cpu = _compiled(device="cpu")
    cpu_losses = [cpu.train_on_batch(x, y) for _ in range(3)]
    np.testing.assert_allclose(losses_seen, cpu_losses, rtol=1e-5)


# ------------------------------------------------------------------ device-resident state
def test_state_lives_on_the_device_and_the_host_copy_is_untouched_between_steps():
    model = _compiled(running_stat=True)
    x, y = _xy()
    host_before = {v.path: (v._host, v._host.copy()) for v in model.weights}
    model.train_on_batch(x, y)
    first = {v.path: v._get_device() for v in model.weights}
    model.train_on_batch(x, y)
    for v in model.weights + model.optimizer.variables:
        assert isinstance(v._get_device(), ort.OrtValue), v.path
    for v in model.weights:
        array, values = host_before[v.path]
        assert v._host is array and np.array_equal(v._host, values), v.path    # never written by a step
        assert v._get_device() is not first[v.path]                             # swapped for the new value
    # Reading back copies from the device; a host assign is uploaded again on the next step.
    k1 = model.k1.numpy()
    assert not np.array_equal(k1, host_before["dense/kernel"][1])
    model.k1.assign(np.zeros_like(k1))
    assert model.k1._get_device() is None
    model.train_on_batch(x, y)
    assert model.k1._get_device() is not None and np.abs(model.k1.numpy()).max() < 0.1


def test_one_session_per_program_reused_without_rebuilds():
    model = _compiled()
    x, y = _xy()
    model.train_on_batch(x, y)
    runner = model._runners["train_step"]
    session, program = runner.session, model.compiled_programs["train_step"].model
    lr_value = runner._lr_cache[1]
    for _ in range(3):
        model.train_on_batch(x, y)
    assert runner.session is session and model.compiled_programs["train_step"].model is program
    assert runner._lr_cache[1] is lr_value           # an unchanged learning rate is not uploaded again
    assert runner.runs == 4
    model.optimizer.learning_rate = 0.5              # what a callback does: fed, not rebuilt
    k2 = model.k2.numpy().copy()
    model.train_on_batch(x, y)
    assert runner.session is session and runner._lr_cache[0] == 0.5
    assert np.abs(model.k2.numpy() - k2).max() > 0.1    # Adam moves each weight by about lr


def test_runner_errors_name_the_program():
    b = GraphBuilder()
    x = b.input("x", onnx.TensorProto.FLOAT, (2,))
    b.output(b.op("Relu", [x]), "y")
    runner = ProgramRunner(b.to_model(), Device("cpu"), ["x"], ["y"], name="eval_step")
    with pytest.raises(RuntimeError, match="eval_step"):
        runner.run({"x": np.zeros(3, np.float32)})
    broken = onnx.ModelProto()
    with pytest.raises(RuntimeError, match="could not load the train_step program"):
        runtime.create_session(broken, Device("cpu"), "train_step")


def test_variables_move_between_devices_of_two_runners():
    b = GraphBuilder()
    w = b.input("w", onnx.TensorProto.FLOAT, (2,))
    b.output(w * 2.0, "y")
    var = Variable(np.array([1.0, 2.0], np.float32), "w")
    runner = ProgramRunner(b.to_model(), Device("cpu"), [], ["y"], params=[(var, "w")])
    np.testing.assert_array_equal(runner.run({})[0], [2.0, 4.0])
    value = var._get_device()
    np.testing.assert_array_equal(runner.run({})[0], [2.0, 4.0])
    assert var._get_device() is value      # bound again, not uploaded again
    assert runner.session.get_providers() == ["CPUExecutionProvider"]
    opts = runtime.session_options()
    assert opts.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL


def test_state_buffers_are_reused_in_turn_and_stay_correct():
    """Two device buffers per state, used in turn: steady steps allocate none, fetched outputs keep their
    order and batch shape, and a host assign or another runner's update is picked up."""
    b = GraphBuilder()
    x = b.input("x", onnx.TensorProto.FLOAT, ("N", 2))
    c = b.input("c", onnx.TensorProto.FLOAT, (2,))
    b.output(x + c, "y")                       # batch-shaped fetched output
    b.output(c + 1.0, "c:new")
    counter = Variable(np.zeros(2, np.float32), name="c", trainable=False)
    runner = ProgramRunner(b.to_model(), Device("cpu"), ["x"], ["y"], state=[(counter, "c", "c:new")])
    seen = []
    for n in (3, 3, 3, 5, 1):
        y, = runner.run({"x": np.zeros((n, 2), np.float32)})
        assert y.shape == (n, 2)
        seen.append(counter._get_device())
    np.testing.assert_array_equal(y, [[4.0, 4.0]])  # the value before the 5th step
    assert len({id(v) for v in seen}) == 2          # ping-pong between two buffers
    assert seen[0] is seen[2] and seen[1] is seen[3]
    counter.assign(np.full(2, 10.0, np.float32))     # host value wins, uploaded once
    runner.run({"x": np.zeros((1, 2), np.float32)})
    np.testing.assert_array_equal(counter.numpy(), [11.0, 11.0])
    other = ProgramRunner(b.to_model(), Device("cpu"), ["x"], ["y"], state=[(counter, "c", "c:new")])
    runner.run({"x": np.zeros((1, 2), np.float32)})  # 12
    other.run({"x": np.zeros((1, 2), np.float32)})   # 13, in the other runner's buffers
    y, = runner.run({"x": np.zeros((1, 2), np.float32)})
    np.testing.assert_array_equal(y, [[13.0, 13.0]])
    np.testing.assert_array_equal(counter.numpy(), [14.0, 14.0])


def test_cuda_numerics_settings_reach_the_provider_and_session_options(monkeypatch):
    from onnxforge.runtime import device as device_module
    from onnxforge.runtime import enable_op_determinism, enable_tensor_float_32_execution, session_options

    monkeypatch.setattr(device_module, "_settings", {"tf32": False, "deterministic": False})
    name, options = Device("cuda", 1).providers[0]
    assert name == "CUDAExecutionProvider" and options == {"device_id": "1", "use_tf32": "0"}
    assert not session_options().use_deterministic_compute
    enable_tensor_float_32_execution(True)
    enable_op_determinism()
    _, options = Device("cuda").providers[0]
    assert options["use_tf32"] == "1" and options["cudnn_conv_algo_search"] == "DEFAULT"
    assert session_options().use_deterministic_compute
    assert Device("cpu").providers == ["CPUExecutionProvider"]


@pytest.mark.cuda
@pytest.mark.skipif(not HAS_CUDA, reason="needs onnxruntime's CUDA execution provider")
def test_cuda_trains_batch_norm_and_conv_like_the_cpu():
    layers = onnxforge.layers

    def run(device):
        onnxforge.utils.set_random_seed(0)
        model = onnxforge.Sequential([layers.Input((8, 8, 2)), layers.Conv2D(4, 3), layers.BatchNormalization(),
                                      layers.ReLU(), layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(3)])
        model.compile(optimizer="adam", loss=onnxforge.losses.SparseCategoricalCrossentropy(from_logits=True),
                      device=device)
        rng = np.random.default_rng(0)
        x, y = rng.normal(size=(16, 8, 8, 2)).astype(np.float32), rng.integers(0, 3, 16)
        return [model.train_on_batch(x, y) for _ in range(3)], model.get_weights()

    (gpu_losses, gpu_weights), (cpu_losses, cpu_weights) = run("cuda"), run("cpu")
    np.testing.assert_allclose(gpu_losses, cpu_losses, rtol=1e-5)
    for g, c in zip(gpu_weights, cpu_weights):
        np.testing.assert_allclose(g, c, rtol=1e-4, atol=1e-5)
