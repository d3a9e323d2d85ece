"""Gradient rules: elementwise arithmetic and activations (outputs shaped like the broadcast inputs).

Conventions, chosen to agree with ``torch.autograd`` where the math leaves a choice:

* At a kink the derivative is the one torch uses: Relu, LeakyRelu, Elu, Selu, Celu take the left side
  (``x > 0`` is the "positive" branch), Abs has 0 at 0, HardSigmoid counts the end points as outside,
  HardSwish and Clip count them as inside.
* Min / Max split the gradient evenly among the inputs that attain the result (torch.minimum /
  torch.maximum halve it for two tied inputs; for n inputs each of the k tied ones gets 1/k).
* Clip's gradient goes to ``x`` inside ``[min, max]`` (end points included), to ``min`` where
  ``x < min < max`` and to ``max`` where ``x > max`` or ``max < min`` (every output is ``max`` then).
* Pow: the base gets 0 where the exponent is 0 and the exponent gets 0 where the base is 0 (torch's
  convention); with a float exponent and a negative base the gradient is NaN, as the output is.

Selection rules -- the gradient goes to one side and the other side gets exactly 0, even when the
incoming gradient is inf or NaN there (torch's ``where`` / ``masked_fill`` backward) -- use ``Where``
(``_select``): ``Where``, ``Clip``, ``Max`` / ``Min``, ``PRelu``'s slope, ``Shrink``, ``HardSigmoid``,
``HardSwish``, ``ThresholdedRelu``. A 0/1 mask multiplied in would turn ``inf * 0`` into NaN. ``Relu``
keeps ``Cast(x > 0) * dY``: onnxruntime 1.32's ``Where`` measured 8-10x slower than a ``Mul`` on the CPU
(1.2 ms against 0.13 ms for 262k floats, one thread), and Relu's backward is on every CNN's hot path;
torch's threshold backward gives 0 there, so ``sqrt(relu(x))`` at ``x < 0`` is the one case that differs
(NaN here). Rules whose torch counterpart multiplies too (``Abs``'s sign, Dropout's mask, ``amax``'s
tie share) multiply. Rules reuse forward outputs where that is cheaper (``Exp``: ``dy * y``,
``Sigmoid``: ``dy * y * (1 - y)``).
"""
from __future__ import annotations

import math

import numpy as np

from ...graph import Value, np_dtype
from ..broadcast import unbroadcast
from ..context import GradContext
from ..registry import register, register_zero

__all__: list[str] = []


# ------------------------------------------------------------------ helpers
def _to(ctx: GradContext, i: int, g: Value) -> Value | None:
    """Sum a broadcast gradient back to input ``i``'s shape, if input ``i`` wants it."""
    return unbroadcast(g, ctx.I(i), ctx.O(0).shape) if ctx.needs(i) else None


def _op(ctx: GradContext, op_type: str, *inputs, **attrs) -> Value:
    return ctx.b.op(op_type, list(inputs), **attrs)


def _float(ctx: GradContext, v: Value, like: Value) -> Value:
    """``v`` (a bool mask, an integer exponent) cast to ``like``'s float type."""
    if like.dtype is not None:
        return v if v.dtype == like.dtype else _op(ctx, "Cast", v, to=like.dtype)
    out = _op(ctx, "CastLike", v, like)
    out.dtype = None  # the builder would guess v's type; like's is unknown
    return out


def _mask(ctx: GradContext, cmp: str, a, b, like: Value | None = None) -> Value:
    """``Cast(cmp(a, b))`` as 0/1 in ``like``'s (default ``a``'s) float type."""
    like = like if like is not None else a
    return _float(ctx, _op(ctx, cmp, a, b), like)


def _zero(ctx: GradContext, like: Value) -> Value:
    """A scalar 0 in ``like``'s element type (read from ``like`` at run time when unknown here)."""
    if like.dtype is not None:
        return ctx.b.const(np.asarray(0, np_dtype(like.dtype)))
    return _op(ctx, "CastLike", ctx.b.const(np.asarray(0, np.float32)), like)


def _select(ctx: GradContext, cond: Value, g: Value, other: Value | None = None) -> Value:
    """``g`` where ``cond`` else ``other`` (0 by default), NaN-safe: the unselected side is exactly
    ``other`` whatever ``g`` holds there."""
    return ctx.b.op("Where", [cond, g, other if other is not None else _zero(ctx, g)], dtype=g.dtype)


def _where_flowing(ctx: GradContext, dy: Value, g: Value) -> Value:
    """``g`` (a gradient linear in ``dy``), but 0 where ``dy`` is 0 and ``g`` came out NaN: TensorFlow's
    ``SqrtGrad`` / ``RsqrtGrad`` / ``ReciprocalGrad``. So ``tf.where(x > 0, tf.sqrt(x), -x)`` has a finite
    gradient at ``x <= 0``, where the unselected ``sqrt``'s infinite or NaN derivative times a zero ``dy``
    would be NaN. Only NaN entries are replaced, so ``g`` stays ``g`` wherever it is a number and its own
    derivative in ``dy`` is kept (``ops.jvp`` differentiates this gradient at a zero ``dy``)."""
    zero = _zero(ctx, dy)
    lost = _op(ctx, "And", _op(ctx, "Equal", dy, zero), _op(ctx, "IsNaN", g))
    return ctx.b.op("Where", [lost, zero, g], dtype=g.dtype)


def _two_sided(ctx: GradContext, x: Value, pos, neg) -> Value:
    """``pos`` where ``x > 0`` else ``neg``, as ``m * pos + (1 - m) * neg``.

    Multiplying both branches by an exact 0/1 mask (rather than ``neg + m * (pos - neg)``) keeps each
    branch exact: the other one contributes an exact zero.
    """
    m = _mask(ctx, "Greater", x, 0.0)
    pos_part = m if pos == 1.0 else m * pos
    neg_part = (1.0 - m) * neg
    return pos_part + neg_part


def _unary(*op_types: str):
    """Register ``f(ctx, x, y, dy) -> dx`` for a one-input op (``x`` input, ``y`` output, ``dy`` its gradient)."""
    def wrap(f):
        @register(*op_types)
        def rule(ctx: GradContext) -> list[Value | None]:
            return [f(ctx, ctx.I(0), ctx.O(0), ctx.GO(0))]
        return f
    return wrap


# ------------------------------------------------------------------ binary arithmetic
@register("Add")
def _add(ctx):
    dy = ctx.GO(0)
    return [_to(ctx, 0, dy), _to(ctx, 1, dy)]


@register("Sub")
def _sub(ctx):
    dy = ctx.GO(0)
    # Negate after the reduction: on the (often smaller) operand shape.
    return [_to(ctx, 0, dy), -_to(ctx, 1, dy) if ctx.needs(1) else None]


@register("Mul")
def _mul(ctx):
    dy, a, b = ctx.GO(0), ctx.I(0), ctx.I(1)
    silu = _silu_operand(ctx)
    if silu is not None:
        # y = x * s with s = Sigmoid(x) read by nothing else (SiLU / swish): the whole dL/dx through both
        # factors is dy * s * (1 + x - y), four passes over the tensor where the Mul and Sigmoid rules would
        # make six (dy*s, dy*x, 1-s, s*(1-s), the product, the sum); s gets no gradient of its own, so the
        # Sigmoid rule never runs. EfficientNet-B0 forward+backward (49 SiLUs, batch 4, 1 thread): 418 -> 404 ms.
        x, s, y = ctx.I(silu), ctx.I(1 - silu), ctx.O(0)
        grads: list[Value | None] = [None, None]
        grads[silu] = dy * (s * ((x - y) + 1.0))
        return grads
    return [_to(ctx, 0, dy * b) if ctx.needs(0) else None, _to(ctx, 1, dy * a) if ctx.needs(1) else None]


def _silu_operand(ctx: GradContext) -> int | None:
    """The index of ``x`` when this Mul is ``x * Sigmoid(x)`` (either order), the Sigmoid's output has no
    other reader and ``x`` wants a gradient; else ``None``."""
    for i in (0, 1):
        x, s = ctx.node.input[i], ctx.node.input[1 - i]
        sigmoid = ctx.producer(s)
        if (sigmoid is not None and sigmoid.op_type == "Sigmoid" and sigmoid.input[0] == x
                and ctx.use_count(s) == 1 and ctx.needs(i)):
            return i
    return None


@register("Div")
def _div(ctx):
    # y = a / b: da = dy / b, db = -dy * a / b^2 = -(dy / b) * y.
    dy, b, y = ctx.GO(0), ctx.I(1), ctx.O(0)
    q = dy / b
    return [_to(ctx, 0, q), -_to(ctx, 1, q * y) if ctx.needs(1) else None]


@register("Mod")
def _mod(ctx):
    # y = a - b * q with q = trunc(a / b) (fmod=1) or floor(a / b) (fmod=0), piecewise constant; q is
    # recovered from the output as (a - y) / b rather than recomputed (ONNX has no Trunc).
    dy, a, b, y = ctx.GO(0), ctx.I(0), ctx.I(1), ctx.O(0)
    return [_to(ctx, 0, dy), -_to(ctx, 1, dy * ((a - y) / b)) if ctx.needs(1) else None]


@register("Pow")
def _pow(ctx):
    a, e, y, dy = ctx.I(0), ctx.I(1), ctx.O(0), ctx.GO(0)
    ga = ge = None
    if ctx.needs(0):
        c = ctx.const_input(1)
        if c is not None and a.dtype is not None:
            # Constant exponent (x ** 2, x ** 0.5): fold e and e - 1, keeping d/da = 0 where e = 0.
            c = np.asarray(c).astype(np_dtype(a.dtype))
            if np.all(c == 2):
                d = a * ctx.b.const(c)
            else:
                d = ctx.b.const(c) * _op(ctx, "Pow", a, ctx.b.const(np.where(c == 0, 1, c - 1).astype(c.dtype)))
        else:
            ef = _float(ctx, e, a)
            # e * a^(e - 1), with a^0 in place of a^-1 where e = 0 so that 0 * inf cannot make a NaN.
            d = ef * _op(ctx, "Pow", a, ef - 1.0 + _mask(ctx, "Equal", ef, 0.0))
        ga = _to(ctx, 0, dy * d)
    if ctx.needs(1):
        # dy * y * log(a), with log(1) = 0 in place of log(0) where a = 0.
        ge = _to(ctx, 1, dy * y * _op(ctx, "Log", a + _mask(ctx, "Equal", a, 0.0)))
    return [ga, ge]


# ------------------------------------------------------------------ n-ary
@register("Identity")
def _identity(ctx):
    return [ctx.GO(0)]


@register("Sum")
def _sum(ctx):
    return [_to(ctx, i, ctx.GO(0)) for i in range(ctx.n_inputs)]


@register("Mean")
def _mean(ctx):
    share = ctx.GO(0) * (1.0 / ctx.n_inputs)
    return [_to(ctx, i, share) for i in range(ctx.n_inputs)]


@register("Max", "Min")
def _extremum(ctx):
    # Every input equal to the result shares the gradient evenly (torch.maximum halves it on a tie).
    dy, y, n = ctx.GO(0), ctx.O(0), ctx.n_inputs
    if n == 1:
        return [dy]
    hits = [_op(ctx, "Equal", ctx.I(i), y) for i in range(n)]
    share = dy / _op(ctx, "Sum", *[_float(ctx, h, y) for h in hits])
    return [_to(ctx, i, _select(ctx, hits[i], share)) if ctx.needs(i) else None for i in range(n)]


@register("Where")
def _where(ctx):
    cond, dy = ctx.I(0), ctx.GO(0)
    return [None, _to(ctx, 1, _select(ctx, cond, dy)) if ctx.needs(1) else None,
            _to(ctx, 2, _select(ctx, cond, _zero(ctx, dy), dy)) if ctx.needs(2) else None]


@register("Clip")
def _clip(ctx):
    x, lo, hi, dy = ctx.I(0), ctx.I(1), ctx.I(2), ctx.GO(0)
    inside = None
    if lo is not None:
        inside = _op(ctx, "GreaterOrEqual", x, lo)
    if hi is not None:
        below_hi = _op(ctx, "LessOrEqual", x, hi)
        inside = below_hi if inside is None else _op(ctx, "And", inside, below_hi)
    gx = dy if inside is None else _select(ctx, inside, dy)
    g_lo = g_hi = None
    if lo is not None and ctx.needs(1):
        under = _op(ctx, "Less", x, lo)
        if hi is not None:  # with min > max every output is max: min gets nothing
            under = _op(ctx, "And", under, _op(ctx, "Less", lo, hi))
        g_lo = _to(ctx, 1, _select(ctx, under, dy))
    if hi is not None and ctx.needs(2):
        over = _op(ctx, "Greater", x, hi)
        if lo is not None:
            over = _op(ctx, "Or", over, _op(ctx, "Less", hi, lo))
        g_hi = _to(ctx, 2, _select(ctx, over, dy))
    return [gx if ctx.needs(0) else None, g_lo, g_hi]


@register("Cast", "CastLike")
def _cast(ctx):
    # The gradient goes back in the input's own type; an integer or bool input has none.
    x, dy = ctx.I(0), ctx.GO(0)
    rest = [None] * (ctx.n_inputs - 1)
    if not ctx.needs(0) or (x.dtype is not None and not x.is_float):
        return [None, *rest]
    return [_float(ctx, dy, x), *rest]


# ------------------------------------------------------------------ unary math
_unary("Neg")(lambda ctx, x, y, dy: -dy)
_unary("Exp")(lambda ctx, x, y, dy: dy * y)
_unary("Log")(lambda ctx, x, y, dy: dy / x)
# dy / (y + y), not dy * 0.5 / y: the same rounding, and no Python constant, whose type would follow dy's --
# unknown while a gradient arriving through a broadcast is built, which made float32 constants in float64 graphs.
_unary("Sqrt")(lambda ctx, x, y, dy: _where_flowing(ctx, dy, dy / (y + y)))
_unary("Reciprocal")(lambda ctx, x, y, dy: _where_flowing(ctx, dy, -(dy * (y * y))))
_unary("Tanh")(lambda ctx, x, y, dy: dy * (1.0 - y * y))
_unary("Sigmoid")(lambda ctx, x, y, dy: dy * (y * (1.0 - y)))
_unary("Erf")(lambda ctx, x, y, dy: dy * _op(ctx, "Exp", -(x * x)) * (2.0 / math.sqrt(math.pi)))
_unary("Sin")(lambda ctx, x, y, dy: dy * _op(ctx, "Cos", x))
_unary("Cos")(lambda ctx, x, y, dy: -(dy * _op(ctx, "Sin", x)))
_unary("Tan")(lambda ctx, x, y, dy: dy * (1.0 + y * y))
_unary("Asin")(lambda ctx, x, y, dy: dy / _op(ctx, "Sqrt", 1.0 - x * x))
_unary("Acos")(lambda ctx, x, y, dy: -(dy / _op(ctx, "Sqrt", 1.0 - x * x)))
_unary("Atan")(lambda ctx, x, y, dy: dy / (x * x + 1.0))
_unary("Sinh")(lambda ctx, x, y, dy: dy * _op(ctx, "Cosh", x))
_unary("Cosh")(lambda ctx, x, y, dy: dy * _op(ctx, "Sinh", x))
_unary("Asinh")(lambda ctx, x, y, dy: dy / _op(ctx, "Sqrt", x * x + 1.0))
_unary("Acosh")(lambda ctx, x, y, dy: dy / _op(ctx, "Sqrt", x * x - 1.0))
_unary("Atanh")(lambda ctx, x, y, dy: dy / (1.0 - x * x))
# Abs: sign(x) as Cast(x > 0) - Cast(x < 0), 0 at 0 like torch; measured faster than Sign in
# onnxruntime (Sign is a slow kernel there) at 16k-256k elements.
_unary("Abs")(lambda ctx, x, y, dy: dy * (_mask(ctx, "Greater", x, 0.0) - _mask(ctx, "Less", x, 0.0)))


# ------------------------------------------------------------------ activations
_unary("Relu")(lambda ctx, x, y, dy: dy * _mask(ctx, "Greater", x, 0.0))
_unary("Softplus")(lambda ctx, x, y, dy: dy * _op(ctx, "Sigmoid", x))


@_unary("LeakyRelu")
def _leaky_relu(ctx, x, y, dy):
    alpha = ctx.attr("alpha", 0.01)
    return dy * (_mask(ctx, "Greater", x, 0.0) * (1.0 - alpha) + alpha)


@_unary("Elu")
def _elu(ctx, x, y, dy):
    alpha = ctx.attr("alpha", 1.0)
    return dy * _two_sided(ctx, x, 1.0, y + alpha)  # alpha * exp(x) = y + alpha for x <= 0


@_unary("Selu")
def _selu(ctx, x, y, dy):
    alpha = ctx.attr("alpha", 1.67326319217681884765625)
    gamma = ctx.attr("gamma", 1.05070102214813232421875)
    return dy * _two_sided(ctx, x, gamma, y + alpha * gamma)


@_unary("Celu")
def _celu(ctx, x, y, dy):
    alpha = ctx.attr("alpha", 1.0)
    return dy * _two_sided(ctx, x, 1.0, y * (1.0 / alpha) + 1.0)  # exp(x / alpha) = y / alpha + 1


@_unary("ThresholdedRelu")
def _thresholded_relu(ctx, x, y, dy):
    return _select(ctx, _op(ctx, "Greater", x, ctx.attr("alpha", 1.0)), dy)


@_unary("Shrink")
def _shrink(ctx, x, y, dy):
    # Slope 1 where |x| > lambd (x < -lambd or x > lambd), 0 in between; bias only shifts the output.
    return _select(ctx, _op(ctx, "Greater", _op(ctx, "Abs", x), ctx.attr("lambd", 0.5)), dy)


@_unary("Softsign")
def _softsign(ctx, x, y, dy):
    d = _op(ctx, "Abs", x) + 1.0
    return dy / (d * d)


@_unary("HardSigmoid")
def _hard_sigmoid(ctx, x, y, dy):
    # Slope alpha strictly inside the ramp, read off the output: 0 < y < 1.
    alpha = ctx.attr("alpha", 0.2)
    inside = _op(ctx, "And", _op(ctx, "Greater", y, 0.0), _op(ctx, "Less", y, 1.0))
    return _select(ctx, inside, dy * alpha)


@_unary("HardSwish")
def _hard_swish(ctx, x, y, dy):
    # y = x * clip(x / 6 + 1/2, 0, 1): slope 0 below -3, x / 3 + 1/2 on [-3, 3] (torch's end points), 1 above.
    hi = _mask(ctx, "LessOrEqual", x, 3.0)
    ramp = x * (1.0 / 3.0) - 0.5  # (x / 3 + 1/2) - 1
    return _select(ctx, _op(ctx, "GreaterOrEqual", x, -3.0), dy * (hi * ramp + 1.0))


@_unary("Mish")
def _mish(ctx, x, y, dy):
    t = _op(ctx, "Tanh", _op(ctx, "Softplus", x))
    return dy * (t + x * _op(ctx, "Sigmoid", x) * (1.0 - t * t))


@_unary("Gelu")
def _gelu(ctx, x, y, dy):
    approximate = ctx.attr("approximate", "none")
    if approximate == "none":
        # Phi(x) + x * phi(x)
        cdf = _op(ctx, "Erf", x * (1.0 / math.sqrt(2.0))) * 0.5 + 0.5
        pdf = _op(ctx, "Exp", x * x * -0.5) * (1.0 / math.sqrt(2.0 * math.pi))
        return dy * (cdf + x * pdf)
    if approximate == "tanh":
        # y = x/2 (1 + tanh(u)), u = k (x + c x^3): dy/dx = (1 + t)/2 + x/2 (1 - t^2) k (1 + 3 c x^2)
        k, c = math.sqrt(2.0 / math.pi), 0.044715
        x2 = x * x
        t = _op(ctx, "Tanh", x * (x2 * c + 1.0) * k)
        slope = (1.0 - t * t) * (x2 * (3.0 * c * k) + k)
        return dy * ((t + 1.0 + x * slope) * 0.5)
    raise ctx.fail(f"approximate={approximate!r} is not supported; expected 'none' or 'tanh'.")


# ------------------------------------------------------------------ zero gradient
# Float outputs that are piecewise constant in their float inputs, or depend only on their shape.
register_zero("Sign", "Floor", "Ceil", "Round", "Hardmax", "EyeLike", "RandomNormalLike",
              "RandomUniformLike", "Bernoulli")


@register("PRelu")
def _prelu(ctx):
    # y = x where x >= 0, slope * x elsewhere; slope broadcasts to x (unidirectionally).
    x, slope, dy = ctx.I(0), ctx.I(1), ctx.GO(0)
    below = _op(ctx, "Less", x, 0.0)
    dx = _select(ctx, below, dy * slope, dy) if ctx.needs(0) else None
    return [dx, _to(ctx, 1, _select(ctx, below, dy * x)) if ctx.needs(1) else None]
