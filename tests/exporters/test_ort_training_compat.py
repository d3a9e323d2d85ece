"""``generate_artifacts``: onnxruntime-training's four artefacts in standard ops. A training loop in plain
onnxruntime (training model -> optimizer model -> new state) reproduces torch's SGD steps and onnxforge's
own AdamW fit; gradient accumulation, the eval model, the loss types and the checkpoint behave as documented."""
from __future__ import annotations

import copy

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto as T
from onnx import helper, numpy_helper

import onnxforge
from exporters.ort_training_compat import LossType, OptimType, generate_artifacts, load_checkpoint
from onnxforge.models.onnx_model import from_onnx
from tests.conftest import check_full


def _session(path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


class Loop:
    """The training loop onnxruntime-training's Module/Optimizer ran, written against plain sessions."""

    def __init__(self, paths, data_names):
        self.train, self.eval = _session(paths["training_model"]), _session(paths["eval_model"])
        self.optim = _session(paths["optimizer_model"]) if "optimizer_model" in paths else None
        ckpt = load_checkpoint(paths["checkpoint"])
        self.state, self.trainable = dict(ckpt["tensors"]), ckpt["requires_grad"]
        self.params = ckpt["requires_grad"] + ckpt["frozen_params"]
        self.slots = ckpt["optimizer_state"]
        self.data_names = data_names

    def gradients(self, batch, reset=True, buffers=None):
        feeds = {**dict(zip(self.data_names, batch)), **{p: self.state[p] for p in self.params},
                 "lazy_reset_grad": np.array([reset])}
        for p in self.trainable:
            feeds[f"{p}_grad.accumulation.buffer"] = (buffers or {}).get(p, np.zeros_like(self.state[p]))
        out = dict(zip([o.name for o in self.train.get_outputs()], self.train.run(None, feeds)))
        return float(out["loss"]), {p: out[f"{p}_grad.accumulation.out"] for p in self.trainable}

    def step(self, batch, lr):
        loss, grads = self.gradients(batch)
        feeds = {"learning_rate": np.array(lr, np.float32), **{k: self.state[k] for k in self.slots},
                 **{p: self.state[p] for p in self.trainable},
                 **{f"{p}_grad.accumulation.out": g for p, g in grads.items()}}
        for name, value in zip([o.name for o in self.optim.get_outputs()], self.optim.run(None, feeds)):
            self.state[name.removesuffix(":new")] = value
        return loss

    def evaluate(self, batch):
        feeds = {**dict(zip(self.data_names, batch)), **{p: self.state[p] for p in self.params}}
        return float(self.eval.run(["loss"], feeds)[0])


def _mlp_proto() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Gemm", ["x", "fc1.weight", "fc1.bias"], ["h"], transB=1),
             helper.make_node("Tanh", ["h"], ["a"]),
             helper.make_node("Gemm", ["a", "fc2.weight", "fc2.bias"], ["y"], transB=1)]
    inits = [numpy_helper.from_array(rng.normal(0, 0.5, (8, 4)).astype(np.float32), "fc1.weight"),
             numpy_helper.from_array(np.zeros(8, np.float32), "fc1.bias"),
             numpy_helper.from_array(rng.normal(0, 0.5, (2, 8)).astype(np.float32), "fc2.weight"),
             numpy_helper.from_array(np.zeros(2, np.float32), "fc2.bias")]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", T.FLOAT, ["N", 4])],
                              [helper.make_tensor_value_info("y", T.FLOAT, ["N", 2])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


def _regression(n=16, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    return x, np.stack([x[:, 0] * x[:, 1], x[:, 2] - x[:, 3]], 1).astype(np.float32)


def test_layout_names_and_full_checker(tmp_path):
    paths = generate_artifacts(_mlp_proto(), requires_grad=["fc2.weight", "fc2.bias", "fc1.weight"],
                               frozen_params=["fc1.bias"], loss=LossType.MSELoss, optimizer=OptimType.AdamW,
                               artifact_directory=tmp_path, prefix="mlp_")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlp_checkpoint", "mlp_eval_model.onnx",
                                                         "mlp_optimizer_model.onnx", "mlp_training_model.onnx"]
    models = {k: check_full(onnx.load(p)) for k, p in paths.items()}
    train_in = {i.name for i in models["training_model"].graph.input}
    assert {"x", "target", "lazy_reset_grad", "fc1.bias", "fc1.weight_grad.accumulation.buffer"} <= train_in
    assert "fc1.bias_grad.accumulation.buffer" not in train_in  # frozen: no gradient
    assert [o.name for o in models["training_model"].graph.output] == [
        "loss", "fc2.weight_grad.accumulation.out", "fc2.bias_grad.accumulation.out",
        "fc1.weight_grad.accumulation.out"]
    assert [o.name for o in models["eval_model"].graph.output] == ["loss"]
    optim_in = {i.name for i in models["optimizer_model"].graph.input}
    assert {"learning_rate", "step", "fc2.weight.momentum", "fc2.weight.velocity",
            "fc2.weight_grad.accumulation.out"} <= optim_in
    ckpt = load_checkpoint(paths["checkpoint"])
    assert ckpt["frozen_params"] == ["fc1.bias"] and "step" in ckpt["optimizer_state"]
    np.testing.assert_array_equal(ckpt["tensors"]["fc2.weight"],
                                  numpy_helper.to_array(_mlp_proto().graph.initializer[2]))
    # onnxruntime reads the checkpoint too: a model with no inputs whose outputs, named after the inputs they
    # feed, start every artefact's state (no input of any artefact has an initializer default).
    ckpt_sess = _session(paths["checkpoint"])
    values = dict(zip([o.name for o in ckpt_sess.get_outputs()], ckpt_sess.run(None, {})))
    np.testing.assert_array_equal(values["fc2.weight.momentum"], np.zeros((2, 8), np.float32))
    np.testing.assert_array_equal(values["fc1.weight_grad.accumulation.buffer"], np.zeros((8, 4), np.float32))
    assert values["lazy_reset_grad"].tolist() == [True] and int(values["step"]) == 0
    batch = {"x", "target", "learning_rate"} | {f"{p}_grad.accumulation.out" for p in ckpt["requires_grad"]}
    for kind in ("training_model", "eval_model", "optimizer_model"):
        proto = models[kind]
        assert not {i.name for i in proto.graph.input} & {t.name for t in proto.graph.initializer}, kind
        assert {i.name for i in proto.graph.input} - batch <= set(values), kind
        assert {p.key: p.value for p in proto.metadata_props}["onnxforge.init_model"] == "mlp_checkpoint"


def test_plain_onnxruntime_loop_reproduces_torch_sgd(tmp_path):
    torch = pytest.importorskip("torch")
    from exporters.torch_exporter import export_torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    paths = generate_artifacts(export_torch(net, torch.zeros(2, 6)), frozen_params=["0.bias"],
                               loss="CrossEntropyLoss", optimizer="SGD", artifact_directory=tmp_path)
    loop = Loop(paths, ["input", "labels"])
    assert loop.trainable == ["0.weight", "2.weight", "2.bias"]
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 6)).astype(np.float32), rng.integers(0, 3, 8)
    ref = copy.deepcopy(net)
    ref[0].bias.requires_grad_(False)
    opt = torch.optim.SGD([p for p in ref.parameters() if p.requires_grad], lr=0.5)
    for _ in range(3):
        ours = loop.step((x, y), 0.5)
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(ref(torch.from_numpy(x)), torch.from_numpy(y))
        loss.backward()
        opt.step()
        np.testing.assert_allclose(ours, loss.item(), rtol=1e-5)
    for name, value in ref.state_dict().items():
        np.testing.assert_allclose(loop.state[name], value.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)
    assert loop.state["step"] == 3


def test_adamw_artifacts_train_like_onnxforge_fit(tmp_path):
    opt_config = dict(learning_rate=0.05, weight_decay=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-8)
    paths = generate_artifacts(_mlp_proto(), loss="MSELoss", optimizer=onnxforge.optimizers.AdamW(**opt_config),
                               artifact_directory=tmp_path)
    loop = Loop(paths, ["x", "target"])
    model = from_onnx(_mlp_proto())
    model.compile(optimizer=onnxforge.optimizers.AdamW(**opt_config), loss="mse")
    x, y = _regression()
    losses = []
    for _ in range(5):
        model.reset_metrics()
        ours = loop.step((x, y), 0.05)
        np.testing.assert_allclose(ours, model.train_on_batch(x, y), rtol=1e-5)
        losses.append(ours)
    assert losses[-1] < losses[0]
    for v in model.trainable_weights:
        np.testing.assert_allclose(loop.state[v.path], v.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loop.evaluate((x, y)), model.evaluate(x, y, verbose=0), rtol=1e-5)


def test_gradient_accumulation_follows_lazy_reset_grad(tmp_path):
    paths = generate_artifacts(_mlp_proto(), loss=LossType.L1Loss, artifact_directory=tmp_path)
    assert "optimizer_model" not in paths
    loop = Loop(paths, ["x", "target"])
    (xa, ya), (xb, yb) = _regression(8, 1), _regression(8, 2)
    _, ga = loop.gradients((xa, ya))
    _, gb = loop.gradients((xb, yb))
    _, acc = loop.gradients((xb, yb), reset=False, buffers=ga)
    for p in loop.trainable:
        np.testing.assert_allclose(acc[p], ga[p] + gb[p], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("loss", ["BCEWithLogitsLoss", "L1Loss", "MSELoss", None])
def test_loss_values(tmp_path, loss):
    proto = _mlp_proto()
    if loss is None:  # the model computes its own loss: here the mean of its outputs
        proto.graph.node.append(helper.make_node("ReduceMean", ["y"], ["own_loss"], keepdims=0))
        proto.graph.output[0].CopyFrom(helper.make_tensor_value_info("own_loss", T.FLOAT, []))
    paths = generate_artifacts(proto, loss=loss, artifact_directory=tmp_path, additional_output_names=["y"])
    x, t = _regression(6)
    t = (t > 0).astype(np.float32)
    feeds = {"x": x} if loss is None else {"x": x, "target": t}
    feeds.update(load_checkpoint(paths["checkpoint"])["tensors"])   # the weights, as the checkpoint has them
    got, logits = _session(paths["eval_model"]).run(["loss", "y"], feeds)
    expected = {"BCEWithLogitsLoss": np.mean(np.maximum(logits, 0) - logits * t + np.log1p(np.exp(-np.abs(logits)))),
                "L1Loss": np.mean(np.abs(logits - t)), "MSELoss": np.mean((logits - t) ** 2),
                None: np.mean(logits)}[loss]
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_onnxforge_model_as_source_and_errors(tmp_path):
    model = onnxforge.Sequential([onnxforge.layers.Input((4,)), onnxforge.layers.Dense(3, name="out")])
    paths = generate_artifacts(model, loss="CrossEntropyLoss", optimizer="adamw", artifact_directory=tmp_path)
    assert load_checkpoint(paths["checkpoint"])["requires_grad"] == ["out/kernel", "out/bias"]
    with pytest.raises(ValueError, match=r"frozen and require gradient.*\['fc1.bias'\]"):
        generate_artifacts(_mlp_proto(), requires_grad=["fc1.bias"], frozen_params=["fc1.bias"], loss="MSELoss",
                           artifact_directory=tmp_path)
    with pytest.raises(NotImplementedError, match="ort_format=True"):
        generate_artifacts(_mlp_proto(), loss="MSELoss", ort_format=True, artifact_directory=tmp_path)
    with pytest.raises(ValueError, match="unknown loss"):
        generate_artifacts(_mlp_proto(), loss="HingeLoss", artifact_directory=tmp_path)
    with pytest.raises(ValueError, match=r"\['nope'\] are not initializers"):
        generate_artifacts(_mlp_proto(), requires_grad=["nope"], loss="MSELoss", artifact_directory=tmp_path)
