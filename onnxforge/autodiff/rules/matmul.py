"""Gradient rules: MatMul, Gemm and Einsum (each input's gradient is another product of the same kind).

Batch dims that broadcast in the forward pass are summed back with ``unbroadcast``; static shapes decide
that at build time, symbolic ones in the graph, so one gradient graph serves every batch size.
"""
from __future__ import annotations

from collections import Counter

import onnx

from ...graph import Shape, Value
from ..broadcast import unbroadcast
from ..context import GradContext
from ..registry import register

__all__: list[str] = []

_I64 = onnx.TensorProto.INT64


def _broadcast_dims(*shapes: Shape) -> Shape:
    """The numpy broadcast of static/symbolic shapes (``None`` for a dim nothing decides)."""
    if any(s is None for s in shapes):
        return None
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for k in range(rank):
        dims = [s[len(s) - rank + k] for s in shapes if len(s) - rank + k >= 0]
        big = {d for d in dims if d != 1}
        if not big:
            out.append(1)
        elif len(big) == 1:
            out.append(big.pop())
        else:
            ints = [d for d in big if isinstance(d, int)]
            out.append(ints[0] if ints else None)
    return tuple(out)


def _swap_last(b, v: Value) -> Value:
    """Transpose the last two axes."""
    rank = v.rank
    perm = list(range(rank - 2)) + [rank - 1, rank - 2]
    shape = None if v.shape is None else tuple(v.shape[p] for p in perm)
    return b.op("Transpose", [v], perm=perm, shape=shape)


def _rows(b, v: Value, last) -> Value:
    """Flatten every axis but the last (of size ``last``): ``(..., k) -> (prod(...), k)``."""
    if isinstance(last, int):
        shape = b.const([-1, last], _I64)
    else:
        shape = b.op("Concat", [b.const([-1], _I64), b.op("Shape", [v], start=-1)], axis=0)
    return b.op("Reshape", [v, shape], shape=(None, last))


# ------------------------------------------------------------------ MatMul
@register("MatMul")
def _matmul(ctx: GradContext):
    a, w, g, b = ctx.I(0), ctx.I(1), ctx.GO(0), ctx.b
    if a.rank is None or w.rank is None:
        raise ctx.fail("the ranks of both operands must be known while building the gradient graph.")
    ra, rw = a.rank, w.rank
    need_a, need_w = ctx.needs(0), ctx.needs(1)
    if ra == 1 and rw == 1:  # dot product: y is a scalar
        return [g * w if need_a else None, g * a if need_w else None]
    if ra == 2 and rw == 2:  # Gemm reads its operands transposed in place: no Transpose nodes
        return [b.op("Gemm", [g, w], transB=1, shape=a.shape) if need_a else None,
                b.op("Gemm", [a, g], transA=1, shape=w.shape) if need_w else None]

    # Promote 1-D operands as MatMul does: a (k,) is (1, k), w (k,) is (k, 1); g gets the dropped axis back.
    a2 = b.op("Unsqueeze", [a, b.const([0], _I64)], shape=(1,) + a.shape) if ra == 1 else a
    w2 = b.op("Unsqueeze", [w, b.const([1], _I64)], shape=w.shape + (1,)) if rw == 1 else w
    g2 = g
    if ra == 1:
        g2 = b.op("Unsqueeze", [g2, b.const([-2], _I64)])
    if rw == 1:
        g2 = b.op("Unsqueeze", [g2, b.const([-1], _I64)])
    batch = _broadcast_dims(a2.shape[:-2], w2.shape[:-2])
    n, k, m = a2.shape[-2], a2.shape[-1], w2.shape[-1]

    da = dw = None
    if need_a:
        wt = b.op("Unsqueeze", [w, b.const([0], _I64)], shape=(1,) + w.shape) if rw == 1 else _swap_last(b, w2)
        da = b.op("MatMul", [g2, wt], shape=batch + (n, k))
        if ra == 1:
            da = b.op("Squeeze", [da, b.const([-2], _I64)], shape=batch + (k,))
        da = unbroadcast(da, a, da.shape)
    if need_w:
        if rw == 2 and ra > 2:
            # A Dense layer on (batch, ..., k) inputs: one (k, rows) x (rows, m) product instead of a
            # batched MatMul and a ReduceSum over the batch.
            dw = b.op("Gemm", [_rows(b, a, k), _rows(b, g, m)], transA=1, shape=w.shape)
        else:
            at = b.op("Unsqueeze", [a, b.const([1], _I64)], shape=a.shape + (1,)) if ra == 1 else _swap_last(b, a2)
            dw = b.op("MatMul", [at, g2], shape=batch + (k, m))
            if rw == 1:
                dw = b.op("Squeeze", [dw, b.const([-1], _I64)], shape=batch + (k,))
            dw = unbroadcast(dw, w, dw.shape)
    return [da, dw]


# ------------------------------------------------------------------ Gemm
@register("Gemm")
def _gemm(ctx: GradContext):
    # Y = alpha * A' B' + beta * C with A' = A^T if transA, B' = B^T if transB. Each gradient is one Gemm:
    # dA' = alpha G B'^T, dB' = alpha A'^T G, transposed back where the operand was read transposed.
    a, w, g, b = ctx.I(0), ctx.I(1), ctx.GO(0), ctx.b
    ta, tb = int(ctx.attr("transA", 0)), int(ctx.attr("transB", 0))
    alpha, beta = float(ctx.attr("alpha", 1.0)), float(ctx.attr("beta", 1.0))
    scale = {} if alpha == 1.0 else {"alpha": alpha}
    da = dw = dc = None
    if ctx.needs(0):
        da = (b.op("Gemm", [w, g], transA=tb, transB=1, shape=a.shape, **scale) if ta
              else b.op("Gemm", [g, w], transA=0, transB=1 - tb, shape=a.shape, **scale))
    if ctx.needs(1):
        dw = (b.op("Gemm", [g, a], transA=1, transB=ta, shape=w.shape, **scale) if tb
              else b.op("Gemm", [a, g], transA=1 - ta, transB=0, shape=w.shape, **scale))
    if ctx.I(2) is not None and ctx.needs(2):
        gc = g if beta == 1.0 else g * beta
        dc = unbroadcast(gc, ctx.I(2), ctx.O(0).shape)
    return [da, dw, dc]


# ------------------------------------------------------------------ Einsum
def _parse(equation: str, n_inputs: int) -> tuple[list[str], str]:
    """Input and output terms, ``...`` written as ``.``; an implicit output made explicit (numpy's rule:
    the labels used once, in alphabetical order, after the broadcast dims)."""
    eq = equation.replace(" ", "").replace("...", ".")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != n_inputs:
        raise ValueError(f"equation {equation!r} has {len(terms)} operands, the node {n_inputs}")
    if not arrow:
        counts = Counter(c for t in terms for c in t if c != ".")
        rhs = ("." if any("." in t for t in terms) else "") + "".join(sorted(c for c, k in counts.items() if k == 1))
    return terms, rhs


def _axis_dims(term: str, shape: tuple) -> tuple[dict[str, object], tuple]:
    """Each label's dim and the broadcast (ellipsis) dims of one operand."""
    ell = len(shape) - (len(term) - term.count("."))
    dims: dict[str, object] = {}
    ell_dims: tuple = ()
    pos = 0
    for c in term:
        if c == ".":
            ell_dims = tuple(shape[pos:pos + ell])
            pos += ell
        else:
            dims[c] = shape[pos]
            pos += 1
    return dims, ell_dims


def _axes_of(term: str, rank: int) -> dict[str, list[int]]:
    """Each label's axis, and ``.`` -> the ellipsis axes, of an operand of rank ``rank``."""
    ell = rank - (len(term) - term.count("."))
    out: dict[str, list[int]] = {}
    pos = 0
    for c in term:
        width = ell if c == "." else 1
        out[c] = list(range(pos, pos + width))
        pos += width
    return out


def _eq(terms: list[str], out: str) -> str:
    return ",".join(terms).replace(".", "...") + "->" + out.replace(".", "...")


@register("Einsum")
def _einsum(ctx: GradContext):
    # d/dX_i of sum(G * einsum(X_0..X_n)) is einsum(G, X_j for j != i) onto X_i's labels. Labels only X_i
    # carries (summed in the forward pass) come back by Expand; broadcast ellipsis dims by unbroadcast.
    b = ctx.b
    xs = [ctx.I(i) for i in range(ctx.n_inputs)]
    if any(x.rank is None for x in xs):
        raise ctx.fail("the ranks of all operands must be known while building the gradient graph.")
    terms, out = _parse(str(ctx.attr("equation")), len(xs))
    g = ctx.GO(0)
    sizes: dict[str, object] = {}  # each label's dim, static where any operand knows it
    ells: list[tuple] = []  # the broadcast dims of each operand (() without an ellipsis)
    for term, x in zip(terms, xs):
        dims, ell_dims = _axis_dims(term, x.shape)
        for c, d in dims.items():
            if not isinstance(sizes.get(c), int):
                sizes[c] = d
        ells.append(ell_dims)
    out_ell = _broadcast_dims(*ells) if "." in out else ()

    grads: list[Value | None] = []
    for i, (term, x) in enumerate(zip(terms, xs)):
        if not ctx.needs(i):
            grads.append(None)
            continue
        repeated = sorted(c for c, k in Counter(term.replace(".", "")).items() if k > 1)
        if repeated:
            raise ctx.fail(f"operand {i} repeats label(s) {repeated} in {ctx.attr('equation')!r} (a diagonal); "
                           "its gradient is not supported.")
        grads.append(_einsum_grad(b, i, terms, out, xs, g, sizes, ells, out_ell))
    return grads


def _einsum_grad(b, i: int, terms: list[str], out: str, xs: list[Value], g: Value, sizes: dict,
                 ells: list[tuple], out_ell: tuple) -> Value:
    """The gradient of operand ``i`` (see ``_einsum``)."""
    x, term = xs[i], terms[i]
    others = [j for j in range(len(xs)) if j != i]
    # G goes first: it carries every broadcast dim at full size, and ONNX's Einsum shape inference,
    # meeting a 1 before a symbolic dim, infers 1.
    in_terms = [out] + [terms[j] for j in others]
    in_values = [g] + [xs[j] for j in others]
    present = set("".join(in_terms))
    kept = [c for c in term if c != "." and c in present]
    lonely = [c for c in term if c != "." and c not in present]
    has_ell = "." in term
    # The result keeps the broadcast dims whenever an input has them, even if X_i has none: onnxruntime
    # refuses an ellipsis summed away inside Einsum, so unbroadcast sums them after.
    ell_out = "." in present
    res_term = ("." if ell_out else "") + "".join(kept)

    # The gradient is built in a canonical layout: ellipsis dims first (where unbroadcast, which aligns
    # shapes on the right, sums the broadcast ones), then the kept labels, then the labels only X_i has.
    axes = _axes_of(term, x.rank)
    canonical = (axes["."] if has_ell else []) + [axes[c][0] for c in kept] + [axes[c][0] for c in lonely]
    x_dims, x_ell = _axis_dims(term, x.shape)
    target_shape = x_ell + tuple(x_dims[c] for c in kept + lonely)

    res_ell = _broadcast_dims(out_ell, *[ells[j] for j in others]) if ell_out else ()
    res_shape = res_ell + tuple(sizes[c] for c in kept)

    if in_terms == [res_term]:
        res = g
    else:
        res = b.op("Einsum", in_values, equation=_eq(in_terms, res_term), shape=res_shape)
    if lonely:
        rank = len(res_shape)
        res = b.op("Unsqueeze", [res, b.const(list(range(rank, rank + len(lonely))), _I64)])
        res_shape = res_shape + (1,) * len(lonely)

    if not _reducible(res_shape, target_shape):
        # Some dim of X_i is missing or 1 in the gradient (a label or broadcast dim only X_i has).
        x_shape = b.op("Shape", [x])
        if canonical != list(range(x.rank)):
            x_shape = b.op("Gather", [x_shape, b.const(canonical, _I64)])
        res_shape = _broadcast_dims(res_shape, target_shape)
        res = b.op("Expand", [res, x_shape], shape=res_shape)

    identity = canonical == list(range(x.rank))
    if identity:
        target = x
    elif _reducible(res_shape, target_shape):
        target = Value(x.name, x.dtype, target_shape, b)  # static: unbroadcast reads only the shape
    else:
        target = b.op("Transpose", [x], perm=canonical, shape=target_shape)
    res = unbroadcast(res, target, res_shape)
    if not identity:
        inverse = [canonical.index(k) for k in range(x.rank)]
        res = b.op("Transpose", [res], perm=inverse, shape=x.shape)
    return res


def _reducible(res_shape: tuple, target_shape: tuple) -> bool:
    """Whether ``unbroadcast`` alone takes ``res_shape`` to ``target_shape``: every target dim is matched
    by the same dim in the gradient, or is 1 (summed)."""
    if len(res_shape) < len(target_shape):
        return False
    lead = len(res_shape) - len(target_shape)
    return all(t == 1 or (t is not None and t == r) for t, r in zip(target_shape, res_shape[lead:]))
