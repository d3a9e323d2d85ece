"""The gradient case table machinery (JAX ``lax_autodiff_test`` style, tinygrad ``test_ops`` oracles).

A ``Case`` names an op, its input shapes and generators, attributes and a torch reference. ``run_case``:
1. builds a one-node model in float64 and checks its gradients by central finite differences along
   random directions with a random upstream gradient (``check_gradients``, ONNX reference evaluator);
2. compares those gradients with ``torch.autograd.grad`` on the same inputs, when torch is installed;
3. builds the same model in float32, runs the gradient graph in onnxruntime and compares;
4. for shapes with a symbolic ``"N"`` dim, runs one graph at two sizes of N;
5. runs every emitted graph through the full checker;
6. compares with onnx-ad's reverse mode (a second, independent ONNX autodiff) where it supports the case.

``run_model`` does the same for a whole model (control flow with captured weights, exported models).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxforge.autodiff import check_gradients, gradient_model
from onnxforge.autodiff.gradcheck import LOSS, upstream_wrapped
from onnxforge.autodiff.gradcheck import _evaluator as reference_evaluator  # with its op fixes
from onnxforge.graph import DEFAULT_OPSET
from onnxforge.graph.opset import ir_version_for
from tests.conftest import check_full


class _Absent:
    """Stands in for torch (and ``torch.nn.functional``) when it is not installed, so the case tables
    (whose torch references are lambdas, or built from torch functions at import) still load: attribute
    access and calls give another stand-in, and nothing is ever compared against it (``HAVE_TORCH``)."""

    def __getattr__(self, name: str) -> _Absent:
        if name.startswith("__"):
            raise AttributeError(name)
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> _Absent:
        return self

    def __bool__(self) -> bool:
        return False

    def __mro_entries__(self, bases: tuple) -> tuple:
        return (object,)  # `class Net(torch.nn.Module)` still defines a class (never used without torch)


try:
    import torch
    import torch.nn.functional as F
except ImportError:  # torch is an optional oracle: the finite-difference and onnxruntime checks still run
    torch = F = _Absent()
HAVE_TORCH = not isinstance(torch, _Absent)

#: Mark a test that is nothing but a torch comparison: skipped without torch (the others run anyway).
needs_torch = pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed (an optional oracle)")

try:
    import onnx_ad
except ImportError:  # onnx-ad is an optional oracle
    onnx_ad = None

Gen = Callable[[np.random.Generator, tuple], np.ndarray]


def normal(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    return rng.standard_normal(shape)


def positive(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    return rng.uniform(0.5, 2.0, shape)


def away_from_zero(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """Values in ±[0.2, 2]: keeps kinks (Relu, Abs) out of the finite-difference stencil."""
    return rng.uniform(0.2, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


def distinct(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """A permutation of well-separated values: no ties for Max/MaxPool/Sort-like ops."""
    n = int(np.prod(shape))
    return (rng.permutation(n).reshape(shape) * 0.1 - n * 0.05).astype(np.float64)


@dataclass
class Case:
    """One row of a gradient case table.

    ``inputs`` holds per forward input either a shape (tuple, may contain ``"N"``) to draw with ``gen``,
    a fixed ``np.ndarray`` (integer arrays become initializers: axes, shapes, indices), or ``None`` for an
    omitted optional input. ``torch_fn`` gets float64 torch tensors (and fixed arrays as tensors) and
    returns a tensor or a tuple of tensors matching the node's outputs.
    """

    op: str
    inputs: Sequence[Any]
    attrs: dict = field(default_factory=dict)
    torch_fn: Callable | None = None
    gen: Gen | Sequence[Gen] = normal
    wrt: Sequence[int] | None = None
    outputs: int = 1
    rtol: float = 1e-6
    atol: float = 1e-8
    ort_rtol: float = 2e-3
    ort_atol: float = 2e-4
    ort: bool = True
    name: str = ""
    subgraph_builder: Callable | None = None  # for control-flow ops: returns attrs with GraphProtos
    onnx_ad: bool = True  # compare with onnx-ad too (where it supports the case)
    keep_dtype: Sequence[int] = ()  # fixed float inputs that keep their own dtype (Resize scales: float32)
    opset: int = DEFAULT_OPSET  # newer ops (Attention, RMSNormalization: 23; Swish: 24) need a newer one
    torch_rtol: float = 1e-6  # looser only where the op's own spec computes in float32 (stash_type)

    @property
    def id(self) -> str:
        return self.name or self.op


def _shape(spec: tuple, n: int) -> tuple:
    return tuple(n if d == "N" else d for d in spec)


def _gen_for(case: Case, i: int) -> Gen:
    return case.gen[i] if isinstance(case.gen, (list, tuple)) else case.gen


def _float_slots(case: Case) -> list[int]:
    return [i for i, spec in enumerate(case.inputs) if isinstance(spec, tuple)
            or (isinstance(spec, np.ndarray) and spec.dtype.kind == "f" and False)]


def build(case: Case, dtype: int, symbolic: bool) -> onnx.ModelProto:
    """A model with one ``case.op`` node; tuple-shaped inputs are graph inputs of ``dtype``."""
    in_names, graph_inputs, inits = [], [], []
    for i, spec in enumerate(case.inputs):
        if spec is None:
            in_names.append("")
        elif isinstance(spec, tuple):
            name = f"x{i}"
            shape = [("N" if symbolic else 2) if d == "N" else d for d in spec]
            graph_inputs.append(helper.make_tensor_value_info(name, dtype, shape))
            in_names.append(name)
        else:
            name = f"c{i}"
            arr = np.asarray(spec)
            if arr.dtype.kind == "f" and i not in case.keep_dtype:
                arr = arr.astype(onnx.helper.tensor_dtype_to_np_dtype(dtype))
            inits.append(numpy_helper.from_array(arr, name))
            in_names.append(name)
    out_names = [f"y{k}" for k in range(case.outputs)]
    attrs = dict(case.attrs)
    if case.subgraph_builder is not None:
        attrs.update(case.subgraph_builder(dtype))
    node = helper.make_node(case.op, in_names, out_names, **attrs)
    graph = helper.make_graph([node], case.id, graph_inputs,
                              [helper.make_tensor_value_info(n, TensorProto.UNDEFINED, None) for n in out_names],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", case.opset)])
    model.ir_version = ir_version_for(case.opset)
    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    known = {vi.name: vi for vi in list(inferred.graph.value_info) + list(inferred.graph.output)
             if vi.type.tensor_type.elem_type and vi.type.tensor_type.HasField("shape")}
    for out in model.graph.output:
        if out.name in known:
            out.type.CopyFrom(known[out.name].type)
        else:  # inference could not type it: the op keeps the first input's dtype and shape
            out.type.CopyFrom(graph_inputs[0].type)
    return model


def draw(case: Case, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return {f"x{i}": _gen_for(case, i)(rng, _shape(spec, n)).astype(np.float64)
            for i, spec in enumerate(case.inputs) if isinstance(spec, tuple)}


def run_case(case: Case) -> None:
    """Check one case against finite differences, torch and onnxruntime (see module docstring)."""
    rng = np.random.default_rng(1234)
    float_slots = [i for i, s in enumerate(case.inputs) if isinstance(s, tuple)]
    wrt_slots = list(case.wrt) if case.wrt is not None else float_slots
    wrt = [f"x{i}" for i in wrt_slots]
    symbolic = any("N" in s for s in case.inputs if isinstance(s, tuple))
    sizes = (2, 3) if symbolic else (2,)

    model64 = check_full(build(case, TensorProto.DOUBLE, symbolic))
    model32 = check_full(build(case, TensorProto.FLOAT, symbolic))
    outs = [o.name for o in model32.graph.output if o.type.tensor_type.elem_type == TensorProto.FLOAT]
    grad32 = check_full(gradient_model(upstream_wrapped(model32, outs), LOSS, wrt))
    session = ort.InferenceSession(grad32.SerializeToString(), providers=["CPUExecutionProvider"]) \
        if case.ort else None

    for n in sizes:
        inputs = draw(case, rng, n)
        result = check_gradients(model64, inputs, wrt, rtol=case.rtol, atol=case.atol, seed=n)
        check_full(result.gradient_model)
        if HAVE_TORCH and case.torch_fn is not None:
            _compare_torch(case, inputs, result, wrt_slots)
        if case.onnx_ad:
            compare_onnx_ad(model64, inputs, result, wrt, case.id)
        if session is not None:
            feeds = {k: v.astype(np.float32) for k, v in inputs.items()}
            feeds.update({f"__upstream_{k}": v.astype(np.float32) for k, v in result.upstream.items()})
            got = session.run([f"{w}_grad" for w in wrt], feeds)
            for w, g in zip(wrt, got):
                np.testing.assert_allclose(g, result.gradients[w], rtol=case.ort_rtol, atol=case.ort_atol,
                                           err_msg=f"{case.id}: onnxruntime float32 gradient of {w} (N={n})")


def _compare_torch(case: Case, inputs: dict, result, wrt_slots: list[int]) -> None:
    args = []
    for i, spec in enumerate(case.inputs):
        if isinstance(spec, tuple):
            args.append(torch.tensor(inputs[f"x{i}"], dtype=torch.float64, requires_grad=i in wrt_slots))
        elif spec is None:
            args.append(None)
        else:
            args.append(torch.tensor(np.asarray(spec)))
    out = case.torch_fn(*args)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    pairs = [(o, result.upstream[f"y{k}"]) for k, o in enumerate(outs) if f"y{k}" in result.upstream]
    for k, (o, _) in enumerate(pairs):
        np.testing.assert_allclose(o.detach().numpy(), result.outputs[f"y{k}"], rtol=case.torch_rtol, atol=1e-8,
                                   err_msg=f"{case.id}: torch_fn's forward output y{k} differs from ONNX's")
    tensors = [args[i] for i in wrt_slots]
    grads = torch.autograd.grad([o for o, _ in pairs], tensors,
                                grad_outputs=[torch.tensor(u) for _, u in pairs], allow_unused=True)
    for i, g in zip(wrt_slots, grads):
        expected = np.zeros_like(inputs[f"x{i}"]) if g is None else g.numpy()
        np.testing.assert_allclose(result.gradients[f"x{i}"], expected, rtol=case.torch_rtol, atol=1e-8,
                                   err_msg=f"{case.id}: gradient of input {i} differs from torch.autograd")


def compare_onnx_ad(model: onnx.ModelProto, inputs: dict, result, wrt: Sequence[str], name: str,
                    rtol: float = 1e-6, atol: float = 1e-8) -> bool:
    """Check ``result.gradients`` against onnx-ad's reverse mode on the float64 ``model``.

    onnx-ad's adjoint model (``layout="onnx"``) keeps the model's inputs and outputs first, then takes one
    seed input per seeded output and returns one adjoint output per differentiated input, each with a
    trailing seed axis (here of size 1). onnx-ad counts as supporting a case when it builds and runs the
    adjoint and its gradients pass the same finite-difference check ours did (it has conventions of its
    own: no gradient for BatchNorm statistics, NaN for ReduceProd at zeros, ...). Only its
    ``UnsupportedOperator`` counts as "not supported": any other failure is raised. Returns whether it
    was compared; skipping it never skips the other oracles.
    """
    if onnx_ad is None:
        return False
    seeded = [o.name for o in model.graph.output if o.name in result.upstream]
    try:
        adjoint = onnx_ad.reverse(model, inputs=list(wrt), outputs=seeded, layout="onnx")
    except onnx_ad.UnsupportedOperator:  # the one error that means "not supported"; anything else is a bug
        return False
    n_in, n_out = len(model.graph.input), len(model.graph.output)
    seeds = {vi.name: np.asarray(result.upstream[y])[..., None]
             for vi, y in zip(adjoint.graph.input[n_in:], seeded)}
    names = [vi.name for vi in adjoint.graph.output[n_out:]]
    adjoints = reference_evaluator(adjoint).run(names, {**inputs, **seeds})
    got = {w: np.asarray(g)[..., 0] for w, g in zip(wrt, adjoints)}
    if not _passes_finite_differences(result, inputs, got, rtol, atol):
        return False  # a convention of its own where the math leaves a choice (see above)
    for w in wrt:
        np.testing.assert_allclose(result.gradients[w], got[w], rtol=rtol, atol=atol,
                                   err_msg=f"{name}: gradient of {w} differs from onnx-ad's")
    return True


def _passes_finite_differences(result, inputs: dict, grads: dict, rtol: float, atol: float) -> bool:
    evaluator = reference_evaluator(result.wrapped_model)
    feeds = {**inputs, **{f"__upstream_{n}": np.asarray(u) for n, u in result.upstream.items()}}
    rng, eps = np.random.default_rng(99), 1e-6
    for _ in range(2):
        direction = {w: rng.standard_normal(np.shape(inputs[w])) for w in grads}
        plus = evaluator.run([LOSS], {**feeds, **{w: inputs[w] + eps * d for w, d in direction.items()}})[0]
        minus = evaluator.run([LOSS], {**feeds, **{w: inputs[w] - eps * d for w, d in direction.items()}})[0]
        numeric = float(plus - minus) / (2 * eps)
        analytic = sum(float(np.sum(grads[w] * d)) for w, d in direction.items())
        if not abs(numeric - analytic) <= atol + rtol * max(abs(numeric), abs(analytic), 1.0):
            return False
    return True


def run_model(
    make: Callable[[int], onnx.ModelProto],
    draw_inputs: Callable[[np.random.Generator, Any], dict[str, np.ndarray]],
    wrt: Sequence[str],
    *,
    sizes: Sequence[Any] = (2, 3),
    torch_fn: Callable | None = None,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    ort_rtol: float = 2e-3,
    ort_atol: float = 2e-4,
    name: str = "model",
) -> None:
    """``run_case`` for a whole model: ``make(elem_type)`` builds it in float64 and float32 (one graph,
    dynamic dims), ``draw_inputs(rng, size)`` feeds it for each of ``sizes``; ``wrt`` names inputs.

    ``torch_fn(**tensors)`` gets every input as a torch tensor (float64, ``requires_grad`` for ``wrt``) and
    returns the model's outputs in order (float ones are compared and differentiated; ``None`` skips one).
    """
    rng = np.random.default_rng(1234)
    model64 = check_full(make(TensorProto.DOUBLE))
    model32 = check_full(make(TensorProto.FLOAT))
    outs = [o.name for o in model32.graph.output if o.type.tensor_type.elem_type == TensorProto.FLOAT]
    grad32 = check_full(gradient_model(upstream_wrapped(model32, outs), LOSS, list(wrt)))
    session = ort.InferenceSession(grad32.SerializeToString(), providers=["CPUExecutionProvider"])
    for k, size in enumerate(sizes):
        inputs = draw_inputs(rng, size)
        result = check_gradients(model64, inputs, list(wrt), rtol=rtol, atol=atol, seed=k)
        check_full(result.gradient_model)
        if HAVE_TORCH and torch_fn is not None:
            tensors = {n: torch.tensor(v, requires_grad=n in wrt) for n, v in inputs.items()}
            out = torch_fn(**tensors)
            out = list(out) if isinstance(out, (tuple, list)) else [out]
            pairs = [(o, result.upstream[vi.name]) for o, vi in zip(out, model64.graph.output)
                     if vi.name in result.upstream]
            for o, vi in zip(out, model64.graph.output):
                if o is None:  # torch_fn may skip outputs it has no counterpart for (masks, indices)
                    continue
                np.testing.assert_allclose(o.detach().numpy(), result.outputs[vi.name], rtol=1e-6, atol=1e-8,
                                           err_msg=f"{name}: torch's forward output {vi.name} differs")
            grads = torch.autograd.grad([o for o, _ in pairs], [tensors[w] for w in wrt],
                                        grad_outputs=[torch.tensor(u) for _, u in pairs], allow_unused=True)
            for w, g in zip(wrt, grads):
                expected = np.zeros_like(inputs[w]) if g is None else g.numpy()
                np.testing.assert_allclose(result.gradients[w], expected, rtol=1e-6, atol=1e-8,
                                           err_msg=f"{name}: gradient of {w} differs from torch.autograd")
        compare_onnx_ad(model64, inputs, result, wrt, name)
        feeds = {n: v.astype(np.float32) if v.dtype == np.float64 else v for n, v in inputs.items()}
        feeds.update({f"__upstream_{n}": v.astype(np.float32) for n, v in result.upstream.items()})
        got = session.run([f"{w}_grad" for w in wrt], feeds)
        for w, g in zip(wrt, got):
            np.testing.assert_allclose(g, result.gradients[w], rtol=ort_rtol, atol=ort_atol,
                                       err_msg=f"{name}: onnxruntime float32 gradient of {w} (size {size})")
