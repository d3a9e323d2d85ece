"""``from_torch``: PyTorch modules trained by onnxruntime through onnxforge reproduce torch's own SGD
training (losses per step to ~1e-5, parameters after the steps), keep their parameter names, and write
their trained weights back with ``to_torch_state_dict``."""
from __future__ import annotations

import copy

import numpy as np
import pytest

import onnxforge
from tests.conftest import check_full

torch = pytest.importorskip("torch")
nn, F = torch.nn, torch.nn.functional
from exporters.torch_exporter import from_torch, to_torch_state_dict  # noqa: E402


class SeedCNN(nn.Module):
    """The seed's MNIST CNN in PyTorch: Conv32-ReLU-Pool-Conv64-ReLU-Pool-Dense128-ReLU-Dense10 (NCHW)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 32, 3, padding=1), nn.Conv2d(32, 64, 3, padding=1)
        self.fc1, self.fc2 = nn.Linear(64 * 7 * 7, 128), nn.Linear(128, 10)

    def forward(self, image):
        x = F.max_pool2d(F.relu(self.conv1(image)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


class TransformerBlock(nn.Module):
    """Token projection, multi-head self-attention and a GELU MLP, each with a residual and LayerNorm."""

    def __init__(self, d: int = 16, heads: int = 2):
        super().__init__()
        self.embed = nn.Linear(8, d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 32), nn.GELU(), nn.Linear(32, d))
        self.head = nn.Linear(d, 3)

    def forward(self, tokens):
        h = self.embed(tokens)
        a, _ = self.attn(h, h, h, need_weights=False)
        h = self.ln1(h + a)
        h = self.ln2(h + self.mlp(h))
        return self.head(h.mean(1))


def _mlp():
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 3))


def _bn_net():
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 5 * 5, 3))


CASES = {
    "mlp": (_mlp, (6,), 3),
    "seed_cnn": (SeedCNN, (1, 28, 28), 10),
    "transformer": (TransformerBlock, (5, 8), 3),
}


def _data(shape, classes, n=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, *shape)).astype(np.float32), rng.integers(0, classes, n)


def _train_both(net, x, y, steps=3, lr=0.1, dynamo=True):
    """SGD steps through onnxforge and through torch from the same weights: per-step losses, and both."""
    model = from_torch(net, torch.from_numpy(x[:2]), dynamo=dynamo)
    model.compile(optimizer=onnxforge.optimizers.SGD(lr),
                  loss=onnxforge.losses.SparseCategoricalCrossentropy(from_logits=True))
    ref = copy.deepcopy(net)
    opt = torch.optim.SGD(ref.parameters(), lr=lr)
    ours, theirs = [], []
    for _ in range(steps):
        model.reset_metrics()  # train_on_batch reports the running mean otherwise (Keras 3)
        ours.append(model.train_on_batch(x, y))
        opt.zero_grad()
        loss = F.cross_entropy(ref(torch.from_numpy(x)), torch.from_numpy(y))
        loss.backward()
        opt.step()
        theirs.append(loss.item())
    return model, ref, np.array(ours), np.array(theirs)


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
@pytest.mark.parametrize("kind", list(CASES))
def test_sgd_steps_reproduce_torch_training(kind, dynamo):
    torch.manual_seed(0)
    factory, shape, classes = CASES[kind]
    net = factory()
    x, y = _data(shape, classes)
    model, ref, ours, theirs = _train_both(net, x, y, dynamo=dynamo)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, err_msg=f"{kind}: losses per step")
    assert theirs[-1] < theirs[0]  # the steps did move the weights
    trained = to_torch_state_dict(model)
    for name, value in ref.state_dict().items():
        np.testing.assert_allclose(trained[name].numpy(), value.numpy(), rtol=1e-4, atol=2e-6,
                                   err_msg=f"{kind}: {name} after {len(ours)} steps")
    for program in model.compiled_programs.values():
        check_full(program.model)


def test_parameter_names_dynamic_batch_and_write_back():
    torch.manual_seed(0)
    net = _mlp()
    model = from_torch(net, torch.zeros(2, 6))
    assert [v.name for v in model.trainable_weights] == [n for n, _ in net.named_parameters()]
    assert model.input_names == ["input"] and model.output_names == ["output"]
    assert model.inputs[0].shape == (None, 6)
    for n in (1, 5):  # one graph, any batch size
        x = np.random.default_rng(n).standard_normal((n, 6)).astype(np.float32)
        with torch.no_grad():
            np.testing.assert_allclose(model.predict(x, verbose=0), net(torch.from_numpy(x)).numpy(), rtol=1e-5,
                                       atol=1e-6)
    model.compile(optimizer="adam", loss=onnxforge.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _data((6,), 3, n=32)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    before = copy.deepcopy(net.state_dict())
    state = to_torch_state_dict(model, net)
    assert set(state) == set(before)
    assert not torch.equal(net[0].weight, before["0.weight"])
    with torch.no_grad():
        np.testing.assert_allclose(net(torch.from_numpy(x)).numpy(), model.predict(x, verbose=0), rtol=1e-5,
                                   atol=1e-5)
    with pytest.raises(ValueError, match="Unknown names"):
        to_torch_state_dict(model, nn.Linear(6, 3))


def test_batch_norm_in_training_mode_matches_module_train():
    torch.manual_seed(0)
    net = _bn_net()
    x, y = _data((2, 5, 5), 3)
    model, ref, ours, theirs = _train_both(net, x, y)
    assert model.training_mode
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)
    trained = to_torch_state_dict(model)
    np.testing.assert_allclose(trained["1.running_mean"].numpy(), ref.state_dict()["1.running_mean"].numpy(),
                               rtol=1e-5, atol=1e-7)
    # ONNX moves the running variance with the batch's population variance, torch with the unbiased one.
    ours_var, torch_var = trained["1.running_var"].numpy(), ref.state_dict()["1.running_var"].numpy()
    assert np.all(ours_var < torch_var) and np.allclose(ours_var, torch_var, atol=5e-3)
    # The exporter's tracing passes did not move the module's own statistics.
    np.testing.assert_array_equal(net[1].running_mean.numpy(), np.zeros(4, np.float32))


def test_eval_mode_module_fine_tunes_with_running_statistics():
    torch.manual_seed(0)
    net = _bn_net()
    with torch.no_grad():
        net[1].running_mean.uniform_(-0.5, 0.5)
        net[1].running_var.uniform_(0.5, 2.0)
    net.eval()
    x, y = _data((2, 5, 5), 3)
    model, ref, ours, theirs = _train_both(net, x, y)
    assert not model.training_mode
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)
    assert np.array_equal(to_torch_state_dict(model)["1.running_mean"].numpy(), net[1].running_mean.numpy())


def test_frozen_parameters_and_bad_inputs():
    torch.manual_seed(0)
    net = _mlp()
    net[0].weight.requires_grad_(False)
    model = from_torch(net, torch.zeros(2, 6))
    assert "0.weight" not in [v.name for v in model.trainable_weights]
    assert "0.weight" in [v.name for v in model.non_trainable_weights]
    with pytest.raises(TypeError, match="torch.nn.Module"):
        from_torch(lambda x: x, torch.zeros(1))
    with pytest.raises(TypeError, match="must be tensors"):
        from_torch(net, np.zeros((2, 6), np.float32))


def test_example_continues_training_in_plain_onnxruntime(tmp_path):
    """examples/finetune_torch_model.py's loop: the exported step resumes exactly where fit stopped."""
    import importlib.util
    import os

    path = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "finetune_torch_model.py")
    spec = importlib.util.spec_from_file_location("onnxforge_example_finetune_torch_model", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    torch.manual_seed(0)
    net = example.DigitCNN()
    x, y = _data((1, 28, 28), 10, n=16)
    model = from_torch(net, torch.from_numpy(x[:2]), input_names=["image"], output_names=["logits"])
    model.compile(optimizer=onnxforge.optimizers.SGD(0.05),
                  loss=onnxforge.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.train_on_batch(x[:8], y[:8])
    exported = model.export_training(tmp_path / "step.onnx")
    state, losses = example.continue_in_onnxruntime(str(exported), x[8:], y[8:], batch_size=8, learning_rate=0.05,
                                                   epochs=1)
    model.reset_metrics()
    expected = model.train_on_batch(x[8:], y[8:])  # the same step, through onnxforge's own runner
    np.testing.assert_allclose(losses[0], expected, rtol=1e-5)
    for v in model.trainable_weights:
        np.testing.assert_allclose(state[v.name], v.numpy(), rtol=1e-5, atol=1e-7)


class TiedLM(nn.Module):
    """Embedding and output projection sharing one weight (as GPT-2's wte / lm_head), and a learned position
    embedding read through a constant range (what the dynamo exporter's optimizer folds away)."""

    def __init__(self):
        super().__init__()
        self.embed, self.pos = nn.Embedding(12, 8), nn.Embedding(5, 8)
        self.head = nn.Linear(8, 12, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, tokens):
        h = torch.tanh(self.embed(tokens) + self.pos(torch.arange(tokens.shape[1])))
        return self.head(h).mean(1)


def test_tied_weights_train_under_their_canonical_name():
    torch.manual_seed(0)
    net = TiedLM()
    tokens = torch.randint(0, 12, (8, 5))
    y = np.random.default_rng(0).integers(0, 12, 8)
    model = from_torch(net, tokens[:2])
    assert [v.name for v in model.trainable_weights] == [n for n, _ in net.named_parameters()]
    model.compile(optimizer=onnxforge.optimizers.SGD(0.5),
                  loss=onnxforge.losses.SparseCategoricalCrossentropy(from_logits=True))
    ref = copy.deepcopy(net)
    opt = torch.optim.SGD(ref.parameters(), lr=0.5)
    for _ in range(2):
        model.train_on_batch(tokens.numpy(), y)
        opt.zero_grad()
        F.cross_entropy(ref(tokens), torch.from_numpy(y)).backward()
        opt.step()
    trained = to_torch_state_dict(model)
    for name, value in ref.named_parameters():  # the tied weight got both uses' gradients
        np.testing.assert_allclose(trained[name].numpy(), value.detach().numpy(), rtol=1e-4, atol=1e-6)


def test_a_parameter_the_export_turned_into_a_constant_is_an_error_naming_it():
    # torch's graph optimizer folds pos.weight[arange(5)] into a constant: it could never train.
    with pytest.raises(ValueError, match=r"pos\.weight \(5, 8\).*constants"):
        from_torch(TiedLM(), torch.randint(0, 12, (2, 5)), optimize=True)


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
def test_embedding_padding_row_is_not_trained_by_its_lookups(dynamo):
    # nn.Embedding(padding_idx=0) gives row 0 no gradient from lookups; the exported Gather would.
    torch.manual_seed(0)
    net = nn.Sequential(nn.Embedding(10, 4, padding_idx=0), nn.Flatten(), nn.Linear(12, 3))
    tokens = torch.tensor([[0, 3, 0], [5, 0, 9], [1, 2, 0], [0, 0, 7]])
    y = np.array([0, 2, 1, 1])
    model = from_torch(net, tokens[:2], dynamo=dynamo)
    model.compile(optimizer=onnxforge.optimizers.SGD(0.5),
                  loss=onnxforge.losses.SparseCategoricalCrossentropy(from_logits=True))
    ref = copy.deepcopy(net)
    opt = torch.optim.SGD(ref.parameters(), lr=0.5)
    for _ in range(2):
        model.train_on_batch(tokens.numpy(), y)
        opt.zero_grad()
        F.cross_entropy(ref(tokens), torch.from_numpy(y)).backward()
        opt.step()
    trained = to_torch_state_dict(model)
    np.testing.assert_array_equal(trained["0.weight"][0].numpy(), net[0].weight[0].detach().numpy())
    for name, value in ref.named_parameters():
        np.testing.assert_allclose(trained[name].numpy(), value.detach().numpy(), rtol=1e-4, atol=1e-6)
