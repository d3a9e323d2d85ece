"""Gradient case table: elementwise ops and activations."""
from __future__ import annotations

import math

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto
from onnx.reference import ReferenceEvaluator
from onnx.reference.ops import op_erf

from onnxforge.autodiff import GradientError, check_gradients, gradient_model
from onnxforge.graph import GraphBuilder
from tests.autodiff.harness import (  # torch, F: optional oracle
    F, Case, away_from_zero, distinct, normal, positive, run_case, run_model, needs_torch, torch,
)
from tests.conftest import check_full


@pytest.fixture(autouse=True)
def full_precision_reference_erf(monkeypatch):
    """The ONNX reference evaluator computes Erf in float32 (``np.vectorize(erf, otypes=["f"])``), which
    drowns float64 finite differences (Erf, Gelu) in rounding noise; evaluate it in float64 instead."""
    erf64 = np.vectorize(math.erf, otypes=[np.float64])
    monkeypatch.setattr(op_erf.Erf, "_run", lambda self, x: (erf64(x).astype(x.dtype),))


# ------------------------------------------------------------------ generators (stay in the domain)
def avoiding(*kinks: float, low: float = -4.0, high: float = 4.0, gap: float = 0.15):
    """Uniform values in [low, high] at least ``gap`` away from each kink."""
    def gen(rng: np.random.Generator, shape: tuple) -> np.ndarray:
        x = rng.uniform(low, high, shape)
        for _ in range(100):
            bad = np.zeros(x.shape, bool)
            for k in kinks:
                bad |= np.abs(x - k) < gap
            if not bad.any():
                return x
            x = np.where(bad, rng.uniform(low, high, shape), x)
        raise AssertionError("could not draw values away from the kinks")
    return gen


def uniform(low: float, high: float):
    return lambda rng, shape: rng.uniform(low, high, shape)


def shifted(offset: float):
    """``distinct`` values moved by ``offset``: inputs drawn with different offsets never tie."""
    return lambda rng, shape: distinct(rng, shape) + offset


def full(value: float):
    return lambda rng, shape: np.full(shape, value)


def grid(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """Multiples of 0.1 in [-1, 1]: Clip bounds at x.x5 stay 0.05 away from every value."""
    return rng.integers(-10, 11, shape) * 0.1


def plus_minus(low: float, high: float):
    """Values in ±[low, high]."""
    return lambda rng, shape: rng.uniform(low, high, shape) * rng.choice([-1.0, 1.0], shape)


SELU_ALPHA, SELU_GAMMA = 1.67326319217681884765625, 1.05070102214813232421875


def selu(x, alpha=SELU_ALPHA, gamma=SELU_GAMMA):
    return gamma * torch.where(x > 0, x, alpha * (torch.exp(x) - 1))


def no_onnx_ad(case: Case) -> Case:
    """Leave the onnx-ad oracle out of ``case`` (where it is known to be wrong; the others still run)."""
    case.onnx_ad = False
    return case


COND = np.array([True, False, True])

CASES = [
    # ---- binary arithmetic (broadcasting, dynamic N)
    Case("Add", [("N", 3), (3,)], torch_fn=lambda a, b: a + b),
    Case("Add", [(2, 1, 4), (3, 1)], torch_fn=lambda a, b: a + b, name="Add_broadcast_both"),
    Case("Sub", [(4, 3), (1, 3)], torch_fn=lambda a, b: a - b),
    Case("Sub", [(3,), ("N", 2, 3)], torch_fn=lambda a, b: a - b, name="Sub_broadcast_first_dynamic"),
    Case("Mul", [("N", 3, 2), (3, 1)], torch_fn=lambda a, b: a * b),
    Case("Div", [("N", 3), (3,)], gen=[normal, away_from_zero], torch_fn=lambda a, b: a / b),
    Case("Div", [(1, 3), ("N", 1)], gen=[normal, away_from_zero], torch_fn=lambda a, b: a / b,
         name="Div_broadcast_both"),
    Case("Div", [("N", 3), np.array(4.0)], torch_fn=lambda a, b: a / b, name="Div_const_divisor"),
    Case("Mod", [("N", 3), (3,)], attrs={"fmod": 1}, gen=[plus_minus(1.5, 2.3), uniform(1.2, 1.3)],
         torch_fn=torch.fmod),
    # ---- Pow: base and exponent
    Case("Pow", [("N", 3), (3,)], gen=[positive, normal], torch_fn=torch.pow),
    Case("Pow", [(2, 3), (1,)], gen=[uniform(0.5, 1.5), uniform(-2, 2)], torch_fn=torch.pow,
         name="Pow_scalar_exponent_broadcast"),
    Case("Pow", [(3,), ("N", 3)], gen=[positive, normal], wrt=[1], torch_fn=torch.pow,
         name="Pow_exponent_only"),
    # Float exponents with a negative base are NaN: those cases keep the base positive ...
    Case("Pow", [("N", 3), np.array(-1.5)], gen=positive, torch_fn=torch.pow, name="Pow_const_float_exponent"),
    Case("Pow", [("N", 3), np.array([0.0, 0.5, 2.0])], gen=positive, torch_fn=torch.pow,
         name="Pow_const_exponents_with_zero"),
    # ... integer-valued exponents take any base, as a float or an int64 tensor.
    Case("Pow", [("N", 3), np.array(2.0)], torch_fn=torch.pow, name="Pow_const_square"),
    Case("Pow", [("N", 3), np.array(3.0)], torch_fn=torch.pow, name="Pow_const_cube_negative_base"),
    Case("Pow", [("N", 3), np.array(3, dtype=np.int64)], torch_fn=torch.pow, name="Pow_int64_exponent"),
    Case("Pow", [("N", 3), np.array(0.0)], torch_fn=torch.pow, name="Pow_const_zero"),
    # ---- n-ary
    Case("Identity", [(3, 2)], torch_fn=lambda x: x * 1),
    Case("Sum", [(3, 2), (2,), (1, 2)], torch_fn=lambda a, b, c: a + b + c),
    Case("Sum", [("N", 2)], torch_fn=lambda a: a * 1, name="Sum_one_input"),
    # (the ONNX reference evaluator's Mean needs its first input at the full shape)
    Case("Mean", [("N", 3, 2), (3, 1), (2,)], torch_fn=lambda a, b, c: (a + b + c) / 3),
    Case("Max", [("N", 3), (3,)], gen=[shifted(0.0), shifted(0.033)], torch_fn=torch.maximum),
    Case("Min", [(2, 3), (1, 3)], gen=[shifted(0.0), shifted(0.033)], torch_fn=torch.minimum),
    Case("Max", [("N", 1, 3), (2, 1), (3,)], gen=[shifted(0.0), shifted(0.033), shifted(0.066)],
         torch_fn=lambda a, b, c: torch.maximum(torch.maximum(a, b), c), name="Max_3_inputs_broadcast"),
    Case("Min", [("N", 3), (1,), (3,)], gen=[shifted(0.0), shifted(0.033), shifted(0.066)],
         torch_fn=lambda a, b, c: torch.minimum(torch.minimum(a, b), c), name="Min_3_inputs_broadcast"),
    Case("Max", [("N", 2)], torch_fn=lambda a: a * 1, name="Max_one_input"),
    Case("Where", [COND, ("N", 3), (1,)], torch_fn=torch.where),
    Case("Where", [COND, ("N", 3), np.array(0.0)], torch_fn=torch.where, name="Where_scalar_constant"),
    Case("Where", [np.array([[True], [False]]), (3,), (2, 3)], torch_fn=torch.where,
         name="Where_broadcast_condition"),
    # ---- Clip: x gets the gradient inside [min, max], min below it, max above it
    Case("Clip", [("N", 4), (), ()], gen=[grid, full(-0.35), full(0.45)], torch_fn=torch.clamp),
    Case("Clip", [("N", 4), (), None], gen=[grid, full(-0.35)], torch_fn=lambda x, lo, _: torch.clamp(x, lo),
         name="Clip_min_only"),
    Case("Clip", [("N", 4), None, ()], gen=[grid, None, full(0.45)],
         torch_fn=lambda x, _, hi: torch.clamp(x, max=hi), name="Clip_max_only"),
    Case("Clip", [("N", 4)], torch_fn=lambda x: x * 1, name="Clip_no_bounds"),
    # With min > max every output is max, so min gets no gradient (finite differences and torch agree);
    # onnx-ad's Clip rule still sends min the gradient below it, so that oracle is left out here.
    no_onnx_ad(Case("Clip", [("N", 4), (), ()], gen=[grid, full(0.45), full(-0.35)], torch_fn=torch.clamp,
                    name="Clip_min_above_max")),
    Case("Clip", [("N", 4), np.array(-0.35), np.array(0.45)], gen=grid,
         torch_fn=lambda x, lo, hi: torch.clamp(x, lo.item(), hi.item()), name="Clip_const_bounds"),
    # ---- unary math
    Case("Neg", [("N", 3)], torch_fn=torch.neg),
    Case("Sqrt", [("N", 3)], gen=positive, torch_fn=torch.sqrt),
    Case("Reciprocal", [("N", 3)], gen=away_from_zero, torch_fn=torch.reciprocal),
    Case("Exp", [("N", 3)], torch_fn=torch.exp),
    Case("Log", [("N", 3)], gen=positive, torch_fn=torch.log),
    Case("Abs", [("N", 3)], gen=away_from_zero, torch_fn=torch.abs),
    Case("Erf", [("N", 3)], torch_fn=torch.erf),
    Case("Sin", [("N", 3)], torch_fn=torch.sin),
    Case("Cos", [("N", 3)], torch_fn=torch.cos),
    Case("Tan", [("N", 3)], gen=uniform(-1.2, 1.2), torch_fn=torch.tan),
    Case("Asin", [("N", 3)], gen=uniform(-0.9, 0.9), torch_fn=torch.asin),
    Case("Acos", [("N", 3)], gen=uniform(-0.9, 0.9), torch_fn=torch.acos),
    Case("Atan", [("N", 3)], torch_fn=torch.atan),
    Case("Sinh", [("N", 3)], torch_fn=torch.sinh),
    Case("Cosh", [("N", 3)], torch_fn=torch.cosh),
    Case("Asinh", [("N", 3)], torch_fn=torch.asinh),
    Case("Acosh", [("N", 3)], gen=uniform(1.2, 3.0), torch_fn=torch.acosh),
    Case("Atanh", [("N", 3)], gen=uniform(-0.9, 0.9), torch_fn=torch.atanh),
    # ---- activations (defaults and every attribute)
    Case("Relu", [("N", 5)], gen=away_from_zero, torch_fn=lambda x: x.relu()),
    Case("Tanh", [("N", 3)], torch_fn=torch.tanh),
    Case("Sigmoid", [("N", 3)], torch_fn=torch.sigmoid),
    Case("LeakyRelu", [("N", 4)], gen=away_from_zero, torch_fn=F.leaky_relu),
    Case("LeakyRelu", [("N", 4)], attrs={"alpha": 0.3}, gen=away_from_zero,
         torch_fn=lambda x: F.leaky_relu(x, 0.3), name="LeakyRelu_alpha"),
    Case("Elu", [("N", 4)], gen=away_from_zero, torch_fn=F.elu),
    Case("Elu", [("N", 4)], attrs={"alpha": 0.5}, gen=away_from_zero, torch_fn=lambda x: F.elu(x, 0.5),
         name="Elu_alpha"),
    Case("Selu", [("N", 4)], gen=away_from_zero, torch_fn=selu),
    Case("Selu", [("N", 4)], attrs={"alpha": 2.0, "gamma": 0.5}, gen=away_from_zero,
         torch_fn=lambda x: selu(x, 2.0, 0.5), name="Selu_alpha_gamma"),
    Case("ThresholdedRelu", [("N", 4)], attrs={"alpha": 0.5}, gen=avoiding(0.5, low=-2, high=2),
         torch_fn=lambda x: F.threshold(x, 0.5, 0.0)),
    Case("Shrink", [("N", 4)], gen=avoiding(-0.5, 0.5, low=-2, high=2), torch_fn=lambda x: F.hardshrink(x, 0.5)),
    Case("Shrink", [("N", 4)], attrs={"bias": 0.3, "lambd": 0.3}, gen=avoiding(-0.3, 0.3, low=-2, high=2),
         torch_fn=lambda x: F.softshrink(x, 0.3), name="Shrink_bias_lambd"),
    Case("Softplus", [("N", 3)], torch_fn=F.softplus),
    Case("Softsign", [("N", 3)], torch_fn=F.softsign),
    Case("HardSigmoid", [("N", 4)], gen=avoiding(-2.5, 2.5),
         torch_fn=lambda x: torch.clamp(0.2 * x + 0.5, 0, 1)),
    Case("HardSigmoid", [("N", 4)], attrs={"alpha": 0.5, "beta": 0.25}, gen=avoiding(-0.5, 1.5),
         torch_fn=lambda x: torch.clamp(0.5 * x + 0.25, 0, 1), name="HardSigmoid_alpha_beta"),
    Case("HardSwish", [("N", 4)], gen=avoiding(-3.0, 3.0, low=-5, high=5), torch_fn=F.hardswish),
    Case("Mish", [("N", 3)], torch_fn=F.mish),
    Case("Gelu", [("N", 3)], torch_fn=F.gelu),
    Case("Gelu", [("N", 3)], attrs={"approximate": "tanh"}, torch_fn=lambda x: F.gelu(x, approximate="tanh"),
         name="Gelu_tanh"),
    # ---- zero gradient (piecewise constant); away from the jumps so finite differences see flat ground
    Case("Sign", [("N", 3)], gen=away_from_zero, torch_fn=torch.sign),
    Case("Floor", [("N", 3)], gen=avoiding(-2, -1, 0, 1, 2, low=-2.5, high=2.5), torch_fn=torch.floor),
    Case("Ceil", [("N", 3)], gen=avoiding(-2, -1, 0, 1, 2, low=-2.5, high=2.5), torch_fn=torch.ceil),
    Case("Round", [("N", 3)], gen=avoiding(-1.5, -0.5, 0.5, 1.5, low=-2, high=2), torch_fn=torch.round),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_gradient(case):
    run_case(case)


# ------------------------------------------------------------------ beyond the table
def _run_ort(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    session = ort.InferenceSession(check_full(model).SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


@pytest.mark.parametrize("op, torch_op", [("Max", torch.maximum), ("Min", torch.minimum)])
@needs_torch
def test_min_max_ties_split_evenly_like_torch(op, torch_op):
    # Finite differences are meaningless at a tie, so compare with torch's convention directly.
    a = np.array([1.0, 2.0, -3.0, 0.5])
    c = np.array([1.0, 0.0, -3.0, 0.5])
    b = GraphBuilder()
    xa = b.input("a", TensorProto.DOUBLE, (4,))
    xc = b.input("c", TensorProto.DOUBLE, (4,))
    u = b.input("u", TensorProto.DOUBLE, (4,))
    b.output(b.op("ReduceSum", [b.op(op, [xa, xc]) * u], keepdims=0), "loss")
    model = gradient_model(b.to_model(), "loss", ["a", "c"])
    upstream = np.array([0.7, -1.3, 2.0, 0.4])
    got = ReferenceEvaluator(model).run(["a_grad", "c_grad"], {"a": a, "c": c, "u": upstream})
    ta, tc = (torch.tensor(v, requires_grad=True) for v in (a, c))
    want = torch.autograd.grad(torch_op(ta, tc), [ta, tc], torch.tensor(upstream))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w.numpy(), rtol=1e-12)
    np.testing.assert_allclose(got[0][[0, 2, 3]], upstream[[0, 2, 3]] / 2)  # the ties: half each


def test_max_three_way_tie_splits_in_thirds():
    b = GraphBuilder()
    xs = [b.input(n, TensorProto.FLOAT, ("N",)) for n in "pqr"]
    b.output(b.op("ReduceSum", [b.op("Max", xs)], keepdims=0), "loss")
    model = gradient_model(b.to_model(), "loss", ["p", "q", "r"])
    feeds = {"p": np.array([2.0, 1.0], np.float32), "q": np.array([2.0, 3.0], np.float32),
             "r": np.array([2.0, 0.0], np.float32)}
    grads = dict(zip(["p", "q", "r"], _run_ort(model, feeds)[1:]))
    np.testing.assert_allclose(grads["p"], [1 / 3, 0], rtol=1e-6)
    np.testing.assert_allclose(grads["q"], [1 / 3, 1], rtol=1e-6)
    np.testing.assert_allclose(grads["r"], [1 / 3, 0], rtol=1e-6)


def test_non_float_ops_need_no_rule():
    # Greater, Equal, Size, Shape, ArgMax, NonZero have only integer/bool outputs: the engine skips them,
    # and the integer-to-float Casts after them get no gradient.
    b = GraphBuilder()
    x = b.input("x", TensorProto.DOUBLE, ("N", 3))
    f64 = TensorProto.DOUBLE
    positive_mask = b.op("Cast", [b.op("Greater", [x, 0.0])], to=f64)
    size = b.op("Cast", [b.op("Size", [x])], to=f64)
    argmax = b.op("Cast", [b.op("ArgMax", [x], axis=1, keepdims=1)], to=f64)
    rank = b.op("Cast", [b.op("Shape", [b.op("Shape", [x])])], to=f64)
    nonzero = b.op("Cast", [b.op("Size", [b.op("NonZero", [b.op("Equal", [x, x])])])], to=f64)
    y = x * positive_mask * size + x * argmax + x * rank + x * nonzero
    b.output(y, "y")
    x0 = np.array([[0.5, -1.0, 2.0], [-0.3, 0.7, -2.0]])
    result = check_gradients(b.to_model(), {"x": x0}, ["x"])
    u = result.upstream["y"]
    expected = u * ((x0 > 0) * x0.size + np.argmax(x0, axis=1)[:, None] + 2 + 2 * x0.size)
    np.testing.assert_allclose(result.gradients["x"], expected, rtol=1e-12)


def test_cast_gradient_returns_to_the_input_dtype():
    # Mixed precision: float32 -> float16 compute -> float32; and float32 -> float64 compute.
    b = GraphBuilder()
    x = b.input("x", TensorProto.FLOAT, ("N", 3))
    w16 = b.const(np.array([1.5, -2.0, 0.25], np.float16))
    half = b.op("Cast", [x], to=TensorProto.FLOAT16) * w16
    wide = b.op("Cast", [x], to=TensorProto.DOUBLE)
    y = b.op("Cast", [half], to=TensorProto.FLOAT) + b.op("Cast", [wide * wide], to=TensorProto.FLOAT)
    b.output(b.op("ReduceSum", [y], keepdims=0), "loss")
    model = gradient_model(b.to_model(), "loss", ["x"])
    grad_out = next(o for o in model.graph.output if o.name == "x_grad")
    assert grad_out.type.tensor_type.elem_type == TensorProto.FLOAT
    x0 = np.array([[0.5, -1.0, 2.0], [1.0, 0.25, -0.75]], np.float32)
    _, grad = _run_ort(model, {"x": x0})
    assert grad.dtype == np.float32
    np.testing.assert_allclose(grad, np.array([1.5, -2.0, 0.25]) + 2 * x0, rtol=1e-3)


def test_castlike_gradient_and_integer_cast_has_none():
    b = GraphBuilder()
    x = b.input("x", TensorProto.DOUBLE, (3,))
    like = b.const(np.zeros((), np.float32))
    as_f32 = b.op("CastLike", [x, like], dtype=TensorProto.FLOAT)
    # Rounding through int64 cuts the gradient: only the CastLike path contributes.
    through_int = b.op("Cast", [b.op("Cast", [x], to=TensorProto.INT64)], to=TensorProto.FLOAT)
    b.output(b.op("ReduceSum", [as_f32 * as_f32 + through_int], keepdims=0), "loss")
    model = check_full(gradient_model(b.to_model(), "loss", ["x"]))
    x0 = np.array([0.5, -1.5, 2.0])
    grad = ReferenceEvaluator(model).run(["x_grad"], {"x": x0})[0]
    assert grad.dtype == np.float64
    np.testing.assert_allclose(grad, 2 * x0, rtol=1e-6)


def test_gelu_unknown_approximation_fails_clearly():
    b = GraphBuilder()
    x = b.input("x", TensorProto.FLOAT, (3,))
    b.output(b.op("ReduceSum", [b.op("Gelu", [x], approximate="sigmoid")], keepdims=0), "loss")
    with pytest.raises(GradientError, match=r"Gelu.*approximate='sigmoid'"):
        gradient_model(b.to_model(), "loss", ["x"])


@pytest.mark.parametrize("op, fn", [("Abs", np.sign), ("Relu", lambda x: (x > 0) * 1.0),
                                    ("Clip", lambda x: ((x >= -1) & (x <= 0)) * 1.0)])
def test_kinks_follow_torch(op, fn):
    # At the kink itself: Abs'(0) = 0, Relu'(0) = 0, Clip passes the gradient at its end points.
    b = GraphBuilder()
    x = b.input("x", TensorProto.FLOAT, (5,))
    extra = [np.array(-1.0, np.float32), np.array(0.0, np.float32)] if op == "Clip" else []
    b.output(b.op("ReduceSum", [b.op(op, [x, *extra])], keepdims=0), "loss")
    x0 = np.array([-1.0, -0.5, 0.0, 0.5, 1.0], np.float32)
    _, grad = _run_ort(gradient_model(b.to_model(), "loss", ["x"]), {"x": x0})
    np.testing.assert_array_equal(grad, fn(x0))


@needs_torch
def test_pow_zero_base_and_zero_exponent_follow_torch():
    # d/da a^e at e = 0 is 0 (not 0 * inf), d/de a^e at a = 0 is 0 (not 0 * log 0), as in torch.
    a0, e0 = np.array([0.0, 0.0, 2.0, 0.0]), np.array([0.0, 2.0, 0.0, 1.0])
    b = GraphBuilder()
    a = b.input("a", TensorProto.DOUBLE, (4,))
    e = b.input("e", TensorProto.DOUBLE, (4,))
    b.output(b.op("ReduceSum", [b.op("Pow", [a, e])], keepdims=0), "loss")
    model = gradient_model(b.to_model(), "loss", ["a", "e"])
    got = ReferenceEvaluator(model).run(["a_grad", "e_grad"], {"a": a0, "e": e0})
    ta, te = (torch.tensor(v, requires_grad=True) for v in (a0, e0))
    want = torch.autograd.grad(torch.pow(ta, te).sum(), [ta, te])
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w.numpy())
    assert np.isfinite(got[0]).all() and np.isfinite(got[1]).all()



@pytest.mark.parametrize("alpha", [1.0, 2.0])
@needs_torch
def test_celu_float32(alpha):
    # ONNX defines Celu for float32 only, so the float64 case table cannot hold it: compare onnxruntime's
    # float32 gradient with torch's float64 one instead.
    b = GraphBuilder()
    x = b.input("x", TensorProto.FLOAT, ("N", 4))
    u = b.input("u", TensorProto.FLOAT, ("N", 4))
    attrs = {} if alpha == 1.0 else {"alpha": alpha}
    b.output(b.op("ReduceSum", [b.op("Celu", [x], **attrs) * u], keepdims=0), "loss")
    model = gradient_model(b.to_model(), "loss", ["x"])
    rng = np.random.default_rng(0)
    for n in (2, 3):
        x0 = (rng.uniform(0.2, 2.0, (n, 4)) * rng.choice([-1.0, 1.0], (n, 4))).astype(np.float32)
        u0 = rng.standard_normal((n, 4)).astype(np.float32)
        _, grad = _run_ort(model, {"x": x0, "u": u0})
        tx = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
        want = torch.autograd.grad(F.celu(tx, alpha), tx, torch.tensor(u0, dtype=torch.float64))[0]
        np.testing.assert_allclose(grad, want.numpy(), rtol=1e-5, atol=1e-6)


PRELU_CASES = [
    Case("PRelu", [("N", 3, 4), (3, 1)], gen=away_from_zero,
         torch_fn=lambda x, s: torch.where(x >= 0, x, s * x), name="PRelu_channel_slope"),
    Case("PRelu", [(2, 5), (1,)], gen=away_from_zero, torch_fn=lambda x, s: torch.where(x >= 0, x, s * x),
         name="PRelu_scalar_slope"),
]


@pytest.mark.parametrize("case", PRELU_CASES, ids=lambda c: c.id)
def test_prelu(case):
    run_case(case)


# ------------------------------------------------------------------ SiLU: x * Sigmoid(x) differentiated as one
def _silu_model(order: str, extra_reader: bool):
    """``y = x * Sigmoid(x)`` (``order`` "xs" or "sx"), and with ``extra_reader`` also ``z = Sigmoid(x) * w``
    (the Sigmoid read twice: the fused SiLU rule must not apply)."""
    def make(elem):
        b = GraphBuilder()
        x = b.input("x", elem, ("N", 5))
        w = b.input("w", elem, ("N", 5))
        s = b.op("Sigmoid", [x])
        b.output(x * s if order == "xs" else s * x, "y")
        if extra_reader:
            b.output(s * w, "z")
        return b.to_model()
    return make


def _silu_inputs(rng, n):
    # Large magnitudes too: s saturates at 0 and 1 there, where 1 + x - y must stay exact.
    x = rng.standard_normal((n, 5)) * 3.0
    x[0, :3] = [30.0, -30.0, 0.0]
    return {"x": x, "w": rng.standard_normal((n, 5))}


@pytest.mark.parametrize("order", ["xs", "sx"])
@pytest.mark.parametrize("extra_reader", [False, True], ids=["sigmoid_read_once", "sigmoid_read_twice"])
def test_silu_gradient(order, extra_reader):
    def reference(x, w):
        s = torch.sigmoid(x)
        return (x * s, s * w) if extra_reader else x * s
    run_model(_silu_model(order, extra_reader), _silu_inputs, ["x", "w"] if extra_reader else ["x"],
              torch_fn=reference, name=f"silu_{order}")


def test_silu_gradient_is_fused_only_where_the_sigmoid_has_one_reader():
    ops = {}
    for extra in (False, True):
        model = _silu_model("xs", extra)(TensorProto.FLOAT)
        outs = ["y", "z"] if extra else ["y"]
        b = GraphBuilder.from_model(model)
        loss = b.op("ReduceSum", [b.op("Concat", [b.value(o) for o in outs], axis=1)], keepdims=0)
        b.output(loss, "loss")
        grad = gradient_model(b.to_model(), "loss", ["x"])
        ops[extra] = [n.op_type for n in grad.graph.node]
    # The Sigmoid rule's 1 - s (a Sub) appears only when the Sigmoid has another reader.
    assert ops[False].count("Sub") == 1 and ops[False].count("Mul") == 3, ops[False]
    assert ops[True].count("Mul") > ops[False].count("Mul"), ops
