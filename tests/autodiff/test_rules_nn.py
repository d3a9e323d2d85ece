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
from tests.autodiff.harness import (  # torch, F: optional oracle
    F, Case, normal, positive, run_case, run_model, torch,
)
from tests.conftest import check_full



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
    # The training-mode rule's partial paths: only X's gradient (scale, bias and statistics held), and
    # every gradient but X's (no recomputed xhat needed for dX).
    Case("BatchNormalization", [("N", 3, 2, 2), (3,), (3,), (3,), (3,)], gen=[normal] * 4 + [positive],
         attrs={"training_mode": 1, "momentum": 0.5}, outputs=3, wrt=[0], torch_fn=_bn_train(0.5),
         name="BatchNorm_training_x_only"),
    Case("BatchNormalization", [(3, 2, 4), (2,), (2,), (2,), (2,)], gen=[normal] * 4 + [positive],
         attrs={"training_mode": 1}, outputs=3, wrt=[1, 2, 3, 4], torch_fn=_bn_train(),
         name="BatchNorm_training_params_only"),
    # momentum 0 (how layers.BatchNormalization emits its fused training op): the rule then reads the batch
    # statistics from the node's running-statistics outputs instead of recomputing them.
    Case("BatchNormalization", [("N", 3, 3, 2), (3,), (3,), (3,), (3,)], gen=[normal] * 4 + [positive],
         attrs={"training_mode": 1, "momentum": 0.0, "epsilon": 1e-3}, outputs=3, torch_fn=_bn_train(0.0, 1e-3),
         name="BatchNorm_training_momentum0"),
    Case("BatchNormalization", [(5, 2, 3), (2,), (2,), (2,), (2,)], gen=[normal] * 4 + [positive],
         attrs={"training_mode": 1, "momentum": 0.0}, outputs=3, wrt=[0, 1], torch_fn=_bn_train(0.0),
         name="BatchNorm_training_momentum0_x_scale"),
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


# ------------------------------------------------------------------ whole-model checks
def _vi(name: str, dtype: int, shape=None) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, shape)


def _model(nodes, inputs, outputs, inits=()) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "nn", inputs, outputs, initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", DEFAULT_OPSET)])
    model.ir_version = 10
    return model


def test_batch_norm_training_only_y_reaches_the_loss():
    # The usual training graph: the running statistics are outputs nobody differentiates.
    def make(dt):
        bn = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y", "rm", "rv"], training_mode=1)
        return _model([bn], [_vi("x", dt, ["N", 3, 4]), _vi("s", dt, [3]), _vi("b", dt, [3]), _vi("m", dt, [3]),
                             _vi("v", dt, [3])], [_vi("y", dt, ["N", 3, 4])])

    def draw(rng, n):
        return {"x": rng.standard_normal((n, 3, 4)), "s": rng.standard_normal(3), "b": rng.standard_normal(3),
                "m": rng.standard_normal(3), "v": rng.uniform(0.5, 2, 3)}

    run_model(make, draw, ["x", "s", "b"], sizes=(2, 5),
              torch_fn=lambda x, s, b, m, v: F.batch_norm(x, None, None, s, b, training=True), name="BN_train_y")


def test_layer_norm_mean_and_inv_std_outputs_carry_gradient():
    # Float32 reuses the node's own Mean / InvStdDev outputs; float64 recomputes them (stash_type=1 types
    # them float32, so they leave the model through a Cast to the model's dtype): both paths against torch.
    def make(dt):
        ln = helper.make_node("LayerNormalization", ["x", "s", "b"], ["y", "mean", "inv"], axis=1)
        casts = [helper.make_node("Cast", [v], [f"{v}_out"], to=dt) for v in ("mean", "inv")]
        return _model([ln, *casts], [_vi("x", dt, ["N", 2, 3]), _vi("s", dt, [2, 3]), _vi("b", dt, [2, 3])],
                      [_vi("y", dt, ["N", 2, 3]), _vi("mean_out", dt, ["N", 1, 1]), _vi("inv_out", dt, ["N", 1, 1])])

    def draw(rng, n):
        return {"x": rng.standard_normal((n, 2, 3)), "s": rng.standard_normal((2, 3)), "b": rng.standard_normal((2, 3))}

    run_model(make, draw, ["x", "s", "b"], sizes=(2, 3), torch_fn=_ln_stats(1), name="LN_stats")


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_losses_with_labels_fed_at_run_time(reduction):
    # Labels are an input of the graph, so one gradient graph serves every batch size.
    def make(dt):
        sce = helper.make_node("SoftmaxCrossEntropyLoss", ["scores", "labels", "w"], ["loss", "log_prob"],
                               reduction=reduction, ignore_index=2)
        nll = helper.make_node("NegativeLogLikelihoodLoss", ["scores", "labels"], ["nll"], reduction=reduction)
        out_shape = ["N"] if reduction == "none" else []
        return _model([sce, nll], [_vi("scores", dt, ["N", 5]), _vi("labels", TensorProto.INT64, ["N"]),
                                   _vi("w", dt, [5])],
                      [_vi("loss", dt, out_shape), _vi("log_prob", dt, ["N", 5]), _vi("nll", dt, out_shape)])

    def draw(rng, n):
        return {"scores": rng.standard_normal((n, 5)), "labels": rng.integers(0, 5, n).astype(np.int64),
                "w": rng.uniform(0.5, 2.0, 5)}

    def torch_fn(scores, labels, w):
        return (F.cross_entropy(scores, labels, weight=w, ignore_index=2, reduction=reduction),
                F.log_softmax(scores, 1), F.nll_loss(scores, labels, reduction=reduction))

    run_model(make, draw, ["scores"], sizes=(4, 7), torch_fn=torch_fn, name=f"losses_{reduction}")


# ------------------------------------------------------------------ Dropout
def test_dropout_training_flag_fed_at_run_time_false_is_the_identity():
    # ratio and training_mode are graph inputs: the rule cannot know the mode while building.
    def make(dt):
        d = helper.make_node("Dropout", ["x", "ratio", "training"], ["y", "mask"])
        return _model([d], [_vi("x", dt, ["N", 4]), _vi("ratio", dt, []), _vi("training", TensorProto.BOOL, [])],
                      [_vi("y", dt, ["N", 4]), _vi("mask", TensorProto.BOOL, ["N", 4])])

    def draw(rng, n):
        return {"x": rng.standard_normal((n, 4)), "ratio": np.array(0.4), "training": np.array(False)}

    run_model(make, draw, ["x"], sizes=(2, 3), torch_fn=lambda x, ratio, training: (x * 1, None),
              name="Dropout_runtime_flag")


def _run_dropout(with_mask_output: bool, ratio_input: bool, training_input: bool, training: bool = True):
    """Run a float32 Dropout's gradient graph in onnxruntime; return (x, upstream, y, mask or None, dx, ratio)."""
    ratio = 0.3
    f32 = TensorProto.FLOAT
    inputs = [_vi("x", f32, ["N", 64])]
    inits = []
    if ratio_input:
        inputs.append(_vi("ratio", f32, []))
    else:
        inits.append(numpy_helper.from_array(np.array(ratio, np.float32), "ratio"))
    if training_input:
        inputs.append(_vi("training", TensorProto.BOOL, []))
    else:
        inits.append(numpy_helper.from_array(np.array(training), "training"))
    outs = ["y", "mask"] if with_mask_output else ["y"]
    model = _model([helper.make_node("Dropout", ["x", "ratio", "training"], outs, seed=7)], inputs,
                   [_vi("y", f32, ["N", 64])] + ([_vi("mask", TensorProto.BOOL, ["N", 64])] if with_mask_output else []),
                   inits)
    grad = check_full(gradient_model(upstream_wrapped(check_full(model), ["y"]), LOSS, ["x"]))
    rng = np.random.default_rng(0)
    x = rng.uniform(0.5, 1.5, (3, 64)).astype(np.float32)  # nonzero: y == 0 exactly where dropped
    u = rng.standard_normal((3, 64)).astype(np.float32)
    feeds = {"x": x, "__upstream_y": u}
    if ratio_input:
        feeds["ratio"] = np.array(ratio, np.float32)
    if training_input:
        feeds["training"] = np.array(training)
    session = ort.InferenceSession(grad.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in grad.graph.output]
    got = dict(zip(names, session.run(None, feeds)))
    return x, u, got["y"], got.get("mask"), got["x_grad"], ratio


@pytest.mark.parametrize("with_mask_output", [True, False], ids=["mask_output", "mask_added_by_rule"])
@pytest.mark.parametrize("ratio_input", [True, False], ids=["ratio_input", "ratio_const"])
def test_dropout_training_gradient_is_upstream_times_mask_over_keep(with_mask_output, ratio_input):
    # onnxruntime's Dropout is random, so no finite differences: the gradient must be dy * mask / (1 - ratio)
    # with the mask of the very same run (the forward node's mask output, added on demand).
    x, u, y, mask, dx, ratio = _run_dropout(with_mask_output, ratio_input, training_input=False)
    if mask is None:
        mask = y != 0
    else:
        np.testing.assert_array_equal(mask, y != 0)
    assert 0 < mask.mean() < 1, "the test needs both kept and dropped elements"
    np.testing.assert_allclose(y, x * mask / (1 - ratio), rtol=1e-6)
    np.testing.assert_allclose(dx, u * mask / (1 - ratio), rtol=1e-6)


@pytest.mark.parametrize("training", [True, False])
def test_dropout_training_flag_fed_at_run_time(training):
    x, u, y, mask, dx, ratio = _run_dropout(True, True, training_input=True, training=training)
    if training:
        assert 0 < mask.mean() < 1
        np.testing.assert_allclose(dx, u * mask / (1 - ratio), rtol=1e-6)
    else:
        assert mask.all()
        np.testing.assert_allclose(dx, u, rtol=1e-6)


# ------------------------------------------------------------------ refusals
def test_unknown_rank_is_refused_with_the_node_named():
    f32 = TensorProto.FLOAT
    model = _model([helper.make_node("Reshape", ["x", "shape"], ["r"]),
                    helper.make_node("LayerNormalization", ["r", "s"], ["y"], name="ln")],
                   [_vi("x", f32, ["N", 4]), _vi("shape", TensorProto.INT64, ["K"]), _vi("s", f32, [4])],
                   [_vi("y", f32, None)])
    with pytest.raises(GradientError, match=r"LayerNormalization node 'ln'.*rank"):
        gradient_model(model, "y", ["x"])


def test_layer_norm_float16_works_in_float32_statistics():
    # stash_type=1: a float16 LayerNorm's Mean / InvStdDev are float32; the rule reuses them and casts.
    def session(dt):
        ln = helper.make_node("LayerNormalization", ["x", "s", "b"], ["y"])
        model = _model([ln], [_vi("x", dt, ["N", 8]), _vi("s", dt, [8]), _vi("b", dt, [8])], [_vi("y", dt, ["N", 8])])
        grad = check_full(gradient_model(upstream_wrapped(model, ["y"]), LOSS, ["x", "s", "b"]))
        assert dt == TensorProto.FLOAT or "Cast" in {n.op_type for n in grad.graph.node}
        return ort.InferenceSession(grad.SerializeToString(), providers=["CPUExecutionProvider"])

    rng = np.random.default_rng(0)
    feeds = {"x": rng.standard_normal((3, 8)), "s": rng.standard_normal(8), "b": rng.standard_normal(8),
             "__upstream_y": rng.standard_normal((3, 8))}
    names = ["x_grad", "s_grad", "b_grad"]
    full = session(TensorProto.FLOAT).run(names, {k: v.astype(np.float32) for k, v in feeds.items()})
    half = session(TensorProto.FLOAT16).run(names, {k: v.astype(np.float16) for k, v in feeds.items()})
    for a, h in zip(full, half):
        assert h.dtype == np.float16
        np.testing.assert_allclose(h.astype(np.float32), a, rtol=5e-3, atol=5e-3)
