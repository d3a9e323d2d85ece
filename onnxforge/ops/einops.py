"""``keras.ops.rearrange``: einops-style axis rearrangement (``"b (h w) c -> b h w c"``, ``h=4``).

The pattern names every input axis (a parenthesised group splits one axis into several, sized by the keyword
lengths, at most one of them inferred) and lists the output axes (a group merges axes into one). It becomes
at most a Reshape, a Transpose and a Reshape; a dynamic dim (the batch) is read from the input's shape, so
the op works in traced graphs with a free batch.

Example:
    >>> import numpy as np
    >>> from onnxforge import ops
    >>> ops.rearrange(np.zeros((2, 6, 5)), "b (h w) c -> b c h w", h=2).shape
    TensorShape([2, 5, 2, 3])
"""
from __future__ import annotations

__all__ = ["rearrange"]

import re
from typing import Any

import numpy as np

from ..graph import Value
from ._arrays_util import INT64, emit, value
from ._util import as_value, cast_value, symbolic
from .core import shape as shape_of
from .numpy import reshape, transpose

_TERM = re.compile(r"\(([^()]*)\)|([A-Za-z_]\w*)|(\S)")


def _parse(side: str, pattern: str) -> list[list[str]]:
    """The axis groups of one side of the pattern: ``"b (h w) c"`` -> ``[["b"], ["h", "w"], ["c"]]``."""
    groups = []
    for group, name, other in _TERM.findall(side):
        if other:
            raise ValueError(f"ops.rearrange: unexpected {other!r} in the pattern (axis names, groups in "
                             f"parentheses and '->' only). Received: pattern={pattern!r}")
        names = group.split() if group or name == "" else [name]
        if any(not re.fullmatch(r"[A-Za-z_]\w*", n) for n in names):
            raise ValueError(f"ops.rearrange: axis names must be identifiers. Received: pattern={pattern!r}")
        groups.append(names)
    return groups


def _product(sizes: list[Any]) -> Any:
    out: Any = 1
    for s in sizes:
        out = out * s
    return out


def _divide(total: Any, known: int) -> Any:
    if isinstance(total, int):
        return total // known
    return emit(total.builder, "Div", [cast_value(total, INT64), as_value(np.int64(known), total.builder)])


@symbolic
def rearrange(tensor: Any, pattern: str, **axes_lengths: int) -> Value:
    """Rearrange ``tensor``'s axes as the einops ``pattern`` says (``"in axes -> out axes"``).

    Args:
        tensor: the input, of the rank the left side names.
        pattern: e.g. ``"b h w c -> b c h w"``, ``"b (h1 h) w c -> (b h1) h w c"``.
        **axes_lengths: the sizes of axes a group splits (one per group may be left to inference).
    """
    v = value(tensor)
    if not isinstance(pattern, str) or pattern.count("->") != 1:
        raise ValueError(f"ops.rearrange: `pattern` must read 'input axes -> output axes'. Received: "
                         f"pattern={pattern!r}")
    left, right = (_parse(side, pattern) for side in pattern.split("->"))
    names_in = [n for g in left for n in g]
    names_out = [n for g in right for n in g]
    if len(set(names_in)) != len(names_in) or sorted(names_in) != sorted(names_out):
        raise ValueError(f"ops.rearrange: each axis must appear once on each side. Received: pattern={pattern!r}")
    if v.shape is None or len(v.shape) != len(left):
        raise ValueError(f"ops.rearrange: the pattern names {len(left)} input axes. Received: a tensor of shape "
                         f"{v.shape}")
    unknown = set(axes_lengths) - set(names_in)
    if unknown:
        raise ValueError(f"ops.rearrange: axis lengths for axes the pattern does not name: {sorted(unknown)}")
    dims = shape_of(v)
    sizes: dict[str, Any] = {}
    for group, dim in zip(left, dims):
        if len(group) == 1:
            given = axes_lengths.get(group[0], dim)
            if isinstance(dim, int) and given != dim:
                raise ValueError(f"ops.rearrange: axis {group[0]!r} has size {dim}. Received: {group[0]}={given}")
            sizes[group[0]] = dim
            continue
        missing = [n for n in group if n not in axes_lengths]
        if len(missing) > 1:
            raise ValueError(f"ops.rearrange: the group ({' '.join(group)}) needs the lengths of all of its axes "
                             f"but one. Received: {axes_lengths}")
        known = _product([int(axes_lengths[n]) for n in group if n in axes_lengths])
        if isinstance(dim, int) and (dim % known or (not missing and dim != known)):
            raise ValueError(f"ops.rearrange: the axis of size {dim} cannot split into ({' '.join(group)}) with "
                             f"lengths {axes_lengths}")
        sizes.update({n: axes_lengths[n] for n in group if n in axes_lengths})
        if missing:
            sizes[missing[0]] = _divide(dim, known)
    out = v
    if any(len(g) > 1 for g in left):
        out = reshape(out, tuple(sizes[n] for n in names_in))
    perm = [names_in.index(n) for n in names_out]
    if perm != list(range(len(perm))):
        out = transpose(out, perm)
    if any(len(g) != 1 for g in right):
        out = reshape(out, tuple(_product([sizes[n] for n in g]) for g in right))
    return out
