"""Gradient case table: Conv and ConvTranspose (1-D to 3-D, strides, dilations, pads, auto_pad, groups)."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto

from onnxforge.autodiff import GradientError, gradient_model
from onnxforge.autodiff.tuning import session_threads
from onnxforge.graph import GraphBuilder
from tests.autodiff.harness import F, Case, run_case, needs_torch, torch  # torch, F: optional oracle
from tests.conftest import check_full



def _same_pads(auto_pad: str, spatial, kernel, strides, dilations):
    """ONNX's SAME pads for a Conv, written out independently of the rule: (begin, end) per axis."""
    begin, end = [], []
    for i, k, s, d in zip(spatial, kernel, strides, dilations):
        out = -(-i // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - i, 0)
        small, large = total // 2, total - total // 2
        begin.append(small if auto_pad == "SAME_UPPER" else large)
        end.append(large if auto_pad == "SAME_UPPER" else small)
    return begin, end


def torch_conv(**attrs):
    """``torch_fn`` for an ONNX Conv node with ``attrs``: explicit asymmetric padding, then convNd."""
    def fn(x, w, b=None):
        rank = w.dim() - 2
        kernel = w.shape[2:]
        strides = attrs.get("strides", [1] * rank)
        dilations = attrs.get("dilations", [1] * rank)
        auto_pad = attrs.get("auto_pad", "NOTSET")
        if auto_pad.startswith("SAME"):
            begin, end = _same_pads(auto_pad, x.shape[2:], kernel, strides, dilations)
        elif auto_pad == "VALID":
            begin = end = [0] * rank
        else:
            pads = attrs.get("pads", [0] * 2 * rank)
            begin, end = pads[:rank], pads[rank:]
        flat = [p for axis in reversed(range(rank)) for p in (begin[axis], end[axis])]
        conv = (F.conv1d, F.conv2d, F.conv3d)[rank - 1]
        return conv(F.pad(x, flat), w, b, stride=strides, dilation=dilations, groups=attrs.get("group", 1))
    return fn


def torch_conv_transpose(**attrs):
    """``torch_fn`` for an ONNX ConvTranspose: the uncropped transposed conv, then the pads cropped off."""
    def fn(x, w, b=None):
        rank = w.dim() - 2
        kernel = w.shape[2:]
        strides = attrs.get("strides", [1] * rank)
        dilations = attrs.get("dilations", [1] * rank)
        out_pad = attrs.get("output_padding", [0] * rank)
        conv_t = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[rank - 1]
        full = conv_t(x, w, b, stride=strides, output_padding=out_pad, groups=attrs.get("group", 1),
                      dilation=dilations)
        auto_pad = attrs.get("auto_pad", "NOTSET")
        if "output_shape" in attrs or auto_pad.startswith("SAME"):
            want = attrs.get("output_shape") or [i * s for i, s in zip(x.shape[2:], strides)]
            total = [f - o for f, o in zip(full.shape[2:], want)]
            begin = [t // 2 if auto_pad == "SAME_UPPER" else t - t // 2 for t in total]
            end = [t - p for t, p in zip(total, begin)]
        else:
            pads = attrs.get("pads", [0] * 2 * rank)
            begin, end = pads[:rank], pads[rank:]
        index = (slice(None), slice(None)) + tuple(slice(p, n - q) for p, q, n in zip(begin, end, full.shape[2:]))
        return full[index]
    return fn


def conv(inputs, name, **attrs) -> Case:
    return Case("Conv", inputs, attrs=attrs, torch_fn=torch_conv(**attrs), name=name, ort_rtol=5e-3)


def conv_const(x_spec, w_shape, name, **attrs) -> Case:
    """A Conv whose weight is an initializer, differentiated for X only: unit-stride kernels become a Conv of
    dY with the kernel reversed (see ``_reversed_conv_input_grad``); the rest keep ConvTranspose."""
    w = np.random.default_rng(len(name)).normal(size=w_shape)
    return Case("Conv", [x_spec, w], attrs=attrs, wrt=[0], torch_fn=torch_conv(**attrs), name=name, ort_rtol=5e-3)


# (case, the op that computes dX): constant weights, each shape rule of the reversed-kernel Conv.
CONSTANT_WEIGHT_CASES = [
    (conv_const(("N", 3, 6, 6), (3, 1, 5, 5), "const_depthwise_5x5", group=3, pads=[2, 2, 2, 2]), "Conv"),
    (conv_const(("N", 2, 6, 7), (2, 1, 3, 3), "const_depthwise_dilated_asym_pads", group=2, dilations=[2, 1],
                pads=[2, 0, 1, 1]), "Conv"),
    (conv_const(("N", 3, 5, 6), (4, 3, 3, 3), "const_3x3_asym_pads", pads=[1, 0, 2, 1]), "Conv"),
    (conv_const(("N", 2, 4, 3, 5), (2, 2, 2, 2, 3), "const_conv3d", pads=[1, 0, 1, 0, 1, 2]), "Conv"),
    (conv_const(("N", 3, 7), (3, 1, 3), "const_depthwise_1d_same_upper", group=3, auto_pad="SAME_UPPER"), "Conv"),
    (conv_const(("N", 3, 4, 4), (5, 3, 1, 1), "const_1x1"), "ConvTranspose"),
    (conv_const(("N", 2, 7, 6), (3, 2, 3, 3), "const_stride2", strides=[2, 2], pads=[1, 1, 1, 1]), "ConvTranspose"),
    (conv_const(("N", 3, 6), (2, 3, 2), "const_pads_past_kernel", pads=[2, 1]), "ConvTranspose"),
    (conv_const(("N", 2, 5, 5), (4, 1, 3, 3), "const_depth_multiplier_2", group=2, pads=[1, 1, 1, 1]),
     "ConvTranspose"),
    (conv_const(("N", 4, 5, 5), (6, 2, 3, 3), "const_group2", group=2, pads=[1, 1, 1, 1]), "ConvTranspose"),
]


@pytest.mark.parametrize("case", [c for c, _ in CONSTANT_WEIGHT_CASES], ids=lambda c: c.id)
def test_gradient_with_constant_weights(case):
    run_case(case)


@pytest.mark.parametrize("case,op", CONSTANT_WEIGHT_CASES, ids=lambda c: getattr(c, "id", c))
def test_constant_weights_choose_the_input_gradient_op(case, op):
    from tests.autodiff.harness import build
    model = build(case, TensorProto.FLOAT, symbolic=False)
    grads = gradient_model(model, "y0", ["x0"])
    backward = [n.op_type for n in grads.graph.node][1:]   # the forward Conv comes first
    other = ({"Conv", "ConvTranspose"} - {op}).pop()
    assert backward.count(op) == 1 and other not in backward, backward


@pytest.mark.parametrize("spatial,pads,strides,pointwise", [
    ((14, 14), [0, 0, 0, 0], [1, 1], True), ((13, 15), [0, 0, 0, 0], [1, 1], False),
    ((14, 14), [1, 0, 0, 0], [1, 1], False), ((28, 28), [0, 0, 0, 0], [2, 2], False)])
def test_pointwise_weight_gradient_applies_where_it_pays(spatial, pads, strides, pointwise):
    """One MatMul per sample only for unpadded unit-stride 1x1 convs with 196+ positions."""
    model = _conv_model("Conv", (2, 16, *spatial), (4, 16, 1, 1), pads=pads, strides=strides)
    ops = [n.op_type for n in gradient_model(model, "y", ["w"]).graph.node]
    # The other formulations are a GEMM per tap (Gemm) or a one-hot patches Conv after the forward one.
    assert ("Gemm" not in ops and ops.count("Conv") == 1) == pointwise, ops


def test_a_weight_input_with_a_default_keeps_conv_transpose():
    """An initializer that is also a graph input is fed at run time: no reversed-kernel Conv is folded."""
    b = GraphBuilder()
    x = b.input("x", TensorProto.FLOAT, (2, 3, 5, 5))
    w = b.input("w", TensorProto.FLOAT, (3, 1, 3, 3))
    b.output(b.op("Conv", [x, w], group=3, pads=[1, 1, 1, 1]), "y")
    model = b.to_model()
    model.graph.initializer.append(onnx.numpy_helper.from_array(np.ones((3, 1, 3, 3), np.float32), "w"))
    grads = gradient_model(model, "y", ["x"])
    assert [n.op_type for n in grads.graph.node].count("ConvTranspose") == 1


def conv_t(inputs, name, **attrs) -> Case:
    return Case("ConvTranspose", inputs, attrs=attrs, torch_fn=torch_conv_transpose(**attrs), name=name,
                ort_rtol=5e-3)


CASES = [
    conv([("N", 2, 7), (3, 2, 3), (3,)], "conv1d_stride2_leftover", strides=[2], pads=[1, 0]),
    conv([("N", 3, 6, 5), (4, 3, 3, 3), (4,)], "conv2d_pad1", pads=[1, 1, 1, 1]),
    conv([("N", 2, 8, 7), (3, 2, 3, 2), (3,)], "conv2d_strides_dilations_asym_pads",
         strides=[2, 3], dilations=[2, 1], pads=[1, 0, 2, 1]),
    conv([("N", 4, 5, 5), (6, 2, 2, 3)], "conv2d_group2_nobias", group=2, pads=[0, 1, 1, 0]),
    conv([("N", 3, 5, 6), (6, 1, 3, 3), (6,)], "conv2d_depthwise_same_upper_stride2",
         group=3, strides=[2, 2], auto_pad="SAME_UPPER"),
    # onnxruntime refuses SAME with dilations in the forward Conv; the reference evaluator checks it.
    Case("Conv", [("N", 2, 6, 7), (2, 2, 2, 4)], name="conv2d_same_lower_stride2_dilated", ort=False,
         attrs=dict(strides=[2, 2], dilations=[1, 2], auto_pad="SAME_LOWER"),
         torch_fn=torch_conv(strides=[2, 2], dilations=[1, 2], auto_pad="SAME_LOWER")),
    conv([("N", 2, 7, 6), (3, 2, 3, 3)], "conv2d_valid_stride2", strides=[2, 2], auto_pad="VALID"),
    conv([("N", 2, 4, 5, 3), (3, 2, 2, 3, 2), (3,)], "conv3d_strides_pads",
         strides=[1, 2, 1], pads=[1, 0, 1, 0, 1, 0]),
    # Unit stride, weights fed at run time: the input gradient is a ConvTranspose cropped by the pads.
    conv([("N", 2, 6, 7), (6, 1, 3, 2), (6,)], "conv2d_unit_stride_depthwise_x3_dilated_asym_pads",
         group=2, dilations=[2, 1], pads=[2, 0, 1, 1]),
    conv([("N", 2, 4, 3, 5), (2, 2, 2, 2, 3)], "conv3d_unit_stride", pads=[1, 0, 1, 0, 1, 2]),
    conv([("N", 3, 6), (2, 3, 2), (2,)], "conv1d_pads_past_kernel", pads=[2, 1]),  # ConvTranspose fallback
    conv([("N", 3, 4, 4), (5, 3, 1, 1), (5,)], "conv2d_1x1"),
    conv([("N", 3, 5, 5), (2, 3, 1, 1)], "conv2d_1x1_stride2", strides=[2, 2]),
    Case("Conv", [("N", 2, 5, 5), (3, 2, 3, 3), (3,)], attrs={"pads": [1, 1, 1, 1]}, wrt=[0],
         torch_fn=torch_conv(pads=[1, 1, 1, 1]), name="conv2d_wrt_x_only"),
    Case("Conv", [("N", 2, 5, 5), (3, 2, 3, 3), (3,)], attrs={"strides": [2, 2]}, wrt=[1, 2],
         torch_fn=torch_conv(strides=[2, 2]), name="conv2d_wrt_w_b_only"),
    # The batch dim doubles as the length: one graph serves lengths 2 and 3 (run-time SAME pads).
    conv([("N", 2, "N"), (3, 2, 2)], "conv1d_dynamic_length_same_upper_stride2",
         strides=[2], auto_pad="SAME_UPPER"),
    conv([("N", 2, "N"), (3, 2, 2)], "conv1d_dynamic_length_same_lower", auto_pad="SAME_LOWER"),
    conv([("N", 2, "N"), (3, 2, 2), (3,)], "conv1d_dynamic_length_pads_stride2", strides=[2], pads=[1, 1]),
    conv([("N", 2, "N"), (3, 2, 2), (3,)], "conv1d_dynamic_length_pads_unit_stride", pads=[1, 0]),

    # 16+ input channels at unit stride: the weight gradient is one GEMM per tap over the whole batch,
    # packing dY (more output channels) or the X slices (more input channels).
    conv([("N", 16, 4, 5), (20, 16, 3, 3), (20,)], "conv2d_taps_pad1", pads=[1, 1, 1, 1]),
    conv([("N", 17, 5, 6), (2, 17, 2, 3)], "conv2d_taps_dilated_asym_pads", dilations=[2, 1], pads=[1, 0, 0, 2]),
    conv([("N", 16, 7), (4, 16, 3), (4,)], "conv1d_taps_pads_past_kernel", pads=[3, 0]),
    conv([("N", 16, 3, 3, 4), (2, 16, 2, 2, 3)], "conv3d_taps", pads=[1, 0, 0, 0, 1, 1]),
    conv([("N", 16, 3, 4), (20, 16, 1, 1), (20,)], "conv2d_taps_1x1"),
    # Few output positions per sample (2x2 here): patches and dY contracted over the whole batch at once.
    conv([("N", 4, 5, 5), (8, 4, 3, 3), (8,)], "conv2d_strided_few_positions", strides=[2, 2]),
    conv([("N", 3, 4, 9), (10, 3, 2, 3)], "conv2d_strided_few_positions_asym", strides=[3, 4], pads=[1, 0, 0, 1]),
    # 1x1 unit stride, 196+ positions: one GEMM per sample, X and dY read where they lie.
    Case("Conv", [("N", 3, 14, 14), (5, 3, 1, 1), (5,)], wrt=[1, 2], torch_fn=torch_conv(), name="conv2d_pointwise",
         ort_rtol=5e-3),
    Case("Conv", [("N", 4, 200), (2, 4, 1)], wrt=[1], torch_fn=torch_conv(), name="conv1d_pointwise", ort_rtol=5e-3),
    Case("Conv", [("N", 2, 6, 6, 6), (3, 2, 1, 1, 1)], wrt=[1], torch_fn=torch_conv(dilations=[2, 2, 2]),
         attrs={"dilations": [2, 2, 2]}, name="conv3d_pointwise_dilated", ort_rtol=5e-3),
    Case("ConvTranspose", [("N", 3, 14, 15), (3, 4, 1, 1)], wrt=[1], torch_fn=torch_conv_transpose(),
         name="convt2d_pointwise", ort_rtol=5e-3),
    conv([("N", 16, 3, 4), (3, 16, 1, 1)], "conv2d_taps_1x1_padded", pads=[1, 0, 0, 1]),
    conv([("N", 16, 5, 4), (3, 16, 2, 2)], "conv2d_taps_same_upper", auto_pad="SAME_UPPER"),
    conv_t([("N", 3, 4, 3), (3, 16, 3, 3), (16,)], "convt2d_taps_unit_stride", pads=[1, 0, 1, 1]),
    # Depthwise (one channel in and out per group): the weight gradient is a product and a sum per tap, on
    # stride-phase planes of the padded X when strided (25+ taps; fewer keep the patches).
    conv([("N", 3, 6, 7), (3, 1, 3, 3), (3,)], "conv2d_depthwise_taps_pad1", group=3, pads=[1, 1, 1, 1]),
    conv([("N", 2, 9, 8), (2, 1, 5, 5)], "conv2d_depthwise_taps_5x5_stride2", group=2, strides=[2, 2],
         pads=[2, 2, 1, 2]),
    conv([("N", 2, 9, 10), (2, 1, 4, 4)], "conv2d_depthwise_taps_strides_dilated", group=2, strides=[2, 3],
         dilations=[1, 2], pads=[1, 0, 2, 1]),
    conv([("N", 3, 7), (3, 1, 3)], "conv1d_depthwise_taps_dilated", group=3, dilations=[2], pads=[2, 1]),
    conv([("N", 2, 3, 4, 5), (2, 1, 2, 2, 3)], "conv3d_depthwise_taps", group=2, pads=[1, 0, 0, 0, 1, 1]),
    conv([("N", 3, 5, 4), (3, 1, 3, 3)], "conv2d_depthwise_taps_same_upper", group=3, auto_pad="SAME_UPPER"),
    conv([("N", 2, 5, 4), (2, 1, 1, 1)], "conv2d_depthwise_taps_1x1", group=2),
    conv_t([("N", 3, 4, 3), (3, 1, 3, 3), (3,)], "convt2d_depthwise_taps_unit_stride", group=3, pads=[1, 0, 1, 1]),
    conv_t([("N", 2, 3, 3), (2, 1, 5, 5)], "convt2d_depthwise_taps_5x5_stride2", group=2, strides=[2, 2],
           pads=[1, 1, 2, 0], output_padding=[1, 0]),
    conv_t([("N", 2, 4, 3), (2, 3, 3, 3), (3,)], "convt2d_stride2_pads_outpad",
           strides=[2, 2], pads=[1, 0, 0, 1], output_padding=[1, 1]),
    conv_t([("N", 4, 3, 4), (4, 2, 3, 2), (4,)], "convt2d_group2_dilated",
           group=2, dilations=[2, 1], strides=[1, 2], pads=[0, 1, 1, 0]),
    conv_t([("N", 3, 3, 3), (3, 1, 3, 3)], "convt2d_depthwise", group=3, strides=[2, 2]),
    conv_t([("N", 2, 5), (2, 3, 4), (3,)], "convt1d_same_upper", strides=[2], auto_pad="SAME_UPPER"),
    conv_t([("N", 2, 4), (2, 3, 3)], "convt1d_same_lower", strides=[2], auto_pad="SAME_LOWER"),
    conv_t([("N", 2, 3, 4), (2, 2, 3, 3)], "convt2d_output_shape", strides=[2, 2], output_shape=[6, 8]),
    conv_t([("N", 2, 3, 2, 3), (2, 2, 2, 2, 3), (2,)], "convt3d", strides=[2, 1, 2], pads=[0, 1, 1, 1, 0, 0]),
    conv_t([("N", 2, 4), (2, 3, 3)], "convt1d_same_upper_odd_total", strides=[2], auto_pad="SAME_UPPER"),
    conv_t([("N", 2, 3, 4), (2, 2, 3, 3)], "convt2d_output_shape_same_upper", strides=[2, 2],
           output_shape=[6, 8], auto_pad="SAME_UPPER"),
    conv_t([("N", 2, "N"), (2, 3, 3), (3,)], "convt1d_dynamic_length", strides=[2], pads=[1, 0]),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_gradient(case):
    run_case(case)


def _conv_model(op: str, x_shape, w_shape, **attrs) -> onnx.ModelProto:
    b = GraphBuilder()
    x = b.input("x", TensorProto.FLOAT, x_shape)
    w = b.input("w", TensorProto.FLOAT, w_shape)
    b.output(b.op(op, [x, w], **attrs), "y")
    return b.to_model()


@needs_torch
def test_conv_gradient_serves_many_lengths_with_one_graph():
    """A SAME strided Conv1D on a run-time length: one gradient graph, lengths 5..12, against torch."""
    attrs = {"strides": [3], "auto_pad": "SAME_LOWER"}
    model = gradient_model(_conv_model("Conv", ("N", 2, "L"), (4, 2, 3), **attrs), "y", ["x", "w"])
    check_full(model)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 2, 3)).astype(np.float32)
    for length in range(5, 13):
        x = rng.standard_normal((2, 2, length)).astype(np.float32)
        gx, gw = sess.run(["x_grad", "w_grad"], {"x": x, "w": w})
        tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
        torch_conv(**attrs)(tx, tw).sum().backward()
        np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-5, atol=1e-5, err_msg=f"length {length}")
        np.testing.assert_allclose(gw, tw.grad.numpy(), rtol=1e-5, atol=1e-5, err_msg=f"length {length}")


def test_conv_transpose_negative_implied_padding_is_refused():
    model = _conv_model("ConvTranspose", ("N", 2, 4), (2, 3, 1), strides=[2], auto_pad="SAME_UPPER")
    with pytest.raises(GradientError, match="ConvTranspose.*negative"):
        gradient_model(model, "y", ["x"])


def test_conv_transpose_output_padding_past_stride_is_refused():
    model = _conv_model("ConvTranspose", ("N", 2, 4), (2, 2, 2), strides=[2], dilations=[3], output_padding=[2])
    with pytest.raises(GradientError, match="output_padding must stay below"):
        gradient_model(model, "y", ["x"])


def test_conv_unknown_weight_shape_is_refused():
    b = GraphBuilder()
    x = b.input("x", TensorProto.FLOAT, ("N", 2, 5))
    w = b.input("w", TensorProto.FLOAT, None)
    b.output(b.op("Conv", [x, w], shape=None), "y")
    with pytest.raises(GradientError, match="Conv.*weight's shape"):
        gradient_model(b.to_model(), "y", ["x"])


@pytest.mark.parametrize("case", [c for c in CASES if c.id.startswith("conv") and not c.id.startswith("convt")],
                         ids=lambda c: c.id)
def test_gradient_for_threaded_sessions(case):
    """Programs built for several intra-op threads take the patches formulation below 128 channels and the
    reversed Conv for fed weights: the same gradients (float64 numeric check, torch when installed)."""
    with session_threads(2):
        run_case(case)


@pytest.mark.parametrize("threads,op", [(None, "ConvTranspose"), (1, "ConvTranspose"), (2, "Conv")])
def test_fed_weights_input_gradient_follows_the_session_threads(threads, op):
    model = _conv_model("Conv", (2, 3, 6, 6), (4, 3, 3, 3), pads=[1, 1, 1, 1])
    with session_threads(threads):
        backward = [n.op_type for n in gradient_model(model, "y", ["x"]).graph.node][1:]
    assert op in backward and ({"Conv", "ConvTranspose"} - {op}).pop() not in backward, backward


@pytest.mark.parametrize("channels,spatial,threads,taps", [
    (16, 6, None, True), (16, 6, 1, True), (16, 6, 2, False), (127, 6, 4, False), (128, 6, 2, True), (8, 6, 1, False),
    (16, 56, 2, True), (16, 32, 2, False)])
def test_weight_gradient_formulation_follows_the_session_threads(channels, spatial, threads, taps):
    """Threaded sessions take the patches below 128 channels while they stay under 1 MiB per sample."""
    model = _conv_model("Conv", (2, channels, spatial, spatial), (4, channels, 3, 3), pads=[1, 1, 1, 1])
    with session_threads(threads):
        ops = [n.op_type for n in gradient_model(model, "y", ["w"]).graph.node]
    # The taps: a GEMM per tap over Slices of the padded X; the patches: a one-hot Conv after the forward one.
    assert (ops.count("Gemm") == 9 and ops.count("Conv") == 1) == taps, ops
    assert (ops.count("Conv") == 2) == (not taps), ops
