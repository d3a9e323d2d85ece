"""Gradient case table: reductions, Softmax, LogSoftmax and CumSum."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from onnxforge.autodiff import gradient_model
from onnxforge.graph import DEFAULT_OPSET
from tests.autodiff.harness import (  # torch, F: optional oracle
    F, Case, distinct, normal, positive, run_case, needs_torch, torch,
)
from tests.conftest import check_full



def _dims(x, axes, noop):
    """torch dims for ONNX axes; ``None`` means the op is the identity (noop_with_empty_axes)."""
    if not axes:
        return None if noop else list(range(x.dim()))
    return [a % x.dim() for a in axes]


def _per_dim(fn):
    """A torch reduction taking one dim at a time (prod), applied over several dims."""
    def reduce(x, dims, keepdim):
        for d in sorted(dims, reverse=True):
            x = fn(x, d, keepdim=True)
        return x if keepdim else x.reshape([s for i, s in enumerate(x.shape) if i not in dims])
    return reduce


TORCH = {
    "ReduceSum": lambda x, d, k: x.sum(dim=d, keepdim=k),
    "ReduceMean": lambda x, d, k: x.mean(dim=d, keepdim=k),
    "ReduceMax": lambda x, d, k: torch.amax(x, dim=d, keepdim=k),
    "ReduceMin": lambda x, d, k: torch.amin(x, dim=d, keepdim=k),
    "ReduceProd": _per_dim(torch.prod),
    "ReduceLogSumExp": lambda x, d, k: torch.logsumexp(x, dim=d, keepdim=k),
    "ReduceSumSquare": lambda x, d, k: (x * x).sum(dim=d, keepdim=k),
    "ReduceL2": lambda x, d, k: torch.linalg.vector_norm(x, 2, dim=d, keepdim=k),
}
# Where the op is the identity on its input (noop_with_empty_axes), elementwise.
TORCH_NOOP = {"ReduceSumSquare": lambda x: x * x, "ReduceL2": lambda x: x.abs()}


def with_zeros(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """Values in ±[0.5, 1.5] with about a quarter exact zeros: slices with none, one and several."""
    x = rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape)
    x[rng.random(shape) < 0.25] = 0.0
    flat = x.reshape(-1)
    flat[0], flat[1] = 0.0, 1.25  # at least one zero whatever the draw
    return x


def reduce_case(op, shape, axes, keepdims=1, noop=0, gen=normal, name=""):
    attrs = {"keepdims": keepdims}
    if noop:
        attrs["noop_with_empty_axes"] = 1

    def torch_fn(x, *_):
        dims = _dims(x, axes, noop)
        if dims is None:
            return TORCH_NOOP.get(op, lambda v: v * 1)(x)
        return TORCH[op](x, dims, bool(keepdims))

    inputs = [shape] if axes is None else [shape, np.array(axes, dtype=np.int64)]
    label = name or f"{op}_ax{'none' if axes is None else '_'.join(map(str, axes))}_k{keepdims}" + \
        ("_noop" if noop else "") + ("_N" if "N" in shape else "")
    return Case(op, inputs, attrs, torch_fn=torch_fn, gen=gen, name=label)


GEN = {"ReduceMax": distinct, "ReduceMin": distinct, "ReduceProd": with_zeros, "ReduceL2": normal}
REDUCE_OPS = list(TORCH)

CASES = []
for _op in REDUCE_OPS:
    _gen = GEN.get(_op, normal)
    CASES += [
        reduce_case(_op, ("N", 3, 4), [1], keepdims=1, gen=_gen),
        reduce_case(_op, ("N", 3, 4), [-1], keepdims=0, gen=_gen),
        reduce_case(_op, ("N", 3, 4), [0, 2], keepdims=0, gen=_gen),   # reduces the dynamic dim
        reduce_case(_op, ("N", 3), None, keepdims=0, gen=_gen),         # axes omitted: every axis
        reduce_case(_op, (2, 3), None, keepdims=1, gen=_gen),
        reduce_case(_op, (2, 3, 2), [], keepdims=1, noop=1, gen=_gen),  # the identity / elementwise
        reduce_case(_op, (2, 3, 2), [], keepdims=0, gen=_gen),          # empty axes, no noop: every axis
        reduce_case(_op, (3, 2, 4), [-3, 1], keepdims=1, gen=_gen),
    ]
# ReduceProd with one zero in every reduced slice, and with none.
CASES += [
    reduce_case("ReduceProd", (4, 3), [1], keepdims=0, name="ReduceProd_one_zero_per_row",
                gen=lambda r, s: np.where(np.eye(*s) > 0, 0.0, r.uniform(0.5, 1.5, s))),
    reduce_case("ReduceProd", ("N", 3), [1], keepdims=1, gen=positive, name="ReduceProd_no_zeros_N"),
    reduce_case("ReduceL2", (3, 4), [1], keepdims=0, gen=lambda r, s: np.concatenate(
        [np.zeros((1, s[1])), r.standard_normal((s[0] - 1, s[1]))]), name="ReduceL2_zero_row"),
]


def _softmax_case(op, shape, axis, name=""):
    fn = torch.softmax if op == "Softmax" else torch.log_softmax
    return Case(op, [shape], {"axis": axis} if axis is not None else {},
                torch_fn=lambda x: fn(x, -1 if axis is None else axis),
                name=name or f"{op}_axis{axis}" + ("_N" if "N" in shape else ""))


for _op in ("Softmax", "LogSoftmax"):
    CASES += [_softmax_case(_op, ("N", 5), None), _softmax_case(_op, (3, 4), 0),
              _softmax_case(_op, (2, "N", 3), 1), _softmax_case(_op, (2, 3, 4), -2)]


def _torch_cumsum(axis, exclusive, reverse):
    def fn(x, *_):
        v = x.flip(axis) if reverse else x
        y = v.cumsum(axis)
        if exclusive:
            y = y - v
        return y.flip(axis) if reverse else y
    return fn


for _excl in (0, 1):
    for _rev in (0, 1):
        CASES.append(Case("CumSum", [("N", 4), np.array(1, np.int64)], {"exclusive": _excl, "reverse": _rev},
                          torch_fn=_torch_cumsum(1, _excl, _rev), name=f"CumSum_ex{_excl}_rev{_rev}_N"))
CASES += [
    Case("CumSum", [(3, "N", 2), np.array(-2, np.int32)], {"reverse": 1}, torch_fn=_torch_cumsum(-2, 0, 1),
         name="CumSum_int32_negative_axis_N"),
    Case("CumSum", [("N", 3), np.array(0, np.int64)], {"exclusive": 1}, torch_fn=_torch_cumsum(0, 1, 0),
         name="CumSum_exclusive_dynamic_axis_N"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_gradient(case):
    run_case(case)


# ---------------------------------------------------------------------------------------------------
def _grad_session(op, x_shape, attrs, axes_input: bool):
    """A float32 gradient graph of ``sum(op(x, axes) * u)``, the axes a run-time input if ``axes_input``.

    ``u`` is fed flat and reshaped to ``y`` in the graph: with run-time axes and keepdims=0 not even the
    rank of ``y`` is known while building.
    """
    f32 = TensorProto.FLOAT
    inputs = [helper.make_tensor_value_info("x", f32, x_shape), helper.make_tensor_value_info("u", f32, ["m"])]
    names = ["x"]
    if axes_input:
        inputs.append(helper.make_tensor_value_info("axes", TensorProto.INT64, ["k"]))
        names.append("axes")
    nodes = [helper.make_node(op, names, ["y"], **attrs),
             helper.make_node("Shape", ["y"], ["y_shape"]),
             helper.make_node("Reshape", ["u", "y_shape"], ["u_y"]),
             helper.make_node("Mul", ["y", "u_y"], ["yu"]),
             helper.make_node("ReduceSum", ["yu"], ["loss"], keepdims=0)]
    graph = helper.make_graph(nodes, op, inputs, [helper.make_tensor_value_info("loss", f32, [])])
    model = check_full(helper.make_model(graph, opset_imports=[helper.make_opsetid("", DEFAULT_OPSET)]))
    grads = check_full(gradient_model(model, "loss", ["x"]))
    return ort.InferenceSession(grads.SerializeToString(), providers=["CPUExecutionProvider"])


def _torch_grad(op, x, dims, keepdim, u):
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    y = t * 1 if dims is None else TORCH[op](t, dims, keepdim)
    (g,) = torch.autograd.grad(y, t, grad_outputs=torch.tensor(u, dtype=torch.float64).reshape(y.shape))
    return y.detach().numpy(), g.numpy()


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceLogSumExp", "ReduceProd"])
@pytest.mark.parametrize("axes,noop", [([1, -1], 0), ([0], 0), ([], 0), ([], 1)])
@needs_torch
def test_axes_known_only_at_run_time(op, axes, noop):
    """Axes fed at run time (negative, empty with and without noop_with_empty_axes), keepdims=0, one graph."""
    sess = _grad_session(op, ["N", 3, 4], {"keepdims": 0, "noop_with_empty_axes": noop}, axes_input=True)
    rng = np.random.default_rng(0)
    for n in (2, 3):
        x = (rng.permutation(n * 12).reshape(n, 3, 4) * 0.05 - 0.3 * n).astype(np.float64)
        x[x == 0] = 0.01  # ReduceProd: no zeros here (covered by the case table)
        dims = _dims(torch.empty(x.shape), axes, noop)
        y_shape = TORCH[op](torch.tensor(x), dims, False).shape if dims is not None else x.shape
        u = rng.standard_normal(tuple(y_shape))
        _, expected = _torch_grad(op, x, dims, False, u)
        (got,) = sess.run(["x_grad"], {"x": x.astype(np.float32), "axes": np.array(axes, np.int64),
                                       "u": u.reshape(-1).astype(np.float32)})
        np.testing.assert_allclose(got, expected, rtol=2e-3, atol=2e-4, err_msg=f"{op} axes={axes} N={n}")


@pytest.mark.parametrize("op,torch_fn", [("ReduceMax", torch.amax), ("ReduceMin", torch.amin)])
@needs_torch
def test_ties_share_the_gradient_evenly_like_torch(op, torch_fn):
    """At ties the gradient is split evenly among the extrema (torch.amax / amin), not given to one."""
    sess = _grad_session(op, ["N", 4], {"keepdims": 0}, axes_input=True)
    x = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [-1.0, 5.0, -1.0, 0.5]])
    u = np.array([0.7, -1.3, 2.0])
    t = torch.tensor(x, requires_grad=True)
    (expected,) = torch.autograd.grad(torch_fn(t, dim=1), t, grad_outputs=torch.tensor(u))
    (got,) = sess.run(["x_grad"], {"x": x.astype(np.float32), "axes": np.array([1], np.int64),
                                   "u": u.reshape(-1).astype(np.float32)})
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-6)
    assert got[1].tolist() == pytest.approx([-1.3 / 4] * 4)  # four-way tie: a quarter each


def test_reduce_mean_count_is_computed_in_graph_for_a_dynamic_axis():
    """Averaging over the batch axis must not bake in the batch size: one graph, two batch sizes."""
    sess = _grad_session("ReduceMean", ["N", 3], {"keepdims": 1}, axes_input=False)
    for n in (2, 5):
        (got,) = sess.run(["x_grad"], {"x": np.zeros((n, 3), np.float32), "u": np.ones(1, np.float32)})
        np.testing.assert_allclose(got, np.full((n, 3), 1.0 / (n * 3)), rtol=1e-6)
