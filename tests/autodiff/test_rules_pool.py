"""Gradient case table: MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool; ties break like torch."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto

from onnxforge.autodiff import GradientError, gradient_model
from onnxforge.graph import GraphBuilder
from tests.autodiff.harness import (  # torch, F: optional oracle
    F, Case, distinct, run_case, needs_torch, torch,
)
from tests.conftest import check_full



def _pads(attrs: dict, spatial) -> tuple[list[int], list[int]]:
    """(begin, end) pads of a pool node, SAME written out from the ONNX spec independently of the rule."""
    rank = len(attrs["kernel_shape"])
    strides = attrs.get("strides", [1] * rank)
    dilations = attrs.get("dilations", [1] * rank)
    auto_pad = attrs.get("auto_pad", "NOTSET")
    if auto_pad.startswith("SAME"):
        begin, end = [], []
        for i, k, s, d in zip(spatial, attrs["kernel_shape"], strides, dilations):
            total = max((-(-i // s) - 1) * s + (k - 1) * d + 1 - i, 0)
            small, large = total // 2, total - total // 2
            begin.append(small if auto_pad == "SAME_UPPER" else large)
            end.append(large if auto_pad == "SAME_UPPER" else small)
        return begin, end
    pads = attrs.get("pads", [0] * 2 * rank) if auto_pad == "NOTSET" else [0] * 2 * rank
    return list(pads[:rank]), list(pads[rank:])


def torch_pool(kind: str, **attrs):
    """``torch_fn`` for an ONNX MaxPool / AveragePool node with ``attrs``."""
    def fn(x):
        rank = x.dim() - 2
        kernel = attrs["kernel_shape"]
        strides = attrs.get("strides", [1] * rank)
        dilations = attrs.get("dilations", [1] * rank)
        ceil = bool(attrs.get("ceil_mode", 0))
        begin, end = _pads(attrs, x.shape[2:])
        native = begin == end and all(2 * p <= k for p, k in zip(begin, kernel))
        if kind == "max":
            pool = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[rank - 1]
            if native:
                return pool(x, kernel, strides, begin, dilations, ceil_mode=ceil)
            assert not ceil, "torch pads symmetrically; keep ceil_mode cases to native pads"
            flat = [p for axis in reversed(range(rank)) for p in (begin[axis], end[axis])]
            return pool(F.pad(x, flat, value=-np.inf), kernel, strides, 0, dilations)
        assert all(d == 1 for d in dilations) and native, "torch's avg_pool has no dilations or asymmetric pads"
        pool = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[rank - 1]
        include = bool(attrs.get("count_include_pad", 0))
        return pool(x, kernel, strides, begin, ceil_mode=ceil, count_include_pad=include)
    return fn


def max_pool(shape, name, torch_ok=True, **attrs) -> Case:
    return Case("MaxPool", [shape], attrs=attrs, gen=distinct, name=name,
                torch_fn=torch_pool("max", **attrs) if torch_ok else None)


def avg_pool(shape, name, torch_ok=True, **attrs) -> Case:
    return Case("AveragePool", [shape], attrs=attrs, name=name,
                torch_fn=torch_pool("avg", **attrs) if torch_ok else None)


CASES = [
    max_pool(("N", 2, 6, 5), "max2d_2x2_s2_leftover", kernel_shape=[2, 2], strides=[2, 2]),
    max_pool(("N", 2, 6, 6), "max2d_3x3_s1_overlapping", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    max_pool(("N", 2, 7, 6), "max2d_asym_pads_strides", kernel_shape=[3, 2], strides=[2, 1], pads=[1, 0, 2, 1]),
    max_pool(("N", 2, 7, 6), "max2d_ceil_mode", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
    max_pool(("N", 2, 7, 5), "max2d_ceil_disjoint", kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1),
    max_pool(("N", 2, 7, 8), "max2d_dilated", kernel_shape=[2, 2], strides=[1, 2], dilations=[2, 1]),
    max_pool(("N", 2, 7, 7), "max2d_dilated_disjoint", kernel_shape=[2, 2], strides=[3, 3], dilations=[2, 1]),
    max_pool(("N", 2, 6, 5), "max2d_storage_order_col", kernel_shape=[2, 2], strides=[2, 2], storage_order=1),
    max_pool(("N", 2, 6, 5), "max2d_storage_order_col_overlap", kernel_shape=[3, 2], strides=[1, 2],
             pads=[1, 1, 1, 0], storage_order=1),
    max_pool(("N", 2, 6, 5), "max2d_same_upper", kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"),
    max_pool(("N", 2, 6, 5), "max2d_same_lower", kernel_shape=[3, 2], strides=[2, 2], auto_pad="SAME_LOWER"),
    max_pool(("N", 2, 6, 5), "max2d_valid", kernel_shape=[2, 2], strides=[2, 2], auto_pad="VALID"),
    max_pool(("N", 3, 9), "max1d_pads", kernel_shape=[3], strides=[2], pads=[1, 1]),
    max_pool(("N", 3, 9), "max1d_storage_order", kernel_shape=[2], strides=[2], storage_order=1),
    max_pool(("N", 2, 4, 5, 3), "max3d", kernel_shape=[2, 2, 2], strides=[2, 1, 1]),
    max_pool(("N", 2, 4, 4, 3), "max3d_storage_order_disjoint", kernel_shape=[2, 2, 1], strides=[2, 2, 1],
             storage_order=1),
    max_pool(("N", 2, "N"), "max1d_dynamic_length", kernel_shape=[2], strides=[1]),

    avg_pool(("N", 2, 6, 5), "avg2d_2x2_s2", kernel_shape=[2, 2], strides=[2, 2]),
    avg_pool(("N", 2, 6, 6), "avg2d_pads_exclude", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    avg_pool(("N", 2, 6, 6), "avg2d_pads_include", kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1),
    avg_pool(("N", 2, 7, 6), "avg2d_ceil_exclude", kernel_shape=[3, 2], strides=[2, 2], ceil_mode=1),
    avg_pool(("N", 2, 7, 7), "avg2d_ceil_include_pads", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
             ceil_mode=1, count_include_pad=1),
    avg_pool(("N", 2, 7, 6), "avg2d_asym_pads_dilated", torch_ok=False, kernel_shape=[2, 3], strides=[2, 1],
             pads=[1, 0, 0, 2], dilations=[2, 1]),
    avg_pool(("N", 2, 7, 7), "avg2d_asym_pads_include_ceil", torch_ok=False, kernel_shape=[2, 3], strides=[2, 2],
             pads=[1, 0, 0, 1], count_include_pad=1, ceil_mode=1),
    avg_pool(("N", 2, 6, 5), "avg2d_same_upper", torch_ok=False, kernel_shape=[3, 3], strides=[2, 2],
             auto_pad="SAME_UPPER"),
    avg_pool(("N", 3, 9), "avg1d", kernel_shape=[3], strides=[2], pads=[1, 1]),
    avg_pool(("N", 2, 4, 5, 3), "avg3d", kernel_shape=[2, 2, 2], strides=[2, 1, 1]),
    avg_pool(("N", 2, "N"), "avg1d_dynamic_length", kernel_shape=[2], strides=[1]),

    Case("GlobalAveragePool", [("N", 3, 4, 5)], torch_fn=lambda x: x.mean(dim=(2, 3), keepdim=True)),
    Case("GlobalAveragePool", [("N", 3, "N")], torch_fn=lambda x: x.mean(dim=2, keepdim=True),
         name="GlobalAveragePool_dynamic_length"),
    Case("GlobalMaxPool", [("N", 3, 4, 5)], gen=distinct, torch_fn=lambda x: F.max_pool2d(x, x.shape[2:])),
    Case("GlobalMaxPool", [("N", 2, 3, 2, 2)], gen=distinct, torch_fn=lambda x: F.max_pool3d(x, x.shape[2:]),
         name="GlobalMaxPool_3d"),
    Case("GlobalMaxPool", [("N", 2, "N")], gen=distinct, torch_fn=lambda x: F.max_pool1d(x, x.shape[2:]),
         name="GlobalMaxPool_1d_dynamic_length"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_gradient(case):
    run_case(case)


# ------------------------------------------------------------------ beyond the harness
def _pool_grad_session(op: str, shape, **attrs) -> ort.InferenceSession:
    return ort.InferenceSession(_pool_grad_model(op, shape, **attrs).SerializeToString(),
                                providers=["CPUExecutionProvider"])


def _pool_grad_model(op: str, shape, **attrs):
    b = GraphBuilder()
    x = b.input("x", TensorProto.FLOAT, shape)
    u = b.input("u", TensorProto.FLOAT, tuple(f"u{k}" for k in range(len(shape))))
    y = b.op(op, [x], **attrs)
    b.output(b.op("ReduceSum", [b.op("Mul", [y, u])], keepdims=0), "loss")
    model = gradient_model(b.to_model(), "loss", ["x"])
    check_full(model)
    return model


def _against_torch(op: str, x: np.ndarray, torch_fn, shape=None, **attrs) -> None:
    sess = _pool_grad_session(op, shape or ("N",) + x.shape[1:], **attrs)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch_fn(tx)
    u = np.random.default_rng(1).standard_normal(tuple(ty.shape)).astype(np.float32)
    (ty * torch.tensor(u)).sum().backward()
    (got,) = sess.run(["x_grad"], {"x": x, "u": u})
    np.testing.assert_allclose(got, tx.grad.numpy(), rtol=1e-5, atol=1e-6)


TIE_CASES = [
    ("2x2_s2", dict(kernel_shape=[2, 2], strides=[2, 2])),
    ("3x3_s1_pads_overlap", dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])),
    ("3x3_s2_ceil", dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)),
    ("2x2_s1_dilated", dict(kernel_shape=[2, 2], dilations=[2, 2])),
    ("2x2_s2_col_major", dict(kernel_shape=[2, 2], strides=[2, 2], storage_order=1)),
    ("3x3_s3_tiles", dict(kernel_shape=[3, 3], strides=[3, 3])),
    ("3x1_s3x1_tiles", dict(kernel_shape=[3, 1], strides=[3, 1])),
]


@pytest.mark.parametrize("attrs", [a for _, a in TIE_CASES], ids=[n for n, _ in TIE_CASES])
@needs_torch
def test_max_pool_ties_go_to_the_first_index_like_torch(attrs):
    """Few distinct values (and relu-like zero plateaus): every window has ties; gradients match torch."""
    rng = np.random.default_rng(0)
    x = np.maximum(rng.integers(-2, 3, (3, 2, 7, 6)), 0).astype(np.float32)
    torch_attrs = {k: v for k, v in attrs.items() if k != "storage_order"}
    _against_torch("MaxPool", x, torch_pool("max", **torch_attrs), **attrs)


@pytest.mark.parametrize("shape,kernel", [((3, 2, 9), [2]), ((2, 2, 5, 4, 6), [2, 2, 2])], ids=["1d", "3d"])
@needs_torch
def test_tiled_max_pool_ties_1d_3d_and_no_indices_asked(shape, kernel):
    """Windows that tile X (kernel == strides): the forward MaxPool runs without Indices (the rule rebuilds
    them from X and Y) and plateaus still send each gradient to the window's first maximum."""
    x = np.maximum(np.random.default_rng(2).integers(-2, 3, shape), 0).astype(np.float32)
    attrs = dict(kernel_shape=kernel, strides=kernel)
    model = _pool_grad_model("MaxPool", ("N",) + shape[1:], **attrs)
    pools = [n for n in model.graph.node if n.op_type == "MaxPool"]  # the forward pool and the taps' boxes
    assert pools and all(len([o for o in n.output if o]) == 1 for n in pools)
    pool = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[len(kernel) - 1]
    _against_torch("MaxPool", x, lambda t: pool(t, kernel, kernel), **attrs)


@needs_torch
def test_tiled_max_pool_indices_past_float32_exactness(monkeypatch):
    """Samples too large for float32 to hold every flat index exactly (> 2**24 elements) add the window
    corners in int64 after the Cast instead: the same gradients, shown here with the limit lowered."""
    import onnxforge.autodiff.rules.pool as pool_rule

    monkeypatch.setattr(pool_rule, "_FLOAT_EXACT", 8)
    x = np.maximum(np.random.default_rng(3).integers(-2, 3, (3, 2, 6, 4)), 0).astype(np.float32)
    _against_torch("MaxPool", x, lambda t: F.max_pool2d(t, 2, 2), kernel_shape=[2, 2], strides=[2, 2])


@needs_torch
def test_average_pool_same_lower_against_torch():
    x = np.random.default_rng(0).standard_normal((2, 2, 6, 5)).astype(np.float32)
    attrs = dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_LOWER")
    begin, end = _pads(attrs, x.shape[2:])

    def reference(t):  # exclude pads from the divisor: the mean of the real pixels in each window
        flat = [p for axis in (1, 0) for p in (begin[axis], end[axis])]
        total = F.avg_pool2d(F.pad(t, flat), 3, 2, divisor_override=1)
        count = F.avg_pool2d(F.pad(torch.ones_like(t), flat), 3, 2, divisor_override=1)
        return total / count
    _against_torch("AveragePool", x, reference, **attrs)


@needs_torch
def test_global_max_pool_ties_go_to_the_first_index():
    x = np.zeros((2, 3, 4, 4), np.float32)
    x[0, 0, 1, 2] = x[0, 0, 3, 0] = 1.0  # two maxima: the first in row-major order gets the gradient
    _against_torch("GlobalMaxPool", x, lambda t: F.max_pool2d(t, t.shape[2:]))


@needs_torch
def test_max_pool_runs_at_many_lengths_with_one_graph():
    sess = _pool_grad_session("MaxPool", ("N", 2, "L"), kernel_shape=[3], strides=[2], pads=[1, 1])
    rng = np.random.default_rng(0)
    for length in range(3, 11):
        x = rng.standard_normal((2, 2, length)).astype(np.float32)
        tx = torch.tensor(x, requires_grad=True)
        ty = F.max_pool1d(tx, 3, 2, 1)
        u = rng.standard_normal(tuple(ty.shape)).astype(np.float32)
        (ty * torch.tensor(u)).sum().backward()
        (got,) = sess.run(["x_grad"], {"x": x, "u": u})
        np.testing.assert_allclose(got, tx.grad.numpy(), rtol=1e-6, err_msg=f"length {length}")


def test_pool_same_with_dilations_is_refused():
    b = GraphBuilder()
    x = b.input("x", TensorProto.FLOAT, ("N", 2, 6))
    b.output(b.op("MaxPool", [x], kernel_shape=[2], dilations=[2], auto_pad="SAME_UPPER"), "y")
    with pytest.raises(GradientError, match="MaxPool.*dilations"):
        gradient_model(b.to_model(), "y", ["x"])


def test_pool_whose_declared_shape_contradicts_onnxruntime_is_refused():
    b = GraphBuilder()
    x = b.input("x", TensorProto.FLOAT, ("N", 1, 7, 6))
    b.output(b.op("AveragePool", [x], kernel_shape=[2, 3], strides=[2, 2], pads=[1, 0, 0, 2], ceil_mode=1), "y")
    with pytest.raises(GradientError, match="AveragePool.*declares output spatial dims"):
        gradient_model(b.to_model(), "y", ["x"])


def test_average_pool_dynamic_varying_divisor_is_refused():
    b = GraphBuilder()
    x = b.input("x", TensorProto.FLOAT, ("N", 2, "L"))
    b.output(b.op("AveragePool", [x], kernel_shape=[3], pads=[1, 1]), "y")
    with pytest.raises(GradientError, match="AveragePool.*divisor varies"):
        gradient_model(b.to_model(), "y", ["x"])


# ----------------------------------------------------- the Relu-mask-before-unpool pass
def _relu_pool_model(extra_use: bool):
    from onnxforge.autodiff import backward
    from onnxforge.autodiff.passes import optimize

    def build(passes: bool):
        b = GraphBuilder()
        z = b.input("z", TensorProto.FLOAT, ("N", 2, 6, 6))
        u = b.input("u", TensorProto.FLOAT, ("N", 2, 3, 3))
        r = b.op("Relu", [z])
        y = b.op("MaxPool", [r], kernel_shape=[2, 2], strides=[2, 2])
        loss = b.op("ReduceSum", [b.op("Mul", [y, u])], keepdims=0)
        if extra_use:  # the Relu output feeds the loss twice: its gradient is a sum, nothing to fuse
            loss = b.op("Add", [loss, b.op("ReduceSum", [b.op("Mul", [r, r])], keepdims=0)])
        grad = backward(b, loss, ["z"])["z"]
        grad.shape = z.shape
        fired = optimize(b) if passes else 0
        b.output(grad, "z_grad")
        return check_full(b.to_model()), fired
    return build


@pytest.mark.parametrize("extra_use", [False, True], ids=["relu_then_pool", "relu_used_twice"])
@needs_torch
def test_relu_mask_moves_before_unpool_without_changing_gradients(extra_use):
    build = _relu_pool_model(extra_use)
    (plain, _), (fused, fired) = build(False), build(True)
    assert fired == (0 if extra_use else 1)
    pooled = next(n.output[0] for n in fused.graph.node if n.op_type == "MaxPool")
    (greater,) = [n for n in fused.graph.node if n.op_type == "Greater"]
    assert greater.input[0] == ("z" if extra_use else pooled)  # the mask is computed on the pooled tensor
    rng = np.random.default_rng(0)
    z = np.maximum(rng.integers(-2, 3, (3, 2, 6, 6)), -1).astype(np.float32)  # zeros and ties everywhere
    u = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    got = [ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"z": z, "u": u})[0] for m in (plain, fused)]
    tz = torch.tensor(z, requires_grad=True)
    loss = (F.max_pool2d(F.relu(tz), 2) * torch.tensor(u)).sum()
    if extra_use:
        loss = loss + (F.relu(tz) ** 2).sum()
    loss.backward()
    for g in got:
        np.testing.assert_allclose(g, tz.grad.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("pool", [dict(kernel_shape=[2, 2], strides=[2, 2]), dict(kernel_shape=[3, 3], strides=[1, 1])],
                         ids=["disjoint", "overlapping"])
@needs_torch
def test_bias_gradient_sums_the_pooled_gradient_when_windows_are_disjoint(pool):
    from onnxforge.autodiff import backward
    from onnxforge.autodiff.passes import sum_before_unpool

    b = GraphBuilder()
    x = b.input("x", TensorProto.FLOAT, ("N", 2, 6, 6))
    w = b.input("w", TensorProto.FLOAT, (3, 2, 3, 3))
    bias = b.input("bias", TensorProto.FLOAT, (3,))
    u = b.input("u", TensorProto.FLOAT, ("N", 3, "h", "w"))
    y = b.op("MaxPool", [b.op("Conv", [x, w, bias], pads=[1, 1, 1, 1])], **pool)
    grads = backward(b, b.op("ReduceSum", [b.op("Mul", [y, u])], keepdims=0), ["w", "bias"])
    assert sum_before_unpool(b) == (1 if pool["strides"] == [2, 2] else 0)
    b.output(grads["bias"], "bias_grad")
    model = check_full(b.to_model())
    rng = np.random.default_rng(0)
    feeds = {"x": rng.standard_normal((2, 2, 6, 6)).astype(np.float32),
             "w": rng.standard_normal((3, 2, 3, 3)).astype(np.float32),
             "bias": rng.standard_normal(3).astype(np.float32)}
    t = {k: torch.tensor(v, requires_grad=True) for k, v in feeds.items()}
    ty = F.max_pool2d(F.conv2d(t["x"], t["w"], t["bias"], padding=1), pool["kernel_shape"], pool["strides"])
    feeds["u"] = rng.standard_normal(tuple(ty.shape)).astype(np.float32)
    (ty * torch.tensor(feeds["u"])).sum().backward()
    (got,) = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    np.testing.assert_allclose(got, t["bias"].grad.numpy(), rtol=1e-5, atol=1e-5)
