"""GPT-2, BERT and a ViT from small ``transformers`` configs (random weights, nothing downloaded), exported
by torch's default (dynamo) exporter and differentiated by ``gradient_model``: every parameter's gradient
matches torch.autograd, on one graph at two batch sizes. At opset 20 GPT-2's ``split`` arrives as
SplitToSequence + SequenceAt; at opset 23 attention arrives as the ``Attention`` op."""
from __future__ import annotations

import warnings

import numpy as np
import onnxruntime as ort
import pytest

from onnxforge.autodiff import gradient_model
from tests.conftest import check_full

torch = pytest.importorskip("torch")  # every test here is a torch comparison
from exporters.torch_exporter import export_torch  # noqa: E402

VOCAB = 40


@pytest.fixture(scope="module")
def transformers():
    """``transformers`` and torch's dynamo exporter (``onnxscript``), imported when a test here runs: at
    collection every xdist worker imported them (~2 CPU-s), though only one runs this file."""
    module = pytest.importorskip("transformers")
    pytest.importorskip("onnxscript")
    module.logging.set_verbosity_error()
    return module


class WithLoss(torch.nn.Module):
    """The model and its cross-entropy loss in one module: the exported graph outputs the loss."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x, labels):
        logits = self.model(x).logits
        return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))


def _gpt2(transformers):
    cfg = transformers.GPT2Config(n_layer=2, n_head=2, n_embd=16, vocab_size=VOCAB, n_positions=8, attn_pdrop=0.0,
                                  resid_pdrop=0.0, embd_pdrop=0.0, bos_token_id=0, eos_token_id=0)
    return transformers.GPT2LMHeadModel(cfg), lambda n, g: (_tokens(n, g), _tokens(n, g))


def _bert(transformers):
    cfg = transformers.BertConfig(num_hidden_layers=2, num_attention_heads=2, hidden_size=16, intermediate_size=32,
                                  vocab_size=VOCAB, max_position_embeddings=8, hidden_dropout_prob=0.0,
                                  attention_probs_dropout_prob=0.0)
    return transformers.BertForMaskedLM(cfg), lambda n, g: (_tokens(n, g), _tokens(n, g))


def _vit(transformers):
    cfg = transformers.ViTConfig(num_hidden_layers=2, num_attention_heads=2, hidden_size=16, intermediate_size=32,
                                 image_size=8, patch_size=4, num_channels=3, num_labels=3, hidden_dropout_prob=0.0,
                                 attention_probs_dropout_prob=0.0)
    return transformers.ViTForImageClassification(cfg), lambda n, g: (
        torch.tensor(g.standard_normal((n, 3, 8, 8)), dtype=torch.float32), torch.tensor(g.integers(0, 3, n)))


def _tokens(n, g):
    # Token 0 included: BERT's padding_idx, whose embedding row its lookups never train (export_torch keeps
    # that: nn.Embedding's padding_idx is not part of the ONNX Gather).
    tokens = g.integers(0, VOCAB, (n, 6))
    tokens[:, 0] = 0
    return torch.tensor(tokens)


@pytest.mark.parametrize("name,opset,expect", [("gpt2", 20, "SplitToSequence"), ("gpt2", 23, "Attention"),
                                               ("bert", 23, "Attention"), ("vit", 23, "Attention")])
def test_gradients_of_every_parameter_match_torch(transformers, name, opset, expect):
    torch.manual_seed(0)
    model, inputs = {"gpt2": _gpt2, "bert": _bert, "vit": _vit}[name](transformers)
    net = WithLoss(model).train()
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        proto = export_torch(net, inputs(2, rng), input_names=["x", "labels"], output_names=["loss"], opset=opset)
    assert expect in {n.op_type for n in proto.graph.node}
    params = dict(net.named_parameters())
    assert set(params) <= {t.name for t in proto.graph.initializer}  # every parameter kept, by its name
    wrt = list(params)
    grad = check_full(gradient_model(proto, "loss", wrt))
    session = ort.InferenceSession(grad.SerializeToString(), providers=["CPUExecutionProvider"])
    for n in (2, 3):
        x, labels = inputs(n, rng)
        net.zero_grad()
        loss = net(x, labels)
        loss.backward()
        got = session.run(["loss"] + [f"{w}_grad" for w in wrt], {"x": x.numpy(), "labels": labels.numpy()})
        np.testing.assert_allclose(got[0], loss.item(), rtol=1e-5)
        scale = max(float(p.grad.abs().max()) for p in params.values())
        for w, g in zip(wrt, got[1:]):
            np.testing.assert_allclose(g, params[w].grad.numpy(), rtol=1e-4, atol=1e-5 * scale,
                                       err_msg=f"{name} opset {opset}: gradient of {w} (batch {n})")
