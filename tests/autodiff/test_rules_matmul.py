"""Gradient case table: MatMul, Gemm and Einsum."""
from __future__ import annotations

import pytest
from onnx import TensorProto, helper

from onnxforge.autodiff import GradientError, gradient_model
from onnxforge.graph import DEFAULT_OPSET
from tests.autodiff.harness import F, Case, run_case, torch  # torch, F: optional oracle



def _mm(shape_a, shape_b, name):
    return Case("MatMul", [shape_a, shape_b], torch_fn=lambda a, b: a @ b, name=f"MatMul_{name}")


MATMUL = [
    _mm(("N", 3), (3, 4), "2d_N"),
    _mm((3,), (3, 4), "vec_mat"),
    _mm((2, 3), (3,), "mat_vec"),
    _mm((3,), (3,), "dot"),
    _mm(("N", 2, 3), (3,), "batched_vec_N"),
    _mm((3,), ("N", 3, 4), "vec_batched_N"),
    _mm(("N", 2, 3), ("N", 3, 4), "batched_N"),
    _mm(("N", 2, 3), (3, 4), "dense_3d_N"),
    _mm((2, "N", 2, 3), (3, 5), "dense_4d_N"),
    _mm((2, 3), ("N", 3, 4), "broadcast_a_N"),
    _mm((1, 2, 3), ("N", 3, 4), "broadcast_size1_N"),
    _mm(("N", 1, 2, 3), (4, 3, 2), "broadcast_both_N"),
    _mm((2, 1, 2, 3), (1, 3, 3, 2), "broadcast_static"),
]


def _gemm(shapes, ta=0, tb=0, alpha=1.0, beta=1.0, name=""):
    attrs = {"transA": ta, "transB": tb}
    if alpha != 1.0:
        attrs["alpha"] = alpha
    if beta != 1.0:
        attrs["beta"] = beta

    def torch_fn(a, b, c=None):
        y = alpha * ((a.T if ta else a) @ (b.T if tb else b))
        return y if c is None else y + beta * c

    return Case("Gemm", list(shapes), attrs, torch_fn=torch_fn,
                name=f"Gemm_tA{ta}_tB{tb}_" + (name or "_".join("x".join(map(str, s)) for s in shapes)))


GEMM = [
    _gemm([("N", 3), (3, 4), (4,)], name="bias_N"),
    _gemm([("N", 3), (4, 3), ("N", 4)], tb=1, alpha=0.5, beta=2.0, name="full_C_N"),
    _gemm([(3, "N"), (3, 4), (1, 4)], ta=1, alpha=1.5, name="row_C_N"),
    _gemm([(3, 2), (4, 3), (2, 1)], ta=1, tb=1, beta=-0.5, name="col_C"),
    _gemm([(2, 3), (3, 4), ()], beta=0.25, name="scalar_C"),
    _gemm([("N", 3), (4, 3)], tb=1, alpha=2.0, name="no_C_N"),
    _gemm([(3, 2), (3, 4)], ta=1, name="no_C"),
]


def _es(equation, *shapes, name="", wrt=None, ort=True, onnx_ad=True):
    return Case("Einsum", list(shapes), {"equation": equation}, wrt=wrt, ort=ort, onnx_ad=onnx_ad,
                torch_fn=lambda *xs: torch.einsum(equation, *xs), name=name or f"Einsum[{equation}]")


EINSUM = [
    _es("ij,jk->ik", ("N", 3), (3, 4)),
    _es("bij,bjk->bik", ("N", 2, 3), ("N", 3, 4)),
    _es("bhqd,bhkd->bhqk", ("N", 2, 3, 4), ("N", 2, 5, 4)),
    _es("ij,jk", (2, 3), (3, 4), name="Einsum[implicit ij,jk]"),
    _es("ba", ("N", 3), name="Einsum[implicit transpose]"),
    _es("ij->ji", (2, "N")),
    # onnx-ad 0.3's adjoints of reductions to fewer axes do not run (a Reshape to the wrong rank).
    _es("ij->", ("N", 3), onnx_ad=False),
    _es("ij->j", ("N", 3), onnx_ad=False),
    _es("i,j->ij", (3,), ("N",)),
    _es("ij,ij->i", ("N", 3), ("N", 3)),
    _es("ij,jk->i", ("N", 3), (3, 4)),                    # k only in operand 1: its gradient is expanded
    _es("ij,jk->ki", (2, 3), (3, 4)),
    _es("...ij,...jk->...ik", ("N", 2, 3), ("N", 3, 4)),
    # (ONNX shape inference gets the broadcast wrong when the size-1 operand comes first.)
    _es("...ij,...jk->...ik", ("N", 2, 3), (1, 3, 4), name="Einsum[ellipsis broadcast size1]"),
    _es("...ij,jk->...ik", ("N", 2, 3), (3, 4), name="Einsum[ellipsis dense]"),
    _es("...ij->...ji", ("N", 2, 3)),
    _es("...j,j->...", (2, "N", 3), (3,)),
    # onnxruntime cannot run an Einsum that sums its ellipsis away (forward included): reference only.
    _es("...ij->ij", ("N", 2, 3), name="Einsum[ellipsis summed]", ort=False),
    _es("...ij,jk->ik", ("N", 2, 3), (3, 4), name="Einsum[ellipsis summed, only one operand]", ort=False),
    _es("i...j,jk->i...k", (2, "N", 3), (3, 4), name="Einsum[ellipsis in the middle]"),
    _es("i...,i...->...", (3, "N", 2), (3, 1, 2), name="Einsum[ellipsis last, broadcast]"),
    _es("ii,j->j", (3, 3), ("N",), wrt=[1], name="Einsum[diagonal operand not differentiated]"),
    _es("bn,anm,bm->ba", ("N", 3), (2, 3, 4), ("N", 4), name="Einsum[bilinear three operands]"),
]


@pytest.mark.parametrize("case", MATMUL + GEMM + EINSUM, ids=lambda c: c.id)
def test_gradient(case):
    run_case(case)


def test_einsum_diagonal_fails_clearly():
    node = helper.make_node("Einsum", ["x"], ["y"], equation="ii->i")
    graph = helper.make_graph([node], "diag", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", DEFAULT_OPSET)])
    with pytest.raises(GradientError, match=r"Einsum.*repeats label\(s\) \['i'\].*diagonal"):
        gradient_model(model, "y", ["x"])


def test_dense_weight_gradient_is_one_gemm():
    """A Dense kernel's gradient on 3-D inputs is one Gemm over flattened rows, not a batched MatMul."""
    node = helper.make_node("MatMul", ["x", "w"], ["y"])
    graph = helper.make_graph([node], "dense", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 5, 3]),
                                                helper.make_tensor_value_info("w", TensorProto.FLOAT, [3, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", DEFAULT_OPSET)])
    ops = [n.op_type for n in gradient_model(model, "y", ["w"]).graph.node]
    assert ops.count("Gemm") == 1 and "ReduceSum" not in ops[1:], ops

