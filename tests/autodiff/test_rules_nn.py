"""Gradient case table: normalizations, Dropout and the classification losses (rules/nn.py)."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxforge.autodiff import GradientError, check_gradients, gradient_model
from onnxforge.autodiff.gradcheck import LOSS, upstream_wrapped
from onnxforge.graph import DEFAULT_OPSET
from tests.autodiff.harness import Case, normal, positive, run_case
from tests.conftest import check_full

torch = pytest.importorskip("torch")
F = torch.nn.functional


# ------------------------------------------------------------------ torch references
def _bn_eval(x, s, b, m, v, eps=1e-5):
    shape = (-1,) + (1,) * (x.dim() - 2)
    return (x - m.view(shape)) / torch.sqrt(v.view(shape) + eps) * s.view(shape) + b.view(shape)


def _bn_train(momentum=0.9, eps=1e-5):
    def fn(x, s, b, m, v):
        dims = [0, *range(2, x.dim())]
        mean, var = x.mean(dims), x.var(dims, unbiased=False)
        y = _bn_eval(x, s, b, mean, var, eps)
        return y, m * momentum + mean * (1 - momentum), v * momentum + var * (1 - momentum)
    return fn


def _ln_stats(axis):
    def fn(x, s, b):
        dims = list(range(axis % x.dim(), x.dim()))
        mean = x.mean(dims, keepdim=True)
        inv = 1 / torch.sqrt(x.var(dims, unbiased=False, keepdim=True) + 1e-5)
        return (x - mean) * inv * s + b, mean, inv
    return fn


LABELS = np.array([1, 0, 4], np.int64)
LABELS_ND = np.array([[[0, 3], [2, 1], [3, 3]], [[1, 1], [0, 2], [2, 0]]], np.int64)  # (2, 3, 2)
WEIGHTS = np.array([0.5, 1.0, 2.0, 0.25, 1.5])

CASES = [
    # BatchNormalization, inference mode: every input is an operand of the formula.
    Case("BatchNormalization", [("N", 3, 4, 2), (3,), (3,), (3,), (3,)], gen=[normal] * 4 + [positive],
         torch_fn=_bn_eval, name="BatchNorm_inference"),
    Case("BatchNormalization", [("N", 3), (3,), (3,), (3,), (3,)], gen=[normal] * 4 + [positive],
         attrs={"epsilon": 1e-3}, torch_fn=lambda x, s, b, m, v: _bn_eval(x, s, b, m, v, 1e-3),
         name="BatchNorm_inference_2d"),
    # Training mode (ONNX wants all three outputs): batch statistics; the running statistics blend them
    # in, so they pass gradient to X and the input statistics too (test_batch_norm_training_y_only
    # covers the usual graph, where only Y reaches the loss).
    Case("BatchNormalization", [(4, 3, 5), (3,), (3,), (3,), (3,)], gen=[normal] * 4 + [positive],
         attrs={"training_mode": 1}, outputs=3, torch_fn=_bn_train(), name="BatchNorm_training"),
    Case("BatchNormalization", [("N", 2, 3, 3), (2,), (2,), (2,), (2,)], gen=[normal] * 4 + [positive],
         attrs={"training_mode": 1, "momentum": 0.7}, outputs=3, torch_fn=_bn_train(0.7),
         name="BatchNorm_training_4d"),
    Case("BatchNormalization", [("N", 3), (3,), (3,), (3,), (3,)], gen=[normal] * 4 + [positive],
         attrs={"training_mode": 1, "momentum": 0.8, "epsilon": 1e-3}, outputs=3,
         torch_fn=_bn_train(0.8, 1e-3), name="BatchNorm_training_2d"),
    Case("InstanceNormalization", [("N", 3, 5), (3,), (3,)], torch_fn=lambda x, s, b: F.instance_norm(x, weight=s, bias=b)),
    Case("InstanceNormalization", [(2, 2, 3, 2), (2,), (2,)], attrs={"epsilon": 1e-2},
         torch_fn=lambda x, s, b: F.instance_norm(x, weight=s, bias=b, eps=1e-2), name="InstanceNorm_2d"),
    # LayerNormalization: the last axis, several trailing axes, no bias, a custom epsilon.
    Case("LayerNormalization", [("N", 4, 6), (6,), (6,)], torch_fn=lambda x, s, b: F.layer_norm(x, (6,), s, b)),
    Case("LayerNormalization", [("N", 3, 4), (3, 4), (3, 4)], attrs={"axis": 1},
         torch_fn=lambda x, s, b: F.layer_norm(x, (3, 4), s, b), name="LayerNorm_axis1"),
    # (B left out rather than given as "": onnxruntime 1.31 crashes on a trailing empty optional input.)
    Case("LayerNormalization", [("N", 5), (5,)], attrs={"epsilon": 1e-3},
         torch_fn=lambda x, s: F.layer_norm(x, (5,), s, eps=1e-3), name="LayerNorm_no_bias"),
    Case("LayerNormalization", [(3, 2, 4), (4,), (1,)],
         torch_fn=lambda x, s, b: F.layer_norm(x, (4,), s) + b, name="LayerNorm_broadcast_bias"),
    # Dropout outside training (a constant training_mode=False; ratio given as an input): the identity.
    Case("Dropout", [("N", 4), np.array(0.3), np.array(False)], wrt=[0], torch_fn=lambda x, r, t: x * 1,
         name="Dropout_inference"),
    Case("Dropout", [("N", 3, 2)], torch_fn=lambda x: x * 1, name="Dropout_default"),
    Case("Dropout", [("N", 3), np.array(0.0), np.array(True)], wrt=[0], outputs=2, torch_fn=lambda x, r, t: x * 1,
         name="Dropout_training_ratio0"),
    # SoftmaxCrossEntropyLoss: each reduction, class weights, ignore_index, N-D, the log_prob output.
    Case("SoftmaxCrossEntropyLoss", [(3, 5), LABELS], torch_fn=lambda s, y: F.cross_entropy(s, y),
         name="SCE_mean"),
    Case("SoftmaxCrossEntropyLoss", [(3, 5), LABELS], attrs={"reduction": "sum"},
         torch_fn=lambda s, y: F.cross_entropy(s, y, reduction="sum"), name="SCE_sum"),
    Case("SoftmaxCrossEntropyLoss", [(3, 5), LABELS], attrs={"reduction": "none"},
         torch_fn=lambda s, y: F.cross_entropy(s, y, reduction="none"), name="SCE_none"),
    Case("SoftmaxCrossEntropyLoss", [(3, 5), LABELS, WEIGHTS], wrt=[0],
         torch_fn=lambda s, y, w: F.cross_entropy(s, y, weight=w), name="SCE_weights_mean"),
    Case("SoftmaxCrossEntropyLoss", [(3, 5), LABELS, WEIGHTS], wrt=[0], attrs={"reduction": "none"},
         torch_fn=lambda s, y, w: F.cross_entropy(s, y, weight=w, reduction="none"), name="SCE_weights_none"),
    Case("SoftmaxCrossEntropyLoss", [(3, 5), np.array([1, -100, 4])], attrs={"ignore_index": -100},
         torch_fn=lambda s, y: F.cross_entropy(s, y, ignore_index=-100), name="SCE_ignore_out_of_range"),
    Case("SoftmaxCrossEntropyLoss", [(3, 5), LABELS, WEIGHTS], wrt=[0], attrs={"ignore_index": 0},
         torch_fn=lambda s, y, w: F.cross_entropy(s, y, weight=w, ignore_index=0), name="SCE_ignore_weights"),
    Case("SoftmaxCrossEntropyLoss", [(2, 4, 3, 2), LABELS_ND], attrs={"ignore_index": 3},
         torch_fn=lambda s, y: F.cross_entropy(s, y, ignore_index=3), name="SCE_nd"),
    Case("SoftmaxCrossEntropyLoss", [(2, 4, 3, 2), LABELS_ND.astype(np.int32)], attrs={"reduction": "none"},
         torch_fn=lambda s, y: F.cross_entropy(s, y.long(), reduction="none"), name="SCE_nd_int32_none"),
    Case("SoftmaxCrossEntropyLoss", [(3, 5), LABELS], outputs=2,
         torch_fn=lambda s, y: (F.cross_entropy(s, y), F.log_softmax(s, 1)), name="SCE_log_prob"),
    # NegativeLogLikelihoodLoss on arbitrary inputs (not only log-probabilities: the op is linear).
    Case("NegativeLogLikelihoodLoss", [(3, 5), LABELS], torch_fn=lambda x, y: F.nll_loss(x, y), name="NLL_mean"),
    Case("NegativeLogLikelihoodLoss", [(3, 5), LABELS, WEIGHTS], wrt=[0], attrs={"reduction": "sum"},
         torch_fn=lambda x, y, w: F.nll_loss(x, y, weight=w, reduction="sum"), name="NLL_weights_sum"),
    Case("NegativeLogLikelihoodLoss", [(3, 5), LABELS, WEIGHTS], wrt=[0], attrs={"ignore_index": 4},
         torch_fn=lambda x, y, w: F.nll_loss(x, y, weight=w, ignore_index=4), name="NLL_weights_ignore_mean"),
    Case("NegativeLogLikelihoodLoss", [(2, 4, 3, 2), LABELS_ND], attrs={"reduction": "none"},
         torch_fn=lambda x, y: F.nll_loss(x, y, reduction="none"), name="NLL_nd_none"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_gradient(case):
    run_case(case)
