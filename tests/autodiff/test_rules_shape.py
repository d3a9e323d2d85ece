"""Gradient case table: shape and data-movement ops (Reshape ... Resize)."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxforge.autodiff import GradientError, check_gradients, gradient_model
from onnxforge.graph import DEFAULT_OPSET
from tests.autodiff.harness import (  # torch, F: optional oracle
    F, Case, distinct, run_case, needs_torch, torch,
)
from tests.conftest import check_full

BIG = np.iinfo(np.int64).max


def i64(*values) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def f32(*values) -> np.ndarray:
    # Resize's scales are float32 by the spec, whatever the data's type.
    return np.array(values, dtype=np.float32)


# ------------------------------------------------------------- torch oracles
def t_slice(x, starts, ends, axes=None, steps=None):
    """ONNX Slice through numpy's slicing (same clamping rules) and index_select."""
    starts, ends = starts.tolist(), ends.tolist()
    axes = range(len(starts)) if axes is None else axes.tolist()
    steps = [1] * len(starts) if steps is None else steps.tolist()
    for s, e, a, st in zip(starts, ends, axes, steps):
        keep = np.arange(x.shape[a])[slice(s, e, st)]
        x = x.index_select(a, torch.from_numpy(keep.copy()))
    return x


def t_gather(x, idx, axis=0):
    dim = x.shape[axis]
    rows = x.index_select(axis, (idx % dim).reshape(-1))
    return rows.reshape(x.shape[:axis] + idx.shape + x.shape[axis + 1:])


def t_gather_nd(x, idx, batch_dims=0):
    if batch_dims:
        return torch.stack([t_gather_nd(xb, ib, batch_dims - 1) for xb, ib in zip(x, idx)])
    k = idx.shape[-1]
    norm = idx % torch.tensor(x.shape[:k])
    return x[tuple(norm[..., j] for j in range(k))]


def t_pad(onnx_pads, rank, axes=None):
    """ONNX pads [b0, b1, ..., e0, e1, ...] on ``axes`` → torch's (last_b, last_e, ..., first_b, first_e)."""
    pads = onnx_pads.tolist()
    axes = list(range(rank)) if axes is None else [a % rank for a in axes.tolist()]
    per_axis = {a: (0, 0) for a in range(rank)}
    for k, a in enumerate(axes):
        per_axis[a] = (pads[k], pads[k + len(axes)])
    first = min([a for a in axes if per_axis[a] != (0, 0)], default=rank - 1)
    return [p for a in reversed(range(first, rank)) for p in per_axis[a]]


def t_pad_constant(x, pads, value, axes=None):
    # F.pad gives the fill value no gradient; add value * (padding mask) so it gets one, as in ONNX.
    p = t_pad(pads, x.dim(), axes)
    return F.pad(x, p) + value * F.pad(torch.zeros_like(x), p, value=1.0)


def t_unsqueeze(x, axes):
    rank = x.dim() + len(axes)
    for a in sorted(int(a) % rank for a in axes):
        x = x.unsqueeze(a)
    return x


def resize(inputs, attrs, **kw) -> Case:
    return Case("Resize", inputs, attrs, keep_dtype=[2], **kw)  # scales stay float32 in the float64 model


def interp(**kw):
    return lambda x, *_: F.interpolate(x, **kw)


# ------------------------------------------------------------------ the table
CASES = [
    # Reshape family
    Case("Reshape", [("N", 3, 4), i64(0, -1)], torch_fn=lambda x, s: x.reshape(x.shape[0], -1),
         name="Reshape_copy_dim_and_infer"),
    Case("Reshape", [(2, 3, 4), i64(4, -1, 2)], torch_fn=lambda x, s: x.reshape(4, -1, 2)),
    Case("Reshape", [(2, 3), i64(3, 2)], attrs={"allowzero": 1}, torch_fn=lambda x, s: x.reshape(3, 2),
         name="Reshape_allowzero"),
    # onnx-ad 0.3's adjoint of an empty reshape does not run (its Expand broadcasts (3,3,0) with (0,3,1)).
    Case("Reshape", [(0, 3), i64(3, 0)], attrs={"allowzero": 1}, torch_fn=lambda x, s: x.reshape(3, 0),
         name="Reshape_allowzero_empty", onnx_ad=False),
    Case("Flatten", [("N", 2, 3)], attrs={"axis": 2}, torch_fn=lambda x: x.reshape(x.shape[0] * 2, 3)),
    Case("Flatten", [(2, 3, 4)], attrs={"axis": -1}, torch_fn=lambda x: x.reshape(6, 4),
         name="Flatten_negative_axis"),
    Case("Flatten", [(2, 3, 4)], attrs={"axis": 0}, torch_fn=lambda x: x.reshape(1, 24), name="Flatten_axis0"),
    Case("Transpose", [("N", 3, 4)], attrs={"perm": [2, 0, 1]}, torch_fn=lambda x: x.permute(2, 0, 1)),
    Case("Transpose", [(2, 3, 4)], torch_fn=lambda x: x.permute(2, 1, 0), name="Transpose_default_perm"),
    Case("Squeeze", [("N", 1, 3, 1), i64(1, -1)], torch_fn=lambda x, a: x.squeeze(-1).squeeze(1)),
    Case("Squeeze", [(2, 1, 3, 1)], torch_fn=lambda x: x.squeeze(), name="Squeeze_all"),
    Case("Unsqueeze", [("N", 3), i64(0, -1)], torch_fn=t_unsqueeze),
    # Concat / Split
    Case("Concat", [("N", 2), ("N", 3), ("N", 1)], attrs={"axis": -1}, torch_fn=lambda *xs: torch.cat(xs, -1)),
    Case("Concat", [(2, 3), (1, 3)], attrs={"axis": 0}, torch_fn=lambda a, b: torch.cat([a, b], 0),
         name="Concat_axis0"),
    Case("Concat", [(2, 3)], attrs={"axis": 1}, torch_fn=lambda a: a * 1, name="Concat_single"),
    Case("Split", [("N", 5)], attrs={"axis": 1, "num_outputs": 3}, outputs=3,
         torch_fn=lambda x: torch.split(x, 2, dim=1), name="Split_num_outputs_uneven"),
    Case("Split", [(6, "N"), i64(1, 2, 3)], attrs={"axis": -2}, outputs=3,
         torch_fn=lambda x, s: torch.split(x, [1, 2, 3], dim=0), name="Split_sizes"),
    # Slice
    Case("Slice", [(5, "N"), i64(1), i64(4), i64(0)], torch_fn=t_slice),
    Case("Slice", [("N", 6), i64(-4), i64(BIG), i64(-1), i64(1)], torch_fn=t_slice, name="Slice_to_end"),
    Case("Slice", [(6, 4), i64(0, 1), i64(6, 4)], torch_fn=t_slice, name="Slice_no_axes"),
    Case("Slice", [(6, 5), i64(-100, 10), i64(100, -100), i64(0, 1), i64(1, -1)], torch_fn=t_slice,
         name="Slice_clamped_reverse"),
    Case("Slice", [(7, "N"), i64(5), i64(0), i64(0), i64(-2)], torch_fn=t_slice, name="Slice_step_minus2"),
    Case("Slice", [("N", 7), i64(1, 6), i64(BIG, -8), None, i64(2, -3)],
         torch_fn=lambda x, s, e, a, st: t_slice(x, s, e, None, st), name="Slice_steps_without_axes"),
    Case("Slice", [(4, "N"), i64(3), i64(1), i64(0)], torch_fn=t_slice, name="Slice_empty"),
    # Gather family
    Case("Gather", [("N", 3), np.array(1, np.int64)], attrs={"axis": 0}, torch_fn=lambda x, i: x[1],
         name="Gather_scalar_index_dynamic_rows"),
    Case("Gather", [(5, "N"), i64([0, -1], [4, 0])], torch_fn=t_gather, name="Gather_rows_repeated"),
    Case("Gather", [("N", 4), i64(3, -1, 0, 3)], attrs={"axis": 1}, torch_fn=lambda x, i: t_gather(x, i, 1),
         name="Gather_axis1_repeated"),
    Case("Gather", [(3, 4, 2), np.array(-2, np.int64)], attrs={"axis": -2},
         torch_fn=lambda x, i: t_gather(x, i, 1), name="Gather_scalar_index"),
    Case("Gather", [(4, 3), np.array([1, 1, -4], np.int32)], torch_fn=lambda x, i: t_gather(x, i.long()),
         name="Gather_int32_indices"),
    Case("GatherElements", [("N", 3), i64([0, -1, 1], [1, 1, 0])],
         torch_fn=lambda x, i: torch.gather(x, 0, i % x.shape[0])),
    Case("GatherElements", [(3, 2), i64([0, 1], [0, 1], [2, 0], [0, 1])],
         torch_fn=lambda x, i: torch.gather(x, 0, i), name="GatherElements_axis0_repeated"),
    Case("GatherND", [(3, 4, "N"), i64([0, 1], [2, -1], [0, 1])], torch_fn=t_gather_nd),
    Case("GatherND", [(3, 4), i64([0, 0], [0, 0], [2, 3])], torch_fn=t_gather_nd, name="GatherND_elements"),
    Case("GatherND", [(2, 3, "N"), i64([[1]], [[-1]])], attrs={"batch_dims": 1},
         torch_fn=lambda x, i: t_gather_nd(x, i, 1), name="GatherND_batch_dims"),
    # ScatterElements
    Case("ScatterElements", [("N", 2), i64([0, 1], [-1, 0]), (2, 2)],
         torch_fn=lambda d, i, u: d.scatter(0, i % d.shape[0], u)),
    Case("ScatterElements", [(3, 2), i64([1, 1], [1, 1]), (2, 2)], attrs={"reduction": "add"},
         torch_fn=lambda d, i, u: d.scatter_add(0, i, u), name="ScatterElements_add_repeated"),
    Case("ScatterElements", [(3, 4), i64([0, 2, 2, 1], [0, 1, 2, 1]), (2, 4)], attrs={"reduction": "max"},
         gen=distinct, torch_fn=lambda d, i, u: d.scatter_reduce(0, i, u, "amax"), name="ScatterElements_max"),
    Case("ScatterElements", [(3, 4), i64([0, 2, 2, 1], [0, 1, 2, 1]), (2, 4)], attrs={"reduction": "min"},
         gen=distinct, torch_fn=lambda d, i, u: d.scatter_reduce(0, i, u, "amin"), name="ScatterElements_min"),
    Case("ScatterElements", [("N", 3), i64([0, 2, 2], [1, 2, 2]), (2, 3)], attrs={"axis": 1, "reduction": "mul"},
         wrt=[0], torch_fn=lambda d, i, u: d.scatter_reduce(1, i, u, "prod"), name="ScatterElements_mul_data"),
    # ScatterND (keras.ops.scatter / scatter_update / slice_update)
    Case("ScatterND", [("N", 3), i64([0], [-1]), (2, 3)],
         torch_fn=lambda d, i, u: d.index_put((i[:, 0] % d.shape[0],), u), name="ScatterND_rows"),
    Case("ScatterND", [(3, 4), i64([0, 1], [2, 3], [1, 0]), (3,)],
         torch_fn=lambda d, i, u: d.index_put((i[:, 0], i[:, 1]), u), name="ScatterND_elements"),
    Case("ScatterND", [(3, 2), i64([1], [1], [0]), (3, 2)], attrs={"reduction": "add"},
         torch_fn=lambda d, i, u: d.index_put((i[:, 0],), u, accumulate=True), name="ScatterND_add_repeated"),
    Case("ScatterND", [(3, 4), i64([0, 1], [2, 2], [0, 1]), (3,)], attrs={"reduction": "max"}, gen=distinct,
         torch_fn=lambda d, i, u: d.reshape(-1).scatter_reduce(0, i[:, 0] * 4 + i[:, 1], u, "amax").reshape(3, 4),
         name="ScatterND_max"),
    Case("ScatterND", [(3, 4), i64([0, 1], [2, 2]), (2,)], attrs={"reduction": "mul"}, wrt=[0],
         torch_fn=lambda d, i, u: d.reshape(-1).scatter_reduce(0, i[:, 0] * 4 + i[:, 1], u, "prod").reshape(3, 4),
         name="ScatterND_mul_data"),
    # Expand / Tile
    Case("Expand", [("N", 1, 3), i64(1, 4, 1)], torch_fn=lambda x, s: x.expand(-1, 4, -1)),
    Case("Expand", [(3, 1), i64(2, 1, 4)], torch_fn=lambda x, s: torch.broadcast_to(x, (2, 3, 4)),
         name="Expand_bidirectional"),
    Case("Tile", [("N", 3), i64(2, 3)], torch_fn=lambda x, r: x.repeat(2, 3)),
    Case("Tile", [(2, 1, 3), i64(1, 4, 2)], torch_fn=lambda x, r: x.repeat(1, 4, 2), name="Tile_3d"),
    # Pad
    # onnx-ad follows the spec's NonDifferentiable tag on constant_value; mathematically it has a gradient.
    Case("Pad", [("N", 3, 4), i64(0, 1, 2, 0, 2, 1), ()], torch_fn=t_pad_constant, onnx_ad=False,
         name="Pad_constant_value"),
    Case("Pad", [(2, "N", 4), i64(1, 2, 0, 1), None, i64(-1, 0)],
         torch_fn=lambda x, p, v, a: F.pad(x, t_pad(p, 3, a)), name="Pad_constant_axes"),
    Case("Pad", [(2, "N", 5), i64(0, 0, 2, 0, 0, 1)], attrs={"mode": "reflect"},
         torch_fn=lambda x, p: F.pad(x, t_pad(p, 3), mode="reflect"), name="Pad_reflect"),
    Case("Pad", [("N", 3, 4), i64(0, 2, 1, 0, 1, 3)], attrs={"mode": "edge"},
         torch_fn=lambda x, p: F.pad(x, t_pad(p, 3), mode="replicate"), name="Pad_edge"),
    Case("Pad", [(2, "N", 4), i64(3, 2), None, i64(2)], attrs={"mode": "wrap"},
         torch_fn=lambda x, p, v, a: F.pad(x, t_pad(p, 3, a), mode="circular"), name="Pad_wrap_axes"),
    # Resize: nearest (integer scales take the reshape + ReduceSum path)
    resize([("N", 2, 3, 4), None, f32(1, 1, 2, 3)], attrs={"mode": "nearest",
           "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"},
           torch_fn=interp(scale_factor=(2, 3), mode="nearest"), name="Resize_nearest_integer"),
    resize([(1, 2, 4, 4), None, f32(1, 1, 1.5, 0.5)], attrs={"mode": "nearest",
           "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"},
           torch_fn=interp(scale_factor=(1.5, 0.5), mode="nearest"), name="Resize_nearest_fractional"),
    resize([("N", 1, 3, 4), None, None, i64(5, 7)], attrs={"mode": "nearest", "axes": [2, 3],
           "nearest_mode": "round_prefer_ceil"}, torch_fn=interp(size=(5, 7), mode="nearest-exact"),
           name="Resize_nearest_exact_sizes_axes"),
    resize([(2, "N", 3), None, f32(2, 1.5, 1)], attrs={"mode": "nearest",
           "coordinate_transformation_mode": "align_corners"}, name="Resize_nearest_leading_axes"),
    resize([("N", 1, 2, 3), None, f32(1, 1, 2, 2)], attrs={"mode": "nearest"},
           name="Resize_nearest_half_pixel_integer"),
    resize([(2, "N", 2, 3), None, None, i64(6, 6)], attrs={"mode": "nearest", "axes": [2, 3],
           "coordinate_transformation_mode": "pytorch_half_pixel", "nearest_mode": "round_prefer_ceil"},
           torch_fn=interp(size=(6, 6), mode="nearest-exact"), name="Resize_nearest_integer_sizes"),
    # Resize: linear and cubic
    resize([("N", 2, 3, 4), None, f32(1, 1, 2, 2)], attrs={"mode": "linear"},
           torch_fn=interp(scale_factor=2, mode="bilinear", align_corners=False), name="Resize_linear_half_pixel"),
    resize([(1, "N", 3, 4), None, None, i64(5, 7)], attrs={"mode": "linear", "axes": [2, 3],
           "coordinate_transformation_mode": "align_corners"},
           torch_fn=interp(size=(5, 7), mode="bilinear", align_corners=True), name="Resize_linear_align_corners"),
    resize([(1, 1, 4, 6), None, f32(1, 1, 0.5, 0.5)], attrs={"mode": "linear",
           "coordinate_transformation_mode": "pytorch_half_pixel"},
           torch_fn=interp(scale_factor=0.5, mode="bilinear", align_corners=False), name="Resize_linear_down"),
    resize([(1, 1, 4, 6), None, None, i64(1, 1, 1, 3)], attrs={"mode": "linear",
           "coordinate_transformation_mode": "pytorch_half_pixel"}, name="Resize_linear_to_one_pixel"),
    resize([("N", 2, 5), None, f32(1, 1, 1.6)], attrs={"mode": "linear",
           "coordinate_transformation_mode": "asymmetric"}, name="Resize_linear_asymmetric_1d"),
    # torch's antialiased bilinear uses another filter support than ONNX's: no torch oracle here.
    resize([(1, 1, 6, 6), None, f32(1, 1, 0.5, 0.5)], attrs={"mode": "linear", "antialias": 1},
           name="Resize_linear_antialias"),
    resize([(1, "N", 3, 4), np.array([0.2, 0.1, 0.9, 0.8]), None, i64(4, 5)],
           attrs={"mode": "linear", "axes": [2, 3], "coordinate_transformation_mode": "tf_crop_and_resize",
                  "extrapolation_value": 2.0}, name="Resize_tf_crop_and_resize"),
    resize([("N", 1, 3, 4), None, f32(1, 1, 2, 2)], attrs={"mode": "cubic"},
           torch_fn=interp(scale_factor=2, mode="bicubic", align_corners=False), name="Resize_cubic"),
    resize([(1, 1, 5, "N"), None, f32(1, 1, 0.6, 1)], attrs={"mode": "cubic", "cubic_coeff_a": -0.5,
           "exclude_outside": 1}, name="Resize_cubic_exclude_outside"),
    resize([(1, 1, 3, 4), None, f32(1, 1, 1.5, 2.5)], attrs={"mode": "nearest",
           "coordinate_transformation_mode": "half_pixel_symmetric", "nearest_mode": "ceil"},
           name="Resize_nearest_half_pixel_symmetric"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_gradient(case):
    run_case(case)


# ------------------------------------------------------- beyond the case table
def _model(nodes, inputs, outputs, inits=(), dtype=TensorProto.DOUBLE):
    """A small model; outputs given as names get their type from shape inference."""
    graph = helper.make_graph(nodes, "t", [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
                              [helper.make_tensor_value_info(n, dtype, None) for n in outputs],
                              initializer=[numpy_helper.from_array(a, n) for n, a in inits])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", DEFAULT_OPSET)])
    model.ir_version = 10
    inferred = {vi.name: vi for vi in onnx.shape_inference.infer_shapes(model).graph.value_info}
    inferred.update({vi.name: vi for vi in onnx.shape_inference.infer_shapes(model).graph.output})
    for out in model.graph.output:
        if inferred[out.name].type.tensor_type.HasField("shape"):
            out.type.CopyFrom(inferred[out.name].type)
        else:  # rank unknown to inference (shape fed at run time): say so with an empty dim list
            out.type.tensor_type.shape.SetInParent()
    return model


@pytest.mark.parametrize("used", [[1], [0, 2]])
def test_split_unused_outputs_get_zeros(used):
    # Only some outputs reach the loss: the others' slots must be zero-filled, with their own shapes.
    model = _model([helper.make_node("Split", ["x"], ["y0", "y1", "y2"], axis=1, num_outputs=3)],
                   [("x", TensorProto.DOUBLE, ["N", 7])], [f"y{k}" for k in used])
    x = np.random.default_rng(0).standard_normal((3, 7))
    result = check_gradients(model, {"x": x}, ["x"])
    expected = np.zeros_like(x)
    bounds = [(0, 3), (3, 6), (6, 7)]
    for k in used:
        lo, hi = bounds[k]
        expected[:, lo:hi] = result.upstream[f"y{k}"]
    np.testing.assert_allclose(result.gradients["x"], expected)


def _ort_grad(model: onnx.ModelProto, feeds: dict, upstream: np.ndarray) -> np.ndarray:
    """d <y, upstream> / dx in onnxruntime float32, for a one-output model with input x."""
    from onnxforge.autodiff.gradcheck import LOSS, upstream_wrapped

    grad = check_full(gradient_model(upstream_wrapped(model, ["y"]), LOSS, ["x"]))
    sess = ort.InferenceSession(grad.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(["x_grad"], {**feeds, "__upstream_y": upstream})[0]


@pytest.mark.parametrize("runtime_pads", [False, True])
@needs_torch
def test_pad_negative_pads(runtime_pads):
    # Negative pads crop (the reference evaluator cannot run them): check in onnxruntime against torch,
    # whose F.pad crops on negative pads too. Pads fed at run time take the in-graph path.
    rng = np.random.default_rng(0)
    for n, pads in [(2, i64(0, -1, 2, 0, 1, -3)), (3, i64(1, 0, -2, 0, -1, 1))]:
        ins = [("x", TensorProto.FLOAT, ["N", 4, 5]), ("v", TensorProto.FLOAT, [])]
        ins += [("pads", TensorProto.INT64, [6])] if runtime_pads else []
        inits = [] if runtime_pads else [("pads", pads)]
        model = _model([helper.make_node("Pad", ["x", "pads", "v"], ["y"])], ins, ["y"], inits,
                       dtype=TensorProto.FLOAT)
        x = rng.standard_normal((n, 4, 5)).astype(np.float32)
        xt = torch.tensor(x, requires_grad=True)
        yt = F.pad(xt, t_pad(pads, 3), value=0.5)
        up = rng.standard_normal(tuple(yt.shape)).astype(np.float32)
        (expected,) = torch.autograd.grad(yt, xt, torch.tensor(up))
        feeds = {"x": x, "v": np.array(0.5, np.float32), **({"pads": pads} if runtime_pads else {})}
        np.testing.assert_allclose(_ort_grad(model, feeds, up), expected.numpy(), rtol=1e-6, atol=1e-6)


@needs_torch
def test_resize_runtime_scales():
    # Scales fed at run time: every axis goes through the interpolation-matrix path, the batch axis too.
    model = _model([helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="linear")],
                   [("x", TensorProto.FLOAT, ["N", 2, 3, 4]), ("scales", TensorProto.FLOAT, [4])], ["y"],
                   dtype=TensorProto.FLOAT)
    rng = np.random.default_rng(2)
    for n, scales in [(2, f32(1, 1, 2, 1.5)), (3, f32(1, 1, 0.5, 2))]:
        x = rng.standard_normal((n, 2, 3, 4)).astype(np.float32)
        xt = torch.tensor(x, requires_grad=True)
        yt = F.interpolate(xt, scale_factor=tuple(scales[2:].tolist()), mode="bilinear", align_corners=False)
        up = rng.standard_normal(tuple(yt.shape)).astype(np.float32)
        (expected,) = torch.autograd.grad(yt, xt, torch.tensor(up))
        got = _ort_grad(model, {"x": x, "scales": scales}, up)
        np.testing.assert_allclose(got, expected.numpy(), rtol=1e-5, atol=1e-5)


@needs_torch
def test_slice_runtime_starts_and_steps():
    # starts / ends / steps fed at run time (not constants): the general scatter path.
    ins = [("x", TensorProto.FLOAT, [5, "N"])] + [(n, TensorProto.INT64, [2]) for n in ("s", "e", "st")]
    model = _model([helper.make_node("Slice", ["x", "s", "e", "", "st"], ["y"])], ins, ["y"],
                   dtype=TensorProto.FLOAT)
    rng = np.random.default_rng(1)
    for n, s, e, st in [(4, i64(4, 0), i64(-BIG, 3), i64(-2, 1)), (6, i64(1, -1), i64(5, 0), i64(1, -2))]:
        x = rng.standard_normal((5, n)).astype(np.float32)
        xt = torch.tensor(x, requires_grad=True)
        yt = t_slice(xt, s, e, None, st)
        up = rng.standard_normal(tuple(yt.shape)).astype(np.float32)
        (expected,) = torch.autograd.grad(yt, xt, torch.tensor(up))
        got = _ort_grad(model, {"x": x, "s": s, "e": e, "st": st}, up)
        np.testing.assert_allclose(got, expected.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("node, inputs, inits, message", [
    (helper.make_node("ScatterElements", ["x", "i", "u"], ["y"], reduction="mul"),
     [("x", [3, 2]), ("u", [1, 2])], [("i", i64([0, 2]))], "reduction='mul'"),
    (helper.make_node("Resize", ["x", "", "", "sz"], ["y"], keep_aspect_ratio_policy="not_larger"),
     [("x", [1, 1, 2, 3])], [("sz", i64(1, 1, 4, 4))], "keep_aspect_ratio_policy='not_larger'"),
])
def test_unsupported_combinations_fail_clearly(node, inputs, inits, message):
    model = _model([node], [(n, TensorProto.DOUBLE, s) for n, s in inputs], ["y"], inits)
    with pytest.raises(GradientError, match=message):
        gradient_model(model, "y", [n for n, _ in inputs])
