"""Architectures for ``exporter_sweep.py``, random weights, nothing downloaded.

torchvision is not installable next to the CPU-only torch here (PyPI's linux torchvision wheels are built
against CUDA torch and fail to import), so ResNet-18, MobileNetV3-Small and EfficientNet-B0 are written out
from their papers' layer tables; GPT-2, BERT and ViT come from ``transformers`` configs when it is
installed.
"""
from __future__ import annotations

__all__ = ["MODELS"]


import torch
from torch import nn
from torch.nn import functional as F


# ------------------------------------------------------------------ CNNs
class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.down is None else self.down(x)))


class ResNet18(nn.Module):
    """He et al. 2015, 18 layers: a 7x7/2 stem, max-pool, four stages of two basic blocks (64..512)."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        blocks, cin = [], 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.blocks(self.stem(x)), 1), 1))


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, squeeze: int, gate: nn.Module, act: nn.Module):
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(channels, squeeze, 1), nn.Conv2d(squeeze, channels, 1)
        self.act, self.gate = act, gate

    def forward(self, x):
        return x * self.gate(self.fc2(self.act(self.fc1(F.adaptive_avg_pool2d(x, 1)))))


def _divisible(v: float, d: int = 8) -> int:
    out = max(d, int(v + d / 2) // d * d)
    return out + d if out < 0.9 * v else out


class InvertedResidual(nn.Module):
    """Expand (1x1) - depthwise (k x k) - squeeze-excite - project (1x1), residual when shapes allow."""

    def __init__(self, cin, k, exp, cout, se, act, stride, se_gate=nn.Hardsigmoid, se_squeeze=None):
        super().__init__()
        layers = []
        if exp != cin:
            layers += [nn.Conv2d(cin, exp, 1, bias=False), nn.BatchNorm2d(exp), act()]
        layers += [nn.Conv2d(exp, exp, k, stride, k // 2, groups=exp, bias=False), nn.BatchNorm2d(exp), act()]
        if se:
            squeeze = se_squeeze if se_squeeze is not None else _divisible(exp // 4)
            layers.append(SqueezeExcite(exp, squeeze, se_gate(), nn.ReLU() if se_gate is nn.Hardsigmoid else act()))
        layers += [nn.Conv2d(exp, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


class MobileNetV3Small(nn.Module):
    """Howard et al. 2019, the Small table (kernel, expansion, out, SE, activation, stride)."""

    TABLE = [(3, 16, 16, True, "RE", 2), (3, 72, 24, False, "RE", 2), (3, 88, 24, False, "RE", 1),
             (5, 96, 40, True, "HS", 2), (5, 240, 40, True, "HS", 1), (5, 240, 40, True, "HS", 1),
             (5, 120, 48, True, "HS", 1), (5, 144, 48, True, "HS", 1), (5, 288, 96, True, "HS", 2),
             (5, 576, 96, True, "HS", 1), (5, 576, 96, True, "HS", 1)]

    def __init__(self, classes: int = 10):
        super().__init__()
        layers = [nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.Hardswish()]
        cin = 16
        for k, exp, cout, se, act, stride in self.TABLE:
            layers.append(InvertedResidual(cin, k, exp, cout, se, nn.ReLU if act == "RE" else nn.Hardswish, stride))
            cin = cout
        layers += [nn.Conv2d(cin, 576, 1, bias=False), nn.BatchNorm2d(576), nn.Hardswish()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(576, 1024), nn.Hardswish(), nn.Linear(1024, classes))

    def forward(self, x):
        return self.head(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


class EfficientNetB0(nn.Module):
    """Tan & Le 2019, B0: MBConv stages (expansion, kernel, stride, out, repeats), SiLU, SE at 1/4 input."""

    STAGES = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3),
              (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]

    def __init__(self, classes: int = 10):
        super().__init__()
        layers = [nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.SiLU()]
        cin = 32
        for expand, k, stride, cout, repeats in self.STAGES:
            for r in range(repeats):
                layers.append(InvertedResidual(cin, k, cin * expand, cout, True, nn.SiLU, stride if r == 0 else 1,
                                               se_gate=nn.Sigmoid, se_squeeze=max(1, cin // 4)))
                cin = cout
        layers += [nn.Conv2d(cin, 1280, 1, bias=False), nn.BatchNorm2d(1280), nn.SiLU()]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(1280, classes)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


class UNet(nn.Module):
    """Ronneberger et al. 2015, three levels: double 3x3 convs with BatchNorm, max-pool down, transposed
    conv up, skip concatenation."""

    def __init__(self, cin: int = 3, cout: int = 2, width: int = 16):
        super().__init__()

        def double(a, b):
            return nn.Sequential(nn.Conv2d(a, b, 3, padding=1), nn.BatchNorm2d(b), nn.ReLU(),
                                 nn.Conv2d(b, b, 3, padding=1), nn.BatchNorm2d(b), nn.ReLU())

        w = width
        self.d1, self.d2, self.mid = double(cin, w), double(w, 2 * w), double(2 * w, 4 * w)
        self.u2, self.c2 = nn.ConvTranspose2d(4 * w, 2 * w, 2, 2), double(4 * w, 2 * w)
        self.u1, self.c1 = nn.ConvTranspose2d(2 * w, w, 2, 2), double(2 * w, w)
        self.out = nn.Conv2d(w, cout, 1)

    def forward(self, x):
        a = self.d1(x)
        b = self.d2(F.max_pool2d(a, 2))
        m = self.mid(F.max_pool2d(b, 2))
        b2 = self.c2(torch.cat([self.u2(m), b], 1))
        return self.out(self.c1(torch.cat([self.u1(b2), a], 1)))


# ------------------------------------------------------------------ sequence models
class RecurrentLM(nn.Module):
    def __init__(self, cell: str, vocab: int = 200, d: int = 64, layers: int = 2):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.rnn = (nn.LSTM if cell == "lstm" else nn.GRU)(d, d, layers, batch_first=True)
        self.head = nn.Linear(d, vocab)

    def forward(self, tokens):
        return self.head(self.rnn(self.embed(tokens))[0])


class EncoderClassifier(nn.Module):
    def __init__(self, vocab: int = 200, d: int = 64, classes: int = 5):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        layer = nn.TransformerEncoderLayer(d, 4, 128, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(d, classes)

    def forward(self, tokens):
        return self.head(self.encoder(self.embed(tokens)).mean(1))


class Logits(nn.Module):
    """A transformers model returning its logits tensor."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x).logits


def _hf(kind: str):
    import transformers

    transformers.logging.set_verbosity_error()
    if kind == "gpt2":
        cfg = transformers.GPT2Config(n_layer=2, n_head=4, n_embd=64, vocab_size=200, n_positions=32, attn_pdrop=0.0,
                                      resid_pdrop=0.0, embd_pdrop=0.0, bos_token_id=0, eos_token_id=0)
        return Logits(transformers.GPT2LMHeadModel(cfg))
    if kind == "bert":
        cfg = transformers.BertConfig(num_hidden_layers=2, num_attention_heads=4, hidden_size=64, intermediate_size=128,
                                      vocab_size=200, max_position_embeddings=32, hidden_dropout_prob=0.0,
                                      attention_probs_dropout_prob=0.0)
        return Logits(transformers.BertForMaskedLM(cfg))
    cfg = transformers.ViTConfig(num_hidden_layers=2, num_attention_heads=4, hidden_size=64, intermediate_size=128,
                                 image_size=32, patch_size=8, num_labels=10, hidden_dropout_prob=0.0,
                                 attention_probs_dropout_prob=0.0)
    return Logits(transformers.ViTForImageClassification(cfg))


def _image(batch: int, size: int, g: torch.Generator):
    return torch.randn(batch, 3, size, size, generator=g)


def _tokens(batch: int, length: int, g: torch.Generator):
    return torch.randint(0, 200, (batch, length), generator=g)  # 0 is BERT's padding_idx


#: name -> (module factory, example input(batch, generator), kind of target: "class", "token" or "pixel")
MODELS = {
    "resnet18": (ResNet18, lambda n, g: _image(n, 64, g), "class"),
    "mobilenet_v3_small": (MobileNetV3Small, lambda n, g: _image(n, 64, g), "class"),
    "efficientnet_b0": (EfficientNetB0, lambda n, g: _image(n, 64, g), "class"),
    "vit": (lambda: _hf("vit"), lambda n, g: _image(n, 32, g), "class"),
    "bert": (lambda: _hf("bert"), lambda n, g: _tokens(n, 16, g), "token"),
    "gpt2": (lambda: _hf("gpt2"), lambda n, g: _tokens(n, 16, g), "token"),
    "lstm_lm": (lambda: RecurrentLM("lstm"), lambda n, g: _tokens(n, 16, g), "token"),
    "gru_lm": (lambda: RecurrentLM("gru"), lambda n, g: _tokens(n, 16, g), "token"),
    "transformer_encoder": (EncoderClassifier, lambda n, g: _tokens(n, 16, g), "class5"),
    "unet": (UNet, lambda n, g: _image(n, 32, g), "pixel"),
}
