"""Fused training kernels (BatchNormalization's training step as one ``BatchNormalization(training_mode=1)``):
only in CPU programs this process runs; CUDA compiles and every file keep the primitive-op formulation, and
both formulations train alike."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

import onnxforge.trainer.mixin as trainer_mixin
from onnxforge import layers as L
from onnxforge import losses, optimizers
from onnxforge.models import Sequential
from onnxforge.runtime import Device, fused_training_ops


def _training_bn(proto: onnx.ModelProto) -> list[str]:
    return [n.name for n in proto.graph.node if n.op_type == "BatchNormalization"
            and any(a.name == "training_mode" and a.i for a in n.attribute)]


def _model(seed: int = 0) -> Sequential:
    # A conv's BatchNormalization (NCHW inside), a Dense output's (2-D), one without scale and center. Relu
    # before each: a bias right before a BatchNormalization has a zero gradient, which Adam turns into
    # steps of rounding noise.
    model = Sequential([L.Input((6, 6, 2)), L.Conv2D(4, 3, activation="relu", name="conv"),
                        L.BatchNormalization(momentum=0.8, name="bn1"), L.Flatten(),
                        L.Dense(5, activation="relu", name="hidden"),
                        L.BatchNormalization(center=False, scale=False, epsilon=1e-2, name="bn2"),
                        L.Dense(3, name="out")])
    rng = np.random.default_rng(seed)
    for w in model.weights:   # non-trivial statistics and affine weights
        w.assign(rng.uniform(0.5, 1.5, w.shape) if "variance" in w.name else rng.normal(0, 0.5, w.shape))
    return model


def _compile(model: Sequential, device: str | Device = "cpu") -> Sequential:
    model.compile(optimizer=optimizers.Adam(0.01), loss=losses.SparseCategoricalCrossentropy(from_logits=True), device=device)
    return model


def _data(n: int = 8):
    rng = np.random.default_rng(1)
    return rng.normal(2.0, 3.0, (n, 6, 6, 2)).astype(np.float32), rng.integers(0, 3, n)


def test_only_the_cpu_provider_gets_fused_training_kernels():
    assert fused_training_ops(Device("cpu")) is True
    assert fused_training_ops(Device("cuda", 0)) is False and fused_training_ops(Device("cuda", 1)) is False


def test_a_cuda_compile_keeps_the_primitive_formulation():
    # Sessions are created on first run, so the programs of a CUDA compile can be looked at on any machine.
    cuda = _compile(_model(), Device("cuda", 0))
    cpu = _compile(_model(), "cpu")
    assert _training_bn(cpu.compiled_programs["train_step"].model)   # the check below can fail
    program = cuda.compiled_programs["train_step"]
    assert program.portable and not _training_bn(program.model)
    assert any(n.op_type == "ReduceMean" for n in program.model.graph.node)


def test_fused_and_primitive_steps_train_alike(monkeypatch, checked):
    fused = _compile(_model())
    monkeypatch.setattr(trainer_mixin, "fused_training_ops", lambda device: False)
    plain = _compile(_model())
    proto = checked(fused.compiled_programs["train_step"].model)
    forward = _training_bn(proto)
    assert len(forward) == 2
    # The backward reads the forward node's batch statistics (momentum 0) through an inference-mode
    # BatchNormalization instead of recomputing them with a second training-mode one.
    stats = {o for n in proto.graph.node if n.name in forward for o in n.output[1:]}
    assert stats and all(any(a.name == "momentum" and a.f == 0.0 for a in n.attribute)
                         for n in proto.graph.node if n.name in forward)
    assert sum(1 for n in proto.graph.node if n.op_type == "BatchNormalization" and set(n.input[3:]) <= stats) == 2
    assert not _training_bn(checked(plain.compiled_programs["train_step"].model))
    assert not fused.compiled_programs["train_step"].portable and plain.compiled_programs["train_step"].portable
    x, y = _data()
    for step in range(4):
        a = fused.train_on_batch(x[step:step + 6], y[step:step + 6])
        b = plain.train_on_batch(x[step:step + 6], y[step:step + 6])
        assert a == pytest.approx(b, rel=1e-5), step
    for wa, wb in zip(fused.weights, plain.weights):   # weights, biases and both layers' moving statistics
        np.testing.assert_allclose(wa.numpy(), wb.numpy(), rtol=1e-4, atol=1e-5, err_msg=wa.name)
    assert not np.allclose(fused.get_layer("bn1").moving_mean.numpy(), _model().get_layer("bn1").moving_mean.numpy())


def test_files_keep_the_primitive_formulation(tmp_path, checked):
    model = _compile(_model())
    x, y = _data()
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    runtime = model.compiled_programs["train_step"]
    assert _training_bn(runtime.model)
    path = model.export_training(tmp_path / "train.onnx")
    proto = checked(onnx.load(str(path)))
    assert not _training_bn(proto) and any(n.op_type == "ReduceMean" for n in proto.graph.node)
    meta = {e.key: e.value for e in proto.metadata_props}
    assert json.loads(meta["onnxforge.state"]) == [[i, o] for _, i, o in runtime.state]   # same state pairs
    for name in ("eval.onnx", "infer.onnx"):
        written = (model.export_eval if name == "eval.onnx" else model.export)(tmp_path / name)
        assert not _training_bn(onnx.load(str(written)))
    assert model.compiled_programs["train_step"] is runtime   # the runtime step is left as it was

    # The exported step, run by plain onnxruntime, takes the step the process takes (within rounding).
    import onnxruntime as ort

    init = ort.InferenceSession(str(tmp_path / meta["onnxforge.init_model"]), providers=["CPUExecutionProvider"])
    state = dict(zip([o.name for o in init.get_outputs()], init.run(None, {})))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    data, target, weight = runtime.inputs
    feeds = {data: x[:6], target: y[:6], weight: np.ones(6, np.float32),
             runtime.learning_rate: np.asarray(0.01, np.float32), **state}
    out = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    expected = model.train_on_batch(x[:6], y[:6])
    assert float(out["sums/loss/total"] / out["sums/loss/count"]) == pytest.approx(expected, rel=1e-5)
